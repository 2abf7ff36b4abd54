#include "train/methods.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "train/fisher.h"
#include "train/methods_data.h"

namespace wbs::train {
namespace {

// Floor under normalised L2 scores before the log (an all-zero block).
constexpr double kMinScore = 1e-6;
// Cubic schedule updates when --cubic-every is not given.
constexpr int64_t kCubicUpdates = 20;
// Separates the JSON part of the state blob from the torch archive.
constexpr char kBlobSeparator = '\0';

enum Phase : int { kNotStarted = 0, kLearning = 1, kFixed = 2 };

void Log(const MethodOptions& o, const std::string& text) {
  if (o.log) o.log(text);
}

}  // namespace

Result<Method> ParseMethod(const std::string& text) {
  if (text == "oneshot") return Method::kOneShot;
  if (text == "incremental") return Method::kIncremental;
  if (text == "learned") return Method::kLearned;
  if (text == "fisher") return Method::kFisher;
  return InvalidArgument("unknown method '{}' (oneshot|incremental|learned|fisher)", text);
}

const char* MethodName(Method m) {
  switch (m) {
    case Method::kOneShot:
      return "oneshot";
    case Method::kIncremental:
      return "incremental";
    case Method::kLearned:
      return "learned";
    case Method::kFisher:
      return "fisher";
  }
  return "?";
}

Result<LearnedKind> ParseLearnedKind(const std::string& text) {
  if (text == "topk") return LearnedKind::kTopK;
  if (text == "prox") return LearnedKind::kProx;
  return InvalidArgument("unknown learned variant '{}' (topk|prox)", text);
}

const char* LearnedKindName(LearnedKind k) { return k == LearnedKind::kTopK ? "topk" : "prox"; }

Status ValidateMethodOptions(const MethodOptions& o) {
  if (o.method == Method::kIncremental && o.schedule == ScheduleKind::kOneShot) {
    return InvalidArgument("--method incremental needs --schedule incremental or cubic");
  }
  if (!(o.step_fraction > 0.0 && o.step_fraction <= 1.0)) {
    return InvalidArgument("--step-fraction {} is not in (0, 1]", o.step_fraction);
  }
  if (o.every_epochs < 1) return InvalidArgument("--every {} must be >= 1", o.every_epochs);
  if (!(o.cubic_end > 0.0 && o.cubic_end <= 1.0)) {
    return InvalidArgument("--cubic-end {} is not in (0, 1]", o.cubic_end);
  }
  if (o.cubic_every < 0) return InvalidArgument("--cubic-every {} must be >= 0", o.cubic_every);
  if (!(o.score_lr > 0.0)) return InvalidArgument("--score-lr {} must be > 0", o.score_lr);
  if (!(o.prox_strength >= 0.0)) {
    return InvalidArgument("--prox-strength {} must be >= 0", o.prox_strength);
  }
  if (o.fisher_samples < 1) return InvalidArgument("--fisher-samples must be >= 1");
  if (o.fisher_micro_batch < 1) return InvalidArgument("--fisher-micro-batch must be >= 1");
  if (o.bn_recal_batches < 0) return InvalidArgument("--bn-recal-batches must be >= 0");
  return Status::Ok();
}

Result<std::unique_ptr<SparsityMethod>> SparsityMethod::Create(std::shared_ptr<GraphModule> module,
                                                               MethodOptions options) {
  WBS_RETURN_IF_ERROR(ValidateMethodOptions(options));
  if (!module) return InvalidArgument("no module");
  std::unique_ptr<SparsityMethod> m(new SparsityMethod());
  m->module_ = std::move(module);
  m->o_ = std::move(options);
  WBS_ASSIGN_OR_RETURN(m->layers_, FindBlockLayers(*m->module_, m->o_.rules));
  if (m->layers_.empty()) {
    return InvalidArgument("the model has no blockable layer for {}x{} blocks",
                           m->o_.rules.block_rows, m->o_.rules.block_cols);
  }
  WBS_RETURN_IF_ERROR(ValidateSelectOptions(m->o_.select, m->layers_));
  const double target = m->o_.select.sparsity;
  if (m->o_.method == Method::kIncremental && m->o_.schedule == ScheduleKind::kIncremental) {
    WBS_ASSIGN_OR_RETURN(SparsitySchedule s, SparsitySchedule::Incremental(
                                                 target, m->o_.step_fraction, m->o_.every_epochs));
    m->schedule_ = std::make_unique<SparsitySchedule>(s);
  } else if (m->o_.method != Method::kIncremental) {
    WBS_ASSIGN_OR_RETURN(SparsitySchedule s, SparsitySchedule::OneShot(target));
    m->schedule_ = std::make_unique<SparsitySchedule>(s);
  }
  // The cubic schedule needs the run's step count: made at the first epoch.
  return m;
}

SparsityMethod::~SparsityMethod() = default;

TrainHooks SparsityMethod::Hooks(std::shared_ptr<Distiller> distill) {
  TrainHooks h;
  h.on_epoch_begin = [this](Trainer& t, int epoch) { return OnEpochBegin(t, epoch); };
  h.on_step_end = [this](Trainer& t, int64_t step) { return OnStepEnd(t, step); };
  h.save_state = [this](Trainer& t) { return SaveState(t); };
  h.load_state = [this](Trainer& t, const std::string& blob) { return LoadState(t, blob); };
  h.epoch_metrics = [this](Trainer& t) { return EpochMetrics(t); };
  h.sparsity = [this](Trainer& t) {
    if (phase_ == kLearning && o_.learned == LearnedKind::kTopK) return BlockSparsity(hard_masks_);
    return BlockSparsity(CurrentMasks());
  };
  if (distill) {
    h.extra_loss = [distill](Trainer&, const torch::Tensor& images, const torch::Tensor&,
                             const torch::Tensor& logits) { return distill->Loss(images, logits); };
  }
  return h;
}

std::vector<BlockMask> SparsityMethod::CurrentMasks() const {
  std::vector<BlockMask> masks;
  for (const BlockLayer& l : layers_) {
    std::optional<BlockMask> m = module_->mask(l.weight);
    if (m && m->rows == l.rows && m->cols == l.cols && m->block_rows == l.block_rows &&
        m->block_cols == l.block_cols) {
      masks.push_back(*m);
    } else {
      masks.push_back(BlockMask::AllKept(l.block_rows, l.block_cols, l.rows, l.cols, l.layout));
    }
  }
  return masks;
}

std::string SparsityMethod::Describe() const {
  std::string s =
      fmt::format("{} to {:.4g} block sparsity ({}x{} blocks, {} layers, {}{}{})",
                  MethodName(o_.method), o_.select.sparsity, o_.rules.block_rows,
                  o_.rules.block_cols, layers_.size(), o_.select.global ? "global" : "per layer",
                  o_.select.per_layer.empty() ? "" : ", per-layer targets",
                  o_.select.fill_target && !o_.select.global && o_.select.per_layer.empty()
                      ? ", keep-channels shortfall filled elsewhere"
                      : "");
  if (o_.method == Method::kIncremental && schedule_) s += "; " + schedule_->Describe();
  if (o_.method == Method::kLearned) s += fmt::format("; learned {}", LearnedKindName(o_.learned));
  return s;
}

Status SparsityMethod::SetMasks(Trainer& t, const std::vector<BlockMask>& masks) {
  for (size_t i = 0; i < layers_.size(); ++i) {
    WBS_RETURN_IF_ERROR(module_->SetMask(layers_[i].weight, masks[i]));
  }
  WBS_RETURN_IF_ERROR(TorchGuard("applying masks", [&] {
    module_->ApplyMasks();
    return Status::Ok();
  }));
  return t.BroadcastMasks();
}

Status SparsityMethod::AfterMaskChange(Trainer& t) {
  const TrainOptions& to = t.options();
  if (o_.bn_recal_batches > 0) {
    WBS_RETURN_IF_ERROR(RecalibrateBatchNorm(
        *module_, t.train_set(), t.normalization(), o_.bn_recal_batches, to.batch_size,
        to.seed + 7919 * static_cast<uint64_t>(t.step() + 1), to.device));
  }
  if (o_.eval_after_mask) {
    WBS_ASSIGN_OR_RETURN(after_mask_, t.Evaluate(t.val_set()));
    Log(o_, fmt::format("after masking to {:.4g}{}: validation accuracy {:.2f}%, loss {:.4f}",
                        level_, o_.bn_recal_batches > 0 ? " and BN recalibration" : "",
                        100.0 * after_mask_.accuracy, after_mask_.loss));
  }
  return Status::Ok();
}

Status SparsityMethod::ApplyLevel(Trainer& t, double level,
                                  const std::vector<std::vector<double>>& scores, bool monotone) {
  std::vector<BlockMask> prev;
  if (monotone) prev = CurrentMasks();
  WBS_ASSIGN_OR_RETURN(std::vector<BlockMask> masks,
                       SelectMasks(layers_, scores, o_.select, level, monotone ? &prev : nullptr));
  WBS_RETURN_IF_ERROR(SetMasks(t, masks));
  level_ = level;
  Log(o_,
      fmt::format("epoch {} step {}: {} masks at level {:.4g} ({:.2f}% of blocks zero)", t.epoch(),
                  t.step(), MethodName(o_.method), level, 100.0 * BlockSparsity(masks)));
  return AfterMaskChange(t);
}

Status SparsityMethod::OnEpochBegin(Trainer& t, int epoch) {
  const double target = o_.select.sparsity;
  switch (o_.method) {
    case Method::kOneShot: {
      if (phase_ != kNotStarted) return Status::Ok();
      WBS_ASSIGN_OR_RETURN(auto scores,
                           MagnitudeScores(*module_, layers_, o_.score, o_.bn_scaled_scores));
      WBS_RETURN_IF_ERROR(ApplyLevel(t, target, scores, /*monotone=*/false));
      phase_ = kFixed;
      return Status::Ok();
    }
    case Method::kFisher: {
      if (phase_ != kNotStarted) return Status::Ok();
      FisherOptions fo;
      fo.samples = o_.fisher_samples;
      fo.micro_batch = o_.fisher_micro_batch;
      fo.weighted = o_.fisher_weighted;
      fo.seed = t.options().seed + 1;
      WBS_ASSIGN_OR_RETURN(auto fisher,
                           AccumulateFisher(*module_, layers_, t.train_set(), t.normalization(), fo,
                                            t.options().device));
      // Ranks used the same samples, so F agrees; averaging removes rounding drift.
      for (torch::Tensor& f : fisher) WBS_RETURN_IF_ERROR(t.AllReduceMean(f));
      WBS_RETURN_IF_ERROR(
          ApplyLevel(t, target, FisherBlockScores(*module_, layers_, fisher, o_.fisher_weighted),
                     /*monotone=*/false));
      phase_ = kFixed;
      return Status::Ok();
    }
    case Method::kIncremental: {
      if (o_.schedule == ScheduleKind::kCubic) {
        if (!schedule_) {
          const int64_t total = static_cast<int64_t>(t.options().epochs) * t.steps_per_epoch();
          const int64_t length =
              std::max<int64_t>(1, std::llround(o_.cubic_end * static_cast<double>(total)));
          const int64_t every =
              o_.cubic_every > 0 ? o_.cubic_every : std::max<int64_t>(1, length / kCubicUpdates);
          WBS_ASSIGN_OR_RETURN(SparsitySchedule s,
                               SparsitySchedule::Cubic(0.0, target, 0, length, every));
          schedule_ = std::make_unique<SparsitySchedule>(s);
          Log(o_, schedule_->Describe());
        }
        return OnStepEnd(t, t.step());
      }
      const double level = schedule_->LevelAt(epoch);
      if (level <= level_) return Status::Ok();
      WBS_ASSIGN_OR_RETURN(auto scores,
                           MagnitudeScores(*module_, layers_, o_.score, o_.bn_scaled_scores));
      WBS_RETURN_IF_ERROR(ApplyLevel(t, level, scores, /*monotone=*/true));
      last_tick_ = epoch;
      return Status::Ok();
    }
    case Method::kLearned: {
      if (phase_ == kNotStarted) WBS_RETURN_IF_ERROR(StartLearning(t));
      if (phase_ == kLearning && epoch >= LearnEpochs(t)) WBS_RETURN_IF_ERROR(FinishLearning(t));
      return Status::Ok();
    }
  }
  return Status::Ok();
}

Status SparsityMethod::OnStepEnd(Trainer& t, int64_t step) {
  if (o_.method == Method::kIncremental && o_.schedule == ScheduleKind::kCubic && schedule_) {
    const double level = schedule_->LevelAt(step);
    if (level <= level_) return Status::Ok();
    WBS_ASSIGN_OR_RETURN(auto scores,
                         MagnitudeScores(*module_, layers_, o_.score, o_.bn_scaled_scores));
    WBS_RETURN_IF_ERROR(ApplyLevel(t, level, scores, /*monotone=*/true));
    last_tick_ = step;
    return Status::Ok();
  }
  if (o_.method != Method::kLearned || phase_ != kLearning) return Status::Ok();
  if (o_.learned == LearnedKind::kProx) return ProxStep(t);
  return TorchGuard("learned scores step", [&]() -> Status {
    for (torch::Tensor& s : scores_) {
      if (!s.grad().defined()) continue;
      torch::Tensor g = s.grad();
      WBS_RETURN_IF_ERROR(t.AllReduceMean(g));
    }
    score_opt_->step();
    score_opt_->zero_grad();
    return UpdateHardMasks();
  });
}

int SparsityMethod::LearnEpochs(const Trainer& t) const {
  if (o_.learn_epochs >= 0) return o_.learn_epochs;
  return std::max(1, t.options().epochs / 2);
}

Status SparsityMethod::UpdateHardMasks() {
  std::vector<std::vector<double>> sc;
  for (const torch::Tensor& s : scores_) {
    torch::Tensor e = s.detach().exp().to(torch::kCPU, torch::kFloat64).contiguous();
    const double* p = e.data_ptr<double>();
    sc.emplace_back(p, p + e.numel());
  }
  WBS_ASSIGN_OR_RETURN(hard_masks_, SelectMasks(layers_, sc, o_.select, o_.select.sparsity));
  hard_.clear();
  const torch::Device device = scores_.empty() ? torch::kCPU : scores_[0].device();
  for (const BlockMask& m : hard_masks_) hard_.push_back(MaskTensor(m, device));
  return Status::Ok();
}

Status SparsityMethod::StartLearning(Trainer& t) {
  const double target = o_.select.sparsity;
  WBS_ASSIGN_OR_RETURN(auto l2, MagnitudeScores(*module_, layers_, sparse::Score::kL2));
  return TorchGuard("learned masks", [&]() -> Status {
    module_->ClearMasks();
    if (o_.learned == LearnedKind::kProx) {
      // Rate per unit LR: the first half of the learning phase's LRs sum to
      // (prox_strength x) the mean norm of the blocks outside the top-k.
      WBS_ASSIGN_OR_RETURN(auto drop, SelectMasks(layers_, l2, o_.select, target));
      const int64_t steps = static_cast<int64_t>(LearnEpochs(t)) * t.steps_per_epoch();
      double lr_sum = 0;
      for (int64_t s = t.step() + 1; s <= t.step() + std::max<int64_t>(1, steps / 2); ++s)
        lr_sum += t.LrAt(s);
      prox_rate_.clear();
      for (size_t i = 0; i < layers_.size(); ++i) {
        double sum = 0;
        int64_t n = 0;
        for (size_t b = 0; b < l2[i].size(); ++b) {
          if (drop[i].keep[b]) continue;
          sum += l2[i][b];
          ++n;
        }
        const double mean = n ? sum / static_cast<double>(n) : 0.0;
        prox_rate_.push_back(lr_sum > 0 ? o_.prox_strength * mean / lr_sum : 0.0);
      }
      phase_ = kLearning;
      level_ = 0;
      Log(o_, fmt::format("learned (prox): group-lasso shrinking over {} epochs", LearnEpochs(t)));
      return Status::Ok();
    }
    scores_.clear();
    const torch::Device device = t.options().device;
    for (size_t i = 0; i < layers_.size(); ++i) {
      const BlockLayer& l = layers_[i];
      const double mean =
          std::accumulate(l2[i].begin(), l2[i].end(), 0.0) / static_cast<double>(l2[i].size());
      std::vector<float> v;
      for (double s : l2[i])
        v.push_back(static_cast<float>(std::log(std::max(kMinScore, mean > 0 ? s / mean : 1.0))));
      scores_.push_back(
          torch::tensor(v).reshape({l.rows, l.cols}).to(device).set_requires_grad(true));
    }
    score_opt_ =
        std::make_unique<torch::optim::Adam>(scores_, torch::optim::AdamOptions(o_.score_lr));
    WBS_RETURN_IF_ERROR(UpdateHardMasks());
    WBS_RETURN_IF_ERROR(InstallGates());
    phase_ = kLearning;
    level_ = target;
    Log(o_, fmt::format("learned (top-k): trainable block scores for {} epochs, {:.2f}% of blocks "
                        "zero",
                        LearnEpochs(t), 100.0 * BlockSparsity(hard_masks_)));
    return Status::Ok();
  });
}

Status SparsityMethod::InstallGates() {
  for (size_t i = 0; i < layers_.size(); ++i) {
    // The forward value is W ⊙ hard; the gradient reaches the scores as if
    // the gate were exp(score) (straight-through).
    WBS_RETURN_IF_ERROR(module_->SetGate(layers_[i].weight, [this, i](const torch::Tensor& w) {
      torch::Tensor s = scores_[i].exp();
      torch::Tensor m = hard_[i] + (s - s.detach());
      return w * ExpandBlocks(m, layers_[i], w);
    }));
  }
  return Status::Ok();
}

Status SparsityMethod::ProxStep(Trainer& t) {
  WBS_ASSIGN_OR_RETURN(auto l2, MagnitudeScores(*module_, layers_, sparse::Score::kL2));
  WBS_ASSIGN_OR_RETURN(auto drop, SelectMasks(layers_, l2, o_.select, o_.select.sparsity));
  const double lr = t.lr();
  int64_t zero = 0, all = 0;
  Status st = TorchGuard("group-lasso step", [&]() -> Status {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < layers_.size(); ++i) {
      const BlockLayer& l = layers_[i];
      std::vector<float> factor(l2[i].size(), 1.0f);
      for (size_t b = 0; b < factor.size(); ++b) {
        if (drop[i].keep[b]) continue;
        const double norm = l2[i][b];
        const double f = norm > 0 ? std::max(0.0, 1.0 - prox_rate_[i] * lr / norm) : 0.0;
        factor[b] = static_cast<float>(f);
        if (f == 0.0) ++zero;
      }
      all += static_cast<int64_t>(factor.size());
      torch::Tensor& w = module_->weight(l.weight);
      torch::Tensor ft = torch::tensor(factor).reshape({l.rows, l.cols}).to(w.device());
      w.mul_(ExpandBlocks(ft, l, w));
    }
    return Status::Ok();
  });
  level_ = all ? static_cast<double>(zero) / static_cast<double>(all) : 0.0;
  return st;
}

