// oneDNN pooling primitive for one concrete f32 problem (ONNX MaxPool,
// AveragePool, GlobalMaxPool, GlobalAveragePool): plain ONNX layouts at the
// boundary, whatever layout is fastest inside.
//
// Semantics. oneDNN's pooling matches ONNX when every window has at least one
// tap inside the input (then padding never wins a max and an excluded-padding
// average has a non-zero divisor) and, for averages that count padding, when
// no window reaches past the declared trailing pad (oneDNN divides by the
// full kernel size; ONNX does not count ceil_mode's extra positions).
// Create() declines everything else, so callers can fall back to the
// reference kernel.
//
// Layout policy. Pooling is memory-bound, so a layout change costs about as
// much as the pool itself. With AVX-512 oneDNN's jit pooling mostly reads
// plain NC[D]HW directly, so kAuto tries plain first and then blocked
// nC[D]HW16c with a reorder each way. With AVX2 (oneDNN 2.6) plain gets only
// "simple_nchw", so kAuto lands on blocked nC[D]HW8c, the block its AVX2 jit
// kernels read (nChw16c gets "ref" there). Only oneDNN's jit implementations are used: for some
// plain shapes it offers just its C++ "simple_nchw" kernel, which is slower
// than kernels/ref. Measured at batch 1, one thread, µs (plain / blocked
// including reorders / kernels/ref):
//   max 3x3 s2 p1 [1,64,112,112] (ResNet-50):      145 / 119 / 1984
//   avg 3x3 s1 p1 [1,192,35,35]  (Inception-v3):    64 /  68 / 3651
//   avg 3x3 s1 p1 [1,768,17,17]:                    80 /  76 / 3516
//   max 3x3 s2    [1,192,71,71]:                   139 / 145 / 2254
//   max 3x3 s2    [1,64,147,147]: simple_nchw 7842 / 253 / 3274
// Dilated windows (oneDNN 2.6 has only its reference kernel for them) decline.
#pragma once

#include <cstdint>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "core/layout.h"
#include "core/status.h"
#include "kernels/dnnl/dnnl_common.h"

namespace wbs::kernels::onednn {

enum class PoolAlgorithm {
  kMax,
  kAverageIncludePad,  // ONNX count_include_pad = 1
  kAverageExcludePad,  // ONNX count_include_pad = 0
};

// One pooling problem. All vectors but the dims have one entry per spatial
// dim (1..3); src_dims/dst_dims are [N, C, spatial...].
struct PoolSpec {
  PoolAlgorithm algorithm = PoolAlgorithm::kMax;
  std::vector<int64_t> src_dims, dst_dims;
  std::vector<int64_t> kernel, strides;
  std::vector<int64_t> dilations;  // ONNX convention: 1 = dense
  std::vector<int64_t> pad_begin;
  // The declared (or auto_pad) trailing pad; the ceil_mode extension is
  // separate because averages that count padding must not count it.
  std::vector<int64_t> pad_end;
  std::vector<int64_t> ceil_extra_end;
};

enum class PoolLayout {
  kAuto,          // plain, then blocked
  kPlain,         // NC[D]HW inside as well
  kBlocked,       // nC[D]HW16c with AVX-512, else nC[D]HW8c (NativeBlockedLayout())
  kChannelsLast,  // N[D]HWC inside
  kCount,
};
// "auto", "plain", "blocked", "channels_last".
const char* PoolLayoutName(PoolLayout layout);

class PoolPrimitive {
 public:
  // Builds the primitive for the current OpenMP thread count (oneDNN sizes
  // its work split at creation). Unimplemented when the spec is outside the
  // semantics above or no candidate layout has a non-reference implementation.
  static Result<std::unique_ptr<PoolPrimitive>> Create(const PoolSpec& spec, PoolLayout layout);

  // y = pool(x); x and y are dense arrays of the dims given at creation in
  // the boundary layouts (plain unless set). Not thread-safe: the primitive
  // reuses its memory handles.
  Status Execute(const float* x, float* y);

  // The layouts of x and y as Execute() sees them (layout negotiation,
  // core/layout.h); one equal to the primitive's own skips that reorder.
  // Preconditions: each fits its tensor's dims.
  Status SetBoundaryLayouts(ActivationLayout x, ActivationLayout y);
  // The activation layout the primitive computes in.
  ActivationLayout internal_layout() const { return LayoutOf(src_md_, src_dims_); }

  // oneDNN's implementation and the layout, e.g. "jit:avx512_core/plain".
  const std::string& impl_name() const { return impl_name_; }
  PoolLayout layout() const { return layout_; }

 private:
  PoolPrimitive() = default;

  std::string context_;
  std::string impl_name_;
  PoolLayout layout_ = PoolLayout::kAuto;
  dnnl::primitive prim_;
  std::vector<int64_t> src_dims_, dst_dims_;
  dnnl::memory::desc src_md_, dst_md_;  // the primitive's own layouts
  dnnl::memory user_src_, user_dst_, src_, dst_;
  bool reorder_src_ = false;
  bool reorder_dst_ = false;
  dnnl::reorder src_reorder_, dst_reorder_;
};

}  // namespace wbs::kernels::onednn
