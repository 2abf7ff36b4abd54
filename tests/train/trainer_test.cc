// The training loop (train/trainer.h): LR schedules, seeded bit-identical
// runs, hooks, masks through steps, checkpoint/resume equal to an
// uninterrupted run, and two data-parallel ranks (threads of this process
// over 127.0.0.1) holding identical weights after every step.
#include "train/trainer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <unistd.h>

#include "ir/op_schema.h"
#include "train/checkpoint.h"
#include "train/distributed.h"
#include "zoo/builder.h"

namespace wbs::train {
namespace {

namespace fs = std::filesystem;

// A small CNN on 1x8x8 images: conv 1->8, BN, ReLU, conv 8->16 (stride 2,
// blockable 8x8), BN, ReLU, GAP, FC 16->4.
std::unique_ptr<ir::Graph> TinyNet(uint64_t seed, int64_t width = 16) {
  auto g = std::make_unique<ir::Graph>();
  g->name = "tiny";
  g->opset = 17;
  zoo::NetBuilder b(*g, seed);
  ir::Value* x = b.Input(1, 1, 8);
  x = b.Conv(x, "conv1", zoo::ConvK(8, 3, 1, 1));
  x = b.BatchNorm(x, "bn1");
  x = b.Relu(x, "relu1");
  x = b.Conv(x, "conv2", zoo::ConvK(width, 3, 2, 1));
  x = b.BatchNorm(x, "bn2");
  x = b.Relu(x, "relu2");
  x = b.GlobalAveragePool(x, "avgpool");
  x = b.Flatten(x, "flatten");
  ir::Value* logits = b.Linear(x, "fc", 4, g->AddValue("logits"));
  g->outputs.push_back(logits);
  EXPECT_TRUE(b.status().ok()) << b.status().ToString();
  EXPECT_TRUE(g->TopologicalSort().ok());
  EXPECT_TRUE(g->Verify().ok());
  EXPECT_TRUE(ir::InferShapes(*g).ok());
  return g;
}

// 4 classes of 8x8 images: a bright quadrant (the class) over noise.
data::Dataset Synthetic(int64_t n, uint64_t seed) {
  data::Dataset d;
  d.images = Tensor(DType::kU8, {n, 1, 8, 8});
  d.num_classes = 4;
  d.class_names = {"0", "1", "2", "3"};
  d.source = "synthetic";
  std::mt19937_64 rng(seed);
  uint8_t* px = d.images.data<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    int c = static_cast<int>(rng() % 4);
    d.labels.push_back(c);
    for (int y = 0; y < 8; ++y) {
      for (int x = 0; x < 8; ++x) {
        bool in = (y / 4) * 2 + (x / 4) == c;
        px[i * 64 + y * 8 + x] = static_cast<uint8_t>((in ? 140 : 0) + rng() % 100);
      }
    }
  }
  return d;
}

std::shared_ptr<GraphModule> MakeModule(uint64_t seed = 3) {
  auto g = TinyNet(seed);
  auto m = GraphModule::Create(*g);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? *m : nullptr;
}

TrainOptions SmallOptions() {
  TrainOptions o;
  o.epochs = 3;
  o.batch_size = 32;
  o.lr = 0.05;
  o.warmup_epochs = 0.5;
  o.threads = 1;
  o.seed = 11;
  o.augment = data::Augmentation{1, false};
  o.validation_fraction = 0.2;
  o.progress = false;
  return o;
}

std::vector<torch::Tensor> Snapshot(GraphModule& m) {
  std::vector<torch::Tensor> v;
  for (auto& p : m.parameters()) v.push_back(p.detach().clone());
  for (auto& b : m.buffers()) v.push_back(b.detach().clone());
  return v;
}

bool BitEqual(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!torch::equal(a[i], b[i])) return false;
  }
  return true;
}