Status SparsityMethod::FinishLearning(Trainer& t) {
  std::vector<BlockMask> masks;
  if (o_.learned == LearnedKind::kTopK) {
    WBS_RETURN_IF_ERROR(UpdateHardMasks());
    masks = hard_masks_;
    for (const BlockLayer& l : layers_) WBS_RETURN_IF_ERROR(module_->SetGate(l.weight, {}));
    score_opt_.reset();
  } else {
    WBS_ASSIGN_OR_RETURN(auto l2, MagnitudeScores(*module_, layers_, sparse::Score::kL2));
    WBS_ASSIGN_OR_RETURN(masks, SelectMasks(layers_, l2, o_.select, o_.select.sparsity));
  }
  WBS_RETURN_IF_ERROR(SetMasks(t, masks));
  phase_ = kFixed;
  level_ = o_.select.sparsity;
  Log(o_, fmt::format("epoch {}: learned masks fixed ({:.2f}% of blocks zero)", t.epoch(),
                      100.0 * BlockSparsity(masks)));
  return AfterMaskChange(t);
}

Status SparsityMethod::Finish(Trainer& t) {
  if (o_.method == Method::kLearned && phase_ == kLearning) return FinishLearning(t);
  if (o_.method == Method::kIncremental && level_ < o_.select.sparsity) {
    return FailedPrecondition(
        "the {} schedule reached only {:.4g} of the {:.4g} target in {} epochs (needs more epochs)",
        schedule_ ? ScheduleKindName(schedule_->kind()) : "incremental", level_, o_.select.sparsity,
        t.options().epochs);
  }
  return Status::Ok();
}

