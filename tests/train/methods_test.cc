// The block-sparsity fine-tuning methods (train/methods*.h, schedule.h,
// fisher.h, sensitivity.h): schedules and exact counts, learned top-k at
// exactly the target, Fisher on a toy problem with a known answer, masks
// that stay zero through training, keep_channels, state for --resume, and a
// small end-to-end fine-tune of fmnist_resnet exported to ONNX.
#include "train/methods.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "onnx/model_io.h"
#include "sparse/sparsify.h"
#include "train/fisher.h"
#include "train/methods_data.h"
#include "train/schedule.h"
#include "train/sensitivity.h"
#include "train/torch_ops.h"
#include "zoo/builder.h"
#include "zoo/zoo.h"

namespace wbs::train {
namespace {

int64_t Round(double f, int64_t n) { return std::llround(f * static_cast<double>(n)); }

// ---- schedules ---------------------------------------------------------

TEST(ScheduleTest, IncrementalZeroesAFractionOfTheKeptBlocksUntilTheTarget) {
  auto s = SparsitySchedule::Incremental(0.5, 0.1, 2);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  double expect = 0.0;
  int64_t events = 0;
  for (int64_t t = 0; t <= 40; ++t) {
    if (t % 2 == 0 && expect < 0.5) {
      expect = std::min(0.5, expect + 0.1 * (1.0 - expect));
      ++events;
    }
    EXPECT_DOUBLE_EQ(s->LevelAt(t), expect) << "tick " << t;
  }
  EXPECT_EQ(s->LevelAt(s->FinalTick()), 0.5);
  EXPECT_LT(s->LevelAt(s->FinalTick() - 1), 0.5);
  // 0.1, 0.19, 0.271, 0.344, 0.41, 0.469, 0.5.
  EXPECT_EQ(events, 7);
  EXPECT_EQ(s->FinalTick(), 12);
  EXPECT_EQ(s->Events().size(), 7u);
  // A target of 1 is reached (no endless geometric approach).
  auto full = SparsitySchedule::Incremental(1.0, 0.2, 1);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->LevelAt(full->FinalTick()), 1.0);
  EXPECT_FALSE(SparsitySchedule::Incremental(0.5, 0.0, 1).ok());
  EXPECT_FALSE(SparsitySchedule::Incremental(1.5, 0.1, 1).ok());
}

TEST(ScheduleTest, CubicFollowsZhuGuptaAndHoldsBetweenUpdates) {
  const double si = 0.1, sf = 0.8;
  auto s = SparsitySchedule::Cubic(si, sf, 10, 100, 5);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->LevelAt(9), 0.0);
  for (int64_t t = 10; t < 110; ++t) {
    const int64_t ev = 10 + (t - 10) / 5 * 5;
    const double r = 1.0 - static_cast<double>(ev - 10) / 100.0;
    EXPECT_NEAR(s->LevelAt(t), sf + (si - sf) * r * r * r, 1e-12) << "tick " << t;
    EXPECT_GE(s->LevelAt(t), s->LevelAt(t - 1));
  }
  EXPECT_EQ(s->LevelAt(110), sf);
  EXPECT_EQ(s->LevelAt(100000), sf);
  EXPECT_EQ(s->FinalTick(), 110);
  EXPECT_FALSE(SparsitySchedule::Cubic(0.9, 0.5, 0, 10, 1).ok());
}

// ---- selection on plain scores -----------------------------------------

BlockLayer FakeLayer(const std::string& name, int64_t rows, int64_t cols) {
  BlockLayer l;
  l.node = name;
  l.weight = name + ".weight";
  l.rows = rows;
  l.cols = cols;
  l.view = {rows * 8, cols * 8, 9, cols * 8 * 9, 9};
  return l;
}

std::vector<std::vector<double>> RandomScores(const std::vector<BlockLayer>& layers,
                                              std::mt19937& rng) {
  std::uniform_real_distribution<double> d(0.01, 1.0);
  std::vector<std::vector<double>> s;
  for (const BlockLayer& l : layers) {
    s.emplace_back();
    for (int64_t b = 0; b < l.num_blocks(); ++b) s.back().push_back(d(rng));
  }
  return s;
}

// Every block-row (and, with `columns`, block-column) of `m` keeps a block.
void ExpectChannelsAlive(const BlockMask& m, const std::string& node, bool columns) {
  for (int64_t r = 0; r < m.rows; ++r) {
    bool any = false;
    for (int64_t c = 0; c < m.cols; ++c) any |= m.Get(r, c);
    EXPECT_TRUE(any) << "row " << r << " of " << node << " all zero";
  }
  for (int64_t c = 0; columns && c < m.cols; ++c) {
    bool any = false;
    for (int64_t r = 0; r < m.rows; ++r) any |= m.Get(r, c);
    EXPECT_TRUE(any) << "column " << c << " of " << node << " all zero";
  }
}

