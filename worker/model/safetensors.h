// SafetensorsFile: a read-only, memory-mapped `.safetensors` file and the
// index of the tensors it holds.
//
// Format: an 8-byte little-endian header length N, then N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {...}}
// then the data buffer; offsets are relative to the first byte after the
// header. Open() validates the whole header before anything is read: every
// tensor's bytes lie inside the file and number numel * element size. A
// corrupt file is an error naming the file (and the tensor), never a crash.
// Tensors may overlap (tolerated); they are never out of bounds.
//
// Only the pages of tensors that are read are brought in from disk, so a rank
// that loads a shard touches (roughly) only its shard.
//
// Thread-safety: immutable after Open; Find/Names and reading Entry::data are
// safe from any thread while the file object lives. Move-only through
// std::unique_ptr (copying is deleted).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/tensor.h"

namespace tessera {

class SafetensorsFile {
 public:
  struct Entry {
    // The tensor's dtype when Tessera has one for it (F32, F16, BF16, I32,
    // I64); empty for the other safetensors dtypes (I8, U8, F64, F8_*, BOOL, ...),
    // whose spelling is in `dtype_name`.
    std::optional<DType> dtype;
    std::string dtype_name;  // as written in the file, e.g. "BF16"
    std::vector<int64_t> shape;
    const uint8_t* data = nullptr;  // inside the mapping; valid while the file lives
    size_t nbytes = 0;
  };

  // Maps and validates `path`. NOT_FOUND when it cannot be opened;
  // DATA_LOSS for a malformed or truncated file, naming the file, the tensor
  // (if any) and what is wrong.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);

  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  // The entry of tensor `name`, or nullptr when the file has none.
  const Entry* Find(absl::string_view name) const;
  // Names of all tensors (without "__metadata__"), sorted.
  std::vector<std::string> Names() const;
  // The "__metadata__" string map (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return path_; }

 private:
  SafetensorsFile(std::string path, void* map, size_t size)
      : path_(std::move(path)), map_(map), size_(size) {}

  std::string path_;
  void* map_ = nullptr;  // mmap'ed file (nullptr when size_ == 0)
  size_t size_ = 0;
  std::map<std::string, Entry, std::less<>> entries_;
  std::map<std::string, std::string> metadata_;
};

// Element size of a safetensors dtype name ("F32" -> 4), or nullopt when the
// name is not a safetensors dtype.
std::optional<size_t> SafetensorsDTypeSize(absl::string_view name);

}  // namespace tessera