std::string SparsityMethod::EpochMetrics(Trainer&) {
  nlohmann::json j;
  j["method"] = MethodName(o_.method);
  j["level"] = level_;
  j["block_sparsity"] = phase_ == kLearning && o_.learned == LearnedKind::kTopK
                            ? BlockSparsity(hard_masks_)
                            : BlockSparsity(CurrentMasks());
  if (o_.method == Method::kLearned) j["phase"] = phase_;
  return j.dump();
}

std::string SparsityMethod::SaveState(Trainer&) {
  nlohmann::json j;
  j["method"] = MethodName(o_.method);
  j["phase"] = phase_;
  j["level"] = level_;
  j["last_tick"] = last_tick_;
  j["prox_rate"] = prox_rate_;
  std::string blob = j.dump();
  if (phase_ == kLearning && o_.learned == LearnedKind::kTopK) {
    std::ostringstream os;
    torch::serialize::OutputArchive archive;
    for (size_t i = 0; i < scores_.size(); ++i)
      archive.write("score" + std::to_string(i), scores_[i].detach());
    torch::serialize::OutputArchive opt;
    score_opt_->save(opt);
    archive.write("optimizer", opt);
    archive.save_to(os);
    blob += kBlobSeparator;
    blob += os.str();
  }
  return blob;
}

