// Elementwise ops: shape rules and reference operators against expectations
// computed here by straightforward formulas (see ops_tensor_test_util.h).
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>

#include "ops_tensor_test_util.h"

namespace wbs::tensor_test {
namespace {

// out[i] = f(a[.], b[.]) by explicit index arithmetic.
template <typename T, typename R, typename F>
Tensor NaiveBinary(const Tensor& a, const Tensor& b, const Shape& out_shape, F f) {
  std::vector<R> out;
  ForEachIndex(out_shape, [&](const std::vector<int64_t>& idx) {
    out.push_back(f(a.data<T>()[BroadcastOffset(a.shape(), idx)],
                    b.data<T>()[BroadcastOffset(b.shape(), idx)]));
  });
  return Tensor::FromVector<R>(out_shape, out);
}

TEST(ElementwiseUnary, FloatOpsMatchFormulas) {
  const Tensor x = Iota({2, 3, 4}, -2.3, 0.21);
  struct Case {
    const char* op;
    std::function<double(double)> f;
    Attrs attrs;
  };
  const std::vector<Case> cases = {
      {"Relu", [](double v) { return v > 0 ? v : 0; }, {}},
      {"LeakyRelu", [](double v) { return v >= 0 ? v : 0.1 * v; }, {{"alpha", 0.1f}}},
      {"LeakyRelu", [](double v) { return v >= 0 ? v : 0.01 * v; }, {}},
      {"Sigmoid", [](double v) { return 1 / (1 + std::exp(-v)); }, {}},
      {"HardSigmoid", [](double v) { return std::clamp(0.2 * v + 0.5, 0.0, 1.0); }, {}},
      {"HardSigmoid",
       [](double v) { return std::clamp(0.5 * v + 0.1, 0.0, 1.0); },
       {{"alpha", 0.5f}, {"beta", 0.1f}}},
      {"Tanh", [](double v) { return std::tanh(v); }, {}},
      {"Exp", [](double v) { return std::exp(v); }, {}},
      {"Neg", [](double v) { return -v; }, {}},
      {"Abs", [](double v) { return std::fabs(v); }, {}},
      {"Sign", [](double v) { return v > 0   ? 1.0
                                     : v < 0 ? -1.0
                                             : 0.0; }, {}},
      {"Reciprocal", [](double v) { return 1 / v; }, {}},
      {"Floor", [](double v) { return std::floor(v); }, {}},
      {"Ceil", [](double v) { return std::ceil(v); }, {}},
      {"Erf", [](double v) { return std::erf(v); }, {}},
      {"Elu", [](double v) { return v >= 0 ? v : 2.0 * (std::exp(v) - 1); }, {{"alpha", 2.0f}}},
      {"Selu",
       [](double v) {
         return 1.0507009873554805 * (v > 0 ? v : 1.6732632423543772 * (std::exp(v) - 1));
       },
       {}},
      {"Softplus", [](double v) { return std::log1p(std::exp(v)); }, {}},
      {"Softsign", [](double v) { return v / (1 + std::fabs(v)); }, {}},
      {"ThresholdedRelu", [](double v) { return v > 1.0 ? v : 0; }, {}},
      {"HardSwish", [](double v) { return v * std::clamp(v / 6 + 0.5, 0.0, 1.0); }, {}},
      {"Shrink",
       [](double v) { return v < -0.5  ? v + 0.25
                             : v > 0.5 ? v - 0.25
                                       : 0; },
       {{"bias", 0.25f}}},
      {"Sin", [](double v) { return std::sin(v); }, {}},
      {"Atan", [](double v) { return std::atan(v); }, {}},
      {"Celu",
       [](double v) { return std::max(0.0, v) + std::min(0.0, 2.0 * (std::exp(v / 2.0) - 1)); },
       {{"alpha", 2.0f}}},
  };
  for (const Case& c : cases) {
    std::vector<float> want;
    for (float v : x.ToVector<float>()) want.push_back(static_cast<float>(c.f(v)));
    EXPECT_TRUE(Near(Run1(c.op, {x}, c.attrs), F32(x.shape(), want), 1e-6, 1e-5)) << c.op;
  }
}

TEST(ElementwiseUnary, SqrtLogRoundSpecialValues) {
  const Tensor x = F32({5}, {4.0f, 0.0f, -1.0f, 2.25f, 1e-3f});
  EXPECT_TRUE(Near(Run1("Sqrt", {x}), F32({5}, {2.0f, 0.0f, NAN, 1.5f, std::sqrt(1e-3f)}), 1e-7));
  EXPECT_TRUE(Near(Run1("Log", {x}),
                   F32({5}, {std::log(4.0f), -INFINITY, NAN, std::log(2.25f), std::log(1e-3f)}),
                   1e-6));
  // Round is half to even.
  EXPECT_TRUE(Near(Run1("Round", {F32({6}, {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 2.4f})}),
                   F32({6}, {0.0f, 2.0f, 2.0f, -0.0f, -2.0f, 2.0f})));
}

TEST(ElementwiseUnary, DoubleAndIntegerTypes) {
  EXPECT_TRUE(
      Near(Run1("Exp", {T_<double>({2}, {0.0, 1.0})}), T_<double>({2}, {1.0, std::exp(1.0)})));
  EXPECT_TRUE(Near(Run1("Relu", {I32({4}, {-3, 0, 5, -1})}), I32({4}, {0, 0, 5, 0})));
  EXPECT_TRUE(
      Near(Run1("Abs", {T_<int8_t>({3}, {-7, 7, -128})}), T_<int8_t>({3}, {7, 7, -128})));  // wraps
  EXPECT_TRUE(Near(Run1("Neg", {I64({2}, {5, -9})}), I64({2}, {-5, 9})));
  EXPECT_TRUE(Near(Run1("Sign", {I32({3}, {-4, 0, 9})}), I32({3}, {-1, 0, 1})));
  EXPECT_TRUE(Near(Run1("Not", {Bool({3}, {true, false, true})}), Bool({3}, {false, true, false})));
  EXPECT_TRUE(
      Near(Run1("IsNaN", {F32({3}, {1.0f, NAN, INFINITY})}), Bool({3}, {false, true, false})));
  EXPECT_TRUE(
      Near(Run1("IsInf", {F32({3}, {-INFINITY, NAN, INFINITY})}, {{"detect_negative", int64_t{0}}}),
           Bool({3}, {false, false, true})));
}

TEST(ElementwiseUnary, TypeErrors) {
  auto r = RunNode("Exp", {I32({2}, {1, 2})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument,
                      {"Exp node 'n0'", "floating-point", "i32"}));
  r = RunNode("Not", {F32({1}, {1})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"Not node", "bool"}));
  Tensor half(DType::kF16, {2});
  r = RunNode("Relu", {half});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kUnimplemented, {"Relu node 'n0'", "f16"}));
}

