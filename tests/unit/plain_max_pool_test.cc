// The plain-NCHW f32 max pool (kernels/x86/plain_max_pool.h) against the
// reference kernel, bit for bit, and its use by the MaxPool operator.
#include "kernels/x86/plain_max_pool.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/ref/pool.h"
#include "kernels/sparse/dispatch.h"
#include "tests/unit/ops_dnnl_test_util.h"

namespace wbs::dnnl_test {
namespace {

namespace ref = kernels::ref;
using kernels::x86::PlainMaxPoolF32;
using kernels::x86::PlainMaxPoolSupports;

bool HasAvx2MaxPool() { return kernels::sparse::ActiveIsa() >= kernels::sparse::Isa::kAvx2; }
bool HasAvx512MaxPool() { return kernels::sparse::ActiveIsa() >= kernels::sparse::Isa::kAvx512; }

// A 2-D (or 1-D: 1-high) window with column stride 1 or 2, pads below the
// kernel, the output size of floor or ceil mode (ceil only when the last
// window still starts inside the input row, as ONNX requires); output rows
// 16..70 wide (the AVX-512 kernel's range), i.e. 1-5 vectors with every
// tail; `any_width`: 1..70 outputs and kernels up to 20 columns (the AVX2
// kernel takes any).
ref::PoolParams RandomParams(Rng& rng, bool any_width = false) {
  ref::PoolParams p;
  p.batch = Uniform(rng, 1, 2);
  p.channels = Uniform(rng, 1, 5);
  const bool one_d = Chance(rng, 0.2);
  for (int d = 1; d < 3; ++d) {
    const bool rows = d == 1;
    const int64_t k = one_d && rows ? 1 : Uniform(rng, 1, any_width && !rows ? 20 : 5);
    const int64_t s = one_d && rows ? 1 : Uniform(rng, 1, rows ? 3 : 2);
    const int64_t pb = Uniform(rng, 0, k - 1), pe = Uniform(rng, 0, k - 1);
    const int64_t in = one_d && rows ? 1
                       : rows        ? std::max<int64_t>(1, k - pb - pe) + Uniform(rng, 0, 12)
                                     : std::max<int64_t>(1, k - pb - pe) +
                                    s * Uniform(rng, any_width ? 0 : 15, 69) + Uniform(rng, 0, 1);
    const int64_t span = in + pb + pe - k;
    int64_t out = span / s + 1;
    if (Chance(rng, 0.3) && span % s != 0 && (out * s - pb) <= in - 1) ++out;  // ceil_mode
    p.in[d] = in;
    p.kernel[d] = k;
    p.stride[d] = s;
    p.pad_begin[d] = pb;
    p.pad_end[d] = pe;
    p.out[d] = out;
  }
  return p;
}

// Both kernels on the 16..70-wide rows both take; below AVX-512 (the AVX2
// kernel) also narrow rows and wide windows.
TEST(PlainMaxPoolTest, MatchesReferenceExactly) {
  if (!HasAvx2MaxPool()) GTEST_SKIP() << "no AVX2";
  Rng rng(TestSeed() + 70);
  int ran = 0;
  for (int i = 0; i < 120; ++i) {
    const ref::PoolParams p = RandomParams(rng, !HasAvx512MaxPool() && i % 2 == 1);
    SCOPED_TRACE(fmt::format(
        "seed {} case {}: N {} C {} in {}x{} out {}x{} k {}x{} s {}x{} pads {},{}", TestSeed(), i,
        p.batch, p.channels, p.in[1], p.in[2], p.out[1], p.out[2], p.kernel[1], p.kernel[2],
        p.stride[1], p.stride[2], p.pad_begin[1], p.pad_begin[2]));
    ASSERT_TRUE(PlainMaxPoolSupports(p));
    Tensor x = RandomTensor({p.batch, p.channels, p.in[1], p.in[2]}, rng);
    // Infinities inside the input: -inf must survive a window of -inf only.
    float* xd = x.data<float>();
    for (int64_t j = 0; j < x.numel(); j += 7) xd[j] = -std::numeric_limits<float>::infinity();
    if (x.numel() > 3) xd[3] = std::numeric_limits<float>::infinity();
    const Shape ys = {p.batch, p.channels, p.out[1], p.out[2]};
    Tensor want(DType::kF32, ys), got(DType::kF32, ys);
    ref::MaxPool<float>(p, x.data<float>(), want.data<float>(), nullptr);
    PlainMaxPoolF32(p, x.data<float>(), got.data<float>(), 1 + i % 3);
    for (int64_t j = 0; j < want.numel(); ++j)
      ASSERT_EQ(got.data<float>()[j], want.data<float>()[j]) << "output " << j;
    ++ran;
  }
  EXPECT_EQ(ran, 120);
}

// Channels-last in, plain out (NhwcToPlainMaxPoolF32) against the
// reference on the same values, bit for bit: channels 16..64, any output
// width (partial 16-output groups), windows up to 20 columns, padding.
TEST(PlainMaxPoolTest, NhwcToPlainMatchesReferenceExactly) {
  if (!HasAvx512MaxPool()) GTEST_SKIP() << "no AVX-512";
  Rng rng(TestSeed() + 72);
  for (int i = 0; i < 60; ++i) {
    ref::PoolParams p = RandomParams(rng, i % 2 == 1);
    p.channels = 16 * Uniform(rng, 1, 4);
    SCOPED_TRACE(fmt::format(
        "seed {} case {}: N {} C {} in {}x{} out {}x{} k {}x{} s {}x{} pads {},{}", TestSeed(), i,
        p.batch, p.channels, p.in[1], p.in[2], p.out[1], p.out[2], p.kernel[1], p.kernel[2],
        p.stride[1], p.stride[2], p.pad_begin[1], p.pad_begin[2]));
    ASSERT_TRUE(kernels::x86::NhwcToPlainMaxPoolSupports(p));
    const int64_t c = p.channels, h = p.in[1], w = p.in[2];
    Tensor x = RandomTensor({p.batch, c, h, w}, rng);
    float* xd = x.data<float>();
    for (int64_t j = 0; j < x.numel(); j += 7) xd[j] = -std::numeric_limits<float>::infinity();
    // The same values channels-last.
    std::vector<float> nhwc(static_cast<size_t>(x.numel()));
    for (int64_t n = 0; n < p.batch; ++n)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t yy = 0; yy < h; ++yy)
          for (int64_t xx = 0; xx < w; ++xx)
            nhwc[static_cast<size_t>(((n * h + yy) * w + xx) * c + ch)] =
                xd[((n * c + ch) * h + yy) * w + xx];
    const Shape ys = {p.batch, c, p.out[1], p.out[2]};
    Tensor want(DType::kF32, ys), got(DType::kF32, ys);
    ref::MaxPool<float>(p, xd, want.data<float>(), nullptr);
    kernels::x86::NhwcToPlainMaxPoolF32(p, nhwc.data(), got.data<float>(), 1 + i % 2);
    for (int64_t j = 0; j < want.numel(); ++j)
      ASSERT_EQ(got.data<float>()[j], want.data<float>()[j]) << "output " << j;
  }
  ref::PoolParams q;
  q.channels = 24;
  q.in = {1, 9, 99};
  q.out = {1, 4, 49};
  q.kernel = {1, 3, 3};
  q.stride = {1, 2, 2};
  EXPECT_FALSE(kernels::x86::NhwcToPlainMaxPoolSupports(q)) << "24 channels";
}

TEST(PlainMaxPoolTest, DeclinesWhatItDoesNotTake) {
  if (!HasAvx2MaxPool()) GTEST_SKIP() << "no AVX2";
  ref::PoolParams p;
  p.in = {1, 9, 99};
  p.out = {1, 4, 49};
  p.kernel = {1, 3, 3};
  p.stride = {1, 2, 2};
  EXPECT_TRUE(PlainMaxPoolSupports(p));
  ref::PoolParams q = p;
  q.stride[2] = 3;
  q.out[2] = 33;
  EXPECT_FALSE(PlainMaxPoolSupports(q)) << "column stride 3";
  q = p;
  q.dilation[1] = 2;
  EXPECT_FALSE(PlainMaxPoolSupports(q)) << "dilation";
  q = p;
  q.out[2] = 51;  // the last window starts at column 100, past the input
  EXPECT_FALSE(PlainMaxPoolSupports(q)) << "a window without input";
  q = p;
  q.in[0] = q.out[0] = 2;
  EXPECT_FALSE(PlainMaxPoolSupports(q)) << "3-D";
  q = p;
  q.in[2] = 29;
  q.out[2] = 14;
  // On AVX2 oneDNN's pool needs reorders around it and the kernel wins at every width.
  EXPECT_EQ(PlainMaxPoolSupports(q), !HasAvx512MaxPool())
      << "rows narrower than 16 outputs (oneDNN was faster on AVX-512)";
  q = p;
  q.kernel[2] = 17;
  q.in[2] = 97 + 14;
  EXPECT_EQ(PlainMaxPoolSupports(q), !HasAvx512MaxPool())
      << "a 17-column window (AVX-512 shifts within two vectors)";
}

// The MaxPool operator runs the kernel when its input is plain, and
// oneDNN's primitive once a channels-last input is negotiated.
// Below AVX2 (no kernel) oneDNN's primitive serves the plain input too.
TEST(PlainMaxPoolTest, OperatorUsesItForPlainInputOnly) {
  Rng rng(TestSeed() + 71);
  const Attrs attrs = {{"kernel_shape", std::vector<int64_t>{3, 3}},
                       {"strides", std::vector<int64_t>{2, 2}},
                       {"pads", std::vector<int64_t>{1, 1, 1, 1}}};
  const std::vector<Operand> ops = {{RandomTensor({1, 16, 9, 100}, rng)}};
  auto prep = Prepare("MaxPool", ops, attrs);
  ASSERT_TRUE(prep.ok()) << prep.status().ToString();
  auto op = CreateOp(*prep, Backend::kFast);
  ASSERT_TRUE(op.ok()) << op.status().ToString();
  if (!HasAvx2MaxPool()) {
    EXPECT_EQ((*op)->impl_name().rfind("onednn", 0), 0u) << (*op)->impl_name();
    ExpectFastMatchesReference("MaxPool", ops, attrs, "plain 3x3/2 max pool", false, 2);
    return;
  }
  EXPECT_EQ((*op)->impl_name(), kernels::x86::PlainMaxPoolName());
  ExpectFastMatchesReference("MaxPool", ops, attrs, "plain 3x3/2 max pool", false, 2);
  const auto out = (*op)->ProposeOutputLayouts({ActivationLayout::kChannelsLast});
  EXPECT_EQ((*op)->impl_name().rfind("onednn", 0), 0u) << (*op)->impl_name();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0], ActivationLayout::kPlain);
  // Its readers want plain: channels-last in, plain out on AVX-512.
  ASSERT_TRUE((*op)->SetOutputLayouts({ActivationLayout::kPlain}).ok());
  if (HasAvx512MaxPool()) {
    EXPECT_EQ((*op)->impl_name(), "wbs:maxpool_nhwc_to_plain_avx512");
    const Tensor& x = ops[0].t;
    Tensor xl(DType::kF32, x.shape());  // x's values channels-last
    const int64_t c = 16, h = 9, w = 100;
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < h * w; ++i)
        xl.data<float>()[i * c + ch] = x.data<float>()[ch * h * w + i];
    Tensor want(DType::kF32, {1, 16, 5, 50}), got(DType::kF32, {1, 16, 5, 50});
    ref::PoolParams p;
    p.channels = c;
    p.in = {1, h, w};
    p.out = {1, 5, 50};
    p.kernel = {1, 3, 3};
    p.stride = {1, 2, 2};
    p.pad_begin = {0, 1, 1};
    p.pad_end = {0, 1, 1};
    ref::MaxPool<float>(p, x.data<float>(), want.data<float>(), nullptr);
    runtime::ExecContext ctx;
    ctx.num_threads = 2;
    ASSERT_TRUE((*op)->Run({&xl}, {&got}, ctx).ok());
    for (int64_t j = 0; j < want.numel(); ++j)
      ASSERT_EQ(got.data<float>()[j], want.data<float>()[j]) << "output " << j;
  }
}

}  // namespace
}  // namespace wbs::dnnl_test
