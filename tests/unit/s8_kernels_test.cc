// Every int8 block-sparse kernel the CPU can run (kernels/sparse/s8_dispatch.h),
// through S8BsrConvPlan / S8BsrGemmPlan, and the oneDNN int8 conv
// (kernels/ref/int8.h) with exact equality: random geometries (kernel sizes,
// strides, dilations, asymmetric pads, channel tails, batch 2), the zoo's
// layer shapes (ResNet-50, MobileNet-v2 pointwise, Inception 1x7/7x1,
// fmnist_resnet; spatial size capped so the scalar reference stays fast),
// u8 and s8 inputs with any zero point, fused clamps, per-channel
// requantization incl. S = 0 and power-of-two multipliers, both layouts,
// 1 and 2 threads, sparsity 0..100%. The seed is printed; WBS_TEST_SEED=<n>
// replays it. Run under WBS_ISA_CAP=avx2 / ref to check dispatch fallbacks.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/quant_math.h"
#include "kernels/dnnl/conv_s8.h"
#include "kernels/ref/int8.h"
#include "kernels/sparse/s8_bsr_conv_plan.h"
#include "kernels/sparse/s8_dispatch.h"

namespace wbs {
namespace {

namespace ks = kernels::sparse;
namespace kref = kernels::ref;
using Rng = std::mt19937;

uint32_t Seed() {
  static const uint32_t seed = [] {
    const char* env = std::getenv("WBS_TEST_SEED");
    const uint32_t s =
        env ? static_cast<uint32_t>(std::strtoul(env, nullptr, 10)) : std::random_device{}();
    std::printf("s8 kernel tests: seed %u (WBS_TEST_SEED=%u replays)\n", s, s);
    return s;
  }();
  return seed;
}

int Uniform(Rng& rng, int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }

std::vector<const ks::S8BsrConvKernel*> ConvKernelsFor(int br) {
  std::vector<const ks::S8BsrConvKernel*> out;
  for (const auto& k : ks::S8BsrConvKernels())
    if (k.isa <= ks::S8DetectedIsa() && (k.br == 0 || k.br == br)) out.push_back(&k);
  return out;
}
std::vector<const ks::S8BsrGemmKernel*> GemmKernelsFor(int br, int bc) {
  std::vector<const ks::S8BsrGemmKernel*> out;
  for (const auto& k : ks::S8BsrGemmKernels())
    if (k.isa <= ks::S8DetectedIsa() && (k.br == 0 || k.br == br) && (k.bc == 0 || k.bc == bc))
      out.push_back(&k);
  return out;
}

// Random s8 weight [m, c, taps] in [-127, 127] with exactly round(sparsity *
// blocks) zero br x bc blocks; returns the mask.
BlockMask RandomWeight(int64_t m, int64_t c, int64_t taps, int br, int bc, double sparsity,
                       Rng& rng, std::vector<int8_t>* w) {
  BlockMask mask;
  mask.block_rows = br;
  mask.block_cols = bc;
  mask.rows = (m + br - 1) / br;
  mask.cols = (c + bc - 1) / bc;
  const int64_t nb = mask.rows * mask.cols;
  std::vector<int64_t> order(static_cast<size_t>(nb));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  mask.keep.assign(static_cast<size_t>(nb), 1);
  const auto zeros = static_cast<int64_t>(sparsity * double(nb) + 0.5);
  for (int64_t i = 0; i < zeros; ++i) mask.keep[static_cast<size_t>(order[i])] = 0;
  w->resize(static_cast<size_t>(m * c * taps));
  for (int64_t o = 0; o < m; ++o)
    for (int64_t i = 0; i < c; ++i)
      for (int64_t t = 0; t < taps; ++t)
        (*w)[static_cast<size_t>((o * c + i) * taps + t)] =
            mask.Get(o / br, i / bc) ? static_cast<int8_t>(Uniform(rng, -127, 127)) : 0;
  return mask;
}

struct Quant {
  ks::S8QuantParams q;
  std::vector<Requant> per_channel;  // q.requant expanded to [M]
};

// Random but valid int8 parameters: zero points anywhere in range, clamps
// from the type range or a fused Relu/Clip, per-channel multipliers that
// map a typical accumulator to the 8-bit range plus some S = 0 and
// power-of-two ones.
Quant RandomQuant(int64_t m, int64_t k, Rng& rng) {
  Quant r;
  ks::S8QuantParams& q = r.q;
  q.x_signed = Uniform(rng, 0, 1) == 1;
  q.x_zero_point = q.x_signed ? Uniform(rng, -128, 127) : Uniform(rng, 0, 255);
  const bool y_signed = Uniform(rng, 0, 1) == 1;
  const int tmin = y_signed ? -128 : 0, tmax = y_signed ? 127 : 255;
  q.y_zero_point = Uniform(rng, tmin, tmax);
  q.lo = tmin;
  q.hi = tmax;
  switch (Uniform(rng, 0, 2)) {
    case 1:  // Relu
      q.lo = std::max(tmin, q.y_zero_point);
      break;
    case 2:  // Clip
      q.lo = Uniform(rng, tmin, tmax);
      q.hi = Uniform(rng, q.lo, tmax);
      break;
    default:
      break;
  }
  if (Uniform(rng, 0, 3) > 0) {
    q.bias.resize(static_cast<size_t>(m));
    for (auto& b : q.bias) b = Uniform(rng, -200000, 200000);
  }
  // The accumulator's spread is ~ 127 * 128 * sqrt(k); scale it to ~ +-100.
  const double typical = 127.0 * 128.0 * std::sqrt(double(std::max<int64_t>(k, 1)));
  // Half the layers use only ordinary multipliers (< 1, S in [32, 53]): the
  // kernels' fast epilogue (S8Epilogue::fast) then applies to every channel.
  // A quarter use only power-of-two scales (M = 1, the AIE "fix position"
  // mode): S8Epilogue::shift_only.
  const int mode = Uniform(rng, 0, 3);
  const bool ordinary = mode <= 1, pot = mode == 2;
  auto one = [&]() -> Requant {
    if (pot) return PowerOfTwoMultiplier(Uniform(rng, 0, 16));
    const int kind = ordinary ? 2 : Uniform(rng, 0, 9);
    if (kind == 0) return PowerOfTwoMultiplier(Uniform(rng, -3, 20));  // k < 0: (2^-k, 0)
    if (kind == 1) return {Uniform(rng, 0, 3), 0};  // S = 0: y = acc * M, saturating
    return QuantizeMultiplier(100.0 / typical * std::exp(Uniform(rng, -100, 100) / 100.0));
  };
  if (Uniform(rng, 0, 4) == 0) {
    q.requant = {one()};
    r.per_channel.assign(static_cast<size_t>(m), q.requant[0]);
  } else {
    for (int64_t i = 0; i < m; ++i) q.requant.push_back(one());
    r.per_channel = q.requant;
  }
  return r;
}

std::vector<uint8_t> RandomBytes(int64_t n, Rng& rng) {
  std::vector<uint8_t> v(static_cast<size_t>(n));
  for (auto& b : v) b = static_cast<uint8_t>(Uniform(rng, 0, 255));
  return v;
}

std::vector<uint8_t> Reference(const kref::ConvParams& p, const Quant& qq,
                               const std::vector<uint8_t>& x, const std::vector<int8_t>& w) {
  const ks::S8QuantParams& q = qq.q;
  kref::QuantOutput out;
  out.requant = qq.per_channel.data();
  out.zero_point = q.y_zero_point;
  out.lo = q.lo;
  out.hi = q.hi;
  const int64_t ysize = p.batch * p.out_channels * p.out[0] * p.out[1] * p.out[2];
  std::vector<uint8_t> y(static_cast<size_t>(ysize));
  const int32_t* bias = q.bias.empty() ? nullptr : q.bias.data();
  // Output bytes are the same for u8 and s8 (the clamp range decides).
  if (q.x_signed)
    kref::QConv<int8_t, int8_t>(p, reinterpret_cast<const int8_t*>(x.data()), q.x_zero_point,
                                w.data(), bias, out, reinterpret_cast<int8_t*>(y.data()));
  else
    kref::QConv<uint8_t, uint8_t>(p, x.data(), q.x_zero_point, w.data(), bias, out, y.data());
  return y;
}

// NCHW <-> nChw4c (channels rounded up to 4, padding channels 0).
std::vector<uint8_t> ToQuads(const std::vector<uint8_t>& v, int64_t n, int64_t c, int64_t hw) {
  const int64_t cq = (c + 3) / 4;
  std::vector<uint8_t> out(static_cast<size_t>(n * cq * 4 * hw), 0);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < hw; ++i)
        out[static_cast<size_t>(((b * cq + ch / 4) * hw + i) * 4 + ch % 4)] =
            v[static_cast<size_t>((b * c + ch) * hw + i)];
  return out;
}

struct S8ConvCase {
  kref::ConvParams p;
  int br = 8, bc = 8;
  std::string Describe() const {
    return fmt::format("n{} c{} m{} in{}x{} k{}x{} s{}x{} d{}x{} pb{},{} out{}x{} block {}x{}",
                       p.batch, p.in_channels, p.out_channels, p.in[1], p.in[2], p.kernel[1],
                       p.kernel[2], p.stride[1], p.stride[2], p.dilation[1], p.dilation[2],
                       p.pad_begin[1], p.pad_begin[2], p.out[1], p.out[2], br, bc);
  }
};

int64_t OutDim(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe) {
  return (in + pb + pe - d * (k - 1) - 1) / s + 1;
}

S8ConvCase MakeCase(int64_t n, int64_t c, int64_t m, int64_t h, int64_t w, int64_t kh, int64_t kw,
                    int64_t sy, int64_t sx, int64_t dy, int64_t dx, int64_t pt, int64_t pl,
                    int64_t pb, int64_t pr, int br = 8, int bc = 8) {
  S8ConvCase cc;
  kref::ConvParams& p = cc.p;
  p.batch = n;
  p.in_channels = c;
  p.out_channels = m;
  p.in = {1, h, w};
  p.kernel = {1, kh, kw};
  p.stride = {1, sy, sx};
  p.dilation = {1, dy, dx};
  p.pad_begin = {0, pt, pl};
  p.pad_end = {0, pb, pr};
  p.out = {1, OutDim(h, kh, sy, dy, pt, pb), OutDim(w, kw, sx, dx, pl, pr)};
  cc.br = br;
  cc.bc = bc;
  return cc;
}

// kExact's implementation: any with AVX-512 VNNI; without it one that
// accumulates in s32 (oneDNN's reference, or a jit named for VNNI), never a
// jit kernel that sums u8 x s8 pairs in int16 (kernels/dnnl/conv_s8.h).
void ExpectExactOneDnnImpl(const std::string& impl) {
  if (kernels::onednn::OneDnnS8JitIsExact()) return;
  EXPECT_TRUE(impl.rfind("ref", 0) == 0 || impl.find("vnni") != std::string::npos) << impl;
}

// oneDNN kExact (grouped too) on x gives `want` byte for byte, from an exact
// implementation.
void CheckOneDnnExact(const kref::ConvParams& p, const std::vector<int8_t>& w, const Quant& qq,
                      const std::vector<uint8_t>& x, const std::vector<uint8_t>& want) {
  auto dense = kernels::onednn::S8ConvPrimitive::Create(p, w.data(), qq.q,
                                                        kernels::onednn::S8ConvMode::kExact);
  ASSERT_TRUE(dense.ok()) << dense.status().ToString();
  std::vector<uint8_t> y(want.size(), 0xA5);
  ASSERT_TRUE((*dense)->Run(x.data(), y.data()).ok());
  ASSERT_TRUE(y == want) << "oneDNN int8 (" << (*dense)->impl_name() << ") differs";
  ExpectExactOneDnnImpl((*dense)->impl_name());
}

// Runs one case at one sparsity on every kernel, layout pair and thread count.
void CheckConv(const S8ConvCase& cc, double sparsity, Rng& rng, bool all_layouts = true) {
  const kref::ConvParams& p = cc.p;
  SCOPED_TRACE(fmt::format("seed {}: {} sparsity {}", Seed(), cc.Describe(), sparsity));
  const int64_t taps = p.kernel[1] * p.kernel[2];
  std::vector<int8_t> wd;
  const BlockMask mask =
      RandomWeight(p.out_channels, p.in_channels, taps, cc.br, cc.bc, sparsity, rng, &wd);
  const Quant qq = RandomQuant(p.out_channels, p.in_channels * taps, rng);
  const int64_t in_hw = p.in[1] * p.in[2], out_hw = p.out[1] * p.out[2];
  const std::vector<uint8_t> x = RandomBytes(p.batch * p.in_channels * in_hw, rng);
  const std::vector<uint8_t> want = Reference(p, qq, x, wd);
  const bool use_mask = Uniform(rng, 0, 1) == 1;
  auto sw =
      ks::S8BlockSparseWeight::FromDense(wd.data(), p.out_channels, p.in_channels, p.kernel[1],
                                         p.kernel[2], cc.br, cc.bc, use_mask ? &mask : nullptr);
  ASSERT_TRUE(sw.ok()) << sw.status().ToString();
  ASSERT_EQ(sw->ToDense(), wd);
  const std::vector<uint8_t> x4 = ToQuads(x, p.batch, p.in_channels, in_hw);
  const std::vector<uint8_t> want4 = ToQuads(want, p.batch, p.out_channels, out_hw);
  CheckOneDnnExact(p, wd, qq, x, want);  // the dense oneDNN path on the same problem
  if (::testing::Test::HasFatalFailure()) return;
  for (const ks::S8BsrConvKernel* k : ConvKernelsFor(cc.br)) {
    for (int layouts = 0; layouts < 4; ++layouts) {
      if (!all_layouts && layouts != 0 && layouts != 3) continue;
      const auto xl = layouts & 1 ? ks::S8Layout::kNchw4c : ks::S8Layout::kNchw;
      const auto yl = layouts & 2 ? ks::S8Layout::kNchw4c : ks::S8Layout::kNchw;
      auto plan = ks::S8BsrConvPlan::Create(p, *sw, qq.q, xl, yl, k);
      ASSERT_TRUE(plan.ok()) << plan.status().ToString();
      std::vector<uint8_t> scratch(static_cast<size_t>(plan->scratch_bytes()));
      for (int threads : {1, 2}) {
        std::vector<uint8_t> y(static_cast<size_t>(plan->y_image_bytes() * p.batch), 0xA5);
        plan->Run(xl == ks::S8Layout::kNchw ? x.data() : x4.data(), y.data(), scratch.data(),
                  threads);
        const std::vector<uint8_t>& ref = yl == ks::S8Layout::kNchw ? want : want4;
        ASSERT_EQ(y.size(), ref.size());
        const auto diff = std::mismatch(y.begin(), y.end(), ref.begin());
        ASSERT_TRUE(diff.first == y.end())
            << k->name << " layouts " << layouts << " threads " << threads << ": byte "
            << (diff.first - y.begin()) << " is " << int(*diff.first) << ", want "
            << int(*diff.second);
      }
    }
  }
}

TEST(S8Kernels, DispatchChoosesARunnableKernel) {
  const auto& conv = ks::SelectS8BsrConvKernel(8, 8);
  EXPECT_LE(conv.isa, ks::S8ActiveIsa());
  EXPECT_EQ(ks::SelectS8BsrConvKernel(4, 8).isa, ks::S8Isa::kRef);  // no 4-row vector kernel
  EXPECT_EQ(ks::SelectS8BsrGemmKernel(8, 16).isa, ks::S8Isa::kRef);
  EXPECT_NE(ks::DescribeS8BsrConvChoice(8, 8).find(std::string("chose ") + conv.name),
            std::string::npos);
  EXPECT_STREQ(ks::S8BsrConvKernels().back().name, "s8_bsrnxn_conv__ref");
  std::printf("int8 conv: %s\nint8 gemm: %s\n", ks::DescribeS8BsrConvChoice(8, 8).c_str(),
              ks::DescribeS8BsrGemmChoice(8, 8).c_str());
}

TEST(S8Kernels, WeightFormatRoundTripsAndRejectsBadBlocks) {
  Rng rng(Seed());
  std::vector<int8_t> w;
  RandomWeight(13, 10, 9, 8, 8, 0.5, rng, &w);
  auto sw = ks::S8BlockSparseWeight::FromDense(w.data(), 13, 10, 3, 3, 8, 8);
  ASSERT_TRUE(sw.ok());
  EXPECT_EQ(sw->ToDense(), w);
  for (int64_t m = 0; m < 13; ++m) {
    int32_t s = 0;
    for (int64_t i = 0; i < 90; ++i) s += w[static_cast<size_t>(m * 90 + i)];
    EXPECT_EQ(sw->row_sums()[static_cast<size_t>(m)], s);
  }
  EXPECT_FALSE(ks::S8BlockSparseWeight::FromDense(w.data(), 13, 10, 3, 3, 8, 6).ok());
}

TEST(S8Kernels, FastEpilogueBoundsAreExact) {
  // acc_lo / acc_hi are the last accumulators that still saturate.
  std::vector<int8_t> w(8 * 8, 1);
  auto sw = ks::S8BlockSparseWeight::FromDense(w.data(), 8, 8, 1, 1, 8, 8);
  ASSERT_TRUE(sw.ok());
  ks::S8QuantParams q;
  q.requant = {QuantizeMultiplier(0.0123)};
  q.y_zero_point = 7;
  q.lo = 7;  // fused Relu
  q.hi = 255;
  auto e = ks::FoldS8Epilogue(*sw, q);
  ASSERT_TRUE(e.ok());
  ASSERT_TRUE(e->fast);
  const Requant r = q.requant[0];
  const int32_t lo = e->acc_lo[0], hi = e->acc_hi[0];
  EXPECT_EQ(Requantize(lo, r, 7, 7, 255), 7);
  EXPECT_GT(RequantizeRaw(lo + 1, r) + 7, 7);
  EXPECT_EQ(Requantize(hi, r, 7, 7, 255), 255);
  EXPECT_LT(RequantizeRaw(hi - 1, r) + 7, 255);
  q.requant = {PowerOfTwoMultiplier(3)};  // M = 1: the shift form
  e = ks::FoldS8Epilogue(*sw, q);
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->fast);
  EXPECT_TRUE(e->shift_only);
  q.requant = {QuantizeMultiplier(3.0)};  // a multiplier > 1: the general path
  e = ks::FoldS8Epilogue(*sw, q);
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->fast);
  EXPECT_FALSE(e->shift_only);
}