TEST(ElementwiseBinary, BroadcastingMatchesIndexArithmetic) {
  struct Case {
    Shape a, b, out;
  };
  const std::vector<Case> cases = {
      {{2, 3}, {2, 3}, {2, 3}},
      {{2, 3}, {}, {2, 3}},
      {{}, {2, 3}, {2, 3}},
      {{2, 3, 4}, {4}, {2, 3, 4}},
      {{2, 3, 4}, {3, 1}, {2, 3, 4}},
      {{1, 3, 1}, {2, 1, 4}, {2, 3, 4}},
      {{2, 1, 4, 1}, {3, 1, 5}, {2, 3, 4, 5}},
      {{1}, {1, 1}, {1, 1}},
      {{3, 0}, {1}, {3, 0}},
      {{1, 3, 4, 4}, {1, 3, 1, 1}, {1, 3, 4, 4}},
  };
  for (const Case& c : cases) {
    const Tensor a = Iota(c.a, 1.0, 0.5), b = Iota(c.b, 2.0, 0.25);
    EXPECT_TRUE(
        Near(Run1("Add", {a, b}), NaiveBinary<float, float>(a, b, c.out, std::plus<float>())))
        << ShapeToString(c.a) << " + " << ShapeToString(c.b);
    EXPECT_TRUE(
        Near(Run1("Sub", {a, b}), NaiveBinary<float, float>(a, b, c.out, std::minus<float>())));
    EXPECT_TRUE(Near(Run1("Mul", {a, b}),
                     NaiveBinary<float, float>(a, b, c.out, std::multiplies<float>())));
    EXPECT_TRUE(
        Near(Run1("Div", {a, b}), NaiveBinary<float, float>(a, b, c.out, std::divides<float>())));
    EXPECT_TRUE(
        Near(Run1("Less", {a, b}), NaiveBinary<float, bool>(a, b, c.out, std::less<float>())));
  }
}

