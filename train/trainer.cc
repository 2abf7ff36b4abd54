#include "train/trainer.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/progress.h"
#include "onnx/file_io.h"
#include "train/checkpoint.h"
#include "train/distributed.h"

namespace wbs::train {

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string FirstLine(const std::string& s) {
  auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

// The augmentation generator of (seed, epoch, rank): an epoch's batches are
// the same whether or not the run was resumed before it.
std::mt19937_64 AugmentRng(uint64_t seed, int epoch, int rank) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(epoch), static_cast<uint32_t>(rank), 0x77627374u};
  return std::mt19937_64(seq);
}

json MetricsToJson(const EpochMetrics& m) {
  json j = {{"epoch", m.epoch + 1},
            {"step", m.step},
            {"lr", m.lr},
            {"train_loss", m.train_loss},
            {"train_acc", m.train_accuracy},
            {"val_loss", m.val.loss},
            {"val_acc", m.val.accuracy},
            {"sparsity", m.sparsity},
            {"seconds", m.seconds}};
  if (!m.extra_json.empty()) {
    json extra = json::parse(m.extra_json, nullptr, /*allow_exceptions=*/false);
    if (extra.is_object()) {
      for (auto& [k, v] : extra.items()) j[k] = v;
    }
  }
  return j;
}

EpochMetrics MetricsFromJson(const json& j) {
  EpochMetrics m;
  m.epoch = j.value("epoch", 1) - 1;
  m.step = j.value("step", int64_t{0});
  m.lr = j.value("lr", 0.0);
  m.train_loss = j.value("train_loss", 0.0);
  m.train_accuracy = j.value("train_acc", 0.0);
  m.val.loss = j.value("val_loss", 0.0);
  m.val.accuracy = j.value("val_acc", 0.0);
  m.sparsity = j.value("sparsity", 0.0);
  m.seconds = j.value("seconds", 0.0);
  json extra = json::object();
  static const char* kKnown[] = {"epoch",     "step",    "lr",       "train_loss", "train_acc",
                                 "val_loss", "val_acc", "sparsity", "seconds"};
  for (auto& [k, v] : j.items()) {
    if (std::find(std::begin(kKnown), std::end(kKnown), k) == std::end(kKnown)) extra[k] = v;
  }
  if (!extra.empty()) m.extra_json = extra.dump();
  return m;
}

// What a resumed run must share with the checkpoint for its result to be the
// uninterrupted run's.
std::string Fingerprint(const TrainOptions& o, int64_t train_size) {
  json j = {{"epochs", o.epochs},
            {"batch_size", o.batch_size},
            {"optimizer", OptimizerName(o.optimizer)},
            {"lr", o.lr},
            {"schedule", LrScheduleName(o.schedule)},
            {"seed", o.seed},
            {"validation_fraction", o.validation_fraction},
            {"train_images", train_size},
            {"world_size", o.world_size}};
  return j.dump();
}

}  // namespace

Result<OptimizerKind> ParseOptimizer(const std::string& text) {
  if (text == "sgd") return OptimizerKind::kSgd;
  if (text == "adam") return OptimizerKind::kAdam;
  if (text == "adamw") return OptimizerKind::kAdamW;
  return InvalidArgument("optimizer '{}': expected sgd, adam or adamw", text);
}

Result<LrScheduleKind> ParseLrSchedule(const std::string& text) {
  if (text == "constant") return LrScheduleKind::kConstant;
  if (text == "cosine") return LrScheduleKind::kCosine;
  if (text == "step") return LrScheduleKind::kStep;
  return InvalidArgument("lr schedule '{}': expected constant, cosine or step", text);
}

const char* OptimizerName(OptimizerKind k) {
  switch (k) {
    case OptimizerKind::kSgd: return "sgd";
    case OptimizerKind::kAdam: return "adam";
    case OptimizerKind::kAdamW: return "adamw";
  }
  return "?";
}

const char* LrScheduleName(LrScheduleKind k) {
  switch (k) {
    case LrScheduleKind::kConstant: return "constant";
    case LrScheduleKind::kCosine: return "cosine";
    case LrScheduleKind::kStep: return "step";
  }
  return "?";
}

