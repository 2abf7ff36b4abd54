// Import of ai.onnx opsets 1..6: each legacy construct is rewritten into its
// opset-7 form (checked on the graph and, where it changes numbers, by running
// it against an expectation computed here), and each construct without an
// exact opset-7 form is refused with a message naming file, node, op and the
// legacy attribute.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <variant>

#include "onnx/model_io.h"
#include "runtime/session.h"
#include "tests/unit/onnx_test_util.h"

namespace wbs::onnxio {
namespace {

using ::onnx::AttributeProto;
using ::onnx::NodeProto;
using ::onnx::TensorProto;
using testing::ModelBuilder;

void IntAttr(NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(AttributeProto::INT);
  a->set_i(v);
}
void IntsAttr(NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}
void StringAttr(NodeProto* n, const std::string& name, const std::string& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(AttributeProto::STRING);
  a->set_s(v);
}

Result<std::unique_ptr<ir::Graph>> Import(const ModelBuilder& b) {
  return ImportModelFromBytes(b.Bytes(), "m.onnx");
}

Status ImportError(const ModelBuilder& b) {
  auto g = Import(b);
  if (g.ok()) return Internal("import unexpectedly succeeded");
  EXPECT_EQ(g.status().message().find('\n'), std::string::npos) << g.status().message();
  return g.status();
}

const ir::Node* FindOp(const ir::Graph& g, const std::string& op) {
  for (const auto& n : g.nodes())
    if (n->op_type == op) return n.get();
  return nullptr;
}

int CountOps(const ir::Graph& g, const std::string& op) {
  int k = 0;
  for (const auto& n : g.nodes()) k += n->op_type == op;
  return k;
}

std::vector<float> Iota(int64_t n, float start = 0.0f, float step = 1.0f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = start + step * static_cast<float>(i);
  return v;
}

std::vector<Tensor> RunGraph(const ir::Graph& g, const std::vector<Tensor>& inputs,
                             runtime::Backend backend = runtime::Backend::kReference) {
  runtime::SessionOptions so;
  so.backend = backend;
  so.optimize = backend == runtime::Backend::kFast;
  auto session = runtime::Session::Create(g, so);
  EXPECT_TRUE(session.ok()) << session.status().ToString();
  if (!session.ok()) return {};
  auto out = (*session)->Run(inputs);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return out.ok() ? *out : std::vector<Tensor>{};
}

void ExpectNear(const Tensor& got, const Shape& shape, const std::vector<float>& want) {
  ASSERT_EQ(got.shape(), shape);
  const std::vector<float> g = got.ToVector<float>();
  ASSERT_EQ(g.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(g[i], want[i], 1e-5f * (1.0f + std::fabs(want[i]))) << "element " << i;
}

// y = Add(A, B, broadcast=1, axis=1) with A [2,3,4,5] and a runtime B [3];
// z = Mul(y, W, broadcast=1, axis=1) with a constant W [3,4].
ModelBuilder AxisBroadcastModel() {
  ModelBuilder b(6);
  b.Input("A", {2, 3, 4, 5});
  b.Input("B", {3});
  b.FloatInit("W", {3, 4}, Iota(12, 0.5f, 0.25f));
  auto* add = b.Node("Add", {"A", "B"}, {"y"}, "add");
  IntAttr(add, "broadcast", 1);
  IntAttr(add, "axis", 1);
  auto* mul = b.Node("Mul", {"y", "W"}, {"z"}, "mul");
  IntAttr(mul, "broadcast", 1);
  IntAttr(mul, "axis", 1);
  b.Output("z", {2, 3, 4, 5});
  return b;
}

TEST(OnnxLegacyOpset, AxisBroadcastBecomesNumpyBroadcast) {
  auto g = Import(AxisBroadcastModel());
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ((*g)->opset, 7);
  for (const auto& n : (*g)->nodes()) {
    EXPECT_EQ(n->opset, 7) << n->Describe();
    EXPECT_FALSE(n->Has("broadcast")) << n->Describe();
  }
  // The runtime B gets trailing 1-dims from an Unsqueeze; the constant W is
  // reshaped in place (its only user is the Mul).
  const ir::Node* unsq = FindOp(**g, "Unsqueeze");
  ASSERT_NE(unsq, nullptr);
  EXPECT_EQ(unsq->GetInts("axes"), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(unsq->inputs[0]->name, "B");
  EXPECT_EQ(FindOp(**g, "Add")->inputs[1], unsq->outputs[0]);
  const ir::Value* w = (*g)->FindValue("W");
  EXPECT_EQ(w->shape, (Shape{3, 4, 1}));
  EXPECT_EQ(CountOps(**g, "Unsqueeze"), 1);

  // Expectation by the legacy rule: B[c] and W[c, h] line up with A's dims 1 and 1..2.
  const std::vector<float> a = Iota(120, -3.0f, 0.1f), bv = {10.0f, -20.0f, 30.0f};
  const std::vector<float> wv = Iota(12, 0.5f, 0.25f);
  std::vector<float> want(120);
  for (int n = 0, i = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int h = 0; h < 4; ++h)
        for (int x = 0; x < 5; ++x, ++i) want[i] = (a[i] + bv[c]) * wv[c * 4 + h];
  const std::vector<Tensor> in = {Tensor::FromVector<float>({2, 3, 4, 5}, a),
                                  Tensor::FromVector<float>({3}, bv)};
  for (runtime::Backend be : {runtime::Backend::kReference, runtime::Backend::kFast}) {
    auto out = RunGraph(**g, in, be);
    ASSERT_EQ(out.size(), 1u);
    ExpectNear(out[0], {2, 3, 4, 5}, want);
  }
}

TEST(OnnxLegacyOpset, ExportedLegacyModelIsValidOpset7) {
  auto g = Import(AxisBroadcastModel());
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  auto bytes = ExportModelToBytes(**g);  // runs onnx::checker
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  ::onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(*bytes));
  ASSERT_EQ(m.opset_import_size(), 1);
  EXPECT_EQ(m.opset_import(0).version(), 7);
  for (const auto& n : m.graph().node())
    for (const auto& a : n.attribute()) EXPECT_NE(a.name(), "broadcast") << n.op_type();
  auto again = ImportModelFromBytes(*bytes, "again.onnx");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  const std::vector<Tensor> in = {Tensor::FromVector<float>({2, 3, 4, 5}, Iota(120)),
                                  Tensor::FromVector<float>({3}, {1.0f, 2.0f, 3.0f})};
  auto first = RunGraph(**g, in), second = RunGraph(**again, in);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_TRUE(first[0].Identical(second[0]));
}

TEST(OnnxLegacyOpset, TrailingAndSingleElementBroadcastNeedNoRewrite) {
  ModelBuilder b(6);
  b.Input("A", {2, 3});
  b.FloatInit("one", {1, 1}, {2.0f});
  b.FloatInit("row", {3}, {1.0f, 2.0f, 3.0f});
  auto* mul = b.Node("Mul", {"A", "one"}, {"y"}, "scale");
  IntAttr(mul, "broadcast", 1);
  IntAttr(mul, "axis", 1);  // a single element broadcasts from anywhere
  auto* add = b.Node("Add", {"y", "row"}, {"z"}, "shift");
  IntAttr(add, "broadcast", 1);  // no axis: trailing alignment
  b.Output("z", {2, 3});
  auto g = Import(b);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(CountOps(**g, "Unsqueeze"), 0);
  EXPECT_EQ((*g)->FindValue("one")->shape, (Shape{1, 1}));
  const std::vector<float> a = Iota(6, -1.0f);
  auto out = RunGraph(**g, {Tensor::FromVector<float>({2, 3}, a)});
  ASSERT_EQ(out.size(), 1u);
  ExpectNear(out[0], {2, 3},
             {a[0] * 2 + 1, a[1] * 2 + 2, a[2] * 2 + 3, a[3] * 2 + 1, a[4] * 2 + 2, a[5] * 2 + 3});
}

TEST(OnnxLegacyOpset, BroadcastErrors) {
  {
    ModelBuilder b(6);
    b.Input("A", {2, 3});
    b.Input("B", {3});
    b.Node("Sub", {"A", "B"}, {"y"}, "sub");  // no broadcast=1
    b.Output("y", {2, 3});
    Status st = ImportError(b);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(st.message(),
              "m.onnx: node 'sub' (Sub): inputs of shapes [2,3] and [3] differ, which opset 6 "
              "allows only with legacy attribute 'broadcast'=1");
  }
  {
    ModelBuilder b(6);
    b.Input("A", {2, 3, 4});
    b.Input("B", {3, 4});
    auto* n = b.Node("Div", {"A", "B"}, {"y"}, "div");
    IntAttr(n, "broadcast", 1);
    IntAttr(n, "axis", 2);
    b.Output("y", {2, 3, 4});
    Status st = ImportError(b);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(st.message(),
              "m.onnx: node 'div' (Div): legacy attribute 'axis'=2 does not place B [3,4] inside "
              "A [2,3,4]");
  }
  {
    // B broadcasts to A only, never A to B.
    ModelBuilder b(6);
    b.Input("A", {2, 1});
    b.Input("B", {2, 3});
    auto* n = b.Node("Pow", {"A", "B"}, {"y"}, "pow");
    IntAttr(n, "broadcast", 1);
    b.Output("y", {2, 3});
    Status st = ImportError(b);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(st.message(),
              "m.onnx: node 'pow' (Pow): B [2,3] does not broadcast to A [2,1] (legacy attribute "
              "'broadcast'=1 broadcasts B to A only)");
  }
  {
    // A's rank is data dependent (Reshape to a runtime shape): `axis` cannot be placed.
    ModelBuilder b(6);
    b.Input("x", {24});
    b.Input("s", {3}, TensorProto::INT64);
    b.Input("B", {3});
    b.Node("Reshape", {"x", "s"}, {"r"}, "reshape");
    auto* n = b.Node("Add", {"r", "B"}, {"y"}, "add");
    IntAttr(n, "broadcast", 1);
    IntAttr(n, "axis", 1);
    b.Output("y", {-1, -1, -1});
    Status st = ImportError(b);
    EXPECT_EQ(st.code(), StatusCode::kUnimplemented);
    EXPECT_EQ(st.message(),
              "m.onnx: node 'add' (Add): legacy attribute 'axis'=1 needs the ranks of both "
              "inputs, which are not known at import");
  }
}

TEST(OnnxLegacyOpset, ConsumedInputsAreDropped) {
  ModelBuilder b(1);
  b.Input("x", {2, 2});
  IntsAttr(b.Node("Relu", {"x"}, {"y"}, "relu"), "consumed_inputs", {1});
  auto* add = b.Node("Add", {"y", "x"}, {"z"}, "add");
  IntsAttr(add, "consumed_inputs", {0, 0});
  b.Output("z", {2, 2});
  auto g = Import(b);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  for (const auto& n : (*g)->nodes()) EXPECT_TRUE(n->attrs.empty()) << n->Describe();
  auto out = RunGraph(**g, {Tensor::FromVector<float>({2, 2}, {-1.0f, 2.0f, -3.0f, 4.0f})});
  ASSERT_EQ(out.size(), 1u);
  ExpectNear(out[0], {2, 2}, {-1.0f, 4.0f, -3.0f, 8.0f});
}

TEST(OnnxLegacyOpset, TestModeFlags) {
  auto bn = [](int64_t opset, int is_test) {
    ModelBuilder b(opset);
    b.Input("x", {1, 2, 3, 3});
    for (const char* p : {"s", "b", "m", "v"}) b.FloatInit(p, {2}, {1.0f, 1.0f});
    auto* n = b.Node("BatchNormalization", {"x", "s", "b", "m", "v"}, {"y"}, "bn");
    if (is_test >= 0) IntAttr(n, "is_test", is_test);
    IntAttr(n, "spatial", 1);
    b.Output("y", {1, 2, 3, 3});
    return b;
  };
  for (int64_t opset : {1, 6}) {
    auto g = Import(bn(opset, 1));
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    const ir::Node* n = FindOp(**g, "BatchNormalization");
    EXPECT_FALSE(n->Has("is_test"));
    EXPECT_EQ(n->GetInt("spatial", -1), 1);
    for (int is_test : {0, -1}) {  // -1: absent, which means 0
      Status st = ImportError(bn(opset, is_test));
      EXPECT_EQ(st.code(), StatusCode::kUnimplemented);
      EXPECT_EQ(st.message(),
                "m.onnx: node 'bn' (BatchNormalization): legacy attribute 'is_test'=0 (training "
                "mode, the default before opset 7) is not supported (inference only)");
    }
  }

  ModelBuilder d(6);
  d.Input("x", {2, 2});
  IntAttr(d.Node("Dropout", {"x"}, {"y"}, "drop"), "is_test", 1);
  d.Output("y", {2, 2});
  auto g = Import(d);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_FALSE(FindOp(**g, "Dropout")->Has("is_test"));
  ModelBuilder t(6);
  t.Input("x", {2, 2});
  t.Node("Dropout", {"x"}, {"y"}, "drop");
  t.Output("y", {2, 2});
  Status st = ImportError(t);
  EXPECT_EQ(st.code(), StatusCode::kUnimplemented);
  EXPECT_EQ(st.message(),
            "m.onnx: node 'drop' (Dropout): legacy attribute 'is_test'=0 (training mode, the "
            "default before opset 7) is not supported (inference only)");
}

TEST(OnnxLegacyOpset, GemmBroadcastIsDropped) {
  ModelBuilder b(6);
  b.Input("a", {2, 3});
  b.FloatInit("w", {3, 2}, Iota(6));
  b.FloatInit("c", {2}, {100.0f, 200.0f});
  auto* n = b.Node("Gemm", {"a", "w", "c"}, {"y"}, "gemm");
  IntAttr(n, "broadcast", 1);
  b.Output("y", {2, 2});
  auto g = Import(b);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_FALSE(FindOp(**g, "Gemm")->Has("broadcast"));
  auto out = RunGraph(**g, {Tensor::FromVector<float>({2, 3}, {1, 0, 0, 0, 1, 1})});
  ASSERT_EQ(out.size(), 1u);
  // Row 0 picks w's row 0 (0, 1); row 1 sums rows 1 and 2 (2+4, 3+5).
  ExpectNear(out[0], {2, 2}, {100.0f, 201.0f, 106.0f, 208.0f});
}

TEST(OnnxLegacyOpset, ConcatAxisDefaultsToOne) {
  for (int64_t opset : {3, 4}) {
    ModelBuilder b(opset);
    b.Input("p", {2, 2});
    b.Input("q", {2, 3});
    auto* n = b.Node("Concat", {"p", "q"}, {"y"}, "cat");
    if (opset >= 4) IntAttr(n, "axis", 1);
    b.Output("y", {2, 5});
    auto g = Import(b);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_EQ(FindOp(**g, "Concat")->GetInt("axis", -1), 1) << "opset " << opset;
    EXPECT_EQ((*g)->FindValue("y")->shape, (Shape{2, 5}));
  }
}

TEST(OnnxLegacyOpset, ReshapeShapeAttributeBecomesInput) {
  ModelBuilder b(4);
  b.Input("x", {2, 3, 4});
  IntsAttr(b.Node("Reshape", {"x"}, {"y"}, "reshape"), "shape", {0, -1});
  b.Output("y", {2, 12});
  auto g = Import(b);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  const ir::Node* n = FindOp(**g, "Reshape");
  EXPECT_FALSE(n->Has("shape"));
  ASSERT_EQ(n->num_inputs(), 2u);
  ASSERT_TRUE(n->inputs[1]->is_constant());
  EXPECT_EQ(n->inputs[1]->constant.ToVector<int64_t>(), (std::vector<int64_t>{0, -1}));
  EXPECT_EQ((*g)->FindValue("y")->shape, (Shape{2, 12}));
}

TEST(OnnxLegacyOpset, PadPaddingsBecomePads) {
  ModelBuilder b(1);
  b.Input("x", {1, 2});
  auto* n = b.Node("Pad", {"x"}, {"y"}, "pad");
  IntsAttr(n, "paddings", {0, 1, 0, 2});
  ModelBuilder::FloatAttr(n, "value", 7.0f);
  b.Output("y", {1, 5});
  auto g = Import(b);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  const ir::Node* pad = FindOp(**g, "Pad");
  EXPECT_FALSE(pad->Has("paddings"));
  EXPECT_EQ(pad->GetInts("pads"), (std::vector<int64_t>{0, 1, 0, 2}));
  auto out = RunGraph(**g, {Tensor::FromVector<float>({1, 2}, {1.0f, 2.0f})});
  ASSERT_EQ(out.size(), 1u);
  ExpectNear(out[0], {1, 5}, {7.0f, 1.0f, 2.0f, 7.0f, 7.0f});
}

TEST(OnnxLegacyOpset, SplitInputBecomesAttribute) {
  ModelBuilder b(1);
  b.Input("x", {3, 2});
  b.FloatInit("lengths", {2}, {2.0f, 1.0f});  // Split-1 types `split` like the data
  IntAttr(b.Node("Split", {"x", "lengths"}, {"p", "q"}, "split"), "axis", 0);
  b.Output("p", {2, 2});
  b.Output("q", {1, 2});
  auto g = Import(b);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  const ir::Node* n = FindOp(**g, "Split");
  EXPECT_EQ(n->num_inputs(), 1u);
  EXPECT_EQ(n->GetInts("split"), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ((*g)->FindValue("q")->shape, (Shape{1, 2}));

  ModelBuilder no_axis(1);
  no_axis.Input("x", {4});
  no_axis.Node("Split", {"x"}, {"p", "q"}, "split");
  no_axis.Output("p", {2});
  no_axis.Output("q", {2});
  Status st = ImportError(no_axis);
  EXPECT_EQ(st.code(), StatusCode::kUnimplemented);
  EXPECT_EQ(st.message(),
            "m.onnx: node 'split' (Split): Split of opset 1 without attribute 'axis' (no "
            "documented default)");

  ModelBuilder runtime_split(1);
  runtime_split.Input("x", {4});
  runtime_split.Input("lengths", {2});
  IntAttr(runtime_split.Node("Split", {"x", "lengths"}, {"p", "q"}, "split"), "axis", 0);
  runtime_split.Output("p", {-1});
  runtime_split.Output("q", {-1});
  st = ImportError(runtime_split);
  EXPECT_EQ(st.code(), StatusCode::kUnimplemented);
  EXPECT_EQ(st.message(),
            "m.onnx: node 'split' (Split): legacy input 'split' must be a constant to be "
            "rewritten for opset 7");
}

TEST(OnnxLegacyOpset, UpsampleScalesAndMode) {
  ModelBuilder b(6);
  b.Input("x", {1, 1, 2, 2});
  auto* n = b.Node("Upsample", {"x"}, {"y"}, "up");
  ModelBuilder::FloatAttr(n, "height_scale", 2.0f);
  ModelBuilder::FloatAttr(n, "width_scale", 3.0f);
  StringAttr(n, "mode", "bilinear");
  b.Output("y", {1, 1, 4, 6});
  auto g = Import(b);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  const ir::Node* up = FindOp(**g, "Upsample");
  EXPECT_EQ(up->GetFloats("scales"), (std::vector<float>{1.0f, 1.0f, 2.0f, 3.0f}));
  EXPECT_EQ(up->GetString("mode", ""), "linear");
  EXPECT_FALSE(up->Has("height_scale"));
  EXPECT_EQ((*g)->FindValue("y")->shape, (Shape{1, 1, 4, 6}));

  ModelBuilder bad(6);
  bad.Input("x", {2, 2});
  auto* m = bad.Node("Upsample", {"x"}, {"y"}, "up");
  ModelBuilder::FloatAttr(m, "height_scale", 2.0f);
  ModelBuilder::FloatAttr(m, "width_scale", 2.0f);
  bad.Output("y", {4, 4});
  Status st = ImportError(bad);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(),
            "m.onnx: node 'up' (Upsample): legacy attributes 'height_scale'/'width_scale' need a "
            "4-D input (N,C,H,W), got [2,2]");
}

TEST(OnnxLegacyOpset, CastTypeNameBecomesCode) {
  ModelBuilder b(5);
  b.Input("x", {2});
  StringAttr(b.Node("Cast", {"x"}, {"y"}, "cast"), "to", "DOUBLE");
  b.Output("y", {2}, TensorProto::DOUBLE);
  auto g = Import(b);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(FindOp(**g, "Cast")->GetInt("to", -1), int64_t{TensorProto::DOUBLE});
  EXPECT_EQ((*g)->FindValue("y")->dtype, DType::kF64);

  ModelBuilder bad(5);
  bad.Input("x", {2});
  StringAttr(bad.Node("Cast", {"x"}, {"y"}, "cast"), "to", "STRING");
  bad.Output("y", {2});
  Status st = ImportError(bad);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(),
            "m.onnx: node 'cast' (Cast): legacy attribute 'to'='STRING' is not a type Cast of "
            "opset 5 casts to");
}

TEST(OnnxLegacyOpset, TileAlongAxisBecomesRepeats) {
  ModelBuilder b(5);
  b.Input("x", {2, 3});
  b.FloatInit("tiles", {}, {2.0f});
  b.FloatInit("axis", {}, {1.0f});
  b.Node("Tile", {"x", "tiles", "axis"}, {"y"}, "tile");
  b.Output("y", {2, 6});
  auto g = Import(b);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  const ir::Node* n = FindOp(**g, "Tile");
  ASSERT_EQ(n->num_inputs(), 2u);
  EXPECT_EQ(n->inputs[1]->constant.ToVector<int64_t>(), (std::vector<int64_t>{1, 2}));
  auto out = RunGraph(**g, {Tensor::FromVector<float>({2, 3}, Iota(6))});
  ASSERT_EQ(out.size(), 1u);
  ExpectNear(out[0], {2, 6}, {0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5});
}

// A 1-D slope of X's channel count is per channel (X [N, C, ...]), not aligned
// with X's last dim as numpy would do.
TEST(OnnxLegacyOpset, PReluSlopeIsPerChannel) {
  ModelBuilder b(6);
  b.Input("x", {2, 3, 4});
  b.FloatInit("slope", {3}, {0.5f, -1.0f, 2.0f});
  b.Node("PRelu", {"x", "slope"}, {"y"}, "prelu");
  b.Output("y", {2, 3, 4});
  auto g = Import(b);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ((*g)->FindValue("slope")->shape, (Shape{3, 1}));
  const std::vector<float> x = Iota(24, -7.0f, 0.5f), s = {0.5f, -1.0f, 2.0f};
  std::vector<float> want(24);
  for (int n = 0, i = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int w = 0; w < 4; ++w, ++i) want[i] = x[i] < 0 ? s[c] * x[i] : x[i];
  auto out = RunGraph(**g, {Tensor::FromVector<float>({2, 3, 4}, x)});
  ASSERT_EQ(out.size(), 1u);
  ExpectNear(out[0], {2, 3, 4}, want);

  ModelBuilder bad(6);
  bad.Input("x", {2, 3, 4});
  bad.FloatInit("slope", {5}, Iota(5));
  bad.Node("PRelu", {"x", "slope"}, {"y"}, "prelu");
  bad.Output("y", {2, 3, 4});
  Status st = ImportError(bad);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(),
            "m.onnx: node 'prelu' (PRelu): PRelu slope [5] is neither per channel nor "
            "broadcastable to X [2,3,4]");
}

TEST(OnnxLegacyOpset, SeluOpset1DefaultsAreKept) {
  for (int64_t opset : {5, 6}) {
    ModelBuilder b(opset);
    b.Input("x", {1});
    b.Node("Selu", {"x"}, {"y"}, "selu");
    b.Output("y", {1});
    auto g = Import(b);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    const ir::Node* n = FindOp(**g, "Selu");
    auto out = RunGraph(**g, {Tensor::FromVector<float>({1}, {-1.0f})});
    ASSERT_EQ(out.size(), 1u);
    // Selu-1 defaults 1.6732 / 1.0507; Selu-6 1.67326319... / 1.05070102...
    const double alpha = opset < 6 ? 1.6732 : 1.67326319217681884765625;
    const double gamma = opset < 6 ? 1.0507 : 1.05070102214813232421875;
    EXPECT_EQ(n->Has("alpha"), opset < 6);
    EXPECT_NEAR(out[0].ToVector<float>()[0], gamma * alpha * (std::exp(-1.0) - 1.0), 1e-6)
        << "opset " << opset;
  }
}

}  // namespace
}  // namespace wbs::onnxio