TEST(ElementwiseBinary, ShapeErrors) {
  auto r = RunNode("Add", {Iota({2, 3}), Iota({4})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument,
                      {"Add node 'n0'", "[2,3]", "[4]", "broadcast"}));
  r = RunNode("Mul", {Iota({2}), I32({2}, {1, 2})});
  EXPECT_TRUE(
      IsError(r.status(), StatusCode::kInvalidArgument, {"Mul node", "same type", "f32", "i32"}));
  r = RunNode("Add", {Bool({1}, {true}), Bool({1}, {true})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"numeric"}));
}

TEST(ElementwiseBinary, IntegerArithmetic) {
  // Integer Div truncates toward zero (C semantics, as ONNX Runtime).
  const Tensor a = I32({6}, {7, -7, 7, -7, 0, 9}), b = I32({6}, {2, 2, -2, -2, 3, 1});
  EXPECT_TRUE(Near(Run1("Div", {a, b}), I32({6}, {3, -3, -3, 3, 0, 9})));
  // Mod follows the divisor's sign; with fmod=1 the dividend's.
  EXPECT_TRUE(Near(Run1("Mod", {a, b}), I32({6}, {1, 1, -1, -1, 0, 0})));
  EXPECT_TRUE(Near(Run1("Mod", {a, b}, {{"fmod", int64_t{1}}}), I32({6}, {1, -1, 1, -1, 0, 0})));
  EXPECT_TRUE(Near(Run1("Mod", {F32({2}, {-4.5f, 4.5f}), F32({1}, {2.0f})}, {{"fmod", int64_t{1}}}),
                   F32({2}, {-0.5f, 0.5f})));
  // uint8 wraps.
  EXPECT_TRUE(Near(Run1("Add", {T_<uint8_t>({2}, {250, 3}), T_<uint8_t>({2}, {10, 4})}),
                   T_<uint8_t>({2}, {4, 7})));
  EXPECT_TRUE(
      Near(Run1("Mul", {I64({1}, {3000000000LL}), I64({1}, {3})}), I64({1}, {9000000000LL})));
  // INT_MIN / -1 wraps instead of trapping.
  const int32_t mn = std::numeric_limits<int32_t>::min();
  EXPECT_TRUE(Near(Run1("Div", {I32({1}, {mn}), I32({1}, {-1})}), I32({1}, {mn})));
}

TEST(ElementwiseBinary, IntegerDivisionByZeroIsAnError) {
  auto r = RunNode("Div", {I32({2}, {1, 2}), I32({2}, {1, 0})});
  EXPECT_TRUE(
      IsError(r.status(), StatusCode::kInvalidArgument, {"Div node 'n0'", "division by zero"}));
  r = RunNode("Mod", {I64({1}, {5}), I64({1}, {0})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"division by zero"}));
  // Float division by zero is IEEE.
  EXPECT_TRUE(
      Near(Run1("Div", {F32({2}, {1, -1}), F32({1}, {0})}), F32({2}, {INFINITY, -INFINITY})));
}

