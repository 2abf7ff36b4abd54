// The training loop over a GraphModule: seeded and reproducible, with
// checkpoints every epoch, --resume, progress/metrics, and data-parallel ranks.
// Sparsity methods (train/methods*) build on it through TrainHooks.
//
// Contract:
//  - Determinism: torch::manual_seed(seed) before anything random; epoch e
//    visits the training set in data::EpochOrder(n, seed, e) (each rank takes
//    its own contiguous shard of that order); augmentation draws from a
//    generator seeded from (seed, epoch, rank), so an epoch's batches do not
//    depend on whether the run was resumed. Same threads + same world size =>
//    bit-identical weights (CPU).
//  - Every optimizer step is followed by module->ApplyMasks() (masked blocks
//    stay exactly zero), then hooks.on_step_end.
//  - The loss is cross-entropy (with label smoothing) + hooks.extra_loss.
//  - A checkpoint is written atomically after every epoch (checkpoint_dir/
//    last.pt; best.pt when validation accuracy improves) holding parameters,
//    buffers, masks, optimizer state, epoch/step, RNG state, metrics so far
//    and the method's state blob (hooks.save_state / load_state). With
//    resume, Run() continues after the last completed epoch.
//  - Ranks (world_size > 1): rank 0's parameters, buffers and masks are
//    broadcast at start; gradients are averaged by all-reduce before each
//    optimizer step; BN running statistics are averaged at the end of every
//    epoch, so every rank holds the same weights after every step. A dead
//    peer makes collectives fail after `dist_timeout_s` with a clear error.
//  - Errors are Status values; torch exceptions are caught inside.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "data/dataset.h"
#include "train/module.h"

namespace wbs::train {

class Distributed;  // train/distributed.h

enum class OptimizerKind { kSgd, kAdam, kAdamW };
enum class LrScheduleKind { kConstant, kCosine, kStep };

Result<OptimizerKind> ParseOptimizer(const std::string& text);  // sgd|adam|adamw
Result<LrScheduleKind> ParseLrSchedule(const std::string& text);  // constant|cosine|step
const char* OptimizerName(OptimizerKind k);
const char* LrScheduleName(LrScheduleKind k);

struct TrainOptions {
  int epochs = 30;
  int batch_size = 128;  // global batch: each of world_size ranks takes batch_size / world_size

  // Optimizer.
  OptimizerKind optimizer = OptimizerKind::kSgd;
  double lr = 0.1;  // peak learning rate (after warmup)
  double momentum = 0.9;
  bool nesterov = true;
  double weight_decay = 5e-4;  // SGD/Adam: L2 in the gradient; AdamW: decoupled
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_eps = 1e-8;

  // Learning-rate schedule, evaluated per step: linear warmup from 0 over
  // warmup_epochs, then cosine to min_lr at the end, or x step_gamma every
  // step_epochs epochs, or constant.
  LrScheduleKind schedule = LrScheduleKind::kCosine;
  double warmup_epochs = 1.0;
  double min_lr = 0.0;
  int step_epochs = 10;
  double step_gamma = 0.1;

  double label_smoothing = 0.1;
  // Exponential moving average of the weights (and BN statistics) over the
  // steps of the last `ema_epochs` epochs, decay per step (0 = off). At the
  // end of Run() the average replaces the trained weights when its
  // validation accuracy is at least theirs (the test set is not looked at).
  // Not checkpointed: a resumed run averages from the epoch it resumed at.
  double ema_decay = 0.0;
  int ema_epochs = 1;
  uint64_t seed = 1;
  int threads = 0;  // 0: leave LibTorch's default (at::set_num_threads otherwise)
  data::Augmentation augment{/*pad_crop=*/2, /*hflip=*/true};
  // Normalization applied to every batch; empty = computed from the training set.
  data::Normalization normalization;
  double validation_fraction = 0.1;  // held out of the training set (seeded)
  int eval_batch_size = 500;
  // Caps for tests and quick runs (0 = all): training images per epoch (the
  // first N of the training split), and validation/test images evaluated.
  int64_t max_train_images = 0;
  int64_t max_eval_images = 0;

  std::string checkpoint_dir;  // "" = no checkpoints
  bool resume = false;         // continue from checkpoint_dir/last.pt if present

  torch::Device device = torch::kCPU;

  // Data-parallel ranks over c10d (ProcessGroupGloo + TCPStore).
  int world_size = 1;
  int rank = 0;
  std::string master = "127.0.0.1:29500";  // host:port of rank 0's TCPStore
  int dist_timeout_s = 60;                 // a collective waiting longer fails