// Selects masks at every event of the paper's incremental schedule to 75%
// (20% of the kept blocks per event) with new scores each event (the weights
// moved while training), fails on any block that an earlier event zeroed and
// this one revives, and hands each event's masks to `check(level, masks)`.
// Returns the last masks.
template <typename Check>
std::vector<BlockMask> RunIncrementalTo75(const std::vector<BlockLayer>& layers,
                                          const SelectOptions& o, std::mt19937& rng, Check check) {
  std::vector<BlockMask> prev;
  for (const BlockLayer& l : layers) prev.push_back(BlockMask::AllKept(8, 8, l.rows, l.cols));
  auto sched = SparsitySchedule::Incremental(0.75, 0.2, 1);
  EXPECT_TRUE(sched.ok()) << sched.status().ToString();
  if (!sched.ok()) return prev;
  for (auto [tick, level] : sched->Events()) {
    auto masks = SelectMasks(layers, RandomScores(layers, rng), o, level, &prev);
    EXPECT_TRUE(masks.ok()) << masks.status().ToString();
    if (!masks.ok()) return prev;
    for (size_t i = 0; i < layers.size(); ++i)
      for (size_t b = 0; b < prev[i].keep.size(); ++b)
        if (!prev[i].keep[b]) {
          EXPECT_FALSE((*masks)[i].keep[b]) << "revived block " << b << " of " << layers[i].node;
        }
    check(level, *masks);
    prev = *masks;
  }
  return prev;
}

TEST(MethodsSelectTest, IncrementalScheduleHitsExactCountsAndNeverRevives) {
  const uint32_t seed = 5;
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  const std::vector<BlockLayer> layers = {FakeLayer("a", 4, 4), FakeLayer("b", 16, 8),
                                          FakeLayer("c", 3, 7)};
  for (bool keep_channels : {false, true}) {
    SelectOptions o;
    o.sparsity = 0.75;
    o.keep_channels = keep_channels;
    auto last =
        RunIncrementalTo75(layers, o, rng, [&](double level, const std::vector<BlockMask>& masks) {
          for (size_t i = 0; i < layers.size(); ++i) {
            if (keep_channels) {
              ExpectChannelsAlive(masks[i], layers[i].node, /*columns=*/true);
            } else {
              EXPECT_EQ(masks[i].num_zero(), Round(level, layers[i].num_blocks()));
            }
          }
        });
    if (!keep_channels) {
      for (size_t i = 0; i < layers.size(); ++i)
        EXPECT_EQ(last[i].num_zero(), Round(0.75, layers[i].num_blocks()));
    }
  }
}

TEST(MethodsSelectTest, CubicAndGlobalSchedulesStayMonotoneAndEndOnTheTarget) {
  std::mt19937 rng(11);
  const std::vector<BlockLayer> layers = {FakeLayer("a", 8, 8), FakeLayer("b", 4, 16)};
  SelectOptions o;
  o.sparsity = 0.9;
  o.global = true;
  o.keep_channels = false;
  auto sched = SparsitySchedule::Cubic(0.0, 0.9, 0, 200, 10);
  ASSERT_TRUE(sched.ok());
  std::vector<BlockMask> prev;
  for (const BlockLayer& l : layers) prev.push_back(BlockMask::AllKept(8, 8, l.rows, l.cols));
  for (auto [tick, level] : sched->Events()) {
    auto masks = SelectMasks(layers, RandomScores(layers, rng), o, level, &prev);
    ASSERT_TRUE(masks.ok()) << masks.status().ToString();
    EXPECT_EQ((*masks)[0].num_zero() + (*masks)[1].num_zero(), Round(level, 128));
    prev = *masks;
  }
  EXPECT_EQ(prev[0].num_zero() + prev[1].num_zero(), Round(0.9, 128));
}

TEST(MethodsSelectTest, PerLayerTargetsGiveEachLayerItsCount) {
  std::mt19937 rng(3);
  const std::vector<BlockLayer> layers = {FakeLayer("a", 4, 4), FakeLayer("b", 8, 8),
                                          FakeLayer("c", 2, 5)};
  SelectOptions o;
  o.sparsity = 0.5;
  o.keep_channels = false;
  o.per_layer = {{"a", 0.25}, {"b.weight", 0.75}};  // node or weight name; c: the default
  auto masks = SelectMasks(layers, RandomScores(layers, rng), o, 0.5);
  ASSERT_TRUE(masks.ok()) << masks.status().ToString();
  EXPECT_EQ((*masks)[0].num_zero(), 4);
  EXPECT_EQ((*masks)[1].num_zero(), 48);
  EXPECT_EQ((*masks)[2].num_zero(), 5);
  // Half-way through a schedule every target is halved.
  masks = SelectMasks(layers, RandomScores(layers, rng), o, 0.25);
  ASSERT_TRUE(masks.ok());
  EXPECT_EQ((*masks)[1].num_zero(), 24);
  o.per_layer = {{"nope", 0.5}};
  EXPECT_FALSE(SelectMasks(layers, RandomScores(layers, rng), o, 0.5).ok());
  o.per_layer = {{"a", 0.5}};
  o.global = true;
  EXPECT_FALSE(SelectMasks(layers, RandomScores(layers, rng), o, 0.5).ok());
}