TEST(ElementwiseBinary, PowMixedTypes) {
  EXPECT_TRUE(
      Near(Run1("Pow", {F32({3}, {1, 2, 3}), F32({3}, {4, 5, 6})}), F32({3}, {1, 32, 729})));
  EXPECT_TRUE(Near(Run1("Pow", {F32({3}, {2, 4, 9}), I64({1}, {2})}), F32({3}, {4, 16, 81})));
  EXPECT_TRUE(
      Near(Run1("Pow", {I64({3}, {1, 2, 3}), F32({3}, {2, 2, 0.5f})}), I64({3}, {1, 4, 1})));
  EXPECT_TRUE(Near(Run1("Pow", {I32({2, 2}, {1, 2, 3, 4}), I32({2}, {3, 2})}),
                   I32({2, 2}, {1, 4, 27, 16})));
  EXPECT_TRUE(Near(Run1("Pow", {F32({2}, {4, 9}), F32({}, {0.5f})}), F32({2}, {2, 3})));
}

TEST(ElementwiseBinary, PReluBroadcastsSlopeToInput) {
  const Tensor x = F32({1, 2, 2}, {-1, 2, -3, 4}), slope = F32({2, 1}, {0.5f, 0.25f});
  EXPECT_TRUE(Near(Run1("PRelu", {x, slope}), F32({1, 2, 2}, {-0.5f, 2, -0.75f, 4})));
  auto r = RunNode("PRelu", {F32({2}, {1, 2}), F32({2, 2}, {1, 2, 3, 4})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"PRelu node", "slope"}));
}

TEST(ElementwiseCompare, AllOpsAndTypes) {
  const Tensor a = I64({2, 2}, {1, 5, 3, 3}), b = I64({2}, {3, 3});
  EXPECT_TRUE(Near(Run1("Equal", {a, b}), Bool({2, 2}, {false, false, true, true})));
  EXPECT_TRUE(Near(Run1("Less", {a, b}), Bool({2, 2}, {true, false, false, false})));
  EXPECT_TRUE(Near(Run1("LessOrEqual", {a, b}), Bool({2, 2}, {true, false, true, true})));
  EXPECT_TRUE(Near(Run1("Greater", {a, b}), Bool({2, 2}, {false, true, false, false})));
  EXPECT_TRUE(Near(Run1("GreaterOrEqual", {a, b}), Bool({2, 2}, {false, true, true, true})));
  EXPECT_TRUE(Near(Run1("Equal", {Bool({2}, {true, false}), Bool({1}, {false})}),
                   Bool({2}, {false, true})));
  EXPECT_TRUE(
      Near(Run1("Equal", {F32({2}, {NAN, 1}), F32({2}, {NAN, 1})}), Bool({2}, {false, true})));
}

TEST(ElementwiseLogical, AndOrXorBroadcast) {
  const Tensor a = Bool({2, 2}, {true, true, false, false}), b = Bool({2}, {true, false});
  EXPECT_TRUE(Near(Run1("And", {a, b}), Bool({2, 2}, {true, false, false, false})));
  EXPECT_TRUE(Near(Run1("Or", {a, b}), Bool({2, 2}, {true, true, true, false})));
  EXPECT_TRUE(Near(Run1("Xor", {a, b}), Bool({2, 2}, {false, true, true, false})));
}

TEST(ElementwiseWhere, ThreeWayBroadcast) {
  const Tensor c = Bool({2, 1}, {true, false});
  const Tensor x = I64({3}, {1, 2, 3}), y = I64({}, {-1});
  EXPECT_TRUE(Near(Run1("Where", {c, x, y}), I64({2, 3}, {1, 2, 3, -1, -1, -1})));
  const Tensor xf = Iota({2, 2, 3}), yf = Iota({3}, 100);
  const Tensor cf = Bool({2, 3}, {true, false, true, false, true, false});
  std::vector<float> want;
  ForEachIndex({2, 2, 3}, [&](const std::vector<int64_t>& i) {
    const bool cond = cf.data<bool>()[i[1] * 3 + i[2]];
    want.push_back(cond ? xf.data<float>()[(i[0] * 2 + i[1]) * 3 + i[2]] : yf.data<float>()[i[2]]);
  });
  EXPECT_TRUE(Near(Run1("Where", {cf, xf, yf}), F32({2, 2, 3}, want)));
  auto r = RunNode("Where", {Iota({2}), xf, yf});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"Where node", "bool"}));
}

