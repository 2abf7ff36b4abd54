// The plain-NCHW f32 global average pool (kernels/x86/plain_global_pool.h)
// against the reference kernel, and its use by the GlobalAveragePool
// operator.
#include "kernels/x86/plain_global_pool.h"

#include <gtest/gtest.h>

#include <cmath>

#include "kernels/dnnl/dnnl_common.h"
#include "kernels/ref/pool.h"
#include "kernels/sparse/dispatch.h"
#include "tests/unit/ops_dnnl_test_util.h"

namespace wbs::dnnl_test {
namespace {

using kernels::x86::PlainGlobalAvgPoolF32;

// The AVX-512 kernel on AVX-512 machines, the AVX2 one on AVX2 machines and
// under WBS_ISA_CAP=avx2; none below.
bool HasKernel() { return kernels::sparse::ActiveIsa() >= kernels::sparse::Isa::kAvx2; }
const char* ExpectedName() {
  return kernels::sparse::ActiveIsa() >= kernels::sparse::Isa::kAvx512 ? "wbs:gap_plain_avx512"
                                                                       : "wbs:gap_plain_avx2";
}

// Every plane size 1..70 (no, one and several full vectors, every masked
// tail), ResNet-50's 2048 x 7x7, 112^2 planes and a 2.1M-float input (split
// over threads), at 1-3 threads, against the reference in double
// precision: the sums' order differs, so within rounding of the sum.
TEST(PlainGlobalPoolTest, MatchesReference) {
  if (!HasKernel()) GTEST_SKIP() << "no AVX2 (WBS_ISA_CAP=ref?)";
  Rng rng(TestSeed() + 80);
  std::vector<std::pair<int64_t, int64_t>> cases;  // (planes, plane size)
  for (int64_t s = 1; s <= 70; ++s) cases.emplace_back(Uniform(rng, 1, 40), s);
  cases.emplace_back(2048, 49);
  cases.emplace_back(3, 112 * 112);
  cases.emplace_back(1000, 33);
  cases.emplace_back(64, 2 * 16384 + 5);  // 2.1M floats: split over 2-3 threads
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto [planes, size] = cases[i];
    const int threads = 1 + static_cast<int>(i % 3);
    SCOPED_TRACE(
        fmt::format("seed {}: {} planes of {}, {} threads", TestSeed(), planes, size, threads));
    Tensor x = RandomTensor({planes, size}, rng);
    const float* xd = x.data<float>();
    // NaN-filled, so an output the kernel skips fails.
    std::vector<float> got(static_cast<size_t>(planes) + 1, std::nanf(""));
    got.back() = 7.0f;  // past the end: must survive
    PlainGlobalAvgPoolF32(planes, size, xd, got.data(), threads);
    for (int64_t p = 0; p < planes; ++p) {
      double sum = 0, mag = 0;
      for (int64_t j = 0; j < size; ++j) {
        sum += xd[p * size + j];
        mag += std::fabs(xd[p * size + j]);
      }
      const double want = sum / static_cast<double>(size);
      // A float sum of n terms errs by at most (n - 1) u sum|x| (u = 2^-24),
      // the division by half an ulp more.
      const double tol = (static_cast<double>(size) * 6e-8 + 1e-7) * mag / size + 1e-30;
      ASSERT_NEAR(got[static_cast<size_t>(p)], want, tol) << "plane " << p;
    }
    EXPECT_EQ(got.back(), 7.0f);
  }
  PlainGlobalAvgPoolF32(0, 49, nullptr, nullptr, 2);  // no planes: nothing read or written
}

// The operator runs the kernel for a plain input (1 and 2 threads, equal to
// the reference operator) and oneDNN's primitive once a blocked input is
// negotiated.
TEST(PlainGlobalPoolTest, OperatorUsesItForPlainInputOnly) {
  if (!HasKernel()) GTEST_SKIP() << "no AVX2 (WBS_ISA_CAP=ref?)";
  Rng rng(TestSeed() + 81);
  const std::vector<Operand> ops = {{RandomTensor({1, 2048, 7, 7}, rng)}};
  auto prep = Prepare("GlobalAveragePool", ops, {});
  ASSERT_TRUE(prep.ok()) << prep.status().ToString();
  auto op = CreateOp(*prep, Backend::kFast);
  ASSERT_TRUE(op.ok()) << op.status().ToString();
  EXPECT_EQ((*op)->impl_name(), ExpectedName());
  EXPECT_STREQ(kernels::x86::PlainGlobalAvgPoolName(), ExpectedName());
  ExpectFastMatchesReference("GlobalAveragePool", ops, {}, "plain 2048 x 7x7", false, 1);
  ExpectFastMatchesReference("GlobalAveragePool", ops, {}, "plain 2048 x 7x7", false, 2);
  const std::vector<Operand> odd = {{RandomTensor({2, 5, 3, 11}, rng)}};
  ExpectFastMatchesReference("GlobalAveragePool", odd, {}, "plain 2 x 5 x 3x11", false, 2);
  const auto out = (*op)->ProposeOutputLayouts({kernels::onednn::NativeBlockedLayout()});
  EXPECT_EQ((*op)->impl_name().rfind("onednn", 0), 0u) << (*op)->impl_name();
  ASSERT_EQ(out.size(), 1u);
}

}  // namespace
}  // namespace wbs::dnnl_test
