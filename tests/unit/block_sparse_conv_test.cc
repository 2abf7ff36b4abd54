// Every BSR conv microkernel the CPU can run (kernels/sparse/dispatch.h),
// through BsrConvPlan, against the reference conv (in double) on the same
// zeroed dense weight: random small geometries (kernel sizes, strides,
// dilations, asymmetric pads, blocks below/at/above the channel counts,
// ragged edges, batch 2), real zoo layer shapes, Gemm, 1 to 4 threads,
// sparsity 0..100%. The seed is printed; WBS_TEST_SEED=<n> replays it.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/block_sparse.h"
#include "kernels/ref/conv.h"
#include "kernels/sparse/bsr_conv_plan.h"
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

const double kSparsities[] = {0.0, 0.25, 0.5, 0.75, 0.9, 1.0};

// Kernels runnable here (under WBS_ISA_CAP, so the ctest entries that cap
// the ISA test exactly the lower paths) that take br-row blocks.
std::vector<const ks::BsrConvKernel*> KernelsFor(int br) {
  std::vector<const ks::BsrConvKernel*> out;
  for (const ks::BsrConvKernel& k : ks::BsrConvKernels())
    if (k.isa <= ks::ActiveIsa() && (k.br == 0 || k.br == br)) out.push_back(&k);
  return out;
}

struct Problem {
  kref::ConvParams p;
  int br = 8, bc = 8;
  bool bias = true;
  bool residual = false;
  std::string Describe() const {
    return fmt::format(
        "n{} c{} m{} in{}x{} k{}x{} s{}x{} d{}x{} pb{},{} out{}x{} block {}x{} "
        "act {} bias {} residual {}",
        p.batch, p.in_channels, p.out_channels, p.in[1], p.in[2], p.kernel[1], p.kernel[2],
        p.stride[1], p.stride[2], p.dilation[1], p.dilation[2], p.pad_begin[1], p.pad_begin[2],
        p.out[1], p.out[2], br, bc, static_cast<int>(p.activation.kind), bias, residual);
  }
};

// Runs `pr` at `sparsity` on every kernel (by default threads 1, 2 and 3;
// residual in place when threaded) and compares. `private_copies`: with
// BsrConvPlan::EnablePrivateCopies(), scratch of scratch_floats(threads)
// followed by a guard that must stay untouched. `setup` (if any) configures
// each plan before it runs (split rule, finer calls).
void Check(const Problem& pr, double sparsity, Rng& rng,
           const std::vector<const ks::BsrConvKernel*>& kernels,
           const std::vector<int>& thread_counts = {1, 2, 3}, bool private_copies = false,
           const std::function<void(ks::BsrConvPlan&)>& setup = {}) {
  const kref::ConvParams& p = pr.p;
  SCOPED_TRACE(fmt::format("seed {}: {} sparsity {}", TestSeed(), pr.Describe(), sparsity));
  Tensor w = RandomTensor({p.out_channels, p.in_channels, p.kernel[1], p.kernel[2]}, rng);
  ApplyMask(w, RandomMask(p.out_channels, p.in_channels, pr.br, pr.bc, sparsity, rng));
  Tensor x = RandomTensor({p.batch, p.in_channels, p.in[1], p.in[2]}, rng);
  Tensor b = RandomTensor({p.out_channels}, rng);
  const int64_t out_n = p.batch * p.out_channels * p.out[1] * p.out[2];

  // Reference in double.
  std::vector<double> xd(x.ToVector<double>()), wd(w.ToVector<double>()), bd(b.ToVector<double>()),
      yd(static_cast<size_t>(out_n));
  Tensor res = RandomTensor({p.batch, p.out_channels, p.out[1], p.out[2]}, rng);
  if (pr.residual) {
    // The residual is added before the activation.
    kref::ConvParams linear = p;
    linear.activation = {};
    kref::Conv<double>(linear, xd.data(), wd.data(), pr.bias ? bd.data() : nullptr, yd.data());
    const float* r = res.data<float>();
    for (int64_t i = 0; i < out_n; ++i) yd[i] = kref::Activate(p.activation, yd[i] + r[i]);
  } else {
    kref::Conv<double>(p, xd.data(), wd.data(), pr.bias ? bd.data() : nullptr, yd.data());
  }
  const double tol = 1e-5 * std::sqrt(double(p.in_channels * p.kernel[1] * p.kernel[2])) + 1e-5;

  auto sw = BlockSparseWeight::FromDense(w, pr.br, pr.bc);
  ASSERT_TRUE(sw.ok()) << sw.status().ToString();
  for (const ks::BsrConvKernel* k : kernels) {
    // Every input layout the plan can take for p (a 1x1 stride-1 unpadded
    // conv: "direct" and, on a kernel that takes it, "tiled"; stride 2 on a
    // kernel with a stride-2 variant: "s2direct"), each once.
    std::vector<std::string> seen;
    for (ks::BsrConvPlan::Layout layout :
         {ks::BsrConvPlan::Layout::kAuto, ks::BsrConvPlan::Layout::kPhase,
          ks::BsrConvPlan::Layout::kShifted, ks::BsrConvPlan::Layout::kTiled,
          ks::BsrConvPlan::Layout::kStride2}) {
      auto plan = ks::BsrConvPlan::CreateWithLayout(p, *sw, layout, k);
      ASSERT_TRUE(plan.ok()) << plan.status().ToString();
      if (std::find(seen.begin(), seen.end(), plan->layout()) != seen.end()) continue;
      seen.emplace_back(plan->layout());
      if (private_copies) plan->EnablePrivateCopies();
      if (setup) setup(*plan);
      constexpr int64_t kGuard = 64;
      constexpr float kGuardValue = 12345.0f;
      for (int threads : thread_counts) {
        SCOPED_TRACE(fmt::format("{} layout {} threads {}", k->name, plan->layout(), threads));
        // NaN, not zeros: the plan must write every scratch value a valid
        // output reads (padding included), nor find one left from the
        // previous run (another thread split).
        const int64_t need = plan->scratch_floats(threads);
        std::vector<float> scratch(static_cast<size_t>(need + kGuard), std::nanf(""));
        std::fill(scratch.begin() + need, scratch.end(), kGuardValue);
        std::vector<float> y(static_cast<size_t>(out_n), std::nanf(""));
        const float* residual = nullptr;
        if (pr.residual && threads >= 2) {
          // In place: the residual is y's own storage.
          std::copy(res.data<float>(), res.data<float>() + out_n, y.begin());
          residual = y.data();
        } else if (pr.residual) {
          residual = res.data<float>();
        }
        plan->Run(x.data<float>(), pr.bias ? b.data<float>() : nullptr, y.data(), scratch.data(),
                  threads, residual);
        int64_t bad = 0;
        for (int64_t i = 0; i < out_n; ++i) {
          const double e = std::abs(double(y[i]) - yd[i]);
          if (!(e <= tol * (1.0 + std::abs(yd[i])))) {
            if (++bad <= 3) ADD_FAILURE() << "y[" << i << "] = " << y[i] << ", want " << yd[i];
          }
        }
        ASSERT_EQ(bad, 0);
        for (int64_t i = need; i < need + kGuard; ++i)
          ASSERT_EQ(scratch[static_cast<size_t>(i)], kGuardValue) << "written past the scratch";
      }
    }
  }
}

