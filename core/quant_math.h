// The integer requantization contract (docs/int8.md): how an int32
// accumulator becomes an 8-bit value. Every int8 path — the integer
// reference graph, the VNNI kernels, the AIE compiler's COMP and the
// simulator — calls these functions (or reproduces them bit for bit), so
// results are identical on every machine.
//
// A real multiplier m = s_in * s_w / s_out (0 < m < 2^31 ... in practice < 1)
// is stored as (M, S): m ~= M * 2^-S, M in [2^30, 2^31) (31 significant
// bits) and S in [1, 62]; a power-of-two scale ("fix position") is M = 1,
// S = k exactly.
//   y    = (int64(acc) * M + 2^(S-1)) >> S     (arithmetic shift: round half up)
//   q    = clamp(y + zero_point, lo, hi)
// acc already holds the int32 bias. Fused ReLU: lo = max(lo, zero_point);
// fused Clip(a, b): lo/hi from quantize(a), quantize(b).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace wbs {

struct Requant {
  int32_t multiplier = 1;  // M > 0
  int32_t shift = 0;       // S in [0, 62]; S = 0 means y = acc * M
  double real() const { return std::ldexp(static_cast<double>(multiplier), -shift); }
};

// The closest (M, S) to `real` (> 0, finite) with M < 2^31 and S <= 62.
// real <= 0, non-finite or too small to represent returns {0, 0} -> y = 0.
inline Requant QuantizeMultiplier(double real) {
  if (!(real > 0) || !std::isfinite(real)) return {0, 0};
  int exp = 0;
  const double frac = std::frexp(real, &exp);  // real = frac * 2^exp, frac in [0.5, 1)
  int64_t m = static_cast<int64_t>(std::llround(frac * 2147483648.0));  // frac * 2^31
  int shift = 31 - exp;
  if (m == (int64_t{1} << 31)) {
    m >>= 1;
    --shift;
  }
  while (shift > 62 && m > 0) {  // too small: lose precision
    m >>= 1;
    --shift;
  }
  if (shift < 0) return {0x7fffffff, 0};  // saturate absurdly large multipliers
  if (m == 0) return {0, 0};
  return {static_cast<int32_t>(m), shift};
}

// A power-of-two scale 2^-k (k >= 0).
inline Requant PowerOfTwoMultiplier(int k) { return {1, std::clamp(k, 0, 62)}; }

inline int32_t RequantizeRaw(int32_t acc, Requant r) {
  const int64_t p = static_cast<int64_t>(acc) * r.multiplier;
  if (r.shift == 0) return static_cast<int32_t>(std::clamp<int64_t>(p, INT32_MIN, INT32_MAX));
  const int64_t y = (p + (int64_t{1} << (r.shift - 1))) >> r.shift;
  return static_cast<int32_t>(std::clamp<int64_t>(y, INT32_MIN, INT32_MAX));
}

// q = clamp(round(acc * m) + zero_point, lo, hi), e.g. lo/hi = -128/127 (s8)
// or 0/255 (u8).
inline int32_t Requantize(int32_t acc, Requant r, int32_t zero_point, int32_t lo, int32_t hi) {
  const int64_t y = static_cast<int64_t>(RequantizeRaw(acc, r)) + zero_point;
  return static_cast<int32_t>(std::clamp<int64_t>(y, lo, hi));
}

}  // namespace wbs