TEST(S8Kernels, RandomGeometries) {
  Rng rng(Seed());
  const double sparsities[] = {0.0, 0.3, 0.5, 0.75, 0.9, 1.0};
  for (int it = 0; it < 40; ++it) {
    const int64_t k = Uniform(rng, 1, 5), kw = Uniform(rng, 0, 3) == 0 ? Uniform(rng, 1, 7) : k;
    const int64_t s = Uniform(rng, 1, 3), d = Uniform(rng, 0, 4) == 0 ? 2 : 1;
    const int64_t h = Uniform(rng, 1, 13) + (k - 1) * d, w = Uniform(rng, 1, 19) + (kw - 1) * d;
    const int bc = Uniform(rng, 0, 3) == 0 ? 4 * Uniform(rng, 1, 4) : 8;
    const int br = Uniform(rng, 0, 3) == 0 ? Uniform(rng, 1, 16) : 8;
    const int64_t pad = Uniform(rng, 0, 1) ? Uniform(rng, 0, 2) : 0;
    S8ConvCase cc = MakeCase(Uniform(rng, 1, 2), Uniform(rng, 1, 37), Uniform(rng, 1, 37), h, w, k,
                             kw, s, Uniform(rng, 1, 2), d, d, pad, Uniform(rng, 0, 2), pad,
                             Uniform(rng, 0, 2), br, bc);
    CheckConv(cc, sparsities[it % 6], rng);
    if (HasFatalFailure()) return;
  }
}

