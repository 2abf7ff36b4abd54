// Reference normalisation kernels: BatchNormalization (inference) and LRN.
#pragma once

#include <cstdint>

namespace wbs::kernels::ref {

struct BatchNormParams {
  int64_t batch = 1;
  int64_t channels = 1;
  int64_t spatial = 1;  // product of the dims after the channel dim
  // false: scale/bias/mean/var have C entries (ONNX spatial = 1, the default).
  // true: they have C * spatial entries, one per feature (old spatial = 0).
  bool per_activation = false;
  double epsilon = 1e-5;
  int num_threads = 1;  // > 1: parallel over (batch, channel)
};

// y = scale * (x - mean) / sqrt(var + epsilon) + bias, with the statistics of
// the element's channel (or feature, when per_activation).
template <typename T>
void BatchNormInference(const BatchNormParams& p, const T* x, const T* scale, const T* bias,
                        const T* mean, const T* var, T* y);

struct LrnParams {
  int64_t batch = 1;
  int64_t channels = 1;
  int64_t spatial = 1;
  int64_t size = 1;  // odd or even; window [c - (size-1)/2, c + ceil((size-1)/2)]
  double alpha = 1e-4;
  double beta = 0.75;
  double bias = 1.0;
  int num_threads = 1;
};

// y[n,c,s] = x[n,c,s] / (bias + alpha / size * sum_{c' in window(c)} x[n,c',s]^2)^beta
template <typename T>
void Lrn(const LrnParams& p, const T* x, T* y);

extern template void BatchNormInference<float>(const BatchNormParams&, const float*,
                                               const float*, const float*, const float*,
                                               const float*, float*);
extern template void BatchNormInference<double>(const BatchNormParams&, const double*,
                                                const double*, const double*, const double*,
                                                const double*, double*);
extern template void Lrn<float>(const LrnParams&, const float*, float*);
extern template void Lrn<double>(const LrnParams&, const double*, double*);

}  // namespace wbs::kernels::ref