int64_t OutDim(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe) {
  return (in + pb + pe - ((k - 1) * d + 1)) / s + 1;
}

// A c -> m conv with a k x k kernel, stride s, dilation d and "same" padding
// d * (k / 2) on an h x w plane (no activation).
kref::ConvParams SquareConv(int64_t c, int64_t m, int64_t h, int64_t w, int64_t k, int64_t s = 1,
                            int64_t d = 1) {
  kref::ConvParams p;
  p.in_channels = c;
  p.out_channels = m;
  p.in = {1, h, w};
  p.kernel = {1, k, k};
  p.stride = {1, s, s};
  p.dilation = {1, d, d};
  p.pad_begin = {0, d * (k / 2), d * (k / 2)};
  p.pad_end = p.pad_begin;
  p.out = {1, OutDim(h, k, s, d, p.pad_begin[1], p.pad_end[1]),
           OutDim(w, k, s, d, p.pad_begin[2], p.pad_end[2])};
  return p;
}

TEST(BlockSparseConv, RandomGeometries) {
  Rng rng(TestSeed());
  const int blocks[][2] = {{8, 8}, {8, 3}, {8, 16}, {4, 4}, {16, 8}, {1, 1}, {3, 5}};
  const int64_t kernel_shapes[][2] = {{1, 1}, {3, 3}, {5, 5}, {1, 7}, {7, 1}, {2, 3}};
  int cases = 0;
  while (cases < 120) {
    Problem pr;
    kref::ConvParams& p = pr.p;
    const auto& blk = blocks[rng() % std::size(blocks)];
    pr.br = blk[0];
    pr.bc = blk[1];
    const auto& ks_ = kernel_shapes[rng() % std::size(kernel_shapes)];
    p.batch = 1 + rng() % 2;
    p.in_channels = 1 + rng() % 40;
    p.out_channels = 1 + rng() % 40;
    p.in = {1, int64_t(1 + rng() % 20), int64_t(1 + rng() % 23)};
    p.kernel = {1, ks_[0], ks_[1]};
    p.stride = {1, int64_t(1 + rng() % 3), int64_t(1 + rng() % 3)};
    p.dilation = {1, int64_t(1 + rng() % 2), int64_t(1 + rng() % 2)};
    p.pad_begin = {0, int64_t(rng() % 3), int64_t(rng() % 3)};
    p.pad_end = {0, int64_t(rng() % 3), int64_t(rng() % 3)};
    p.out = {
        1, OutDim(p.in[1], p.kernel[1], p.stride[1], p.dilation[1], p.pad_begin[1], p.pad_end[1]),
        OutDim(p.in[2], p.kernel[2], p.stride[2], p.dilation[2], p.pad_begin[2], p.pad_end[2])};
    if (p.out[1] < 1 || p.out[2] < 1) continue;
    const int act = rng() % 3;
    if (act == 1) p.activation.kind = kref::ActivationKind::kRelu;
    if (act == 2) {
      p.activation.kind = kref::ActivationKind::kClip;
      p.activation.alpha = -0.5f;
      p.activation.beta = 1.5f;
    }
    pr.bias = rng() % 4 != 0;
    pr.residual = rng() % 3 == 0;
    ++cases;
    Check(pr, kSparsities[rng() % std::size(kSparsities)], rng, KernelsFor(pr.br));
    if (HasFatalFailure()) return;
  }
}

// Real layer shapes (ResNet-50, VGG-16, Inception-v3) at full size, 8x8
// blocks, the kernel the dispatcher picks plus the AVX2 one when present.
TEST(BlockSparseConv, ZooLayerShapes) {
  struct Layer {
    int64_t c, m, h, w, kh, kw, s, ph, pw;
  };
  const Layer layers[] = {
      {3, 64, 224, 224, 7, 7, 2, 3, 3},     // resnet50 conv1 (block wider than C)
      {64, 64, 56, 56, 3, 3, 1, 1, 1},      // resnet50 layer1 conv2
      {256, 64, 56, 56, 1, 1, 1, 0, 0},     // resnet50 layer1 conv1
      {128, 128, 56, 56, 3, 3, 2, 1, 1},    // resnet50 layer2.0 conv2 (stride 2)
      {512, 1024, 28, 28, 1, 1, 2, 0, 0},   // resnet50 layer3.0 downsample (1x1 stride 2)
      {512, 512, 7, 7, 3, 3, 1, 1, 1},      // resnet50 layer4 conv2
      {2048, 512, 7, 7, 1, 1, 1, 0, 0},     // resnet50 layer4 conv1
      {256, 256, 28, 28, 3, 3, 1, 1, 1},    // vgg16 conv3
      {128, 128, 17, 17, 1, 7, 1, 0, 3},    // inception_v3 mixed_6 1x7
      {128, 192, 17, 17, 7, 1, 1, 3, 0},    // inception_v3 mixed_6 7x1
      {288, 384, 35, 35, 3, 3, 2, 0, 0},    // inception_v3 mixed_6a 3x3 s2 valid
      {160, 192, 17, 17, 7, 1, 1, 3, 0},    // inception_v3 mixed_6b 7x1 (C, M not 8k+0 blocks)
      {64, 96, 35, 35, 3, 3, 1, 1, 1},      // inception_v3 mixed_5b 3x3
      {144, 24, 56, 56, 1, 1, 1, 0, 0},     // mobilenet_v2 project (M = 3 blocks)
      {24, 144, 56, 56, 1, 1, 1, 0, 0},     // mobilenet_v2 expand
      {960, 160, 7, 7, 1, 1, 1, 0, 0},      // mobilenet_v2 7x7 project (48 + 1 tail)
      {320, 1280, 7, 7, 1, 1, 1, 0, 0},     // mobilenet_v2 last pointwise
      {1024, 2048, 14, 14, 1, 1, 2, 0, 0},  // resnet50 layer4.0 downsample (1x1 s2)
      {512, 512, 14, 14, 3, 3, 2, 1, 1},    // resnet50 layer4.0 conv2 (3x3 s2 to 7x7)
      {256, 256, 14, 14, 3, 3, 1, 1, 1},    // resnet50 layer3 conv2
      // resnet50 layer3.0 conv2 (3x3 s2 to 14x14, six shifted planes):
      // position chunks of 48, the last one 2 x 48 + 4 (fused tails).
      {256, 256, 28, 28, 3, 3, 2, 1, 1},
  };
  Rng rng(TestSeed());
  std::vector<const ks::BsrConvKernel*> kernels = {&ks::SelectBsrConvKernel(8)};
  for (const ks::BsrConvKernel* k : KernelsFor(8))
    if (k->isa == ks::Isa::kAvx2 && k != kernels[0]) kernels.push_back(k);
  // The reference is the oracle's twin: it is tested on the small problems.
  for (size_t i = 0; i < std::size(layers); ++i) {
    const Layer& l = layers[i];
    // Under WBS_ISA_CAP=ref the scalar kernel would take seconds per layer;
    // it is checked on the small problems of RandomGeometries.
    if (kernels[0]->isa == ks::Isa::kRef && l.c * l.m * l.kh * l.kw * l.h * l.w > 40'000'000)
      continue;
    Problem pr;
    kref::ConvParams& p = pr.p;
    p.in_channels = l.c;
    p.out_channels = l.m;
    p.in = {1, l.h, l.w};
    p.kernel = {1, l.kh, l.kw};
    p.stride = {1, l.s, l.s};
    p.pad_begin = {0, l.ph, l.pw};
    p.pad_end = {0, l.ph, l.pw};
    p.out = {1, OutDim(l.h, l.kh, l.s, 1, l.ph, l.ph), OutDim(l.w, l.kw, l.s, 1, l.pw, l.pw)};
    p.activation.kind = kref::ActivationKind::kRelu;
    pr.residual = l.kh == 1;  // ResNet's conv3 + Add + Relu
    Check(pr, kSparsities[i % std::size(kSparsities)], rng, kernels);
    if (HasFatalFailure()) return;
  }
}

