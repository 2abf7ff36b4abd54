// Reference reductions (ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/
// SumSquare) and ArgMax/ArgMin, in ONNX semantics.
//
// Instantiated for float, double and the integer types. Floating-point sums
// accumulate in double; integer sums and products wrap in 64 bits. Max and
// Min propagate NaN. Reducing zero elements gives the op's identity (0 for
// sums, 1 for Prod, lowest/highest for Max/Min; Mean gives 0/0).
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace wbs::kernels::ref {

enum class ReduceOp : int32_t {
  kSum,
  kMean,
  kMax,
  kMin,
  kProd,
  kL1,
  kL2,
  kLogSum,
  kLogSumExp,  // log(sum(exp(x))), computed as max + log(sum(exp(x - max)))
  kSumSquare,
  kCount,
};

// Reduces x (x_shape) over the axes with reduce_axis[d] true. y is dense in
// the order of x_shape with reduced axes removed (equivalently, kept as 1).
template <typename T>
void Reduce(ReduceOp op, const T* x, const Shape& x_shape, const std::vector<bool>& reduce_axis,
            T* y);

// y[o, i] = index along `axis` of the first (or, with select_last, the last)
// maximum (is_max) or minimum of x viewed as [outer, x_shape[axis], inner].
// Precondition: x_shape[axis] > 0.
template <typename T>
void ArgReduce(bool is_max, bool select_last, const T* x, const Shape& x_shape, int axis,
               int64_t* y);

}  // namespace wbs::kernels::ref
