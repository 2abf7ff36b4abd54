// Golden tests for the IR passes (one per pass) plus checks of the numbers
// they produce. Output equivalence on real models is tested in session_test.
#include <gtest/gtest.h>

#include <cmath>

#include "ir/graph.h"
#include "ir/op_schema.h"
#include "ir/pass.h"
#include "tests/unit/golden.h"

namespace wbs::ir {
namespace {

Value* Typed(Value* v, Shape s) {
  v->dtype = DType::kF32;
  v->shape = std::move(s);
  v->has_shape = true;
  return v;
}

Status RunPass(Graph& g, std::unique_ptr<Pass> p) {
  PassManager pm;
  pm.Add(std::move(p));
  return pm.Run(g);
}

// x -> Conv(w) -> BatchNormalization -> Relu -> y
std::unique_ptr<Graph> ConvBnRelu() {
  auto g = std::make_unique<Graph>();
  g->name = "conv_bn_relu";
  Value* x = g->AddInput("x", DType::kF32, {1, 2, 4, 4});
  std::vector<float> w(4 * 2 * 3 * 3);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.1f * static_cast<float>(i % 7) - 0.3f;
  Value* wv = g->AddConstant("w", Tensor::FromVector<float>({4, 2, 3, 3}, w));
  Node* conv = g->AddNode("Conv", {x, wv}, 1, "conv");
  conv->attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  Typed(conv->outputs[0], {1, 4, 4, 4});
  Value* gamma = g->AddConstant("gamma", Tensor::FromVector<float>({4}, {1.0f, 2.0f, 0.5f, 1.5f}));
  Value* beta = g->AddConstant("beta", Tensor::FromVector<float>({4}, {0.0f, 0.1f, -0.1f, 0.2f}));
  Value* mean = g->AddConstant("mean", Tensor::FromVector<float>({4}, {0.5f, 0.0f, 0.25f, -1.0f}));
  Value* var = g->AddConstant("var", Tensor::FromVector<float>({4}, {1.0f, 4.0f, 0.25f, 2.0f}));
  Node* bn = g->AddNode("BatchNormalization", {conv->outputs[0], gamma, beta, mean, var}, 1, "bn");
  bn->attrs["epsilon"] = 0.0f;
  Typed(bn->outputs[0], {1, 4, 4, 4});
  Node* relu = g->AddNode("Relu", {bn->outputs[0]}, {g->AddValue("y")}, "relu");
  Typed(relu->outputs[0], {1, 4, 4, 4});
  g->outputs.push_back(relu->outputs[0]);
  return g;
}

TEST(FoldBatchNormPassTest, Golden) {
  auto g = ConvBnRelu();
  ASSERT_TRUE(RunPass(*g, CreateFoldBatchNormPass()).ok());
  wbs::testing::ExpectMatchesGolden("fold-batchnorm", PrintGraph(*g));
}

TEST(FoldBatchNormPassTest, FoldedWeightsScaleEachOutputChannel) {
  auto g = ConvBnRelu();
  const Tensor w_before = g->FindValue("w")->constant;
  ASSERT_TRUE(RunPass(*g, CreateFoldBatchNormPass()).ok());
  const Node& conv = *g->nodes().front();
  ASSERT_EQ(conv.op_type, "Conv");
  const Tensor& w = conv.inputs[1]->constant;
  const Tensor& b = conv.inputs[2]->constant;
  const float gamma[4] = {1.0f, 2.0f, 0.5f, 1.5f}, beta[4] = {0.0f, 0.1f, -0.1f, 0.2f};
  const float mean[4] = {0.5f, 0.0f, 0.25f, -1.0f}, var[4] = {1.0f, 4.0f, 0.25f, 2.0f};
  for (int o = 0; o < 4; ++o) {
    const float s = gamma[o] / std::sqrt(var[o]);
    for (int k = 0; k < 18; ++k)
      EXPECT_FLOAT_EQ(w.data<float>()[o * 18 + k], w_before.data<float>()[o * 18 + k] * s);
    EXPECT_FLOAT_EQ(b.data<float>()[o], beta[o] - mean[o] * s);
  }
  // The original weight tensor was not modified in place.
  EXPECT_FLOAT_EQ(w_before.data<float>()[1], -0.2f);
}

TEST(FuseActivationPassTest, Golden) {
  auto g = ConvBnRelu();
  ASSERT_TRUE(RunPass(*g, CreateFoldBatchNormPass()).ok());
  ASSERT_TRUE(RunPass(*g, CreateFuseActivationPass()).ok());
  wbs::testing::ExpectMatchesGolden("fuse-activation", PrintGraph(*g));
  EXPECT_EQ(g->num_nodes(), 1u);
  EXPECT_EQ(g->outputs[0]->name, "y");
}

TEST(FuseActivationPassTest, ClipWithConstantInputsIsFused) {
  Graph g;
  Value* x = g.AddInput("x", DType::kF32, {1, 8});
  Value* w = g.AddConstant("w", Tensor(DType::kF32, {8, 8}));
  Node* mm = g.AddNode("MatMul", {x, w}, 1, "mm");
  Typed(mm->outputs[0], {1, 8});
  Value* lo = g.AddConstant("lo", Tensor::Scalar<float>(0.0f));
  Value* hi = g.AddConstant("hi", Tensor::Scalar<float>(6.0f));
  Node* clip = g.AddNode("Clip", {mm->outputs[0], lo, hi}, 1, "clip");
  Typed(clip->outputs[0], {1, 8});
  g.outputs.push_back(clip->outputs[0]);
  ASSERT_TRUE(RunPass(g, CreateFuseActivationPass()).ok());
  ASSERT_EQ(g.num_nodes(), 1u);
  const Node& n = *g.nodes().front();
  EXPECT_EQ(n.GetString("wbs.activation", ""), "Clip");
  EXPECT_EQ(n.GetFloat("wbs.activation_alpha", -1), 0.0f);
  EXPECT_EQ(n.GetFloat("wbs.activation_beta", -1), 6.0f);
}

TEST(FuseActivationPassTest, NotFusedWhenIntermediateHasTwoReaders) {
  auto g = ConvBnRelu();
  // Make the conv output a second graph output: fusing would lose it.
  g->outputs.push_back(g->FindValue("conv_out0"));
  ASSERT_NE(g->outputs.back(), nullptr);
  ASSERT_TRUE(RunPass(*g, CreateFuseActivationPass()).ok());
  EXPECT_EQ(g->num_nodes(), 3u);
}

// A ResNet basic-block tail: x -> Conv(w, b) -> Add(., x) -> Relu -> y, and a
// second Conv without bias whose output is added to the first block's output
// from the other side: z = Add(y, Conv(y, w2)).
std::unique_ptr<Graph> ResidualBlocks() {
  auto g = std::make_unique<Graph>();
  g->name = "residual_blocks";
  Value* x = g->AddInput("x", DType::kF32, {1, 2, 4, 4});
  Value* w = g->AddConstant("w", Tensor(DType::kF32, {2, 2, 3, 3}));
  Value* b = g->AddConstant("b", Tensor(DType::kF32, {2}));
  Node* conv = g->AddNode("Conv", {x, w, b}, 1, "conv");
  conv->attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  Typed(conv->outputs[0], {1, 2, 4, 4});
  Node* add = g->AddNode("Add", {conv->outputs[0], x}, 1, "add");
  Typed(add->outputs[0], {1, 2, 4, 4});
  Node* relu = g->AddNode("Relu", {add->outputs[0]}, {g->AddValue("y")}, "relu");
  Typed(relu->outputs[0], {1, 2, 4, 4});
  Value* w2 = g->AddConstant("w2", Tensor(DType::kF32, {2, 2, 1, 1}));
  Node* conv2 = g->AddNode("Conv", {relu->outputs[0], w2}, 1, "conv2");
  Typed(conv2->outputs[0], {1, 2, 4, 4});
  Node* add2 = g->AddNode("Add", {relu->outputs[0], conv2->outputs[0]}, {g->AddValue("z")}, "add2");
  Typed(add2->outputs[0], {1, 2, 4, 4});
  g->outputs.push_back(add2->outputs[0]);
  return g;
}

TEST(FuseResidualPassTest, Golden) {
  auto g = ResidualBlocks();
  ASSERT_TRUE(RunPass(*g, CreateFuseResidualPass()).ok());
  wbs::testing::ExpectMatchesGolden("fuse-residual", PrintGraph(*g));
  ASSERT_EQ(g->num_nodes(), 3u);
  const Node& conv = *g->FindValue("y")->producer->inputs[0]->producer;
  EXPECT_EQ(conv.name, "conv");
  EXPECT_EQ(conv.GetInt("wbs.residual", 0), 1);
  ASSERT_EQ(conv.num_inputs(), 4u);
  EXPECT_EQ(conv.inputs[3]->name, "x");
  // The bias-less Conv gets an omitted bias slot and the residual after it.
  const Node& conv2 = *g->FindValue("z")->producer;
  EXPECT_EQ(conv2.name, "conv2");
  ASSERT_EQ(conv2.num_inputs(), 4u);
  EXPECT_EQ(conv2.inputs[2], nullptr);
  EXPECT_EQ(conv2.inputs[3]->name, "y");
}

// The default order: residual first, then the Relu joins the same Conv.
TEST(FuseResidualPassTest, ActivationFusesIntoResidualConv) {
  auto g = ResidualBlocks();
  ASSERT_TRUE(RunPass(*g, CreateFuseResidualPass()).ok());
  ASSERT_TRUE(RunPass(*g, CreateFuseActivationPass()).ok());
  ASSERT_EQ(g->num_nodes(), 2u);
  const Node& conv = *g->FindValue("y")->producer;
  EXPECT_EQ(conv.name, "conv");
  EXPECT_EQ(conv.GetInt("wbs.residual", 0), 1);
  EXPECT_EQ(conv.GetString("wbs.activation", ""), "Relu");
  EXPECT_TRUE(InferShapes(*g).ok());
}

TEST(FuseResidualPassTest, NotFusedUnlessTheAddIsExactlyTheResidual) {
  auto run = [](Graph& g) {
    EXPECT_TRUE(RunPass(g, CreateFuseResidualPass()).ok());
    for (auto& n : g.nodes()) EXPECT_FALSE(n->Has("wbs.residual")) << n->name;
  };
  {
    // A broadcast operand ([1,2,1,1]) is not a residual.
    Graph g;
    Value* x = g.AddInput("x", DType::kF32, {1, 2, 4, 4});
    Node* conv =
        g.AddNode("Conv", {x, g.AddConstant("w", Tensor(DType::kF32, {2, 2, 1, 1}))}, 1, "conv");
    Typed(conv->outputs[0], {1, 2, 4, 4});
    Value* c = g.AddConstant("c", Tensor(DType::kF32, {1, 2, 1, 1}));
    Node* add = g.AddNode("Add", {conv->outputs[0], c}, 1, "add");
    Typed(add->outputs[0], {1, 2, 4, 4});
    g.outputs.push_back(add->outputs[0]);
    run(g);
  }
  {
    // The Conv output has a second reader (a graph output).
    auto g = ResidualBlocks();
    g->outputs.push_back(g->FindValue("conv_out0"));
    ASSERT_NE(g->outputs.back(), nullptr);
    g->outputs.push_back(g->FindValue("conv2_out0"));
    ASSERT_NE(g->outputs.back(), nullptr);
    run(*g);
  }
  {
    // A Conv with a fused activation: the Add would come after it.
    auto g = ResidualBlocks();
    for (auto& n : g->nodes())
      if (n->op_type == "Conv") n->attrs["wbs.activation"] = std::string("Relu");
    run(*g);
  }
}

// Both Add operands are Conv outputs (a ResNet downsample block): one Conv
// absorbs the other's output, and the graph stays topologically valid.
TEST(FuseResidualPassTest, TwoConvBranchesFuseOne) {
  Graph g;
  Value* x = g.AddInput("x", DType::kF32, {1, 2, 4, 4});
  Node* a = g.AddNode("Conv", {x, g.AddConstant("wa", Tensor(DType::kF32, {2, 2, 1, 1}))}, 1, "a");
  Node* b = g.AddNode("Conv", {x, g.AddConstant("wb", Tensor(DType::kF32, {2, 2, 1, 1}))}, 1, "b");
  Typed(a->outputs[0], {1, 2, 4, 4});
  Typed(b->outputs[0], {1, 2, 4, 4});
  Node* add = g.AddNode("Add", {a->outputs[0], b->outputs[0]}, {g.AddValue("y")}, "add");
  Typed(add->outputs[0], {1, 2, 4, 4});
  g.outputs.push_back(add->outputs[0]);
  ASSERT_TRUE(RunPass(g, CreateFuseResidualPass()).ok());
  ASSERT_EQ(g.num_nodes(), 2u);
  EXPECT_EQ(g.nodes().front()->name, "b");  // the residual's producer runs first
  EXPECT_EQ(g.nodes().back()->name, "a");
  EXPECT_EQ(g.nodes().back()->GetInt("wbs.residual", 0), 1);
}

TEST(FuseResidualPassTest, ConvShapeRuleAcceptsAResidualOnlyWithTheAttribute) {
  Graph g;
  Value* x = g.AddInput("x", DType::kF32, {1, 2, 4, 4});
  Value* w = g.AddConstant("w", Tensor(DType::kF32, {3, 2, 1, 1}));
  Value* r = g.AddInput("r", DType::kF32, {1, 3, 4, 4});
  Value* bad = g.AddInput("bad", DType::kF32, {1, 3, 4, 5});
  Node* conv = g.AddNode("Conv", {x, w, nullptr, r}, 1, "conv");
  auto infer = [&](Value* residual) {
    std::vector<ValueInfo> in, out;
    for (Value* v : {x, w, static_cast<Value*>(nullptr), residual})
      in.push_back(ValueInfo::FromValue(v));
    return InferNode(*conv, in, out);
  };
  EXPECT_EQ(infer(r).message(),
            "Conv node 'conv': has 4 inputs; Conv takes at most 3 (a 4th, the residual, only with "
            "wbs.residual=1)");
  conv->attrs["wbs.residual"] = int64_t{1};
  EXPECT_TRUE(infer(r).ok()) << infer(r).ToString();
  EXPECT_EQ(infer(bad).message(),
            "Conv node 'conv': residual R [1,3,4,5] must have the output's shape [1,3,4,4]");
  EXPECT_EQ(infer(nullptr).message(),
            "Conv node 'conv': wbs.residual=1 but the residual input is omitted");
}

TEST(RemoveIdentityPassTest, Golden) {
  Graph g;
  g.name = "identities";
  Value* x = g.AddInput("x", DType::kF32, {2, 3});
  Node* id1 = g.AddNode("Identity", {x}, 1, "id1");
  Node* relu = g.AddNode("Relu", {id1->outputs[0]}, 1, "relu");
  Node* drop = g.AddNode("Dropout", {relu->outputs[0]}, 2, "drop");
  Node* id2 = g.AddNode("Identity", {drop->outputs[0]}, {g.AddValue("out")}, "id2");
  for (Node* n : {id1, relu, drop, id2}) Typed(n->outputs[0], {2, 3});
  g.outputs.push_back(id2->outputs[0]);
  ASSERT_TRUE(RunPass(g, CreateRemoveIdentityPass()).ok());
  wbs::testing::ExpectMatchesGolden("remove-identity", PrintGraph(g));
  ASSERT_EQ(g.num_nodes(), 1u);
  EXPECT_EQ(g.outputs[0]->name, "out");  // the graph-visible name survives
}

// A NodeEvaluator that only knows Add (enough to test the pass mechanics
// without the runtime).
class AddEvaluator : public NodeEvaluator {
 public:
  Result<std::vector<Tensor>> Evaluate(const Node& n, const std::vector<const Tensor*>& in) override {
    if (n.op_type != "Add") return Unimplemented("{}", n.op_type);
    Tensor out(DType::kF32, in[0]->shape());
    for (int64_t i = 0; i < out.numel(); ++i) out.data<float>()[i] = in[0]->data<float>()[i] + in[1]->data<float>()[i];
    ++calls;
    return std::vector<Tensor>{out};
  }
  int calls = 0;
};

TEST(ConstantFoldingPassTest, Golden) {
  Graph g;
  g.name = "folding";
  Value* x = g.AddInput("x", DType::kF32, {2});
  Value* a = g.AddConstant("a", Tensor::FromVector<float>({2}, {1.0f, 2.0f}));
  Value* b = g.AddConstant("b", Tensor::FromVector<float>({2}, {10.0f, 20.0f}));
  Node* ab = g.AddNode("Add", {a, b}, 1, "const_add");
  Typed(ab->outputs[0], {2});
  Node* xa = g.AddNode("Add", {x, ab->outputs[0]}, {g.AddValue("y")}, "live_add");
  Typed(xa->outputs[0], {2});
  g.outputs.push_back(xa->outputs[0]);
  AddEvaluator ev;
  ASSERT_TRUE(RunPass(g, CreateConstantFoldingPass(&ev)).ok());
  EXPECT_EQ(ev.calls, 1);
  wbs::testing::ExpectMatchesGolden("constant-folding", PrintGraph(g));
  const Value* folded = g.nodes().front()->inputs[1];
  ASSERT_TRUE(folded->is_constant());
  EXPECT_EQ(folded->constant.ToVector<float>(), (std::vector<float>{11.0f, 22.0f}));
}

TEST(DeadCodeEliminationPassTest, Golden) {
  Graph g;
  g.name = "dce";
  Value* x = g.AddInput("x", DType::kF32, {2});
  Node* live = g.AddNode("Relu", {x}, {g.AddValue("y")}, "live");
  Node* dead = g.AddNode("Sigmoid", {x}, 1, "dead");
  g.AddNode("Tanh", {dead->outputs[0]}, 1, "dead2");
  Typed(live->outputs[0], {2});
  g.outputs.push_back(live->outputs[0]);
  ASSERT_TRUE(RunPass(g, CreateDeadCodeEliminationPass()).ok());
  wbs::testing::ExpectMatchesGolden("dce", PrintGraph(g));
  EXPECT_EQ(g.num_nodes(), 1u);
}

TEST(PassManagerTest, PrintAfterCallsPrinterForNamedPass) {
  auto g = ConvBnRelu();
  PassManager pm;
  AddDefaultPasses(pm, nullptr);
  std::vector<std::string> printed;
  pm.SetPrintAfter("fold-batchnorm", [&](const std::string& name, const Graph&) { printed.push_back(name); });
  ASSERT_TRUE(pm.Run(*g).ok());
  EXPECT_EQ(printed, std::vector<std::string>{"fold-batchnorm"});
  // No evaluator: no constant folding.
  EXPECT_EQ(pm.PassNames(),
            (std::vector<std::string>{"lower-qdq", "remove-identity", "fold-batchnorm",
                                      "fuse-residual", "fuse-activation", "dce"}));
}

}  // namespace
}  // namespace wbs::ir
