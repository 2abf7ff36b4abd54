// The requantization contract (core/quant_math.h, docs/int8.md): rounding
// ties, negative accumulators, saturation, power-of-two multipliers, the
// shared-shift pair of QAdd and the pools' rounding division.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/quant_math.h"

namespace wbs {
namespace {

// The contract's formula in exact rational arithmetic: round half up of
// acc * M / 2^S (long double holds these products exactly).
int64_t Expected(int64_t acc, Requant r) {
  const long double v = static_cast<long double>(acc) * r.multiplier / std::ldexp(1.0L, r.shift);
  return static_cast<int64_t>(std::floor(v + 0.5L));
}

TEST(QuantMath, QuantizeMultiplierNormalisesTo31Bits) {
  for (double real : {0.5, 0.75, 1e-3, 0.123456789, 0.999999999, 1.5, 3.0}) {
    const Requant r = QuantizeMultiplier(real);
    EXPECT_GE(r.multiplier, 1 << 30) << real;
    EXPECT_NEAR(r.real(), real, real * 1e-9) << real;
  }
  EXPECT_EQ(QuantizeMultiplier(0.5).multiplier, 1 << 30);
  EXPECT_EQ(QuantizeMultiplier(0.5).shift, 31);
  EXPECT_EQ(QuantizeMultiplier(0.0).multiplier, 0);
  EXPECT_EQ(QuantizeMultiplier(-1.0).multiplier, 0);
  EXPECT_EQ(QuantizeMultiplier(NAN).multiplier, 0);
}

TEST(QuantMath, TiesRoundHalfUpAlsoForNegativeAccumulators) {
  const Requant half = PowerOfTwoMultiplier(1);  // y = acc / 2
  EXPECT_EQ(RequantizeRaw(1, half), 1);    // 0.5 -> 1
  EXPECT_EQ(RequantizeRaw(3, half), 2);    // 1.5 -> 2
  EXPECT_EQ(RequantizeRaw(-1, half), 0);   // -0.5 -> 0 (up, not away from zero)
  EXPECT_EQ(RequantizeRaw(-3, half), -1);  // -1.5 -> -1
  EXPECT_EQ(RequantizeRaw(-5, half), -2);  // -2.5 -> -2
  const Requant quarter = PowerOfTwoMultiplier(2);
  EXPECT_EQ(RequantizeRaw(-2, quarter), 0);   // -0.5 -> 0
  EXPECT_EQ(RequantizeRaw(-6, quarter), -1);  // -1.5 -> -1
  EXPECT_EQ(RequantizeRaw(-7, quarter), -2);  // -1.75 -> -2
  EXPECT_EQ(RequantizeRaw(6, quarter), 2);    // 1.5 -> 2
}

TEST(QuantMath, RandomAccumulatorsMatchTheExactFormula) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int32_t> acc(INT32_MIN, INT32_MAX);
  std::uniform_real_distribution<double> real(1e-6, 0.999);
  for (int i = 0; i < 20000; ++i) {
    const Requant r = QuantizeMultiplier(real(rng));
    const int32_t a = acc(rng);
    ASSERT_EQ(RequantizeRaw(a, r), Expected(a, r)) << a << " " << r.multiplier << " " << r.shift;
  }
}

TEST(QuantMath, SaturationAndClamp) {
  EXPECT_EQ(Requantize(100000, QuantizeMultiplier(0.5), 0, -128, 127), 127);
  EXPECT_EQ(Requantize(-100000, QuantizeMultiplier(0.5), 0, -128, 127), -128);
  EXPECT_EQ(Requantize(-10, QuantizeMultiplier(0.5), 3, 0, 255), 0);   // u8 floor
  EXPECT_EQ(Requantize(10, QuantizeMultiplier(0.5), 3, 3, 255), 8);     // fused Relu: lo = zp
  EXPECT_EQ(Requantize(-10, QuantizeMultiplier(0.5), 3, 3, 255), 3);
  // A left shift (POT k < 0) saturates to s32 before the zero point.
  const Requant big = PowerOfTwoMultiplier(-4);
  EXPECT_EQ(big.multiplier, 16);
  EXPECT_EQ(big.shift, 0);
  EXPECT_EQ(RequantizeRaw(INT32_MAX / 2, big), INT32_MAX);
  EXPECT_EQ(RequantizeRaw(INT32_MIN / 2, big), INT32_MIN);
  EXPECT_EQ(RequantizeRaw(-3, big), -48);
}

TEST(QuantMath, PowerOfTwoIsAShiftAndEqualsTheGeneralForm) {
  for (int k = 0; k <= 20; ++k) {
    const Requant pot = PowerOfTwoMultiplier(k);
    const Requant gen = QuantizeMultiplier(std::ldexp(1.0, -k));
    EXPECT_EQ(pot.multiplier, 1);
    EXPECT_EQ(pot.shift, k);
    for (int32_t a : {-1000001, -65, -64, -63, -1, 0, 1, 31, 32, 33, 1000001}) {
      const int64_t want = k == 0 ? a : (static_cast<int64_t>(a) + (int64_t{1} << (k - 1))) >> k;
      EXPECT_EQ(RequantizeRaw(a, pot), want) << a << " k=" << k;
      EXPECT_EQ(RequantizeRaw(a, gen), want) << a << " k=" << k;
    }
  }
}

TEST(QuantMath, PairSharesOneShiftAndRoundsOnce) {
  const RequantPair p = QuantizeMultiplierPair(0.75, 0.3);
  EXPECT_GE(std::max(p.multiplier_a, p.multiplier_b), 1 << 30);
  EXPECT_NEAR(std::ldexp(static_cast<double>(p.multiplier_a), -p.shift), 0.75, 1e-9);
  EXPECT_NEAR(std::ldexp(static_cast<double>(p.multiplier_b), -p.shift), 0.3, 1e-9);
  // Exact case: 0.5*a + 0.25*b, one rounding (half up).
  const RequantPair e = QuantizeMultiplierPair(0.5, 0.25);
  EXPECT_EQ(RequantizeAdd(1, 0, e, 0, -128, 127), 1);    // 0.5 -> 1
  EXPECT_EQ(RequantizeAdd(-1, 0, e, 0, -128, 127), 0);   // -0.5 -> 0
  EXPECT_EQ(RequantizeAdd(1, 2, e, 0, -128, 127), 1);    // 0.5 + 0.5 = 1 exactly
  EXPECT_EQ(RequantizeAdd(1, 1, e, 0, -128, 127), 1);    // 0.75 -> 1
  EXPECT_EQ(RequantizeAdd(-1, -1, e, 10, -128, 127), 9); // -0.75 -> -1, + zp
  EXPECT_EQ(RequantizeAdd(255, 255, e, 0, 0, 127), 127);  // clamp
  // Large ratios still fit: > 1 multipliers.
  const RequantPair g = QuantizeMultiplierPair(3.0, 1.5);
  EXPECT_EQ(RequantizeAdd(10, 10, g, 0, -1000, 1000), 45);
}

TEST(QuantMath, RoundDivHalfUp) {
  EXPECT_EQ(RoundDivHalfUp(5, 2), 3);    // 2.5 -> 3
  EXPECT_EQ(RoundDivHalfUp(-5, 2), -2);  // -2.5 -> -2
  EXPECT_EQ(RoundDivHalfUp(-7, 2), -3);  // -3.5 -> -3
  EXPECT_EQ(RoundDivHalfUp(7, 3), 2);    // 2.33 -> 2
  EXPECT_EQ(RoundDivHalfUp(-7, 3), -2);  // -2.33 -> -2
  EXPECT_EQ(RoundDivHalfUp(-8, 3), -3);  // -2.67 -> -3
  EXPECT_EQ(RoundDivHalfUp(0, 9), 0);
  for (int64_t s = -300; s <= 300; ++s)
    for (int64_t c = 1; c <= 49; c += 6)
      ASSERT_EQ(RoundDivHalfUp(s, c), static_cast<int64_t>(std::floor(s / static_cast<double>(c) + 0.5)))
          << s << "/" << c;
}

}  // namespace
}  // namespace wbs
