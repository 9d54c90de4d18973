// Deterministic dummy weights for `--dummy` presets (MakeDummyWeightSource;
// the scheme is in worker/model/weight_source.h).
#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/model/shard_copy.h"
#include "worker/model/weight_source.h"

namespace tessera {
namespace {

using shard_copy::CheckTargetDType;
using shard_copy::ForEachBlock;
using shard_copy::Layout;
using shard_copy::ShapeString;
using shard_copy::StoreFloats;

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

std::unique_ptr<WeightSource> MakeDummyWeightSource(uint64_t seed) {
  return std::make_unique<DummySource>(seed);
}

}  // namespace tessera
