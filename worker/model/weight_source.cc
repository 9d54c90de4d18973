#include "worker/model/weight_source.h"

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
#include "worker/model/shard_copy.h"

namespace tessera {
namespace {

using shard_copy::CheckTargetDType;
using shard_copy::ConvertElements;
using shard_copy::ForEachBlock;
using shard_copy::Layout;
using shard_copy::ShapeString;

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

}  // namespace tessera
