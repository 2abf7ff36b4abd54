// Shape-manipulation and data-movement ops: shape rules and reference
// operators against hand-computed or index-arithmetic expectations.
#include "ops_tensor_test_util.h"
#include "runtime/session.h"

namespace wbs::tensor_test {
namespace {

TEST(Reshape, ZeroCopiesAndMinusOneInfers) {
  const Tensor x = Iota({2, 3, 4});
  const Tensor y = Run1("Reshape", {x, Ints1D({0, -1})});
  EXPECT_EQ(y.shape(), (Shape{2, 12}));
  EXPECT_TRUE(Near(y, Iota({2, 12})));
  EXPECT_EQ(Run1("Reshape", {x, Ints1D({-1})}).shape(), (Shape{24}));
  EXPECT_EQ(Run1("Reshape", {x, Ints1D({4, 0, 2})}).shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(Run1("Reshape", {x, I32({3}, {2, 2, -1})}).shape(), (Shape{2, 2, 6}));
  // Opset 1-4: shape attribute.
  EXPECT_EQ(Run1("Reshape", {x}, {{"shape", std::vector<int64_t>{6, 4}}}, {.opset = 4}).shape(),
            (Shape{6, 4}));
}

TEST(Reshape, AllowZeroKeepsZeroDims) {
  const Tensor empty(DType::kF32, {0, 3});
  EXPECT_EQ(Run1("Reshape", {empty, Ints1D({3, 0})}, {{"allowzero", int64_t{1}}}).shape(),
            (Shape{3, 0}));
  // Without allowzero the 0 copies input dim 1 (= 3): 0 elements into [3, 3] fails.
  auto r = RunNode("Reshape", {empty, Ints1D({3, 0})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"cannot reshape [0,3] to [3,0]"}));
}

TEST(Reshape, Errors) {
  const Tensor x = Iota({2, 3});
  auto r = RunNode("Reshape", {x, Ints1D({4, 2})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument,
                      {"Reshape node 'n0'", "cannot reshape [2,3] to [4,2]"}));
  r = RunNode("Reshape", {x, Ints1D({-1, -1})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"more than one -1"}));
  r = RunNode("Reshape", {x, Ints1D({-1, 4})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"cannot reshape"}));
  r = RunNode("Reshape", {x, Ints1D({2, -3})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"negative"}));
  r = RunNode("Reshape", {x, Ints1D({1, 1, 0})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"rank"}));
  r = RunNode("Reshape", {x, F32({2}, {3, 2})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"int64"}));
}

TEST(Flatten, AxisRange) {
  const Tensor x = Iota({2, 3, 4, 5});
  for (int64_t axis = -4; axis <= 4; ++axis) {
    const int64_t a = axis < 0 ? axis + 4 : axis;
    int64_t outer = 1;
    for (int d = 0; d < a; ++d) outer *= x.shape()[d];
    const Tensor y = Run1("Flatten", {x}, {{"axis", axis}});
    EXPECT_EQ(y.shape(), (Shape{outer, 120 / outer})) << axis;
    EXPECT_TRUE(Near(y, Iota({outer, 120 / outer})));
  }
  EXPECT_EQ(Run1("Flatten", {x}).shape(), (Shape{2, 60}));
  auto r = RunNode("Flatten", {x}, {{"axis", int64_t{5}}});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"Flatten node", "axis 5"}));
}

