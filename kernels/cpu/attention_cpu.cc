// CPU paged attention: one work item per (query row, query head), each walking
// its sequence's KV blocks with an online (running-max) softmax in float32.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/ops_cpu.h"

namespace tessera::ops::cpu {
namespace {

// What the kernel loop needs to know about one query row.
struct RowInfo {
  int32_t seq = -1;  // -1: padding row past query_start_loc[B]
  int32_t pos = 0;   // position of the row's token; it attends to [0, pos]
};

// Checks the metadata against the tensors so the kernel never reads outside
// them, and maps every query row to its sequence and position.
absl::Status PlanRows(const Tensor& q, const Tensor& k_cache, const AttentionMetadata& md,
                      std::vector<RowInfo>& rows, int64_t& work) {
  const int64_t n = q.dim(0);
  const int64_t num_blocks = k_cache.dim(0), block_size = k_cache.dim(1);
  const int64_t batch = md.seq_lens.dim(0), max_blocks = md.block_tables.dim(1);
  const auto* qsl = md.query_start_loc.data_as<const int32_t>();
  const auto* seq_lens = md.seq_lens.data_as<const int32_t>();
  const auto* tables = md.block_tables.data_as<const int32_t>();
  if (qsl[0] != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("PagedAttention: query_start_loc[0] = ", qsl[0], ", expected 0"));
  }
  rows.assign(n, RowInfo{});
  work = 0;
  int64_t max_q = 0, max_s = 0, decodes = 0;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t start = qsl[b], end = qsl[b + 1], seq_len = seq_lens[b];
    if (end < start || end > n) {
      return absl::InvalidArgumentError(absl::StrCat("PagedAttention: query_start_loc[", b + 1,
                                                     "] = ", end, " is outside [", start, ", ", n,
                                                     "] (query rows of sequence ", b, ")"));
    }
    const int64_t q_len = end - start;
    max_q = std::max(max_q, q_len);
    max_s = std::max(max_s, seq_len);
    decodes += q_len == 1;
    if (q_len == 0) continue;
    if (seq_len < q_len || seq_len > max_blocks * block_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "PagedAttention: seq_lens[", b, "] = ", seq_len, " must be in [", q_len,
          " (its query rows), ", max_blocks * block_size, " (block_tables columns x block size)]"));
    }
    const int64_t used_blocks = (seq_len + block_size - 1) / block_size;
    for (int64_t j = 0; j < used_blocks; ++j) {
      const int32_t block = tables[b * max_blocks + j];
      if (block < 0 || block >= num_blocks) {
        return absl::InvalidArgumentError(absl::StrCat("PagedAttention: block_tables[", b, ", ", j,
                                                       "] = ", block, " is outside [0, ",
                                                       num_blocks, ")"));
      }
    }
    for (int64_t i = 0; i < q_len; ++i) {
      rows[start + i] = RowInfo{static_cast<int32_t>(b), static_cast<int32_t>(seq_len - q_len + i)};
    }
    work += q_len * seq_len;
  }
  // The CUDA path trusts num_decodes (0: no decode kernels, so nothing zeroes
  // padding rows); the CPU holds every caller to it.
  if (md.num_decodes >= 0 && md.num_decodes != decodes) {
    return absl::InvalidArgumentError(
        absl::StrCat("PagedAttention: md.num_decodes = ", md.num_decodes, " but the batch has ",
                     decodes, " sequences with one query row"));
  }
  if (md.num_decodes == 0 && qsl[batch] != n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PagedAttention: md.num_decodes = 0 needs every query row in a sequence, but rows [",
        qsl[batch], ", ", n, ") are padding"));
  }
  if (md.max_query_len < max_q || md.max_seq_len < max_s) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PagedAttention: max_query_len = ", md.max_query_len, " / max_seq_len = ", md.max_seq_len,
        " are below the batch's ", max_q, " / ", max_s));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status PagedAttention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                            const AttentionMetadata& md, int num_heads, int num_kv_heads,
                            float scale, Tensor& out) {
  std::vector<RowInfo> rows;
  int64_t work = 0;
  if (absl::Status s = PlanRows(q, k_cache, md, rows, work); !s.ok()) return s;

  const int64_t n = q.dim(0);
  const int64_t block_size = k_cache.dim(1), hd = k_cache.dim(3);
  const int64_t max_blocks = md.block_tables.dim(1);
  const int64_t kv_stride = num_kv_heads * hd;  // between consecutive tokens of a block
  const int64_t group = num_heads / num_kv_heads;
  const auto* tables = md.block_tables.data_as<const int32_t>();
  const auto* qp = q.data_as<const float>();
  const auto* kc = k_cache.data_as<const float>();
  const auto* vc = v_cache.data_as<const float>();
  auto* op = out.data_as<float>();
  const int64_t items = n * num_heads;
  work *= num_heads * hd;

#pragma omp parallel num_threads(NumThreads()) if (work >= kMinParallelWork)
  {
    std::vector<float> qs(hd), acc(hd), scores(block_size);
#pragma omp for schedule(dynamic, 4)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t row = item / num_heads, head = item % num_heads;
      float* o = op + row * num_heads * hd + head * hd;
      const RowInfo info = rows[row];
      if (info.seq < 0) {
        std::memset(o, 0, hd * sizeof(float));
        continue;
      }
      const float* qrow = qp + row * num_heads * hd + head * hd;
      for (int64_t d = 0; d < hd; ++d) qs[d] = qrow[d] * scale;
      std::fill(acc.begin(), acc.end(), 0.f);
      const int64_t kv_head = head / group;
      const int32_t* table = tables + info.seq * max_blocks;
      const int64_t context = static_cast<int64_t>(info.pos) + 1;
      float running_max = -std::numeric_limits<float>::infinity();
      float denom = 0.f;
      for (int64_t blk = 0; blk * block_size < context; ++blk) {
        const int64_t count = std::min(block_size, context - blk * block_size);
        const int64_t base =
            static_cast<int64_t>(table[blk]) * block_size * kv_stride + kv_head * hd;
        const float* kb = kc + base;
        const float* vb = vc + base;
        float block_max = -std::numeric_limits<float>::infinity();
        for (int64_t t = 0; t < count; ++t) {
          const float* key = kb + t * kv_stride;
          float s = 0.f;
#pragma omp simd reduction(+ : s)
          for (int64_t d = 0; d < hd; ++d) s += qs[d] * key[d];
          scores[t] = s;
          block_max = std::max(block_max, s);
        }
        if (block_max > running_max) {
          const float correction = std::exp(running_max - block_max);  // 0 on the first block
          denom *= correction;
          for (int64_t d = 0; d < hd; ++d) acc[d] *= correction;
          running_max = block_max;
        }
        for (int64_t t = 0; t < count; ++t) {
          const float p = std::exp(scores[t] - running_max);
          denom += p;
          const float* value = vb + t * kv_stride;
#pragma omp simd
          for (int64_t d = 0; d < hd; ++d) acc[d] += p * value[d];
        }
      }
      const float inv = 1.f / denom;
      for (int64_t d = 0; d < hd; ++d) o[d] = acc[d] * inv;
    }
  }
  return absl::OkStatus();
}

}  // namespace tessera::ops::cpu
