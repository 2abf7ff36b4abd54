#include "zoo/model_stats.h"

#include <gtest/gtest.h>

namespace wbs::zoo {
namespace {

// Builds single nodes with hand-set shapes (no shape inference involved), so
// each expected count below is the textbook formula on literal numbers.
class ModelStatsTest : public ::testing::Test {
 protected:
  ir::Value* Act(const std::string& name, Shape shape) {
    ir::Value* v = g_.AddValue(name);
    v->dtype = DType::kF32;
    v->shape = std::move(shape);
    v->has_shape = true;
    return v;
  }
  ir::Value* Weight(const std::string& name, Shape shape) {
    return g_.AddConstant(name, Tensor(DType::kF32, std::move(shape)));
  }
  ir::Node* Node(const std::string& op, std::vector<ir::Value*> ins, ir::Value* out) {
    return g_.AddNode(op, std::move(ins), {out}, op + std::to_string(++count_));
  }
  int64_t Macs(const ir::Node* n) {
    auto r = CountMacs(*n);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : -1;
  }
  ir::Graph g_;
  int count_ = 0;
};

TEST_F(ModelStatsTest, ConvCountsOutputsTimesKernelVolumePerGroup) {
  // N=2, CIN=16, COUT=32, group 2, 3x3, 8x8 output.
  ir::Node* n = Node("Conv", {Act("x", {2, 16, 10, 10}), Weight("w", {32, 8, 3, 3})},
                     Act("y", {2, 32, 8, 8}));
  n->attrs["group"] = int64_t{2};
  EXPECT_EQ(Macs(n), 2 * 32 * 8 * 8 * (16 / 2) * 3 * 3);
}

TEST_F(ModelStatsTest, ConvTransposeCountsInputsTimesKernelVolume) {
  // Each of the 1x8x4x4 inputs is scattered into COUT/group=4 channels x 3x3.
  ir::Node* n = Node("ConvTranspose", {Act("x", {1, 8, 4, 4}), Weight("w", {8, 4, 3, 3})},
                     Act("y", {1, 4, 9, 9}));
  EXPECT_EQ(Macs(n), 1 * 8 * 4 * 4 * 4 * 3 * 3);
}

TEST_F(ModelStatsTest, GemmAndMatMulCountMNK) {
  ir::Node* gemm = Node("Gemm", {Act("a", {5, 3}), Weight("b", {5, 7})}, Act("y", {3, 7}));
  gemm->attrs["transA"] = int64_t{1};  // A is [K=5, M=3]
  EXPECT_EQ(Macs(gemm), 3 * 7 * 5);
  ir::Node* mm = Node("MatMul", {Act("p", {4, 3, 5}), Weight("q", {5, 6})}, Act("r", {4, 3, 6}));
  EXPECT_EQ(Macs(mm), 4 * 3 * 6 * 5);
}

TEST_F(ModelStatsTest, OtherOpsCountZeroAndUnknownShapesAreErrors) {
  EXPECT_EQ(Macs(Node("Relu", {Act("x", {1, 4})}, Act("y", {1, 4}))), 0);
  ir::Value* unknown = g_.AddValue("u");  // no shape
  ir::Node* conv = Node("Conv", {unknown, Weight("w", {8, 4, 3, 3})}, Act("o", {1, 8, 2, 2}));
  auto r = CountMacs(*conv);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(conv->name), std::string::npos) << r.status().message();
}

TEST_F(ModelStatsTest, BlockableNeedsConstantGroup1WeightsWithCoutAndCinAtLeast8) {
  ir::Value* x = Act("x", {1, 16, 4, 4});
  auto conv = [&](Shape w, int64_t group) {
    ir::Node* n = Node("Conv", {x, Weight("w", std::move(w))}, Act("y", {}));
    n->attrs["group"] = group;
    return n;
  };
  EXPECT_TRUE(IsBlockable(*conv({8, 16, 3, 3}, 1)));
  EXPECT_FALSE(IsBlockable(*conv({4, 16, 3, 3}, 1)));  // COUT < 8
  EXPECT_FALSE(IsBlockable(*conv({16, 3, 3, 3}, 1)));  // CIN < 8 (a first conv)
  EXPECT_FALSE(IsBlockable(*conv({16, 8, 3, 3}, 2)));  // grouped
  ir::Node* dynamic = Node("Conv", {x, Act("wd", {8, 16, 3, 3})}, Act("y", {}));
  EXPECT_FALSE(IsBlockable(*dynamic));  // weight computed at run time

  // torch.onnx hides shared initializers behind Identity nodes.
  ir::Node* id = Node("Identity", {Weight("wi", {8, 16, 1, 1})}, Act("wi_out", {8, 16, 1, 1}));
  EXPECT_TRUE(IsBlockable(*Node("Conv", {x, id->outputs[0]}, Act("y", {}))));

  ir::Value* a = Act("a", {1, 16});
  ir::Node* gemm_t = Node("Gemm", {a, Weight("bt", {4, 16})}, Act("y", {}));
  gemm_t->attrs["transB"] = int64_t{1};  // B is [N=4, K=16]: COUT 4
  EXPECT_FALSE(IsBlockable(*gemm_t));
  ir::Node* gemm = Node("Gemm", {a, Weight("b", {16, 8})}, Act("y", {}));  // [K=16, N=8]
  EXPECT_TRUE(IsBlockable(*gemm));
  EXPECT_TRUE(IsBlockable(*Node("MatMul", {a, Weight("m", {16, 8})}, Act("y", {}))));
  EXPECT_FALSE(IsBlockable(*Node("MatMul", {a, Weight("v", {16})}, Act("y", {}))));
  EXPECT_FALSE(IsBlockable(*Node("ConvTranspose", {x, Weight("t", {16, 8, 3, 3})}, Act("y", {}))));
}

TEST_F(ModelStatsTest, ModelStatsCountSharedConstantsOnce) {
  ir::Value* x = g_.AddInput("x", DType::kF32, {1, 16});
  ir::Value* w = Weight("w", {16, 16});
  ir::Node* m1 = Node("MatMul", {x, w}, Act("h", {1, 16}));
  ir::Node* m2 = Node("MatMul", {m1->outputs[0], w}, Act("y", {1, 16}));
  Node("Relu", {m2->outputs[0]}, Act("z", {1, 16}));
  auto s = ComputeModelStats(g_);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->layers.size(), 3u);
  EXPECT_EQ(s->num_parameters, 16 * 16);
  EXPECT_EQ(s->parameter_bytes, 16 * 16 * 4);
  EXPECT_EQ(s->layers[0].params, 16 * 16);
  EXPECT_EQ(s->layers[1].params, 16 * 16);
  EXPECT_EQ(s->total_macs, 2 * 16 * 16);
  EXPECT_EQ(s->num_blockable, 2);
  EXPECT_EQ(s->blockable_macs, s->total_macs);
  EXPECT_EQ(s->op_histogram.at("MatMul"), 2);
  EXPECT_EQ(s->op_histogram.at("Relu"), 1);
  EXPECT_EQ(s->layers[0].weight_shape, Shape({16, 16}));
  EXPECT_TRUE(s->layers[2].weight_shape.empty());
}

}  // namespace
}  // namespace wbs::zoo