// Stride 2 read in place (bsr_conv_plan.h "Stride 2 in place", the AVX-512
// kernel's stride-2 variant; Check also runs the copying layouts): random
// 1x1, 3x3 and smaller kernels, pads 0..2 each side (asymmetric), odd and
// even widths whose output rows are below, at and past 16 and 48 columns
// (partial vectors, tiles of 1-3 vectors, rows crossing a tile), ragged
// channels, sparsity 0..1, 1-3 threads (block-row and position splits),
// bias/residual/clamp. Within the tolerance of the reference, not bit-exact
// with the copying layouts.
TEST(BlockSparseConv, Stride2Direct) {
  Rng rng(TestSeed() + 9);
  {
    // The layout exists where the kernel has the variant; WBS_BSR_S2's
    // parse (the runtime's switch) leaves the default at auto.
    const ks::BsrConvKernel& k8 = ks::SelectBsrConvKernel(8);
    Tensor w = RandomTensor({16, 16, 3, 3}, rng);
    auto sw = BlockSparseWeight::FromDense(w, 8, 8);
    ASSERT_TRUE(sw.ok());
    auto plan = ks::BsrConvPlan::CreateWithLayout(SquareConv(16, 16, 56, 56, 3, 2), *sw,
                                                  ks::BsrConvPlan::Layout::kStride2);
    ASSERT_TRUE(plan.ok());
    EXPECT_STREQ(plan->layout(), k8.stride2 ? "s2direct" : "phase");
  }
  const int64_t kernel_shapes[][2] = {{1, 1}, {3, 3}, {3, 3}, {2, 2}, {1, 3}, {3, 1}};
  const int blocks[][2] = {{8, 8}, {8, 3}, {8, 16}};
  for (int n = 0; n < 80; ++n) {
    Problem pr;
    kref::ConvParams& p = pr.p;
    const auto& blk = blocks[rng() % std::size(blocks)];
    pr.br = blk[0];
    pr.bc = blk[1];
    const auto& k = kernel_shapes[rng() % std::size(kernel_shapes)];
    p.batch = 1 + rng() % 2;
    p.in_channels = 1 + rng() % 40;
    p.out_channels = 1 + rng() % 40;
    // Widths to 1..70: output rows of 1..36 columns.
    p.in = {1, int64_t(1 + rng() % 24), int64_t(1 + rng() % 70)};
    p.kernel = {1, k[0], k[1]};
    p.stride = {1, 2, 2};
    const bool same = rng() % 2 == 0;  // ResNet's pad k / 2 both sides, else random
    for (int d = 1; d <= 2; ++d) {
      p.pad_begin[d] = same ? p.kernel[d] / 2 : int64_t(rng() % 3);
      p.pad_end[d] = same ? p.kernel[d] / 2 : int64_t(rng() % 3);
    }
    p.out = {1, OutDim(p.in[1], p.kernel[1], 2, 1, p.pad_begin[1], p.pad_end[1]),
             OutDim(p.in[2], p.kernel[2], 2, 1, p.pad_begin[2], p.pad_end[2])};
    if (p.out[1] < 1 || p.out[2] < 1) continue;
    if (rng() % 2) p.activation.kind = kref::ActivationKind::kRelu;
    pr.bias = rng() % 4 != 0;
    pr.residual = rng() % 3 == 0;
    const double sparsity =
        rng() % 8 == 0 ? double(rng() % 101) / 100.0 : kSparsities[rng() % std::size(kSparsities)];
    Check(pr, sparsity, rng, KernelsFor(pr.br));
    if (HasFatalFailure()) return;
  }
}

// Planes of 48k + p positions (p <= 4): the AVX-512 kernel fuses the tail
// positions into the last full 48-position tiles (vectorized over the output
// channels; one per tile, or two when k < p), else (2k < p) runs the tail on
// its own. Every block shape, ragged output channels (partial row groups
// in the fused store), bias/residual/clamp combinations, both layouts (a
// 3x3 padded 7x7 is 49 positions in the shifted layout, 63 in phase planes).
TEST(BlockSparseConv, FusedTails) {
  Rng rng(TestSeed() + 2);
  struct Shape {
    int64_t c, m, h, w, k;
  };
  const Shape shapes[] = {
      {64, 61, 7, 7, 1},    // 48 + 1, fused into the only tile
      {40, 24, 14, 14, 1},  // 4 x 48 + 4, one per tile
      {24, 13, 7, 21, 1},   // 3 x 48 + 3
      {16, 19, 5, 10, 1},   // 48 + 2: two in the only tile
      {32, 16, 10, 10, 1},  // 2 x 48 + 4: two per tile
      {16, 11, 1, 52, 1},   // 48 + 4: not fused
      {24, 21, 7, 7, 3},    // 3x3 pad 1: shifted 48 + 1 (fused), phase 63 positions
      {20, 9, 1, 49, 1},    // one row
  };
  const int blocks[][2] = {{8, 8}, {8, 3}, {16, 8}, {5, 7}, {4, 4}};
  int n = 0;
  for (const Shape& sh : shapes) {
    for (const auto& blk : blocks) {
      Problem pr;
      kref::ConvParams& p = pr.p;
      pr.br = blk[0];
      pr.bc = blk[1];
      p = SquareConv(sh.c, sh.m, sh.h, sh.w, sh.k);
      p.activation.kind = n % 3 == 0 ? kref::ActivationKind::kRelu : kref::ActivationKind::kNone;
      pr.bias = n % 4 != 1;
      pr.residual = n % 2 == 0;
      Check(pr, kSparsities[n % std::size(kSparsities)], rng, KernelsFor(pr.br));
      if (HasFatalFailure()) return;
      ++n;
    }
  }
}