TEST(ElementwiseVariadic, MaxMinSumMeanBroadcast) {
  const Tensor a = F32({2, 1}, {1, 6}), b = F32({3}, {4, 2, 7}), c = F32({}, {5});
  EXPECT_TRUE(Near(Run1("Max", {a, b, c}), F32({2, 3}, {5, 5, 7, 6, 6, 7})));
  EXPECT_TRUE(Near(Run1("Min", {a, b, c}), F32({2, 3}, {1, 1, 1, 4, 2, 5})));
  EXPECT_TRUE(Near(Run1("Sum", {a, b, c}), F32({2, 3}, {10, 8, 13, 15, 13, 18})));
  EXPECT_TRUE(Near(Run1("Mean", {a, b}), F32({2, 3}, {2.5f, 1.5f, 4, 5, 4, 6.5f})));
  EXPECT_TRUE(Near(Run1("Sum", {b}), b));
  EXPECT_TRUE(Near(Run1("Max", {I32({2}, {-1, 9}), I32({2}, {3, 2})}), I32({2}, {3, 9})));
  EXPECT_TRUE(Near(Run1("Max", {F32({2}, {NAN, 1}), F32({2}, {0, NAN})}), F32({2}, {NAN, NAN})));
  auto r = RunNode("Sum", {Iota({2}), Iota({3})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"Sum node", "broadcast"}));
}

TEST(ElementwiseClip, AttributeAndInputForms) {
  const Tensor x = F32({5}, {-3, -1, 0, 2, 9});
  // Opset 6: attributes.
  EXPECT_TRUE(Near(Run1("Clip", {x}, {{"min", -1.5f}, {"max", 4.0f}}, {.opset = 6}),
                   F32({5}, {-1.5f, -1, 0, 2, 4})));
  EXPECT_TRUE(Near(Run1("Clip", {x}, {{"max", 1.0f}}, {.opset = 6}), F32({5}, {-3, -1, 0, 1, 1})));
  // Opset 11+: optional inputs, either may be omitted.
  EXPECT_TRUE(
      Near(Run1("Clip", {x, F32({}, {-1.5f}), F32({}, {4})}), F32({5}, {-1.5f, -1, 0, 2, 4})));
  EXPECT_TRUE(Near(Run1("Clip", {x, Tensor(), F32({}, {1})}), F32({5}, {-3, -1, 0, 1, 1})));
  EXPECT_TRUE(Near(Run1("Clip", {x, F32({}, {0})}), F32({5}, {0, 0, 0, 2, 9})));
  EXPECT_TRUE(
      Near(Run1("Clip", {F32({2}, {-INFINITY, INFINITY})}), F32({2}, {-INFINITY, INFINITY})));
  // min > max: everything becomes max.
  EXPECT_TRUE(Near(Run1("Clip", {x, F32({}, {3}), F32({}, {1})}), F32({5}, {1, 1, 1, 1, 1})));
  // Integer types.
  const Tensor xi = T_<int8_t>({4}, {-128, -5, 5, 127});
  EXPECT_TRUE(Near(Run1("Clip", {xi, T_<int8_t>({}, {-6}), T_<int8_t>({}, {6})}),
                   T_<int8_t>({4}, {-6, -5, 5, 6})));
  EXPECT_TRUE(
      Near(Run1("Clip", {xi, Tensor(), T_<int8_t>({}, {0})}), T_<int8_t>({4}, {-128, -5, 0, 0})));
  EXPECT_TRUE(Near(Run1("Clip", {xi}), xi));
  auto r = RunNode("Clip", {x, F32({2}, {0, 1})});
  EXPECT_TRUE(
      IsError(r.status(), StatusCode::kInvalidArgument, {"Clip node 'n0'", "min", "scalar"}));
  r = RunNode("Clip", {x, I32({}, {0})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"same type"}));
}

