// wbs finetune: block-sparse fine-tuning of a dense model with one of the
// paper's four methods (train/methods.h): oneshot, incremental (or cubic),
// learned, fisher; optional distillation from the dense model and BatchNorm
// recalibration. Writes ONNX whose masked weights hold exact zeros and whose
// metadata records the masks, like `wbs sparsify`.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/train/train_options.h"
#include "data/dataset.h"
#include "onnx/file_io.h"
#include "onnx/model_io.h"
#include "train/checkpoint.h"
#include "train/distill.h"
#include "train/methods.h"
#include "train/methods_data.h"
#include "train/module.h"
#include "train/trainer.h"
#include "zoo/zoo.h"

namespace wbs::cli {

namespace {

struct FinetuneArgs {
  std::string model;
  std::string checkpoint;  // dense weights for a zoo model (or over an ONNX file's)
  std::vector<std::string> input_shapes;
  std::string output;
  std::string summary;
  // sparsity
  double sparsity = 0.5;
  std::string block = "8x8";
  std::string method = "oneshot";
  std::string score = "l2";
  bool bn_scaled_scores = false;
  bool global = false;
  double min_layer = 0.0;
  double max_layer = 1.0;
  std::vector<std::string> exclude;
  bool include_first = false;
  bool keep_channels = true;
  bool fill_target = true;
  std::string per_layer_targets;
  // method options
  std::string prune_schedule = "incremental";
  double step_fraction = 0.1;
  int every = 1;
  double cubic_end = 0.5;
  int64_t cubic_every = 0;
  std::string learned = "topk";
  int learn_epochs = -1;
  double score_lr = 1e-2;
  double prox_strength = 1.0;
  int fisher_samples = 1024;
  int fisher_micro_batch = 8;
  bool fisher_unweighted = false;
  bool distill = true;  // the default recipe: docs/ACCURACY.md
  double temperature = 4.0;
  double distill_alpha = 0.5;
  bool bn_recal = true;
  int bn_recal_batches = 50;
  bool eval_after_mask = false;
  bool eval_dense = false;
  // training (fine-tuning defaults: see FinetuneTrainingDefaults)
  TrainingArgs t;
};

// Fine-tuning starts from trained weights: small LR, no warmup, few epochs.
// 4 epochs of fmnist_resnet with the distillation teacher keep 50% 8x8
// within 0.5 pt of dense on both seeds measured (-0.21 / -0.32 pt, 9.2-9.3
// minutes on 2 idle cores); 3 epochs met it on seed 1 only (-0.49 / -0.57
// pt, 7.3 minutes); docs/ACCURACY.md.
TrainingArgs FinetuneTrainingDefaults() {
  TrainingArgs t;
  t.epochs = 4;
  t.lr = 0.01;
  t.warmup = 0.0;
  return t;
}

// {"targets": {"<node or weight>": fraction, ...}} as written by
// `wbs sensitivity --targets-out`.
Result<std::map<std::string, double>> ReadPerLayerTargets(const std::string& path) {
  WBS_ASSIGN_OR_RETURN(std::string text, onnxio::ReadFileBytes(path));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("targets") || !j["targets"].is_object()) {
    return ParseError("{}: expected a JSON object with a \"targets\" object", path);
  }
  std::map<std::string, double> t;
  for (const auto& [name, v] : j["targets"].items()) {
    if (!v.is_number()) return ParseError("{}: target of '{}' is not a number", path, name);
    t[name] = v.get<double>();
  }
  return t;
}

// Copies parameters and buffers by name (same graph on both sides).
Status CopyState(train::GraphModule& from, train::GraphModule& to) {
  return train::TorchGuard("copying the dense weights", [&]() -> Status {
    torch::NoGradGuard no_grad;
    auto src_p = from.named_parameters(), dst_p = to.named_parameters();
    for (auto& p : dst_p) p.value().copy_(src_p[p.key()]);
    auto src_b = from.named_buffers(), dst_b = to.named_buffers();
    for (auto& b : dst_b) b.value().copy_(src_b[b.key()]);
    return Status::Ok();
  });
}

Status RunFinetune(const FinetuneArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  // Method options.
  train::MethodOptions mo;
  WBS_ASSIGN_OR_RETURN(mo.method, train::ParseMethod(a.method));
  WBS_ASSIGN_OR_RETURN(mo.rules, sparse::MakeLayerRules(a.block, a.include_first, a.exclude));
  WBS_ASSIGN_OR_RETURN(mo.score, sparse::ParseScore(a.score));
  mo.bn_scaled_scores = a.bn_scaled_scores;
  mo.select.sparsity = a.sparsity;
  mo.select.global = a.global;
  mo.select.min_layer = a.min_layer;
  mo.select.max_layer = a.max_layer;
  mo.select.keep_channels = a.keep_channels;
  mo.select.fill_target = a.fill_target;
  mo.select.seed = 0;
  if (!a.per_layer_targets.empty()) {
    WBS_ASSIGN_OR_RETURN(mo.select.per_layer, ReadPerLayerTargets(a.per_layer_targets));
  }
  WBS_ASSIGN_OR_RETURN(mo.schedule, train::ParseScheduleKind(a.prune_schedule));
  mo.step_fraction = a.step_fraction;
  mo.every_epochs = a.every;
  mo.cubic_end = a.cubic_end;
  mo.cubic_every = a.cubic_every;
  WBS_ASSIGN_OR_RETURN(mo.learned, train::ParseLearnedKind(a.learned));
  mo.learn_epochs = a.learn_epochs;
  mo.score_lr = a.score_lr;
  mo.prox_strength = a.prox_strength;
  mo.fisher_samples = a.fisher_samples;
  mo.fisher_micro_batch = a.fisher_micro_batch;
  mo.fisher_weighted = !a.fisher_unweighted;
  mo.bn_recal_batches = a.bn_recal ? a.bn_recal_batches : 0;
  mo.eval_after_mask = a.eval_after_mask;
  const bool talk = a.t.rank == 0 && !a.t.quiet;
  mo.log = [talk](const std::string& line) {
    if (talk) fmt::print(stderr, "wbs finetune: {}\n", line);
  };
  train::DistillOptions dopt;
  dopt.temperature = a.temperature;
  dopt.alpha = a.distill_alpha;
  if (a.distill) WBS_RETURN_IF_ERROR(train::ValidateDistillOptions(dopt));

  WBS_ASSIGN_OR_RETURN(train::TrainOptions o, MakeTrainOptions(a.t, "finetune"));
  WBS_ASSIGN_OR_RETURN(TrainingData d, LoadTrainingData(a.t, o));
  data::Dataset& train_set = d.train;
  data::Dataset& test_set = d.test;

  // The dense model: an ONNX file, or a zoo topology (with --checkpoint weights).
  std::unique_ptr<ir::Graph> graph;
  if (IsOnnxPath(a.model) || std::filesystem::exists(a.model)) {
    WBS_ASSIGN_OR_RETURN(auto shapes, ParseInputShapes(a.input_shapes));
    WBS_ASSIGN_OR_RETURN(graph, LoadModel(a.model, shapes));
  } else {
    zoo::ZooOptions zo;
    zo.seed = a.t.seed;
    zo.num_classes = train_set.num_classes;
    zo.image_size = train_set.height();
    WBS_ASSIGN_OR_RETURN(graph, zoo::BuildModel(a.model, zo));
    if (a.checkpoint.empty() && talk) {
      fmt::print(stderr,
                 "wbs finetune: warning: zoo model '{}' without --checkpoint has random weights\n",
                 a.model);
    }
  }
  train::ModuleOptions modopt;
  modopt.device = o.device;
  modopt.block_rows = mo.rules.block_rows;
  modopt.block_cols = mo.rules.block_cols;
  WBS_ASSIGN_OR_RETURN(auto module, train::GraphModule::Create(*graph, modopt));
  if (!a.checkpoint.empty()) {
    WBS_RETURN_IF_ERROR(train::LoadCheckpoint(a.checkpoint, *module, nullptr).status());
    module->ClearMasks();
  }
  std::shared_ptr<train::Distiller> distiller;
  if (a.distill) {
    WBS_ASSIGN_OR_RETURN(auto teacher, train::GraphModule::Create(*graph, modopt));
    WBS_RETURN_IF_ERROR(CopyState(*module, *teacher));
    WBS_ASSIGN_OR_RETURN(distiller, train::Distiller::Create(teacher, dopt));
  }
  graph.reset();

  WBS_ASSIGN_OR_RETURN(auto method, train::SparsityMethod::Create(module, mo));
  if (mo.method == train::Method::kIncremental &&
      mo.schedule == train::ScheduleKind::kIncremental) {
    WBS_ASSIGN_OR_RETURN(
        auto s, train::SparsitySchedule::Incremental(a.sparsity, a.step_fraction, a.every));
    if (s.FinalTick() >= a.t.epochs) {
      return InvalidArgument(
          "--method incremental reaches {} only at epoch {} ({}); give --epochs > {} or a larger "
          "--step-fraction / smaller --every",
          a.sparsity, s.FinalTick() + 1, s.Describe(), s.FinalTick());
    }
  }
  if (talk) {
    fmt::print(stderr,
               "wbs finetune: {} on {} ({} train, {} test): {}; {} epochs, batch {}, {} lr "
               "{} {}, seed {}{}{}\n",
               a.model, a.t.data, train_set.size(), test_set.size(), method->Describe(), o.epochs,
               o.batch_size, a.t.optimizer, o.lr, a.t.lr_schedule, o.seed,
               a.distill
                   ? fmt::format(", distillation T={} alpha={}", a.temperature, a.distill_alpha)
                   : "",
               a.bn_recal ? fmt::format(", BN recalibration {} batches", a.bn_recal_batches) : "");
  }
  if (!a.output.empty() && o.rank == 0) WBS_RETURN_IF_ERROR(EnsureParentDirectory(a.output));
  WBS_ASSIGN_OR_RETURN(auto trainer,
                       train::Trainer::Create(module, std::move(train_set), std::move(test_set), o,
                                              method->Hooks(distiller)));
  nlohmann::json summary;
  if (a.eval_dense && trainer->test_set().size() > 0) {
    WBS_ASSIGN_OR_RETURN(train::EvalResult dense, trainer->Evaluate(trainer->test_set()));
    summary["dense_test"] = EvalJson(dense);
    if (talk) {
      fmt::print(stderr, "wbs finetune: dense test accuracy {:.2f}% (loss {:.4f})\n",
                 100 * dense.accuracy, dense.loss);
    }
  }

  train::TrainResult r;
  if (o.epochs == 0) {
    // No retraining: masks only (and BN recalibration when asked).
    WBS_RETURN_IF_ERROR(method->OnEpochBegin(*trainer, 0));
    WBS_RETURN_IF_ERROR(method->Finish(*trainer));
    WBS_ASSIGN_OR_RETURN(r.final_val, trainer->Evaluate(trainer->val_set()));
    if (trainer->test_set().size() > 0) {
      WBS_ASSIGN_OR_RETURN(r.test, trainer->Evaluate(trainer->test_set()));
    }
  } else {
    WBS_ASSIGN_OR_RETURN(r, trainer->Run());
    const double before = method->level();
    WBS_RETURN_IF_ERROR(method->Finish(*trainer));
    if (method->level() != before || mo.method == train::Method::kLearned) {
      // The learned mask may only now be fixed (learn_epochs >= epochs).
      WBS_ASSIGN_OR_RETURN(r.final_val, trainer->Evaluate(trainer->val_set()));
      if (trainer->test_set().size() > 0) {
        WBS_ASSIGN_OR_RETURN(r.test, trainer->Evaluate(trainer->test_set()));
      }
    }
  }
  const std::vector<BlockMask> masks = method->CurrentMasks();
  const double achieved = train::BlockSparsity(masks);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  if (o.rank == 0) {
    if (!a.output.empty()) {
      WBS_ASSIGN_OR_RETURN(auto out, module->ExportGraph(/*fold_bn=*/true));
      WBS_RETURN_IF_ERROR(onnxio::ExportModel(*out, a.output));
    }
    fmt::print(
        "{} {} {:.4g} {}: {:.2f}% of blocks zero, val acc {:.2f}%, test acc {:.2f}% (loss "
        "{:.4f}), {:.1f} s{}\n",
        a.model, a.method, a.sparsity, a.block, 100 * achieved, 100 * r.final_val.accuracy,
        100 * r.test.accuracy, r.test.loss, seconds,
        r.resumed_from_epoch >= 0 ? fmt::format(" (resumed at epoch {})", r.resumed_from_epoch + 1)
                                  : "");
    if (!a.output.empty()) fmt::print("wrote {}\n", a.output);
    if (!a.summary.empty()) {
      summary["model"] = a.model;
      summary["method"] = a.method;
      if (mo.method == train::Method::kIncremental) summary["schedule"] = a.prune_schedule;
      if (mo.method == train::Method::kLearned) summary["learned"] = a.learned;
      summary["score"] = a.score;
      summary["bn_scaled_scores"] = a.bn_scaled_scores;
      summary["lr"] = a.t.lr;
      summary["threads"] = a.t.threads;
      summary["block"] = a.block;
      summary["target"] = a.sparsity;
      summary["global"] = a.global;
      summary["fill_target"] = a.fill_target;
      summary["block_sparsity"] = achieved;
      summary["epochs"] = a.t.epochs;
      summary["max_train_images"] = a.t.max_train_images;
      summary["seed"] = a.t.seed;
      summary["distill"] = a.distill;
      summary["bn_recal"] = a.bn_recal;
      summary["seconds"] = seconds;
      summary["train_seconds"] = r.seconds;
      if (method->after_mask().count > 0)
        summary["after_mask_val"] = EvalJson(method->after_mask());
      if (a.t.ema_decay > 0) {
        summary["ema"] = {{"decay", a.t.ema_decay},
                          {"epochs", a.t.ema_epochs},
                          {"used", r.ema_used},
                          {"val", EvalJson(r.ema_val)},
                          {"trained_val", EvalJson(r.raw_val)}};
      }
      summary["label_smoothing"] = a.t.label_smoothing;
      summary["weight_decay"] = a.t.weight_decay;
      summary["final_val"] = EvalJson(r.final_val);
      summary["test"] = EvalJson(r.test);
      WBS_RETURN_IF_ERROR(EnsureParentDirectory(a.summary));
      WBS_RETURN_IF_ERROR(onnxio::WriteFileAtomically(a.summary, summary.dump(2) + "\n"));
    }
  }
  return Status::Ok();
}

}  // namespace