Status SparsityMethod::LoadState(Trainer& t, const std::string& blob) {
  const size_t sep = blob.find(kBlobSeparator);
  nlohmann::json j =
      nlohmann::json::parse(blob.substr(0, sep), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("method")) {
    return ParseError("checkpoint: sparsity method state is not valid");
  }
  if (j["method"].get<std::string>() != MethodName(o_.method)) {
    return InvalidArgument("checkpoint was made by --method {}, not {}",
                           j["method"].get<std::string>(), MethodName(o_.method));
  }
  phase_ = j.value("phase", 0);
  level_ = j.value("level", 0.0);
  last_tick_ = j.value("last_tick", int64_t{-1});
  prox_rate_ = j.value("prox_rate", std::vector<double>{});
  if (!(phase_ == kLearning && o_.learned == LearnedKind::kTopK)) return Status::Ok();
  if (sep == std::string::npos) return ParseError("checkpoint: learned scores are missing");
  return TorchGuard("checkpoint: learned scores", [&]() -> Status {
    std::istringstream is(blob.substr(sep + 1));
    torch::serialize::InputArchive archive;
    archive.load_from(is, t.options().device);
    scores_.clear();
    for (size_t i = 0; i < layers_.size(); ++i) {
      torch::Tensor s;
      archive.read("score" + std::to_string(i), s);
      if (s.size(0) != layers_[i].rows || s.size(1) != layers_[i].cols) {
        return ParseError("checkpoint: learned scores of layer '{}' have the wrong shape",
                          layers_[i].node);
      }
      scores_.push_back(s.detach().clone().set_requires_grad(true));
    }
    score_opt_ =
        std::make_unique<torch::optim::Adam>(scores_, torch::optim::AdamOptions(o_.score_lr));
    torch::serialize::InputArchive opt;
    archive.read("optimizer", opt);
    score_opt_->load(opt);
    module_->ClearMasks();
    WBS_RETURN_IF_ERROR(UpdateHardMasks());
    return InstallGates();
  });
}

}  // namespace wbs::train