// The AVX2 kernel's tiled 1x1 input copy (bsr_conv_plan.h "Tiled"): 1x1
// unpadded convs, stride 1 with at least kTiledMinReuse kept blocks per
// block-column, and strided ones (the copy gathers every s-th position).
// Planes of 24k + p positions (full tiles, masked partial tiles, the <= 4
// position channel tail), ragged input channels, wide rows (more than the
// kernel's 16-block groups, partial sums parked), empty block-rows, 1-3 threads (position splits
// in 16-position groups start inside a copy tile), bias/residual/clamp. The
// tiled plan keeps the FMA order of the untiled one (read in place, or
// phase planes): its output must be bit-identical.
TEST(BlockSparseConv, TiledOneByOne) {
  Rng rng(TestSeed() + 5);
  const ks::BsrConvKernel* avx2 = nullptr;
  for (const ks::BsrConvKernel* k : KernelsFor(8))
    if (k->isa == ks::Isa::kAvx2) avx2 = k;
  if (!avx2) GTEST_SKIP() << "no AVX2 kernel here";
  struct Shape {
    int64_t c, m, h, w, s;
  };
  const Shape shapes[] = {
      {16, 600, 7, 7, 1},     // 2 x 24 + 1: channel tail
      {20, 584, 5, 10, 1},    // 2 x 24 + 2, ragged block-column
      {8, 552, 1, 29, 1},     // 24 + 5: masked partial tile
      {24, 576, 14, 14, 1},   // 8 x 24 + 4
      {13, 592, 11, 9, 1},    // 4 x 24 + 3, C < 2 blocks
      {64, 565, 12, 12, 1},   // 6 x 24, ragged block-row (M = 565)
      {40, 528, 28, 28, 1},   // 32 x 24 + 16: chunks, position splits
      {32, 560, 3, 11, 1},    // 24 + 9
      {300, 352, 6, 9, 1},    // 2 x 24 + 6, wide rows, ragged block-column
      {520, 160, 5, 7, 1},    // 24 + 11, wide rows
      {64, 96, 14, 14, 2},    // stride 2 to 7x7: 2 x 24 + 1
      {44, 200, 13, 11, 2},   // stride 2 to 7x6 (odd input), 24 + 18
      {600, 136, 28, 28, 2},  // ResNet-like downsample: 8 x 24 + 4, wide rows
      {24, 64, 12, 20, 3},    // stride 3 to 4x7
  };
  int n = 0, tiled = 0;
  for (const Shape& sh : shapes) {
    for (double sparsity : {0.0, 0.25, 0.4, 0.9}) {
      Problem pr;
      pr.p = SquareConv(sh.c, sh.m, sh.h, sh.w, 1, sh.s);
      kref::ConvParams& p = pr.p;
      p.activation.kind = n % 3 == 0 ? kref::ActivationKind::kRelu : kref::ActivationKind::kNone;
      pr.bias = n % 4 != 1;
      pr.residual = n % 2 == 0;
      {
        SCOPED_TRACE(fmt::format("seed {}: {} sparsity {}", TestSeed(), pr.Describe(), sparsity));
        // The plan takes the tiled copy for these (or the test covers nothing).
        Tensor w = RandomTensor({p.out_channels, p.in_channels, 1, 1}, rng);
        ApplyMask(w, RandomMask(p.out_channels, p.in_channels, 8, 8, sparsity, rng));
        auto sw = BlockSparseWeight::FromDense(w, 8, 8);
        ASSERT_TRUE(sw.ok());
        auto plan = ks::BsrConvPlan::Create(p, *sw, avx2);
        ASSERT_TRUE(plan.ok());
        if (sh.s > 1 || sw->nnz_blocks() >= ks::BsrConvPlan::kTiledMinReuse * sw->block_cols()) {
          EXPECT_STREQ(plan->layout(), "tiled");
          ++tiled;
        }
        // Forced tiled vs untiled, 1 and 2 threads: the same bits.
        auto t = ks::BsrConvPlan::CreateWithLayout(p, *sw, ks::BsrConvPlan::Layout::kTiled, avx2);
        auto u = ks::BsrConvPlan::CreateWithLayout(p, *sw, ks::BsrConvPlan::Layout::kPhase, avx2);
        ASSERT_TRUE(t.ok() && u.ok());
        ASSERT_STREQ(t->layout(), "tiled");
        ASSERT_STREQ(u->layout(), sh.s > 1 ? "phase" : "direct");
        Tensor x = RandomTensor({1, p.in_channels, p.in[1], p.in[2]}, rng);
        Tensor b = RandomTensor({p.out_channels}, rng);
        const int64_t out_n = p.out_channels * p.out[1] * p.out[2];
        for (int threads : {1, 2}) {
          std::vector<float> yt(static_cast<size_t>(out_n)), yu(yt.size());
          std::vector<float> st(static_cast<size_t>(t->scratch_floats(threads)), std::nanf(""));
          std::vector<float> su(static_cast<size_t>(u->scratch_floats(threads)), std::nanf(""));
          t->Run(x.data<float>(), b.data<float>(), yt.data(), st.data(), threads);
          u->Run(x.data<float>(), b.data<float>(), yu.data(), su.data(), threads);
          ASSERT_EQ(0, std::memcmp(yt.data(), yu.data(), yt.size() * sizeof(float)))
              << "threads " << threads;
        }
      }
      Check(pr, sparsity, rng, {avx2});
      if (HasFatalFailure()) return;
      ++n;
    }
  }
  EXPECT_GE(tiled, n / 2);
}

// The thread splits (bsr_conv_plan.h "Threads"): by output positions in
// whole 48-position tiles (the input copy split by plane rows, so the taps
// reach into the rows another thread copied), by block-rows, by 16-position
// groups. Planes whose position count leaves partial tiles and tails at 2,
// 3 and 4 threads, both input layouts; the sparsity moves a layer between
// splits (fewer kept weights than input floats: positions).
TEST(BlockSparseConv, ThreadSplits) {
  Rng rng(TestSeed() + 11);
  struct Shape {
    int64_t c, m, h, w, k, s;
  };
  const Shape shapes[] = {
      {24, 72, 20, 23, 3, 1},  // 9 block-rows: rows at 2 threads (dense), not at 3
      {16, 16, 13, 17, 1, 1},  // 221 positions in place, 2 block-rows: positions
      {40, 96, 29, 31, 3, 2},  // stride 2: phase planes, row copy from two phases
      {8, 136, 14, 14, 3, 1},  // 196 = 4 x 48 + 4: tiles at 2 threads, groups at 3
      {64, 64, 16, 16, 5, 1},  // taps reach two rows into the next thread's copy
      {32, 24, 1, 500, 3, 1},  // one output row: every thread's copy is that row
  };
  for (const Shape& sh : shapes) {
    for (double sparsity : {0.0, 0.5, 0.9}) {
      Problem pr;
      kref::ConvParams& p = pr.p;
      p.in_channels = sh.c;
      p.out_channels = sh.m;
      p.in = {1, sh.h, sh.w};
      p.kernel = {1, sh.h == 1 ? 1 : sh.k, sh.k};
      p.stride = {1, sh.s, sh.s};
      p.pad_begin = {0, p.kernel[1] / 2, sh.k / 2};
      p.pad_end = p.pad_begin;
      p.out = {1, OutDim(sh.h, p.kernel[1], sh.s, 1, p.pad_begin[1], p.pad_end[1]),
               OutDim(sh.w, sh.k, sh.s, 1, p.pad_begin[2], p.pad_end[2])};
      p.activation.kind = kref::ActivationKind::kRelu;
      pr.residual = sh.k == 1;
      Check(pr, sparsity, rng, {&ks::SelectBsrConvKernel(8)}, {1, 2, 3, 4});
      if (HasFatalFailure()) return;
    }
  }
}

