#include "worker/model/weight_source.h"

#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "worker/model/load_progress.h"
#include "worker/model/safetensors.h"

namespace tessera {
namespace {

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::Status CheckTargetDType(const std::string& name, DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
    case DType::kFloat16:
    case DType::kBFloat16:
      return absl::OkStatus();
    case DType::kInt32:
    case DType::kInt64:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("cannot load tensor \"", name, "\" as ",
                                                 DTypeName(dtype),
                                                 ": weights load as float32, float16 or "
                                                 "bfloat16"));
}

// The shard as `outer` spans of `chunk` contiguous elements: span o starts at
// element src_begin + o * src_stride of the full tensor and at o * chunk of
// the shard.
struct ShardLayout {
  int64_t outer = 1;
  int64_t chunk = 0;
  int64_t src_begin = 0;
  int64_t src_stride = 0;
};

ShardLayout Layout(const std::vector<int64_t>& full, const ShardSpec& shard) {
  ShardLayout l;
  if (shard.dim < 0) {
    l.chunk = 1;
    for (int64_t d : full) l.chunk *= d;
    return l;
  }
  int64_t inner = 1;
  for (size_t i = shard.dim + 1; i < full.size(); ++i) inner *= full[i];
  for (int i = 0; i < shard.dim; ++i) l.outer *= full[i];
  l.chunk = (shard.end - shard.begin) * inner;
  l.src_begin = shard.begin * inner;
  l.src_stride = full[shard.dim] * inner;
  return l;
}

// Calls fn(src_element, dst_element, n) over the shard in blocks, in parallel
// when the shard is large. fn must be safe to call concurrently on disjoint
// blocks.
template <typename Fn>
void ForEachBlock(const ShardLayout& l, Fn&& fn) {
  constexpr int64_t kBlock = int64_t{1} << 15;
  if (l.chunk == 0 || l.outer == 0) return;
  const int64_t blocks_per_span = (l.chunk + kBlock - 1) / kBlock;
  const int64_t tasks = l.outer * blocks_per_span;
  const bool parallel = l.outer * l.chunk >= (int64_t{1} << 16);
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t o = t / blocks_per_span;
    const int64_t b = t % blocks_per_span;
    const int64_t first = b * kBlock;
    const int64_t n = std::min(kBlock, l.chunk - first);
    fn(l.src_begin + o * l.src_stride + first, o * l.chunk + first, n);
  }
}

void StoreFloats(const float* src, DType dtype, void* dst, int64_t n) {
  switch (dtype) {
    case DType::kFloat32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::kFloat16: {
      uint16_t* out = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) out[i] = FloatToHalf(src[i]);
      return;
    }
    case DType::kBFloat16: {
      uint16_t* out = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) out[i] = FloatToBFloat16(src[i]);
      return;
    }
    case DType::kInt32:
    case DType::kInt64:
      return;  // excluded by CheckTargetDType
  }
}

// Converts n elements of a float32/float16/bfloat16 source to `dst_dtype`.
void ConvertElements(const uint8_t* src, DType src_dtype, uint8_t* dst, DType dst_dtype,
                     int64_t n) {
  if (src_dtype == dst_dtype) {
    std::memcpy(dst, src, n * DTypeSize(src_dtype));
    return;
  }
  if (dst_dtype == DType::kFloat32) {
    ConvertToFloat32(src, src_dtype, n, reinterpret_cast<float*>(dst));
    return;
  }
  constexpr int64_t kTile = 1024;
  float tmp[kTile];
  for (int64_t i = 0; i < n; i += kTile) {
    const int64_t m = std::min(kTile, n - i);
    ConvertToFloat32(src + i * DTypeSize(src_dtype), src_dtype, m, tmp);
    StoreFloats(tmp, dst_dtype, dst + i * DTypeSize(dst_dtype), m);
  }
}

// ---- safetensors directory ---------------------------------------------------

class SafetensorsDirSource final : public WeightSource {
 public:
  SafetensorsDirSource(std::string dir, std::vector<std::unique_ptr<SafetensorsFile>> files,
                       std::unordered_map<std::string, const SafetensorsFile*> where,
                       LoadProgress::Clock::time_point start)
      : dir_(std::move(dir)),
        files_(std::move(files)),
        where_(std::move(where)),
        progress_(dir_, static_cast<int64_t>(where_.size()), TotalBytes(where_),
                  static_cast<int>(files_.size()), start) {}

