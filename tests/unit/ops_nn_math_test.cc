// Gemm, MatMul, BatchNormalization, Softmax, LogSoftmax and LRN reference
// operators against triple loops and direct formulas written here.
#include <gtest/gtest.h>

#include "tests/unit/ops_nn_test_util.h"

namespace wbs::nn_test {
namespace {

using Ints = std::vector<int64_t>;

// ---------------------------------------------------------------------------
// Gemm.

TEST(GemmTest, MatchesTripleLoopForAllTransposesAndBiasShapes) {
  const int64_t m = 4, n = 5, k = 3;
  const float alpha = 0.75f, beta = -1.5f;
  const std::vector<Shape> c_shapes = {{}, {1}, {n}, {m, 1}, {1, n}, {m, n}};
  uint32_t seed = 700;
  for (int ta = 0; ta <= 1; ++ta)
    for (int tb = 0; tb <= 1; ++tb)
      for (int ci = -1; ci < static_cast<int>(c_shapes.size()); ++ci) {
        SCOPED_TRACE("transA " + std::to_string(ta) + " transB " + std::to_string(tb) + " C " +
                     (ci < 0 ? "none" : ShapeToString(c_shapes[ci])));
        const Tensor a = Random(ta ? Shape{k, m} : Shape{m, k}, seed++);
        const Tensor b = Random(tb ? Shape{n, k} : Shape{k, n}, seed++);
        const Tensor c = ci < 0 ? Tensor() : Random(c_shapes[ci], seed++);
        auto y = RunNode("Gemm", {a, b, c},
                         {{"transA", int64_t{ta}}, {"transB", int64_t{tb}}, {"alpha", alpha},
                          {"beta", beta}});
        ASSERT_TRUE(y.ok()) << y.status().ToString();
        ASSERT_EQ((*y)[0].shape(), (Shape{m, n}));
        const auto av = a.ToVector<double>(), bv = b.ToVector<double>();
        const auto cv = c.defined() ? c.ToVector<double>() : std::vector<double>();
        std::vector<double> expected;
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            double acc = 0;
            for (int64_t p = 0; p < k; ++p)
              acc += av[ta ? p * m + i : i * k + p] * bv[tb ? j * k + p : p * n + j];
            double cij = 0;
            if (c.defined()) {
              const Shape& cs = c.shape();
              const int64_t rows = cs.size() == 2 ? cs[0] : 1;
              const int64_t cols = cs.empty() ? 1 : cs.back();
              cij = cv[(rows == 1 ? 0 : i) * cols + (cols == 1 ? 0 : j)];
            }
            expected.push_back(alpha * acc + beta * cij);
          }
        EXPECT_TRUE(AllClose((*y)[0], expected));
      }
}

TEST(GemmTest, FusedReluAndDefaults) {
  const Tensor a = Tensor::FromVector<float>({1, 2}, {1, -2});
  const Tensor b = Tensor::FromVector<float>({2, 2}, {3, 1, 1, 1});
  // [1*3 - 2*1, 1*1 - 2*1] = [1, -1]; with default alpha = beta = 1, C = 10.
  auto y = RunNode("Gemm", {a, b, Tensor::Scalar<float>(10.0f)});
  ASSERT_TRUE(y.ok());
  EXPECT_TRUE(AllClose((*y)[0], {11, 9}));
  y = RunNode("Gemm", {a, b}, {{"wbs.activation", std::string("Relu")}});
  ASSERT_TRUE(y.ok());
  EXPECT_TRUE(AllClose((*y)[0], {1, 0}));
}

TEST(GemmTest, ErrorsNameTheNode) {
  EXPECT_TRUE(FailsWith(InferOnly("Gemm", {Random({2, 3}, 1), Random({4, 5}, 2)}),
                        StatusCode::kInvalidArgument, {"'bad_node'", "inner dims", "K=3", "K=4"}));
  EXPECT_TRUE(FailsWith(InferOnly("Gemm", {Random({2, 3}, 1), Random({3, 5}, 2), Random({3}, 3)}),
                        StatusCode::kInvalidArgument, {"'bad_node'", "C [3]", "[2,5]"}));
  EXPECT_TRUE(FailsWith(InferOnly("Gemm", {Random({2, 3, 1}, 1), Random({3, 5}, 2)}),
                        StatusCode::kInvalidArgument, {"'bad_node'", "2-D"}));
  auto y = RunNode("Gemm", {Tensor(DType::kI32, {2, 2}), Tensor(DType::kI32, {2, 2})});
  EXPECT_TRUE(FailsWith(y.status(), StatusCode::kUnimplemented, {"'n0'", "i32"}));
}

// ---------------------------------------------------------------------------
// MatMul.

// numpy matmul by definition: promote 1-D operands, broadcast batch dims.
std::vector<double> NaiveMatMul(const Tensor& a, const Tensor& b, const Shape& y_shape) {
  const Shape as = a.rank() == 1 ? Shape{1, a.dim(0)} : a.shape();
  const Shape bs = b.rank() == 1 ? Shape{b.dim(0), 1} : b.shape();
  const int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
  const size_t nb = std::max(as.size(), bs.size()) - 2;
  Shape batch(nb);
  auto dim_of = [&](const Shape& s, size_t i) {  // batch dim i (right-aligned), 1 if missing
    const size_t sb = s.size() - 2;
    return i + sb >= nb ? s[i + sb - nb] : int64_t{1};
  };
  for (size_t i = 0; i < nb; ++i) batch[i] = std::max(dim_of(as, i), dim_of(bs, i));
  const auto av = a.ToVector<double>(), bv = b.ToVector<double>();
  std::vector<double> y;
  ForEachIndex(batch.empty() ? Shape{1} : batch, [&](const Ints& bi) {
    Ints ai_full, bi_full;
    for (size_t i = 0; i < nb; ++i) {
      if (i + as.size() - 2 >= nb) ai_full.push_back(dim_of(as, i) == 1 ? 0 : bi[i]);
      if (i + bs.size() - 2 >= nb) bi_full.push_back(dim_of(bs, i) == 1 ? 0 : bi[i]);
    }
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t p = 0; p < k; ++p) {
          Ints ai = ai_full, bj = bi_full;
          ai.push_back(i);
          ai.push_back(p);
          bj.push_back(p);
          bj.push_back(j);
          acc += av[Offset(as, ai)] * bv[Offset(bs, bj)];
        }
        y.push_back(acc);
      }
  });
  EXPECT_EQ(static_cast<int64_t>(y.size()), NumElements(y_shape));
  return y;
}