// Private input copies (BsrConvPlan::EnablePrivateCopies, the runtime
// operator's block-row split): every thread packs all channels into its own
// copy. Shapes that split by block-rows at 2-4 threads (small planes, many
// block-rows: ResNet-50's 14x14 / 7x7 3x3 layers, a stride-2 3x3 to 7x7, a
// strided 1x1 downsample, odd sizes, dilation, a 5x5 reaching two rows),
// both layouts, every runnable kernel; results as without copies, nothing
// written past scratch_floats(threads).
TEST(BlockSparseConv, PrivateCopies) {
  Rng rng(TestSeed() + 12);
  struct Shape {
    int64_t c, m, h, w, k, s, d;
  };
  const Shape shapes[] = {
      {64, 256, 14, 14, 3, 1, 1},
      {48, 128, 7, 7, 3, 1, 1},
      {40, 72, 14, 14, 3, 2, 1},
      {32, 80, 13, 11, 1, 2, 1},
      {24, 72, 9, 10, 5, 1, 1},
      {16, 64, 11, 9, 3, 1, 2},
      // Planes large enough for a position split without private copies:
      // block-rows with them (8 block-rows: 2 threads only).
      {32, 64, 28, 28, 3, 1, 1},
      {24, 64, 27, 29, 1, 2, 1},
  };
  for (const Shape& sh : shapes) {
    for (double sparsity : {0.0, 0.5, 0.9}) {
      Problem pr;
      kref::ConvParams& p = pr.p;
      p = SquareConv(sh.c, sh.m, sh.h, sh.w, sh.k, sh.s, sh.d);
      p.activation.kind = kref::ActivationKind::kRelu;
      pr.residual = sh.k == 1;
      // Both rules: kRowsWhenPrivate takes block-rows for the large planes too.
      for (auto rule : {ks::BsrConvPlan::SplitRule::kSize,
                        ks::BsrConvPlan::SplitRule::kRowsWhenPrivate}) {
        Check(pr, sparsity, rng, KernelsFor(8), {1, 2, 3, 4}, true,
              [rule](ks::BsrConvPlan& plan) { plan.SetSplitRule(rule); });
        if (HasFatalFailure()) return;
      }
    }
  }
}

// A worker that starts late (BsrConvPlan::SetLateWorkerForTesting: thread 1
// sleeps 300 us): the others claim and copy its part of a shared input copy
// (plane rows of a position split, channels of a block-row split) and take
// its calls; it then finds its part copied. Position and block-row splits,
// shared and private copies, odd shapes, 2-4 threads, sparsity 0..1.
TEST(BlockSparseConv, LateWorkerCopiesNotWaitedFor) {
  struct LateWorker {
    LateWorker() { ks::BsrConvPlan::SetLateWorkerForTesting(300); }
    ~LateWorker() { ks::BsrConvPlan::SetLateWorkerForTesting(0); }
  } late;
  Rng rng(TestSeed() + 13);
  struct Shape {
    int64_t c, m, h, w, k, s;
  };
  const Shape shapes[] = {
      {24, 72, 20, 23, 3, 1},  // block-rows (dense), positions when sparse
      {40, 96, 29, 31, 3, 2},  // stride 2 phase planes, rows copied from two phases
      {64, 64, 16, 16, 5, 1},  // taps reach two rows into the next part
      {48, 128, 7, 7, 3, 1},   // block-rows, shifted planes
      {36, 80, 13, 11, 1, 2},  // strided 1x1, ragged channels
  };
  for (const Shape& sh : shapes) {
    for (double sparsity : {0.0, 0.5, 0.9, 1.0}) {
      Problem pr;
      kref::ConvParams& p = pr.p;
      p = SquareConv(sh.c, sh.m, sh.h, sh.w, sh.k, sh.s);
      p.activation.kind = kref::ActivationKind::kRelu;
      for (bool private_copies : {false, true}) {
        Check(pr, sparsity, rng, {&ks::SelectBsrConvKernel(8)}, {2, 3, 4}, private_copies);
        if (HasFatalFailure()) return;
      }
    }
  }
}

// The split rules (BsrConvPlan::SetSplitRule) with private copies, and
// finer calls (SetMinCalls: smaller position chunks or block-row groups
// when a thread's share has few calls): every rule x min calls 0/8/64, 1-4
// threads, shapes that split by positions or block-rows (3x3 phase and
// shifted planes, tiled and direct 1x1 with a residual in place, strided),
// with a late worker for one setting; results as the reference.
TEST(BlockSparseConv, SplitRulesAndMinCalls) {
  Rng rng(TestSeed() + 14);
  struct Shape {
    int64_t c, m, h, w, k, s;
  };
  const Shape shapes[] = {
      {64, 64, 28, 28, 3, 1},    // input > weights: positions by size, rows+private by rows
      {64, 256, 14, 14, 3, 1},   // block-rows either way
      {64, 256, 28, 27, 1, 1},   // tiled 1x1, residual, few calls per share
      {256, 64, 14, 14, 1, 1},   // 1x1, many channels
      {40, 72, 14, 14, 3, 2},    // stride 2 phase planes
      {48, 128, 7, 7, 3, 1},     // shifted planes, one chunk
      {36, 80, 13, 11, 1, 2},    // strided 1x1, ragged channels
      {256, 512, 7, 7, 1, 1},    // tiled 1x1 by block-rows: one group per share -> smaller groups
      {256, 512, 14, 14, 1, 1},  // tiled 1x1, 196 positions: rows or whole-tile positions
      {128, 256, 28, 28, 1, 2},  // strided tiled 1x1 to 14x14
  };
  using Rule = ks::BsrConvPlan::SplitRule;
  for (const Shape& sh : shapes) {
    for (double sparsity : {0.5, 0.9}) {
      Problem pr;
      pr.p = SquareConv(sh.c, sh.m, sh.h, sh.w, sh.k, sh.s);
      pr.p.activation.kind = kref::ActivationKind::kRelu;
      pr.residual = sh.k == 1;
      for (Rule rule : {Rule::kRowsWhenPrivate, Rule::kSize, Rule::kShared, Rule::kTiles,
                        Rule::kTilesPos, Rule::kTilesShared, Rule::kTilesFine})
        for (int min_calls : {0, 8, 64}) {
          SCOPED_TRACE(fmt::format("rule {} min_calls {}", static_cast<int>(rule), min_calls));
          Check(pr, sparsity, rng, {&ks::SelectBsrConvKernel(8)}, {1, 2, 3, 4}, true,
                [=](ks::BsrConvPlan& plan) {
                  plan.SetSplitRule(rule);
                  plan.SetMinCalls(min_calls);
                });
          if (HasFatalFailure()) return;
        }
      struct LateWorker {
        LateWorker() { ks::BsrConvPlan::SetLateWorkerForTesting(300); }
        ~LateWorker() { ks::BsrConvPlan::SetLateWorkerForTesting(0); }
      } late;
      Check(pr, sparsity, rng, {&ks::SelectBsrConvKernel(8)}, {2, 3}, true,
            [](ks::BsrConvPlan& plan) {
              plan.SetSplitRule(Rule::kSize);
              plan.SetMinCalls(8);
            });
      if (HasFatalFailure()) return;
      for (Rule rule : {Rule::kTilesPos, Rule::kTilesShared}) {
        Check(pr, sparsity, rng, {&ks::SelectBsrConvKernel(8)}, {2, 3}, true,
              [=](ks::BsrConvPlan& plan) { plan.SetSplitRule(rule); });
        if (HasFatalFailure()) return;
      }
    }
  }
}

