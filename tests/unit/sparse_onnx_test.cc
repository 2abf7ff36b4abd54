// Block masks through ONNX: sparsify -> export -> import restores identical
// masks and weights; a mask that disagrees with its weights is an import
// error naming the weight.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include "ir/pass.h"
#include "onnx/mask_metadata.h"
#include "onnx/model_io.h"
#include "sparse/sparsify.h"
#include "zoo/zoo.h"

namespace wbs {
namespace {

struct Sparsified {
  std::unique_ptr<ir::Graph> graph;
  std::string bytes;
};

Sparsified Make(const std::string& model, int br, int bc, double target) {
  Sparsified s;
  auto g = zoo::BuildModel(model);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  if (!g.ok()) return s;
  s.graph = std::move(*g);
  sparse::SparsifyOptions o;
  o.rules.block_rows = br;
  o.rules.block_cols = bc;
  o.sparsity = target;
  auto rep = sparse::Sparsify(*s.graph, o);
  EXPECT_TRUE(rep.ok()) << rep.status().ToString();
  auto bytes = onnxio::ExportModelToBytes(*s.graph);
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  if (bytes.ok()) s.bytes = *bytes;
  return s;
}

TEST(SparseOnnxTest, ExportImportRestoresMasksAndWeightsExactly) {
  for (auto [br, bc] : {std::pair{8, 8}, std::pair{16, 4}, std::pair{4, 8}}) {
    SCOPED_TRACE(testing::Message() << br << "x" << bc);
    Sparsified s = Make("fmnist_resnet", br, bc, 0.5);
    ASSERT_FALSE(s.bytes.empty());
    auto back = onnxio::ImportModelFromBytes(s.bytes, "fmnist_sparse.onnx");
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    int masks = 0;
    for (const ir::Value* v : s.graph->values()) {
      if (!v->block_mask) continue;
      ++masks;
      const ir::Value* w = (*back)->FindValue(v->name);
      ASSERT_TRUE(w) << v->name;
      ASSERT_TRUE(w->block_mask) << v->name;
      EXPECT_EQ(*w->block_mask, *v->block_mask) << v->name;
      EXPECT_TRUE(w->constant.Identical(v->constant)) << v->name;
    }
    // Every conv but the first; the fc [10,128] only while 10 >= block rows.
    EXPECT_EQ(masks, br <= 10 ? 15 : 14);
    int with_mask = 0;
    for (const ir::Value* v : (*back)->values()) with_mask += v->block_mask != nullptr;
    EXPECT_EQ(with_mask, masks);
    // Mask entries live on the values, not in the graph's metadata.
    for (const auto& [key, value] : (*back)->metadata) EXPECT_FALSE(onnxio::IsMaskMetadataKey(key));
    // Export again: byte-identical file.
    auto again = onnxio::ExportModelToBytes(**back);
    ASSERT_TRUE(again.ok());
    ::onnx::ModelProto m1, m2;
    ASSERT_TRUE(m1.ParseFromString(s.bytes));
    ASSERT_TRUE(m2.ParseFromString(*again));
    ASSERT_EQ(m1.metadata_props_size(), m2.metadata_props_size());
    for (int i = 0; i < m1.metadata_props_size(); ++i) {
      EXPECT_EQ(m1.metadata_props(i).key(), m2.metadata_props(i).key());
      EXPECT_EQ(m1.metadata_props(i).value(), m2.metadata_props(i).value());
    }
  }
}

// The metadata entry of `weight` in `bytes`, rewritten by `edit`.
std::string EditMask(const std::string& bytes, const std::string& key,
                     const std::function<void(std::string&)>& edit) {
  ::onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromString(bytes));
  bool found = false;
  for (auto& p : *m.mutable_metadata_props()) {
    if (p.key() != key) continue;
    edit(*p.mutable_value());
    found = true;
  }
  EXPECT_TRUE(found) << key;
  return m.SerializeAsString();
}

TEST(SparseOnnxTest, MaskDisagreeingWithWeightsIsAnImportErrorNamingTheWeight) {
  Sparsified s = Make("fmnist_resnet", 8, 8, 0.5);
  ASSERT_FALSE(s.bytes.empty());
  const ir::Value* w = nullptr;
  for (const ir::Value* v : s.graph->values())
    if (v->block_mask && v->name.find("layer2.0.conv1") != std::string::npos) w = v;
  ASSERT_TRUE(w);
  const std::string key = onnxio::kBlockMaskKeyPrefix + w->name;
  const BlockMask& m = *w->block_mask;
  ASSERT_TRUE(m.Get(0, 0) || m.Get(0, 1));
  // Clear the bit of a kept (non-zero) block: the file claims zeros that are not there.
  BlockMask bad = m;
  const int64_t col = m.Get(0, 0) ? 0 : 1;
  bad.Set(0, col, false);
  auto r = onnxio::ImportModelFromBytes(
      EditMask(s.bytes, key, [&](std::string& v) { v = EncodeBlockMask(bad); }), "bad.onnx");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            fmt::format("bad.onnx: weight '{}': block (0, {}) is masked as zero but holds "
                        "non-zero weights",
                        w->name, col));

