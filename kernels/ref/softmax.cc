#include "kernels/ref/softmax.h"

#include <cmath>

namespace wbs::kernels::ref {

template <typename T>
void Softmax(const SoftmaxParams& p, const T* x, T* y) {
  const int64_t n = p.axis_size;
  const int64_t inner = p.inner;
#pragma omp parallel for num_threads(p.num_threads) if (p.num_threads > 1) schedule(static)
  for (int64_t o = 0; o < p.outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const T* xs = x + o * n * inner + i;
      T* ys = y + o * n * inner + i;
      T mx = xs[0];
      for (int64_t a = 1; a < n; ++a) mx = xs[a * inner] > mx ? xs[a * inner] : mx;
      T sum = T(0);
      for (int64_t a = 0; a < n; ++a) {
        const T e = std::exp(xs[a * inner] - mx);
        ys[a * inner] = e;
        sum += e;
      }
      if (p.log) {
        const T log_sum = std::log(sum);
        for (int64_t a = 0; a < n; ++a) ys[a * inner] = (xs[a * inner] - mx) - log_sum;
      } else {
        for (int64_t a = 0; a < n; ++a) ys[a * inner] /= sum;
      }
    }
  }
}

template void Softmax<float>(const SoftmaxParams&, const float*, float*);
template void Softmax<double>(const SoftmaxParams&, const double*, double*);

}  // namespace wbs::kernels::ref