uint64_t ParameterChecksum(GraphModule& module) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) {
      h ^= b[i];
      h *= 1099511628211ull;
    }
  };
  torch::NoGradGuard no_grad;
  auto mix_tensor = [&](const torch::Tensor& t) {
    auto c = t.detach().to(torch::kCPU).contiguous();
    // -0.0 and 0.0 are the same weight (masked entries get either sign).
    if (c.is_floating_point()) c = c + 0.0;
    mix(c.data_ptr(), static_cast<size_t>(c.numel()) * c.element_size());
  };
  for (const auto& p : module.named_parameters(/*recurse=*/true)) mix_tensor(p.value());
  for (const auto& b : module.named_buffers(/*recurse=*/true)) mix_tensor(b.value());
  for (const auto& name : module.weight_names()) {
    if (auto m = module.mask(name)) {
      std::string e = name + EncodeBlockMask(*m);
      mix(e.data(), e.size());
    }
  }
  return h;
}

Trainer::~Trainer() = default;

Result<std::unique_ptr<Trainer>> Trainer::Create(std::shared_ptr<GraphModule> module,
                                                 data::Dataset train, data::Dataset test,
                                                 TrainOptions options, TrainHooks hooks) {
  if (module == nullptr) return InvalidArgument("trainer: no module");
  std::unique_ptr<Trainer> t(new Trainer());
  t->module_ = std::move(module);
  t->options_ = std::move(options);
  t->hooks_ = std::move(hooks);
  t->train_ = std::move(train);
  t->test_ = std::move(test);
  WBS_RETURN_IF_ERROR(t->Init());
  return t;
}

Status Trainer::Init() {
  const TrainOptions& o = options_;
  if (o.epochs < 0) return InvalidArgument("--epochs {}: must be >= 0", o.epochs);
  if (o.world_size < 1) return InvalidArgument("--world-size {}: must be >= 1", o.world_size);
  if (o.rank < 0 || o.rank >= o.world_size) {
    return InvalidArgument("--rank {}: must be in [0, {})", o.rank, o.world_size);
  }
  if (o.batch_size < 1 || o.batch_size % o.world_size != 0) {
    return InvalidArgument("--batch {}: must be a positive multiple of --world-size {}",
                           o.batch_size, o.world_size);
  }
  if (!(o.lr > 0)) return InvalidArgument("--lr {}: must be > 0", o.lr);
  if (!(o.ema_decay >= 0 && o.ema_decay < 1)) {
    return InvalidArgument("--ema {}: must be in [0, 1)", o.ema_decay);
  }
  if (o.ema_decay > 0 && o.ema_epochs < 1) {
    return InvalidArgument("--ema-epochs {}: must be >= 1", o.ema_epochs);
  }
  if (o.validation_fraction < 0 || o.validation_fraction >= 1) {
    return InvalidArgument("validation fraction {}: must be in [0, 1)", o.validation_fraction);
  }
  if (o.resume && o.checkpoint_dir.empty()) {
    return InvalidArgument("--resume needs --checkpoint-dir");
  }
  if (train_.size() == 0) return InvalidArgument("training set '{}' is empty", train_.source);
  if (o.threads > 0) at::set_num_threads(o.threads);
  torch::manual_seed(o.seed);

  if (options_.normalization.mean.empty()) {
    options_.normalization = data::ComputeNormalization(train_);
  }
  if (o.validation_fraction > 0) {
    auto [tr, va] = data::SplitValidation(train_, o.validation_fraction, o.seed);
    train_ = std::move(tr);
    val_ = std::move(va);
  }
  if (o.max_train_images > 0 && train_.size() > o.max_train_images) {
    std::vector<int64_t> idx(static_cast<size_t>(o.max_train_images));
    std::iota(idx.begin(), idx.end(), 0);
    train_ = data::Subset(train_, idx);
  }
  if (o.max_eval_images > 0) {
    for (data::Dataset* d : {&val_, &test_}) {
      if (d->size() <= o.max_eval_images) continue;
      std::vector<int64_t> idx(static_cast<size_t>(o.max_eval_images));
      std::iota(idx.begin(), idx.end(), 0);
      *d = data::Subset(*d, idx);
    }
  }
  if (steps_per_epoch() == 0) {
    return InvalidArgument("--batch {} is larger than the training split ({} images)",
                           o.batch_size, train_.size());
  }

  try {
    module_->to(o.device);
  } catch (const std::exception& e) {
    return InvalidArgument("device {}: {}", o.device.str(), FirstLine(e.what()));
  }
  WBS_RETURN_IF_ERROR(MakeOptimizer());

  if (o.world_size > 1) {
    DistributedOptions d;
    d.world_size = o.world_size;
    d.rank = o.rank;
    d.master = o.master;
    d.timeout = std::chrono::milliseconds(static_cast<int64_t>(o.dist_timeout_s) * 1000);
    WBS_ASSIGN_OR_RETURN(dist_, Distributed::Connect(d));
  }

  if (o.resume) {
    std::string last = (std::filesystem::path(o.checkpoint_dir) / "last.pt").string();
    if (std::filesystem::exists(last)) WBS_RETURN_IF_ERROR(LoadCheckpoint(last));
  }
  // Ranks start from rank 0's state (also after a resume: every rank read the
  // same checkpoint, but a rank without one must not diverge).
  WBS_RETURN_IF_ERROR(BroadcastState());
  lr_ = LrAt(step_);
  SetLr(lr_);
  return Status::Ok();
}

