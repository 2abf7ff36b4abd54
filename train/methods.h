// The paper's four ways to choose block masks Γ while fine-tuning a model,
// as TrainHooks on a Trainer (train/trainer.h):
//
//   oneshot      At the start, score every block once (L2/L1/mean-abs/
//                variance of the current weights, sparse/scores.h), zero the
//                lowest to the target (sparse::ChooseBlocks: per layer or
//                global with caps, keep_channels), then train with the masks
//                fixed. The paper's main method.
//   incremental  The paper's "Γ chosen in steps": at the start of every k-th
//                epoch zero a fraction f of the blocks still kept (by the
//                current weights' scores; zeroed blocks stay zeroed) until the
//                target (SparsitySchedule::Incremental). With
//                schedule = kCubic: Zhu & Gupta's gradual pruning over
//                optimizer steps (the target is reached at cubic_end of the
//                run, updated every cubic_every steps).
//   learned      Trainable block scores. kTopK: each blockable weight is
//                gated as W ⊙ expand(m), m = hard top-k of the scores
//                (exactly the target count, same selection rules) in the
//                forward pass; the backward pass treats m as the scores
//                themselves (straight-through), so a score receives
//                Σ_block dL/dW' ⊙ W. Scores are initialised from the L2 scores
//                (the first mask equals oneshot's) and trained by their own
//                Adam. kProx: a group-lasso proximal step after every
//                optimizer step shrinks, by an amount proportional to the LR,
//                the L2 norm of the blocks currently outside the top-k, so
//                they fade out smoothly; the mask is the exact top-k by L2 at
//                the end of the learning phase. Both then fine-tune with the
//                mask fixed for the remaining epochs.
//   fisher       At the start, accumulate the diagonal (empirical) Fisher
//                information F = E[g^2] of every weight over some training
//                batches (train/fisher.h); a block's score is the estimated
//                loss increase of zeroing it, Σ_block F w^2 / 2 (or Σ F with
//                fisher_weighted = false); then as oneshot.
//
// Every mask change is followed (optionally) by BatchNorm recalibration:
// some training batches in train mode without gradients, so the running
// statistics match the masked network. Knowledge distillation from the
// dense model is the trainer's extra loss (train/distill.h).
//
// State for --resume: the masks are in the trainer's checkpoint; the method's
// own state (schedule level, learned scores, phase) is its state blob, so a
// run killed mid-schedule continues where it was.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "sparse/layers.h"
#include "sparse/scores.h"
#include "train/distill.h"
#include "train/methods_select.h"
#include "train/schedule.h"
#include "train/trainer.h"

namespace wbs::train {

enum class Method { kOneShot, kIncremental, kLearned, kFisher };
enum class LearnedKind { kTopK, kProx };

// "oneshot" | "incremental" | "learned" | "fisher".
Result<Method> ParseMethod(const std::string& text);
const char* MethodName(Method m);
// "topk" | "prox".
Result<LearnedKind> ParseLearnedKind(const std::string& text);
const char* LearnedKindName(LearnedKind k);

struct MethodOptions {
  Method method = Method::kOneShot;
  sparse::LayerRules rules;  // block shape, include_first, exclude
  sparse::Score score = sparse::Score::kL2;
  // Score a conv followed by BN on its BN-scaled weight (MagnitudeScores).
  // Off by default: on fmnist_resnet at 50% 8x8 it kept less accuracy after
  // masking + BN recalibration than raw L2 (docs/ACCURACY.md).
  bool bn_scaled_scores = false;
  SelectOptions select;  // target, global, caps, keep_channels, per-layer targets

  // incremental
  ScheduleKind schedule = ScheduleKind::kIncremental;  // or kCubic
  double step_fraction = 0.1;                          // of the kept blocks, per event
  int every_epochs = 1;
  double cubic_end = 0.5;   // fraction of the run's steps at which the cubic reaches the target
  int64_t cubic_every = 0;  // steps between updates; 0 = about 20 updates

