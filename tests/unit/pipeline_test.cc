// wbs pipeline: config parsing and validation, stage cache keys, stage
// selection, and a failing stage (pipeline/, docs/PIPELINE.md). Torch-free.
#include "pipeline/pipeline.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/progress.h"
#include "pipeline/config.h"

namespace wbs::pipeline {
namespace {

namespace fs = std::filesystem;

TEST(PipelineConfig, DefaultHasEveryKey) {
  auto c = LoadConfig("");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->source, "(embedded default)");
  EXPECT_EQ(c->output, "out");
  EXPECT_EQ(c->model_name, "fmnist_resnet");
  EXPECT_EQ(c->ModelArg(), "fmnist_resnet");
  EXPECT_DOUBLE_EQ(c->sparse.sparsity, 0.5);
  EXPECT_EQ(c->sparse.block, "8x8");
  EXPECT_EQ(c->aie.targets, std::vector<std::string>{"paper-4x4"});
  EXPECT_TRUE(c->resolved.contains("report"));
  EXPECT_TRUE(c->resolved["report"].contains("accuracy_results"));
  EXPECT_TRUE(DenseIsDemoSchedule(c->dense));
  EXPECT_TRUE(SparseIsDemoSchedule(c->sparse));
}

TEST(PipelineConfig, MergesOverTheDefaultWithComments) {
  auto c = ParseConfig(R"({
    // a comment
    "output": "o2", "sparse": {"sparsity": 0.75, "method": "fisher", "extra_args": ["--global"]},
    "model": {"onnx": "m.onnx", "input_shape": "input=1,1,28,28"},
    "aie": {"targets": ["paper-2x2", "paper-4x4"]}, "bench": {"repeats": 3}
  })",
                       "t.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->output, "o2");
  EXPECT_DOUBLE_EQ(c->sparse.sparsity, 0.75);
  EXPECT_EQ(c->sparse.method, "fisher");
  EXPECT_EQ(c->sparse.block, "8x8");  // untouched default
  EXPECT_EQ(c->sparse.extra_args, std::vector<std::string>{"--global"});
  EXPECT_EQ(c->ModelArg(), "m.onnx");
  EXPECT_EQ(c->ModelLabel(), "m");
  EXPECT_EQ(c->bench.repeats, 3);
  EXPECT_EQ(c->bench.warmup, 5);
  EXPECT_EQ(c->resolved["sparse"]["sparsity"].get<double>(), 0.75);
  EXPECT_EQ(c->resolved["int8"]["calib"].get<int>(), 256);
}

std::string ErrorOf(const std::string& text) {
  auto c = ParseConfig(text, "my.json");
  return c.ok() ? "(accepted)" : c.status().message();
}

TEST(PipelineConfig, ErrorsNameTheKeyPath) {
  EXPECT_EQ(ErrorOf(R"({"sparse": {"sparsity": 1.5}})"),
            "my.json: sparse.sparsity: 1.5 is not in [0,1)");
  EXPECT_EQ(ErrorOf(R"({"sparse": {"sparsity": 1}})"),
            "my.json: sparse.sparsity: 1 is not in [0,1)");
  EXPECT_NE(ErrorOf(R"({"sparse": {"sparsty": 0.5}})").find("my.json: sparse.sparsty: unknown key"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"colour": 1})").find("my.json: colour: unknown key"), std::string::npos);
  EXPECT_EQ(ErrorOf(R"({"int8": {"calib": "many"}})"),
            "my.json: int8.calib: expected an integer, got a string (\"many\")");
  EXPECT_EQ(ErrorOf(R"({"dense": {"epochs": 1.5}})"),
            "my.json: dense.epochs: expected an integer, got a number (1.5)");
  EXPECT_EQ(ErrorOf(R"({"sparse": 3})"), "my.json: sparse: expected an object, got an integer");
  EXPECT_EQ(ErrorOf(R"({"aie": {"targets": [1]}})"),
            "my.json: aie.targets: expected an array of strings, got [1]");
  EXPECT_EQ(ErrorOf(R"({"sparse": {"method": "magic"}})"),
            "my.json: sparse.method: 'magic' is not one of oneshot, incremental, learned, fisher");
  EXPECT_EQ(ErrorOf(R"({"sparse": {"block": "8by8"}})"),
            "my.json: sparse.block: '8by8' is not RxC (e.g. 8x8)");
  EXPECT_EQ(ErrorOf(R"({"int8": {"observer": "max"}})"),
            "my.json: int8.observer: 'max' is not one of minmax, percentile, mse, entropy");
  EXPECT_EQ(ErrorOf(R"({"bench": {"repeats": 0}})"), "my.json: bench.repeats: 0 must be >= 1");
  EXPECT_EQ(
      ErrorOf(R"({"sim": {"target": "paper-8x8"}})"),
      "my.json: sim.target: 'paper-8x8' is not in aie.targets (the program is compiled there)");
  EXPECT_EQ(ErrorOf(R"({"aie": {"sweep_arrays": "big"}})"),
            "my.json: aie.sweep_arrays: 'big' is not NxN..MxM or a comma list of NxN");
  EXPECT_EQ(ErrorOf(R"({"model": {"input_shape": "input"}})"),
            "my.json: model.input_shape: 'input' is not NAME=D0,D1,...");
  EXPECT_EQ(ErrorOf(R"([1, 2])"), "my.json: the config must be a JSON object");
  EXPECT_NE(ErrorOf(R"({"output": )").find("my.json: not valid JSON"), std::string::npos);
  // A disabled sim does not need its target compiled.
  EXPECT_EQ(ErrorOf(R"({"sim": {"enabled": false, "target": "paper-8x8"}})"), "(accepted)");
}

class PipelineFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("wbs_pipeline_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  fs::path dir_;
};

TEST_F(PipelineFiles, KeyFollowsSettingsAndFileContentNotPaths) {
  const std::string a = Write("a.onnx", "model bytes");
  const std::string b = Write("b.onnx", "model bytes");
  const nlohmann::ordered_json s = {{"sparsity", 0.5}};
  auto k1 = StageKey("sparse", s, {a});
  ASSERT_TRUE(k1.ok());
  EXPECT_EQ(k1->size(), 16u);
  EXPECT_EQ(*StageKey("sparse", s, {a}), *k1);  // deterministic
  EXPECT_EQ(*StageKey("sparse", s, {b}), *k1);  // same content elsewhere
  EXPECT_NE(*StageKey("int8", s, {a}), *k1);
  EXPECT_NE(*StageKey("sparse", {{"sparsity", 0.75}}, {a}), *k1);
  EXPECT_NE(*StageKey("sparse", s, {}), *k1);
  EXPECT_NE(*StageKey("sparse", s, {(dir_ / "missing.onnx").string()}), *k1);
  Write("a.onnx", "model bytez");
  EXPECT_NE(*StageKey("sparse", s, {a}), *k1);
  EXPECT_EQ(*HashFile((dir_ / "missing.onnx").string()), "missing");
}

TEST_F(PipelineFiles, CachedOnlyWhenDoneWithTheSameKey) {
  const std::string p = (dir_ / "stage.json").string();
  EXPECT_FALSE(IsCached(p, "abc"));
  Write("stage.json", R"({"stage": "int8", "status": "done", "key": "abc"})");
  EXPECT_TRUE(IsCached(p, "abc"));
  EXPECT_FALSE(IsCached(p, "abd"));
  Write("stage.json", R"({"stage": "int8", "status": "failed", "key": "abc"})");
  EXPECT_FALSE(IsCached(p, "abc"));
  Write("stage.json", R"({"stage": "int8", "sta)");  // torn write
  EXPECT_FALSE(IsCached(p, "abc"));
}

TEST(PipelineStages, OnlyAndFromSelectStages) {
  RunOptions o;
  auto none = ForcedStages(o);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, std::vector<bool>(7, false));
  o.from = "aie";
  EXPECT_EQ(*ForcedStages(o), (std::vector<bool>{false, false, false, true, true, true, true}));
  o.from.clear();
  o.only = "int8";
  EXPECT_EQ(*ForcedStages(o), (std::vector<bool>{false, false, true, false, false, false, false}));
  o.only = "train";
  EXPECT_EQ(ForcedStages(o).status().message(),
            "--only train: unknown stage (stages: dense, sparse, int8, aie, sim, bench, report)");
  o.only = "int8";
  o.from = "aie";
  EXPECT_FALSE(ForcedStages(o).ok());
  RunOptions f;
  f.force = true;
  EXPECT_EQ(*ForcedStages(f), std::vector<bool>(7, true));
}

// A failing command stops the pipeline at its stage with the command's
// message; the stages before it keep their stage.json.
TEST_F(PipelineFiles, FailingStageStopsAndEarlierStagesStayDone) {
  const std::string model = Write("m.onnx", "not really a model");
  const std::string out = (dir_ / "out").string();
  auto c = ParseConfig(R"({"model": {"onnx": ")" + model + R"("}, "output": ")" + out +
                           R"(", "sparse": {"finetune": false}})",
                       "t.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  RunOptions o;
  std::vector<std::string> seen;
  o.runner = [&](const std::vector<std::string>& args, const std::string&, const std::string&,
                 const std::function<void()>&) -> Status {
    seen.push_back(args.at(0));
    return FailedPrecondition("wbs {}: boom", args.at(0));
  };
  SetProgressEnabled(false);
  Status st = RunPipeline(*c, o);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "pipeline stage 2/7 sparse: wbs sparsify: boom");
  EXPECT_EQ(seen, std::vector<std::string>{"sparsify"});
  EXPECT_TRUE(IsCached(out + "/dense/stage.json",
                       nlohmann::json::parse(std::ifstream(out + "/dense/stage.json"))["key"]));
  EXPECT_FALSE(fs::exists(out + "/sparse/stage.json"));
  const auto record = nlohmann::json::parse(std::ifstream(out + "/pipeline.json"));
  EXPECT_EQ(record["stages"][0]["status"], "done");
  EXPECT_EQ(record["stages"][1]["status"], "failed");
  EXPECT_EQ(record["stages"][1]["message"], "wbs sparsify: boom");
  EXPECT_EQ(record["stages"][2]["status"], "pending");
  EXPECT_EQ(record["config"]["sparse"]["finetune"], false);

  // The dense stage is cached on a second run; sparse is tried again.
  seen.clear();
  st = RunPipeline(*c, o);
  EXPECT_EQ(seen, std::vector<std::string>{"sparsify"});
  const auto again = nlohmann::json::parse(std::ifstream(out + "/pipeline.json"));
  EXPECT_EQ(again["stages"][0]["status"], "cached");
  SetProgressEnabled(true);
}

}  // namespace
}  // namespace wbs::pipeline