TEST(MatMulTest, NumpySemantics) {
  struct Case {
    Shape a, b, y;
  };
  const std::vector<Case> cases = {
      {{3, 4}, {4, 2}, {3, 2}},
      {{4}, {4, 2}, {2}},
      {{3, 4}, {4}, {3}},
      {{4}, {4}, {}},
      {{2, 1, 3, 4}, {5, 4, 2}, {2, 5, 3, 2}},
      {{3, 4}, {2, 4, 5}, {2, 3, 5}},
      {{2, 3, 4}, {4}, {2, 3}},
  };
  uint32_t seed = 800;
  for (const Case& c : cases) {
    SCOPED_TRACE(ShapeToString(c.a) + " x " + ShapeToString(c.b));
    const Tensor a = Random(c.a, seed++), b = Random(c.b, seed++);
    RunOptions o;
    o.num_threads = 2;
    auto y = RunNode("MatMul", {a, b}, {}, o);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    ASSERT_EQ((*y)[0].shape(), c.y);
    EXPECT_TRUE(AllClose((*y)[0], NaiveMatMul(a, b, c.y)));
  }
}

TEST(MatMulTest, ErrorsNameTheNode) {
  EXPECT_TRUE(FailsWith(InferOnly("MatMul", {Random({2, 3}, 1), Random({4, 5}, 2)}),
                        StatusCode::kInvalidArgument, {"'bad_node'", "K=3", "K=4"}));
  EXPECT_TRUE(FailsWith(InferOnly("MatMul", {Random({2, 2, 3}, 1), Random({3, 3, 5}, 2)}),
                        StatusCode::kInvalidArgument, {"'bad_node'", "batch dims"}));
}