TEST(ElementwiseCast, NumericAndBoolConversions) {
  auto cast = [](const Tensor& x, DType to) {
    return Run1("Cast", {x}, {{"to", static_cast<int64_t>(to)}});
  };
  EXPECT_TRUE(Near(cast(F32({5}, {1.9f, -1.9f, 0.0f, 300.0f, -0.4f}), DType::kI32),
                   I32({5}, {1, -1, 0, 300, 0})));
  EXPECT_TRUE(Near(cast(F32({4}, {0.0f, -0.0f, 2.5f, NAN}), DType::kBool),
                   Bool({4}, {false, false, true, true})));
  EXPECT_TRUE(Near(cast(Bool({2}, {true, false}), DType::kF64), T_<double>({2}, {1.0, 0.0})));
  EXPECT_TRUE(Near(cast(I64({2}, {258, -1}), DType::kU8), T_<uint8_t>({2}, {2, 255})));
  EXPECT_TRUE(Near(cast(I32({2}, {7, -3}), DType::kF32), F32({2}, {7, -3})));
  // Float to integer saturates (out-of-range is undefined in ONNX; wbs is deterministic).
  EXPECT_TRUE(Near(
      cast(F32({3}, {1e10f, -1e10f, NAN}), DType::kI32),
      I32({3}, {std::numeric_limits<int32_t>::max(), std::numeric_limits<int32_t>::min(), 0})));
  EXPECT_TRUE(
      Near(Run1("CastLike", {I32({2}, {1, 2}), T_<double>({1}, {0})}), T_<double>({2}, {1, 2})));
}

TEST(ElementwiseCast, UnsupportedTypesAreUnimplemented) {
  auto r = RunNode("Cast", {F32({1}, {1})}, {{"to", int64_t{10}}});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kUnimplemented, {"Cast node 'n0'", "f16"}));
  r = RunNode("Cast", {F32({1}, {1})}, {{"to", int64_t{16}}});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kUnimplemented, {"Cast node 'n0'", "bf16"}));
  r = RunNode("Cast", {F32({1}, {1})}, {{"to", int64_t{8}}});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kUnimplemented, {"Cast node 'n0'", "string"}));
  r = RunNode("Cast", {F32({1}, {1})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"'to'"}));
}

// Outputs allocated from a shape the inputs do not produce (e.g. a wrong
// declared shape), and inputs of another dtype than at creation, are refused
// before any kernel touches them.
TEST(RefOperator, RejectsOutputsThatDisagreeWithTheShapeRule) {
  ir::Graph g;
  ir::Node* n = g.AddNode(
      "Add", {g.AddInput("a", DType::kF32, {2}), g.AddInput("b", DType::kF32, {2})}, 1, "add0");
  runtime::OpCreateArgs args;
  args.node = n;
  args.backend = runtime::Backend::kReference;
  for (ir::Value* v : n->inputs) args.inputs.push_back(ir::ValueInfo::FromValue(v));
  auto op = runtime::CreateOperator(args);
  ASSERT_TRUE(op.ok()) << op.status().ToString();
  const Tensor a = F32({2}, {1, 2}), b = F32({2}, {3, 4});
  Tensor wrong(DType::kF32, {3});
  Status st = (*op)->Run({&a, &b}, {&wrong}, runtime::ExecContext());
  EXPECT_TRUE(IsError(st, StatusCode::kInvalidArgument, {"Add node 'add0'", "f32[3]", "f32[2]"}));
  const Tensor ai = I32({2}, {1, 2});
  st = (*op)->Run({&ai, &b}, {&wrong}, runtime::ExecContext());
  EXPECT_TRUE(IsError(st, StatusCode::kInvalidArgument, {"Add node 'add0'", "input 0", "i32[2]"}));
  Tensor right(DType::kF32, {2});
  EXPECT_TRUE((*op)->Run({&a, &b}, {&right}, runtime::ExecContext()).ok());
  EXPECT_TRUE(Near(right, F32({2}, {4, 6})));
}

}  // namespace
}  // namespace wbs::tensor_test