// The zoo's layer shapes (spatial size capped at 14 or 17 to keep the
// scalar reference fast; the kernels' paths depend on the tile, not the size).
TEST(S8Kernels, ZooShapes) {
  Rng rng(Seed() + 1);
  std::vector<S8ConvCase> cases = {
      // ResNet-50: stem, bottleneck 1x1/3x3 (stride 1 and 2), downsample.
      MakeCase(1, 3, 64, 30, 30, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3),
      MakeCase(1, 64, 64, 14, 14, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0),
      MakeCase(1, 64, 64, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),
      MakeCase(1, 64, 256, 14, 14, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0),
      MakeCase(1, 128, 128, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1),
      MakeCase(1, 256, 512, 14, 14, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0),
      MakeCase(1, 1024, 256, 7, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0),
      MakeCase(1, 512, 512, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),
      MakeCase(2, 2048, 512, 7, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0),
      // MobileNet-v2 pointwise (incl. 24/40/... channel tails of the block).
      MakeCase(1, 32, 16, 14, 14, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0),
      MakeCase(1, 144, 24, 14, 14, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0),
      MakeCase(1, 960, 160, 7, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0),
      MakeCase(1, 320, 1280, 7, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0),
      // Inception-v3 factorized 1x7 / 7x1 and a 3x3 stride 2 valid conv.
      MakeCase(1, 128, 192, 17, 17, 1, 7, 1, 1, 1, 1, 0, 3, 0, 3),
      MakeCase(1, 160, 160, 17, 17, 7, 1, 1, 1, 1, 1, 3, 0, 3, 0),
      MakeCase(1, 192, 320, 17, 17, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0),
      // fmnist_resnet: 1-channel stem, 16..64 channels at 28/14/7.
      MakeCase(2, 1, 16, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),
      MakeCase(1, 16, 32, 28, 28, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1),
      MakeCase(1, 64, 64, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),
  };
  const double sparsities[] = {0.0, 0.5, 0.75, 0.9, 1.0};
  for (size_t i = 0; i < cases.size(); ++i) {
    CheckConv(cases[i], sparsities[i % 5], rng, /*all_layouts=*/i % 2 == 0);
    if (HasFatalFailure()) return;
  }
}

