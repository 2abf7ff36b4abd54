// BsrWinoPlan (block-sparse Winograd F(2x2, 3x3) and F(4x4, 3x3)) against the reference conv
// (in double) on the same zeroed dense weight: the zoo models' 3x3 stride-1
// layer shapes, random small planes (odd sizes, edge tiles, pads 0..2,
// channels not multiples of 8), 0..100% block sparsity, bias / residual
// (in place too) / clamp, 1, 2, 3 and 5 threads, both thread splits, small
// chunks that start mid tile row; and every transform kernel the CPU runs
// against the reference transforms, bit for bit. The seed is printed;
// WBS_TEST_SEED=<n> replays it.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/block_sparse.h"
#include "kernels/ref/conv.h"
#include "kernels/sparse/bsr_conv_plan.h"
#include "kernels/sparse/bsr_wino_plan.h"
#include "kernels/sparse/dispatch.h"
#include "tests/unit/block_sparse_test_util.h"

namespace wbs {
namespace {

namespace ks = kernels::sparse;
namespace kref = kernels::ref;
using sparse_test::ApplyMask;
using sparse_test::RandomMask;
using sparse_test::RandomTensor;
using sparse_test::Rng;
using sparse_test::TestSeed;

struct WinoProblem {
  kref::ConvParams p;
  bool bias = true;
  bool residual = false;
  std::string Describe() const {
    return fmt::format("n{} c{} m{} in{}x{} pad {},{},{},{} out{}x{} act {} bias {} residual {}",
                       p.batch, p.in_channels, p.out_channels, p.in[1], p.in[2], p.pad_begin[1],
                       p.pad_begin[2], p.pad_end[1], p.pad_end[2], p.out[1], p.out[2],
                       static_cast<int>(p.activation.kind), bias, residual);
  }
};

kref::ConvParams Conv3x3(int64_t c, int64_t m, int64_t h, int64_t w, int64_t pt, int64_t pl,
                         int64_t pb, int64_t pr) {
  kref::ConvParams p;
  p.in_channels = c;
  p.out_channels = m;
  p.in = {1, h, w};
  p.kernel = {1, 3, 3};
  p.pad_begin = {0, pt, pl};
  p.pad_end = {0, pb, pr};
  p.out = {1, h + pt + pb - 2, w + pl + pr - 2};
  return p;
}

// Every BsrConvKernel for 8-row blocks runnable here (under WBS_ISA_CAP).
std::vector<const ks::BsrConvKernel*> Kernels() {
  std::vector<const ks::BsrConvKernel*> out;
  for (const ks::BsrConvKernel& k : ks::BsrConvKernels())
    if (k.isa <= ks::ActiveIsa() && (k.br == 0 || k.br == 8)) out.push_back(&k);
  return out;
}

// The plan's bound against the double reference, relative to 1 + |y|, for
// unit-normal data: the direct sum's error grows like sqrt(9 C) ulps; the
// F(2x2) transforms add a few (wino_transform.h), so 4x the direct plan's
// bound. F(4x4)'s transforms weigh inputs by up to 5 (B), 1/4 .. 1/24 (G)
// and outputs by up to 8 (A): measured on ResNet-50's 56x56 and 28x28
// shapes (Tile4ErrorOnResnet50Shapes) its error is ~4-6x F(2x2)'s, so 4x
// F(2x2)'s bound.
double Tolerance(int64_t in_channels, int tile) {
  const double f2 = 4e-5 * std::sqrt(double(in_channels * 9)) + 1e-5;
  return tile == 4 ? 4 * f2 : f2;
}

// Runs pr at `sparsity` with the dispatcher's F(tile x tile) transforms on
// `kernels`, at 1 to 5 threads (both splits at 2), with chunks of `chunk`
// tiles (0: the plan's), and compares with the double reference.
void Check(const WinoProblem& pr, double sparsity, Rng& rng,
           const std::vector<const ks::BsrConvKernel*>& kernels, int64_t chunk = 0, int tile = 2) {
  const kref::ConvParams& p = pr.p;
  SCOPED_TRACE(fmt::format("seed {}: {} sparsity {} chunk {} F({}x{})", TestSeed(), pr.Describe(),
                           sparsity, chunk, tile, tile));
  Tensor w = RandomTensor({p.out_channels, p.in_channels, 3, 3}, rng);
  ApplyMask(w, RandomMask(p.out_channels, p.in_channels, 8, 8, sparsity, rng));
  Tensor x = RandomTensor({p.batch, p.in_channels, p.in[1], p.in[2]}, rng);
  Tensor b = RandomTensor({p.out_channels}, rng);
  Tensor res = RandomTensor({p.batch, p.out_channels, p.out[1], p.out[2]}, rng);
  const int64_t out_n = p.batch * p.out_channels * p.out[1] * p.out[2];
  std::vector<double> xd(x.ToVector<double>()), wd(w.ToVector<double>()), bd(b.ToVector<double>()),
      yd(static_cast<size_t>(out_n));
  kref::ConvParams linear = p;
  linear.activation = {};
  kref::Conv<double>(linear, xd.data(), wd.data(), pr.bias ? bd.data() : nullptr, yd.data());
  for (int64_t i = 0; i < out_n; ++i)
    yd[i] = kref::Activate(p.activation, yd[i] + (pr.residual ? res.data<float>()[i] : 0.0f));
  const double tol = Tolerance(p.in_channels, tile);

  auto sw = BlockSparseWeight::FromDense(w, 8, 8);
  ASSERT_TRUE(sw.ok()) << sw.status().ToString();
  struct Variant {
    int threads;
    ks::BsrWinoPlan::Split split;
  };
  // 3 threads split the xi grid's 4 rows 1 + 1 + 2 (F(4x4): 6 rows, 2 + 2
  // + 2); at 5 one thread has none with F(2x2) (output transform only).
  const Variant variants[] = {{1, ks::BsrWinoPlan::Split::kAuto},
                              {2, ks::BsrWinoPlan::Split::kXi},
                              {2, ks::BsrWinoPlan::Split::kRows},
                              {2, ks::BsrWinoPlan::Split::kTiles},
                              {3, ks::BsrWinoPlan::Split::kXi},
                              {5, ks::BsrWinoPlan::Split::kXi}};
  for (const ks::BsrConvKernel* k : kernels) {
    auto plan = ks::BsrWinoPlan::Create(p, *sw, k, nullptr, tile);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    if (chunk > 0) plan->SetChunk(chunk);
    for (const Variant& v : variants) {
      plan->ForceSplit(v.split);
      SCOPED_TRACE(fmt::format("{} + {} threads {} split {}", k->name, plan->transform().name,
                               v.threads, static_cast<int>(v.split)));
      constexpr int64_t kGuard = 64;
      constexpr float kGuardValue = 12345.0f;
      // NaN scratch: nothing may read a value the plan did not write.
      const int64_t need = plan->scratch_floats(v.threads);
      std::vector<float> scratch(static_cast<size_t>(need + kGuard), std::nanf(""));
      std::fill(scratch.begin() + need, scratch.end(), kGuardValue);
      std::vector<float> y(static_cast<size_t>(out_n), std::nanf(""));
      const float* residual = nullptr;
      if (pr.residual && v.threads >= 2) {
        std::copy(res.data<float>(), res.data<float>() + out_n, y.begin());  // in place
        residual = y.data();
      } else if (pr.residual) {
        residual = res.data<float>();
      }
      plan->Run(x.data<float>(), pr.bias ? b.data<float>() : nullptr, y.data(), scratch.data(),
                v.threads, residual);
      int64_t bad = 0;
      for (int64_t i = 0; i < out_n; ++i) {
        const double e = std::abs(double(y[i]) - yd[i]);
        if (!(e <= tol * (1.0 + std::abs(yd[i]))))
          if (++bad <= 3) ADD_FAILURE() << "y[" << i << "] = " << y[i] << ", want " << yd[i];
      }
      ASSERT_EQ(bad, 0);
      for (int64_t i = need; i < need + kGuard; ++i)
        ASSERT_EQ(scratch[static_cast<size_t>(i)], kGuardValue) << "written past the scratch";
    }
  }
}

TEST(BsrWino, RandomSmallPlanes) {
  Rng rng(TestSeed());
  const double sparsities[] = {0.0, 0.25, 0.5, 0.75, 0.9, 1.0};
  for (int cases = 0; cases < 60; ++cases) {
    WinoProblem pr;
    const int64_t h = 1 + rng() % 20, w = 1 + rng() % 45;
    const int64_t pt = rng() % 3, pl = rng() % 3, pb = rng() % 3, pr_ = rng() % 3;
    if (h + pt + pb < 3 || w + pl + pr_ < 3) {
      --cases;
      continue;
    }
    pr.p = Conv3x3(1 + rng() % 40, 1 + rng() % 40, h, w, pt, pl, pb, pr_);
    pr.p.batch = 1 + rng() % 2;
    const int act = rng() % 3;
    if (act == 1) pr.p.activation.kind = kref::ActivationKind::kRelu;
    if (act == 2) {
      pr.p.activation.kind = kref::ActivationKind::kClip;
      pr.p.activation.alpha = -0.5f;
      pr.p.activation.beta = 1.5f;
    }
    pr.bias = rng() % 4 != 0;
    pr.residual = rng() % 3 == 0;
    // Chunks of 1..40 tiles half of the time; F(4x4) every other case.
    const int64_t chunk = rng() % 2 ? 1 + rng() % 40 : 0;
    Check(pr, sparsities[rng() % std::size(sparsities)], rng, Kernels(), chunk, cases % 2 ? 4 : 2);
    if (HasFatalFailure()) return;
  }
}

// The 3x3 stride-1 layers of the zoo (ResNet-18/50 stages, VGG-16 and
// Inception-v3 shapes with fewer channels or smaller planes where the
// reference would take long), pad 1 (Inception: also pad 0), Relu, with
// and without the residual, several sparsities including 0% and 100%.
TEST(BsrWino, ZooShapes) {
  Rng rng(TestSeed() + 1);
  struct Shape {
    int64_t c, m, h, w, pad;
    double sparsity;
    bool residual;
  };
  const Shape shapes[] = {
      {64, 64, 56, 56, 1, 0.5, false},    // ResNet-50 layer1.x.conv2
      {64, 64, 56, 56, 1, 0.0, true},     // ResNet-18 layer1 (residual)
      {128, 128, 28, 28, 1, 0.75, false}, // layer2.x.conv2
      {256, 256, 14, 14, 1, 0.5, true},   // layer3
      {256, 256, 14, 14, 1, 1.0, false},
      {512, 512, 7, 7, 1, 0.9, false},    // layer4
      {512, 512, 7, 7, 1, 0.25, true},
      {64, 128, 28, 40, 1, 0.5, false},   // VGG-16 style, smaller plane
      {32, 64, 35, 35, 1, 0.5, false},    // Inception-v3 Conv2d_2b (147x147 there)
      {48, 64, 17, 17, 0, 0.5, false},    // pad 0: 15x15, odd
  };
  for (const Shape& s : shapes) {
    WinoProblem pr;
    pr.p = Conv3x3(s.c, s.m, s.h, s.w, s.pad, s.pad, s.pad, s.pad);
    pr.p.activation.kind = kref::ActivationKind::kRelu;
    pr.residual = s.residual;
    for (int tile : {2, 4}) {
      Check(pr, s.sparsity, rng, {&ks::SelectBsrConvKernel(8)}, 0, tile);
      if (HasFatalFailure()) return;
    }
  }
}

// The transform kernels against the reference ones, bit for bit (the same
// additions in the same order), over tile ranges that start and end mid
// row, padding, and plane widths around the 16-tile vector.
TEST(BsrWino, TransformsMatchReference) {
  Rng rng(TestSeed() + 2);
  for (int tile : {2, 4}) {
    const ks::WinoTransformKernel& ref = ks::WinoTransformKernels(tile).back();
    const int win = tile + 2, nxi = win * win;
    for (const ks::WinoTransformKernel& k : ks::WinoTransformKernels(tile)) {
      if (k.isa > ks::ActiveIsa() || &k == &ref) continue;
      for (int cases = 0; cases < 80; ++cases) {
        // Every other case a narrow plane (at most 8 tiles per row, partial
        // vectors only), every fourth over all tiles; F(4x4) planes up to 3
        // groups of 16 tiles wide.
        const int64_t c = 1 + rng() % 5, h = 1 + rng() % (tile == 4 ? 20 : 12);
        const int64_t w =
            cases % 2 ? 1 + rng() % (tile == 4 ? 33 : 17) : 1 + rng() % (tile == 4 ? 200 : 70);
        const int64_t pt = rng() % 3, pl = rng() % 3;
        const int64_t oh = std::max<int64_t>(1, h + pt + rng() % 3 - 2);
        const int64_t ow = std::max<int64_t>(1, w + pl + rng() % 3 - 2);
        const int64_t tw = (ow + tile - 1) / tile, total = (oh + tile - 1) / tile * tw;
        const bool whole = cases % 4 == 1;
        const int64_t t0 = whole ? 0 : rng() % total;
        const int64_t t1 = whole ? total : t0 + 1 + rng() % (total - t0);
        const int64_t stride = t1 - t0 + ks::kWinoSlack + rng() % 5;
        // Rows a of V (xi = win * a + b), all of them every third case.
        int a0 = static_cast<int>(rng() % win), a1 = a0 + 1 + static_cast<int>(rng() % (win - a0));
        if (cases % 3 == 0) a0 = 0, a1 = win;
        SCOPED_TRACE(
            fmt::format("seed {}: {} c{} {}x{} pad {},{} out {}x{} tiles [{}, {}) a [{}, {})",
                        TestSeed(), k.name, c, h, w, pt, pl, oh, ow, t0, t1, a0, a1));
        Tensor x = RandomTensor({c, h, w}, rng);
        ks::WinoInputArgs in;
        in.x = x.data<float>();
        in.in_h = h;
        in.in_w = w;
        in.pad_top = pt;
        in.pad_left = pl;
        in.tiles_w = tw;
        in.t_begin = t0;
        in.t_end = t1;
        in.c_begin = 0;
        in.c_end = c;
        in.v_channel_stride = stride;
        in.v_xi_stride = c * stride;
        in.a_begin = a0;
        in.a_end = a1;
        std::vector<float> v_ref(static_cast<size_t>(nxi * c * stride), 7.0f), v(v_ref);
        in.v = v_ref.data();
        ref.input(in);
        in.v = v.data();
        k.input(in);
        // The tiles' values (a kernel may write the rows' slack); rows outside
        // [a0, a1) untouched.
        for (int64_t row = 0; row < nxi * c; ++row) {
          const int64_t a = row / c / win;
          const bool mine = a >= a0 && a < a1;
          ASSERT_EQ(0, std::memcmp(v.data() + row * stride, v_ref.data() + row * stride,
                                   static_cast<size_t>(mine ? t1 - t0 : stride) * sizeof(float)))
              << "xi " << row / c << " channel " << row % c;
          if (!mine) {
            ASSERT_EQ(v[static_cast<size_t>(row * stride)], 7.0f) << "row a " << a;
          }
        }
        // The output transform below reads all rows.
        if (a0 != 0 || a1 != win) {
          in.a_begin = 0;
          in.a_end = win;
          in.v = v_ref.data();
          ref.input(in);
        }

        // Output: v as M, with bias, residual and a clamp.
        Tensor bias = RandomTensor({c}, rng), res = RandomTensor({c, oh, ow}, rng);
        ks::WinoOutputArgs out;
        out.m = v_ref.data();
        out.m_xi_stride = c * stride;
        out.m_channel_stride = stride;
        out.channels = c;
        out.y_channel_stride = oh * ow;
        out.out_h = oh;
        out.out_w = ow;
        out.tiles_w = tw;
        out.t_begin = t0;
        out.t_end = t1;
        out.bias = rng() % 2 ? bias.data<float>() : nullptr;
        out.residual = rng() % 2 ? res.data<float>() : nullptr;
        out.lo = -1.0f;
        out.hi = 2.0f;
        std::vector<float> y_ref(static_cast<size_t>(c * oh * ow), 9.0f), y(y_ref);
        out.y = y_ref.data();
        ref.output(out);
        out.y = y.data();
        k.output(out);
        ASSERT_EQ(0, std::memcmp(y.data(), y_ref.data(), y.size() * sizeof(float)));
      }
    }
  }
}

// F(4x4)'s numerics on ResNet-50's 56x56 (64 -> 64) and 28x28 (128 -> 128)
// 3x3 layers at 50% blocks, unit-normal inputs and weights scaled like a
// trained layer (He: std sqrt(2 / 9C)): the error of the direct plan, F(2x2)
// and F(4x4) against the double reference (max |e|, max |e| / max |y|,
// RMS |e| / RMS |y|), printed; F(4x4) held to Tolerance().
TEST(BsrWino, Tile4ErrorOnResnet50Shapes) {
  Rng rng(TestSeed() + 3);
  struct Shape {
    int64_t c, hw;
  };
  for (const Shape s : {Shape{64, 56}, Shape{128, 28}}) {
    const kref::ConvParams p = Conv3x3(s.c, s.c, s.hw, s.hw, 1, 1, 1, 1);
    SCOPED_TRACE(fmt::format("seed {}: c{} {}x{}", TestSeed(), s.c, s.hw, s.hw));
    Tensor w = RandomTensor({s.c, s.c, 3, 3}, rng);
    const float scale = static_cast<float>(std::sqrt(2.0 / (9.0 * s.c)));
    for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] *= scale;
    ApplyMask(w, RandomMask(s.c, s.c, 8, 8, 0.5, rng));
    Tensor x = RandomTensor({1, s.c, s.hw, s.hw}, rng);
    const int64_t out_n = s.c * s.hw * s.hw;
    std::vector<double> xd(x.ToVector<double>()), wd(w.ToVector<double>()),
        yd(static_cast<size_t>(out_n));
    kref::Conv<double>(p, xd.data(), wd.data(), nullptr, yd.data());
    auto sw = BlockSparseWeight::FromDense(w, 8, 8);
    ASSERT_TRUE(sw.ok());
    double ymax = 0, yss = 0;
    for (double v : yd) ymax = std::max(ymax, std::abs(v)), yss += v * v;
    auto report = [&](const char* what, const std::vector<float>& y) {
      double emax = 0, ess = 0, erel = 0;
      for (int64_t i = 0; i < out_n; ++i) {
        const double e = std::abs(double(y[i]) - yd[i]);
        emax = std::max(emax, e);
        erel = std::max(erel, e / (1.0 + std::abs(yd[i])));
        ess += e * e;
      }
      std::printf("c%ld %ldx%ld %-10s max|e| %.3g  max|e|/max|y| %.3g  rms(e)/rms(y) %.3g\n",
                  static_cast<long>(s.c), static_cast<long>(s.hw), static_cast<long>(s.hw), what,
                  emax, emax / ymax, std::sqrt(ess / yss));
      return erel;
    };
    std::vector<float> y(static_cast<size_t>(out_n));
    auto direct = ks::BsrConvPlan::Create(p, *sw);
    ASSERT_TRUE(direct.ok()) << direct.status().ToString();
    std::vector<float> scratch(static_cast<size_t>(direct->scratch_floats(1)) + 16);
    direct->Run(x.data<float>(), nullptr, y.data(), scratch.data(), 1);
    report("direct", y);
    for (int tile : {2, 4}) {
      auto plan = ks::BsrWinoPlan::Create(p, *sw, nullptr, nullptr, tile);
      ASSERT_TRUE(plan.ok()) << plan.status().ToString();
      std::vector<float> ws(static_cast<size_t>(plan->scratch_floats(1)));
      plan->Run(x.data<float>(), nullptr, y.data(), ws.data(), 1);
      const double erel = report(tile == 4 ? "F(4x4)" : "F(2x2)", y);
      EXPECT_LE(erel, Tolerance(s.c, tile)) << "F(" << tile << "x" << tile << ")";
    }
  }
}

TEST(BsrWino, DeclinesOtherConvs) {
  Tensor w(DType::kF32, {8, 8, 3, 3});
  auto sw = BlockSparseWeight::FromDense(w, 8, 8);
  ASSERT_TRUE(sw.ok());
  kref::ConvParams p = Conv3x3(8, 8, 10, 10, 1, 1, 1, 1);
  EXPECT_TRUE(ks::BsrWinoPlan::Create(p, *sw).ok());
  EXPECT_TRUE(ks::BsrWinoPlan::Create(p, *sw, nullptr, nullptr, 4).ok());
  EXPECT_FALSE(ks::BsrWinoPlan::Create(p, *sw, nullptr, nullptr, 3).ok());
  // A transform of the other tile.
  EXPECT_FALSE(
      ks::BsrWinoPlan::Create(p, *sw, nullptr, &ks::WinoTransformKernels(2).back(), 4).ok());
  kref::ConvParams s2 = p;
  s2.stride = {1, 2, 2};
  s2.out = {1, 5, 5};
  EXPECT_FALSE(ks::BsrWinoPlan::Eligible(s2));
  EXPECT_FALSE(ks::BsrWinoPlan::Create(s2, *sw).ok());
  kref::ConvParams dil = p;
  dil.dilation = {1, 2, 2};
  EXPECT_FALSE(ks::BsrWinoPlan::Create(dil, *sw).ok());
  kref::ConvParams sig = p;
  sig.activation.kind = kref::ActivationKind::kSigmoid;
  EXPECT_FALSE(ks::BsrWinoPlan::Create(sig, *sw).ok());
}

}  // namespace
}  // namespace wbs
