// Integer reference operators of the quantized IR (docs/int8.md), and the
// resolution of a node's quantization parameters into the integers the
// kernels take, shared with the fast int8 operators so every backend
// requantizes with exactly the same (M, S) pairs and clamp bounds.
//
// Quantization parameters come from the QuantParams of the node's input and
// output Values (ir/graph.h, ir/schemas_quant.cc): activations per tensor,
// QConv/QGemm weights per output channel (axis 0) or per tensor.
#pragma once

#include <vector>

#include "core/quant_math.h"
#include "core/status.h"
#include "ir/graph.h"
#include "kernels/ref/pool.h"

namespace wbs::runtime {

// The 8-bit activation types and their integer ranges.
inline bool Is8Bit(DType t) { return t == DType::kU8 || t == DType::kI8; }
inline int32_t TypeMin(DType t) { return t == DType::kU8 ? 0 : -128; }
inline int32_t TypeMax(DType t) { return t == DType::kU8 ? 255 : 127; }

// One per-tensor 8-bit tensor: its dtype, scale and zero point.
struct TensorQuant {
  DType dtype = DType::kU8;
  float scale = 1.f;
  int32_t zero_point = 0;
  bool power_of_two = false;
};

// Per-tensor parameters of `v` (an error naming the node when it has none,
// is per-axis, or is not 8-bit).
Result<TensorQuant> PerTensorQuant(const ir::Node& node, const ir::Value* v, const char* what);

// Everything a QConv / QGemm kernel needs besides the tensors.
struct QLinearQuant {
  TensorQuant x;
  bool float_output = false;         // Y is f32: dequant_scale instead of requant
  TensorQuant y;                     // 8-bit output (unused when float_output)
  std::vector<Requant> requant;      // per output channel
  std::vector<float> dequant_scale;  // per output channel: (f32)(s_x * s_w[c])
  int32_t lo = 0, hi = 255;          // clamp bounds incl. the fused Relu/Clip
};

// Resolves a QConv or QGemm node with `channels` output channels: multipliers
// M_c = QuantizeMultiplier(s_x * s_w[c] / s_y) (PowerOfTwoMultiplier when
// every scale is a power of two), bounds from the type and "wbs.activation".
Result<QLinearQuant> ResolveQLinearQuant(const ir::Node& node, int64_t channels);

// Clamp bounds of an 8-bit type with an optional fused Relu/Clip
// ("wbs.activation" attributes) for output parameters `y`.
Result<std::pair<int32_t, int32_t>> QuantClampBounds(const ir::Node& node, const TensorQuant& y);

// QAdd: both inputs rescaled to the output's parameters with one rounding
// (RequantizeAdd), clamp bounds incl. a fused Relu/Clip.
struct QAddQuant {
  TensorQuant a, b, y;
  RequantPair r;
  int32_t lo = 0, hi = 255;
};
Result<QAddQuant> ResolveQAddQuant(const ir::Node& node);

// QConcat: per input its parameters and the multiplier to the output's.
struct QConcatQuant {
  TensorQuant y;
  std::vector<TensorQuant> in;
  std::vector<Requant> r;
};
Result<QConcatQuant> ResolveQConcatQuant(const ir::Node& node);

// The multiplier for a real ratio; exact shift form when `power_of_two`.
Requant RatioMultiplier(double ratio, bool power_of_two);

}  // namespace wbs::runtime