// Planes of 48k + p positions (p <= 4): the VNNI kernel computes the p tail
// positions inside its last full tiles (one per tile, two when k < p; not
// fused when 2k < p), vectorized over the 8 output channels and requantized
// on their own. Ragged output channels (a partial block-row, a partial
// nChw4c quad), both output layouts, stride-2 phase planes (a lane table),
// and the shifted planes of small stride-1 convs.
TEST(S8Kernels, FusedTails) {
  Rng rng(Seed() + 6);
  const std::vector<S8ConvCase> cases = {
      MakeCase(1, 40, 61, 7, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0),    // 48 + 1
      MakeCase(2, 24, 13, 14, 14, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0),  // 4 x 48 + 4
      MakeCase(1, 16, 22, 5, 10, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0),   // 48 + 2: two in one tile
      MakeCase(1, 32, 16, 10, 10, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0),  // 2 x 48 + 4
      MakeCase(1, 12, 9, 1, 52, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0),    // 48 + 4: not fused
      MakeCase(1, 36, 30, 14, 14, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0),  // 1x1 s2 to 7x7
      MakeCase(1, 20, 27, 16, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1),  // s2 to 8x8: phase, lane table
      // OW * stride <= 14: shifted planes (VNNI), no lane table.
      MakeCase(1, 20, 27, 10, 10, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1),     // s2 to 5x5
      MakeCase(1, 22, 19, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),       // 3x3 to 7x7: 48 + 1
      MakeCase(1, 12, 16, 11, 11, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2),     // dilation 2
      MakeCase(1, 16, 8, 9, 14, 1, 5, 1, 1, 1, 1, 0, 1, 0, 3),       // 1x5, asymmetric pads
      MakeCase(1, 20, 27, 10, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),     // 3x3 to 10x10
      MakeCase(1, 28, 8, 7, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 8, 4),  // 8x4 blocks
  };
  const double sparsities[] = {0.0, 0.5, 0.9, 1.0, 0.25};
  for (size_t i = 0; i < cases.size(); ++i) {
    CheckConv(cases[i], sparsities[i % 5], rng);
    if (HasFatalFailure()) return;
  }
}

