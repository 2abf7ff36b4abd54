// oneDNN eltwise and binary primitives for one concrete f32 problem: the
// elementwise ops CNNs run outside their convolutions (activations that
// could not be fused, residual Adds, per-channel scales), on dense row-major
// tensors.
//
// Unary ops map to an eltwise algorithm only where oneDNN computes the ONNX
// definition (up to its approximations of exp/log/tanh, within 1e-6
// relative); binary ops are numpy-broadcast with the second operand's dims
// each equal to the first's or 1. Create() declines (Unimplemented) what
// oneDNN serves only with its naive reference implementation.
#pragma once

#include <cstdint>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "kernels/ref/elementwise.h"

namespace wbs::kernels::onednn {

// An eltwise algorithm with its parameters.
struct UnaryAlgorithm {
  dnnl::algorithm alg = dnnl::algorithm::eltwise_relu;
  float alpha = 0.0f;
  float beta = 0.0f;
};

// The oneDNN form of ref::Unary(op, p); false when oneDNN has no exact one.
bool UnaryAlgorithmFor(ref::UnaryOp op, const ref::UnaryParams& p, UnaryAlgorithm* out);
// ONNX Clip to [lo, hi]; callers decline lo > hi (ONNX then yields hi
// everywhere, oneDNN's clip does not).
UnaryAlgorithm ClipAlgorithm(float lo, float hi);

class UnaryPrimitive {
 public:
  // y[i] = f(x[i]) over `numel` elements, for the current OpenMP thread count.
  static Result<std::unique_ptr<UnaryPrimitive>> Create(const UnaryAlgorithm& f, int64_t numel);
  // x may equal y. Not thread-safe: the primitive reuses its memory handles.
  Status Execute(const float* x, float* y);
  const std::string& impl_name() const { return impl_name_; }

 private:
  UnaryPrimitive() = default;
  std::string context_;
  std::string impl_name_;
  dnnl::primitive prim_;
  dnnl::memory src_, dst_;
};

class BinaryPrimitive {
 public:
  // y = a op b for op in {kAdd, kSub, kMul, kDiv}; y has a's dims; b has the
  // same rank (<= 6) with each dim equal to a's or 1.
  static Result<std::unique_ptr<BinaryPrimitive>> Create(ref::BinaryOp op,
                                                         const std::vector<int64_t>& a_dims,
                                                         const std::vector<int64_t>& b_dims);
  // y may equal a. Not thread-safe: the primitive reuses its memory handles.
  Status Execute(const float* a, const float* b, float* y);
  const std::string& impl_name() const { return impl_name_; }

 private:
  BinaryPrimitive() = default;
  std::string context_;
  std::string impl_name_;
  dnnl::primitive prim_;
  dnnl::memory a_, b_, y_;
};

}  // namespace wbs::kernels::onednn
