// The zoo against torchvision: for each model, wbs's graph and the ONNX file
// torch.onnx exports from torchvision (scripts/torchvision_export.py) must
// have the same ordered list of Conv/Gemm layers (weight shape, strides,
// pads, dilations, group) and the same MACs, and the MACs must match the
// figures torchvision publishes. Both graphs go through wbs's importer; ours
// first makes a round trip through the exporter.
//
// Usage: wbs_zoo_topology_test EXPORT_DIR [gtest flags]
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "onnx/model_io.h"
#include "zoo/model_stats.h"
#include "zoo/zoo.h"

namespace wbs {
namespace {

std::string g_export_dir;

struct Layer {
  std::string name;  // for messages only; torch and wbs names differ
  std::string op;
  Shape weight;  // Gemm weights as [out, in] whatever transB says
  std::vector<int64_t> strides, pads, dilations;
  int64_t group = 1;

  std::string Key() const {
    auto ints = [](const std::vector<int64_t>& v) { return ShapeToString(v); };
    return fmt::format("{} w{} s{} p{} d{} g{}", op, ShapeToString(weight), ints(strides),
                       ints(pads), ints(dilations), group);
  }
};

// Conv and Gemm layers in topological order, attributes with ONNX defaults
// filled in so an omitted attribute equals its default written out.
std::vector<Layer> Layers(const ir::Graph& g) {
  std::vector<Layer> out;
  for (const auto& n : g.nodes()) {
    if (n->op_type != "Conv" && n->op_type != "Gemm") continue;
    Layer l;
    l.name = n->name;
    l.op = n->op_type;
    l.weight = n->input(1)->shape;
    if (n->op_type == "Gemm") {
      if (!n->GetInt("transB", 0) && l.weight.size() == 2) std::swap(l.weight[0], l.weight[1]);
    } else {
      const size_t spatial = l.weight.size() - 2;
      l.strides = n->GetInts("strides", std::vector<int64_t>(spatial, 1));
      l.pads = n->GetInts("pads", std::vector<int64_t>(2 * spatial, 0));
      l.dilations = n->GetInts("dilations", std::vector<int64_t>(spatial, 1));
      l.group = n->GetInt("group", 1);
      EXPECT_EQ(n->GetString("auto_pad", "NOTSET"), "NOTSET") << n->name;
    }
    out.push_back(std::move(l));
  }
  return out;
}

void ExpectSameLayers(const std::vector<Layer>& ours, const std::vector<Layer>& theirs,
                      const std::string& what) {
  EXPECT_EQ(ours.size(), theirs.size()) << what << ": number of Conv/Gemm layers";
  for (size_t i = 0; i < std::min(ours.size(), theirs.size()); ++i) {
    if (ours[i].Key() != theirs[i].Key()) {
      ADD_FAILURE() << what << ": layer " << i << " differs:\n  wbs   " << ours[i].name << ": "
                    << ours[i].Key() << "\n  other " << theirs[i].name << ": " << theirs[i].Key();
      return;  // later layers would all differ too
    }
  }
}

int64_t TotalMacs(const ir::Graph& g) {
  auto s = zoo::ComputeModelStats(g);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? s->total_macs : -1;
}

struct Case {
  std::string model;
  double published_gmacs;  // torchvision's model card ("GFLOPS" there are MACs)
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.model; }

class ZooTopologyTest : public ::testing::TestWithParam<Case> {};

TEST_P(ZooTopologyTest, MatchesTorchvision) {
  const Case& c = GetParam();
  auto ours = zoo::BuildModel(c.model);
  ASSERT_TRUE(ours.ok()) << ours.status().ToString();
  const std::vector<Layer> our_layers = Layers(**ours);
  const int64_t our_macs = TotalMacs(**ours);

  // Our exporter and importer keep every layer as it is.
  auto bytes = onnxio::ExportModelToBytes(**ours);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto reimported = onnxio::ImportModelFromBytes(*bytes, c.model + " (exported by wbs)");
  ASSERT_TRUE(reimported.ok()) << reimported.status().ToString();
  bytes = std::string();  // VGG-16 is 0.5 GB
  ExpectSameLayers(our_layers, Layers(**reimported), c.model + " after export/import");
  EXPECT_EQ(TotalMacs(**reimported), our_macs);
  reimported->reset();

  const double gmacs = static_cast<double>(our_macs) * 1e-9;
  EXPECT_NEAR(gmacs, c.published_gmacs, 0.01 * c.published_gmacs) << c.model;

  const std::string path = (std::filesystem::path(g_export_dir) / (c.model + ".onnx")).string();
  if (!std::filesystem::exists(path))
    GTEST_SKIP() << path << " is missing; run /usr/bin/python3 scripts/torchvision_export.py "
                 << g_export_dir;
  auto theirs = onnxio::ImportModel(path);
  ASSERT_TRUE(theirs.ok()) << theirs.status().ToString();
  ExpectSameLayers(our_layers, Layers(**theirs), c.model + " vs torchvision");
  EXPECT_EQ(our_macs, TotalMacs(**theirs)) << c.model;
}

INSTANTIATE_TEST_SUITE_P(Torchvision, ZooTopologyTest,
                         ::testing::Values(Case{"resnet18", 1.81}, Case{"resnet50", 4.09},
                                           Case{"vgg16", 15.47}, Case{"inception_v3", 5.7},
                                           Case{"mobilenet_v2", 0.30}),
                         [](const auto& info) { return info.param.model; });

// fmnist_resnet has no torchvision twin; its architecture is checked in
// tests/unit/zoo_test.cc. Here: it survives the ONNX round trip.
TEST(ZooRoundTrip, FmnistResNet) {
  auto ours = zoo::BuildModel("fmnist_resnet");
  ASSERT_TRUE(ours.ok()) << ours.status().ToString();
  auto bytes = onnxio::ExportModelToBytes(**ours);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto back = onnxio::ImportModelFromBytes(*bytes, "fmnist_resnet");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameLayers(Layers(**ours), Layers(**back), "fmnist_resnet after export/import");
  EXPECT_EQ(TotalMacs(**ours), TotalMacs(**back));
}

}  // namespace
}  // namespace wbs

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s EXPORT_DIR [gtest flags]\n", argv[0]);
    return 2;
  }
  wbs::g_export_dir = argv[1];
  return RUN_ALL_TESTS();
}