TEST(SqueezeUnsqueeze, AttributeAndInputForms) {
  const Tensor x = Iota({1, 3, 1, 2});
  EXPECT_EQ(Run1("Squeeze", {x}).shape(), (Shape{3, 2}));
  EXPECT_EQ(Run1("Squeeze", {x}, {{"axes", std::vector<int64_t>{0}}}, {.opset = 11}).shape(),
            (Shape{3, 1, 2}));
  EXPECT_EQ(Run1("Squeeze", {x, Ints1D({-2})}).shape(), (Shape{1, 3, 2}));
  EXPECT_TRUE(Near(Run1("Squeeze", {x, Ints1D({0, 2})}), Iota({3, 2})));
  auto r = RunNode("Squeeze", {x, Ints1D({1})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument,
                      {"Squeeze node", "axis 1 of size 3", "[1,3,1,2]"}));
  r = RunNode("Squeeze", {x, Ints1D({4})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"axis 4 out of range"}));

  const Tensor v = Iota({3, 2});
  EXPECT_EQ(Run1("Unsqueeze", {v, Ints1D({0, 3})}).shape(), (Shape{1, 3, 2, 1}));
  EXPECT_EQ(Run1("Unsqueeze", {v, Ints1D({-1})}).shape(), (Shape{3, 2, 1}));
  EXPECT_EQ(Run1("Unsqueeze", {v, Ints1D({3, 0})}).shape(), (Shape{1, 3, 2, 1}));
  EXPECT_EQ(Run1("Unsqueeze", {v}, {{"axes", std::vector<int64_t>{1}}}, {.opset = 11}).shape(),
            (Shape{3, 1, 2}));
  EXPECT_EQ(Run1("Unsqueeze", {F32({}, {7}), Ints1D({0})}).shape(), (Shape{1}));
  r = RunNode("Unsqueeze", {v, Ints1D({1, 1})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"Unsqueeze node", "repeated"}));
}

TEST(Transpose, DefaultReversesAndPermMatchesIndexing) {
  const Tensor x = Iota({2, 3, 4});
  const std::vector<std::vector<int64_t>> perms = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                                   {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  for (const auto& p : perms) {
    const Shape os = {x.shape()[p[0]], x.shape()[p[1]], x.shape()[p[2]]};
    std::vector<float> want;
    ForEachIndex(os, [&](const std::vector<int64_t>& o) {
      std::vector<int64_t> i(3);
      for (int d = 0; d < 3; ++d) i[p[d]] = o[d];
      want.push_back(x.data<float>()[(i[0] * 3 + i[1]) * 4 + i[2]]);
    });
    EXPECT_TRUE(Near(Run1("Transpose", {x}, {{"perm", p}}), F32(os, want)));
    if (p == std::vector<int64_t>{2, 1, 0}) {
      EXPECT_TRUE(Near(Run1("Transpose", {x}), F32(os, want)));
    }
  }
  auto r = RunNode("Transpose", {x}, {{"perm", std::vector<int64_t>{0, 0, 1}}});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"Transpose node", "permutation"}));
}

TEST(Concat, AxesAndErrors) {
  const Tensor a = Iota({2, 2}), b = Iota({2, 1}, 10);
  EXPECT_TRUE(
      Near(Run1("Concat", {a, b}, {{"axis", int64_t{1}}}), F32({2, 3}, {0, 1, 10, 2, 3, 11})));
  EXPECT_TRUE(Near(Run1("Concat", {a, Iota({1, 2}, 10)}, {{"axis", int64_t{-2}}}),
                   F32({3, 2}, {0, 1, 2, 3, 10, 11})));
  EXPECT_TRUE(Near(Run1("Concat", {a, Tensor(DType::kF32, {2, 0}), b}, {{"axis", int64_t{1}}}),
                   F32({2, 3}, {0, 1, 10, 2, 3, 11})));
  EXPECT_TRUE(Near(Run1("Concat", {I64({1}, {4}), I64({2}, {5, 6})}, {{"axis", int64_t{0}}}),
                   I64({3}, {4, 5, 6})));
  auto r = RunNode("Concat", {a, Iota({2})}, {{"axis", int64_t{0}}});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument,
                      {"Concat node 'n0'", "rank", "[2]", "[2,2]"}));
  r = RunNode("Concat", {a, Iota({3, 3})}, {{"axis", int64_t{0}}});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"Concat node", "[3,3]"}));
  r = RunNode("Concat", {a, b}, {{"axis", int64_t{2}}});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"axis 2 out of range"}));
  r = RunNode("Concat", {a, I64({2, 2}, {0, 0, 0, 0})}, {{"axis", int64_t{0}}});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"type"}));
}

