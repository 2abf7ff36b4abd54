// One-shot selection (exact counts, keep-channels, global mode with caps),
// the blockable-layer rules, and Sparsify on a graph.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "sparse/layers.h"
#include "sparse/sparsify.h"

namespace wbs::sparse {
namespace {

LayerScores RandomScores(std::mt19937& rng, int64_t rows, int64_t cols) {
  std::uniform_real_distribution<double> d(0.0, 1.0);
  LayerScores s{{}, rows, cols};
  for (int64_t i = 0; i < rows * cols; ++i) s.scores.push_back(d(rng));
  return s;
}

int64_t Zeros(const std::vector<uint8_t>& keep) {
  return static_cast<int64_t>(std::count(keep.begin(), keep.end(), uint8_t{0}));
}

constexpr double kTargets[] = {0.0, 0.25, 0.5, 0.75, 0.9, 1.0};

TEST(SparseChooseTest, PerLayerZeroesExactlyTheWeakestRoundedCount) {
  const uint32_t seed = 99;
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  std::vector<LayerScores> layers = {RandomScores(rng, 7, 9), RandomScores(rng, 1, 3),
                                     RandomScores(rng, 16, 16)};
  for (double t : kTargets) {
    SCOPED_TRACE(testing::Message() << "target " << t);
    SparsifyOptions o;
    o.sparsity = t;
    o.keep_channels = false;
    auto keep = ChooseBlocks(layers, o);
    ASSERT_TRUE(keep.ok()) << keep.status().ToString();
    for (size_t l = 0; l < layers.size(); ++l) {
      const int64_t n = layers[l].rows * layers[l].cols;
      EXPECT_EQ(Zeros((*keep)[l]), std::llround(t * static_cast<double>(n)));
      double max_zeroed = -1, min_kept = 2;
      for (int64_t b = 0; b < n; ++b) {
        const double s = layers[l].scores[static_cast<size_t>(b)];
        if ((*keep)[l][static_cast<size_t>(b)])
          min_kept = std::min(min_kept, s);
        else
          max_zeroed = std::max(max_zeroed, s);
      }
      EXPECT_LT(max_zeroed, min_kept) << "layer " << l;
    }
  }
}

// The protected set, computed here: the best block of each row and column.
std::set<int64_t> Protected(const LayerScores& s) {
  std::set<int64_t> p;
  for (int64_t r = 0; r < s.rows; ++r) {
    int64_t best = r * s.cols;
    for (int64_t c = 0; c < s.cols; ++c)
      if (s.scores[static_cast<size_t>(r * s.cols + c)] > s.scores[static_cast<size_t>(best)])
        best = r * s.cols + c;
    p.insert(best);
  }
  for (int64_t c = 0; c < s.cols; ++c) {
    int64_t best = c;
    for (int64_t r = 0; r < s.rows; ++r)
      if (s.scores[static_cast<size_t>(r * s.cols + c)] > s.scores[static_cast<size_t>(best)])
        best = r * s.cols + c;
    p.insert(best);
  }
  return p;
}

TEST(SparseChooseTest, KeepChannelsLeavesEveryRowAndColumnABlock) {
  const uint32_t seed = 4242;
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  std::vector<LayerScores> layers = {RandomScores(rng, 5, 12), RandomScores(rng, 8, 8),
                                     RandomScores(rng, 2, 16)};
  for (double t : kTargets) {
    SCOPED_TRACE(testing::Message() << "target " << t);
    SparsifyOptions o;
    o.sparsity = t;
    auto keep = ChooseBlocks(layers, o);
    ASSERT_TRUE(keep.ok()) << keep.status().ToString();
    for (size_t l = 0; l < layers.size(); ++l) {
      const LayerScores& s = layers[l];
      const std::vector<uint8_t>& k = (*keep)[l];
      const int64_t n = s.rows * s.cols;
      const std::set<int64_t> prot = Protected(s);
      const int64_t want =
          std::min<int64_t>(std::llround(t * static_cast<double>(n)), n - prot.size());
      EXPECT_EQ(Zeros(k), want) << "layer " << l;
      for (int64_t b : prot) EXPECT_TRUE(k[static_cast<size_t>(b)]) << "protected block " << b;
      for (int64_t r = 0; r < s.rows; ++r) {
        int64_t kept = 0;
        for (int64_t c = 0; c < s.cols; ++c) kept += k[static_cast<size_t>(r * s.cols + c)];
        EXPECT_GE(kept, 1) << "row " << r;
      }
      for (int64_t c = 0; c < s.cols; ++c) {
        int64_t kept = 0;
        for (int64_t r = 0; r < s.rows; ++r) kept += k[static_cast<size_t>(r * s.cols + c)];
        EXPECT_GE(kept, 1) << "column " << c;
      }
      if (t == 1.0) {
        EXPECT_EQ(n - Zeros(k), static_cast<int64_t>(prot.size()));
      }
    }
  }
}

// Layer A: seven weak blocks and one strong (mean 17/8, weak ones normalise
// to 0.47); layer B: 1..8 (mean 4.5: 0.22, 0.44, 0.67, 0.89, ...).
std::vector<LayerScores> SkewedLayers() {
  return {{{1, 1, 1, 1, 1, 1, 1, 10}, 1, 8}, {{1, 2, 3, 4, 5, 6, 7, 8}, 1, 8}};
}

TEST(SparseChooseTest, GlobalUsesMeanNormalisedScoresAndCaps) {
  SparsifyOptions o;
  o.global = true;
  o.keep_channels = false;  // one block row would protect every block
  o.sparsity = 0.5;         // 8 of 16 blocks
  auto keep = ChooseBlocks(SkewedLayers(), o);
  ASSERT_TRUE(keep.ok()) << keep.status().ToString();
  // 0.22 (B), 0.44 (B), then six of A's 0.47s.
  EXPECT_EQ(Zeros((*keep)[0]), 6);
  EXPECT_EQ(Zeros((*keep)[1]), 2);
  EXPECT_EQ((*keep)[1], (std::vector<uint8_t>{0, 0, 1, 1, 1, 1, 1, 1}));

  o.max_layer = 0.5;  // A stops at 4; B's 0.67 and 0.89 fill the rest
  keep = ChooseBlocks(SkewedLayers(), o);
  ASSERT_TRUE(keep.ok());
  EXPECT_EQ(Zeros((*keep)[0]), 4);
  EXPECT_EQ(Zeros((*keep)[1]), 4);

  o.max_layer = 1.0;
  o.min_layer = 0.375;  // 3 each first; then A's 0.47s beat B's 0.89
  keep = ChooseBlocks(SkewedLayers(), o);
  ASSERT_TRUE(keep.ok());
  EXPECT_EQ(Zeros((*keep)[0]), 5);
  EXPECT_EQ(Zeros((*keep)[1]), 3);

  o.min_layer = 0.75;  // the minimum wins over the global count: 6 + 6
  keep = ChooseBlocks(SkewedLayers(), o);
  ASSERT_TRUE(keep.ok());
  EXPECT_EQ(Zeros((*keep)[0]), 6);
  EXPECT_EQ(Zeros((*keep)[1]), 6);
}

TEST(SparseChooseTest, GlobalTotalIsExactWithoutCaps) {
  const uint32_t seed = 5;
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  std::vector<LayerScores> layers = {RandomScores(rng, 4, 4), RandomScores(rng, 8, 3),
                                     RandomScores(rng, 2, 9)};
  for (double t : kTargets) {
    SparsifyOptions o;
    o.global = true;
    o.keep_channels = false;
    o.sparsity = t;
    auto keep = ChooseBlocks(layers, o);
    ASSERT_TRUE(keep.ok());
    int64_t z = 0;
    for (const auto& k : *keep) z += Zeros(k);
    EXPECT_EQ(z, std::llround(t * 58)) << "target " << t;
  }
}

TEST(SparseChooseTest, BadOptionsAreErrors) {
  SparsifyOptions o;
  o.sparsity = 1.5;
  EXPECT_EQ(ValidateOptions(o).message(), "--sparsity 1.5 is not in [0, 1]");
  o.sparsity = 0.5;
  o.min_layer = 0.6;
  o.max_layer = 0.4;
  EXPECT_EQ(ValidateOptions(o).message(), "--min-layer 0.6 is above --max-layer 0.4");
  o.min_layer = 0.0;
  o.rules.block_rows = 17;
  EXPECT_FALSE(ValidateOptions(o).ok());
}

// A graph with one layer per rule (shapes need not be inferred).
class SparseLayersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937 rng(seed_);
    std::uniform_real_distribution<float> d(0.05f, 1.0f);
    auto weight = [&](const std::string& name, Shape s) {
      Tensor t(DType::kF32, std::move(s));
      for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng) * (rng() % 2 ? 1 : -1);
      return g_.AddConstant(name, std::move(t));
    };
    ir::Value* x = g_.AddInput("x", DType::kF32, {1, 8, 6, 6});
    ir::Node* a = g_.AddNode("Conv", {x, weight("a.w", {16, 8, 3, 3})}, 1, "conv_a");
    ir::Node* b = g_.AddNode("Conv", {a->outputs[0], weight("b.w", {16, 16, 1, 1})}, 1, "conv_b");
    ir::Node* gr = g_.AddNode("Conv", {b->outputs[0], weight("g.w", {16, 8, 3, 3})}, 1, "conv_g");
    gr->attrs["group"] = int64_t{2};
    ir::Node* sm = g_.AddNode("Conv", {gr->outputs[0], weight("s.w", {4, 16, 1, 1})}, 1, "conv_s");
    ir::Node* ct =
        g_.AddNode("ConvTranspose", {sm->outputs[0], weight("t.w", {16, 16, 2, 2})}, 1, "deconv");
    ir::Node* f = g_.AddNode("Flatten", {ct->outputs[0]}, 1, "flat");
    ir::Node* gemm = g_.AddNode("Gemm", {f->outputs[0], weight("fc.w", {24, 16})}, 1, "fc");
    gemm->attrs["transB"] = int64_t{1};
    ir::Node* mm = g_.AddNode("MatMul", {gemm->outputs[0], weight("mm.w", {24, 12})}, 1, "mm");
    g_.outputs.push_back(mm->outputs[0]);
  }
  std::map<std::string, std::string> Reasons(const LayerRules& r) {
    auto layers = FindLayers(g_, r);
    EXPECT_TRUE(layers.ok()) << layers.status().ToString();
    std::map<std::string, std::string> out;
    if (layers.ok())
      for (const Layer& l : *layers) out[l.node->name] = l.blockable ? "yes" : l.reason;
    return out;
  }
  const uint32_t seed_ = 31;
  ir::Graph g_;
};