Status Trainer::MakeOptimizer() {
  // Weight decay only on weights (rank >= 2): BN scales and biases are left
  // alone, as usual for CNNs.
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& p : module_->parameters()) {
    if (!p.requires_grad()) continue;
    (p.dim() >= 2 ? decay : no_decay).push_back(p);
  }
  const TrainOptions& o = options_;
  try {
    switch (o.optimizer) {
      case OptimizerKind::kSgd: {
        auto make = [&](double wd) {
          return std::make_unique<torch::optim::SGDOptions>(
              torch::optim::SGDOptions(o.lr).momentum(o.momentum).nesterov(o.nesterov &&
                                                                             o.momentum > 0)
                  .weight_decay(wd));
        };
        std::vector<torch::optim::OptimizerParamGroup> groups;
        groups.emplace_back(decay, make(o.weight_decay));
        if (!no_decay.empty()) groups.emplace_back(no_decay, make(0.0));
        optimizer_ = std::make_unique<torch::optim::SGD>(groups, *make(o.weight_decay));
        break;
      }
      case OptimizerKind::kAdam: {
        auto make = [&](double wd) {
          return std::make_unique<torch::optim::AdamOptions>(
              torch::optim::AdamOptions(o.lr)
                  .betas({o.adam_beta1, o.adam_beta2})
                  .eps(o.adam_eps)
                  .weight_decay(wd));
        };
        std::vector<torch::optim::OptimizerParamGroup> groups;
        groups.emplace_back(decay, make(o.weight_decay));
        if (!no_decay.empty()) groups.emplace_back(no_decay, make(0.0));
        optimizer_ = std::make_unique<torch::optim::Adam>(groups, *make(o.weight_decay));
        break;
      }
      case OptimizerKind::kAdamW: {
        auto make = [&](double wd) {
          return std::make_unique<torch::optim::AdamWOptions>(
              torch::optim::AdamWOptions(o.lr)
                  .betas({o.adam_beta1, o.adam_beta2})
                  .eps(o.adam_eps)
                  .weight_decay(wd));
        };
        std::vector<torch::optim::OptimizerParamGroup> groups;
        groups.emplace_back(decay, make(o.weight_decay));
        if (!no_decay.empty()) groups.emplace_back(no_decay, make(0.0));
        optimizer_ = std::make_unique<torch::optim::AdamW>(groups, *make(o.weight_decay));
        break;
      }
    }
  } catch (const std::exception& e) {
    return InvalidArgument("optimizer {}: {}", OptimizerName(o.optimizer), FirstLine(e.what()));
  }
  return Status::Ok();
}

int64_t Trainer::steps_per_epoch() const {
  // The last partial batch is dropped: every step has the same global batch,
  // which keeps ranks in lock-step.
  return train_.size() / options_.batch_size;
}