fs::path TempDir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("wbs_trainer_test_" + name + "_" +
                                            std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

TEST(TrainerTest, LrScheduleWarmupCosineStep) {
  auto m = MakeModule();
  ASSERT_NE(m, nullptr);
  TrainOptions o = SmallOptions();
  o.epochs = 4;
  o.lr = 0.1;
  o.warmup_epochs = 1;
  o.validation_fraction = 0;
  auto t = Trainer::Create(m, Synthetic(320, 1), {}, o);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  Trainer& tr = **t;
  ASSERT_EQ(tr.steps_per_epoch(), 10);
  EXPECT_NEAR(tr.LrAt(0), 0.01, 1e-12);   // warmup: (s+1)/10 of the peak
  EXPECT_NEAR(tr.LrAt(9), 0.1, 1e-12);
  EXPECT_NEAR(tr.LrAt(10), 0.1, 1e-12);  // cosine starts at the peak
  EXPECT_NEAR(tr.LrAt(25), 0.05, 1e-12);  // half way through the cosine part
  EXPECT_NEAR(tr.LrAt(40), 0.0, 1e-12);

  auto m2 = MakeModule();
  o.schedule = LrScheduleKind::kStep;
  o.step_epochs = 2;
  o.step_gamma = 0.5;
  o.warmup_epochs = 0;
  auto t2 = Trainer::Create(m2, Synthetic(320, 1), {}, o);
  ASSERT_TRUE(t2.ok());
  EXPECT_NEAR((*t2)->LrAt(0), 0.1, 1e-12);
  EXPECT_NEAR((*t2)->LrAt(19), 0.1, 1e-12);
  EXPECT_NEAR((*t2)->LrAt(20), 0.05, 1e-12);
  EXPECT_NEAR((*t2)->LrAt(39), 0.05, 1e-12);
}

TEST(TrainerTest, OptionErrorsAreClear) {
  auto m = MakeModule();
  TrainOptions o = SmallOptions();
  o.batch_size = 33;
  o.world_size = 2;
  auto t = Trainer::Create(m, Synthetic(64, 1), {}, o);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("multiple of --world-size"), std::string::npos);
  o = SmallOptions();
  o.resume = true;
  t = Trainer::Create(m, Synthetic(64, 1), {}, o);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("--checkpoint-dir"), std::string::npos);
  o = SmallOptions();
  o.batch_size = 1000;
  t = Trainer::Create(m, Synthetic(64, 1), {}, o);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("larger than the training split"), std::string::npos);
  EXPECT_FALSE(ParseOptimizer("rmsprop").ok());
  EXPECT_FALSE(ParseLrSchedule("linear").ok());
}

TEST(TrainerTest, LearnsAndIsBitIdenticalForASeed) {
  std::vector<torch::Tensor> first;
  for (int run = 0; run < 2; ++run) {
    auto m = MakeModule();
    auto t = Trainer::Create(m, Synthetic(640, 1), Synthetic(200, 2), SmallOptions());
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    auto r = (*t)->Run();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->history.size(), 3u);
    // The task is easy: a small net must learn it well above chance (25%).
    EXPECT_GT(r->test.accuracy, 0.6) << "run " << run;
    EXPECT_EQ(r->test.count, 200);
    EXPECT_LT(r->history.back().train_loss, r->history.front().train_loss);
    if (run == 0) {
      first = Snapshot(*m);
    } else {
      EXPECT_TRUE(BitEqual(first, Snapshot(*m))) << "same seed, different weights";
    }
  }
  // Another seed gives other weights.
  auto m = MakeModule();
  TrainOptions o = SmallOptions();
  o.seed = 12;
  auto t = Trainer::Create(m, Synthetic(640, 1), {}, o);
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE((*t)->Run().ok());
  EXPECT_FALSE(BitEqual(first, Snapshot(*m)));
}