TEST_F(SparseLayersTest, DefaultRules) {
  auto r = Reasons({});
  EXPECT_EQ(r.size(), 7u);
  EXPECT_EQ(r["conv_a"], "first conv");
  EXPECT_EQ(r["conv_b"], "yes");
  EXPECT_EQ(r["conv_g"], "grouped conv stays dense");
  EXPECT_EQ(r["conv_s"], "smaller than one 8x8 block");
  EXPECT_EQ(r["deconv"], "ConvTranspose stays dense");
  EXPECT_EQ(r["fc"], "yes");
  EXPECT_EQ(r["mm"], "yes");
  LayerRules rect;
  rect.block_rows = 4;
  rect.block_cols = 16;
  EXPECT_EQ(Reasons(rect)["conv_s"], "yes");
  rect.block_cols = 13;  // mm: CIN 24 ok, COUT 12; fc: CIN 16 ok
  EXPECT_EQ(Reasons(rect)["mm"], "yes");
  rect.block_rows = 13;  // mm: COUT 12 < 13
  EXPECT_EQ(Reasons(rect)["mm"], "smaller than one 13x13 block");
}

TEST_F(SparseLayersTest, IncludeFirstAndExcludes) {
  LayerRules r;
  r.include_first = true;
  r.exclude = {"conv_b", "f.*", "mm\\.w"};  // exact node, regex node, regex weight
  auto got = Reasons(r);
  EXPECT_EQ(got["conv_a"], "yes");
  EXPECT_EQ(got["conv_b"], "excluded by --exclude");
  EXPECT_EQ(got["fc"], "excluded by --exclude");
  EXPECT_EQ(got["mm"], "excluded by --exclude");
  r.exclude = {"conv"};  // whole-name match only: nothing is called "conv"
  got = Reasons(r);
  EXPECT_EQ(got["conv_b"], "yes");
  r.exclude = {"("};
  auto bad = FindLayers(g_, r);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().rfind("--exclude '(': invalid regular expression", 0), 0u)
      << bad.status().message();
}

