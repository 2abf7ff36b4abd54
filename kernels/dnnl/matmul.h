// oneDNN matmul primitive for one concrete f32 problem; serves ONNX Gemm
// (transposes as strides, alpha as output scale, C as bias or a binary-add
// post-op) and MatMul (batched, broadcasting batch dims).
#pragma once

#include <cstdint>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "kernels/ref/activation.h"

namespace wbs::kernels::onednn {

// Y = act(alpha * (A x B + bias) + addend), batched over the leading dims.
// All dims vectors have the same rank r >= 2. A is [..., M, K] and B
// [..., K, N], each batch dim equal to Y's or 1 (broadcast); Y [..., M, N] is
// dense row-major.
struct MatMulSpec {
  std::vector<int64_t> a_dims, a_strides;  // element strides: transposes are free
  std::vector<int64_t> b_dims, b_strides;
  std::vector<int64_t> y_dims;
  // B is a constant: let oneDNN choose its layout and have the caller pack it
  // once with PackB(); otherwise B is read in place through b_strides.
  bool pack_b = false;
  float alpha = 1.0f;
  bool has_bias = false;  // dense [1, ..., 1, N], added before alpha scales
  // Dense operand of rank r, each dim equal to Y's or 1, added after alpha;
  // empty for none.
  std::vector<int64_t> addend_dims;
  ref::Activation activation;
};

class MatMulPrimitive {
 public:
  // Builds the primitive for the current OpenMP thread count. Unimplemented
  // when oneDNN has no non-reference implementation for `spec` (e.g. an
  // addend broadcast it does not support) or the activation has no post-op.
  static Result<std::unique_ptr<MatMulPrimitive>> Create(const MatMulSpec& spec);

  // The packed layout of B (pack_b only); equal descs can share packed data.
  const dnnl::memory::desc& b_desc() const { return b_md_; }
  // Packs B given with spec.b_strides into b_desc().
  Result<dnnl::memory> PackB(const float* b) const;

  // `b` is read through b_strides unless `packed_b` is given (required iff
  // pack_b). bias / addend must be given iff the spec has them. Not
  // thread-safe: the primitive reuses its memory handles.
  Status Execute(const float* a, const float* b, const dnnl::memory* packed_b, const float* bias,
                 const float* addend, float* y);

  const std::string& impl_name() const { return impl_name_; }

 private:
  MatMulPrimitive() = default;

  std::string context_;
  std::string impl_name_;
  bool pack_b_ = false;
  bool has_bias_ = false;
  bool has_addend_ = false;
  dnnl::primitive prim_;
  dnnl::memory::desc b_md_, user_b_md_;
  dnnl::memory a_, b_, y_, bias_, addend_;
};

}  // namespace wbs::kernels::onednn