  // Output.
  bool progress = true;      // progress bar on stderr (rank 0 only)
  std::string metrics_path;  // JSON lines, one record per epoch (rank 0 only); "" = none
  std::string log_prefix = "train";  // shown in front of the progress bar
};

struct EvalResult {
  double loss = 0;      // mean cross-entropy (no label smoothing)
  double accuracy = 0;  // in [0, 1]
  int64_t count = 0;
};

struct EpochMetrics {
  int epoch = 0;  // 0-based
  int64_t step = 0;  // optimizer steps after this epoch
  double lr = 0;     // at the end of the epoch
  double train_loss = 0;
  double train_accuracy = 0;
  EvalResult val;
  double sparsity = 0;  // fraction of blockable weight entries in masked blocks
  double seconds = 0;   // wall time of this epoch (train + eval)
  std::string extra_json;  // hooks.epoch_metrics output (a JSON object or "")
};

class Trainer;

// All hooks are optional. A hook returning a non-OK Status stops Run() with
// that error.
struct TrainHooks {
  // Before the first step of `epoch` (0-based); e.g. an incremental method
  // raises the sparsity here.
  std::function<Status(Trainer&, int epoch)> on_epoch_begin;
  // After backward (and the gradient all-reduce), before the optimizer step:
  // gradients are available (e.g. Fisher accumulators).
  std::function<Status(Trainer&, int64_t step)> on_after_backward;
  // After the optimizer step and ApplyMasks(); `step` counts from 1.
  std::function<Status(Trainer&, int64_t step)> on_step_end;
  // After the epoch's validation; metrics are final except extra_json.
  std::function<Status(Trainer&, const EpochMetrics&)> on_epoch_end;
  // An extra scalar loss term added to cross-entropy (knowledge distillation,
  // group lasso). images: the normalised batch; logits: the model's output.
  // Return an undefined tensor for "nothing".
  std::function<torch::Tensor(Trainer&, const torch::Tensor& images, const torch::Tensor& labels,
                              const torch::Tensor& logits)>
      extra_loss;
  // The method's own state for checkpoints (opaque bytes), and its restore.
  std::function<std::string(Trainer&)> save_state;
  std::function<Status(Trainer&, const std::string& blob)> load_state;
  // Extra per-epoch metrics as a JSON object text (e.g. "{\"target\":0.5}"),
  // merged into the metrics line.
  std::function<std::string(Trainer&)> epoch_metrics;
  // Current sparsity for the progress bar; default: masked fraction of the
  // blockable weights.
  std::function<double(Trainer&)> sparsity;
};

struct TrainResult {
  std::vector<EpochMetrics> history;
  EvalResult final_val;
  EvalResult test;  // of the final weights; count 0 when no test set
  int best_epoch = -1;
  double best_val_accuracy = 0;
  double seconds = 0;  // wall time of this Run() (excludes earlier runs when resumed)
  int resumed_from_epoch = -1;  // first epoch run by this process when resumed, else -1
  uint64_t checksum = 0;        // ParameterChecksum of the final weights
  // ema_decay > 0: validation accuracy of the averaged and of the trained
  // weights, and whether the average was kept.
  EvalResult ema_val, raw_val;
  bool ema_used = false;
};

// FNV-1a over the bytes of every parameter and buffer (named_parameters
// order) and the masks: equal on ranks that hold identical models.
uint64_t ParameterChecksum(GraphModule& module);

class Trainer {
 public:
  // train: the full training set (the validation split is taken from it);
  // test: may be empty (size 0). The module must live on options.device.
  static Result<std::unique_ptr<Trainer>> Create(std::shared_ptr<GraphModule> module,
                                                 data::Dataset train, data::Dataset test,
                                                 TrainOptions options, TrainHooks hooks = {});
  ~Trainer();

  // Runs epochs [start, options.epochs), start = 0 or after the resumed
  // checkpoint. Evaluates the validation split each epoch and the test set at
  // the end.
  Result<TrainResult> Run();

  // Loss and accuracy of the current weights (eval mode; restores the previous
  // mode). With ranks, every rank evaluates the whole set (same result).
  Result<EvalResult> Evaluate(const data::Dataset& d);

  GraphModule& module() { return *module_; }
  std::shared_ptr<GraphModule> module_ptr() { return module_; }
  torch::optim::Optimizer& optimizer() { return *optimizer_; }
  const TrainOptions& options() const { return options_; }
  const data::Dataset& train_set() const { return train_; }
  const data::Dataset& val_set() const { return val_; }
  const data::Dataset& test_set() const { return test_; }
  const data::Normalization& normalization() const { return options_.normalization; }

  int epoch() const { return epoch_; }       // current (0-based)
  int64_t step() const { return step_; }     // optimizer steps done
  int64_t steps_per_epoch() const;
  double lr() const { return lr_; }          // the LR used by the latest step
  double LrAt(int64_t step) const;           // the schedule

  // Ranks: nullptr when world_size == 1. Methods use it to agree on state
  // computed from local data (e.g. Fisher sums).
  Distributed* distributed() { return dist_.get(); }
  int rank() const { return options_.rank; }
  int world_size() const { return options_.world_size; }
  // Averages `t` over ranks in place (no-op with one rank).
  Status AllReduceMean(torch::Tensor& t);
  // Rank 0's masks to every rank (after a method changed masks from local
  // data); no-op with one rank.
  Status BroadcastMasks();

  // The default sparsity measure: masked entries / all entries of blockable weights.
  double MaskedFraction() const;

  // Writes a checkpoint now (atomically) to `path`.
  Status SaveCheckpoint(const std::string& path);
  Status LoadCheckpoint(const std::string& path);

 private:
  Trainer() = default;
  Status Init();
  Status MakeOptimizer();
  void SetLr(double lr);
  Status TrainEpoch(int epoch, EpochMetrics& m);
  Status BroadcastState();
  void UpdateEma();
  // Puts the averaged weights in the module (swaps: a second call restores).
  void SwapEma();

  std::shared_ptr<GraphModule> module_;
  data::Dataset train_, val_, test_;
  TrainOptions options_;
  TrainHooks hooks_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<Distributed> dist_;
  std::vector<EpochMetrics> history_;
  int epoch_ = 0;
  int64_t step_ = 0;
  double lr_ = 0;
  int best_epoch_ = -1;
  double best_val_ = -1;
  std::vector<torch::Tensor> ema_;  // parameters then floating-point buffers
};

}  // namespace wbs::train