// keep_channels caps a 4x4 grid below 12 zero blocks (the best of each row
// and column stay), a 2x16 grid at 16: with fill_target the other layers take
// the shortfall so the model reaches the level exactly, also along a
// monotone schedule; without it the model stays below.
TEST(MethodsSelectTest, FillTargetMovesWhatKeepChannelsCapsToOtherLayers) {
  std::mt19937 rng(7);
  const std::vector<BlockLayer> layers = {FakeLayer("small", 4, 4), FakeLayer("fc", 2, 16),
                                          FakeLayer("big", 16, 16), FakeLayer("mid", 8, 16)};
  const int64_t all = 16 + 32 + 256 + 128;
  SelectOptions o;
  o.sparsity = 0.75;
  o.keep_channels = true;
  auto capped = SelectMasks(layers, RandomScores(layers, rng), o, 0.75);
  ASSERT_TRUE(capped.ok()) << capped.status().ToString();
  // The fc alone keeps 8 blocks more than 75% of its 32.
  EXPECT_LE(std::llround(BlockSparsity(*capped) * all), Round(0.75, all) - 8);
  o.fill_target = true;
  auto prev =
      RunIncrementalTo75(layers, o, rng, [&](double level, const std::vector<BlockMask>& masks) {
        int64_t zero = 0;
        for (size_t i = 0; i < layers.size(); ++i) {
          zero += masks[i].num_zero();
          ExpectChannelsAlive(masks[i], layers[i].node, /*columns=*/false);
        }
        EXPECT_EQ(zero, Round(level, all)) << "level " << level;
      });
  EXPECT_LT(prev[0].num_zero(), Round(0.75, 16));  // capped
  EXPECT_EQ(prev[1].num_zero(), 16);               // capped: 16 column-best blocks
  EXPECT_GT(prev[2].num_zero(), Round(0.75, 256));
  // Nothing is capped at 25%: every layer at its own count, as without it.
  auto low = SelectMasks(layers, RandomScores(layers, rng), o, 0.25);
  ASSERT_TRUE(low.ok());
  for (size_t i = 0; i < layers.size(); ++i)
    EXPECT_EQ((*low)[i].num_zero(), Round(0.25, layers[i].num_blocks()));
}

TEST(MethodsSelectTest, BlockSumsAndExpandBlocksFollowTheLayout) {
  // Conv [20, 12, 3, 3] with 8x8 blocks: ragged rows (20 = 8+8+4) and cols.
  BlockLayer l;
  l.rows = 3;
  l.cols = 2;
  l.view = {20, 12, 9, 12 * 9, 9};
  torch::Tensor w = torch::arange(20 * 12 * 9, torch::kFloat64).reshape({20, 12, 3, 3});
  std::vector<double> sums = BlockSums(w, l);
  ASSERT_EQ(sums.size(), 6u);
  for (int64_t r = 0; r < 3; ++r) {
    for (int64_t c = 0; c < 2; ++c) {
      const double expect = w.slice(0, r * 8, std::min<int64_t>(20, r * 8 + 8))
                                .slice(1, c * 8, std::min<int64_t>(12, c * 8 + 8))
                                .sum()
                                .item<double>();
      EXPECT_DOUBLE_EQ(sums[static_cast<size_t>(r * 2 + c)], expect) << r << "," << c;
    }
  }
  torch::Tensor blocks = torch::tensor({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}).reshape({3, 2});
  torch::Tensor e = ExpandBlocks(blocks, l, w.to(torch::kFloat32));
  ASSERT_EQ(e.sizes(), (std::vector<int64_t>{20, 12, 1, 1}));
  EXPECT_EQ(e[19][11][0][0].item<float>(), 6.f);
  EXPECT_EQ(e[8][7][0][0].item<float>(), 3.f);
  // MatMul weight [CIN=12, COUT=20] (kInOut): the transpose.
  l.layout = MaskLayout::kInOut;
  l.view = {20, 12, 1, 1, 20};
  torch::Tensor e2 = ExpandBlocks(blocks, l, torch::zeros({12, 20}));
  ASSERT_EQ(e2.sizes(), (std::vector<int64_t>{12, 20}));
  EXPECT_EQ(e2[11][19].item<float>(), 6.f);
  EXPECT_EQ(e2[0][8].item<float>(), 3.f);
}

// ---- toy networks and data ---------------------------------------------