// Grouped and depthwise convs (MobileNet-v2) run on the dense oneDNN path only.
TEST(S8Kernels, OneDnnExactGroupedAndDepthwise) {
  Rng rng(Seed() + 4);
  for (int64_t g : {2, 32}) {
    S8ConvCase cc = MakeCase(1, 32, 32, 9, 9, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1);
    cc.p.group = g;
    SCOPED_TRACE(fmt::format("seed {}: group {}", Seed(), g));
    std::vector<int8_t> w(static_cast<size_t>(32 * (32 / g) * 9));
    for (auto& v : w) v = static_cast<int8_t>(Uniform(rng, -127, 127));
    const Quant qq = RandomQuant(32, 32 / g * 9, rng);
    const std::vector<uint8_t> x = RandomBytes(32 * 81, rng);
    CheckOneDnnExact(cc.p, w, qq, x, Reference(cc.p, qq, x, w));
  }
}

// Wide rows through the stride-2 phase-plane copy (more than a vector of
// columns per plane row), every layout.
TEST(S8Kernels, StridedWideRows) {
  Rng rng(Seed() + 5);
  CheckConv(MakeCase(1, 12, 16, 9, 75, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1), 0.25, rng);
  if (HasFatalFailure()) return;
  CheckConv(MakeCase(2, 20, 24, 6, 70, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0), 0.5, rng);
}