  absl::StatusOr<Tensor> Load(const std::string& name, const std::vector<int64_t>& full_shape,
                              const ShardSpec& shard, DType dtype) override {
    auto it = where_.find(name);
    if (it == where_.end()) {
      return absl::NotFoundError(absl::StrCat("tensor \"", name, "\" not found in ", dir_,
                                              " (searched ", SearchedFiles(), ")"));
    }
    const SafetensorsFile& file = *it->second;
    const SafetensorsFile::Entry& entry = *file.Find(name);
    const bool float_source = entry.dtype.has_value() &&
                              (*entry.dtype == DType::kFloat32 || *entry.dtype == DType::kFloat16 ||
                               *entry.dtype == DType::kBFloat16);
    if (!float_source) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor \"", name, "\" in ", file.path(), " has dtype ", entry.dtype_name,
                       ", which is not supported for weights (supported: F32, F16, BF16)"));
    }
    if (entry.shape != full_shape) {
      return absl::InvalidArgumentError(absl::StrCat("tensor \"", name, "\" in ", file.path(),
                                                     " has shape ", ShapeString(entry.shape),
                                                     ", expected ", ShapeString(full_shape)));
    }
    RETURN_IF_ERROR(CheckTargetDType(name, dtype));
    auto shard_shape = shard.ShardShape(full_shape);
    if (!shard_shape.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor \"", name, "\": ", shard_shape.status().message()));
    }
    Tensor out = Tensor::Empty(dtype, *shard_shape);
    const DType src_dtype = *entry.dtype;
    const size_t src_size = DTypeSize(src_dtype);
    const size_t dst_size = DTypeSize(dtype);
    uint8_t* dst = static_cast<uint8_t*>(out.data());
    ForEachBlock(Layout(full_shape, shard), [&](int64_t src_el, int64_t dst_el, int64_t n) {
      ConvertElements(entry.data + src_el * src_size, src_dtype, dst + dst_el * dst_size, dtype, n);
    });
    progress_.Loaded(static_cast<int64_t>(entry.nbytes), &file);
    return out;
  }

  bool Has(const std::string& name) const override { return where_.count(name) > 0; }
  std::string Describe() const override { return dir_; }

 private:
  static int64_t TotalBytes(const std::unordered_map<std::string, const SafetensorsFile*>& where) {
    int64_t total = 0;
    for (const auto& [name, file] : where) total += static_cast<int64_t>(file->Find(name)->nbytes);
    return total;
  }
  std::string SearchedFiles() const {
    constexpr size_t kMaxListed = 8;
    std::vector<std::string> names;
    for (size_t i = 0; i < files_.size() && i < kMaxListed; ++i) {
      names.push_back(std::filesystem::path(files_[i]->path()).filename().string());
    }
    std::string list = absl::StrJoin(names, ", ");
    if (files_.size() > kMaxListed) {
      absl::StrAppend(&list, " and ", files_.size() - kMaxListed, " more");
    }
    return list;
  }

  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, const SafetensorsFile*> where_;
  LoadProgress progress_;  // after the maps it counts
};

// The file names listed by an index's weight_map, and the map itself.
absl::Status ReadIndex(const std::string& path,
                       std::vector<std::pair<std::string, std::string>>& map) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream text;
  text << in.rdbuf();
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat(path, ": invalid JSON: ", e.what()));
  }
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    return absl::DataLossError(absl::StrCat(path,
                                            ": field \"weight_map\" is missing or not an "
                                            "object"));
  }
  for (const auto& [tensor, file] : index["weight_map"].items()) {
    if (!file.is_string()) {
      return absl::DataLossError(
          absl::StrCat(path, ": weight_map entry \"", tensor, "\" is not a file name"));
    }
    std::string name = file.get<std::string>();
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
      return absl::DataLossError(absl::StrCat(path, ": weight_map entry \"", tensor, "\" names \"",
                                              name, "\", not a file in the model directory"));
    }
    map.emplace_back(tensor, std::move(name));
  }
  return absl::OkStatus();
}

// ---- dummy weights -------------------------------------------------------------

constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ULL;  // splitmix64's increment

inline uint64_t SplitMix64(uint64_t x) {
  x += kGamma;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

class DummySource final : public WeightSource {
 public:
  explicit DummySource(uint64_t seed) : seed_(seed) {}

  absl::StatusOr<Tensor> Load(const std::string& name, const std::vector<int64_t>& full_shape,
                              const ShardSpec& shard, DType dtype) override {
    RETURN_IF_ERROR(CheckTargetDType(name, dtype));
    for (int64_t d : full_shape) {
      if (d < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("tensor \"", name, "\": bad shape ", ShapeString(full_shape)));
      }
    }
    auto shard_shape = shard.ShardShape(full_shape);
    if (!shard_shape.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor \"", name, "\": ", shard_shape.status().message()));
    }
    // value = offset + scale * u, u uniform in [-1, 1) (see weight_source.h).
    const float kSqrt3 = std::sqrt(3.0f);
    float offset = 0.0f;
    float scale = 0.02f;
    const float in_features = full_shape.empty() ? 1.0f : static_cast<float>(full_shape.back());
    if (absl::StrContains(name, "norm")) {
      offset = 1.0f;
      scale = 0.05f;
    } else if (absl::EndsWith(name, ".bias")) {
      scale = 0.02f;
    } else if (absl::StrContains(name, "embed_tokens")) {
      scale = kSqrt3;
    } else if (full_shape.size() >= 2) {
      const float gain = name == "lm_head.weight" ? 1.0f : 0.5f;
      scale = gain * kSqrt3 / std::sqrt(std::max(in_features, 1.0f));
    }
    const uint64_t key = SplitMix64(seed_) ^ XXH3_64bits(name.data(), name.size());

    Tensor out = Tensor::Empty(dtype, *shard_shape);
    uint8_t* dst = static_cast<uint8_t*>(out.data());
    const size_t dst_size = DTypeSize(dtype);
    ForEachBlock(Layout(full_shape, shard), [&](int64_t src_el, int64_t dst_el, int64_t n) {
      constexpr int64_t kTile = 1024;
      float tmp[kTile];
      // counter = key + index * kGamma, advanced one element at a time.
      uint64_t counter = key + static_cast<uint64_t>(src_el) * kGamma;
      for (int64_t i = 0; i < n; i += kTile) {
        const int64_t m = std::min(kTile, n - i);
        float* out = dtype == DType::kFloat32
                         ? reinterpret_cast<float*>(dst + (dst_el + i) * dst_size)
                         : tmp;
        for (int64_t j = 0; j < m; ++j, counter += kGamma) {
          const uint64_t bits = SplitMix64(counter);
          const float u = static_cast<float>(bits >> 40) * (2.0f / 16777216.0f) - 1.0f;
          out[j] = offset + scale * u;
        }
        if (out == tmp) StoreFloats(tmp, dtype, dst + (dst_el + i) * dst_size, m);
      }
    });
    return out;
  }

  bool Has(const std::string&) const override { return true; }
  std::string Describe() const override { return absl::StrCat("dummy weights (seed ", seed_, ")"); }

 private:
  uint64_t seed_;
};

}  // namespace