double Trainer::LrAt(int64_t step) const {
  const TrainOptions& o = options_;
  const double spe = static_cast<double>(std::max<int64_t>(1, steps_per_epoch()));
  const double warmup = o.warmup_epochs * spe;
  const double total = std::max(1.0, o.epochs * spe);
  const double s = static_cast<double>(step);
  if (warmup > 0 && s < warmup) return o.lr * (s + 1) / warmup;
  switch (o.schedule) {
    case LrScheduleKind::kConstant: return o.lr;
    case LrScheduleKind::kCosine: {
      double p = std::clamp((s - warmup) / std::max(1.0, total - warmup), 0.0, 1.0);
      return o.min_lr + (o.lr - o.min_lr) * 0.5 * (1 + std::cos(M_PI * p));
    }
    case LrScheduleKind::kStep: {
      int64_t k = static_cast<int64_t>(s / spe) / std::max(1, o.step_epochs);
      return std::max(o.min_lr, o.lr * std::pow(o.step_gamma, static_cast<double>(k)));
    }
  }
  return o.lr;
}

void Trainer::SetLr(double lr) {
  for (auto& g : optimizer_->param_groups()) g.options().set_lr(lr);
}

Status Trainer::AllReduceMean(torch::Tensor& t) {
  if (dist_ == nullptr) return Status::Ok();
  std::vector<torch::Tensor> v = {t};
  return dist_->AllReduceMean(v);
}

Status Trainer::BroadcastMasks() {
  if (dist_ == nullptr) return Status::Ok();
  // Masks travel as text: "name\tencoded\n" lines, length first.
  std::string text;
  if (options_.rank == 0) {
    for (const auto& name : module_->weight_names()) {
      if (auto m = module_->mask(name)) text += name + "\t" + EncodeBlockMask(*m) + "\n";
    }
  }
  std::vector<torch::Tensor> len = {torch::full({1}, static_cast<int64_t>(text.size()), torch::kInt64)};
  WBS_RETURN_IF_ERROR(dist_->Broadcast(len));
  auto bytes = torch::zeros({len[0].item<int64_t>()}, torch::kUInt8);
  if (options_.rank == 0 && !text.empty()) {
    std::memcpy(bytes.data_ptr<uint8_t>(), text.data(), text.size());
  }
  std::vector<torch::Tensor> b = {bytes};
  if (bytes.numel() > 0) WBS_RETURN_IF_ERROR(dist_->Broadcast(b));
  if (options_.rank == 0) return Status::Ok();
  text.assign(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()),
              static_cast<size_t>(bytes.numel()));
  module_->ClearMasks();
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    size_t tab = line.find('\t');
    std::string name = line.substr(0, tab);
    WBS_ASSIGN_OR_RETURN(BlockMask m, DecodeBlockMask(line.substr(tab + 1), "mask of '" + name + "' from rank 0"));
    WBS_RETURN_IF_ERROR(module_->SetMask(name, m));
  }
  module_->ApplyMasks();
  return Status::Ok();
}

Status Trainer::BroadcastState() {
  if (dist_ == nullptr) return Status::Ok();
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> tensors;
  for (auto& p : module_->parameters()) tensors.push_back(p);
  for (auto& b : module_->buffers()) tensors.push_back(b);
  WBS_RETURN_IF_ERROR(dist_->Broadcast(tensors));
  WBS_RETURN_IF_ERROR(BroadcastMasks());
  // The position too (a rank that found no checkpoint follows rank 0).
  std::vector<torch::Tensor> pos = {torch::tensor({static_cast<int64_t>(epoch_), step_,
                                                   static_cast<int64_t>(best_epoch_)})};
  WBS_RETURN_IF_ERROR(dist_->Broadcast(pos));
  epoch_ = static_cast<int>(pos[0][0].item<int64_t>());
  step_ = pos[0][1].item<int64_t>();
  best_epoch_ = static_cast<int>(pos[0][2].item<int64_t>());
  return Status::Ok();
}

