// oneDNN convolution and deconvolution (ONNX ConvTranspose) primitives for
// one concrete f32 problem: plain ONNX layouts at the boundary unless the
// session negotiated others (SetBoundaryLayouts, core/layout.h), whatever
// layout is fastest inside.
//
// Layout policy. By default activations arrive and leave as plain NC[D]HW,
// the layout the wbs runtime hands between operators. oneDNN's fast
// convolutions want blocked (nChw16c) or channels-last (nhwc) activations,
// and its plain-layout path is an im2col GEMM that is 1.3-2x slower, so the
// primitive reorders the source in and the destination out when the chosen
// implementation asks for it. The candidates differ only in those reorders'
// cost: oneDNN reorders plain<->blocked at ~100 GB/s but plain<->nhwc at
// 5-30 GB/s. Measured on ResNet-50/MobileNet shapes at batch 1, one thread
// (AVX-512, GFLOP/s including reorders; plain / blocked / any):
//   3x3 64->64 @56:   155 / 245 / 236      3x3 512->512 @7:  201 / 237 / 306
//   1x1 64->256 @56:  142 / 213 / 158      1x1 256->1024 @14: 193 / 255 / 135
//   dw 3x3 144 @56 s2:  3 /  31 /  11      7x7 3->64 @224 s2: 108 / ref / 208
// so kAuto tries blocked first for 1x1 and depthwise kernels and lets oneDNN
// choose ("any", usually brgconv on nhwc) otherwise, then the other
// candidates; a candidate for which oneDNN only has its naive reference
// implementation is skipped. At two threads the same order holds (auto is
// within noise of the best layout on every shape above; 3x3 scales 1.9x).
// Weights are always in the layout oneDNN asks for (format any) and are
// packed once by the caller. With layout negotiation the same choice stands
// (it keeps brgconv on nhwc for 3x3 layers between blocked 1x1 layers:
// forcing them blocked to avoid the blocked<->nhwc reorders made ResNet-50
// 13% slower, 39.9 vs 35.4 ms at one thread).
//
// Not a candidate: a stride-1 1x1 conv on plain NCHW is also a matmul
// W[M,C] x X[C,HW] with no reorders, but with the bias as a per-row binary
// post-op it measured 199-252 GFLOP/s, ahead of blocked only at 28x28 and
// larger.
#pragma once

#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "core/layout.h"
#include "core/status.h"
#include "kernels/dnnl/dnnl_common.h"
#include "kernels/ref/conv.h"

namespace wbs::kernels::onednn {

// The activation layout tried first; the others follow in kAuto order, so a
// layout oneDNN cannot serve never turns a supported problem away.
enum class ConvLayout {
  kAuto,     // the heuristic above
  kPlain,    // NC[D]HW inside as well: no activation reorders
  kAny,      // oneDNN's preferred activation layout
  kBlocked,  // nC[D]HW16c with AVX-512, else nC[D]HW8c (NativeBlockedLayout())
  kCount,
};
// "auto", "plain", "any", "blocked".
const char* ConvLayoutName(ConvLayout layout);
// Parses a ConvLayoutName(); false for anything else.
bool ParseConvLayout(const std::string& name, ConvLayout* layout);

class ConvPrimitive {
 public:
  // Builds the primitive for `p` (concrete dims, spatial_rank 1..3, fused
  // activation included) for the current OpenMP thread count; oneDNN sizes
  // its work split at creation, so a primitive is valid for that count only.
  // `transpose` selects deconvolution (ConvTranspose geometry, p.pad_end may
  // be negative). `residual` (convolution only) adds a tensor of the output's
  // dims before the activation: by default as a oneDNN sum post-op, for
  // which Execute() first copies the residual into the destination (in any
  // boundary layout); with `residual_layout` set, as a binary-add post-op
  // that reads it in place in that layout, which must then be the
  // primitive's own destination layout (candidates that compute in another
  // are skipped). Unimplemented when no candidate layout has a non-reference
  // oneDNN implementation or the activation has no post-op form.
  static Result<std::unique_ptr<ConvPrimitive>> Create(
      const ref::ConvParams& p, bool transpose, bool has_bias, ConvLayout layout,
      bool residual = false, ActivationLayout residual_layout = ActivationLayout::kCount);

  // The weight layout the primitive reads. Primitives whose descs compare
  // equal can share packed weights.
  const dnnl::memory::desc& weights_desc() const { return weights_md_; }
  // Packs ONNX-layout weights (Conv [M, C/g, k...]; ConvTranspose
  // [C, M/g, k...]) into weights_desc().
  Result<dnnl::memory> PackWeights(const float* w) const;

  // y = act(conv(x, packed_weights) + bias + residual); x, y and residual
  // are plain ONNX layouts of the dims given at creation (residual the
  // output's), bias is [M] or nullptr (iff !has_bias), residual is given iff
  // the primitive was built with one and may not alias y. Not thread-safe:
  // the primitive owns its staging buffers.
  Status Execute(const float* x, const dnnl::memory& packed_weights, const float* bias, float* y,
                 const float* residual = nullptr);

  // The layouts of x, y and the residual as Execute() sees them: plain unless
  // set here (layout negotiation, core/layout.h). A boundary layout equal to
  // the primitive's own skips that reorder. Preconditions: each fits its
  // tensor's dims; a binary-add residual keeps the layout it was built for.
  Status SetBoundaryLayouts(ActivationLayout x, ActivationLayout y, ActivationLayout residual);
  // The activation layouts the primitive computes in (kCount if none of
  // core/layout.h's).
  ActivationLayout internal_src_layout() const { return LayoutOf(src_md_, src_dims_); }
  ActivationLayout internal_dst_layout() const { return LayoutOf(dst_md_, dst_dims_); }

  // oneDNN's implementation and the activation layout, e.g.
  // "brgconv:avx512_core/any".
  const std::string& impl_name() const { return impl_name_; }
  ConvLayout layout() const { return layout_; }

 private:
  ConvPrimitive() = default;

  std::string context_;  // "conv [1,64,56,56]x[64,64,3,3]" for error messages
  std::string impl_name_;
  ConvLayout layout_ = ConvLayout::kAuto;
  bool transpose_ = false;
  bool has_bias_ = false;
  bool residual_ = false;
  // The binary-add residual's layout, or kCount for the sum post-op.
  ActivationLayout binary_residual_ = ActivationLayout::kCount;
  dnnl::primitive prim_;
  dnnl::memory::desc weights_md_;
  dnnl::memory::desc user_weights_md_;
  std::vector<int64_t> src_dims_, dst_dims_;
  dnnl::memory::desc src_md_, dst_md_;  // the primitive's own activation layouts
  dnnl::memory user_src_, user_dst_, user_residual_, src_, dst_, bias_;
  bool reorder_src_ = false;
  bool reorder_dst_ = false;
  // The sum post-op accumulates into dst, so the residual is copied there
  // first (converted to dst's layout when that differs).
  dnnl::reorder src_reorder_, dst_reorder_, residual_reorder_;
};

}  // namespace wbs::kernels::onednn