TEST(TrainerTest, HooksAndMasksThroughEverySteps) {
  auto m = MakeModule();
  ASSERT_FALSE(m->blockable_weights().empty());
  const std::string w = m->blockable_weights()[0];  // conv2.weight: 16x8 -> 2x1 blocks
  auto mask = BlockMask::AllKept(8, 8, 2, 1);
  mask.Set(1, 0, false);
  ASSERT_TRUE(m->SetMask(w, mask).ok());
  int epochs_begun = 0, after_backward = 0, steps = 0, epochs_ended = 0;
  bool grads_seen = true, masked_zero = true;
  TrainHooks h;
  h.on_epoch_begin = [&](Trainer& t, int e) {
    EXPECT_EQ(e, epochs_begun);
    ++epochs_begun;
    return Status::Ok();
  };
  h.on_after_backward = [&](Trainer& t, int64_t s) {
    grads_seen &= t.module().weight(w).grad().defined();
    ++after_backward;
    return Status::Ok();
  };
  h.on_step_end = [&](Trainer& t, int64_t s) {
    EXPECT_EQ(s, steps + 1);
    ++steps;
    masked_zero &= t.module().weight(w).narrow(0, 8, 8).abs().max().item<float>() == 0.0f;
    return Status::Ok();
  };
  h.on_epoch_end = [&](Trainer&, const EpochMetrics&) {
    ++epochs_ended;
    return Status::Ok();
  };
  // An extra loss (L2 on the fc weights) changes the result but not the flow.
  h.extra_loss = [&](Trainer& t, const torch::Tensor&, const torch::Tensor&,
                     const torch::Tensor&) { return 1e-3 * t.module().weight("fc.weight").pow(2).sum(); };
  h.epoch_metrics = [](Trainer& t) { return std::string("{\"probe\":") + std::to_string(t.epoch()) + "}"; };
  auto t = Trainer::Create(m, Synthetic(640, 1), {}, SmallOptions(), h);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto r = (*t)->Run();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const int64_t spe = (*t)->steps_per_epoch();
  EXPECT_EQ(epochs_begun, 3);
  EXPECT_EQ(epochs_ended, 3);
  EXPECT_EQ(after_backward, 3 * spe);
  EXPECT_EQ(steps, 3 * spe);
  EXPECT_TRUE(grads_seen);
  EXPECT_TRUE(masked_zero);
  // Half of conv2's entries are masked; conv2 is the only blockable weight
  // with a mask (fc 4x16 has no full 8x8 block row... it still counts).
  EXPECT_GT(r->history.back().sparsity, 0.0);
  EXPECT_NE(r->history.back().extra_json.find("probe"), std::string::npos);

  // A hook error stops the run with that error.
  auto m2 = MakeModule();
  TrainHooks bad;
  bad.on_step_end = [](Trainer&, int64_t s) {
    return s == 3 ? InvalidArgument("probe failure at step {}", s) : Status::Ok();
  };
  auto t2 = Trainer::Create(m2, Synthetic(640, 1), {}, SmallOptions(), bad);
  ASSERT_TRUE(t2.ok());
  auto r2 = (*t2)->Run();
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().message(), "probe failure at step 3");
}