Command AddFinetuneCommand(CLI::App& parent) {
  auto args = std::make_shared<FinetuneArgs>();
  args->t = FinetuneTrainingDefaults();
  CLI::App* app = parent.add_subcommand(
      "finetune",
      "Block-sparse fine-tuning of a dense model: oneshot, incremental, learned or fisher masks");
  app->add_option("model", args->model,
                  "Dense ONNX file, or a zoo model name (with --checkpoint for its weights)")
      ->required()
      ->type_name("MODEL");
  app->add_option("--checkpoint", args->checkpoint,
                  "Dense weights from a `wbs train` checkpoint (DIR/best.pt or last.pt)")
      ->type_name("FILE.pt");
  AddInputShapeOption(*app, args->input_shapes);
  app->add_option("-o,--output", args->output,
                  "Write the sparse model as ONNX (BN folded, masks in the metadata)")
      ->type_name("OUT.onnx");
  app->add_option("--summary", args->summary,
                  "Write the run's results (accuracies, sparsity, time, command) as JSON")
      ->type_name("OUT.json");

  auto* g = "Sparsity";
  app->add_option("--sparsity", args->sparsity, "Target fraction of zero blocks")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str()
      ->group(g);
  app->add_option("--block", args->block, "Block shape RxC (output x input channels)")
      ->capture_default_str()
      ->group(g);
  app->add_option("--method", args->method, "oneshot, incremental, learned or fisher")
      ->capture_default_str()
      ->group(g);
  app->add_option("--score", args->score,
                  "Block score of oneshot/incremental: l2, l1, mean-abs, var-block, var-tensor")
      ->capture_default_str()
      ->group(g);
  app->add_flag("--bn-scaled-scores,!--raw-scores", args->bn_scaled_scores,
                "Score a conv followed by BatchNorm on its BN-scaled (folded) weight; "
                "--raw-scores uses the raw weight (default: raw)")
      ->group(g);
  app->add_flag("--global", args->global,
                "One threshold over all layers (scores normalised per layer)")
      ->group(g);
  app->add_option("--min-layer", args->min_layer, "Global mode: minimum zero fraction per layer")
      ->capture_default_str()
      ->group(g);
  app->add_option("--max-layer", args->max_layer, "Global mode: maximum zero fraction per layer")
      ->capture_default_str()
      ->group(g);
  app->add_option("--exclude", args->exclude,
                  "Keep a layer dense (node or weight name or regex; repeatable)")
      ->take_first()
      ->allow_extra_args(false)
      ->group(g);
  app->add_flag("--include-first", args->include_first, "Also block the first conv")->group(g);
  app->add_flag("--keep-channels,!--no-keep-channels", args->keep_channels,
                "Never zero a whole block-row or block-column (default on)")
      ->group(g);
  app->add_flag("--fill-target,!--no-fill-target", args->fill_target,
                "Zero the blocks keep-channels leaves in small layers in the other layers "
                "instead, so the model reaches --sparsity (default on; per-layer mode)")
      ->group(g);
  app->add_option("--per-layer-targets", args->per_layer_targets,
                  "Per-layer targets from `wbs sensitivity --targets-out` (JSON)")
      ->type_name("FILE.json")
      ->group(g);

  g = "Methods";
  app->add_option("--prune-schedule", args->prune_schedule,
                  "incremental: 'incremental' (every --every epochs zero --step-fraction of the "
                  "kept blocks) or 'cubic' (Zhu & Gupta over steps)")
      ->capture_default_str()
      ->group(g);
  app->add_option("--step-fraction", args->step_fraction,
                  "incremental: fraction of the kept blocks zeroed per event (0.05-0.2)")
      ->capture_default_str()
      ->group(g);
  app->add_option("--every", args->every, "incremental: epochs between events")
      ->capture_default_str()
      ->group(g);
  app->add_option("--cubic-end", args->cubic_end,
                  "cubic: fraction of the run's steps at which the target is reached")
      ->capture_default_str()
      ->group(g);
  app->add_option("--cubic-every", args->cubic_every,
                  "cubic: steps between updates (0: about 20 updates)")
      ->capture_default_str()
      ->group(g);
  app->add_option("--learned", args->learned,
                  "learned: 'topk' (straight-through top-k over trainable block scores) or "
                  "'prox' (group-lasso proximal shrinking, then exact top-k)")
      ->capture_default_str()
      ->group(g);
  app->add_option("--learn-epochs", args->learn_epochs,
                  "learned: epochs with trainable masks before the fixed-mask fine-tune "
                  "(-1: half the epochs)")
      ->capture_default_str()
      ->group(g);
  app->add_option("--score-lr", args->score_lr, "learned topk: Adam LR of the block scores")
      ->capture_default_str()
      ->group(g);
  app->add_option("--prox-strength", args->prox_strength,
                  "learned prox: 1 = blocks outside the top-k reach zero half-way")
      ->capture_default_str()
      ->group(g);
  app->add_option("--fisher-samples", args->fisher_samples,
                  "fisher: training images for the Fisher estimate")
      ->capture_default_str()
      ->group(g);
  app->add_option("--fisher-micro-batch", args->fisher_micro_batch,
                  "fisher: images per squared gradient")
      ->capture_default_str()
      ->group(g);
  app->add_flag("--fisher-unweighted", args->fisher_unweighted,
                "fisher: score = Σ F (accumulated squared gradients) instead of Σ F w²/2")
      ->group(g);
  app->add_flag("--distill,!--no-distill", args->distill,
                "Knowledge distillation from the dense model (KL on softened logits; default "
                "on)")
      ->group(g);
  app->add_option("--temperature", args->temperature, "Distillation temperature")
      ->capture_default_str()
      ->group(g);
  app->add_option("--distill-alpha", args->distill_alpha,
                  "Weight of the distillation term (cross-entropy keeps weight 1)")
      ->capture_default_str()
      ->group(g);
  app->add_flag("--bn-recal,!--no-bn-recal", args->bn_recal,
                "Re-estimate BatchNorm statistics after every mask change (default on: "
                "without it a 50% 8x8 mask leaves fmnist_resnet near chance until retrained)")
      ->group(g);
  app->add_option("--bn-recal-batches", args->bn_recal_batches, "Batches for --bn-recal")
      ->capture_default_str()
      ->group(g);
  app->add_flag("--eval-after-mask", args->eval_after_mask,
                "Evaluate the validation split right after every mask change")
      ->group(g);
  app->add_flag("--eval-dense", args->eval_dense,
                "Evaluate the dense model on the test set first (in --summary)")
      ->group(g);

  TrainingFlags tf;
  tf.schedule_flag = "--lr-schedule";
  tf.group = "Training";
  AddTrainingOptions(*app, args->t, tf);
  app->footer(
      "Methods (docs/ACCURACY.md compares them):\n"
      "  oneshot      score blocks once (--score), zero the lowest, fine-tune with fixed masks\n"
      "  incremental  zero --step-fraction of the kept blocks every --every epochs until the\n"
      "               target (or --prune-schedule cubic: Zhu & Gupta over steps)\n"
      "  learned      trainable block scores, straight-through top-k at exactly the target\n"
      "               (or --learned prox), then fixed-mask fine-tuning\n"
      "  fisher       blocks ranked by the diagonal Fisher estimate of the loss increase\n\n"
      "Default recipe: oneshot L2, BN recalibration after masking, distillation from the\n"
      "dense model, SGD LR 0.01 cosine, 4 epochs; at high sparsity the blocks keep-channels\n"
      "protects in small layers are zeroed in the others (--fill-target). Start from a\n"
      "checkpoint with BatchNorm (a BN-folded ONNX has no statistics to recalibrate and\n"
      "retrains slowly).\n\n"
      "Examples:\n"
      "  wbs finetune fmnist_resnet --checkpoint out/dense/ckpt/best.pt --sparsity 0.5 \\\n"
      "      -o out/s50.onnx --summary out/s50.json\n"
      "  wbs finetune fmnist_resnet --checkpoint out/dense/ckpt/best.pt --sparsity 0.75 \\\n"
      "      --method incremental --step-fraction 0.2 --epochs 8");
  return {app, [args] { return RunFinetune(*args); }};
}

}  // namespace wbs::cli