// Full-range operands: 255 * 127 summed over a large K must not saturate
// anywhere (vpmaddubsw would), and the accumulator must equal the reference.
TEST(S8Kernels, FullRangeOperandsDoNotSaturate) {
  Rng rng(Seed() + 2);
  S8ConvCase cc = MakeCase(1, 64, 16, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
  const kref::ConvParams& p = cc.p;
  std::vector<int8_t> w(static_cast<size_t>(16 * 64 * 9));
  for (size_t i = 0; i < w.size(); ++i) w[i] = (i / 9) % 3 == 0 ? -127 : 127;
  std::vector<uint8_t> x(static_cast<size_t>(64 * 36), 255);
  Quant qq;
  qq.q.x_zero_point = 0;
  qq.q.lo = 0;
  qq.q.hi = 255;
  qq.q.requant = {QuantizeMultiplier(1.0 / 4096.0)};
  qq.per_channel.assign(16, qq.q.requant[0]);
  qq.q.y_zero_point = 128;
  const std::vector<uint8_t> want = Reference(p, qq, x, w);
  auto sw = ks::S8BlockSparseWeight::FromDense(w.data(), 16, 64, 3, 3, 8, 8);
  ASSERT_TRUE(sw.ok());
  for (const ks::S8BsrConvKernel* k : ConvKernelsFor(8)) {
    auto plan =
        ks::S8BsrConvPlan::Create(p, *sw, qq.q, ks::S8Layout::kNchw, ks::S8Layout::kNchw, k);
    ASSERT_TRUE(plan.ok());
    std::vector<uint8_t> scratch(static_cast<size_t>(plan->scratch_bytes())), y(want.size());
    plan->Run(x.data(), y.data(), scratch.data(), 1);
    EXPECT_EQ(y, want) << k->name;
  }
  // oneDNN kExact on the same operands: pairs of 127 * 255 overflow int16,
  // so without VNNI this fails unless kExact left oneDNN's jit kernels.
  CheckOneDnnExact(p, w, qq, x, want);
  (void)rng;
}

// The VNNI kernel's fast epilogue skips the accumulator clamp when the
// output clamp is the whole u8 / s8 range and lets the stores saturate
// (vpackssdw/vpackuswb, vpmovusdb/vpmovsdb). Drive it far past both ends:
// multipliers from ~0.5 (S = 32) down, biases near INT32_MIN/MAX, full-range
// operands, a ragged last block-row (M = 13), tails, both layouts.
TEST(S8Kernels, FastEpilogueSaturatesExactly) {
  Rng rng(Seed() + 7);
  for (const bool y_signed : {false, true}) {
    for (const double scale : {0.49, 0.37, 1.0 / 4096.0, 3.1e-6}) {
      S8ConvCase cc = MakeCase(1, 24, 13, 7, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
      const kref::ConvParams& p = cc.p;
      SCOPED_TRACE(fmt::format("seed {}: y_signed {} scale {}", Seed(), y_signed, scale));
      std::vector<int8_t> w;
      RandomWeight(13, 24, 9, 8, 8, 0.25, rng, &w);
      for (auto& v : w)
        if (v != 0) v = Uniform(rng, 0, 1) ? 127 : -127;
      Quant qq;
      qq.q.x_zero_point = Uniform(rng, 0, 255);
      qq.q.y_zero_point = y_signed ? Uniform(rng, -128, 127) : Uniform(rng, 0, 255);
      qq.q.lo = y_signed ? -128 : 0;
      qq.q.hi = y_signed ? 127 : 255;
      for (int64_t m = 0; m < 13; ++m) {
        // |sum W * (x - z_x)| <= 127 * 255 * 216 < 2^23: no int32 overflow.
        qq.q.bias.push_back(m % 3 == 0   ? INT32_MAX - (1 << 24) - Uniform(rng, 0, 1 << 20)
                            : m % 3 == 1 ? INT32_MIN + (1 << 24) + Uniform(rng, 0, 1 << 20)
                                         : Uniform(rng, -(1 << 24), 1 << 24));
        qq.q.requant.push_back(QuantizeMultiplier(scale * std::exp(Uniform(rng, -50, 0) / 100.0)));
      }
      qq.per_channel = qq.q.requant;
      std::vector<uint8_t> x = RandomBytes(24 * 63, rng);
      for (auto& b : x) b = Uniform(rng, 0, 1) ? 255 : b;
      const std::vector<uint8_t> want = Reference(p, qq, x, w);
      const std::vector<uint8_t> want4 = ToQuads(want, 1, 13, 63);
      auto sw = ks::S8BlockSparseWeight::FromDense(w.data(), 13, 24, 3, 3, 8, 8);
      ASSERT_TRUE(sw.ok());
      auto e = ks::FoldS8Epilogue(*sw, qq.q);
      ASSERT_TRUE(e.ok());
      EXPECT_TRUE(e->fast);
      for (const ks::S8BsrConvKernel* k : ConvKernelsFor(8)) {
        for (const auto yl : {ks::S8Layout::kNchw, ks::S8Layout::kNchw4c}) {
          auto plan = ks::S8BsrConvPlan::Create(p, *sw, qq.q, ks::S8Layout::kNchw, yl, k);
          ASSERT_TRUE(plan.ok());
          std::vector<uint8_t> scratch(static_cast<size_t>(plan->scratch_bytes()));
          std::vector<uint8_t> y(static_cast<size_t>(plan->y_image_bytes()), 0xA5);
          plan->Run(x.data(), y.data(), scratch.data(), 1);
          EXPECT_TRUE(y == (yl == ks::S8Layout::kNchw ? want : want4))
              << k->name << " layout " << int(yl);
        }
      }
    }
  }
}

// The plan's AVX-512 input-copy rows against the scalar definition, every
// length 0..70 (main loops and masked tails), strides 1 and 2, with and
// without the s8 flip; words past n stay untouched.
TEST(S8Kernels, AvxPackRowsMatchScalar) {
  if (ks::S8DetectedIsa() < ks::S8Isa::kAvx512Vnni) GTEST_SKIP() << "no AVX-512 VNNI";
  Rng rng(Seed() + 8);
  const std::vector<uint8_t> bytes = RandomBytes(4 * 4 * 160, rng);
  std::vector<uint32_t> words(160);
  std::memcpy(words.data(), bytes.data(), words.size() * 4);
  const uint8_t* const planes[4] = {bytes.data(), bytes.data() + 160, bytes.data() + 320,
                                    bytes.data() + 480};
  for (const uint32_t flip : {0u, 0x80808080u}) {
    for (const int64_t sx : {1, 2}) {
      for (int64_t n = 0; n <= 70; ++n) {
        std::vector<uint32_t> want(80, 0xDEADBEEF), got4(80, 0xDEADBEEF), got(80, 0xDEADBEEF);
        for (int64_t k = 0; k < n; ++k) want[k] = words[k * sx] ^ flip;
        ks::s8_pack_row4c__avx512(words.data(), sx, n, flip, got4.data());
        EXPECT_EQ(got4, want) << "nChw4c sx " << sx << " n " << n << " flip " << flip;
        for (int64_t k = 0; k < n; ++k)
          want[k] = (uint32_t{planes[0][k * sx]} | uint32_t{planes[1][k * sx]} << 8 |
                     uint32_t{planes[2][k * sx]} << 16 | uint32_t{planes[3][k * sx]} << 24) ^
                    flip;
        ks::s8_pack_row__avx512(planes, sx, n, flip, got.data());
        EXPECT_EQ(got, want) << "plain sx " << sx << " n " << n << " flip " << flip;
      }
    }
  }
}

TEST(S8Kernels, Gemm) {
  Rng rng(Seed() + 3);
  struct G {
    int64_t n, k, m;
    int br, bc;
  };
  std::vector<G> cases = {{1, 2048, 1000, 8, 8}, {3, 64, 10, 8, 8}, {5, 37, 29, 8, 8},
                          {9, 256, 64, 8, 8},    {2, 20, 12, 4, 4}, {1, 100, 17, 16, 16},
                          {4, 512, 128, 8, 8},   {1, 7, 3, 8, 8}};
  const double sparsities[] = {0.0, 0.5, 0.75, 0.9, 1.0, 0.3};
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const G& g = cases[ci];
    for (double sp : {sparsities[ci % 6], sparsities[(ci + 2) % 6]}) {
      SCOPED_TRACE(fmt::format("seed {}: gemm n{} k{} m{} block {}x{} sparsity {}", Seed(), g.n,
                               g.k, g.m, g.br, g.bc, sp));
      std::vector<int8_t> w;
      const BlockMask mask = RandomWeight(g.m, g.k, 1, g.br, g.bc, sp, rng, &w);
      const Quant qq = RandomQuant(g.m, g.k, rng);
      const std::vector<uint8_t> x = RandomBytes(g.n * g.k, rng);
      kref::QuantOutput out;
      out.requant = qq.per_channel.data();
      out.zero_point = qq.q.y_zero_point;
      out.lo = qq.q.lo;
      out.hi = qq.q.hi;
      std::vector<uint8_t> want(static_cast<size_t>(g.n * g.m));
      const int32_t* bias = qq.q.bias.empty() ? nullptr : qq.q.bias.data();
      if (qq.q.x_signed)
        kref::QGemm<int8_t, int8_t>(g.n, g.m, g.k, reinterpret_cast<const int8_t*>(x.data()),
                                    qq.q.x_zero_point, w.data(), bias, out,
                                    reinterpret_cast<int8_t*>(want.data()), 1);
      else
        kref::QGemm<uint8_t, uint8_t>(g.n, g.m, g.k, x.data(), qq.q.x_zero_point, w.data(), bias,
                                      out, want.data(), 1);
      auto sw = ks::S8BlockSparseWeight::FromDense(w.data(), g.m, g.k, 1, 1, g.br, g.bc, &mask);
      ASSERT_TRUE(sw.ok());
      for (const ks::S8BsrGemmKernel* k : GemmKernelsFor(g.br, g.bc)) {
        auto plan = ks::S8BsrGemmPlan::Create(g.n, *sw, qq.q, k);
        ASSERT_TRUE(plan.ok()) << plan.status().ToString();
        std::vector<uint8_t> scratch(static_cast<size_t>(plan->scratch_bytes()));
        for (int threads : {1, 2}) {
          std::vector<uint8_t> y(want.size(), 0xA5);
          plan->Run(x.data(), y.data(), scratch.data(), threads);
          ASSERT_EQ(y, want) << k->name << " threads " << threads;
        }
      }
      // The same Gemm as a 1x1 conv over n positions is the conv kernels' job too.
    }
  }
}

TEST(S8Kernels, PlanRejectsBadParameters) {
  std::vector<int8_t> w(64 * 64, 1);
  auto sw = ks::S8BlockSparseWeight::FromDense(w.data(), 64, 64, 1, 1, 8, 8);
  ASSERT_TRUE(sw.ok());
  S8ConvCase cc = MakeCase(1, 64, 64, 4, 4, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0);
  ks::S8QuantParams q;
  q.requant = {QuantizeMultiplier(0.01)};
  EXPECT_TRUE(ks::S8BsrConvPlan::Create(cc.p, *sw, q).ok());
  ks::S8QuantParams bad = q;
  bad.requant = {QuantizeMultiplier(0.01), QuantizeMultiplier(0.01)};
  EXPECT_FALSE(ks::S8BsrConvPlan::Create(cc.p, *sw, bad).ok());
  bad = q;
  bad.lo = -10;
  bad.hi = 200;
  EXPECT_FALSE(ks::S8BsrConvPlan::Create(cc.p, *sw, bad).ok());
  bad = q;
  bad.x_zero_point = 300;
  EXPECT_FALSE(ks::S8BsrConvPlan::Create(cc.p, *sw, bad).ok());
  kref::ConvParams grouped = cc.p;
  grouped.group = 2;
  EXPECT_FALSE(ks::S8BsrConvPlan::Create(grouped, *sw, q).ok());
}

}  // namespace
}  // namespace wbs
