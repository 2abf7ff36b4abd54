// The plain-NCHW f32 average pool (kernels/x86/plain_avg_pool.h) against the
// reference kernel, bit for bit, and its use by the AveragePool operator.
#include "kernels/x86/plain_avg_pool.h"

#include <gtest/gtest.h>

#include "kernels/ref/pool.h"
#include "kernels/sparse/dispatch.h"
#include "tests/unit/ops_dnnl_test_util.h"

namespace wbs::dnnl_test {
namespace {

namespace ref = kernels::ref;
using kernels::x86::PlainAvgPoolF32;
using kernels::x86::PlainAvgPoolSupports;

bool Avx512() { return kernels::sparse::ActiveIsa() >= kernels::sparse::Isa::kAvx512; }

// Stride 1, kernels up to 7 x 9, pads below the kernel, both count modes,
// output rows 1..40 wide (whole and partial 16-output groups).
ref::PoolParams RandomParams(Rng& rng) {
  ref::PoolParams p;
  p.batch = Uniform(rng, 1, 2);
  p.channels = Uniform(rng, 1, 4);
  p.count_include_pad = Chance(rng, 0.5);
  const bool one_d = Chance(rng, 0.2);
  for (int d = 1; d < 3; ++d) {
    const bool rows = d == 1;
    const int64_t k = one_d && rows ? 1 : Uniform(rng, 1, rows ? 7 : 9);
    const int64_t pb = Uniform(rng, 0, k - 1), pe = Uniform(rng, 0, k - 1);
    const int64_t in = one_d && rows ? 1 : std::max<int64_t>(1, k - pb - pe) + Uniform(rng, 0, 36);
    p.in[d] = in;
    p.kernel[d] = k;
    p.pad_begin[d] = pb;
    p.pad_end[d] = pe;
    p.out[d] = in + pb + pe - k + 1;
  }
  return p;
}

TEST(PlainAvgPoolTest, MatchesReferenceExactly) {
  if (!Avx512()) GTEST_SKIP() << "no AVX-512";
  Rng rng(TestSeed() + 73);
  for (int i = 0; i < 120; ++i) {
    const ref::PoolParams p = RandomParams(rng);
    SCOPED_TRACE(fmt::format(
        "seed {} case {}: N {} C {} in {}x{} out {}x{} k {}x{} pads {},{},{},{} include_pad {}",
        TestSeed(), i, p.batch, p.channels, p.in[1], p.in[2], p.out[1], p.out[2], p.kernel[1],
        p.kernel[2], p.pad_begin[1], p.pad_begin[2], p.pad_end[1], p.pad_end[2],
        p.count_include_pad));
    ASSERT_TRUE(PlainAvgPoolSupports(p, 2));
    Tensor x = RandomTensor({p.batch, p.channels, p.in[1], p.in[2]}, rng);
    const Shape ys = {p.batch, p.channels, p.out[1], p.out[2]};
    Tensor want(DType::kF32, ys), got(DType::kF32, ys);
    ref::AveragePool<float>(p, x.data<float>(), want.data<float>());
    PlainAvgPoolF32(p, x.data<float>(), got.data<float>(), 1 + i % 2);
    for (int64_t j = 0; j < want.numel(); ++j)
      ASSERT_EQ(got.data<float>()[j], want.data<float>()[j]) << "output " << j;
  }
}

TEST(PlainAvgPoolTest, DeclinesWhatItDoesNotTake) {
  if (!Avx512()) GTEST_SKIP() << "no AVX-512";
  ref::PoolParams p;
  p.in = {1, 9, 35};
  p.out = {1, 9, 35};
  p.kernel = {1, 3, 3};
  p.pad_begin = {0, 1, 1};
  p.pad_end = {0, 1, 1};
  EXPECT_TRUE(PlainAvgPoolSupports(p, 1));
  ref::PoolParams q = p;
  q.in[2] = q.out[2] = 17;
  EXPECT_TRUE(PlainAvgPoolSupports(q, 2));
  EXPECT_FALSE(PlainAvgPoolSupports(q, 1)) << "17 columns at 1 thread";
  q = p;
  q.stride[2] = 2;
  q.out[2] = 18;
  EXPECT_FALSE(PlainAvgPoolSupports(q, 2)) << "stride 2";
  q = p;
  q.dilation[1] = 2;
  EXPECT_FALSE(PlainAvgPoolSupports(q, 2)) << "dilation";
  q = p;
  q.in[0] = q.out[0] = 2;
  EXPECT_FALSE(PlainAvgPoolSupports(q, 2)) << "3-D";
}

// The AveragePool operator runs the kernel on a plain input (Inception-v3's
// 3x3/1 pads 1, 35 columns), and matches the reference backend.
TEST(PlainAvgPoolTest, OperatorUsesIt) {
  Rng rng(TestSeed() + 74);
  for (const int64_t include : {0, 1}) {
    const Attrs attrs = {{"kernel_shape", std::vector<int64_t>{3, 3}},
                         {"strides", std::vector<int64_t>{1, 1}},
                         {"pads", std::vector<int64_t>{1, 1, 1, 1}},
                         {"count_include_pad", include}};
    const std::vector<Operand> ops = {{RandomTensor({1, 24, 17, 35}, rng)}};
    auto prep = Prepare("AveragePool", ops, attrs);
    ASSERT_TRUE(prep.ok()) << prep.status().ToString();
    auto op = CreateOp(*prep, Backend::kFast);
    ASSERT_TRUE(op.ok()) << op.status().ToString();
    if (Avx512()) {
      EXPECT_EQ((*op)->impl_name(), kernels::x86::PlainAvgPoolName());
    }
    ExpectFastMatchesReference("AveragePool", ops, attrs, "plain 3x3/1 average pool", false, 2);
  }
}

}  // namespace
}  // namespace wbs::dnnl_test
