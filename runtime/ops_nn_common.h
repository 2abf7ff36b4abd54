// Helpers shared by the NN operators (reference in ops_nn*.cc, fast paths in
// ops_dnnl.cc) so both backends read a node's attributes and resolve its
// geometry the same way.
#pragma once

#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "ir/graph.h"
#include "kernels/ref/activation.h"
#include "kernels/ref/conv.h"
#include "kernels/ref/pool.h"

namespace wbs::runtime {

// The fused activation of a Conv/ConvTranspose/Gemm/MatMul node from its
// "wbs.activation*" attributes (ir/graph.h); kNone when absent. Errors name
// the node.
Result<kernels::ref::Activation> FusedActivationOf(const ir::Node& node);

// Re-runs the node's shape rule on the actual inputs and checks that every
// present output was allocated with the inferred dtype and shape. Operators
// call it first in Run(), so inputs that differ from the planned shapes are
// an error value rather than an out-of-bounds access.
Status CheckRunShapes(const ir::Node& node, const std::vector<const Tensor*>& inputs,
                      const std::vector<Tensor*>& outputs);

// Unimplemented naming the node and dtype unless `dtype` is f32 or f64.
Status RequireF32OrF64(const ir::Node& node, DType dtype, const char* what);

// Calls f.template operator()<T>() with T = float or double; other dtypes
// must have been rejected by RequireF32OrF64.
template <typename F>
void DispatchF32OrF64(DType dtype, F&& f) {
  if (dtype == DType::kF64)
    f.template operator()<double>();
  else
    f.template operator()<float>();
}

// Resolves a Conv (transpose = false) or ConvTranspose node for concrete X
// and W shapes: channels, group, spatial dims padded to 3 with leading 1s,
// pads from ir/conv_geometry.h, and the fused activation. num_threads is
// left at 1. Unimplemented for more than 3 spatial dims; other errors are
// the shape rule's, naming the node.
Result<kernels::ref::ConvParams> ResolveConvParams(const ir::Node& node, const Shape& x,
                                                   const Shape& w, bool transpose);

// Window-pool parameters (MaxPool, AveragePool and their int8 forms) for X
// of rank >= 3: spatial dims padded to 3 with leading 1s, the window
// geometry of ir/conv_geometry.h, count_include_pad and storage_order.
// InvalidArgument below rank 3, Unimplemented above 3 spatial dims; other
// errors are the shape rule's, naming the node.
Result<kernels::ref::PoolParams> ResolvePoolParams(const ir::Node& node, const Shape& x);

// The input at i, or nullptr when omitted.
inline const Tensor* InputOrNull(const std::vector<const Tensor*>& inputs, size_t i) {
  return i < inputs.size() && inputs[i] && inputs[i]->defined() ? inputs[i] : nullptr;
}

// Registers the operators of ops_nn_math.cc (Gemm, MatMul,
// BatchNormalization, Softmax, LogSoftmax, LRN); called by
// RegisterNnOperators().
void RegisterNnMathOperators();

}  // namespace wbs::runtime