  // Setting the bit of a zero block (kept but zero) is accepted.
  BlockMask loose = m;
  int64_t zero_block = -1;
  for (int64_t b = 0; b < m.num_blocks() && zero_block < 0; ++b)
    if (!m.keep[static_cast<size_t>(b)]) zero_block = b;
  ASSERT_GE(zero_block, 0);
  loose.keep[static_cast<size_t>(zero_block)] = 1;
  auto ok = onnxio::ImportModelFromBytes(
      EditMask(s.bytes, key, [&](std::string& v) { v = EncodeBlockMask(loose); }), "loose.onnx");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(*(*ok)->FindValue(w->name)->block_mask, loose);

  // Malformed text and a wrong size name the weight too.
  auto garbled = onnxio::ImportModelFromBytes(
      EditMask(s.bytes, key, [](std::string& v) { v.back() = 'z'; }), "g.onnx");
  ASSERT_FALSE(garbled.ok());
  EXPECT_NE(garbled.status().message().find("g.onnx: weight '" + w->name + "': bad hex digit"),
            std::string::npos)
      << garbled.status().message();
  BlockMask small = BlockMask::AllKept(8, 8, 1, 1);
  auto wrong = onnxio::ImportModelFromBytes(
      EditMask(s.bytes, key, [&](std::string& v) { v = EncodeBlockMask(small); }), "w.onnx");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("does not fit weight"), std::string::npos);
}

TEST(SparseOnnxTest, MaskForAMissingInitializerIsAnError) {
  Sparsified s = Make("fmnist_resnet", 8, 8, 0.25);
  ::onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(s.bytes));
  auto* p = m.add_metadata_props();
  p->set_key(std::string(onnxio::kBlockMaskKeyPrefix) + "nope");
  p->set_value("8x8:1x1:oi:80");
  auto r = onnxio::ImportModelFromBytes(m.SerializeAsString(), "m.onnx");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "m.onnx: weight 'nope': metadata 'wbs.block_mask.nope' names no initializer");
}

TEST(SparseOnnxTest, ExportRefusesAMaskThatDisagreesWithItsWeights) {
  Sparsified s = Make("fmnist_resnet", 8, 8, 0.0);
  ir::Value* w = nullptr;
  for (ir::Value* v : s.graph->values())
    if (v->block_mask) w = v;
  ASSERT_TRUE(w);
  auto bad = std::make_shared<BlockMask>(*w->block_mask);
  bad->Set(0, 0, false);
  w->block_mask = bad;
  auto r = onnxio::ExportModelToBytes(*s.graph);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("weight '" + w->name + "': block (0, 0) is masked"),
            std::string::npos)
      << r.status().message();
}

// BN folding scales output channels: the zero blocks stay zero, and the
// folded weight keeps the mask (the runtime's default pipeline folds BN).
TEST(SparseOnnxTest, MasksSurviveBatchNormFolding) {
  Sparsified s = Make("fmnist_resnet", 8, 8, 0.5);
  ASSERT_TRUE(s.graph);
  ir::PassManager pm;
  pm.Add(ir::CreateFoldBatchNormPass());
  pm.Add(ir::CreateDeadCodeEliminationPass());
  ASSERT_TRUE(pm.Run(*s.graph).ok());
  int masked = 0;
  for (const auto& n : s.graph->nodes()) {
    if (n->op_type != "Conv" && n->op_type != "Gemm") continue;
    const ir::Value* w = n->input(1);
    if (!w->block_mask) continue;
    ++masked;
    EXPECT_TRUE(CheckMaskAgainstWeight(*w->block_mask, w->constant, w->name).ok()) << w->name;
    auto z = MaskFromZeroBlocks(w->constant, 8, 8, w->block_mask->layout);
    ASSERT_TRUE(z.ok());
    EXPECT_EQ(*z, *w->block_mask) << w->name;
  }
  EXPECT_EQ(masked, 15);
}

}  // namespace
}  // namespace wbs
