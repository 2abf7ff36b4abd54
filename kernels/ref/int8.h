// Scalar integer reference kernels of the int8 ops, the executable form of
// docs/int8.md: every fast int8 kernel, the AIE compiler and the simulator
// must reproduce their outputs bit for bit. Requantization is
// core/quant_math.h. Layouts are ONNX (as conv.h / pool.h).
#pragma once

#include <cstdint>

#include "core/quant_math.h"
#include "kernels/ref/conv.h"
#include "kernels/ref/pool.h"

namespace wbs::kernels::ref {

// The output stage of QConv/QGemm per output channel c:
//   8-bit: y = clamp(RequantizeRaw(acc, requant[c]) + zero_point, lo, hi)
//   f32:   y = (float)acc * dequant_scale[c]
struct QuantOutput {
  const Requant* requant = nullptr;       // per channel, 8-bit outputs
  const float* dequant_scale = nullptr;   // per channel, f32 outputs
  int32_t zero_point = 0;
  int32_t lo = 0;
  int32_t hi = 255;
};

// acc = bias[c] + sum over taps inside the input of w * (x - x_zero_point)
// (docs/int8.md section 3); p.activation is ignored (fused activations are
// the clamp bounds). w [M, C/group, k...] int8, bias [M] int32 or nullptr.
// TX: uint8_t or int8_t; TY: uint8_t, int8_t or float.
template <typename TX, typename TY>
void QConv(const ConvParams& p, const TX* x, int32_t x_zero_point, const int8_t* w,
           const int32_t* bias, const QuantOutput& out, TY* y);

// x [M, K], w [N, K], bias [N] or nullptr, y [M, N]:
//   acc[m, n] = bias[n] + sum_k w[n, k] * (x[m, k] - x_zero_point).
template <typename TX, typename TY>
void QGemm(int64_t m, int64_t n, int64_t k, const TX* x, int32_t x_zero_point, const int8_t* w,
           const int32_t* bias, const QuantOutput& out, TY* y, int num_threads);

// Average pools on 8-bit values with the input's parameters:
//   y = clamp(zp + RoundDivHalfUp(sum of (x - zp) over counted taps, count), lo, hi)
// where the count is that of AveragePool in pool.h (a window with count 0
// yields zp).
template <typename T>
void QAveragePool(const PoolParams& p, const T* x, int32_t zero_point, T* y);
template <typename T>
void QGlobalAveragePool(int64_t planes, int64_t plane_size, const T* x, int32_t zero_point, T* y);

// y[i] = clamp(zy + RequantizeRaw(x[i] - zx, r), lo, hi): one input of
// QConcat (and any 8-bit rescale).
template <typename TX, typename TY>
void QRescale(int64_t n, const TX* x, int32_t zx, Requant r, int32_t zy, int32_t lo, int32_t hi,
              TY* y);

}  // namespace wbs::kernels::ref