  // learned
  LearnedKind learned = LearnedKind::kTopK;
  int learn_epochs = -1;       // epochs with trainable scores; -1 = half the run (at least 1)
  double score_lr = 1e-2;      // Adam LR of the block scores (kTopK)
  double prox_strength = 1.0;  // kProx: 1 = the weakest blocks reach zero by mid-phase

  // fisher
  int fisher_samples = 1024;    // training images
  int fisher_micro_batch = 8;   // images per gradient (squared per micro-batch)
  bool fisher_weighted = true;  // Σ F w^2 / 2 (else Σ F)

  // after every mask change
  int bn_recal_batches = 0;      // 0 = off
  bool eval_after_mask = false;  // evaluate the validation split right after masking (logged)

  // Receives one line per mask change and phase (the CLI prints them).
  std::function<void(const std::string&)> log;
};

Status ValidateMethodOptions(const MethodOptions& o);

class SparsityMethod {
 public:
  // The module is the one the trainer trains; masks and gates are set on it.
  static Result<std::unique_ptr<SparsityMethod>> Create(std::shared_ptr<GraphModule> module,
                                                        MethodOptions options);
  ~SparsityMethod();

  // Hooks for Trainer::Create. They refer to this object, which must outlive
  // the trainer's Run(). `distill` (optional) adds its loss term.
  TrainHooks Hooks(std::shared_ptr<Distiller> distill = nullptr);

  // The epoch-begin hook, public so that a run of zero epochs can still
  // choose its masks (oneshot, fisher; learned: the initial hard mask).
  Status OnEpochBegin(Trainer& t, int epoch);

  const std::vector<BlockLayer>& layers() const { return layers_; }
  // Current masks read back from the module (all kept where none).
  std::vector<BlockMask> CurrentMasks() const;
  // The level (fraction of zero blocks) the method has applied so far.
  double level() const { return level_; }
  // After Run(): in the learned method, makes sure the final hard mask is set
  // (a run shorter than learn_epochs); no-op otherwise.
  Status Finish(Trainer& trainer);
  // learned top-k while learning: the hard masks of the current scores.
  const std::vector<BlockMask>& learned_masks() const { return hard_masks_; }
  // Accuracy right after the last mask change (eval_after_mask), or count 0.
  const EvalResult& after_mask() const { return after_mask_; }
  std::string Describe() const;

 private:
  SparsityMethod() = default;
  Status OnStepEnd(Trainer& t, int64_t step);
  std::string SaveState(Trainer& t);
  Status LoadState(Trainer& t, const std::string& blob);
  std::string EpochMetrics(Trainer& t);

  // Selects masks at `level` from `scores` and applies them (monotone when
  // `monotone`), then BN recalibration / evaluation.
  Status ApplyLevel(Trainer& t, double level, const std::vector<std::vector<double>>& scores,
                    bool monotone);
  Status SetMasks(Trainer& t, const std::vector<BlockMask>& masks);
  Status AfterMaskChange(Trainer& t);

  // learned
  int LearnEpochs(const Trainer& t) const;
  Status StartLearning(Trainer& t);
  Status InstallGates();
  Status UpdateHardMasks();
  Status FinishLearning(Trainer& t);
  Status ProxStep(Trainer& t);

  std::shared_ptr<GraphModule> module_;
  MethodOptions o_;
  std::vector<BlockLayer> layers_;
  double level_ = 0;
  int64_t last_tick_ = -1;  // last schedule tick applied (incremental/cubic)
  std::unique_ptr<SparsitySchedule> schedule_;
  EvalResult after_mask_;

  // learned: 0 = not started, 1 = scores training, 2 = mask fixed
  int phase_ = 0;
  std::vector<torch::Tensor> scores_;  // log-scores, [rows, cols] per layer (kTopK)
  std::vector<torch::Tensor> hard_;    // current hard masks as 0/1 [rows, cols]
  std::vector<BlockMask> hard_masks_;
  std::unique_ptr<torch::optim::Adam> score_opt_;
  std::vector<double> prox_rate_;  // kProx: norm shrink per unit LR, per layer
};

}  // namespace wbs::train