double Trainer::MaskedFraction() const {
  double masked = 0, total = 0;
  const auto& blockable = module_->blockable_weights();
  for (const auto& name : module_->weight_names()) {
    auto m = module_->mask(name);
    bool counted = m.has_value() ||
                   std::find(blockable.begin(), blockable.end(), name) != blockable.end();
    if (!counted) continue;
    auto& w = const_cast<GraphModule&>(*module_).weight(name);
    total += static_cast<double>(w.numel());
    if (!m || w.dim() < 2) continue;
    int64_t cout = m->layout == MaskLayout::kOutIn ? w.size(0) : w.size(1);
    int64_t cin = m->layout == MaskLayout::kOutIn ? w.size(1) : w.size(0);
    int64_t kernel = w.numel() / std::max<int64_t>(1, cout * cin);
    for (int64_t r = 0; r < m->rows; ++r) {
      int64_t rows = std::min<int64_t>(m->block_rows, cout - r * m->block_rows);
      for (int64_t c = 0; c < m->cols; ++c) {
        if (m->Get(r, c)) continue;
        int64_t cols = std::min<int64_t>(m->block_cols, cin - c * m->block_cols);
        masked += static_cast<double>(rows * cols * kernel);
      }
    }
  }
  return total > 0 ? masked / total : 0.0;
}