// Which split each rule picks (split_name): a 56x56 3x3 layer whose input
// copy (0.86 MB, private-copy size) is larger than its kept weights goes by
// positions under kSize and kShared, by block-rows with private copies
// under kRowsWhenPrivate; a 14x14 one whose weights are the larger operand
// goes by block-rows under every rule (private copies unless kShared).
TEST(BlockSparseConv, SplitRuleChoosesByOperandSize) {
  Rng rng(TestSeed() + 15);
  using Rule = ks::BsrConvPlan::SplitRule;
  struct Case {
    int64_t c, m, hw;
    const char* rows_when_private;
    const char* size;
    const char* shared;
  };
  const Case cases[] = {
      {64, 64, 56, "rows+private", "positions", "positions"},
      {256, 256, 14, "rows+private", "rows+private", "rows"},
  };
  for (const Case& cs : cases) {
    const kref::ConvParams p = SquareConv(cs.c, cs.m, cs.hw, cs.hw, 3);
    Tensor w = RandomTensor({cs.m, cs.c, 3, 3}, rng);
    ApplyMask(w, RandomMask(cs.m, cs.c, 8, 8, 0.5, rng));
    auto sw = BlockSparseWeight::FromDense(w, 8, 8);
    ASSERT_TRUE(sw.ok()) << sw.status().ToString();
    auto plan = ks::BsrConvPlan::Create(p, *sw, &ks::SelectBsrConvKernel(8));
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    plan->EnablePrivateCopies();
    EXPECT_STREQ(plan->split_name(1), "none");
    plan->SetSplitRule(Rule::kRowsWhenPrivate);
    EXPECT_STREQ(plan->split_name(2), cs.rows_when_private) << cs.hw;
    plan->SetSplitRule(Rule::kSize);
    EXPECT_STREQ(plan->split_name(2), cs.size) << cs.hw;
    plan->SetSplitRule(Rule::kShared);
    EXPECT_STREQ(plan->split_name(2), cs.shared) << cs.hw;
  }
}

// Private copies apply only to copies up to kPrivateCopyMaxBytes (a core's
// L2): scratch_floats(threads) grows per thread below it, not above.
TEST(BlockSparseConv, PrivateCopiesOnlyWhenTheCopyFitsL2) {
  Rng rng(TestSeed() + 13);
  for (const int64_t c : {64, 1024}) {
    kref::ConvParams p;
    p.in_channels = c;
    p.out_channels = 64;
    p.in = {1, 14, 14};
    p.out = {1, 14, 14};
    p.kernel = {1, 3, 3};
    p.pad_begin = {0, 1, 1};
    p.pad_end = {0, 1, 1};
    Tensor w = RandomTensor({p.out_channels, c, 3, 3}, rng);
    ApplyMask(w, RandomMask(p.out_channels, c, 8, 8, 0.5, rng));
    auto sw = BlockSparseWeight::FromDense(w, 8, 8);
    ASSERT_TRUE(sw.ok()) << sw.status().ToString();
    auto plan = ks::BsrConvPlan::Create(p, *sw);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    const int64_t one = plan->scratch_floats();
    EXPECT_EQ(plan->scratch_floats(2), one);
    plan->EnablePrivateCopies();
    EXPECT_EQ(plan->scratch_floats(1), one);
    if (one * 4 <= ks::BsrConvPlan::kPrivateCopyMaxBytes) {
      EXPECT_GE(plan->scratch_floats(3), 3 * one) << c << " channels";
    } else {
      EXPECT_EQ(plan->scratch_floats(3), one) << c << " channels";
    }
  }
}

TEST(BlockSparseConv, Gemm) {
  Rng rng(TestSeed());
  for (int64_t n : {1, 7, 16, 33, 100}) {
    for (double sparsity : kSparsities) {
      const int64_t m = 1 + rng() % 70, k = 1 + rng() % 90;
      SCOPED_TRACE(
          fmt::format("seed {}: gemm {}x{}x{} sparsity {}", TestSeed(), m, k, n, sparsity));
      Tensor w = RandomTensor({m, k}, rng);
      ApplyMask(w, RandomMask(m, k, 8, 8, sparsity, rng));
      Tensor x = RandomTensor({k, n}, rng);
      auto sw = BlockSparseWeight::FromDense(w, 8, 8);
      ASSERT_TRUE(sw.ok());
      for (const ks::BsrConvKernel* kern : KernelsFor(8)) {
        auto plan = ks::BsrConvPlan::CreateGemm(n, *sw, kern);
        ASSERT_TRUE(plan.ok()) << plan.status().ToString();
        EXPECT_EQ(plan->scratch_floats(), 0);
        std::vector<float> y(static_cast<size_t>(m * n));
        plan->Run(x.data<float>(), nullptr, y.data(), nullptr, 1);
        const float* wp = w.data<float>();
        const float* xp = x.data<float>();
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            double s = 0;
            for (int64_t l = 0; l < k; ++l) s += double(wp[i * k + l]) * xp[l * n + j];
            ASSERT_NEAR(y[i * n + j], s, 1e-4 * (1 + std::abs(s))) << kern->name;
          }
      }
    }
  }
}

// The prefetch request (BsrConvArgs::prefetch_*) is a hint: with any
// request — empty, larger than the call can issue, reaching past the
// buffers — every kernel writes exactly what it writes without one (1x1
// problems over a flat plane, whole and partial tiles, every block-row
// alone and all at once).
TEST(BlockSparseConv, PrefetchHintDoesNotChangeResults) {
  Rng rng(TestSeed() + 7);
  for (int64_t n : {1, 49, 100, 196}) {
    for (double sparsity : {0.0, 0.5, 0.9}) {
      const int64_t m = 8 + rng() % 60, k = 1 + rng() % 200;
      SCOPED_TRACE(fmt::format("seed {}: {}x{}x{} sparsity {}", TestSeed(), m, k, n, sparsity));
      Tensor w = RandomTensor({m, k}, rng);
      ApplyMask(w, RandomMask(m, k, 8, 8, sparsity, rng));
      Tensor x = RandomTensor({k, n}, rng);
      Tensor bias = RandomTensor({m}, rng);
      auto sw = BlockSparseWeight::FromDense(w, 8, 8);
      ASSERT_TRUE(sw.ok());
      const int64_t tap = 0;
      for (const ks::BsrConvKernel* kern : KernelsFor(8)) {
        ks::BsrConvArgs a;
        a.row_ptr = sw->row_ptr().data();
        a.col_idx = sw->col_idx().data();
        a.blocks = sw->values();
        a.br = a.bc = 8;
        a.out_channels = m;
        a.in_channels = k;
        a.tap_offset = &tap;
        a.x = x.data<float>();
        a.x_channel_stride = n;
        a.y_channel_stride = n;
        a.pitch = a.out_w = n;
        a.out_h = 1;
        a.bias = bias.data<float>();
        a.lo = 0.0f;
        a.q_end = n;
        const int64_t rows = sw->block_rows();
        std::vector<float> want(static_cast<size_t>(m * n)), got(want.size());
        a.y = want.data();
        a.row_end = rows;
        kern->fn(a);
        for (int pass = 0; pass < 2; ++pass) {
          // Pass 0: one call per block-row (as the plan calls); pass 1: one
          // call for all of them.
          std::fill(got.begin(), got.end(), std::nanf(""));
          for (int64_t r = 0; r < (pass == 0 ? rows : 1); ++r) {
            a.row_begin = pass == 0 ? r : 0;
            a.row_end = pass == 0 ? r + 1 : rows;
            a.prefetch_w = sw->values() + (r % 2) * 64;
            a.prefetch_w_bytes = int64_t{64} << (r % 12);
            a.prefetch_x = x.data<float>() + r;
            a.prefetch_x_ranges = r % 3 == 0 ? 0 : k + r;
            a.prefetch_x_stride = n;
            a.prefetch_x_bytes = 4 * (n + r);
            a.y = got.data();
            kern->fn(a);
          }
          for (size_t i = 0; i < want.size(); ++i)
            ASSERT_EQ(got[i], want[i]) << kern->name << " pass " << pass << " y[" << i << "]";
        }
      }
    }
  }
}