// --ema: the average over the last epoch's steps, computed here from the
// weights after every step, is what the module holds at the end when its
// validation accuracy is not lower (else the trained weights stay); masked
// blocks stay zero either way.
TEST(TrainerTest, EmaAveragesTheLastEpochAndKeepsTheBetterOnValidation) {
  auto m = MakeModule();
  const std::string w = m->blockable_weights()[0];
  auto mask = BlockMask::AllKept(8, 8, 2, 1);
  mask.Set(0, 0, false);
  ASSERT_TRUE(m->SetMask(w, mask).ok());
  TrainOptions o = SmallOptions();
  o.ema_decay = 0.8;
  o.ema_epochs = 1;
  std::vector<torch::Tensor> expect, last;
  int64_t averaged = 0;
  TrainHooks h;
  h.on_step_end = [&](Trainer& t, int64_t) {
    if (t.epoch() != o.epochs - 1) return Status::Ok();
    std::vector<torch::Tensor> cur;
    for (auto& p : t.module().parameters()) cur.push_back(p.detach().clone());
    for (auto& b : t.module().buffers())
      if (b.is_floating_point()) cur.push_back(b.detach().clone());
    if (expect.empty()) {
      expect = cur;
    } else {
      for (size_t i = 0; i < cur.size(); ++i) expect[i] = expect[i] * 0.8 + cur[i] * 0.2;
    }
    last = cur;
    ++averaged;
    return Status::Ok();
  };
  auto t = Trainer::Create(m, Synthetic(640, 1), {}, o, h);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto r = (*t)->Run();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(averaged, (*t)->steps_per_epoch());
  EXPECT_GT(r->ema_val.count, 0);
  EXPECT_EQ(r->ema_used, r->ema_val.accuracy >= r->raw_val.accuracy);
  EXPECT_EQ(r->final_val.accuracy, r->ema_used ? r->ema_val.accuracy : r->raw_val.accuracy);
  const std::vector<torch::Tensor>& want = r->ema_used ? expect : last;
  std::vector<torch::Tensor> got;
  for (auto& p : m->parameters()) got.push_back(p.detach());
  for (auto& b : m->buffers())
    if (b.is_floating_point()) got.push_back(b.detach());
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_TRUE(torch::allclose(got[i], want[i], 1e-5, 1e-6)) << "tensor " << i;
  // The average differs from the last step's weights (it is not a no-op).
  bool differs = false;
  for (size_t i = 0; i < expect.size(); ++i) differs |= !torch::allclose(expect[i], last[i]);
  EXPECT_TRUE(differs);
  EXPECT_EQ(m->weight(w).narrow(0, 0, 8).abs().max().item<float>(), 0.0f);

  o.ema_decay = 1.0;
  auto bad = Trainer::Create(MakeModule(), Synthetic(64, 1), {}, o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--ema"), std::string::npos);
}

// A run stopped after epoch 1 (a failing hook stands in for a crash) and
// resumed from last.pt ends bit-identical to an uninterrupted run, including
// the masks and the method's state blob.
TEST(TrainerTest, ResumeEqualsUninterruptedRun) {
  const fs::path dir = TempDir("resume");
  auto opts = [&](const std::string& sub) {
    TrainOptions o = SmallOptions();
    o.optimizer = OptimizerKind::kAdamW;  // optimizer moments must be restored too
    o.lr = 0.01;
    o.checkpoint_dir = (dir / sub).string();
    o.metrics_path = (dir / (sub + ".jsonl")).string();
    return o;
  };
  auto mask_module = [] {
    auto m = MakeModule();
    auto mask = BlockMask::AllKept(8, 8, 2, 1);
    mask.Set(0, 0, false);
    EXPECT_TRUE(m->SetMask(m->blockable_weights()[0], mask).ok());
    return m;
  };
  // The method state counts steps; it must come back on resume.
  auto state_hooks = [](int64_t* counter, int stop_after_epoch) {
    TrainHooks h;
    h.on_step_end = [counter](Trainer&, int64_t) {
      ++*counter;
      return Status::Ok();
    };
    h.save_state = [counter](Trainer&) { return std::to_string(*counter); };
    h.load_state = [counter](Trainer&, const std::string& blob) {
      *counter = std::stoll(blob);
      return Status::Ok();
    };
    h.on_epoch_begin = [stop_after_epoch](Trainer&, int e) {
      return e == stop_after_epoch ? Internal("simulated crash") : Status::Ok();
    };
    return h;
  };

  int64_t full_count = 0;
  auto full = mask_module();
  auto tf = Trainer::Create(full, Synthetic(640, 1), Synthetic(200, 2), opts("full"),
                            state_hooks(&full_count, -1));
  ASSERT_TRUE(tf.ok()) << tf.status().ToString();
  auto rf = (*tf)->Run();
  ASSERT_TRUE(rf.ok()) << rf.status().ToString();

  int64_t count = 0;
  {
    auto m = mask_module();
    auto t = Trainer::Create(m, Synthetic(640, 1), Synthetic(200, 2), opts("part"),
                             state_hooks(&count, 1));
    ASSERT_TRUE(t.ok());
    auto r = (*t)->Run();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().message(), "simulated crash");
  }
  ASSERT_TRUE(fs::exists(dir / "part" / "last.pt"));
  ASSERT_TRUE(fs::exists(dir / "part" / "best.pt"));
  int64_t resumed_count = -1;
  auto m = MakeModule();  // no mask: it must come from the checkpoint
  TrainOptions o = opts("part");
  o.resume = true;
  auto t = Trainer::Create(m, Synthetic(640, 1), Synthetic(200, 2), o,
                           state_hooks(&resumed_count, -1));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ((*t)->epoch(), 1);
  EXPECT_EQ(resumed_count, (*t)->steps_per_epoch());
  auto r = (*t)->Run();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->resumed_from_epoch, 1);
  EXPECT_EQ(resumed_count, full_count);
  EXPECT_TRUE(BitEqual(Snapshot(*full), Snapshot(*m)));
  EXPECT_EQ(r->test.accuracy, rf->test.accuracy);
  EXPECT_EQ(r->checksum, rf->checksum);
  ASSERT_EQ(r->history.size(), 3u);
  EXPECT_EQ(r->history[0].val.accuracy, rf->history[0].val.accuracy);
  ASSERT_TRUE(m->mask(m->blockable_weights()[0]).has_value());

  // The metrics file holds one line per epoch and the final record, no duplicates.
  std::ifstream in(dir / "part.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) ++lines;
  EXPECT_EQ(lines, 4);

  // Other options than the checkpoint's: refused with a clear message.
  auto m3 = MakeModule();
  o.seed = 99;
  auto t3 = Trainer::Create(m3, Synthetic(640, 1), {}, o);
  ASSERT_FALSE(t3.ok());
  EXPECT_NE(t3.status().message().find("other options"), std::string::npos);
  fs::remove_all(dir);
}

TEST(TrainerTest, CheckpointErrorsNameTheFile) {
  const fs::path dir = TempDir("ckerr");
  auto m = MakeModule();
  auto st = LoadCheckpoint((dir / "missing.pt").string(), *m, nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("missing.pt"), std::string::npos);
  {
    std::ofstream f(dir / "garbage.pt");
    f << "not a checkpoint";
  }
  st = LoadCheckpoint((dir / "garbage.pt").string(), *m, nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("garbage.pt"), std::string::npos);
  // A checkpoint of another model: the mismatching entry is named.
  CheckpointState s;
  ASSERT_TRUE(SaveCheckpoint((dir / "tiny.pt").string(), *m, nullptr, s).ok());
  EXPECT_TRUE(LoadCheckpoint((dir / "tiny.pt").string(), *MakeModule(5), nullptr).ok());
  auto g = TinyNet(3, /*width=*/24);
  auto other = GraphModule::Create(*g);
  ASSERT_TRUE(other.ok());
  st = LoadCheckpoint((dir / "tiny.pt").string(), **other, nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("conv2"), std::string::npos) << st.status().message();
  fs::remove_all(dir);
}

