// Reference Softmax / LogSoftmax over one axis of a tensor viewed as
// [outer, axis_size, inner] (the operator maps ONNX's opset-dependent axis
// semantics onto this view).
#pragma once

#include <cstdint>

namespace wbs::kernels::ref {

struct SoftmaxParams {
  int64_t outer = 1;
  int64_t axis_size = 1;
  int64_t inner = 1;
  bool log = false;     // LogSoftmax
  int num_threads = 1;  // > 1: parallel over outer
};

// For every (o, i): over a in [0, axis_size),
//   softmax:    y = exp(x - max) / sum exp(x - max)
//   logsoftmax: y = (x - max) - log(sum exp(x - max))
// (subtracting the max keeps large inputs finite).
template <typename T>
void Softmax(const SoftmaxParams& p, const T* x, T* y);

extern template void Softmax<float>(const SoftmaxParams&, const float*, float*);
extern template void Softmax<double>(const SoftmaxParams&, const double*, double*);

}  // namespace wbs::kernels::ref