// Outputs larger than the L2 (>= 2 MB per image) against the reference: y
// 64-byte aligned and one float off, with and without a residual (in place
// at 2 threads), a ragged last block-row (M = 8k + 4: the partial row group
// takes the checked stores), 1 and 2 threads, sparsity 0..100%, and nothing
// written outside y.
TEST(BlockSparseConv, LargeOutputs) {
  Rng rng(TestSeed() + 11);
  // 16 input channels keep the reference cheap; 172-176 x 56 x 56 outputs.
  constexpr int64_t kC = 16;
  std::vector<const ks::BsrConvKernel*> kernels = KernelsFor(8);
  if (ks::ActiveIsa() == ks::Isa::kRef) GTEST_SKIP() << "reference: checked on small problems";
  for (int64_t m : {176, 172}) {
    for (double sparsity : {0.0, 0.5, 0.9, 1.0}) {
      kref::ConvParams p;
      p.in_channels = kC;
      p.out_channels = m;
      p.in = {1, 56, 56};
      p.out = {1, 56, 56};
      p.kernel = {1, 1, 1};
      p.activation.kind = kref::ActivationKind::kRelu;
      SCOPED_TRACE(fmt::format("seed {}: m {} sparsity {}", TestSeed(), m, sparsity));
      Tensor w = RandomTensor({m, kC, 1, 1}, rng);
      ApplyMask(w, RandomMask(m, kC, 8, 8, sparsity, rng));
      Tensor x = RandomTensor({1, kC, 56, 56}, rng);
      Tensor b = RandomTensor({m}, rng);
      const int64_t out_n = m * 56 * 56;
      Tensor res = RandomTensor({out_n}, rng);
      std::vector<double> want(static_cast<size_t>(out_n)), want_res(want.size());
      kref::ConvParams linear = p;
      linear.activation = {};
      const std::vector<double> xd(x.ToVector<double>()), wd(w.ToVector<double>()),
          bd(b.ToVector<double>());
      kref::Conv<double>(linear, xd.data(), wd.data(), bd.data(), want.data());
      for (int64_t i = 0; i < out_n; ++i) {
        want_res[i] = std::max(want[i] + res.data<float>()[i], 0.0);
        want[i] = std::max(want[i], 0.0);
      }
      auto sw = BlockSparseWeight::FromDense(w, 8, 8);
      ASSERT_TRUE(sw.ok()) << sw.status().ToString();
      Tensor ybuf(DType::kF32, {out_n + 16});  // 64-byte aligned storage
      for (const ks::BsrConvKernel* k : kernels) {
        auto plan = ks::BsrConvPlan::Create(p, *sw, k);
        ASSERT_TRUE(plan.ok()) << plan.status().ToString();
        for (int64_t offset : {0, 1}) {
          for (bool residual : {false, true}) {
            for (int threads : {1, 2}) {
              SCOPED_TRACE(fmt::format("{} offset {} residual {} threads {}", k->name, offset,
                                       residual, threads));
              float* y = ybuf.data<float>() + offset;
              std::fill(ybuf.data<float>(), ybuf.data<float>() + out_n + 16, std::nanf(""));
              const float* r = nullptr;
              if (residual && threads == 2) {
                std::copy(res.data<float>(), res.data<float>() + out_n, y);
                r = y;
              } else if (residual) {
                r = res.data<float>();
              }
              // (A 1x1 plan may copy the input: the tiled layout.)
              std::vector<float> scratch(static_cast<size_t>(plan->scratch_floats(threads)));
              plan->Run(x.data<float>(), b.data<float>(), y, scratch.data(), threads, r);
              const std::vector<double>& ref = residual ? want_res : want;
              int64_t bad = 0;
              for (int64_t i = 0; i < out_n; ++i) {
                const double e = std::abs(double(y[i]) - ref[i]);
                if (!(e <= 1e-4 * (1.0 + std::abs(ref[i]))) && ++bad <= 3)
                  ADD_FAILURE() << "y[" << i << "] = " << y[i] << ", want " << ref[i];
              }
              ASSERT_EQ(bad, 0);
              // Nothing written outside y.
              for (int64_t i = 0; i < 16; ++i) {
                const float* base = ybuf.data<float>();
                if (i < offset) {
                  ASSERT_TRUE(std::isnan(base[i])) << "before y";
                }
                if (offset + i < 16) {
                  ASSERT_TRUE(std::isnan(base[out_n + offset + i])) << "after y";
                }
              }
            }
          }
        }
      }
    }
  }
}

// Few positions (batch-1 classifiers; the channel-vectorized tails and the
// paired-channel GEMV of the AVX-512 kernel) with every block shape,
// including ResNet-50's and VGG-16's FC layers.
TEST(BlockSparseConv, GemmFewRowsAllBlocks) {
  Rng rng(TestSeed() + 1);
  const int blocks[][2] = {{8, 8}, {8, 3}, {8, 16}, {8, 12}, {4, 8}, {16, 8}, {5, 7}, {1, 1}};
  struct Dims {
    int64_t m, k;
  };
  const Dims dims[] = {{1000, 2048}, {37, 61}, {8, 8}, {9, 130}, {1000, 4096}};
  for (const auto& blk : blocks) {
    for (size_t di = 0; di < std::size(dims); ++di) {
      const Dims d = dims[di];
      // The FC-sized problems (slow to generate) only for the 8x8 and 16x8 kernels.
      const bool big = d.m >= 1000;
      if (big && !(blk[1] == 8 && (blk[0] == 8 || blk[0] == 16))) continue;
      if (d.k == 4096 && blk[0] != 8) continue;  // VGG fc7
      for (int64_t n : {1, 2, 3, 4, 5, 17, 49}) {
        if (big && n != 1 && n != 3) continue;
        const double sparsity = kSparsities[rng() % std::size(kSparsities)];
        SCOPED_TRACE(fmt::format("seed {}: gemm m{} k{} n{} block {}x{} sparsity {}",
                                 TestSeed() + 1, d.m, d.k, n, blk[0], blk[1], sparsity));
        Tensor w = RandomTensor({d.m, d.k}, rng);
        ApplyMask(w, RandomMask(d.m, d.k, blk[0], blk[1], sparsity, rng));
        Tensor x = RandomTensor({d.k, n}, rng);
        Tensor b = RandomTensor({d.m}, rng);
        auto sw = BlockSparseWeight::FromDense(w, blk[0], blk[1]);
        ASSERT_TRUE(sw.ok());
        const float* wp = w.data<float>();
        const float* xp = x.data<float>();
        std::vector<double> want(static_cast<size_t>(d.m * n));
        for (int64_t i = 0; i < d.m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            double s = b.data<float>()[i];
            for (int64_t l = 0; l < d.k; ++l) s += double(wp[i * d.k + l]) * xp[l * n + j];
            want[static_cast<size_t>(i * n + j)] = s;
          }
        for (const ks::BsrConvKernel* kern : KernelsFor(blk[0])) {
          auto plan = ks::BsrConvPlan::CreateGemm(n, *sw, kern);
          ASSERT_TRUE(plan.ok()) << plan.status().ToString();
          for (int threads : {1, 2}) {
            std::vector<float> y(static_cast<size_t>(d.m * n), std::nanf(""));
            plan->Run(x.data<float>(), b.data<float>(), y.data(), nullptr, threads);
            for (size_t i = 0; i < y.size(); ++i)
              ASSERT_NEAR(y[i], want[i], 1e-4 * std::sqrt(double(d.k)) * (1 + std::abs(want[i])))
                  << kern->name << " threads " << threads << " at " << i;
          }
        }
      }
    }
  }
}

