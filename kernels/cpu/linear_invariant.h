// A batch-invariant CPU Linear: out[i, j] = dot(x[i, :], w[j, :]) (+ b[j]),
// each element computed by the same sequence of float operations whatever the
// number of rows in the batch, the blocking, the thread count or whether the
// row is a prefill or a decode token. OpenBLAS is not: it runs one row as a
// GEMV and several as a GEMM, whose summation orders differ in the last bits,
// so a token's logits depend on what else was in its batch, and a sampled
// token can flip at a near-tie. With this kernel a sequence's tokens are a
// function of its prompt and seed alone, which makes a continuation on
// another replica (router failover) reproduce an uninterrupted run exactly.
//
// The order: one 8-lane accumulator per element, k in steps of 8
// (acc = fma(x[k:k+8], w[k:k+8], acc)), the lanes summed as
// ((l0+l4)+(l2+l6))+((l1+l5)+(l3+l7)), then the k % 8 tail elements in order
// with scalar fma, then the bias. Thread-safe (touches only its arguments).
#pragma once

#include "kernels/tensor.h"

namespace tessera::ops::cpu {

// x: float32 [n, k]; w: float32 [m, k]; bias: float32 [m] or null;
// out: float32 [n, m]. Shapes as ops::Linear checks them.
void LinearBatchInvariant(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out);

}  // namespace tessera::ops::cpu
