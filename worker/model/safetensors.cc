#include "worker/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace tessera {
namespace {

using json = nlohmann::json;

struct DTypeInfo {
  const char* name;
  size_t size;
  std::optional<DType> dtype;
};
constexpr DTypeInfo kDTypes[] = {
    {"F32", 4, DType::kFloat32}, {"F16", 2, DType::kFloat16},  {"BF16", 2, DType::kBFloat16},
    {"I32", 4, DType::kInt32},   {"I64", 8, DType::kInt64},    {"F64", 8, std::nullopt},
    {"I8", 1, std::nullopt},     {"U8", 1, std::nullopt},      {"I16", 2, std::nullopt},
    {"U16", 2, std::nullopt},    {"U32", 4, std::nullopt},     {"U64", 8, std::nullopt},
    {"BOOL", 1, std::nullopt},   {"F8_E4M3", 1, std::nullopt}, {"F8_E5M2", 1, std::nullopt},
};

const DTypeInfo* FindDType(absl::string_view name) {
  for (const DTypeInfo& info : kDTypes) {
    if (name == info.name) return &info;
  }
  return nullptr;
}

// Reads a non-negative integer that fits in uint64; false otherwise.
bool GetUnsigned(const json& v, uint64_t& out) {
  if (v.is_number_unsigned()) {
    out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  return false;
}

class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  int fd_;
};

}  // namespace

std::optional<size_t> SafetensorsDTypeSize(absl::string_view name) {
  const DTypeInfo* info = FindDType(name);
  if (info == nullptr) return std::nullopt;
  return info->size;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(map_, size_);
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  FdCloser closer(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return absl::InternalError(absl::StrCat("cannot stat ", path, ": ", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a regular file"));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  auto corrupt = [&path](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("corrupt safetensors file ", path, ": ", what));
  };
  if (size < 8) {
    return corrupt(absl::StrCat("it is ", size,
                                " bytes long, shorter than the 8-byte header "
                                "length"));
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) {
    return absl::InternalError(absl::StrCat("cannot mmap ", path, ": ", std::strerror(errno)));
  }
  // From here the mapping is owned (and unmapped) by `file`.
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile(path, map, size));
  const uint8_t* bytes = static_cast<const uint8_t*>(map);

  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > size - 8) {
    return corrupt(absl::StrCat("the header length (", header_len,
                                " bytes) runs past the end of "
                                "the file (",
                                size, " bytes)"));
  }
  const char* header_begin = reinterpret_cast<const char*>(bytes + 8);
  json header;
  try {
    header = json::parse(header_begin, header_begin + header_len);
  } catch (const json::exception& e) {
    return corrupt(absl::StrCat("the header is not valid JSON: ", e.what()));
  }
  if (!header.is_object()) return corrupt("the header is not a JSON object");

  const uint8_t* data = bytes + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  for (const auto& item : header.items()) {
    // Named references, not a structured binding: the `bad` lambda below
    // captures `name` (clang before 16 cannot capture structured bindings).
    const std::string& name = item.key();
    const json& value = item.value();
    if (name == "__metadata__") {
      if (!value.is_object()) return corrupt("\"__metadata__\" is not an object");
      for (const auto& [key, v] : value.items()) {
        file->metadata_[key] = v.is_string() ? v.get<std::string>() : v.dump();
      }
      continue;
    }
    auto bad = [&](absl::string_view what) {
      return corrupt(absl::StrCat("tensor \"", name, "\": ", what));
    };
    if (!value.is_object()) return bad("its entry is not an object");
    auto dtype_it = value.find("dtype");
    if (dtype_it == value.end() || !dtype_it->is_string()) return bad("\"dtype\" is missing");
    const std::string dtype_name = dtype_it->get<std::string>();
    const DTypeInfo* info = FindDType(dtype_name);
    if (info == nullptr) return bad(absl::StrCat("unknown dtype \"", dtype_name, "\""));

    auto shape_it = value.find("shape");
    if (shape_it == value.end() || !shape_it->is_array()) return bad("\"shape\" is missing");
    Entry entry;
    entry.dtype = info->dtype;
    entry.dtype_name = dtype_name;
    uint64_t numel = 1;
    bool overflow = false;
    for (const json& d : *shape_it) {
      uint64_t dim = 0;
      if (!GetUnsigned(d, dim) ||
          dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return bad(absl::StrCat("bad dimension ", d.dump(), " in \"shape\""));
      }
      entry.shape.push_back(static_cast<int64_t>(dim));
      overflow = overflow || __builtin_mul_overflow(numel, dim, &numel);
    }
    uint64_t expected_bytes = 0;
    overflow = overflow || __builtin_mul_overflow(numel, info->size, &expected_bytes);
    if (overflow) return bad("its shape has more elements than can be addressed");

    auto offsets_it = value.find("data_offsets");
    uint64_t begin = 0, end = 0;
    if (offsets_it == value.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
        !GetUnsigned((*offsets_it)[0], begin) || !GetUnsigned((*offsets_it)[1], end)) {
      return bad("\"data_offsets\" must be two non-negative integers");
    }
    if (end < begin) {
      return bad(absl::StrCat("data_offsets [", begin, ", ", end, "] end before they begin"));
    }
    if (end > data_size) {
      return bad(absl::StrCat("data_offsets [", begin, ", ", end,
                              "] run past the end of the data (", data_size,
                              " bytes): the file is truncated or corrupt"));
    }
    if (end - begin != expected_bytes) {
      return bad(absl::StrCat("data_offsets [", begin, ", ", end, "] hold ", end - begin,
                              " bytes, but shape and dtype ", dtype_name, " need ",
                              expected_bytes));
    }
    entry.data = data + begin;
    entry.nbytes = static_cast<size_t>(expected_bytes);
    file->entries_.emplace(name, std::move(entry));
  }
  return file;
}

const SafetensorsFile::Entry* SafetensorsFile::Find(absl::string_view name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

std::vector<std::string> SafetensorsFile::Names() const {
  std::vector<std::string> names;
  names.reserve(entries_.size());
  for (const auto& [name, entry] : entries_) names.push_back(name);
  return names;
}

}  // namespace tessera