// ---------------------------------------------------------------------------
// BatchNormalization.

TEST(BatchNormTest, MatchesFormula) {
  const int64_t c = 3;
  const Tensor x = Random({2, c, 4, 5}, 900);
  const Tensor scale = Random({c}, 901), bias = Random({c}, 902), mean = Random({c}, 903);
  const Tensor var = Random({c}, 904, 0.1, 2.0);
  const float eps = 1e-3f;
  auto y = RunNode("BatchNormalization", {x, scale, bias, mean, var}, {{"epsilon", eps}});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  const auto xv = x.ToVector<double>(), sv = scale.ToVector<double>(),
             bv = bias.ToVector<double>(), mv = mean.ToVector<double>(),
             vv = var.ToVector<double>();
  std::vector<double> expected;
  for (size_t i = 0; i < xv.size(); ++i) {
    const size_t ch = (i / 20) % c;
    expected.push_back(sv[ch] * (xv[i] - mv[ch]) / std::sqrt(vv[ch] + eps) + bv[ch]);
  }
  EXPECT_TRUE(AllClose((*y)[0], expected));
  // f64 too.
  auto y64 = RunNode("BatchNormalization",
                     {*x.CastTo(DType::kF64), *scale.CastTo(DType::kF64),
                      *bias.CastTo(DType::kF64), *mean.CastTo(DType::kF64),
                      *var.CastTo(DType::kF64)},
                     {{"epsilon", eps}});
  ASSERT_TRUE(y64.ok());
  EXPECT_TRUE(AllClose((*y64)[0], expected, 1e-10, 1e-10));
}

TEST(BatchNormTest, OldOpsetPerActivationStatistics) {
  // Opset 7 spatial = 0: one statistic per (channel, position).
  const Tensor x = Random({2, 2, 3}, 910);
  const Tensor scale = Random({2, 3}, 911), bias = Random({2, 3}, 912), mean = Random({2, 3}, 913);
  const Tensor var = Random({2, 3}, 914, 0.5, 1.5);
  RunOptions o;
  o.opset = 7;
  auto y = RunNode("BatchNormalization", {x, scale, bias, mean, var}, {{"spatial", int64_t{0}}}, o);
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  const auto xv = x.ToVector<double>(), sv = scale.ToVector<double>(),
             bv = bias.ToVector<double>(), mv = mean.ToVector<double>(),
             vv = var.ToVector<double>();
  std::vector<double> expected;
  for (size_t i = 0; i < xv.size(); ++i) {
    const size_t f = i % 6;
    expected.push_back(sv[f] * (xv[i] - mv[f]) / std::sqrt(vv[f] + 1e-5) + bv[f]);
  }
  EXPECT_TRUE(AllClose((*y)[0], expected));
}

TEST(BatchNormTest, TrainingIsUnimplementedAndShapesAreChecked) {
  const Tensor x = Random({1, 2, 3}, 1), p = Random({2}, 2);
  auto y = RunNode("BatchNormalization", {x, p, p, p, p}, {{"training_mode", int64_t{1}}});
  EXPECT_TRUE(FailsWith(y.status(), StatusCode::kUnimplemented, {"'n0'", "training_mode"}));
  RunOptions o;
  o.num_outputs = 3;
  y = RunNode("BatchNormalization", {x, p, p, p, p}, {}, o);
  EXPECT_TRUE(FailsWith(y.status(), StatusCode::kUnimplemented, {"'n0'", "output 1"}));
  EXPECT_TRUE(FailsWith(InferOnly("BatchNormalization", {x, Random({3}, 3), p, p, p}),
                        StatusCode::kInvalidArgument, {"'bad_node'", "scale [3]", "[2]"}));
}

// ---------------------------------------------------------------------------
// Softmax / LogSoftmax.