int FreePort() {
  // Ports from the pid keep parallel ctest runs apart.
  return 40000 + static_cast<int>(::getpid() % 20000);  // ddp_test.sh uses 20000..39999
}

// Two ranks as two threads over 127.0.0.1: different initial weights on the
// ranks (rank 0's win), identical weights after every step, identical masks
// (rank 0's).
TEST(TrainerTest, TwoRanksStayIdentical) {
  const int port = FreePort();
  std::vector<std::vector<uint64_t>> sums(2);
  std::vector<uint64_t> final_sum(2);
  std::vector<std::optional<BlockMask>> masks(2);
  std::vector<std::vector<torch::Tensor>> finals(2);
  std::vector<Status> status(2);
  auto rank_main = [&](int rank) {
    auto m = MakeModule(/*seed=*/100 + rank);  // ranks start from different weights
    if (rank == 0) {
      auto mask = BlockMask::AllKept(8, 8, 2, 1);
      mask.Set(1, 0, false);
      (void)m->SetMask(m->blockable_weights()[0], mask);
    }
    TrainOptions o = SmallOptions();
    o.epochs = 2;
    o.world_size = 2;
    o.rank = rank;
    o.master = "127.0.0.1:" + std::to_string(port);
    o.dist_timeout_s = 30;
    TrainHooks h;
    // Parameters only: BN running statistics follow each rank's local
    // batches during an epoch and are averaged at its end.
    h.on_step_end = [&, rank](Trainer& t, int64_t) {
      uint64_t hsh = 0;
      for (auto& p : t.module().parameters()) {
        auto c = p.detach().contiguous() + 0.0;  // -0.0 and 0.0 are the same weight
        const auto* b = static_cast<const uint8_t*>(c.data_ptr());
        for (int64_t i = 0; i < c.numel() * 4; ++i) hsh = (hsh ^ b[i]) * 1099511628211ull;
      }
      sums[rank].push_back(hsh);
      return Status::Ok();
    };
    auto t = Trainer::Create(m, Synthetic(640, 1), Synthetic(100, 2), o, h);
    if (!t.ok()) {
      status[rank] = t.status();
      return;
    }
    auto r = (*t)->Run();
    if (!r.ok()) {
      status[rank] = r.status();
      return;
    }
    final_sum[rank] = r->checksum;
    finals[rank] = Snapshot(*m);
    masks[rank] = m->mask(m->blockable_weights()[0]);
  };
  std::thread r1(rank_main, 1);
  rank_main(0);
  r1.join();
  ASSERT_TRUE(status[0].ok()) << status[0].ToString();
  ASSERT_TRUE(status[1].ok()) << status[1].ToString();
  ASSERT_FALSE(sums[0].empty());
  EXPECT_EQ(sums[0], sums[1]);
  EXPECT_EQ(final_sum[0], final_sum[1]);
  ASSERT_EQ(finals[0].size(), finals[1].size());
  for (size_t i = 0; i < finals[0].size(); ++i) {
    EXPECT_TRUE(torch::equal(finals[0][i], finals[1][i])) << "tensor " << i << " of "
                                                          << finals[0].size();
  }
  ASSERT_TRUE(masks[1].has_value());
  EXPECT_EQ(*masks[0], *masks[1]);
}

TEST(TrainerTest, MissingPeerTimesOutWithAClearError) {
  DistributedOptions o;
  o.world_size = 2;
  o.rank = 0;
  o.master = "127.0.0.1:" + std::to_string(FreePort() + 1);
  o.timeout = std::chrono::milliseconds(2000);
  auto start = std::chrono::steady_clock::now();
  auto d = Distributed::Connect(o);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("rank 0/2"), std::string::npos) << d.status().message();
  EXPECT_LT(s, 30.0);
  EXPECT_FALSE(ParseMaster("localhost").ok());
  EXPECT_FALSE(ParseMaster("host:70000").ok());
  auto hp = ParseMaster("10.0.0.1:1234");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->second, 1234);
}

}  // namespace
}  // namespace wbs::train
