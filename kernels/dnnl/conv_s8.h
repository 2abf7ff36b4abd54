// Dense int8 convolution and Gemm through oneDNN, in two modes.
//
// kExact — the runtime's dense int8 path, bit-exact with docs/int8.md:
//   oneDNN only accumulates. The input is copied into a channels-last u8
//   buffer padded with z_x (an s8 input gets its top bit flipped: u8 with
//   zero point z_x + 128), so padding contributes exactly 0, and oneDNN runs
//   an unpadded u8 x s8 -> s32 convolution (no scales, no zero points, no
//   bias). Our epilogue then adds B_q - z_x * sum(W) per channel and applies
//   Requantize (core/quant_math.h) into plain NCHW. oneDNN's own
//   requantization (f32 scales, round-to-nearest-even) differs from the
//   contract in the last bit, so it is never used for results.
//   Exactness needs an implementation that accumulates in s32: oneDNN's
//   int8 jit kernels do only with VNNI (vpdpbusd). Without it (AVX2,
//   AVX-512 before VNNI) they sum each u8 x s8 pair with vpmaddubsw, which
//   saturates at int16 (255 * 127 * 2 > 32767), so kExact then walks
//   oneDNN's implementation list to its reference int8 convolution (s32
//   accumulation: exact, but naive and slow; the runtime keeps group-1
//   layers on the int8 plan there, runtime/ops_quant_fast.cc).
//
// kNative — the benchmark baseline only: oneDNN's fastest int8 configuration
//   (u8 src, s8 weights, s32 bias, u8/s8 dst, per-channel f32 output scales
//   = M * 2^-S, the clamp as an eltwise post-op, no zero points, activation
//   layouts chosen by oneDNN, weights pre-packed), executed on buffers
//   already in its layouts: exactly what a oneDNN-based int8 runtime would
//   spend per layer. Its outputs follow oneDNN's rounding, not the contract.
//
// Gemm (x [N, K], W [M, K]) is the 1x1 conv of an [N, K, 1, 1] input.
#pragma once

#include <cstdint>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "kernels/ref/conv.h"
#include "kernels/sparse/s8_bsr_conv_plan.h"

namespace wbs::kernels::onednn {

enum class S8ConvMode { kExact, kNative };

// Whether oneDNN's int8 jit kernels accumulate exactly on this machine: its
// effective ISA (dnnl::get_effective_cpu_isa(), capped by
// ONEDNN_MAX_CPU_ISA) includes AVX-512 VNNI. When false, kExact runs
// oneDNN's reference int8 implementation. `why` (optional) gets a one-line
// reason for logs.
bool OneDnnS8JitIsExact(std::string* why = nullptr);

class S8ConvPrimitive {
 public:
  // p: 1-D/2-D conv, any groups; w: s8 [M, C/group, kh, kw] (copied and
  // packed now); q: the int8 parameters (sparse::S8QuantParams). Built for
  // the current OpenMP thread count.
  static Result<std::unique_ptr<S8ConvPrimitive>> Create(const ref::ConvParams& p, const int8_t* w,
                                                         const sparse::S8QuantParams& q,
                                                         S8ConvMode mode);
  // y [N, M, OH, OW] = QConv(x [N, C, H, W]); kExact only. x_quad4 / y_quad4:
  // x / y in nChw4c (core/layout.h kQuad4; C / M a multiple of 4, group 1),
  // else plain. The padded copy and the epilogue do the layout change anyway,
  // so either costs nothing extra.
  Status Run(const uint8_t* x, uint8_t* y, bool x_quad4 = false, bool y_quad4 = false);
  // One oneDNN execution on internal buffers (kNative: the benchmark; kExact:
  // the s32 convolution alone).
  Status RunPrimitiveOnly();
  const std::string& impl_name() const { return impl_; }

 private:
  S8ConvPrimitive() = default;
  void PadInput(const uint8_t* x, int64_t n, bool x_quad4);

  ref::ConvParams p_;
  S8ConvMode mode_ = S8ConvMode::kExact;
  std::string impl_;
  dnnl::primitive prim_;
  dnnl::memory src_, weights_, bias_, dst_;
  // kExact epilogue.
  std::vector<int32_t> bias_eff_, multiplier_, shift_;
  // Its clamp-first form (conv_s8.cc, FastEpilogue), when every channel
  // qualifies: acc clamped to [acc_lo, acc_hi], then (acc * M + rzp) >> S.
  bool fast_epilogue_ = false;
  std::vector<int32_t> acc_lo_, acc_hi_;
  std::vector<int64_t> mul64_, rzp_, shift64_;
  int32_t zy_ = 0, lo_ = 0, hi_ = 255;
  bool x_signed_ = false;
  uint8_t zx_u8_ = 0;
  int64_t hp_ = 1, wp_ = 1;  // padded input extent
};

}  // namespace wbs::kernels::onednn
