// ONNX round trips (import -> export -> import) and export behaviour:
// fused activations, checker acceptance, atomic writes.
#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "ir/graph.h"
#include "ir/op_schema.h"
#include "ir/pass.h"
#include "onnx/model_io.h"
#include "runtime/session.h"
#include "tests/unit/onnx_test_util.h"

namespace wbs::onnxio {
namespace {

using testing::ModelBuilder;
using testing::ScratchDir;
namespace fs = std::filesystem;

constexpr const char* kNodeTestDir = "/usr/share/libonnx-testdata/data/node";

// Parses exported bytes and runs the ONNX checker on them independently of
// the exporter's own check; returns the checker's message on failure.
std::string CheckerError(const std::string& bytes) {
  ::onnx::ModelProto m;
  if (!m.ParseFromString(bytes)) return "exported bytes do not parse";
  try {
    ::onnx::checker::check_model(m);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

::onnx::ModelProto Parse(const std::string& bytes) {
  ::onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromString(bytes));
  return m;
}

// Exports, checks and re-imports a graph; the re-import must equal `g`.
// Returns false (after recording a failure) if any step fails.
bool ExpectRoundTrip(const ir::Graph& g, const std::string& what) {
  Result<std::string> bytes = ExportModelToBytes(g);
  if (!bytes.ok()) {
    ADD_FAILURE() << what << ": export failed: " << bytes.status().ToString();
    return false;
  }
  std::string checker = CheckerError(*bytes);
  if (!checker.empty()) {
    ADD_FAILURE() << what << ": checker: " << checker;
    return false;
  }
  auto again = ImportModelFromBytes(*bytes, what + " (exported)");
  if (!again.ok()) {
    ADD_FAILURE() << what << ": re-import failed: " << again.status().ToString();
    return false;
  }
  std::string diff;
  if (!ir::GraphsEqual(g, **again, &diff)) {
    ADD_FAILURE() << what << ": re-imported graph differs: " << diff;
    return false;
  }
  return true;
}

TEST(OnnxRoundTrip, BackendNodeTestModels) {
  if (!fs::exists(kNodeTestDir)) GTEST_SKIP() << kNodeTestDir << " missing (libonnx-testdata)";
  std::vector<fs::path> models;
  for (const auto& e : fs::directory_iterator(kNodeTestDir))
    if (fs::exists(e.path() / "model.onnx")) models.push_back(e.path() / "model.onnx");
  std::sort(models.begin(), models.end());
  int round_tripped = 0, unsupported = 0;
  std::vector<std::string> rejected;
  for (const fs::path& p : models) {
    auto g = ImportModel(p.string());
    if (!g.ok()) {
      if (g.status().code() == StatusCode::kUnimplemented)
        ++unsupported;
      else
        rejected.push_back(g.status().message());
      continue;
    }
    if (ExpectRoundTrip(**g, p.parent_path().filename().string())) ++round_tripped;
  }
  std::printf("[ onnx io  ] %zu node-test models: %d round-tripped, %d unsupported, %zu rejected\n",
              models.size(), round_tripped, unsupported, rejected.size());
  for (const std::string& r : rejected) std::printf("[ rejected ] %s\n", r.c_str());
  // Most ops of opsets 7..17 that CNNs use are supported; a drop below this
  // means import or export broke broadly, not that one op went missing.
  EXPECT_GE(round_tripped, 300);
}

TEST(OnnxRoundTrip, ConstantNodesBecomeConstantValues) {
  ModelBuilder b;
  b.Input("x", {2, 3});
  auto* c = b.Node("Constant", {}, {"c"}, "const_c");
  auto* a = c->add_attribute();
  a->set_name("value");
  a->set_type(::onnx::AttributeProto::TENSOR);
  a->mutable_t()->set_data_type(::onnx::TensorProto::FLOAT);
  a->mutable_t()->add_dims(2);
  a->mutable_t()->add_dims(3);
  for (float v : {1.f, 2.f, 3.f, 4.f, 5.f, 6.f}) a->mutable_t()->add_float_data(v);
  auto* s = b.Node("Constant", {}, {"s"}, "const_s");
  ModelBuilder::FloatAttr(s, "value_float", 0.5f);
  b.Node("Add", {"x", "c"}, {"y"}, "add");
  b.Node("Mul", {"y", "s"}, {"z"}, "mul");
  b.Output("z", {2, 3});

  auto g = ImportModelFromBytes(b.Bytes(), "const.onnx");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  ASSERT_EQ((*g)->num_nodes(), 2u);  // the Constant nodes are gone
  const ir::Value* cv = (*g)->FindValue("c");
  ASSERT_NE(cv, nullptr);
  ASSERT_TRUE(cv->is_constant());
  EXPECT_EQ(cv->constant.shape(), Shape({2, 3}));
  EXPECT_EQ(cv->constant.ToVector<float>(), std::vector<float>({1, 2, 3, 4, 5, 6}));
  const ir::Value* sv = (*g)->FindValue("s");
  ASSERT_TRUE(sv && sv->is_constant());
  EXPECT_EQ(sv->constant.rank(), 0);
  EXPECT_EQ(sv->constant.ToVector<float>(), std::vector<float>({0.5f}));
  EXPECT_EQ((*g)->nodes().front()->inputs[1], cv);
  ExpectRoundTrip(**g, "const.onnx");
}

TEST(OnnxRoundTrip, ConstantIntsAndInitializerListedAsInput) {
  // Old exporters list initializers among graph inputs; they are weights.
  ModelBuilder b(9);
  b.Input("x", {1, 6});
  b.Input("w", {1, 6});
  b.FloatInit("w", {1, 6}, {1, 1, 1, 1, 1, 1});
  auto* k = b.Node("Constant", {}, {"shape"}, "k");
  auto* a = k->add_attribute();
  a->set_name("value");
  a->set_type(::onnx::AttributeProto::TENSOR);
  a->mutable_t()->set_data_type(::onnx::TensorProto::INT64);
  a->mutable_t()->add_dims(2);
  a->mutable_t()->add_int64_data(2);
  a->mutable_t()->add_int64_data(3);
  b.Node("Add", {"x", "w"}, {"y"}, "add");
  b.Node("Reshape", {"y", "shape"}, {"z"}, "reshape");
  b.Output("z", {2, 3});

  auto g = ImportModelFromBytes(b.Bytes(), "old.onnx");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  ASSERT_EQ((*g)->inputs.size(), 1u);
  EXPECT_EQ((*g)->inputs[0]->name, "x");
  EXPECT_TRUE((*g)->FindValue("w")->is_constant());
  EXPECT_EQ((*g)->FindValue("shape")->constant.ToVector<int64_t>(), std::vector<int64_t>({2, 3}));
  EXPECT_EQ((*g)->opset, 9);
  for (const auto& n : (*g)->nodes()) EXPECT_EQ(n->opset, 9) << n->Describe();
  EXPECT_EQ((*g)->outputs[0]->shape, Shape({2, 3}));
  ExpectRoundTrip(**g, "old.onnx");
}

TEST(OnnxRoundTrip, OmittedOptionalInputStaysOmitted) {
  ModelBuilder b(13);
  b.Input("x", {4});
  b.FloatInit("hi", {}, {6.0f});
  b.Node("Clip", {"x", "", "hi"}, {"y"}, "clip");
  b.Output("y", {4});
  auto g = ImportModelFromBytes(b.Bytes(), "clip.onnx");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  const ir::Node& clip = *(*g)->nodes().front();
  ASSERT_EQ(clip.inputs.size(), 3u);
  EXPECT_EQ(clip.inputs[1], nullptr);
  ASSERT_NE(clip.inputs[2], nullptr);
  EXPECT_EQ(clip.inputs[2]->name, "hi");
  ExpectRoundTrip(**g, "clip.onnx");
  // The exported node keeps the empty name in the middle.
  ::onnx::ModelProto m = Parse(*ExportModelToBytes(**g));
  ASSERT_EQ(m.graph().node_size(), 1);
  EXPECT_EQ(m.graph().node(0).input(1), "");
}

TEST(OnnxRoundTrip, MetadataNameAndDynamicBatch) {
  ModelBuilder b;
  b.Input("x", {-1, 3});  // dim_param batch
  b.Node("Relu", {"x"}, {"y"}, "relu");
  b.Output("y", {-1, 3});
  auto* p = b.model().add_metadata_props();
  p->set_key("wbs.sparsity");
  p->set_value("0.75");
  auto g = ImportModelFromBytes(b.Bytes(), "meta.onnx");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ((*g)->name, "test_graph");
  EXPECT_EQ((*g)->metadata.at("wbs.sparsity"), "0.75");
  EXPECT_EQ((*g)->inputs[0]->shape, Shape({1, 3}));  // leading unknown dim = batch 1
  ::onnx::ModelProto m = Parse(*ExportModelToBytes(**g));
  EXPECT_EQ(m.graph().name(), "test_graph");
  ASSERT_EQ(m.metadata_props_size(), 1);
  EXPECT_EQ(m.metadata_props(0).key(), "wbs.sparsity");
  EXPECT_EQ(m.metadata_props(0).value(), "0.75");
  EXPECT_EQ(m.ir_version(), 8);
  ASSERT_EQ(m.opset_import_size(), 1);
  EXPECT_EQ(m.opset_import(0).version(), 17);

  ImportOptions opts;
  opts.input_shapes["x"] = {5, 3};
  auto g5 = ImportModelFromBytes(b.Bytes(), "meta.onnx", opts);
  ASSERT_TRUE(g5.ok()) << g5.status().ToString();
  EXPECT_EQ((*g5)->outputs[0]->shape, Shape({5, 3}));
}

// A MatMul carrying a fused activation, as the fuse-activation pass leaves it.
std::unique_ptr<ir::Graph> FusedMatMul(int64_t opset, const std::string& act,
                                       std::vector<std::pair<std::string, float>> params) {
  auto g = std::make_unique<ir::Graph>();
  g->opset = opset;
  g->name = "fused";
  ir::Value* x = g->AddInput("x", DType::kF32, {1, 4});
  ir::Value* w =
      g->AddConstant("w", Tensor::FromVector<float>({4, 3}, std::vector<float>(12, 0.25f)));
  ir::Value* y = g->AddValue("y");
  ir::Node* mm = g->AddNode("MatMul", {x, w}, {y}, "mm");
  mm->opset = opset;
  y->dtype = DType::kF32;
  y->shape = {1, 3};
  y->has_shape = true;
  mm->attrs["wbs.activation"] = act;
  for (auto& [k, v] : params) mm->attrs[k] = v;
  g->outputs.push_back(y);
  return g;
}

TEST(OnnxExport, FusedActivationBecomesSeparateNode) {
  struct Case {
    int64_t opset;
    std::string act;
    std::vector<std::pair<std::string, float>> params;
    std::map<std::string, float> want_attrs;  // on the re-imported activation node
    std::vector<float> want_const_inputs;     // Clip min/max inputs (opset >= 11)
  };
  const std::vector<Case> cases = {
      {17, "Relu", {}, {}, {}},
      {17, "LeakyRelu", {{"wbs.activation_alpha", 0.2f}}, {{"alpha", 0.2f}}, {}},
      {17, "Sigmoid", {}, {}, {}},
      {17, "Tanh", {}, {}, {}},
      {17,
       "HardSigmoid",
       {{"wbs.activation_alpha", 0.25f}, {"wbs.activation_beta", 0.4f}},
       {{"alpha", 0.25f}, {"beta", 0.4f}},
       {}},
      {17,
       "Clip",
       {{"wbs.activation_alpha", 0.0f}, {"wbs.activation_beta", 6.0f}},
       {},
       {0.0f, 6.0f}},
      {9,
       "Clip",
       {{"wbs.activation_alpha", -1.0f}, {"wbs.activation_beta", 1.0f}},
       {{"min", -1.0f}, {"max", 1.0f}},
       {}},
  };
  for (const Case& c : cases) {
    const std::string what = c.act + " at opset " + std::to_string(c.opset);
    auto g = FusedMatMul(c.opset, c.act, c.params);
    Result<std::string> bytes = ExportModelToBytes(*g);
    ASSERT_TRUE(bytes.ok()) << what << ": " << bytes.status().ToString();
    EXPECT_EQ(CheckerError(*bytes), "") << what;

    ::onnx::ModelProto m = Parse(*bytes);
    ASSERT_EQ(m.graph().node_size(), 2) << what;
    const auto& mm = m.graph().node(0);
    const auto& act = m.graph().node(1);
    EXPECT_EQ(mm.op_type(), "MatMul");
    EXPECT_EQ(act.op_type(), c.act);
    for (const auto& a : mm.attribute()) EXPECT_NE(a.name().rfind("wbs.", 0), 0u) << what;
    EXPECT_NE(mm.output(0), "y") << what;
    EXPECT_EQ(act.input(0), mm.output(0)) << what;
    EXPECT_EQ(act.output(0), "y") << what;
    EXPECT_EQ(m.graph().output(0).name(), "y") << what;

    auto back = ImportModelFromBytes(*bytes, what);
    ASSERT_TRUE(back.ok()) << what << ": " << back.status().ToString();
    ASSERT_EQ((*back)->num_nodes(), 2u) << what;
    const ir::Node& n2 = *(*back)->nodes().back();
    EXPECT_EQ(n2.op_type, c.act);
    EXPECT_EQ(n2.outputs[0], (*back)->outputs[0]);
    EXPECT_EQ(n2.attrs.size(), c.want_attrs.size()) << what;
    for (auto& [k, v] : c.want_attrs) EXPECT_FLOAT_EQ(n2.GetFloat(k, NAN), v) << what << " " << k;
    ASSERT_EQ(n2.inputs.size(), 1 + c.want_const_inputs.size()) << what;
    for (size_t i = 0; i < c.want_const_inputs.size(); ++i) {
      ASSERT_TRUE(n2.inputs[i + 1] && n2.inputs[i + 1]->is_constant()) << what;
      EXPECT_EQ(n2.inputs[i + 1]->constant.ToVector<float>(),
                std::vector<float>({c.want_const_inputs[i]}))
          << what;
    }
  }
}

TEST(OnnxExport, ClipWithOnlyMaxKeepsMinOmitted) {
  auto g = FusedMatMul(17, "Clip", {{"wbs.activation_beta", 6.0f}});
  Result<std::string> bytes = ExportModelToBytes(*g);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(CheckerError(*bytes), "");
  ::onnx::ModelProto m = Parse(*bytes);
  ASSERT_EQ(m.graph().node_size(), 2);
  ASSERT_EQ(m.graph().node(1).input_size(), 3);
  EXPECT_EQ(m.graph().node(1).input(1), "");
}

TEST(OnnxExport, UnknownFusedActivationIsAnError) {
  auto g = FusedMatMul(17, "Swish", {});
  Result<std::string> bytes = ExportModelToBytes(*g);
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.status().message(), "MatMul node 'mm': unknown fused activation 'Swish'");
}

TEST(OnnxExport, CheckerRejectionLeavesNoFile) {
  ScratchDir dir;
  auto g = FusedMatMul(17, "Relu", {});
  (*g->nodes().begin())->op_type = "NoSuchOp";
  const std::string target = dir.File("bad.onnx");
  Status st = ExportModel(*g, target);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message().rfind(target + ": onnx checker rejected the exported model: ", 0), 0u)
      << st.message();
  EXPECT_NE(st.message().find("NoSuchOp"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find('\n'), std::string::npos);
  EXPECT_TRUE(dir.List().empty());

  // An existing file at the target survives a failed export unchanged.
  { std::ofstream(target) << "old contents"; }
  ASSERT_FALSE(ExportModel(*g, target).ok());
  EXPECT_EQ(dir.List(), std::vector<std::string>({"bad.onnx"}));
  std::ifstream in(target);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "old contents");
}

TEST(OnnxExport, MissingDirectoryLeavesNoFile) {
  ScratchDir dir;
  auto g = FusedMatMul(17, "Relu", {});
  const std::string target = dir.File("no_such_dir/model.onnx");
  Status st = ExportModel(*g, target);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kIoError);
  EXPECT_EQ(st.message().rfind(target + ": cannot create a temp file", 0), 0u) << st.message();
  EXPECT_TRUE(dir.List().empty());
}

