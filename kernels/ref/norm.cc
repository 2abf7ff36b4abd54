#include "kernels/ref/norm.h"

#include <algorithm>
#include <cmath>

namespace wbs::kernels::ref {

template <typename T>
void BatchNormInference(const BatchNormParams& p, const T* x, const T* scale, const T* bias,
                        const T* mean, const T* var, T* y) {
  const int64_t planes = p.batch * p.channels;
  const T eps = static_cast<T>(p.epsilon);
#pragma omp parallel for num_threads(p.num_threads) if (p.num_threads > 1) schedule(static)
  for (int64_t nc = 0; nc < planes; ++nc) {
    const int64_t c = nc % p.channels;
    const T* xp = x + nc * p.spatial;
    T* yp = y + nc * p.spatial;
    if (p.per_activation) {
      for (int64_t s = 0; s < p.spatial; ++s) {
        const int64_t f = c * p.spatial + s;
        yp[s] = scale[f] * (xp[s] - mean[f]) / std::sqrt(var[f] + eps) + bias[f];
      }
    } else {
      const T inv_std = T(1) / std::sqrt(var[c] + eps);
      for (int64_t s = 0; s < p.spatial; ++s)
        yp[s] = scale[c] * (xp[s] - mean[c]) * inv_std + bias[c];
    }
  }
}

template <typename T>
void Lrn(const LrnParams& p, const T* x, T* y) {
  const int64_t before = (p.size - 1) / 2;
  const int64_t after = p.size - 1 - before;  // ceil((size - 1) / 2)
  const T alpha_over_size = static_cast<T>(p.alpha / static_cast<double>(p.size));
  const T bias = static_cast<T>(p.bias);
  const T beta = static_cast<T>(p.beta);
  const int64_t planes = p.batch * p.channels;
#pragma omp parallel for num_threads(p.num_threads) if (p.num_threads > 1) schedule(static)
  for (int64_t nc = 0; nc < planes; ++nc) {
    const int64_t n = nc / p.channels;
    const int64_t c = nc % p.channels;
    const int64_t c_lo = std::max<int64_t>(0, c - before);
    const int64_t c_hi = std::min<int64_t>(p.channels - 1, c + after);
    const T* xn = x + n * p.channels * p.spatial;
    T* yp = y + nc * p.spatial;
    for (int64_t s = 0; s < p.spatial; ++s) {
      T sq = T(0);
      for (int64_t cc = c_lo; cc <= c_hi; ++cc) {
        const T v = xn[cc * p.spatial + s];
        sq += v * v;
      }
      yp[s] = xn[c * p.spatial + s] / std::pow(bias + alpha_over_size * sq, beta);
    }
  }
}

template void BatchNormInference<float>(const BatchNormParams&, const float*, const float*,
                                        const float*, const float*, const float*, float*);
template void BatchNormInference<double>(const BatchNormParams&, const double*, const double*,
                                         const double*, const double*, const double*, double*);
template void Lrn<float>(const LrnParams&, const float*, float*);
template void Lrn<double>(const LrnParams&, const double*, double*);

}  // namespace wbs::kernels::ref
