// The LibTorch bridge on imported ONNX: every ONNX backend test case
// (libonnx-testdata) made only of ops the bridge knows runs in eval mode and
// matches the expected outputs, and a zoo model round-tripped through ONNX
// trains like the original.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include "onnx/model_io.h"
#include "train/module.h"
#include "train/torch_ops.h"
#include "zoo/zoo.h"

namespace wbs::train {
namespace {

namespace fs = std::filesystem;

constexpr double kRtol = 1e-3;  // the ONNX backend tests' tolerances
constexpr double kAtol = 1e-5;

// Cases the bridge runs but does not match, with the reason. The test fails
// if one of them starts passing (stale entry) or another case fails.
const std::map<std::string, std::string>& KnownFailures() {
  static const std::map<std::string, std::string> known = {
      {"node/test_maxpool_2d_uint8", "torch 1.13 has no uint8 max_pool2d on the CPU"},
      {"node/test_edge_pad", "torch 1.13 has no int32 replication pad (float: pytorch-converted)"},
      {"node/test_reflect_pad",
       "torch 1.13 has no int32 reflection pad (float: pytorch-converted)"},
  };
  return known;
}

std::vector<fs::path> Numbered(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> out;
  for (int i = 0;; ++i) {
    fs::path p = dir / (prefix + std::to_string(i) + ".pb");
    if (!fs::exists(p)) break;
    out.push_back(p);
  }
  return out;
}

// "" when equal within tolerance, else why not.
std::string Compare(const torch::Tensor& got, const Tensor& expect) {
  auto e = internal::ToTorch(expect, torch::kCPU);
  if (!e.ok()) return "expected output: " + e.status().message();
  const torch::Tensor g = got.detach().to(torch::kCPU);
  if (g.sizes() != e->sizes())
    return fmt::format("shape [{}] vs expected [{}]", fmt::join(g.sizes(), ","),
                       fmt::join(e->sizes(), ","));
  if (g.scalar_type() != e->scalar_type())
    return fmt::format("type {} vs expected {}", c10::toString(g.scalar_type()),
                       c10::toString(e->scalar_type()));
  if (!g.is_floating_point()) return torch::equal(g, *e) ? "" : "values differ";
  const torch::Tensor gd = g.to(torch::kDouble), ed = e->to(torch::kDouble);
  // NaN where NaN is expected counts as equal.
  const torch::Tensor bad =
      ((gd - ed).abs() > kAtol + kRtol * ed.abs()) & ~(gd.isnan() & ed.isnan());
  if (!bad.any().item<bool>()) return "";
  return fmt::format("max abs err {:.3g}", (gd - ed).abs().nan_to_num(0.0).max().item<double>());
}

TEST(ModuleOnnx, BackendTestCasesAgree) {
  const fs::path root = "/usr/share/libonnx-testdata/data";
  if (!fs::exists(root)) GTEST_SKIP() << root << " missing (apt libonnx-testdata)";
  const std::set<std::string> supported(internal::SupportedOps().begin(),
                                        internal::SupportedOps().end());
  int passed = 0, declined = 0, skipped = 0;
  std::vector<std::string> failures, stale;
  std::map<std::string, int> declined_ops;
  for (const char* suite : {"node", "pytorch-converted", "pytorch-operator", "simple"}) {
    if (!fs::exists(root / suite)) continue;
    std::vector<fs::path> cases;
    for (const auto& e : fs::directory_iterator(root / suite)) cases.push_back(e.path());
    std::sort(cases.begin(), cases.end());
    for (const fs::path& dir : cases) {
      const std::string name = std::string(suite) + "/" + dir.filename().string();
      const fs::path data = dir / "test_data_set_0";
      auto graph = onnxio::ImportModel((dir / "model.onnx").string());
      if (!graph.ok() || !fs::exists(data)) {
        ++skipped;  // the importer's business (tests/conformance)
        continue;
      }
      bool known_ops = true;
      for (const auto& n : (*graph)->nodes()) known_ops &= supported.count(n->op_type) != 0;
      if (!known_ops) {
        ++skipped;
        continue;
      }
      auto module = GraphModule::Create(**graph);
      if (!module.ok()) {
        // Known ops with an attribute value the bridge refuses must say so.
        EXPECT_EQ(module.status().code(), StatusCode::kUnimplemented)
            << name << ": " << module.status().ToString();
        ++declined;
        if (std::getenv("WBS_TEST_VERBOSE"))
          std::printf("declined %s\n", module.status().ToString().c_str());
        continue;
      }
      std::vector<torch::Tensor> inputs;
      bool readable = true;
      for (const fs::path& p : Numbered(data, "input_")) {
        auto t = onnxio::ReadTensorProtoFile(p.string());
        auto tt = t.ok() ? internal::ToTorch(*t, torch::kCPU) : Result<torch::Tensor>(t.status());
        readable &= tt.ok();
        if (tt.ok()) inputs.push_back(*tt);
      }
      std::vector<Tensor> expected;
      for (const fs::path& p : Numbered(data, "output_")) {
        auto t = onnxio::ReadTensorProtoFile(p.string());
        // Expected outputs torch cannot hold (e.g. bf16 read as u16) skip the case.
        readable &= t.ok() && internal::ToTorch(*t, torch::kCPU).ok();
        if (t.ok()) expected.push_back(*t);
      }
      if (!readable || inputs.size() != (*graph)->inputs.size()) {
        ++skipped;
        continue;
      }
      (*module)->eval();
      torch::NoGradGuard no_grad;
      auto got = (*module)->Run(inputs);
      std::string why;
      if (!got.ok()) {
        why = got.status().ToString();
      } else if (got->size() != expected.size()) {
        why = fmt::format("{} outputs, expected {}", got->size(), expected.size());
      } else {
        for (size_t i = 0; i < expected.size() && why.empty(); ++i)
          if (std::string d = Compare((*got)[i], expected[i]); !d.empty())
            why = fmt::format("output {}: {}", i, d);
      }
      const bool known = KnownFailures().count(name) != 0;
      if (why.empty()) {
        ++passed;
        if (known) stale.push_back(name);
      } else if (!known) {
        failures.push_back(name + ": " + why);
      }
    }
  }
  std::printf(
      "bridge on ONNX backend tests: %d passed, %zu failed, %zu known failures, %d "
      "declined (Unimplemented), %d skipped (unsupported ops or data)\n",
      passed, failures.size(), KnownFailures().size(), declined, skipped);
  for (const std::string& f : failures) ADD_FAILURE() << f;
  for (const std::string& s : stale) ADD_FAILURE() << s << " passes: remove it from KnownFailures";
  EXPECT_GE(passed, 150) << "too few cases ran: is the supported-op filter broken?";
}

// Zoo -> ONNX bytes -> import -> module: same forward, same parameters.
TEST(ModuleOnnx, ImportedZooModelMatchesZooModule) {
  zoo::ZooOptions o;
  o.batch = 2;
  auto graph = zoo::BuildModel("fmnist_resnet", o);
  ASSERT_TRUE(graph.ok());
  auto bytes = onnxio::ExportModelToBytes(**graph);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto imported = onnxio::ImportModelFromBytes(*bytes, "fmnist.onnx");
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  auto a = GraphModule::Create(**graph);
  auto b = GraphModule::Create(**imported);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)->weight_names(), (*b)->weight_names());
  EXPECT_EQ((*a)->blockable_weights(), (*b)->blockable_weights());
  EXPECT_EQ((*a)->parameters().size(), (*b)->parameters().size());
  EXPECT_EQ((*a)->buffers().size(), (*b)->buffers().size());
  torch::manual_seed(3);
  const torch::Tensor x = torch::randn({2, 1, 28, 28});
  (*a)->train();
  (*b)->train();
  const torch::Tensor ya = (*a)->forward(x), yb = (*b)->forward(x);
  EXPECT_TRUE(torch::allclose(ya, yb, 1e-5, 1e-6));
}

}  // namespace
}  // namespace wbs::train
