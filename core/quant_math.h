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

// A power-of-two scale 2^-k: (1, k) for k in [0, 62]; k < 0 is a left shift
// (2^-k, 0), saturated at 2^30; k > 62 is clamped to 62.
inline Requant PowerOfTwoMultiplier(int k) {
  if (k < 0) return {static_cast<int32_t>(int64_t{1} << std::min(-k, 30)), 0};
  return {1, std::min(k, 62)};
}

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

// Two multipliers sharing one shift (QAdd, docs/int8.md): m_a ~= Ma * 2^-S,
// m_b ~= Mb * 2^-S, the larger of Ma, Mb in [2^30, 2^31). Both must be > 0.
struct RequantPair {
  int32_t multiplier_a = 0;
  int32_t multiplier_b = 0;
  int32_t shift = 0;
};

inline RequantPair QuantizeMultiplierPair(double real_a, double real_b) {
  const double big = std::max(real_a, real_b);
  if (!(real_a > 0) || !(real_b > 0) || !std::isfinite(big)) return {0, 0, 0};
  int exp = 0;
  std::frexp(big, &exp);  // big = frac * 2^exp, frac in [0.5, 1)
  int shift = std::min(31 - exp, 62);
  for (;;) {
    const int64_t ma = std::llround(std::ldexp(real_a, shift));
    const int64_t mb = std::llround(std::ldexp(real_b, shift));
    if (shift >= 0 && std::max(ma, mb) < (int64_t{1} << 31)) {
      return {static_cast<int32_t>(ma), static_cast<int32_t>(mb), shift};
    }
    if (shift <= 0) return {0x7fffffff, 0x7fffffff, 0};  // absurdly large ratios
    --shift;
  }
}

// q = clamp(((a - za) * Ma + (b - zb) * Mb + 2^(S-1)) >> S + zy, lo, hi):
// one rounding for the sum of two rescaled 8-bit operands.
inline int32_t RequantizeAdd(int32_t a_minus_za, int32_t b_minus_zb, RequantPair r,
                             int32_t zero_point, int32_t lo, int32_t hi) {
  int64_t p = static_cast<int64_t>(a_minus_za) * r.multiplier_a +
              static_cast<int64_t>(b_minus_zb) * r.multiplier_b;
  if (r.shift > 0) p = (p + (int64_t{1} << (r.shift - 1))) >> r.shift;
  return static_cast<int32_t>(std::clamp<int64_t>(p + zero_point, lo, hi));
}

// round(s / c) with ties up, c > 0: floor((2s + c) / 2c) (average pools).
inline int32_t RoundDivHalfUp(int64_t s, int64_t c) {
  const int64_t num = 2 * s + c, den = 2 * c;
  int64_t q = num / den;
  if ((num % den != 0) && (num < 0)) --q;  // floor division
  return static_cast<int32_t>(q);
}

// Offline rounding of scales, biases and clip bounds: half away from zero.
inline int64_t RoundHalfAway(double v) { return std::llround(v); }

}  // namespace wbs
