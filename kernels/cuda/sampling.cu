// Sample on CUDA: one thread block per row of logits, nothing leaves the
// device. The per-row algorithm is kernels/sampling_row.h's SampleRowOnBlock
// (radix-select cuts, fixed-point scans in id order; the arithmetic of
// kernels/sampling_rule.h), run here by a block of kThreads threads and on
// the host by its serial twin (kernels/cpu/sampling_twin.h). This file only
// supplies the block primitives: warp-shuffle reductions, CUB's block scan,
// shared-memory atomics.
//
// The kernel reads the row about 12 times (fewer without top-k/top-p); a row
// of 128K float32 logits is 512 KiB and stays in L2.
#include <cfloat>
#include <climits>
#include <cub/block/block_scan.cuh>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops_cuda.h"
#include "kernels/sampling_row.h"

namespace tessera::ops::cuda {
namespace {

namespace rule = ::tessera::ops::sampling;
using rule::u64;

constexpr int kThreads = 512;

struct ParamPtrs {
  const float* temperature;
  const int32_t* top_k;
  const float* top_p;
  const float* min_p;
  const int64_t* seed;
  const int64_t* step;
};

// The Block policy of sampling_row.h for one CUDA thread block.
class DeviceBlock {
 public:
  using Scan = cub::BlockScan<u64, kThreads>;
  struct Storage {
    typename Scan::TempStorage scan;
    rule::RowShared row;
    float fs[32];
    int32_t is[32];
  };

  __device__ explicit DeviceBlock(Storage& s) : s_(s) {}

  __device__ int thread() const { return static_cast<int>(threadIdx.x); }
  __device__ int threads() const { return kThreads; }
  __device__ void Sync() { __syncthreads(); }
  __device__ rule::RowShared& shared() { return s_.row; }
  __device__ void AtomicAdd(u64* p, u64 v) { atomicAdd(p, v); }
  __device__ float Exp(float x) { return expf(x); }
  __device__ float Log(float x) { return logf(x); }
  __device__ float Sum(float v) { return BlockSum(v, s_.fs); }

  __device__ void ExclusiveSum(u64 in, u64& before, u64& all) {
    Scan(s_.scan).ExclusiveSum(in, before, all);
    __syncthreads();  // the temp storage is reused by the next scan
  }

  // Max with its lowest id over the block, returned to every thread.
  __device__ void ArgMax(float& v, int32_t& id) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = kThreads >> 5;
    WarpArgMax(v, id);
    __syncthreads();
    if (lane == 0) {
      s_.fs[warp] = v;
      s_.is[warp] = id;
    }
    __syncthreads();
    v = lane < warps ? s_.fs[lane] : -INFINITY;
    id = lane < warps ? s_.is[lane] : INT_MAX;
    WarpArgMax(v, id);
  }

 private:
  __device__ static void WarpArgMax(float& v, int32_t& id) {
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, v, o);
      const int32_t oid = __shfl_xor_sync(0xffffffffu, id, o);
      if (ov > v || (ov == v && oid < id)) {
        v = ov;
        id = oid;
      }
    }
  }

  Storage& s_;
};

template <typename T>
struct CleanLogits {
  const T* x;
  __device__ float operator()(int64_t i) const { return rule::Clean(ToFloat(x[i])); }
};

template <typename T>
__global__ void __launch_bounds__(kThreads)
    SampleKernel(const T* __restrict__ logits, int64_t vocab, ParamPtrs prm,
                 int32_t* __restrict__ tokens, float* __restrict__ logprobs) {
  __shared__ DeviceBlock::Storage storage;
  DeviceBlock blk(storage);
  const int64_t row = blockIdx.x;
  const CleanLogits<T> x{logits + row * vocab};
  rule::RowParams p;
  p.temperature = prm.temperature[row];
  p.top_k = prm.top_k[row];
  p.top_p = prm.top_p[row];
  p.min_p = prm.min_p[row];
  p.seed = static_cast<u64>(prm.seed[row]);
  p.step = prm.step[row];
  const rule::RowResult r = rule::SampleRowOnBlock(blk, x, vocab, p);
  if (threadIdx.x == 0) {
    tokens[row] = r.token;
    logprobs[row] = r.logprob;
  }
}

}  // namespace

absl::Status Sample(const Tensor& logits, const SamplingTensors& params, Tensor& tokens,
                    Tensor& logprobs) {
  const int64_t n = logits.dim(0), vocab = logits.dim(1);
  if (n == 0) return absl::OkStatus();
  ParamPtrs prm{params.temperature.data_as<const float>(), params.top_k.data_as<const int32_t>(),
                params.top_p.data_as<const float>(),       params.min_p.data_as<const float>(),
                params.seed.data_as<const int64_t>(),      params.step.data_as<const int64_t>()};
  return DispatchFloat(logits.dtype(), "Sample", [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    SampleKernel<T><<<n, kThreads, 0, Stream()>>>(logits.data_as<const T>(), vocab, prm,
                                                  tokens.data_as<int32_t>(),
                                                  logprobs.data_as<float>());
    CUDA_RETURN_IF_LAUNCH_ERROR("SampleKernel");
    return absl::OkStatus();
  });
}

}  // namespace tessera::ops::cuda