TEST(OnnxExport, SuccessReplacesTargetAndLeavesNoTemp) {
  ScratchDir dir;
  auto g = FusedMatMul(17, "Relu", {});
  const std::string target = dir.File("model.onnx");
  { std::ofstream(target) << "old contents"; }
  Status st = ExportModel(*g, target);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(dir.List(), std::vector<std::string>({"model.onnx"}));
  auto back = ImportModel(target);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ((*back)->num_nodes(), 2u);
}

TEST(OnnxExport, UntypedOutputsAreInferred) {
  // Builders may leave outputs untyped; export infers before declaring them.
  ir::Graph g;
  ir::Value* x = g.AddInput("x", DType::kF32, {2, 2});
  ir::Node* r = g.AddNode("Relu", {x}, 1, "relu");
  g.outputs.push_back(r->outputs[0]);
  Result<std::string> bytes = ExportModelToBytes(g);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  ::onnx::ModelProto m = Parse(*bytes);
  ASSERT_EQ(m.graph().output_size(), 1);
  EXPECT_EQ(m.graph().output(0).type().tensor_type().elem_type(), ::onnx::TensorProto::FLOAT);
  EXPECT_EQ(m.graph().output(0).type().tensor_type().shape().dim_size(), 2);
}

// Residual blocks after the runtime's passes (fuse-residual, fuse-activation):
// the export is plain ONNX (Conv -> Add [-> activation]) and, re-imported and
// run unoptimized on the reference backend, computes what the fused session
// computes.
TEST(OnnxExport, FusedResidualBecomesConvAddActivation) {
  ir::Graph g;
  g.name = "residual";
  ir::Value* x = g.AddInput("x", DType::kF32, {1, 4, 6, 6});
  auto weights = [&](const std::string& name, Shape shape, float scale) {
    Tensor t(DType::kF32, shape);
    for (int64_t i = 0; i < t.numel(); ++i)
      t.data<float>()[i] = scale * static_cast<float>((i * 37) % 11 - 5);
    return g.AddConstant(name, t);
  };
  // relu(conv(x) + bias + x), then clip(r + conv(r), 0, 6) with a bias-less conv.
  ir::Node* c1 = g.AddNode(
      "Conv", {x, weights("w1", {4, 4, 3, 3}, 0.05f), weights("b1", {4}, 0.1f)}, 1, "conv1");
  c1->attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  ir::Node* a1 = g.AddNode("Add", {c1->outputs[0], x}, 1, "add1");
  ir::Node* r1 = g.AddNode("Relu", {a1->outputs[0]}, 1, "relu1");
  ir::Node* c2 = g.AddNode("Conv", {r1->outputs[0], weights("w2", {4, 4, 1, 1}, 0.1f)}, 1, "conv2");
  ir::Node* a2 = g.AddNode("Add", {r1->outputs[0], c2->outputs[0]}, 1, "add2");
  ir::Node* clip = g.AddNode("Clip",
                             {a2->outputs[0], g.AddConstant("lo", Tensor::Scalar<float>(0.0f)),
                              g.AddConstant("hi", Tensor::Scalar<float>(6.0f))},
                             {g.AddValue("y")}, "clip");
  g.outputs.push_back(clip->outputs[0]);

  Tensor input(DType::kF32, {1, 4, 6, 6});
  for (int64_t i = 0; i < input.numel(); ++i)
    input.data<float>()[i] = static_cast<float>((i * 13) % 17) / 4.0f - 2.0f;
  runtime::SessionOptions fused_options;
  fused_options.backend = runtime::Backend::kReference;
  auto fused = runtime::Session::Create(g, fused_options);
  ASSERT_TRUE(fused.ok()) << fused.status().ToString();
  ASSERT_EQ((*fused)->graph().num_nodes(), 2u) << ir::PrintGraph((*fused)->graph());
  for (const auto& n : (*fused)->graph().nodes()) ASSERT_EQ(n->GetInt("wbs.residual", 0), 1);
  auto want = (*fused)->Run({input});
  ASSERT_TRUE(want.ok()) << want.status().ToString();

  Result<std::string> bytes = ExportModelToBytes((*fused)->graph());
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(CheckerError(*bytes), "");
  ::onnx::ModelProto m = Parse(*bytes);
  std::vector<std::string> ops;
  for (const auto& n : m.graph().node()) {
    ops.push_back(n.op_type());
    for (const auto& a : n.attribute()) EXPECT_NE(a.name().rfind("wbs.", 0), 0u) << a.name();
    if (n.op_type() == "Conv") {
      EXPECT_LE(n.input_size(), 3) << n.name();
    }
  }
  EXPECT_EQ(ops, (std::vector<std::string>{"Conv", "Add", "Relu", "Conv", "Add", "Clip"}));
  EXPECT_EQ(m.graph().node(1).input(1), "x");
  EXPECT_EQ(m.graph().node(3).input_size(), 2) << "the omitted bias is not written";
  EXPECT_EQ(m.graph().node(5).output(0), "y");

  auto back = ImportModelFromBytes(*bytes, "residual (exported)");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  runtime::SessionOptions plain_options;
  plain_options.backend = runtime::Backend::kReference;
  plain_options.optimize = false;
  auto plain = runtime::Session::Create(**back, plain_options);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ((*plain)->graph().num_nodes(), 6u);
  auto got = (*plain)->Run({input});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ((*got)[0].shape(), (*want)[0].shape());
  EXPECT_EQ((*got)[0].ToVector<float>(), (*want)[0].ToVector<float>());
}

}  // namespace
}  // namespace wbs::onnxio
