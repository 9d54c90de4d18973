#include "kernels/cpu/sampling_twin.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace tessera::ops::cpu {
namespace {

namespace rule = sampling;

// sampling_row.h's Block policy for one host "thread": barriers are no-ops,
// reductions and scans over one value are that value.
class SerialBlock {
 public:
  int thread() const { return 0; }
  int threads() const { return 1; }
  void Sync() {}
  rule::RowShared& shared() { return shared_; }
  void AtomicAdd(rule::u64* p, rule::u64 v) { *p += v; }
  float Exp(float x) { return std::exp(x); }
  float Log(float x) { return std::log(x); }
  float Sum(float v) { return v; }
  void ArgMax(float& /*v*/, int32_t& /*id*/) {}
  void ExclusiveSum(rule::u64 in, rule::u64& before, rule::u64& all) {
    before = 0;
    all = in;
  }

 private:
  rule::RowShared shared_{};
};

struct CleanLogits {
  const float* x;
  float operator()(int64_t i) const { return rule::Clean(x[i]); }
};

}  // namespace

rule::RowResult SampleRowTwin(const float* logits, int64_t vocab, const rule::RowParams& params) {
  SerialBlock blk;
  return rule::SampleRowOnBlock(blk, CleanLogits{logits}, vocab, params);
}

absl::Status SampleTwin(const Tensor& logits, const SamplingTensors& params, Tensor& tokens,
                        Tensor& logprobs) {
  if (logits.device() != Device::kCpu || logits.dtype() != DType::kFloat32 || logits.ndim() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("SampleTwin: logits must be a 2-D float32 CPU tensor, got ",
                     DTypeName(logits.dtype()), " ", logits.ShapeString()));
  }
  const int64_t n = logits.dim(0), vocab = logits.dim(1);
  for (int64_t r = 0; r < n; ++r) {
    rule::RowParams p;
    p.temperature = params.temperature.data_as<const float>()[r];
    p.top_k = params.top_k.data_as<const int32_t>()[r];
    p.top_p = params.top_p.data_as<const float>()[r];
    p.min_p = params.min_p.data_as<const float>()[r];
    p.seed = static_cast<rule::u64>(params.seed.data_as<const int64_t>()[r]);
    p.step = params.step.data_as<const int64_t>()[r];
    const rule::RowResult res = SampleRowTwin(logits.data_as<const float>() + r * vocab, vocab, p);
    tokens.data_as<int32_t>()[r] = res.token;
    logprobs.data_as<float>()[r] = res.logprob;
  }
  return absl::OkStatus();
}

}  // namespace tessera::ops::cpu
