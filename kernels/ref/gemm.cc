#include "kernels/ref/gemm.h"

#include <algorithm>

namespace wbs::kernels::ref {

namespace {

// yrow[j] = sum_k arow(k) * B'[k, j] for one row of A'. `a_step` is the
// element stride between consecutive k in A's row (1, or M when transposed).
// Without transB the i-k-j order streams B and Y rows; with it each output is
// a dot product of two contiguous rows.
template <typename T>
void RowTimesMatrix(const T* arow, int64_t a_step, const T* b, bool trans_b, int64_t n, int64_t k,
                    T* yrow) {
  if (trans_b) {
    for (int64_t j = 0; j < n; ++j) {
      const T* brow = b + j * k;
      T acc = T(0);
      if (a_step == 1) {
        // A vectorised reduction: the order of the k terms is unspecified.
#pragma omp simd reduction(+ : acc)
        for (int64_t kk = 0; kk < k; ++kk) acc += arow[kk] * brow[kk];
      } else {
        for (int64_t kk = 0; kk < k; ++kk) acc += arow[kk * a_step] * brow[kk];
      }
      yrow[j] = acc;
    }
    return;
  }
  std::fill(yrow, yrow + n, T(0));
  for (int64_t kk = 0; kk < k; ++kk) {
    const T av = arow[kk * a_step];
    const T* brow = b + kk * n;
    for (int64_t j = 0; j < n; ++j) yrow[j] += av * brow[j];
  }
}

}  // namespace

template <typename T>
void Gemm(const GemmParams& p, const T* a, const T* b, const T* c, T* y) {
  const T alpha = static_cast<T>(p.alpha);
  const T beta = static_cast<T>(p.beta);
#pragma omp parallel for num_threads(p.num_threads) if (p.num_threads > 1) schedule(static)
  for (int64_t i = 0; i < p.m; ++i) {
    const T* arow = p.trans_a ? a + i : a + i * p.k;
    const int64_t a_step = p.trans_a ? p.m : 1;
    T* yrow = y + i * p.n;
    RowTimesMatrix(arow, a_step, b, p.trans_b, p.n, p.k, yrow);
    for (int64_t j = 0; j < p.n; ++j) {
      T v = alpha * yrow[j];
      if (c) v += beta * c[i * p.c_stride_m + j * p.c_stride_n];
      yrow[j] = Activate(p.activation, v);
    }
  }
}

template <typename T>
void MatMul(const MatMulParams& p, const T* a, const T* b, T* y) {
  int64_t batches = 1;
  for (int64_t d : p.batch_shape) batches *= d;
  const int64_t rows = batches * p.m;
  const int nb = static_cast<int>(p.batch_shape.size());
#pragma omp parallel for num_threads(p.num_threads) if (p.num_threads > 1) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t batch = r / p.m;
    const int64_t i = r % p.m;
    // Offsets of this batch's matrices from its multi-index.
    int64_t a_off = 0, b_off = 0, rest = batch;
    for (int d = nb - 1; d >= 0; --d) {
      const int64_t idx = rest % p.batch_shape[d];
      rest /= p.batch_shape[d];
      a_off += idx * p.a_batch_strides[d];
      b_off += idx * p.b_batch_strides[d];
    }
    T* yrow = y + r * p.n;
    RowTimesMatrix(a + a_off + i * p.k, 1, b + b_off, false, p.n, p.k, yrow);
    ApplyActivation(p.activation, yrow, p.n);
  }
}

template void Gemm<float>(const GemmParams&, const float*, const float*, const float*, float*);
template void Gemm<double>(const GemmParams&, const double*, const double*, const double*,
                           double*);
template void MatMul<float>(const MatMulParams&, const float*, const float*, float*);
template void MatMul<double>(const MatMulParams&, const double*, const double*, double*);

}  // namespace wbs::kernels::ref