// u8 images [n, c, s, s]; channels >= `zero_from` are all zero. Labels are a
// function of the first channel's mean, so a network can learn them.
data::Dataset ToyData(int64_t n, int64_t c, int64_t s, int classes, int64_t zero_from,
                      uint64_t seed) {
  data::Dataset d;
  d.images = Tensor(DType::kU8, {n, c, s, s});
  std::mt19937_64 rng(seed);
  uint8_t* p = d.images.data<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    int64_t sum = 0;
    for (int64_t ch = 0; ch < c; ++ch) {
      for (int64_t k = 0; k < s * s; ++k) {
        const uint8_t v = ch < zero_from ? static_cast<uint8_t>(rng() % 256) : 0;
        p[((i * c + ch) * s * s) + k] = v;
        if (ch == 0) sum += v;
      }
    }
    d.labels.push_back(static_cast<int32_t>((sum * classes) / (256 * s * s)) % classes);
  }
  d.num_classes = classes;
  for (int k = 0; k < classes; ++k) d.class_names.push_back(std::to_string(k));
  d.source = "toy";
  return d;
}

data::Normalization Identity(int64_t c) {
  return {std::vector<float>(static_cast<size_t>(c), 0.f),
          std::vector<float>(static_cast<size_t>(c), 1.f)};
}

// input [1, 2, 4, 4] -> flatten -> fc 32 -> 32 (logits): one Gemm, 4x4 blocks of 8x8.
std::unique_ptr<ir::Graph> ToyLinear(float magnitude) {
  auto g = std::make_unique<ir::Graph>();
  g->opset = 17;
  zoo::NetBuilder b(*g, 1);
  ir::Value* x = b.Flatten(b.Input(1, 2, 4), "flatten");
  ir::Value* logits = b.Linear(x, "fc", 32, g->AddValue("logits"));
  g->outputs.push_back(logits);
  EXPECT_TRUE(b.status().ok()) << b.status().ToString();
  // Every weight of the same magnitude: L2 cannot tell blocks apart.
  ir::Value* w = g->FindValue("fc.weight");
  float* d = w->constant.data<float>();
  for (int64_t i = 0; i < w->constant.numel(); ++i)
    d[i] = (i * 7919 % 3 == 0) ? -magnitude : magnitude;
  EXPECT_TRUE(g->TopologicalSort().ok());
  return g;
}

// input [1, 8, 6, 6] -> conv 8->16 (3x3) -> bn -> relu -> conv 16->32 -> bn ->
// relu -> gap -> fc 32 -> 10.
std::unique_ptr<ir::Graph> ToyConvNet() {
  auto g = std::make_unique<ir::Graph>();
  g->opset = 17;
  zoo::NetBuilder b(*g, 3);
  ir::Value* x = b.Input(1, 8, 6);
  x = b.Relu(b.BatchNorm(b.Conv(x, "c1", zoo::ConvK(16, 3, 1, 1)), "bn1"), "r1");
  x = b.Relu(b.BatchNorm(b.Conv(x, "c2", zoo::ConvK(32, 3, 1, 1)), "bn2"), "r2");
  x = b.Flatten(b.GlobalAveragePool(x, "gap"), "flatten");
  g->outputs.push_back(b.Linear(x, "fc", 10, g->AddValue("logits")));
  EXPECT_TRUE(b.status().ok()) << b.status().ToString();
  EXPECT_TRUE(g->TopologicalSort().ok());
  return g;
}

std::shared_ptr<GraphModule> MakeModule(const ir::Graph& g) {
  auto m = GraphModule::Create(g);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? *m : nullptr;
}

TrainOptions QuickOptions(int epochs, int64_t c) {
  TrainOptions o;
  o.epochs = epochs;
  o.batch_size = 32;
  o.lr = 0.05;
  o.warmup_epochs = 0;
  o.augment = {};
  o.normalization = Identity(c);
  o.validation_fraction = 0.125;
  o.progress = false;
  o.threads = 1;
  o.seed = 3;
  return o;
}

// ---- Fisher on a toy problem with a known answer ------------------------

TEST(FisherTest, BlocksWhoseInputsAreAlwaysZeroRankLowest) {
  auto g = ToyLinear(0.05f);
  auto m = MakeModule(*g);
  ASSERT_TRUE(m);
  sparse::LayerRules rules;
  auto layers = FindBlockLayers(*m, rules);
  ASSERT_TRUE(layers.ok()) << layers.status().ToString();
  ASSERT_EQ(layers->size(), 1u);
  // Features 16..31 (channel 1) are always zero: block columns 2 and 3 never
  // influence the loss, whatever their weights.
  data::Dataset d = ToyData(64, 2, 4, 32, /*zero_from=*/1, 17);
  FisherOptions fo;
  fo.samples = 64;
  fo.micro_batch = 4;
  auto f = AccumulateFisher(*m, *layers, d, Identity(2), fo, torch::kCPU);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  SelectOptions so;
  so.sparsity = 0.5;
  so.keep_channels = false;
  for (bool weighted : {true, false}) {
    auto scores = FisherBlockScores(*m, *layers, *f, weighted);
    for (int64_t r = 0; r < 4; ++r) {
      for (int64_t c = 0; c < 4; ++c) {
        const double s = scores[0][static_cast<size_t>(r * 4 + c)];
        if (c >= 2) {
          EXPECT_EQ(s, 0.0);
        } else {
          EXPECT_GT(s, 0.0);
        }
      }
    }
    auto masks = SelectMasks(*layers, scores, so, 0.5);
    ASSERT_TRUE(masks.ok());
    for (int64_t r = 0; r < 4; ++r)
      for (int64_t c = 0; c < 4; ++c) EXPECT_EQ((*masks)[0].Get(r, c), c < 2) << r << "," << c;
  }
  // L2 sees equal magnitudes and cannot find them (ties go by index).
  auto l2 = MagnitudeScores(*m, *layers, sparse::Score::kL2);
  ASSERT_TRUE(l2.ok());
  auto by_l2 = SelectMasks(*layers, *l2, so, 0.5);
  ASSERT_TRUE(by_l2.ok());
  EXPECT_FALSE((*by_l2)[0].Get(0, 0));
}