TEST(Split, EqualVariableAndAttributeForms) {
  const Tensor x = Iota({2, 6});
  auto r = RunNode("Split", {x}, {{"axis", int64_t{1}}}, {.num_outputs = 3});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(Near((*r)[0], F32({2, 2}, {0, 1, 6, 7})));
  EXPECT_TRUE(Near((*r)[2], F32({2, 2}, {4, 5, 10, 11})));
  r = RunNode("Split", {x, Ints1D({1, 5})}, {{"axis", int64_t{-1}}}, {.num_outputs = 2});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(Near((*r)[0], F32({2, 1}, {0, 6})));
  EXPECT_TRUE(Near((*r)[1], F32({2, 5}, {1, 2, 3, 4, 5, 7, 8, 9, 10, 11})));
  r = RunNode("Split", {x}, {{"split", std::vector<int64_t>{1, 1}}},
              {.num_outputs = 2, .opset = 11});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(Near((*r)[1], F32({1, 6}, {6, 7, 8, 9, 10, 11})));
  r = RunNode("Split", {x, Ints1D({0, 6})}, {{"axis", int64_t{1}}}, {.num_outputs = 2});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)[0].shape(), (Shape{2, 0}));
  // Opset 18 num_outputs: ceil(6 / 4) = 2 per part, the last one smaller.
  r = RunNode("Split", {Iota({7})}, {{"num_outputs", int64_t{4}}}, {.num_outputs = 4, .opset = 18});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(Near((*r)[3], F32({1}, {6})));
  r = RunNode("Split", {x}, {{"axis", int64_t{1}}}, {.num_outputs = 4});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"Split node", "4 equal parts"}));
  r = RunNode("Split", {x, Ints1D({2, 2})}, {{"axis", int64_t{1}}}, {.num_outputs = 2});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"does not cover"}));
}

TEST(Expand, BidirectionalBroadcast) {
  const Tensor x = F32({3, 1}, {1, 2, 3});
  EXPECT_TRUE(Near(Run1("Expand", {x, Ints1D({2, 1, 2})}),
                   F32({2, 3, 2}, {1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3})));
  // A 1 in the shape keeps the input's dim.
  EXPECT_TRUE(Near(Run1("Expand", {x, Ints1D({1, 1})}), x));
  auto r = RunNode("Expand", {x, Ints1D({2, 2})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument,
                      {"Expand node", "cannot expand shape [3,1] to [2,2]"}));
}

TEST(Tile, RepeatsEveryAxis) {
  const Tensor x = Iota({2, 3});
  const Tensor y = Run1("Tile", {x, Ints1D({2, 3})});
  ASSERT_EQ(y.shape(), (Shape{4, 9}));
  std::vector<float> want;
  ForEachIndex({4, 9}, [&](const std::vector<int64_t>& i) {
    want.push_back(x.data<float>()[(i[0] % 2) * 3 + i[1] % 3]);
  });
  EXPECT_TRUE(Near(y, F32({4, 9}, want)));
  EXPECT_EQ(Run1("Tile", {x, Ints1D({0, 1})}).shape(), (Shape{0, 3}));
  auto r = RunNode("Tile", {x, Ints1D({2})});
  EXPECT_TRUE(
      IsError(r.status(), StatusCode::kInvalidArgument, {"Tile node", "one entry per axis"}));
}

