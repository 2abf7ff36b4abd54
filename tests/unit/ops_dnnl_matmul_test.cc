// The oneDNN Gemm/MatMul fast paths (runtime/ops_dnnl_matmul.cc,
// kernels/dnnl/matmul.*) against the reference operators on random problems,
// plus the declines.
#include <gtest/gtest.h>

#include "tests/unit/ops_dnnl_test_util.h"

namespace wbs::dnnl_test {
namespace {

TEST(OpsDnnlMatMulTest, GemmMatchesReferenceOnRandomProblems) {
  Rng rng(TestSeed() + 7);
  for (int i = 0; i < 80; ++i) {
    const int64_t m = Uniform(rng, 1, 40), k = Uniform(rng, 1, 70), n = Uniform(rng, 1, 50);
    const bool ta = Chance(rng, 0.4), tb = Chance(rng, 0.5);
    Attrs attrs;
    if (ta) attrs["transA"] = int64_t{1};
    if (tb) attrs["transB"] = int64_t{1};
    const float alpha = Chance(rng, 0.5) ? 1.0f : UniformF(rng, 0.25f, 2.0f);
    const float beta = Chance(rng, 0.5) ? 1.0f : UniformF(rng, -1.5f, 1.5f);
    if (alpha != 1.0f) attrs["alpha"] = alpha;
    if (beta != 1.0f) attrs["beta"] = beta;
    std::vector<Operand> ops = {
        {RandomTensor(ta ? Shape{k, m} : Shape{m, k}, rng)},
        {RandomTensor(tb ? Shape{n, k} : Shape{k, n}, rng), Chance(rng, 0.7)}};
    // C: absent, scalar, [1], [N], [1, N], [M, 1], [M, N].
    const Shape c_shapes[] = {{}, {1}, {n}, {1, n}, {m, 1}, {m, n}};
    const int64_t c_kind = Uniform(rng, -1, 5);
    bool c_const = false;
    if (c_kind >= 0) {
      c_const = beta != 1.0f || Chance(rng, 0.5);  // run-time C with beta != 1 declines
      ops.push_back({RandomTensor(c_shapes[c_kind], rng), c_const});
    }
    const std::string act = AddActivation(i, rng, &attrs);
    const std::string what = fmt::format(
        "case {}: M {} K {} N {} transA {} transB {} alpha {} beta {} B const {} C {} const {} "
        "act {}",
        i, m, k, n, ta, tb, alpha, beta, ops[1].constant,
        c_kind >= 0 ? ShapeToString(c_shapes[c_kind]) : "none", c_const, act);
    // A run-time [M, 1] C declines when M > 1 and N > 1 (no per-row broadcast).
    const bool may_decline = c_kind == 4 && !c_const && m > 1 && n > 1;
    ExpectFastMatchesReference("Gemm", ops, attrs, what, may_decline);
    if (HasFatalFailure()) return;
  }
}

TEST(OpsDnnlMatMulTest, MatMulMatchesReferenceOnRandomProblems) {
  Rng rng(TestSeed() + 8);
  for (int i = 0; i < 80; ++i) {
    const int64_t m = Uniform(rng, 1, 24), k = Uniform(rng, 1, 40), n = Uniform(rng, 1, 30);
    const int ra = static_cast<int>(Uniform(rng, 1, 4)), rb = static_cast<int>(Uniform(rng, 1, 4));
    // Batch dims: each 1 (broadcast) or the shared size, right-aligned.
    const int nb = std::max(ra, rb) - 2;
    std::vector<int64_t> batch;
    for (int j = 0; j < nb; ++j) batch.push_back(Uniform(rng, 2, 3));
    auto make = [&](int rank, Shape tail) {
      if (rank == 1) return Shape{k};  // 1-D operands are [K]
      Shape s;
      for (int j = nb - (rank - 2); j < nb; ++j) s.push_back(Chance(rng, 0.3) ? 1 : batch[j]);
      s.insert(s.end(), tail.begin(), tail.end());
      return s;
    };
    const Shape a_shape = make(ra, {m, k}), b_shape = make(rb, {k, n});
    std::vector<Operand> ops = {{RandomTensor(a_shape, rng)},
                                {RandomTensor(b_shape, rng), Chance(rng, 0.6)}};
    Attrs attrs;
    const std::string act = AddActivation(i, rng, &attrs);
    const std::string what =
        fmt::format("case {}: A {} B {} B const {} act {}", i, ShapeToString(a_shape),
                    ShapeToString(b_shape), ops[1].constant, act);
    ExpectFastMatchesReference("MatMul", ops, attrs, what);
    if (HasFatalFailure()) return;
  }
}

TEST(OpsDnnlMatMulTest, MatMulWithUnknownBatchBuildsPerShape) {
  Rng rng(TestSeed() + 9);
  std::vector<Operand> ops = {{RandomTensor({2, 5, 12}, rng), false, /*dynamic_batch=*/true},
                              {RandomTensor({12, 7}, rng), true}};
  auto prep = Prepare("MatMul", ops, {{"wbs.activation", std::string("Tanh")}});
  ASSERT_TRUE(prep.ok()) << prep.status().ToString();
  auto fast = CreateOp(*prep, Backend::kFast);
  auto ref = CreateOp(*prep, Backend::kReference);
  ASSERT_TRUE(fast.ok() && ref.ok());
  ASSERT_TRUE(IsFast(**fast)) << (*fast)->impl_name();
  for (int64_t batch : {2, 4, 1}) {
    ops[0].t = RandomTensor({batch, 5, 12}, rng);
    auto yf = RunOp(**fast, ops, {batch, 5, 7});
    auto yr = RunOp(**ref, ops, {batch, 5, 7});
    ASSERT_TRUE(yf.ok()) << yf.status().ToString();
    ASSERT_TRUE(yr.ok()) << yr.status().ToString();
    EXPECT_LE(MaxRelError(*yf, *yr), kRelTol) << "batch " << batch;
  }
}

TEST(OpsDnnlMatMulTest, GemmAndMatMulDeclineWhatTheyDoNotHandle) {
  Rng rng(TestSeed() + 10);
  const Tensor a = RandomTensor({3, 4}, rng), b = RandomTensor({4, 5}, rng);
  auto expect_reference = [](const std::string& op, const std::vector<Operand>& ops,
                             const Attrs& attrs, const char* why) {
    SCOPED_TRACE(why);
    auto prep = Prepare(op, ops, attrs);
    ASSERT_TRUE(prep.ok()) << prep.status().ToString();
    auto fast = CreateOp(*prep, Backend::kFast);
    ASSERT_TRUE(fast.ok()) << fast.status().ToString();
    EXPECT_EQ((*fast)->impl_name(), "ref");
  };
  expect_reference("Gemm", {{a}, {b, true}, {RandomTensor({3, 5}, rng)}}, {{"beta", 0.5f}},
                   "run-time C with beta != 1");
  expect_reference("Gemm", {{a}, {b, true}}, {{"alpha", 0.0f}}, "alpha 0");
  auto a64 = a.CastTo(DType::kF64), b64 = b.CastTo(DType::kF64);
  ASSERT_TRUE(a64.ok() && b64.ok());
  expect_reference("MatMul", {{*a64}, {*b64, true}}, {}, "f64");
  ExpectFastMatchesReference("Gemm", {{a}, {b, true}, {RandomTensor({3, 5}, rng)}},
                             {{"beta", 0.5f}}, "declined run-time C", /*may_decline=*/true);
}

}  // namespace
}  // namespace wbs::dnnl_test