// ---- methods through the trainer ---------------------------------------

struct MethodRun {
  std::shared_ptr<GraphModule> module;
  std::unique_ptr<SparsityMethod> method;
  std::unique_ptr<Trainer> trainer;
};

MethodRun MakeRun(const MethodOptions& mo, int epochs, TrainHooks* extra = nullptr) {
  MethodRun run;
  auto g = ToyConvNet();
  run.module = MakeModule(*g);
  if (!run.module) return run;
  auto method = SparsityMethod::Create(run.module, mo);
  EXPECT_TRUE(method.ok()) << method.status().ToString();
  if (!method.ok()) return run;
  run.method = std::move(*method);
  TrainHooks h = run.method->Hooks();
  if (extra && extra->on_step_end) {
    auto inner = h.on_step_end;
    auto outer = extra->on_step_end;
    h.on_step_end = [inner, outer](Trainer& t, int64_t s) {
      WBS_RETURN_IF_ERROR(inner(t, s));
      return outer(t, s);
    };
  }
  auto t = Trainer::Create(run.module, ToyData(256, 8, 6, 10, 8, 5), data::Dataset(),
                           QuickOptions(epochs, 8), h);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  if (t.ok()) run.trainer = std::move(*t);
  return run;
}

MethodOptions Options(Method m, double sparsity, bool keep_channels = false) {
  MethodOptions mo;
  mo.method = m;
  mo.rules.include_first = true;
  mo.select.sparsity = sparsity;
  mo.select.keep_channels = keep_channels;
  return mo;
}

