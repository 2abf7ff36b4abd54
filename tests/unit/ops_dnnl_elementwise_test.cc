// The oneDNN elementwise fast paths (runtime/ops_dnnl_elementwise.cc,
// kernels/dnnl/elementwise.*) against the reference operators: every unary
// op and algorithm mapping, Clip's bound forms, Add/Sub/Mul/Div broadcasts,
// the multi-threaded size range, and the declines.
#include <gtest/gtest.h>

#include "kernels/dnnl/elementwise.h"
#include "tests/unit/ops_dnnl_test_util.h"

namespace wbs::dnnl_test {
namespace {

// Values in [lo, hi].
Tensor Scaled(Shape shape, Rng& rng, float lo, float hi) {
  Tensor t(DType::kF32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = UniformF(rng, lo, hi);
  return t;
}

// Shapes at and above the fast path's minimum size, odd sizes included.
const std::vector<Shape>& UnaryShapes() {
  static const std::vector<Shape> shapes = {
      {1, 16, 16, 16}, {2, 3, 50, 51}, {1, 96, 28, 28}, {5001}};
  return shapes;
}

TEST(OpsDnnlElementwiseTest, UnaryOpsMatchReference) {
  Rng rng(TestSeed() + 30);
  struct Case {
    const char* op;
    Attrs attrs;
    float lo, hi;  // input range
  };
  const std::vector<Case> cases = {
      {"LeakyRelu", {}, -4, 4}, {"LeakyRelu", {{"alpha", 0.3f}}, -4, 4},
      {"Sigmoid", {}, -12, 12}, {"Tanh", {}, -6, 6},
      {"Elu", {}, -6, 3},       {"Elu", {{"alpha", 0.5f}}, -6, 3},
      {"HardSwish", {}, -5, 5}, {"Exp", {}, -20, 10},
      {"Abs", {}, -4, 4},       {"Sqrt", {}, 0, 100},
  };
  for (const Case& c : cases) {
    for (const Shape& shape : UnaryShapes()) {
      ExpectFastMatchesReference(c.op, {{Scaled(shape, rng, c.lo, c.hi)}}, c.attrs,
                                 ShapeToString(shape));
      if (HasFatalFailure()) return;
    }
  }
}

TEST(OpsDnnlElementwiseTest, ClipBoundsFromInputsOrAttributes) {
  Rng rng(TestSeed() + 31);
  const Tensor x = Scaled({1, 32, 20, 20}, rng, -8, 8);
  const Tensor lo = Tensor::Scalar<float>(-1.5f), hi = Tensor::Scalar<float>(6.0f);
  ExpectFastMatchesReference("Clip", {{x}, {lo, true}, {hi, true}}, {}, "min and max");
  ExpectFastMatchesReference("Clip", {{x}, {Tensor(), false}, {hi, true}}, {}, "max only");
  ExpectFastMatchesReference("Clip", {{x}, {lo, true}}, {}, "min only");
  ExpectFastMatchesReference("Clip", {{x}}, {}, "no bounds");
  ExpectFastMatchesReference("Clip", {{x}, {lo, true}, {lo, true}}, {}, "min == max");
  // Opset < 11 form.
  ExpectFastMatchesReference("Clip", {{x}}, {{"min", 0.0f}, {"max", 6.0f}}, "attributes");
}

TEST(OpsDnnlElementwiseTest, BinaryOpsMatchReference) {
  Rng rng(TestSeed() + 32);
  struct Case {
    Shape a, b;
  };
  const std::vector<Case> cases = {
      {{1, 64, 28, 28}, {1, 64, 28, 28}},  // residual
      {{1, 64, 28, 28}, {1, 64, 1, 1}},    // per channel (SE scale, BN-like)
      {{2, 16, 30, 31}, {16, 1, 1}},       // per channel, lower rank
      {{1, 32, 24, 24}, {}},               // scalar
      {{1, 32, 24, 24}, {24}},             // per column
      {{20000}, {20000}},
  };
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) {
    for (const Case& c : cases) {
      // Divisors away from zero.
      const Tensor a = Scaled(c.a, rng, -2, 2), b = Scaled(c.b, rng, 0.5f, 2);
      const std::string what = ShapeToString(c.a) + " " + op + " " + ShapeToString(c.b);
      ExpectFastMatchesReference(op, {{a}, {b}}, {}, what);
      ExpectFastMatchesReference(op, {{a}, {b, true}}, {}, what + " (constant)");
      if (HasFatalFailure()) return;
    }
  }
  // The broadcast operand first: Add and Mul swap operands.
  const Tensor small = Scaled({1, 64, 1, 1}, rng, -1, 1), big = Scaled({1, 64, 28, 28}, rng, -1, 1);
  ExpectFastMatchesReference("Add", {{small}, {big}}, {}, "broadcast first operand");
  ExpectFastMatchesReference("Mul", {{small}, {big}}, {}, "broadcast first operand");
}

// Above the single-thread size, at two threads; and a run-time batch.
TEST(OpsDnnlElementwiseTest, LargeTensorsWithTwoThreadsAndDynamicShapes) {
  Rng rng(TestSeed() + 33);
  const Tensor x = Scaled({1, 32, 200, 200}, rng, -4, 4);  // 1.28M elements
  ExpectFastMatchesReference("Sigmoid", {{x}}, {}, "1.28M", false, /*threads=*/2);
  ExpectFastMatchesReference("Add", {{x}, {Scaled({1, 32, 1, 1}, rng, -1, 1)}}, {}, "1.28M", false,
                             /*threads=*/2);

  std::vector<Operand> ops = {{Scaled({2, 16, 32, 32}, rng, -3, 3), false, /*dynamic_batch=*/true},
                              {Scaled({1, 16, 1, 1}, rng, 0.5f, 2), true}};
  auto prep = Prepare("Mul", ops, {});
  ASSERT_TRUE(prep.ok()) << prep.status().ToString();
  auto fast = CreateOp(*prep, Backend::kFast);
  auto ref = CreateOp(*prep, Backend::kReference);
  ASSERT_TRUE(fast.ok() && ref.ok());
  EXPECT_EQ((*fast)->impl_name(), "onednn:binary");
  for (int64_t batch : {2, 1, 0, 3}) {  // 1: below the minimum size, runs the fallback
    ops[0].t = Scaled({batch, 16, 32, 32}, rng, -3, 3);
    const Shape out = {batch, 16, 32, 32};
    auto yf = RunOp(**fast, ops, out);
    auto yr = RunOp(**ref, ops, out);
    ASSERT_TRUE(yf.ok()) << yf.status().ToString();
    ASSERT_TRUE(yr.ok()) << yr.status().ToString();
    EXPECT_LE(MaxRelError(*yf, *yr), kRelTol) << "batch " << batch;
  }
}

TEST(OpsDnnlElementwiseTest, DeclinesWhatItDoesNotHandle) {
  Rng rng(TestSeed() + 34);
  auto expect_reference = [](const std::string& op, const std::vector<Operand>& ops,
                             const Attrs& attrs, const char* why) {
    SCOPED_TRACE(why);
    auto prep = Prepare(op, ops, attrs);
    ASSERT_TRUE(prep.ok()) << prep.status().ToString();
    auto fast = CreateOp(*prep, Backend::kFast);
    ASSERT_TRUE(fast.ok()) << fast.status().ToString();
    EXPECT_EQ((*fast)->impl_name(), "ref");
  };
  const Tensor x = Scaled({1, 32, 24, 24}, rng, -3, 3);
  expect_reference("Sigmoid", {{Scaled({1, 8, 8, 8}, rng, -1, 1)}}, {}, "too small");
  expect_reference("Add", {{Scaled({1, 8, 8, 8}, rng, -1, 1)}, {Scaled({1, 8, 8, 8}, rng, -1, 1)}},
                   {}, "too small");
  auto x64 = x.CastTo(DType::kF64);
  ASSERT_TRUE(x64.ok());
  expect_reference("Tanh", {{*x64}}, {}, "f64");
  expect_reference("Relu", {{x}}, {}, "Relu: the reference streams at memory speed");
  expect_reference("Clip", {{x}, {Tensor::Scalar<float>(0.0f), false}}, {}, "run-time bound");
  expect_reference("Clip",
                   {{x}, {Tensor::Scalar<float>(2.0f), true}, {Tensor::Scalar<float>(1.0f), true}},
                   {}, "min > max");
  const Tensor ch = Scaled({1, 32, 1, 1}, rng, 0.5f, 2);
  expect_reference("Sub", {{ch}, {x}}, {}, "broadcast first operand of Sub");
  expect_reference("Div", {{ch}, {x}}, {}, "broadcast first operand of Div");
  expect_reference("Add",
                   {{Scaled({1, 32, 24, 1}, rng, -1, 1)}, {Scaled({1, 1, 1, 24}, rng, -1, 1)}}, {},
                   "both operands broadcast");
  // Declined ops still compute.
  ExpectFastMatchesReference("Sub", {{ch}, {x}}, {}, "declined Sub", /*may_decline=*/true);
  ExpectFastMatchesReference(
      "Clip", {{x}, {Tensor::Scalar<float>(2.0f), true}, {Tensor::Scalar<float>(1.0f), true}}, {},
      "declined Clip", /*may_decline=*/true);
}

// Every ONNX unary op with a oneDNN form, at the kernel level (also the ones
// the runtime does not register).
TEST(OpsDnnlElementwiseTest, EveryUnaryAlgorithmMatchesReferenceKernel) {
  namespace onednn = kernels::onednn;
  namespace ref = kernels::ref;
  Rng rng(TestSeed() + 35);
  int mapped = 0;
  for (int i = 0; i < static_cast<int>(ref::UnaryOp::kCount); ++i) {
    const auto op = static_cast<ref::UnaryOp>(i);
    const ref::UnaryParams p{0.3f, 0.0f, 0.0f};
    onednn::UnaryAlgorithm f;
    if (!onednn::UnaryAlgorithmFor(op, p, &f)) continue;
    ++mapped;
    SCOPED_TRACE(fmt::format("seed {}: unary op {}", TestSeed(), i));
    const bool positive = op == ref::UnaryOp::kSqrt;
    const Tensor x = Scaled({3000}, rng, positive ? 0.0f : -5.0f, 5.0f);
    Tensor want(DType::kF32, {3000}), got(DType::kF32, {3000});
    ref::Unary<float>(op, p, x.data<float>(), want.data<float>(), 3000);
    auto prim = onednn::UnaryPrimitive::Create(f, 3000);
    ASSERT_TRUE(prim.ok()) << prim.status().ToString();
    ASSERT_TRUE((*prim)->Execute(x.data<float>(), got.data<float>()).ok());
    EXPECT_LE(MaxRelError(got, want), kRelTol) << (*prim)->impl_name();
  }
  EXPECT_EQ(mapped, 10);
}

}  // namespace
}  // namespace wbs::dnnl_test
