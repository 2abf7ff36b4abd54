// The LibTorch bridge (train/module.h): torch forward == wbs runtime on the
// zoo models, masks stay exact through training, exports run in the runtime
// and in ONNX Runtime.
#include "train/module.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/npy.h"
#include "ir/pass.h"
#include "onnx/model_io.h"
#include "runtime/session.h"
#include "train/torch_ops.h"
#include "zoo/zoo.h"

namespace wbs::train {
namespace {

namespace fs = std::filesystem;

torch::Tensor RandomInput(const std::vector<int64_t>& shape, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randn(shape);
}

// The graph's first output in the wbs runtime (fast backend, default passes).
Tensor RunWbs(const ir::Graph& graph, const torch::Tensor& x) {
  runtime::SessionOptions opts;
  opts.input_shapes[graph.inputs[0]->name] = Shape(x.sizes().begin(), x.sizes().end());
  auto session = runtime::Session::Create(graph, opts);
  EXPECT_TRUE(session.ok()) << session.status().ToString();
  if (!session.ok()) return Tensor();
  auto in = internal::FromTorch(x);
  EXPECT_TRUE(in.ok());
  auto out = (*session)->Run({*in});
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return out.ok() ? (*out)[0] : Tensor();
}

// max |a - b| <= tol * max |reference| (outputs of random-weight nets vary
// in scale; relative to the largest logit).
void ExpectClose(const torch::Tensor& torch_out, const Tensor& ref, double tol,
                 const std::string& what) {
  ASSERT_TRUE(ref.defined()) << what;
  auto r = internal::ToTorch(ref, torch::kCPU);
  ASSERT_TRUE(r.ok()) << what;
  const torch::Tensor a = torch_out.detach().to(torch::kCPU);
  ASSERT_EQ(a.sizes(), r->sizes()) << what;
  const double scale = r->abs().max().item<double>();
  const double err = (a - *r).abs().max().item<double>();
  EXPECT_GT(scale, 0.0) << what;
  EXPECT_LE(err, tol * scale) << what << ": max abs err " << err << ", max |ref| " << scale;
}

struct ZooCase {
  std::string model;
  int64_t batch;
  int64_t image;
};

std::unique_ptr<ir::Graph> Zoo(const ZooCase& c) {
  zoo::ZooOptions o;
  o.batch = c.batch;
  o.image_size = c.image;
  o.seed = 7;
  auto g = zoo::BuildModel(c.model, o);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return g.ok() ? std::move(*g) : nullptr;
}

int64_t InChannels(const ir::Graph& g) { return g.inputs[0]->shape[1]; }

// Half the blocks of every blockable weight masked (seeded), and the masks.
std::map<std::string, BlockMask> MaskHalf(GraphModule& m, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::map<std::string, BlockMask> masks;
  for (const std::string& name : m.blockable_weights()) {
    // Conv weights and the zoo's Gemm (transB=1) are [COUT, CIN, ...].
    const torch::Tensor& w = m.weight(name);
    const int64_t cout = w.size(0), cin = w.size(1);
    BlockMask mask = BlockMask::AllKept(8, 8, (cout + 7) / 8, (cin + 7) / 8);
    for (auto& k : mask.keep) k = (rng() & 1) ? 1 : 0;
    mask.keep[0] = 0;  // at least one masked block
    EXPECT_TRUE(m.SetMask(name, mask).ok()) << name;
    masks[name] = mask;
  }
  return masks;
}

class ZooBridge : public ::testing::TestWithParam<ZooCase> {};

TEST_P(ZooBridge, EvalForwardMatchesRuntime) {
  const ZooCase c = GetParam();
  auto graph = Zoo(c);
  ASSERT_TRUE(graph);
  auto module = GraphModule::Create(*graph);
  ASSERT_TRUE(module.ok()) << module.status().ToString();
  (*module)->eval();
  const torch::Tensor x = RandomInput({c.batch, InChannels(*graph), c.image, c.image}, 1);
  torch::NoGradGuard no_grad;
  auto y = (*module)->Forward(x);
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  ExpectClose(*y, RunWbs(*graph, x), 1e-4, c.model);
}

// SGD (momentum, weight decay) with masks: masked entries are exactly zero
// after each ApplyMasks, the export carries the masks and the runtime agrees
// with torch's eval forward, with BN kept and folded.
TEST_P(ZooBridge, MaskedTrainingExportsToRuntime) {
  const ZooCase c = GetParam();
  auto graph = Zoo(c);
  ASSERT_TRUE(graph);
  auto created = GraphModule::Create(*graph);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  GraphModule& m = **created;
  ASSERT_FALSE(m.blockable_weights().empty());
  const std::map<std::string, BlockMask> masks = MaskHalf(m, 3);

  // A small step: with random labels over 1000 classes, larger steps leave
  // the eval network ill-conditioned (mobilenet_v2 at 32x32: activations in
  // the thousands before Clip), so that even wbs's reference and fast
  // backends differ by more than 1e-4 on the export.
  torch::optim::SGD opt(m.parameters(),
                        torch::optim::SGDOptions(0.002).momentum(0.9).weight_decay(1e-4));
  m.train();
  const int64_t batch = std::max<int64_t>(c.batch, 2);  // BN batch statistics need 2
  const int64_t classes = graph->outputs[0]->shape[1];
  for (int step = 0; step < 2; ++step) {
    const torch::Tensor x = RandomInput({batch, InChannels(*graph), c.image, c.image}, 10 + step);
    const torch::Tensor labels = torch::randint(classes, {batch}, torch::kLong);
    opt.zero_grad();
    auto y = m.Forward(x);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    torch::Tensor loss = torch::nn::functional::cross_entropy(*y, labels);
    loss.backward();
    opt.step();
    m.ApplyMasks();
  }
  for (const auto& [name, mask] : masks) {
    auto w = internal::FromTorch(m.weight(name));
    ASSERT_TRUE(w.ok());
    EXPECT_TRUE(CheckMaskAgainstWeight(mask, *w, name).ok()) << name;
    // The kept blocks trained (not all zero): the mask is exact, not blunt.
    auto zeros = MaskFromZeroBlocks(*w, 8, 8, mask.layout);
    ASSERT_TRUE(zeros.ok());
    EXPECT_EQ(zeros->num_kept(), mask.num_kept()) << name;
    ASSERT_TRUE(m.mask(name).has_value());
    EXPECT_EQ(*m.mask(name), mask);
  }

  m.eval();
  const torch::Tensor x = RandomInput({c.batch, InChannels(*graph), c.image, c.image}, 99);
  torch::Tensor expect;
  {
    torch::NoGradGuard no_grad;
    auto y = m.Forward(x);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    expect = *y;
  }
  for (bool fold : {false, true}) {
    auto exported = m.ExportGraph(fold);
    ASSERT_TRUE(exported.ok()) << exported.status().ToString();
    int bn = 0, with_mask = 0;
    for (const auto& n : (*exported)->nodes()) bn += n->op_type == "BatchNormalization";
    for (const auto& [name, mask] : masks) {
      const ir::Value* v = (*exported)->FindValue(name);
      ASSERT_TRUE(v && v->is_constant()) << name << (fold ? " (folded)" : "");
      ASSERT_TRUE(v->block_mask) << name;
      EXPECT_EQ(*v->block_mask, mask) << name;
      EXPECT_TRUE(CheckMaskAgainstWeight(mask, v->constant, name).ok()) << name;
      ++with_mask;
    }
    EXPECT_EQ(with_mask, static_cast<int>(masks.size()));
    if (fold)
      EXPECT_EQ(bn, 0) << "every zoo BN follows a conv";
    else
      EXPECT_GT(bn, 0);
    ExpectClose(expect, RunWbs(**exported, x), 1e-4,
                c.model + (fold ? " folded export" : " export"));
  }
}

INSTANTIATE_TEST_SUITE_P(Zoo, ZooBridge,
                         ::testing::Values(ZooCase{"fmnist_resnet", 2, 28},
                                           ZooCase{"resnet18", 2, 64},
                                           ZooCase{"mobilenet_v2", 2, 32},
                                           ZooCase{"inception_v3", 2, 75}),
                         [](const auto& info) { return info.param.model; });

// A trained, masked fmnist_resnet exported to ONNX runs in ONNX Runtime with
// the same outputs as torch.
TEST(ModuleOrt, TrainedFmnistExportRunsInOrt) {
  const fs::path ort_dir = fs::path(WBS_SOURCE_DIR) / "tools/ort";
  if (!fs::exists(ort_dir / "node_modules/onnxruntime-node") ||
      std::system("node --version >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "node or onnxruntime-node missing (scripts/setup.sh installs them)";
  auto graph = Zoo({"fmnist_resnet", 2, 28});
  ASSERT_TRUE(graph);
  auto created = GraphModule::Create(*graph);
  ASSERT_TRUE(created.ok());
  GraphModule& m = **created;
  const std::map<std::string, BlockMask> masks = MaskHalf(m, 5);
  torch::optim::SGD opt(m.parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  m.train();
  for (int step = 0; step < 2; ++step) {
    opt.zero_grad();
    torch::Tensor loss = torch::nn::functional::cross_entropy(
        m.forward(RandomInput({4, 1, 28, 28}, 20 + step)), torch::randint(10, {4}, torch::kLong));
    loss.backward();
    opt.step();
    m.ApplyMasks();
  }
  m.eval();
  const torch::Tensor x = RandomInput({2, 1, 28, 28}, 77);
  torch::Tensor expect;
  {
    torch::NoGradGuard no_grad;
    expect = m.forward(x);
  }
  const fs::path dir = fs::path(::testing::TempDir()) / "wbs_module_ort";
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (bool fold : {false, true}) {
    auto exported = m.ExportGraph(fold);
    ASSERT_TRUE(exported.ok()) << exported.status().ToString();
    // The exported input is batch 2, like x.
    (*exported)->inputs[0]->shape[0] = 2;
    const std::string model = (dir / (fold ? "folded.onnx" : "bn.onnx")).string();
    ASSERT_TRUE(onnxio::ExportModel(**exported, model).ok());
    auto in = internal::FromTorch(x);
    ASSERT_TRUE(in.ok());
    ASSERT_TRUE(WriteNpy(*in, (dir / "x.npy").string()).ok());
    const fs::path out_dir = dir / (fold ? "out_folded" : "out_bn");
    const std::string cmd = "node " + (ort_dir / "run.js").string() + " " + model + " --inputs " +
                            (dir / "x.npy").string() + " --outdir " + out_dir.string() + " >" +
                            (dir / "ort_log.txt").string() + " 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    auto got = ReadNpy((out_dir / "logits.npy").string());
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ExpectClose(expect, *got, 1e-4, fold ? "ORT folded" : "ORT with BN");
    // The file carries the masks, and a module built from it adopts them.
    auto imported = onnxio::ImportModel(model);
    ASSERT_TRUE(imported.ok()) << imported.status().ToString();
    auto reloaded = GraphModule::Create(**imported);
    ASSERT_TRUE(reloaded.ok()) << reloaded.status().ToString();
    for (const auto& [name, mask] : masks) {
      const ir::Value* v = (*imported)->FindValue(name);
      ASSERT_TRUE(v && v->block_mask) << name;
      EXPECT_EQ(*v->block_mask, mask) << name;
      ASSERT_TRUE((*reloaded)->mask(name).has_value()) << name;
      EXPECT_EQ(*(*reloaded)->mask(name), mask) << name;
    }
  }
}

// BN in train mode uses batch statistics and moves the running stats by the
// node's momentum (ONNX convention); eval mode uses the running stats.
TEST(ModuleBatchNorm, TrainModeUpdatesRunningStatsWithMomentum) {
  ir::Graph g;
  g.name = "bn";
  ir::Value* x = g.AddInput("x", DType::kF32, {4, 3, 5, 5});
  std::vector<float> ones(3, 1.0f), zeros(3, 0.0f), mean = {0.5f, -1.0f, 2.0f},
                                                    var = {1.0f, 2.0f, 0.5f};
  ir::Node* bn = g.AddNode("BatchNormalization",
                           {x, g.AddConstant("s", Tensor::FromVector<float>({3}, ones)),
                            g.AddConstant("b", Tensor::FromVector<float>({3}, zeros)),
                            g.AddConstant("m", Tensor::FromVector<float>({3}, mean)),
                            g.AddConstant("v", Tensor::FromVector<float>({3}, var))},
                           1, "bn");
  bn->attrs["momentum"] = 0.8f;
  bn->attrs["epsilon"] = 1e-5f;
  g.outputs.push_back(bn->outputs[0]);
  auto created = GraphModule::Create(g);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  GraphModule& m = **created;
  EXPECT_EQ(m.weight_names(), (std::vector<std::string>{"s", "b"}));
  EXPECT_EQ(m.buffer_names(), (std::vector<std::string>{"m", "v"}));
  const torch::Tensor in = RandomInput({4, 3, 5, 5}, 4) * 2 + 1;
  m.train();
  const torch::Tensor y = m.forward(in);
  const torch::Tensor batch_mean = in.mean({0, 2, 3});
  const torch::Tensor expect_mean = torch::tensor(mean) * 0.8 + batch_mean * 0.2;
  EXPECT_TRUE(torch::allclose(m.buffer("m"), expect_mean, 1e-5, 1e-6));
  // Batch statistics normalise the output.
  EXPECT_LT(y.mean({0, 2, 3}).abs().max().item<float>(), 1e-4);
  m.eval();
  torch::NoGradGuard no_grad;
  auto exported = m.ExportGraph(false);
  ASSERT_TRUE(exported.ok());
  ExpectClose(m.forward(in), RunWbs(**exported, in), 1e-5, "eval BN");
}

// Masks on a MatMul weight [CIN, COUT] (kInOut) with a ragged 8x8 grid:
// exactly the masked blocks are zero after ApplyMasks.
TEST(ModuleMask, InOutLayoutAndRaggedBlocks) {
  ir::Graph g;
  g.name = "mm";
  ir::Value* x = g.AddInput("x", DType::kF32, {2, 20});
  std::vector<float> w(20 * 12);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.1f + 0.01f * static_cast<float>(i);
  ir::Node* mm =
      g.AddNode("MatMul", {x, g.AddConstant("w", Tensor::FromVector<float>({20, 12}, w))}, 1, "mm");
  g.outputs.push_back(mm->outputs[0]);
  auto created = GraphModule::Create(g);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  GraphModule& m = **created;
  EXPECT_EQ(m.blockable_weights(), (std::vector<std::string>{"w"}));
  // COUT 12 -> 2 block rows, CIN 20 -> 3 block columns.
  BlockMask mask = BlockMask::AllKept(8, 8, 2, 3, MaskLayout::kInOut);
  mask.Set(0, 2, false);
  mask.Set(1, 0, false);
  EXPECT_FALSE(m.SetMask("w", BlockMask::AllKept(8, 8, 2, 3, MaskLayout::kOutIn)).ok());
  EXPECT_FALSE(m.SetMask("w", BlockMask::AllKept(8, 8, 3, 2, MaskLayout::kInOut)).ok());
  ASSERT_TRUE(m.SetMask("w", mask).ok());
  // Forward already sees W ⊙ Γ before ApplyMasks.
  const torch::Tensor in = torch::ones({2, 20});
  const torch::Tensor y = m.forward(in);
  const torch::Tensor wt = m.weight("w").detach();
  torch::Tensor masked = wt.clone();
  masked.slice(0, 16, 20).slice(1, 0, 8).zero_();  // block (out 0, in 2)
  masked.slice(0, 0, 8).slice(1, 8, 12).zero_();   // block (out 1, in 0)
  EXPECT_TRUE(torch::allclose(y, torch::matmul(in, masked)));
  m.ApplyMasks();
  EXPECT_TRUE(torch::equal(m.weight("w").detach(), masked));
  auto exported = m.ExportGraph(true);
  ASSERT_TRUE(exported.ok());
  auto zeros = MaskFromZeroBlocks((*exported)->FindValue("w")->constant, 8, 8, MaskLayout::kInOut);
  ASSERT_TRUE(zeros.ok());
  EXPECT_EQ(*zeros, mask);
  m.ClearMasks();
  EXPECT_FALSE(m.mask("w").has_value());
}

// Gates: forward and export use gate(W).
TEST(ModuleGate, ForwardAndExportUseTheGate) {
  auto graph = Zoo({"fmnist_resnet", 2, 28});
  ASSERT_TRUE(graph);
  auto created = GraphModule::Create(*graph);
  ASSERT_TRUE(created.ok());
  GraphModule& m = **created;
  const std::string w = m.blockable_weights().front();
  EXPECT_FALSE(m.SetGate("no.such.weight", [](const torch::Tensor& t) { return t; }).ok());
  ASSERT_TRUE(
      m.SetGate(w, [](const torch::Tensor& t) { return t * (t.abs() > 0.05).to(t.dtype()); }).ok());
  m.eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = RandomInput({2, 1, 28, 28}, 8);
  const torch::Tensor gated = m.forward(x);
  auto exported = m.ExportGraph(false);
  ASSERT_TRUE(exported.ok());
  ExpectClose(gated, RunWbs(**exported, x), 1e-4, "gated export");
  ASSERT_TRUE(m.SetGate(w, nullptr).ok());
  const torch::Tensor ungated = m.forward(x);
  EXPECT_GT((gated - ungated).abs().max().item<float>(), 1e-5) << "the gate changed nothing";
}

// Graphs after the runtime's passes (BN folded, "wbs.residual" and
// "wbs.activation" fused, incl. MobileNet's Clip(0, 6)) build, agree with the
// unfused module and train with masks.
TEST(ModuleFused, GraphsAfterDefaultPassesTrain) {
  for (const ZooCase& c : {ZooCase{"fmnist_resnet", 2, 28}, ZooCase{"mobilenet_v2", 2, 32}}) {
    auto graph = Zoo(c);
    ASSERT_TRUE(graph);
    std::unique_ptr<ir::Graph> fused = graph->Clone();
    ir::PassManager pm;
    ir::AddDefaultPasses(pm, nullptr);
    ASSERT_TRUE(pm.Run(*fused).ok());
    int residual = 0, clip = 0, relu = 0, bn = 0;
    for (const auto& n : fused->nodes()) {
      residual += n->GetInt("wbs.residual", 0) != 0;
      clip += n->GetString("wbs.activation", "") == "Clip";
      relu += n->GetString("wbs.activation", "") == "Relu";
      bn += n->op_type == "BatchNormalization";
    }
    EXPECT_EQ(bn, 0) << c.model;
    const bool resnet = c.model == "fmnist_resnet";
    EXPECT_TRUE(resnet ? residual > 0 && relu > 0 : clip > 0)
        << c.model << ": " << residual << " residual, " << relu << " relu, " << clip << " clip";

    auto plain = GraphModule::Create(*graph);
    auto created = GraphModule::Create(*fused);
    ASSERT_TRUE(plain.ok() && created.ok()) << created.status().ToString();
    GraphModule& m = **created;
    (*plain)->eval();
    m.eval();
    const torch::Tensor x = RandomInput({c.batch, InChannels(*graph), c.image, c.image}, 5);
    {
      torch::NoGradGuard no_grad;
      const torch::Tensor a = (*plain)->forward(x), b = m.forward(x);
      EXPECT_LE((a - b).abs().max().item<double>(), 1e-4 * a.abs().max().item<double>()) << c.model;
    }
    const std::map<std::string, BlockMask> masks = MaskHalf(m, 9);
    ASSERT_FALSE(masks.empty());
    torch::optim::SGD opt(m.parameters(), torch::optim::SGDOptions(0.002).momentum(0.9));
    m.train();
    for (int step = 0; step < 2; ++step) {
      opt.zero_grad();
      const torch::Tensor in = RandomInput({2, InChannels(*graph), c.image, c.image}, 30 + step);
      torch::nn::functional::cross_entropy(m.forward(in), torch::tensor({1L, 2L})).backward();
      opt.step();
      m.ApplyMasks();
    }
    m.eval();
    torch::NoGradGuard no_grad;
    auto exported = m.ExportGraph(true);
    ASSERT_TRUE(exported.ok()) << exported.status().ToString();
    for (const auto& [name, mask] : masks) {
      const ir::Value* v = (*exported)->FindValue(name);
      ASSERT_TRUE(v && v->block_mask) << name;
      EXPECT_TRUE(CheckMaskAgainstWeight(mask, v->constant, name).ok()) << name;
    }
    ExpectClose(m.forward(x), RunWbs(**exported, x), 1e-4, c.model + " fused export");
  }
}

TEST(ModuleErrors, UnsupportedOpAndBadMasks) {
  ir::Graph g;
  g.name = "odd";
  ir::Value* x = g.AddInput("x", DType::kF32, {1, 4});
  ir::Node* n = g.AddNode("Hardmax", {x}, 1, "weird_node");
  g.outputs.push_back(n->outputs[0]);
  auto created = GraphModule::Create(g);
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(created.status().message().find("weird_node"), std::string::npos)
      << created.status().ToString();
  EXPECT_NE(created.status().message().find("Hardmax"), std::string::npos);

  // MobileNet's depthwise convs stay dense; unknown names are refused.
  auto mobilenet = Zoo({"mobilenet_v2", 1, 32});
  ASSERT_TRUE(mobilenet);
  auto mm = GraphModule::Create(*mobilenet);
  ASSERT_TRUE(mm.ok()) << mm.status().ToString();
  const Status depthwise =
      (*mm)->SetMask("features.2.conv.1.0.weight", BlockMask::AllKept(8, 8, 12, 1));
  EXPECT_FALSE(depthwise.ok());
  EXPECT_NE(depthwise.message().find("grouped"), std::string::npos) << depthwise.ToString();
  EXPECT_FALSE((*mm)->SetMask("nope", BlockMask::AllKept(8, 8, 1, 1)).ok());

  // A run-time shape error names the node and comes back as a Status.
  auto fm = GraphModule::Create(*Zoo({"fmnist_resnet", 1, 28}));
  ASSERT_TRUE(fm.ok());
  auto bad = (*fm)->Forward(torch::zeros({1, 3, 28, 28}));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("conv1"), std::string::npos) << bad.status().ToString();
}

}  // namespace
}  // namespace wbs::train