TEST(DepthSpace, DcrCrdLayoutsAndInverse) {
  const Tensor x = Iota({1, 8, 2, 3});
  const Tensor d2s = Run1("DepthToSpace", {x}, {{"blocksize", int64_t{2}}});
  ASSERT_EQ(d2s.shape(), (Shape{1, 2, 4, 6}));
  // DCR: y[0, c, h*b + i, w*b + j] = x[0, (i*b + j) * C' + c, h, w].
  std::vector<float> want;
  ForEachIndex({1, 2, 4, 6}, [&](const std::vector<int64_t>& o) {
    const int64_t c = o[1], h = o[2] / 2, i = o[2] % 2, w = o[3] / 2, j = o[3] % 2;
    want.push_back(x.data<float>()[(((i * 2 + j) * 2 + c) * 2 + h) * 3 + w]);
  });
  EXPECT_TRUE(Near(d2s, F32({1, 2, 4, 6}, want)));
  // CRD: y[0, c, h*b + i, w*b + j] = x[0, c*b*b + i*b + j, h, w].
  want.clear();
  ForEachIndex({1, 2, 4, 6}, [&](const std::vector<int64_t>& o) {
    const int64_t c = o[1], h = o[2] / 2, i = o[2] % 2, w = o[3] / 2, j = o[3] % 2;
    want.push_back(x.data<float>()[((c * 4 + i * 2 + j) * 2 + h) * 3 + w]);
  });
  EXPECT_TRUE(
      Near(Run1("DepthToSpace", {x}, {{"blocksize", int64_t{2}}, {"mode", std::string("CRD")}}),
           F32({1, 2, 4, 6}, want)));
  // SpaceToDepth inverts DCR DepthToSpace.
  EXPECT_TRUE(Near(Run1("SpaceToDepth", {d2s}, {{"blocksize", int64_t{2}}}), x));
  auto r = RunNode("DepthToSpace", {Iota({1, 6, 2, 2})}, {{"blocksize", int64_t{2}}});
  EXPECT_TRUE(
      IsError(r.status(), StatusCode::kInvalidArgument, {"DepthToSpace node", "divisible"}));
}

TEST(ShapeSize, StartEndClamping) {
  const Tensor x = Iota({2, 3, 4, 5});
  EXPECT_TRUE(Near(Run1("Shape", {x}), I64({4}, {2, 3, 4, 5})));
  EXPECT_TRUE(
      Near(Run1("Shape", {x}, {{"start", int64_t{1}}, {"end", int64_t{-1}}}), I64({2}, {3, 4})));
  EXPECT_TRUE(Near(Run1("Shape", {x}, {{"start", int64_t{-10}}, {"end", int64_t{10}}}),
                   I64({4}, {2, 3, 4, 5})));
  EXPECT_TRUE(Near(Run1("Shape", {x}, {{"start", int64_t{3}}, {"end", int64_t{1}}}), I64({0}, {})));
  EXPECT_TRUE(Near(Run1("Shape", {F32({}, {1})}), I64({0}, {})));
  EXPECT_TRUE(Near(Run1("Size", {x}), I64({}, {120})));
}

TEST(ConstantOfShape, ValueAndDefault) {
  EXPECT_TRUE(
      Near(Run1("ConstantOfShape", {Ints1D({2, 3})}), F32({2, 3}, std::vector<float>(6, 0.0f))));
  EXPECT_TRUE(Near(Run1("ConstantOfShape", {Ints1D({3})}, {{"value", I32({1}, {7})}}),
                   I32({3}, {7, 7, 7})));
  EXPECT_TRUE(
      Near(Run1("ConstantOfShape", {I64({0}, {})}, {{"value", F32({1}, {2})}}), F32({}, {2})));
  EXPECT_EQ(Run1("ConstantOfShape", {Ints1D({2, 0})}).shape(), (Shape{2, 0}));
  auto r = RunNode("ConstantOfShape", {Ints1D({2, -1})});
  EXPECT_TRUE(
      IsError(r.status(), StatusCode::kInvalidArgument, {"ConstantOfShape node", "negative"}));
}

