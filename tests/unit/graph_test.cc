#include <gtest/gtest.h>

#include "ir/graph.h"

namespace wbs::ir {
namespace {

TEST(GraphTest, TopologicalSortOrdersProducersFirst) {
  Graph g;
  Value* x = g.AddInput("x", DType::kF32, {1, 4});
  Value* mid = g.AddValue("mid");
  Value* out = g.AddValue("out");
  // Add consumer before producer.
  g.AddNode("Relu", {mid}, {out}, "second");
  g.AddNode("Relu", {x}, {mid}, "first");
  g.outputs.push_back(out);
  ASSERT_TRUE(g.TopologicalSort().ok());
  EXPECT_EQ(g.nodes().front()->name, "first");
  EXPECT_TRUE(g.Verify().ok());
}

TEST(GraphTest, CycleIsAnError) {
  Graph g;
  Value* a = g.AddValue("a");
  Value* b = g.AddValue("b");
  g.AddNode("Relu", {a}, {b}, "n1");
  g.AddNode("Relu", {b}, {a}, "n2");
  Status st = g.TopologicalSort();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("cycle"), std::string::npos);
}

TEST(GraphTest, CloneIsEqual) {
  Graph g;
  Value* x = g.AddInput("x", DType::kF32, {1, 4});
  Value* w = g.AddConstant("w", Tensor::FromVector<float>({4, 4}, std::vector<float>(16, 0.5f)));
  Node* n = g.AddNode("MatMul", {x, w}, 1, "mm");
  n->outputs[0]->dtype = DType::kF32;
  g.outputs.push_back(n->outputs[0]);
  auto c = g.Clone();
  std::string diff;
  EXPECT_TRUE(GraphsEqual(g, *c, &diff)) << diff;
  // A changed constant is detected.
  c->FindValue("w")->constant = Tensor::FromVector<float>({4, 4}, std::vector<float>(16, 0.25f));
  EXPECT_FALSE(GraphsEqual(g, *c, &diff));
}

TEST(GraphTest, ReplaceAllUsesRewiresUsersAndOutputs) {
  Graph g;
  Value* x = g.AddInput("x", DType::kF32, {2});
  Node* id = g.AddNode("Identity", {x}, 1, "id");
  Node* r = g.AddNode("Relu", {id->outputs[0]}, 1, "r");
  g.outputs.push_back(id->outputs[0]);
  g.ReplaceAllUses(id->outputs[0], x);
  EXPECT_EQ(r->inputs[0], x);
  EXPECT_EQ(g.outputs[0], x);
  EXPECT_EQ(x->users.size(), 2u);
}

}  // namespace
}  // namespace wbs::ir