TEST_F(SparseLayersTest, SparsifyMasksWeightsInPlaceWithTheRightLayouts) {
  SparsifyOptions o;
  o.sparsity = 0.5;
  o.keep_channels = false;
  auto rep = Sparsify(g_, o);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString() << " seed " << seed_;
  EXPECT_EQ(rep->num_blockable, 3);
  // conv_b 2x2 blocks, fc [24,16] transB -> 3x2, mm [24,12] -> COUT 12, CIN 24: 2x3.
  struct Want {
    const char* weight;
    int64_t rows, cols;
    MaskLayout layout;
  };
  for (const Want& w :
       {Want{"b.w", 2, 2, MaskLayout::kOutIn}, Want{"fc.w", 3, 2, MaskLayout::kOutIn},
        Want{"mm.w", 2, 3, MaskLayout::kInOut}}) {
    SCOPED_TRACE(w.weight);
    const ir::Value* v = g_.FindValue(w.weight);
    ASSERT_TRUE(v && v->block_mask);
    EXPECT_EQ(v->block_mask->rows, w.rows);
    EXPECT_EQ(v->block_mask->cols, w.cols);
    EXPECT_EQ(v->block_mask->layout, w.layout);
    EXPECT_EQ(v->block_mask->num_zero(), std::llround(0.5 * double(w.rows * w.cols)));
    // Random non-zero weights: the zero blocks are exactly the masked ones.
    auto z = MaskFromZeroBlocks(v->constant, 8, 8, w.layout);
    ASSERT_TRUE(z.ok());
    EXPECT_EQ(*z, *v->block_mask);
  }
  for (const char* dense : {"a.w", "g.w", "s.w", "t.w"}) {
    EXPECT_FALSE(g_.FindValue(dense)->block_mask) << dense;
  }
  int64_t blocks = 0, zero = 0;
  for (const LayerReport& l : rep->layers)
    if (l.blockable) blocks += l.stats.blocks, zero += l.stats.zero_blocks;
  EXPECT_EQ(rep->total.blocks, blocks);
  EXPECT_EQ(rep->total.zero_blocks, zero);
  EXPECT_EQ(blocks, 4 + 6 + 6);
}

}  // namespace
}  // namespace wbs::sparse
