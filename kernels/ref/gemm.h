// Reference matrix products: ONNX Gemm and (batched, broadcasting) MatMul.
// Row-major operands; the operator resolves shapes and broadcasting into the
// strides below.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/ref/activation.h"

namespace wbs::kernels::ref {

struct GemmParams {
  int64_t m = 1, n = 1, k = 1;
  bool trans_a = false;  // A stored [K, M] instead of [M, K]
  bool trans_b = false;  // B stored [N, K] instead of [K, N]
  double alpha = 1.0;
  double beta = 1.0;
  // C (when not null) element (i, j) is c[i * c_stride_m + j * c_stride_n];
  // a stride of 0 broadcasts along that dim.
  int64_t c_stride_m = 0;
  int64_t c_stride_n = 0;
  Activation activation;
  int num_threads = 1;  // > 1: parallel over rows of Y
};

// Y[i, j] = act(alpha * sum_k A'[i, k] * B'[k, j] + beta * C[i, j]),
// A' = A or A^T, B' = B or B^T; the beta term is absent when c is null.
template <typename T>
void Gemm(const GemmParams& p, const T* a, const T* b, const T* c, T* y);

struct MatMulParams {
  int64_t m = 1, n = 1, k = 1;
  // Broadcast batch dims of Y (outermost first) and, per dim, the element
  // stride of A's and B's matrix in that dim (0 where broadcast).
  std::vector<int64_t> batch_shape;
  std::vector<int64_t> a_batch_strides;
  std::vector<int64_t> b_batch_strides;
  Activation activation;
  int num_threads = 1;  // > 1: parallel over (batch, row of Y)
};

// For every batch index b: Y[b] = act(A[b] (m x k) * B[b] (k x n)).
template <typename T>
void MatMul(const MatMulParams& p, const T* a, const T* b, T* y);

extern template void Gemm<float>(const GemmParams&, const float*, const float*, const float*,
                                 float*);
extern template void Gemm<double>(const GemmParams&, const double*, const double*,
                                  const double*, double*);
extern template void MatMul<float>(const MatMulParams&, const float*, const float*, float*);
extern template void MatMul<double>(const MatMulParams&, const double*, const double*, double*);

}  // namespace wbs::kernels::ref