TEST(SoftmaxTest, HandComputedAndLargeInputsStayFinite) {
  const Tensor x = Tensor::FromVector<float>({1, 3}, {0.0f, std::log(2.0f), std::log(5.0f)});
  auto y = RunNode("Softmax", {x});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_TRUE(AllClose((*y)[0], {1.0 / 8, 2.0 / 8, 5.0 / 8}));
  const Tensor big = Tensor::FromVector<float>({1, 3}, {1000.0f, 1000.0f, 1000.0f});
  y = RunNode("LogSoftmax", {big});
  ASSERT_TRUE(y.ok());
  EXPECT_TRUE(AllClose((*y)[0], std::vector<double>(3, -std::log(3.0))));
}

// Opset 13 normalises dim `axis` only; older opsets flatten [axis, rank) into
// one row. Checked on a [2, 3, 4] tensor with axis = 1.
TEST(SoftmaxTest, AxisSemanticsDependOnOpset) {
  const Tensor x = Random({2, 3, 4}, 1000, -3, 3);
  const auto xv = x.ToVector<double>();
  for (int64_t opset : {11, 13}) {
    for (bool log : {false, true}) {
      SCOPED_TRACE("opset " + std::to_string(opset) + (log ? " log" : ""));
      RunOptions o;
      o.opset = opset;
      auto y = RunNode(log ? "LogSoftmax" : "Softmax", {x}, {{"axis", int64_t{1}}}, o);
      ASSERT_TRUE(y.ok()) << y.status().ToString();
      std::vector<double> expected(xv.size());
      // Groups of elements normalised together.
      std::vector<std::vector<size_t>> groups;
      for (int64_t n = 0; n < 2; ++n) {
        if (opset < 13) {
          groups.emplace_back();
          for (int64_t i = 0; i < 12; ++i) groups.back().push_back(n * 12 + i);
        } else {
          for (int64_t w = 0; w < 4; ++w) {
            groups.emplace_back();
            for (int64_t c = 0; c < 3; ++c) groups.back().push_back(n * 12 + c * 4 + w);
          }
        }
      }
      for (const auto& g : groups) {
        double sum = 0;
        for (size_t i : g) sum += std::exp(xv[i]);
        for (size_t i : g) expected[i] = log ? xv[i] - std::log(sum) : std::exp(xv[i]) / sum;
      }
      EXPECT_TRUE(AllClose((*y)[0], expected, 1e-5, 1e-6));
    }
  }
}

TEST(SoftmaxTest, RowsSumToOneAlongDefaultAxis) {
  const Tensor x = Random({3, 2, 7}, 1100, -20, 20);
  auto y = RunNode("Softmax", {x});
  ASSERT_TRUE(y.ok());
  const auto yv = (*y)[0].ToVector<double>();
  for (size_t r = 0; r < 6; ++r) {
    double sum = 0;
    for (size_t j = 0; j < 7; ++j) {
      EXPECT_GE(yv[r * 7 + j], 0.0);
      sum += yv[r * 7 + j];
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
  EXPECT_TRUE(FailsWith(InferOnly("Softmax", {x}, {{"axis", int64_t{3}}}),
                        StatusCode::kInvalidArgument, {"'bad_node'", "axis 3"}));
}

// ---------------------------------------------------------------------------
// LRN.

TEST(LrnTest, MatchesFormula) {
  const int64_t c = 5, size = 4;
  const Tensor x = Random({2, c, 3, 2}, 1200);
  const float alpha = 0.2f, beta = 0.6f, bias = 2.0f;
  auto y = RunNode("LRN", {x},
                   {{"size", size}, {"alpha", alpha}, {"beta", beta}, {"bias", bias}});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  const auto xv = x.ToVector<double>();
  std::vector<double> expected;
  ForEachIndex({2, c, 6}, [&](const Ints& i) {
    // ONNX window: [c - floor((size-1)/2), c + ceil((size-1)/2)] = [c-1, c+2].
    double sq = 0;
    for (int64_t cc = i[1] - 1; cc <= i[1] + 2; ++cc)
      if (cc >= 0 && cc < c) sq += std::pow(xv[Offset({2, c, 6}, {i[0], cc, i[2]})], 2);
    expected.push_back(xv[Offset({2, c, 6}, i)] / std::pow(bias + alpha / size * sq, beta));
  });
  EXPECT_TRUE(AllClose((*y)[0], expected));
}

}  // namespace
}  // namespace wbs::nn_test