TEST(Constant, EveryAttributeForm) {
  EXPECT_TRUE(Near(Run1("Constant", {}, {{"value", I32({2}, {4, 5})}}), I32({2}, {4, 5})));
  EXPECT_TRUE(Near(Run1("Constant", {}, {{"value_float", 1.5f}}), F32({}, {1.5f})));
  EXPECT_TRUE(
      Near(Run1("Constant", {}, {{"value_floats", std::vector<float>{1, 2}}}), F32({2}, {1, 2})));
  EXPECT_TRUE(Near(Run1("Constant", {}, {{"value_int", int64_t{3}}}), I64({}, {3})));
  EXPECT_TRUE(
      Near(Run1("Constant", {}, {{"value_ints", std::vector<int64_t>{3, 4}}}), I64({2}, {3, 4})));
  auto r = RunNode("Constant", {}, {{"value_string", std::string("x")}});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kUnimplemented, {"Constant node"}));
}

TEST(Range, FloatAndIntegerSteps) {
  EXPECT_TRUE(Near(Run1("Range", {F32({}, {1}), F32({}, {2}), F32({}, {0.3f})}),
                   F32({4}, {1, 1.3f, 1.6f, 1.9f}), 1e-6));
  EXPECT_TRUE(Near(Run1("Range", {I32({}, {10}), I32({}, {4}), I32({}, {-3})}), I32({2}, {10, 7})));
  EXPECT_EQ(Run1("Range", {I64({}, {5}), I64({}, {1}), I64({}, {2})}).shape(), (Shape{0}));
  auto r = RunNode("Range", {I64({}, {0}), I64({}, {4}), I64({}, {0})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"Range node", "delta"}));
}

TEST(IdentityDropout, PassThroughAndMask) {
  const Tensor x = Iota({2, 3});
  EXPECT_TRUE(Near(Run1("Identity", {x}), x));
  auto r = RunNode("Dropout", {x, F32({}, {0.5f})}, {}, {.num_outputs = 2});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(Near((*r)[0], x));
  EXPECT_TRUE(Near((*r)[1], Bool({2, 3}, std::vector<bool>(6, true))));
  EXPECT_TRUE(Near(Run1("Dropout", {x}, {{"ratio", 0.2f}}, {.opset = 10}), x));
  // Before opset 10 the mask has the input's type.
  r = RunNode("Dropout", {x}, {{"ratio", 0.2f}}, {.num_outputs = 2, .opset = 7});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(Near((*r)[1], F32({2, 3}, std::vector<float>(6, 1.0f))));
  EXPECT_TRUE(Near(Run1("Dropout", {x, F32({}, {0.5f}), Bool({}, {false})}), x));
  r = RunNode("Dropout", {x, F32({}, {0.5f}), Bool({}, {true})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kUnimplemented, {"Dropout node 'n0'", "training"}));
}

// The shape-computing chain of exported PyTorch models, run by the session:
// Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])) with the target
// shape known only at run time (unless constant folding sees through it).
TEST(ShapeChain, SessionRunsDataDependentReshape) {
  for (bool optimize : {false, true}) {
    ir::Graph g;
    ir::Value* x = g.AddInput("x", DType::kF32, {2, 3, 4});
    ir::Value* shape = g.AddNode("Shape", {x}, 1)->outputs[0];
    ir::Value* batch =
        g.AddNode("Gather", {shape, g.AddConstant("zero", I64({}, {0}))}, 1)->outputs[0];
    ir::Value* batch1 =
        g.AddNode("Unsqueeze", {batch, g.AddConstant("axes", Ints1D({0}))}, 1)->outputs[0];
    ir::Node* concat = g.AddNode("Concat", {batch1, g.AddConstant("rest", Ints1D({-1}))}, 1);
    concat->attrs["axis"] = int64_t{0};
    ir::Value* y = g.AddNode("Reshape", {x, concat->outputs[0]}, 1)->outputs[0];
    g.outputs.push_back(y);
    runtime::SessionOptions so;
    so.backend = runtime::Backend::kReference;
    so.optimize = optimize;
    auto session = runtime::Session::Create(g, so);
    ASSERT_TRUE(session.ok()) << session.status().ToString();
    auto out = (*session)->Run({Iota({2, 3, 4})});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_TRUE(Near((*out)[0], Iota({2, 12}))) << "optimize=" << optimize;
  }
}

}  // namespace
}  // namespace wbs::tensor_test