// Every masked block of every layer is exactly zero in the weights.
void ExpectMaskedBlocksZero(MethodRun& run) {
  for (const BlockLayer& l : run.method->layers()) {
    auto mask = run.module->mask(l.weight);
    ASSERT_TRUE(mask.has_value()) << l.weight;
    auto w = internal::FromTorch(run.module->weight(l.weight).detach());
    ASSERT_TRUE(w.ok());
    Status st = CheckMaskAgainstWeight(*mask, *w, l.weight);
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
}

TEST(MethodsTest, OneshotMasksStayZeroThroughEveryStepAndKeepChannels) {
  int64_t checked = 0;
  MethodRun* current = nullptr;
  TrainHooks extra;
  extra.on_step_end = [&](Trainer&, int64_t) {
    ExpectMaskedBlocksZero(*current);
    ++checked;
    return Status::Ok();
  };
  MethodRun run = MakeRun(Options(Method::kOneShot, 0.5, /*keep_channels=*/true), 2, &extra);
  ASSERT_TRUE(run.trainer);
  current = &run;
  auto r = run.trainer->Run();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GT(checked, 0);
  for (const BlockMask& m : run.method->CurrentMasks()) {
    for (int64_t row = 0; row < m.rows; ++row) {
      bool any = false;
      for (int64_t c = 0; c < m.cols; ++c) any |= m.Get(row, c);
      EXPECT_TRUE(any);
    }
    for (int64_t c = 0; c < m.cols; ++c) {
      bool any = false;
      for (int64_t row = 0; row < m.rows; ++row) any |= m.Get(row, c);
      EXPECT_TRUE(any);
    }
  }
  // c1: 2x1 blocks, all protected; c2: 4x2, fc: 2x4 -> 4 each minus protection.
  EXPECT_GT(BlockSparsity(run.method->CurrentMasks()), 0.2);
}

TEST(MethodsTest, IncrementalReachesTheExactTargetAtItsLastEvent) {
  MethodOptions mo = Options(Method::kIncremental, 0.5);
  mo.step_fraction = 0.25;  // 0.25, 0.4375, 0.5: events at epochs 0, 1, 2
  MethodRun run = MakeRun(mo, 4);
  ASSERT_TRUE(run.trainer);
  auto r = run.trainer->Run();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(run.method->Finish(*run.trainer).ok());
  EXPECT_EQ(run.method->level(), 0.5);
  for (size_t i = 0; i < run.method->layers().size(); ++i) {
    const BlockLayer& l = run.method->layers()[i];
    EXPECT_EQ(run.method->CurrentMasks()[i].num_zero(), Round(0.5, l.num_blocks())) << l.node;
  }
  ExpectMaskedBlocksZero(run);
}

TEST(MethodsTest, CubicScheduleReachesTheTargetOverSteps) {
  MethodOptions mo = Options(Method::kIncremental, 0.75);
  mo.schedule = ScheduleKind::kCubic;
  mo.cubic_end = 0.5;
  mo.cubic_every = 1;
  MethodRun run = MakeRun(mo, 2);
  ASSERT_TRUE(run.trainer);
  auto r = run.trainer->Run();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(run.method->level(), 0.75);
  for (size_t i = 0; i < run.method->layers().size(); ++i)
    EXPECT_EQ(run.method->CurrentMasks()[i].num_zero(),
              Round(0.75, run.method->layers()[i].num_blocks()));
}

TEST(MethodsTest, LearnedTopKHoldsExactlyTheTargetAtEveryStepThenFixesTheMask) {
  for (LearnedKind kind : {LearnedKind::kTopK, LearnedKind::kProx}) {
    SCOPED_TRACE(LearnedKindName(kind));
    MethodOptions mo = Options(Method::kLearned, 0.5);
    mo.learned = kind;
    mo.learn_epochs = 1;
    mo.score_lr = 0.05;
    int64_t steps = 0;
    MethodRun* current = nullptr;
    TrainHooks extra;
    extra.on_step_end = [&](Trainer& t, int64_t) {
      if (kind == LearnedKind::kTopK && t.epoch() < 1) {
        // The forward mask is the hard top-k: exactly the target per layer.
        const TrainHooks h = current->method->Hooks();
        EXPECT_DOUBLE_EQ(h.sparsity(t), 0.5);
      }
      ++steps;
      return Status::Ok();
    };
    MethodRun run = MakeRun(mo, 2, &extra);
    ASSERT_TRUE(run.trainer);
    current = &run;
    auto r = run.trainer->Run();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_GT(steps, 0);
    ASSERT_TRUE(run.method->Finish(*run.trainer).ok());
    for (size_t i = 0; i < run.method->layers().size(); ++i) {
      const BlockLayer& l = run.method->layers()[i];
      EXPECT_EQ(run.method->CurrentMasks()[i].num_zero(), Round(0.5, l.num_blocks())) << l.node;
    }
    ExpectMaskedBlocksZero(run);
  }
}

TEST(MethodsTest, LearnedStateRoundTripsForResume) {
  MethodOptions mo = Options(Method::kLearned, 0.5);
  mo.learn_epochs = 5;  // still learning at the end of the 1-epoch run
  mo.score_lr = 0.5;
  MethodRun run = MakeRun(mo, 1);
  ASSERT_TRUE(run.trainer);
  ASSERT_TRUE(run.trainer->Run().ok());
  const TrainHooks h = run.method->Hooks();
  const std::string blob = h.save_state(*run.trainer);
  ASSERT_FALSE(run.method->learned_masks().empty());
  // A fresh method restores the scores, hence the same hard masks (--resume).
  MethodRun other = MakeRun(mo, 1);
  ASSERT_TRUE(other.trainer);
  const TrainHooks h2 = other.method->Hooks();
  Status st = h2.load_state(*other.trainer, blob);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(other.method->level(), run.method->level());
  EXPECT_EQ(other.method->learned_masks(), run.method->learned_masks());
  const std::string again = h2.save_state(*other.trainer);
  EXPECT_EQ(again.substr(0, again.find('\0')), blob.substr(0, blob.find('\0')));
  // The wrong method's state is refused.
  MethodRun fisher = MakeRun(Options(Method::kFisher, 0.5), 1);
  ASSERT_TRUE(fisher.trainer);
  EXPECT_FALSE(fisher.method->Hooks().load_state(*fisher.trainer, blob).ok());
}

TEST(MethodsTest, FisherAndBnRecalibrationRunThroughTheTrainer) {
  MethodOptions mo = Options(Method::kFisher, 0.5);
  mo.fisher_samples = 64;
  mo.bn_recal_batches = 2;
  mo.eval_after_mask = true;
  MethodRun run = MakeRun(mo, 1);
  ASSERT_TRUE(run.trainer);
  auto r = run.trainer->Run();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GT(run.method->after_mask().count, 0);
  for (size_t i = 0; i < run.method->layers().size(); ++i)
    EXPECT_EQ(run.method->CurrentMasks()[i].num_zero(),
              Round(0.5, run.method->layers()[i].num_blocks()));
  ExpectMaskedBlocksZero(run);
}

TEST(MethodsSelectTest, RaggedBlocksScoreLikeFullBlocksOfTheSameMagnitude) {
  // ToyConvNet's fc is 10 x 32: block row 1 holds only classes 8-9 (2 x 8).
  auto g = ToyConvNet();
  auto m = MakeModule(*g);
  ASSERT_TRUE(m);
  {
    torch::NoGradGuard no_grad;
    m->weight("fc.weight").fill_(0.1f);
  }
  sparse::LayerRules rules;
  rules.include_first = true;
  auto layers = FindBlockLayers(*m, rules);
  ASSERT_TRUE(layers.ok()) << layers.status().ToString();
  size_t fc = layers->size();
  for (size_t i = 0; i < layers->size(); ++i)
    if ((*layers)[i].weight == "fc.weight") fc = i;
  ASSERT_LT(fc, layers->size());
  ASSERT_EQ((*layers)[fc].rows, 2);
  for (sparse::Score score : {sparse::Score::kL2, sparse::Score::kL1, sparse::Score::kMeanAbs}) {
    SCOPED_TRACE(sparse::ScoreName(score));
    auto s = MagnitudeScores(*m, *layers, score);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    const std::vector<double>& f = (*s)[fc];
    ASSERT_EQ(f.size(), 8u);
    for (double v : f) EXPECT_NEAR(v, f[0], 1e-9 * f[0]);
  }
  // BN-scaled scores: c2 feeds bn2 (|gamma| / sqrt(var + eps) per output
  // channel); the fc has no BN after it.
  for (const BlockLayer& l : *layers) {
    auto scale = BatchNormScale(*m, l);
    if (l.weight != "c2.weight") {
      EXPECT_EQ(scale.has_value(), l.weight == "c1.weight") << l.weight;
      continue;
    }
    ASSERT_TRUE(scale.has_value());
    const ir::Value* bn_out = m->graph().FindValue("bn2");
    ASSERT_TRUE(bn_out && bn_out->producer);
    const double eps = bn_out->producer->GetFloat("epsilon", 1e-5f);
    torch::Tensor expect =
        m->weight("bn2.weight").detach().abs() / (m->buffer("bn2.running_var") + eps).sqrt();
    EXPECT_TRUE(torch::allclose(*scale, expect)) << *scale << expect;
  }
  // Without the scaling, 50% of this layer would be (nearly) all of row 1.
  SelectOptions so;
  so.sparsity = 0.5;
  so.keep_channels = false;
  std::vector<double> l2(8, 1.0);
  l2[4] = 1.01;  // one full-magnitude block of row 1 just above the rest
  std::vector<std::vector<double>> scores(layers->size());
  for (size_t i = 0; i < layers->size(); ++i)
    scores[i].assign(static_cast<size_t>((*layers)[i].num_blocks()), 1.0);
  scores[fc] = l2;
  auto masks = SelectMasks(*layers, scores, so, 0.5);
  ASSERT_TRUE(masks.ok());
  EXPECT_TRUE((*masks)[fc].Get(1, 0));
}

// A trained model, masked to 50% and BN-recalibrated without any retraining,
// must stay far above chance, and the zeroed blocks must be exactly the
// lowest-scoring ones of the weights forward() runs. Catches masks applied to
// the wrong blocks (layout, transposition, ragged edges), a recalibration
// that leaves stale or train-mode statistics, and evaluation in train mode.
TEST(MethodsTest, MaskingWithBnRecalibrationKeepsATrainedModelWellAboveChance) {
  constexpr int kClasses = 4;
  const data::Dataset d = ToyData(640, 8, 6, kClasses, /*zero_from=*/8, 21);
  auto g = ToyConvNet();
  auto module = MakeModule(*g);
  ASSERT_TRUE(module);
  TrainOptions o = QuickOptions(8, 8);
  o.lr = 0.1;
  o.validation_fraction = 0.25;
  {
    auto t = Trainer::Create(module, d, data::Dataset(), o);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    ASSERT_TRUE((*t)->Run().ok());
  }
  MethodOptions mo = Options(Method::kOneShot, 0.5, /*keep_channels=*/false);
  mo.rules.include_first = false;
  mo.bn_recal_batches = 8;
  auto method = SparsityMethod::Create(module, mo);
  ASSERT_TRUE(method.ok()) << method.status().ToString();
  auto t = Trainer::Create(module, d, data::Dataset(), o, (*method)->Hooks());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto dense = (*t)->Evaluate((*t)->val_set());
  ASSERT_TRUE(dense.ok());
  ASSERT_GT(dense->accuracy, 0.8) << "the dense toy model did not learn";
  auto scores = MagnitudeScores(*module, (*method)->layers(), sparse::Score::kL2);
  ASSERT_TRUE(scores.ok());
  torch::Tensor bn_mean = module->buffer("bn2.running_mean").clone();

  ASSERT_TRUE((*method)->OnEpochBegin(**t, 0).ok());
  EXPECT_FALSE(torch::equal(bn_mean, module->buffer("bn2.running_mean")))
      << "BN statistics were not recalibrated";
  for (size_t i = 0; i < (*method)->layers().size(); ++i) {
    const BlockLayer& l = (*method)->layers()[i];
    const BlockMask m = (*method)->CurrentMasks()[i];
    EXPECT_EQ(m.num_zero(), Round(0.5, l.num_blocks())) << l.node;
    double max_zeroed = -1, min_kept = 1e300;
    for (int64_t b = 0; b < l.num_blocks(); ++b) {
      const double s = (*scores)[i][static_cast<size_t>(b)];
      if (m.keep[static_cast<size_t>(b)]) {
        min_kept = std::min(min_kept, s);
      } else {
        max_zeroed = std::max(max_zeroed, s);
      }
    }
    EXPECT_LE(max_zeroed, min_kept) << l.node;
    // The zeroed blocks are zero in the weights forward() uses.
    std::vector<double> after = BlockSums(module->weight(l.weight).detach().abs(), l);
    for (int64_t b = 0; b < l.num_blocks(); ++b) {
      EXPECT_EQ(after[static_cast<size_t>(b)] == 0.0, !m.keep[static_cast<size_t>(b)])
          << l.node << " block " << b;
    }
  }
  auto after = (*t)->Evaluate((*t)->val_set());
  ASSERT_TRUE(after.ok());
  EXPECT_GT(after->accuracy, 2.5 / kClasses) << "dense " << dense->accuracy;
}

// ---- sensitivity budget -------------------------------------------------

TEST(SensitivityTest, AllocationMeetsTheBudgetAndFavoursInsensitiveLayers) {
  SensitivityReport r;
  r.dense.accuracy = 0.9;
  r.levels = {0.25, 0.5, 0.75, 0.9};
  auto layer = [](const std::string& n, int64_t blocks, std::vector<double> acc) {
    LayerSensitivity l;
    l.node = n;
    l.blocks = blocks;
    for (double a : acc) l.eval.push_back({0.0, a, 100});
    return l;
  };
  r.layers = {layer("robust", 100, {0.9, 0.9, 0.89, 0.88}),
              layer("fragile", 100, {0.85, 0.6, 0.3, 0.1}),
              layer("mid", 200, {0.9, 0.88, 0.8, 0.7})};
  for (double target : {0.2, 0.5, 0.7}) {
    auto t = AllocateTargets(r, target);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    const double mean = ((*t)["robust"] * 100 + (*t)["fragile"] * 100 + (*t)["mid"] * 200) / 400;
    EXPECT_NEAR(mean, target, 1e-9);
    EXPECT_GE((*t)["robust"], (*t)["mid"]);
    EXPECT_GE((*t)["mid"], (*t)["fragile"]);
  }
  EXPECT_FALSE(AllocateTargets(r, 0.95).ok());
}

// ---- end to end on Fashion-MNIST ---------------------------------------

TEST(MethodsEndToEndTest, FinetuneFmnistResnetExportsMasksTheImporterRecovers) {
  auto full = data::LoadFashionMnist(data::Split::kTrain);
  if (!full.ok()) GTEST_SKIP() << "no Fashion-MNIST: " << full.status().ToString();
  std::vector<int64_t> idx(320);
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
  data::Dataset small = data::Subset(*full, idx);
  zoo::ZooOptions zo;
  zo.seed = 1;
  auto g = zoo::BuildModel("fmnist_resnet", zo);
  ASSERT_TRUE(g.ok());
  auto module = MakeModule(**g);
  ASSERT_TRUE(module);
  MethodOptions mo;
  mo.method = Method::kOneShot;
  mo.select.sparsity = 0.5;
  mo.bn_recal_batches = 1;
  auto method = SparsityMethod::Create(module, mo);
  ASSERT_TRUE(method.ok()) << method.status().ToString();
  TrainOptions o = QuickOptions(1, 1);
  o.normalization = data::FashionMnistNormalization();
  o.batch_size = 64;
  o.lr = 0.01;
  auto t = Trainer::Create(module, small, data::Dataset(), o, (*method)->Hooks());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto r = (*t)->Run();
  ASSERT_TRUE(r.ok()) << r.status().ToString();

  auto exported = module->ExportGraph(/*fold_bn=*/true);
  ASSERT_TRUE(exported.ok()) << exported.status().ToString();
  auto bytes = onnxio::ExportModelToBytes(**exported);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto back = onnxio::ImportModelFromBytes(*bytes, "finetuned.onnx");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  int64_t layers = 0;
  for (const BlockLayer& l : (*method)->layers()) {
    auto mask = module->mask(l.weight);
    ASSERT_TRUE(mask.has_value()) << l.weight;
    // keep_channels may cap a layer below the target, never above it.
    EXPECT_GT(mask->num_zero(), 0) << l.node;
    EXPECT_LE(mask->num_zero(), Round(0.5, l.num_blocks())) << l.node;
    const ir::Value* v = (*back)->FindValue(l.weight);
    ASSERT_NE(v, nullptr) << l.weight;
    ASSERT_TRUE(v->block_mask) << l.weight << " lost its mask";
    EXPECT_EQ(*v->block_mask, *mask) << l.weight;
    Status st = CheckMaskAgainstWeight(*v->block_mask, v->constant, l.weight);
    EXPECT_TRUE(st.ok()) << st.ToString();
    ++layers;
  }
  EXPECT_GE(layers, 10);
}

}  // namespace
}  // namespace wbs::train
