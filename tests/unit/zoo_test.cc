#include "zoo/zoo.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "ir/graph.h"
#include "zoo/model_stats.h"

namespace wbs::zoo {
namespace {

std::unique_ptr<ir::Graph> Build(const std::string& name, const ZooOptions& options = {}) {
  auto r = BuildModel(name, options);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : nullptr;
}

const ir::Node* FindNode(const ir::Graph& g, const std::string& name) {
  for (const auto& n : g.nodes())
    if (n->name == name) return n.get();
  return nullptr;
}

TEST(ZooTest, ListsTheSixModels) {
  EXPECT_EQ(ModelNames(), (std::vector<std::string>{"resnet18", "resnet50", "vgg16", "inception_v3",
                                                    "mobilenet_v2", "fmnist_resnet"}));
  EXPECT_EQ(Models().size(), ModelNames().size());
}

// fmnist_resnet as documented in zoo/zoo.h, restated as (cin, cout, k) per
// conv and the channels of every BatchNorm.
TEST(ZooTest, FmnistResNetHasTheDocumentedArchitecture) {
  auto g = Build("fmnist_resnet");
  ASSERT_TRUE(g);
  struct ConvShape {
    int64_t cin, cout, k;
  };
  const std::vector<ConvShape> convs = {
      {1, 32, 3},                                                                        // conv1
      {32, 32, 3},  {32, 32, 3},   {32, 32, 3},  {32, 32, 3},                            // layer1
      {32, 64, 3},  {64, 64, 3},   {32, 64, 1},  {64, 64, 3},   {64, 64, 3},             // layer2
      {64, 128, 3}, {128, 128, 3}, {64, 128, 1}, {128, 128, 3}, {128, 128, 3}};          // layer3
  int64_t expected = 10 * 128 + 10;                                                      // fc
  for (const ConvShape& c : convs) expected += c.cin * c.cout * c.k * c.k + 4 * c.cout;  // + BN
  auto stats = ComputeModelStats(*g);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->num_parameters, expected);
  EXPECT_GE(stats->num_parameters, 300'000);
  EXPECT_LE(stats->num_parameters, 1'000'000);

  std::vector<ConvShape> got;
  for (const auto& n : g->nodes()) {
    if (n->op_type != "Conv") continue;
    const Shape& w = n->input(1)->shape;
    got.push_back({w[1], w[0], w[2]});
    EXPECT_EQ(w[2], w[3]) << n->name;
  }
  ASSERT_EQ(got.size(), convs.size());
  for (size_t i = 0; i < convs.size(); ++i) {
    EXPECT_EQ(got[i].cin, convs[i].cin) << i;
    EXPECT_EQ(got[i].cout, convs[i].cout) << i;
    EXPECT_EQ(got[i].k, convs[i].k) << i;
    // Every conv but the first is 8x8-blockable.
    if (i > 0) {
      EXPECT_TRUE(got[i].cin % 8 == 0 && got[i].cout % 8 == 0) << i;
    }
  }
  EXPECT_EQ(g->inputs.at(0)->shape, Shape({1, 1, 28, 28}));
  EXPECT_EQ(g->outputs.at(0)->name, "logits");
  EXPECT_EQ(g->outputs.at(0)->shape, Shape({1, 10}));
}

TEST(ZooTest, SameSeedSameGraphOtherSeedOtherWeights) {
  ZooOptions a, b;
  a.seed = b.seed = 11;
  auto g1 = Build("fmnist_resnet", a), g2 = Build("fmnist_resnet", b);
  ASSERT_TRUE(g1 && g2);
  std::string diff;
  EXPECT_TRUE(ir::GraphsEqual(*g1, *g2, &diff)) << diff;
  b.seed = 12;
  auto g3 = Build("fmnist_resnet", b);
  ASSERT_TRUE(g3);
  EXPECT_FALSE(ir::GraphsEqual(*g1, *g3, &diff));
  EXPECT_NE(diff.find("constant"), std::string::npos) << diff;
}

TEST(ZooTest, OptionsSetBatchImageSizeAndClasses) {
  ZooOptions o;
  o.batch = 3;
  o.image_size = 32;
  o.num_classes = 5;
  auto g = Build("fmnist_resnet", o);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->inputs.at(0)->shape, Shape({3, 1, 32, 32}));
  EXPECT_EQ(g->outputs.at(0)->shape, Shape({3, 5}));
}

TEST(ZooTest, BatchNormIsNearButNotAtTheIdentity) {
  auto g = Build("fmnist_resnet");
  ASSERT_TRUE(g);
  int bns = 0;
  for (const auto& n : g->nodes()) {
    if (n->op_type != "BatchNormalization") continue;
    ++bns;
    const std::string p = n->name;
    auto values = [&](int i) { return n->input(i)->constant.ToVector<float>(); };
    ASSERT_EQ(n->input(1)->name, p + ".weight");
    ASSERT_EQ(n->input(4)->name, p + ".running_var");
    const float center[] = {1.f, 0.f, 0.f, 1.f};  // gamma, beta, mean, var
    for (int i = 1; i <= 4; ++i) {
      bool perturbed = false;
      for (float v : values(i)) {
        EXPECT_NEAR(v, center[i - 1], 0.9f) << p << " input " << i;
        perturbed |= v != center[i - 1];
        if (i == 4) {
          EXPECT_GT(v, 0.f) << p;
        }
      }
      EXPECT_TRUE(perturbed) << p << " input " << i;
    }
  }
  EXPECT_EQ(bns, 15);
}

TEST(ZooTest, ConvWeightsAreKaimingNormal) {
  auto g = Build("fmnist_resnet");
  ASSERT_TRUE(g);
  const ir::Value* w = g->FindValue("layer3.1.conv2.weight");
  ASSERT_NE(w, nullptr);
  std::vector<float> v = w->constant.ToVector<float>();
  double sum = 0, sq = 0;
  for (float x : v) {
    sum += x;
    sq += double(x) * x;
  }
  const double n = static_cast<double>(v.size());
  const double mean = sum / n, stddev = std::sqrt(sq / n - mean * mean);
  const double expected = std::sqrt(2.0 / (128 * 3 * 3));
  EXPECT_NEAR(mean, 0.0, 0.05 * expected);
  EXPECT_NEAR(stddev, expected, 0.02 * expected);
}

TEST(ZooTest, ResNet18NamesFollowTorchvision) {
  auto g = Build("resnet18");
  ASSERT_TRUE(g);
  const ir::Node* c = FindNode(*g, "layer1.0.conv1");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->op_type, "Conv");
  EXPECT_EQ(c->input(1)->name, "layer1.0.conv1.weight");
  EXPECT_EQ(c->num_inputs(), 2u);  // no bias before BN, as in torchvision
  const ir::Node* ds = FindNode(*g, "layer2.0.downsample.0");
  ASSERT_NE(ds, nullptr);
  EXPECT_EQ(ds->GetInts("strides"), std::vector<int64_t>({2, 2}));
  EXPECT_EQ(ds->input(1)->shape, Shape({128, 64, 1, 1}));
  EXPECT_EQ(FindNode(*g, "layer1.0.downsample.0"), nullptr);
  ASSERT_NE(FindNode(*g, "fc"), nullptr);
  EXPECT_EQ(FindNode(*g, "fc")->op_type, "Gemm");
  std::set<std::string> names;
  for (const auto& n : g->nodes()) EXPECT_TRUE(names.insert(n->name).second) << n->name;
}