absl::StatusOr<std::vector<int64_t>> ShardSpec::ShardShape(const std::vector<int64_t>& full) const {
  std::vector<int64_t> shape = full;
  if (dim < 0) return shape;
  if (static_cast<size_t>(dim) >= full.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot shard dimension ", dim, " of a tensor of shape ", ShapeString(full)));
  }
  if (begin < 0 || end < begin || end > full[dim]) {
    return absl::InvalidArgumentError(absl::StrCat("shard [", begin, ", ", end, ") of dimension ",
                                                   dim, " does not fit shape ", ShapeString(full)));
  }
  shape[dim] = end - begin;
  return shape;
}

absl::StatusOr<std::unique_ptr<WeightSource>> OpenSafetensorsDir(const std::string& model_dir) {
  const LoadProgress::Clock::time_point start = LoadProgress::Clock::now();  // mapping counts
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(model_dir, ec)) {
    return absl::NotFoundError(absl::StrCat("model directory ", model_dir, " does not exist"));
  }
  const fs::path dir(model_dir);
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::unordered_map<std::string, const SafetensorsFile*> where;

  const fs::path index_path = dir / "model.safetensors.index.json";
  if (fs::exists(index_path, ec)) {
    std::vector<std::pair<std::string, std::string>> weight_map;
    RETURN_IF_ERROR(ReadIndex(index_path.string(), weight_map));
    std::unordered_map<std::string, const SafetensorsFile*> by_file;
    for (const auto& [tensor, file_name] : weight_map) {
      if (by_file.count(file_name)) continue;
      ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open((dir / file_name).string()));
      by_file[file_name] = file.get();
      files.push_back(std::move(file));
    }
    for (const auto& [tensor, file_name] : weight_map) {
      const SafetensorsFile* file = by_file[file_name];
      if (file->Find(tensor) == nullptr) {
        return absl::DataLossError(absl::StrCat(index_path.string(), " places tensor \"", tensor,
                                                "\" in ", file->path(),
                                                ", which has no such tensor"));
      }
      where[tensor] = file;
    }
    // Tensors the index does not list are still loadable from their file.
    for (const auto& file : files) {
      for (const std::string& name : file->Names()) where.emplace(name, file.get());
    }
  } else {
    std::vector<fs::path> paths;
    if (fs::exists(dir / "model.safetensors", ec)) {
      paths.push_back(dir / "model.safetensors");
    } else {
      for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
        if (e.path().extension() == ".safetensors") paths.push_back(e.path());
      }
      std::sort(paths.begin(), paths.end());
    }
    if (ec) {
      return absl::InternalError(absl::StrCat("cannot list ", model_dir, ": ", ec.message()));
    }
    if (paths.empty()) {
      return absl::NotFoundError(
          absl::StrCat("no model.safetensors, model.safetensors.index.json "
                       "or *.safetensors in ",
                       model_dir));
    }
    for (const fs::path& p : paths) {
      ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(p.string()));
      for (const std::string& name : file->Names()) {
        auto [it, inserted] = where.emplace(name, file.get());
        if (!inserted) {
          return absl::DataLossError(absl::StrCat("tensor \"", name, "\" is in both ",
                                                  it->second->path(), " and ", file->path()));
        }
      }
      files.push_back(std::move(file));
    }
  }
  return std::unique_ptr<WeightSource>(
      new SafetensorsDirSource(model_dir, std::move(files), std::move(where), start));
}

std::unique_ptr<WeightSource> MakeDummyWeightSource(uint64_t seed) {
  return std::make_unique<DummySource>(seed);
}

}  // namespace tessera
