// Calibration observers on known distributions (quant/observer.h) and the
// activation / weight parameter rules (quant/ptq.h).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "quant/observer.h"
#include "quant/ptq.h"

namespace wbs::quant {
namespace {

Observer Observe(ObserverKind k, const std::vector<float>& x, double pct = 99.99) {
  Observer o(k, pct);
  o.ObserveRange(x.data(), static_cast<int64_t>(x.size()));
  if (o.needs_histogram()) o.ObserveHistogram(x.data(), static_cast<int64_t>(x.size()));
  return o;
}

std::vector<float> Uniform(float lo, float hi, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

TEST(QuantObserver, MinMaxIsTheRangeAndContainsZero) {
  const Observer o = Observe(ObserverKind::kMinMax, {0.5f, 2.f, 1.f});
  EXPECT_EQ(o.Range().lo, 0.f);
  EXPECT_EQ(o.Range().hi, 2.f);
  const Observer n = Observe(ObserverKind::kMinMax, {-3.f, -1.f});
  EXPECT_EQ(n.Range().lo, -3.f);
  EXPECT_EQ(n.Range().hi, 0.f);
}

TEST(QuantObserver, PercentileCutsRareOutliers) {
  std::vector<float> x = Uniform(0.f, 1.f, 100000, 1);
  x.push_back(50.f);  // one outlier in 1e5
  const Observer mm = Observe(ObserverKind::kMinMax, x);
  const Observer p = Observe(ObserverKind::kPercentile, x, 99.9);
  EXPECT_EQ(mm.Range().hi, 50.f);
  EXPECT_LT(p.Range().hi, 1.1f);
  EXPECT_GT(p.Range().hi, 0.95f);
  EXPECT_NEAR(p.ClippedFraction(p.Range()), 1e-3, 1e-3);
  // Symmetric data: both tails cut.
  std::vector<float> s = Uniform(-1.f, 1.f, 100000, 2);
  s.push_back(-40.f);
  const ActRange r = Observe(ObserverKind::kPercentile, s, 99.9).Range();
  EXPECT_GT(r.lo, -1.1f);
  EXPECT_LT(r.lo, -0.9f);
}

TEST(QuantObserver, MseAndEntropyClipLongTailsButNotUniformData) {
  // Uniform data: clipping only hurts, so MSE keeps (almost) the full range.
  const ActRange u = Observe(ObserverKind::kMse, Uniform(0.f, 1.f, 50000, 3)).Range();
  EXPECT_GT(u.hi, 0.95f);
  // Laplace-like data with a long tail: both clip well below the maximum.
  std::mt19937_64 rng(4);
  std::exponential_distribution<float> e(1.f);
  std::vector<float> x(200000);
  for (float& v : x) v = e(rng);
  const Observer mm = Observe(ObserverKind::kMinMax, x);
  const ActRange m = Observe(ObserverKind::kMse, x).Range();
  const ActRange k = Observe(ObserverKind::kEntropy, x).Range();
  // MSE: h^2 / (255^2 * 12) + 2 e^-h is least at h e^h = 255^2 * 6, h ~ 10.9.
  EXPECT_GT(m.hi, 9.5f);
  EXPECT_LT(m.hi, 11.5f);
  EXPECT_LT(m.hi, 0.97f * mm.max());
  EXPECT_LT(k.hi, 0.9f * mm.max());
  EXPECT_GT(k.hi, 3.f);  // but not absurdly: e^-3 of the mass is above 3
}

TEST(QuantObserver, ExactZerosDoNotDriveMseOrEntropy) {
  // A ReLU output: half exact zeros, half |N(0, 1)|. The zero spike costs
  // nothing (0 is exact), so the ranges must equal those of the non-zero
  // half alone; and KL must not collapse to the narrowest candidate (1/8 of
  // the maximum), which it did when the spike was in the histogram.
  std::mt19937_64 rng(5);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> pos(100000), relu;
  for (float& v : pos) v = std::fabs(g(rng));
  relu = pos;
  relu.resize(2 * pos.size(), 0.f);
  for (ObserverKind k : {ObserverKind::kMse, ObserverKind::kEntropy}) {
    const Observer with = Observe(k, relu);
    const Observer without = Observe(k, pos);
    EXPECT_EQ(with.zeros(), 100000.0) << ObserverName(k);
    EXPECT_EQ(with.Range().hi, without.Range().hi) << ObserverName(k);
    EXPECT_EQ(with.Range().lo, 0.f) << ObserverName(k);
    // The half-normal's 99.9th percentile is 3.3; a 256-level grid clips
    // at most a small tail.
    EXPECT_GT(with.Range().hi, 2.5f) << ObserverName(k);
    EXPECT_LE(with.Range().hi, with.max()) << ObserverName(k);
    EXPECT_LT(with.ClippedFraction(with.Range()), 0.01) << ObserverName(k);
  }
  // Percentiles still count the zeros: the 99th percentile of the mixture is
  // the 98th of the half-normal (2.33), not its 99th (2.58).
  const ActRange p = Observe(ObserverKind::kPercentile, relu, 99.0).Range();
  EXPECT_NEAR(p.hi, 2.33f, 0.05f);
}

TEST(QuantObserver, ParseNames) {
  EXPECT_EQ(*ParseObserver("entropy"), ObserverKind::kEntropy);
  EXPECT_FALSE(ParseObserver("kl").ok());
}

TEST(QuantParams, ActivationParamsU8S8AndPowerOfTwo) {
  QuantParams u = ActivationParams({0.f, 2.55f}, DType::kU8, false);
  EXPECT_EQ(u.zero_point[0], 0);
  EXPECT_FLOAT_EQ(u.scale[0], 0.01f);
  QuantParams s = ActivationParams({-1.f, 2.f}, DType::kI8, false);
  EXPECT_NEAR(s.scale[0], 3.f / 255, 1e-7);
  EXPECT_EQ(s.zero_point[0], -43);  // -128 + round(85)
  QuantParams su = ActivationParams({-1.f, 3.f}, DType::kU8, false);
  EXPECT_EQ(su.zero_point[0], 64);
  // POT: zero point 0, scale a power of two covering the range.
  QuantParams p = ActivationParams({0.f, 3.f}, DType::kU8, true);
  EXPECT_EQ(p.zero_point[0], 0);
  EXPECT_EQ(p.scale[0], 1.f / 64);  // 255/64 = 3.98 >= 3 > 255/128
  QuantParams ps = ActivationParams({-3.f, 1.f}, DType::kU8, true);
  EXPECT_EQ(static_cast<DType>(ps.dtype), DType::kI8);  // negative values need s8
  EXPECT_EQ(ps.scale[0], 1.f / 32);                     // 128/32 = 4 >= 3
}

TEST(QuantParams, WeightsPerChannelSymmetricZerosStayZero) {
  Tensor w = Tensor::FromVector<float>({3, 4}, {0.f, 0.5f, -1.f, 0.25f,  //
                                                0.f, 0.f, 0.f, 0.f,      //
                                                -0.f, 1e-3f, 2.2e-3f, -4e-3f});
  std::vector<float> s;
  Tensor q = QuantizeWeightPerChannel(w, false, &s);
  EXPECT_FLOAT_EQ(s[0], 1.f / 127);
  EXPECT_EQ(s[1], 1.f);  // all-zero channel
  EXPECT_FLOAT_EQ(s[2], 4e-3f / 127);
  const std::vector<int32_t> v = q.ToVector<int32_t>();
  EXPECT_EQ(v, (std::vector<int32_t>{0, 64, -127, 32, 0, 0, 0, 0, 0, 32, 70, -127}));
  std::vector<float> sp;
  Tensor qp = QuantizeWeightPerChannel(w, true, &sp);
  EXPECT_EQ(sp[0], 1.f / 64);  // 127/64 >= 1 > 127/128
  EXPECT_EQ(qp.ToVector<int32_t>()[2], -64);
}

}  // namespace
}  // namespace wbs::quant