TEST(ZooTest, MobileNetV2UsesDepthwiseConvsAndReLU6Clips) {
  auto g = Build("mobilenet_v2");
  ASSERT_TRUE(g);
  int depthwise = 0, clips = 0, adds = 0;
  for (const auto& n : g->nodes()) {
    if (n->op_type == "Conv" && n->GetInt("group", 1) > 1) {
      ++depthwise;
      EXPECT_EQ(n->GetInt("group", 1), n->input(0)->shape[1]) << n->name;
      EXPECT_EQ(n->input(1)->shape[1], 1) << n->name;
    }
    if (n->op_type == "Clip") {
      ++clips;
      ASSERT_EQ(n->num_inputs(), 3u);
      EXPECT_EQ(n->input(1)->constant.ToVector<float>(), std::vector<float>({0.f}));
      EXPECT_EQ(n->input(2)->constant.ToVector<float>(), std::vector<float>({6.f}));
    }
    adds += n->op_type == "Add";
  }
  EXPECT_EQ(depthwise, 17);  // one per inverted residual block
  EXPECT_EQ(clips, 35);      // torchvision: 2 per block (1 when t = 1) + stem + last
  EXPECT_EQ(adds, 10);       // residual connections where stride 1 and cin == cout
}

TEST(ZooTest, BadRequestsAreErrors) {
  auto unknown = BuildModel("resnet1000");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_NE(unknown.status().message().find("fmnist_resnet"), std::string::npos);

  ZooOptions o;
  o.batch = 0;
  EXPECT_EQ(BuildModel("resnet18", o).status().code(), StatusCode::kInvalidArgument);
  o = {};
  o.image_size = 16;
  auto small = BuildModel("inception_v3", o);
  EXPECT_EQ(small.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(small.status().message().find("inception_v3"), std::string::npos);
  o.image_size = 300;  // 9x9 features cannot be pooled to 7x7 by an ONNX AveragePool
  auto vgg = BuildModel("vgg16", o);
  EXPECT_EQ(vgg.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(vgg.status().message().find("vgg16"), std::string::npos);
}

}  // namespace
}  // namespace wbs::zoo