TEST(BlockSparseConv, DispatchEndsInReferenceAndHonoursBlockRows) {
  const auto& all = ks::BsrConvKernels();
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.back().isa, ks::Isa::kRef);
  EXPECT_EQ(all.back().br, 0);
  EXPECT_LE(ks::ActiveIsa(), ks::DetectedIsa());
  // 4-row blocks: the any-rows AVX-512 kernel when the ISA allows, else the reference.
  const ks::BsrConvKernel& k4 = ks::SelectBsrConvKernel(4);
  EXPECT_EQ(k4.br, 0);
  EXPECT_EQ(k4.isa, ks::ActiveIsa() >= ks::Isa::kAvx512 ? ks::Isa::kAvx512 : ks::Isa::kRef);
  const ks::BsrConvKernel& k8 = ks::SelectBsrConvKernel(8);
  EXPECT_LE(k8.isa, ks::ActiveIsa());
  EXPECT_NE(ks::DescribeBsrConvChoice(8).find(k8.name), std::string::npos);
}

TEST(BlockSparseConv, RejectsUnsupported) {
  Tensor w(DType::kF32, {8, 8, 3, 3});
  auto sw = BlockSparseWeight::FromDense(w, 8, 8);
  ASSERT_TRUE(sw.ok());
  kref::ConvParams p;
  p.in_channels = 8;
  p.out_channels = 8;
  p.in = {1, 5, 5};
  p.kernel = {1, 3, 3};
  p.out = {1, 3, 3};
  EXPECT_TRUE(ks::BsrConvPlan::Create(p, *sw).ok());
  kref::ConvParams g = p;
  g.group = 2;
  EXPECT_FALSE(ks::BsrConvPlan::Create(g, *sw).ok());
  kref::ConvParams s = p;
  s.activation.kind = kref::ActivationKind::kSigmoid;
  EXPECT_FALSE(ks::BsrConvPlan::Create(s, *sw).ok());
  kref::ConvParams k = p;
  k.kernel = {1, 1, 1};
  EXPECT_FALSE(ks::BsrConvPlan::Create(k, *sw).ok());
}

// The input copies (f32_pack_plane__*) against their definition
// (bsr_conv.h): every combination of row length, output columns, column
// offset (padding on either side), stride 1 and 2, with and without the
// extra planes of column offset + 1 (dst_odd) and - 1 (dst_prev); nothing
// outside the channels [c_begin, c_end) of each plane may be written. Rows
// of 1-4 16-column chunks take the AVX-512 copy's unrolled loops, wider ones
// (conv1's 115 columns) its general loop, past 512 columns two segments.
TEST(BlockSparseConv, PackPlaneMatchesDefinition) {
  std::vector<std::pair<const char*, ks::PackPlaneFn>> fns = {{"ref", ks::f32_pack_plane__ref}};
  if (ks::ActiveIsa() >= ks::Isa::kAvx2) fns.push_back({"avx2", ks::f32_pack_plane__avx2});
  if (ks::ActiveIsa() >= ks::Isa::kAvx512) fns.push_back({"avx512", ks::f32_pack_plane__avx512});
  const int64_t widths[] = {1, 2, 3, 7, 14, 15, 16, 17, 28, 31, 32, 33, 56, 115, 230, 1061};
  std::vector<int64_t> col_counts;
  for (int64_t cols = 1; cols <= 36; cols += (cols < 20 ? 1 : 5)) col_counts.push_back(cols);
  for (int64_t cols : {49, 64, 65, 115, 530}) col_counts.push_back(cols);
  const int64_t channels = 3, in_h = 5;
  int64_t checked = 0;
  for (const auto& [name, fn] : fns)
    for (int64_t sx : {1, 2})
      for (int64_t in_w : widths)
        for (int64_t cols : col_counts)
          for (int64_t col_off = -3; col_off <= 3; ++col_off)
            for (int extra = 0; extra < 4; ++extra) {
              // Top and bottom padding rows (row_off -2..2, 5 input rows).
              const int64_t sy = 1 + (cols + in_w) % 2, row_off = (cols + col_off + 7) % 5 - 2;
              // Even and odd row counts (the AVX-512 copy packs two rows of a
              // narrow plane per vector).
              const int64_t rows = 4 + (cols + col_off + extra) % 2;
              std::vector<float> x(static_cast<size_t>(channels * in_h * in_w));
              for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i + 1);
              const int64_t stride = rows * cols + 3;  // a gap that must stay untouched
              const size_t n = static_cast<size_t>(channels * stride);
              std::vector<float> dst(n, std::nanf("")), odd(n, std::nanf("")),
                  prev(n, std::nanf(""));
              ks::PackPlaneArgs a;
              a.x = x.data();
              a.in_h = in_h;
              a.in_w = in_w;
              a.dst = dst.data();
              a.dst_channel_stride = stride;
              a.rows = rows;
              a.cols = cols;
              a.sy = sy;
              a.sx = sx;
              a.row_off = row_off;
              a.col_off = col_off;
              a.c_begin = 1;
              a.c_end = channels;
              if (extra & 1) a.dst_odd = odd.data();
              if (extra & 2) a.dst_prev = prev.data();
              fn(a);
              auto check = [&](const std::vector<float>& out, int64_t off, const char* what) {
                for (int64_t c = 0; c < channels; ++c)
                  for (int64_t i = 0; i < stride; ++i) {
                    const float got = out[static_cast<size_t>(c * stride + i)];
                    const int64_t r = i / cols, col = i % cols;
                    if (c < a.c_begin || r >= rows) {
                      ASSERT_TRUE(std::isnan(got))
                          << name << " " << what << " wrote outside the plane: c " << c << " i "
                          << i;
                      continue;
                    }
                    const int64_t iy = r * sy + row_off, ix = col * sx + off;
                    const float want = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w
                                           ? x[static_cast<size_t>((c * in_h + iy) * in_w + ix)]
                                           : 0.0f;
                    ASSERT_EQ(got, want) << name << " " << what << " sx " << sx << " in_w " << in_w
                                         << " cols " << cols << " col_off " << off << " c " << c
                                         << " row " << r << " col " << col;
                  }
              };
              check(dst, col_off, "dst");
              if (a.dst_odd) check(odd, col_off + 1, "dst_odd");
              if (a.dst_prev) check(prev, col_off - 1, "dst_prev");
              ++checked;
            }
  EXPECT_GT(checked, 1000);
}

}  // namespace
}  // namespace wbs
