// The integer reference operators (runtime/ops_quant.cc) against a
// straightforward scalar formula of docs/int8.md, run through a Session.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "core/quant_math.h"
#include "runtime/session.h"

namespace wbs {
namespace {

std::shared_ptr<QuantParams> QP(DType t, std::vector<float> s, std::vector<int32_t> z,
                                int axis = -1, bool pot = false) {
  auto q = std::make_shared<QuantParams>();
  q->dtype = static_cast<int32_t>(t);
  q->scale = std::move(s);
  q->zero_point = std::move(z);
  q->axis = axis;
  q->power_of_two = pot;
  return q;
}

template <typename T>
Tensor Random(Shape shape, int lo, int hi, std::mt19937_64& rng) {
  Tensor t(DTypeOf<T>::value, std::move(shape));
  std::uniform_int_distribution<int> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<T>()[i] = static_cast<T>(d(rng));
  return t;
}

Tensor RunOne(const ir::Graph& g, const std::vector<Tensor>& inputs) {
  runtime::SessionOptions o;
  o.backend = runtime::Backend::kReference;
  o.optimize = false;
  auto s = runtime::Session::Create(g, o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  auto out = (*s)->Run(inputs);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return (*out)[0];
}

struct ConvCase {
  int64_t c, m, group, h, k, stride, pad;
  bool relu;
};

class QConvTest : public ::testing::TestWithParam<ConvCase> {};

TEST_P(QConvTest, MatchesScalarFormulaWithPaddingAsZeroPoint) {
  const ConvCase cc = GetParam();
  std::mt19937_64 rng(11 + cc.c + cc.group);
  const float sx = 0.02f, sy = 0.05f;
  const int32_t zx = 7, zy = -3;
  std::vector<float> sw(cc.m);
  for (int64_t i = 0; i < cc.m; ++i) sw[i] = 0.001f * (1 + i % 5);
  ir::Graph g;
  ir::Value* x = g.AddInput("x", DType::kU8, {1, cc.c, cc.h, cc.h});
  x->quant = QP(DType::kU8, {sx}, {zx});
  Tensor wt = Random<int8_t>({cc.m, cc.c / cc.group, cc.k, cc.k}, -127, 127, rng);
  Tensor bt = Random<int32_t>({cc.m}, -5000, 5000, rng);
  ir::Value* w = g.AddConstant("w", wt);
  w->quant = QP(DType::kI8, sw, std::vector<int32_t>(cc.m, 0), 0);
  ir::Value* b = g.AddConstant("b", bt);
  ir::Value* y = g.AddValue("y");
  y->quant = QP(DType::kI8, {sy}, {zy});
  ir::Node* n = g.AddNode("QConv", {x, w, b}, {y}, "conv");
  n->attrs["kernel_shape"] = std::vector<int64_t>{cc.k, cc.k};
  n->attrs["strides"] = std::vector<int64_t>{cc.stride, cc.stride};
  n->attrs["pads"] = std::vector<int64_t>{cc.pad, cc.pad, cc.pad, cc.pad};
  n->attrs["group"] = cc.group;
  if (cc.relu) n->attrs["wbs.activation"] = std::string("Relu");
  g.outputs.push_back(y);
  Tensor xt = Random<uint8_t>({1, cc.c, cc.h, cc.h}, 0, 255, rng);
  const Tensor out = RunOne(g, {xt});
  const int64_t oh = (cc.h + 2 * cc.pad - cc.k) / cc.stride + 1;
  ASSERT_EQ(out.shape(), (Shape{1, cc.m, oh, oh}));
  const int64_t cg = cc.c / cc.group, mg = cc.m / cc.group;
  for (int64_t m = 0; m < cc.m; ++m) {
    const Requant r = QuantizeMultiplier(static_cast<double>(sx) * sw[m] / sy);
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < oh; ++j) {
        int64_t acc = bt.data<int32_t>()[m];
        for (int64_t c = 0; c < cg; ++c)
          for (int64_t ki = 0; ki < cc.k; ++ki)
            for (int64_t kj = 0; kj < cc.k; ++kj) {
              const int64_t ii = i * cc.stride - cc.pad + ki, jj = j * cc.stride - cc.pad + kj;
              const bool in = ii >= 0 && ii < cc.h && jj >= 0 && jj < cc.h;
              const int32_t xv =
                  in ? xt.data<uint8_t>()[((m / mg * cg + c) * cc.h + ii) * cc.h + jj] : zx;
              acc += wt.data<int8_t>()[((m * cg + c) * cc.k + ki) * cc.k + kj] * (xv - zx);
            }
        const int32_t want = Requantize(static_cast<int32_t>(acc), r, zy,
                                        cc.relu ? zy : -128, 127);
        ASSERT_EQ(out.data<int8_t>()[(m * oh + i) * oh + j], want) << m << " " << i << " " << j;
      }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, QConvTest,
                         ::testing::Values(ConvCase{8, 8, 1, 6, 3, 1, 1, false},
                                           ConvCase{4, 6, 2, 7, 3, 2, 1, true},
                                           ConvCase{8, 8, 8, 5, 3, 1, 1, true},  // depthwise
                                           ConvCase{16, 8, 1, 4, 1, 1, 0, false}));

TEST(QuantOps, QGemmFloatOutputIsTheDequantizedAccumulator) {
  std::mt19937_64 rng(3);
  ir::Graph g;
  ir::Value* x = g.AddInput("x", DType::kI8, {3, 10});
  x->quant = QP(DType::kI8, {0.1f}, {-5});
  Tensor wt = Random<int8_t>({4, 10}, -127, 127, rng);
  Tensor bt = Random<int32_t>({4}, -100, 100, rng);
  ir::Value* w = g.AddConstant("w", wt);
  const std::vector<float> sw = {0.01f, 0.02f, 0.03f, 0.04f};
  w->quant = QP(DType::kI8, sw, {0, 0, 0, 0}, 0);
  ir::Value* b = g.AddConstant("b", bt);
  ir::Value* y = g.AddValue("y");
  ir::Node* n = g.AddNode("QGemm", {x, w, b}, {y}, "fc");
  n->attrs["transB"] = int64_t{1};
  g.outputs.push_back(y);
  Tensor xt = Random<int8_t>({3, 10}, -128, 127, rng);
  const Tensor out = RunOne(g, {xt});
  ASSERT_EQ(out.dtype(), DType::kF32);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t c = 0; c < 4; ++c) {
      int32_t acc = bt.data<int32_t>()[c];
      for (int64_t k = 0; k < 10; ++k)
        acc += wt.data<int8_t>()[c * 10 + k] * (xt.data<int8_t>()[i * 10 + k] + 5);
      const float want = static_cast<float>(acc) * static_cast<float>(static_cast<double>(0.1f) * sw[c]);
      EXPECT_EQ(out.data<float>()[i * 4 + c], want);
    }
}

TEST(QuantOps, QAddRescalesBothInputsWithOneRoundingAndFusedRelu) {
  std::mt19937_64 rng(5);
  ir::Graph g;
  ir::Value* a = g.AddInput("a", DType::kU8, {2, 3, 4});
  a->quant = QP(DType::kU8, {0.03f}, {10});
  ir::Value* bb = g.AddInput("b", DType::kI8, {3, 1});  // broadcast
  bb->quant = QP(DType::kI8, {0.07f}, {2});
  ir::Value* y = g.AddValue("y");
  y->quant = QP(DType::kU8, {0.05f}, {20});
  ir::Node* n = g.AddNode("QAdd", {a, bb}, {y}, "add");
  n->attrs["wbs.activation"] = std::string("Relu");
  g.outputs.push_back(y);
  Tensor at = Random<uint8_t>({2, 3, 4}, 0, 255, rng);
  Tensor bt = Random<int8_t>({3, 1}, -128, 127, rng);
  const Tensor out = RunOne(g, {at, bt});
  const RequantPair r2 = QuantizeMultiplierPair(static_cast<double>(0.03f) / 0.05f,
                                                static_cast<double>(0.07f) / 0.05f);
  for (int64_t i = 0; i < 24; ++i) {
    const int32_t av = at.data<uint8_t>()[i] - 10;
    const int32_t bv = bt.data<int8_t>()[(i / 4) % 3] - 2;
    ASSERT_EQ(out.data<uint8_t>()[i], RequantizeAdd(av, bv, r2, 20, 20, 255)) << i;
    // And close to the real-valued sum.
    const double real = std::max(0.0, static_cast<double>(0.03f * av + 0.07f * bv));
    EXPECT_NEAR(0.05f * (out.data<uint8_t>()[i] - 20), std::min(real, 0.05 * 235), 0.026);
  }
}

TEST(QuantOps, QConcatRescalesEachInput) {
  ir::Graph g;
  ir::Value* a = g.AddInput("a", DType::kU8, {1, 1, 2});
  a->quant = QP(DType::kU8, {0.1f}, {0});
  ir::Value* b = g.AddInput("b", DType::kU8, {1, 2, 2});
  b->quant = QP(DType::kU8, {0.2f}, {0});  // same as y: exact copy
  ir::Value* y = g.AddValue("y");
  y->quant = QP(DType::kU8, {0.2f}, {0});
  ir::Node* n = g.AddNode("QConcat", {a, b}, {y}, "cat");
  n->attrs["axis"] = int64_t{1};
  g.outputs.push_back(y);
  const Tensor out = RunOne(g, {Tensor::FromVector<uint8_t>({1, 1, 2}, {3, 255}),
                               Tensor::FromVector<uint8_t>({1, 2, 2}, {0, 1, 254, 255})});
  // 0.1*3/0.2 = 1.5 -> 2 (half up); 0.1*255/0.2 = 127.5 -> 128.
  EXPECT_EQ(out.ToVector<int32_t>(), (std::vector<int32_t>{2, 128, 0, 1, 254, 255}));
}

TEST(QuantOps, AveragePoolsRoundHalfUpInTheZeroPointFrame) {
  for (int include_pad = 0; include_pad <= 1; ++include_pad) {
    ir::Graph g;
    ir::Value* x = g.AddInput("x", DType::kI8, {1, 1, 2, 2});
    x->quant = QP(DType::kI8, {0.1f}, {-10});
    ir::Value* y = g.AddValue("y");
    y->quant = x->quant;
    ir::Node* n = g.AddNode("QAveragePool", {x}, {y}, "pool");
    n->attrs["kernel_shape"] = std::vector<int64_t>{2, 2};
    n->attrs["pads"] = std::vector<int64_t>{1, 1, 0, 0};
    n->attrs["count_include_pad"] = int64_t{include_pad};
    g.outputs.push_back(y);
    const Tensor out = RunOne(g, {Tensor::FromVector<int8_t>({1, 1, 2, 2}, {-7, -8, -9, -12})});
    // x - z = {3, 2, 1, -2}. Windows (top-left padded by 1):
    // (0,0): {3} ; (0,1): {3,2} ; (1,0): {3,1} ; (1,1): {3,2,1,-2}
    const std::vector<int32_t> want =
        include_pad ? std::vector<int32_t>{-10 + RoundDivHalfUp(3, 4), -10 + RoundDivHalfUp(5, 4),
                                           -10 + RoundDivHalfUp(4, 4), -10 + RoundDivHalfUp(4, 4)}
                    : std::vector<int32_t>{-7, -10 + RoundDivHalfUp(5, 2),
                                           -10 + RoundDivHalfUp(4, 2), -10 + RoundDivHalfUp(4, 4)};
    EXPECT_EQ(out.ToVector<int32_t>(), want) << include_pad;
  }
  ir::Graph g;
  ir::Value* x = g.AddInput("x", DType::kU8, {1, 2, 1, 3});
  x->quant = QP(DType::kU8, {0.1f}, {100});
  ir::Value* y = g.AddValue("y");
  y->quant = x->quant;
  g.AddNode("QGlobalAveragePool", {x}, {y}, "gap");
  g.outputs.push_back(y);
  const Tensor out = RunOne(g, {Tensor::FromVector<uint8_t>({1, 2, 1, 3}, {101, 101, 100, 99, 98, 100})});
  // {1,1,0} -> 2/3 -> 1 ; {-1,-2,0} -> -1 (-3/3)
  EXPECT_EQ(out.ToVector<int32_t>(), (std::vector<int32_t>{101, 99}));
}

TEST(QuantOps, QuantizeLinearRoundsHalfToEvenAndDequantizeInverts) {
  ir::Graph g;
  ir::Value* x = g.AddInput("x", DType::kF32, {6});
  ir::Value* s = g.AddConstant("s", Tensor::Scalar<float>(0.5f));
  ir::Value* z = g.AddConstant("z", Tensor::Scalar<int8_t>(1));
  ir::Value* q = g.AddValue("q");
  g.AddNode("QuantizeLinear", {x, s, z}, {q}, "quant");
  ir::Value* d = g.AddValue("d");
  g.AddNode("DequantizeLinear", {q, s, z}, {d}, "dequant");
  g.outputs = {q, d};
  runtime::SessionOptions o;
  o.optimize = false;
  auto sess = runtime::Session::Create(g, o);
  ASSERT_TRUE(sess.ok()) << sess.status().ToString();
  auto out = (*sess)->Run({Tensor::FromVector<float>({6}, {0.25f, 0.75f, -0.25f, 100.f, -100.f, 1.f})});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ((*out)[0].ToVector<int32_t>(), (std::vector<int32_t>{1, 3, 1, 127, -128, 3}));
  EXPECT_EQ((*out)[1].ToVector<float>(), (std::vector<float>{0.f, 1.f, 0.f, 63.f, -64.5f, 1.f}));
}

}  // namespace
}  // namespace wbs