Result<EvalResult> Trainer::Evaluate(const data::Dataset& d) {
  EvalResult r;
  if (d.size() == 0) return r;
  const bool was_training = module_->is_training();
  try {
    torch::NoGradGuard no_grad;
    module_->eval();
    std::mt19937_64 rng(0);  // unused: no augmentation in evaluation
    const int64_t b = std::max(1, options_.eval_batch_size);
    auto images = torch::empty({b, d.channels(), d.height(), d.width()}, torch::kFloat32);
    auto labels = torch::empty({b}, torch::kInt32);
    std::vector<int64_t> idx(static_cast<size_t>(d.size()));
    std::iota(idx.begin(), idx.end(), 0);
    double loss_sum = 0;
    int64_t correct = 0;
    for (int64_t s = 0; s < d.size(); s += b) {
      int64_t n = std::min(b, d.size() - s);
      data::MakeBatch(d, idx.data() + s, n, options_.normalization, data::Augmentation{}, rng,
                      images.data_ptr<float>(), labels.data_ptr<int32_t>());
      auto x = images.narrow(0, 0, n).to(options_.device);
      auto y = labels.narrow(0, 0, n).to(torch::kInt64).to(options_.device);
      auto logits = module_->forward(x);
      loss_sum += torch::nn::functional::cross_entropy(
                      logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                      .item<double>();
      correct += logits.argmax(1).eq(y).sum().item<int64_t>();
    }
    r.count = d.size();
    r.loss = loss_sum / static_cast<double>(r.count);
    r.accuracy = static_cast<double>(correct) / static_cast<double>(r.count);
  } catch (const std::exception& e) {
    module_->train(was_training);
    return Internal("evaluation on '{}': {}", d.source, FirstLine(e.what()));
  }
  module_->train(was_training);
  return r;
}

Status Trainer::TrainEpoch(int epoch, EpochMetrics& m) {
  const TrainOptions& o = options_;
  const int64_t spe = steps_per_epoch();
  const int64_t local = o.batch_size / o.world_size;
  auto order = data::EpochOrder(train_.size(), o.seed, epoch);
  auto rng = AugmentRng(o.seed, epoch, o.rank);
  auto images = torch::empty({local, train_.channels(), train_.height(), train_.width()},
                             torch::kFloat32);
  auto labels = torch::empty({local}, torch::kInt32);
  auto ce_options = torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(
      o.label_smoothing);
  const bool show = o.progress && o.rank == 0 && ProgressEnabled();
  ProgressOptions po;
  po.unit = "step";
  if (!show) po.mode = ProgressMode::kSilent;
  Progress progress(fmt::format("{} epoch {}/{}", o.log_prefix, epoch + 1, o.epochs), spe, po);
  double sparsity = 0;
  const auto start = Clock::now();
  double loss_sum = 0;  // local sums; reduced over ranks at the end
  int64_t correct = 0, seen = 0;
  std::vector<torch::Tensor> params;
  for (auto& p : module_->parameters()) {
    if (p.requires_grad()) params.push_back(p);
  }
  module_->train();
  for (int64_t s = 0; s < spe; ++s) {
    // Rank r takes its slice of each global batch, so the ranks together see
    // exactly the single-process batch.
    const int64_t* idx = order.data() + s * o.batch_size + o.rank * local;
    data::MakeBatch(train_, idx, local, o.normalization, o.augment, rng, images.data_ptr<float>(),
                    labels.data_ptr<int32_t>());
    lr_ = LrAt(step_);
    SetLr(lr_);
    try {
      auto x = images.to(o.device);
      auto y = labels.to(torch::kInt64).to(o.device);
      optimizer_->zero_grad();
      auto logits = module_->forward(x);
      auto loss = torch::nn::functional::cross_entropy(logits, y, ce_options);
      if (hooks_.extra_loss) {
        auto extra = hooks_.extra_loss(*this, x, y, logits);
        if (extra.defined()) loss = loss + extra;
      }
      loss.backward();
      {
        torch::NoGradGuard no_grad;
        loss_sum += loss.item<double>() * static_cast<double>(local);
        correct += logits.argmax(1).eq(y).sum().item<int64_t>();
        seen += local;
      }
    } catch (const std::exception& e) {
      return Internal("epoch {} step {}: {}", epoch + 1, s + 1, FirstLine(e.what()));
    }
    if (dist_ != nullptr) {
      std::vector<torch::Tensor> grads;
      grads.reserve(params.size());
      for (auto& p : params) {
        if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
        grads.push_back(p.grad());
      }
      WBS_RETURN_IF_ERROR(dist_->AllReduceMean(grads));
    }
    if (hooks_.on_after_backward) WBS_RETURN_IF_ERROR(hooks_.on_after_backward(*this, step_ + 1));
    try {
      optimizer_->step();
    } catch (const std::exception& e) {
      return Internal("epoch {} step {}: optimizer: {}", epoch + 1, s + 1, FirstLine(e.what()));
    }
    module_->ApplyMasks();
    ++step_;
    if (o.ema_decay > 0 && epoch >= o.epochs - o.ema_epochs) UpdateEma();
    if (hooks_.on_step_end) WBS_RETURN_IF_ERROR(hooks_.on_step_end(*this, step_));
    if (show) {
      // Masks may change during an epoch (gradual methods); re-measured now and then.
      if (s % 50 == 0) sparsity = hooks_.sparsity ? hooks_.sparsity(*this) : MaskedFraction();
      progress.Update(s + 1, {Metric("loss", loss_sum / static_cast<double>(seen), 4),
                              PercentMetric("acc", static_cast<double>(correct) /
                                                       static_cast<double>(seen), 2),
                              PercentMetric("sparsity", sparsity, 1), Metric("lr", lr_, 4)});
    }
  }
  progress.Finish();
  // Ranks: train metrics over all ranks; BN running statistics averaged so
  // every rank evaluates (and checkpoints) the same model.
  auto totals = torch::tensor({loss_sum, static_cast<double>(correct), static_cast<double>(seen)},
                              torch::kFloat64);
  if (dist_ != nullptr) {
    std::vector<torch::Tensor> t = {totals};
    WBS_RETURN_IF_ERROR(dist_->AllReduceSum(t));
    std::vector<torch::Tensor> bufs;
    for (auto& b : module_->buffers()) {
      if (b.is_floating_point()) bufs.push_back(b);
    }
    WBS_RETURN_IF_ERROR(dist_->AllReduceMean(bufs));
  }
  m.epoch = epoch;
  m.step = step_;
  m.lr = lr_;
  m.train_loss = totals[0].item<double>() / totals[2].item<double>();
  m.train_accuracy = totals[1].item<double>() / totals[2].item<double>();
  WBS_ASSIGN_OR_RETURN(m.val, Evaluate(val_));
  m.sparsity = hooks_.sparsity ? hooks_.sparsity(*this) : MaskedFraction();
  m.seconds = Seconds(start, Clock::now());
  if (show) {
    std::string val = val_.size() > 0 ? fmt::format(" | val loss {:.4f} acc {:.2f}%", m.val.loss,
                                                    100 * m.val.accuracy)
                                      : std::string();
    double eta = m.seconds * (o.epochs - epoch - 1);
    fmt::print(stderr, "{} epoch {}/{} loss {:.4f} acc {:.2f}%{} | sparsity {:.1f}% | {} (eta {})\n",
               o.log_prefix, epoch + 1, o.epochs, m.train_loss, 100 * m.train_accuracy, val,
               100 * m.sparsity, FormatDuration(m.seconds), FormatDuration(eta));
  }
  return Status::Ok();
}

// The tensors the average covers, in a fixed order: parameters, then the
// floating-point buffers (BN running mean and variance; the step counter is
// left alone).
static std::vector<torch::Tensor> EmaTensors(GraphModule& m) {
  std::vector<torch::Tensor> t;
  for (auto& p : m.parameters()) t.push_back(p);
  for (auto& b : m.buffers())
    if (b.is_floating_point()) t.push_back(b);
  return t;
}

void Trainer::UpdateEma() {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> cur = EmaTensors(*module_);
  if (ema_.empty()) {
    // Starts from the current weights, whose masked blocks are zero: the
    // average of zeros stays zero, so the masks hold without re-applying.
    for (auto& t : cur) ema_.push_back(t.detach().clone());
    return;
  }
  const double d = options_.ema_decay;
  for (size_t i = 0; i < cur.size(); ++i) ema_[i].mul_(d).add_(cur[i].detach(), 1.0 - d);
}

void Trainer::SwapEma() {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> cur = EmaTensors(*module_);
  for (size_t i = 0; i < cur.size() && i < ema_.size(); ++i) {
    torch::Tensor keep = cur[i].detach().clone();
    cur[i].copy_(ema_[i]);
    ema_[i] = keep;
  }
  module_->ApplyMasks();
}

Status Trainer::SaveCheckpoint(const std::string& path) {
  CheckpointState st;
  st.epochs_done = epoch_;
  st.step = step_;
  st.best_epoch = best_epoch_;
  st.best_val_accuracy = best_val_;
  json hist = json::array();
  for (const auto& m : history_) hist.push_back(MetricsToJson(m));
  st.metrics_json = hist.dump();
  st.fingerprint_json = Fingerprint(options_, train_.size());
  if (hooks_.save_state) st.method_state = hooks_.save_state(*this);
  return train::SaveCheckpoint(path, *module_, optimizer_.get(), st);
}

Status Trainer::LoadCheckpoint(const std::string& path) {
  WBS_ASSIGN_OR_RETURN(CheckpointState st, train::LoadCheckpoint(path, *module_, optimizer_.get()));
  std::string want = Fingerprint(options_, train_.size());
  if (st.fingerprint_json != want) {
    return FailedPrecondition(
        "checkpoint '{}' was written by a run with other options ({}); this run has {} — "
        "resume with the same options or use another --checkpoint-dir",
        path, st.fingerprint_json, want);
  }
  epoch_ = static_cast<int>(st.epochs_done);
  step_ = st.step;
  best_epoch_ = static_cast<int>(st.best_epoch);
  best_val_ = st.best_val_accuracy;
  history_.clear();
  json hist = json::parse(st.metrics_json, nullptr, /*allow_exceptions=*/false);
  if (hist.is_array()) {
    for (const auto& j : hist) history_.push_back(MetricsFromJson(j));
  }
  if (hooks_.load_state) {
    WBS_RETURN_IF_ERROR(
        hooks_.load_state(*this, st.method_state).WithContext("checkpoint '" + path + "'"));
  }
  module_->ApplyMasks();
  return Status::Ok();
}

Result<TrainResult> Trainer::Run() {
  const TrainOptions& o = options_;
  TrainResult result;
  const auto start = Clock::now();
  const bool writer = o.rank == 0;  // files are written by rank 0 only
  if (epoch_ > 0) {
    result.resumed_from_epoch = epoch_;
    if (o.progress && writer && ProgressEnabled()) {
      std::fprintf(stderr, "%s: resumed after epoch %d/%d (step %lld)\n", o.log_prefix.c_str(),
                   epoch_, o.epochs, static_cast<long long>(step_));
    }
  }
  auto write_metrics = [&](const json* final_record) -> Status {
    if (o.metrics_path.empty() || !writer) return Status::Ok();
    // Rewritten whole (atomically) each epoch from the history, so a resumed
    // run's file has exactly one line per epoch.
    std::string text;
    for (const auto& m : history_) text += MetricsToJson(m).dump() + "\n";
    if (final_record != nullptr) text += final_record->dump() + "\n";
    auto parent = std::filesystem::path(o.metrics_path).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    return onnxio::WriteFileAtomically(o.metrics_path, text);
  };
  for (; epoch_ < o.epochs; /* advanced below */) {
    const int epoch = epoch_;
    if (hooks_.on_epoch_begin) WBS_RETURN_IF_ERROR(hooks_.on_epoch_begin(*this, epoch));
    EpochMetrics m;
    WBS_RETURN_IF_ERROR(TrainEpoch(epoch, m));
    if (hooks_.on_epoch_end) WBS_RETURN_IF_ERROR(hooks_.on_epoch_end(*this, m));
    if (hooks_.epoch_metrics) m.extra_json = hooks_.epoch_metrics(*this);
    history_.push_back(m);
    epoch_ = epoch + 1;
    const bool improved = val_.size() > 0 && m.val.accuracy > best_val_;
    if (improved) {
      best_val_ = m.val.accuracy;
      best_epoch_ = epoch;
    }
    if (!o.checkpoint_dir.empty() && writer) {
      std::filesystem::path dir(o.checkpoint_dir);
      // best.pt first: if the process dies between the two writes, last.pt
      // still names the previous epoch and that epoch is simply redone.
      if (improved) WBS_RETURN_IF_ERROR(SaveCheckpoint((dir / "best.pt").string()));
      WBS_RETURN_IF_ERROR(SaveCheckpoint((dir / "last.pt").string()));
    }
    WBS_RETURN_IF_ERROR(write_metrics(nullptr));
  }
  result.history = history_;
  result.final_val = history_.empty() ? EvalResult{} : history_.back().val;
  if (history_.empty() && val_.size() > 0) {
    WBS_ASSIGN_OR_RETURN(result.final_val, Evaluate(val_));
  }
  if (!ema_.empty()) {
    // Every rank holds the same weights after every step, so the same average.
    result.raw_val = result.final_val;
    SwapEma();
    WBS_ASSIGN_OR_RETURN(result.ema_val, Evaluate(val_));
    result.ema_used = val_.size() == 0 || result.ema_val.accuracy >= result.raw_val.accuracy;
    if (result.ema_used) {
      result.final_val = result.ema_val;
    } else {
      SwapEma();
    }
    ema_.clear();
    if (o.progress && writer && ProgressEnabled()) {
      std::fprintf(stderr, "%s: weight average: val acc %.2f%% vs %.2f%% trained: keeping %s\n",
                   o.log_prefix.c_str(), 100 * result.ema_val.accuracy,
                   100 * result.raw_val.accuracy, result.ema_used ? "the average" : "the trained");
    }
  }
  WBS_ASSIGN_OR_RETURN(result.test, Evaluate(test_));
  result.best_epoch = best_epoch_;
  result.best_val_accuracy = best_val_ < 0 ? 0 : best_val_;
  result.seconds = Seconds(start, Clock::now());
  result.checksum = ParameterChecksum(*module_);
  json fin = {{"final", true},
              {"epochs", o.epochs},
              {"step", step_},
              {"val_loss", result.final_val.loss},
              {"val_acc", result.final_val.accuracy},
              {"test_loss", result.test.loss},
              {"test_acc", result.test.accuracy},
              {"best_epoch", best_epoch_ + 1},
              {"sparsity", hooks_.sparsity ? hooks_.sparsity(*this) : MaskedFraction()},
              {"seconds", result.seconds},
              {"checksum", fmt::format("{:016x}", result.checksum)}};
  WBS_RETURN_IF_ERROR(write_metrics(&fin));
  if (o.progress && writer && ProgressEnabled() && test_.size() > 0) {
    std::fprintf(stderr, "%s: test loss %.4f acc %.2f%% (%lld images)\n", o.log_prefix.c_str(),
                 result.test.loss, 100 * result.test.accuracy,
                 static_cast<long long>(result.test.count));
  }
  return result;
}

}  // namespace wbs::train
