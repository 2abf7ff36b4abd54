// wbs sensitivity: per-layer scan of accuracy vs block sparsity without
// retraining (one layer at a time), as a table and JSON, and optionally a
// per-layer budget for `wbs finetune --per-layer-targets`.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "cli/train/train_options.h"
#include "data/dataset.h"
#include "onnx/file_io.h"
#include "train/checkpoint.h"
#include "train/methods_data.h"
#include "train/sensitivity.h"
#include "zoo/zoo.h"

namespace wbs::cli {

namespace {

struct SensitivityArgs {
  std::string model;
  std::string checkpoint;
  std::vector<std::string> input_shapes;
  std::string data = "fashion-mnist";
  std::string levels = "0.25,0.5,0.75,0.9";
  std::string block = "8x8";
  std::string score = "l2";
  std::vector<std::string> exclude;
  bool include_first = false;
  bool keep_channels = true;
  int64_t max_images = 1000;
  int batch = 500;
  double val_fraction = 0.1;
  uint64_t seed = 1;
  int threads = 0;
  std::string json;
  std::string targets_out;
  double target = 0.5;
  bool quiet = false;
};

constexpr size_t kMaxNameWidth = 32;

Result<std::vector<double>> ParseLevels(const std::string& text) {
  std::vector<double> v;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      v.push_back(std::stod(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      return InvalidArgument("--levels: '{}' is not a number", item);
    }
  }
  if (v.empty()) return InvalidArgument("--levels: no levels in '{}'", text);
  return v;
}

Status RunSensitivity(const SensitivityArgs& a) {
  train::SensitivityOptions so;
  WBS_ASSIGN_OR_RETURN(so.levels, ParseLevels(a.levels));
  WBS_ASSIGN_OR_RETURN(so.rules, sparse::MakeLayerRules(a.block, a.include_first, a.exclude));
  WBS_ASSIGN_OR_RETURN(so.score, sparse::ParseScore(a.score));
  so.keep_channels = a.keep_channels;
  so.max_images = a.max_images;
  so.batch_size = a.batch;
  if (!(a.target >= 0.0 && a.target <= 1.0)) {
    return InvalidArgument("--target {} is not in [0, 1]", a.target);
  }
  if (a.threads > 0) at::set_num_threads(a.threads);

  // The validation split `wbs train`/`finetune` hold out with the same seed.
  WBS_ASSIGN_OR_RETURN(data::Dataset full, data::LoadDataset(a.data, data::Split::kTrain));
  data::Dataset val = data::SplitValidation(full, a.val_fraction, a.seed).second;
  if (val.size() == 0)
    return InvalidArgument("--val-fraction {} leaves no validation images", a.val_fraction);
  const data::Normalization norm = a.data.rfind("fashion-mnist", 0) == 0
                                       ? data::FashionMnistNormalization()
                                       : data::ComputeNormalization(full);
  full = data::Dataset();

  std::unique_ptr<ir::Graph> graph;
  const bool onnx = a.model.size() > 5 && a.model.compare(a.model.size() - 5, 5, ".onnx") == 0;
  if (onnx || std::filesystem::exists(a.model)) {
    WBS_ASSIGN_OR_RETURN(auto shapes, ParseInputShapes(a.input_shapes));
    WBS_ASSIGN_OR_RETURN(graph, LoadModel(a.model, shapes));
  } else {
    zoo::ZooOptions zo;
    zo.seed = a.seed;
    zo.num_classes = val.num_classes;
    zo.image_size = val.height();
    WBS_ASSIGN_OR_RETURN(graph, zoo::BuildModel(a.model, zo));
  }
  train::ModuleOptions mo;
  mo.block_rows = so.rules.block_rows;
  mo.block_cols = so.rules.block_cols;
  WBS_ASSIGN_OR_RETURN(auto module, train::GraphModule::Create(*graph, mo));
  if (!a.checkpoint.empty()) {
    WBS_RETURN_IF_ERROR(train::LoadCheckpoint(a.checkpoint, *module, nullptr).status());
  }
  size_t done = 0;
  so.progress = [&](size_t layer, size_t) {
    ++done;
    if (!a.quiet)
      fmt::print(stderr, "\rwbs sensitivity: {} evaluations (layer {})", done, layer + 1);
  };
  WBS_ASSIGN_OR_RETURN(train::SensitivityReport r, train::ScanSensitivity(*module, val, norm, so));
  if (!a.quiet) fmt::print(stderr, "\n");

  // Table: accuracy drop in points per layer and level.
  size_t w = 5;
  for (const auto& l : r.layers) w = std::max(w, std::min(kMaxNameWidth, l.node.size()));
  fmt::print("dense: {:.2f}% accuracy, loss {:.4f} on {} validation images\n",
             100 * r.dense.accuracy, r.dense.loss, r.dense.count);
  fmt::print("{:<{}}  {:>6}", "layer", w, "blocks");
  for (double l : r.levels) fmt::print("  {:>8}", fmt::format("{:g}%", 100 * l));
  fmt::print("   (accuracy drop in points, no retraining)\n");
  for (const auto& l : r.layers) {
    fmt::print("{:<{}}  {:>6}", l.node.substr(0, kMaxNameWidth), w, l.blocks);
    for (const auto& e : l.eval) fmt::print("  {:>8.2f}", 100 * (r.dense.accuracy - e.accuracy));
    fmt::print("\n");
  }

  std::map<std::string, double> targets;
  if (!a.targets_out.empty()) {
    WBS_ASSIGN_OR_RETURN(targets, train::AllocateTargets(r, a.target));
    nlohmann::json t;
    t["sparsity"] = a.target;
    t["targets"] = targets;
    t["source"] = a.model;
    WBS_RETURN_IF_ERROR(EnsureParentDirectory(a.targets_out));
    WBS_RETURN_IF_ERROR(onnxio::WriteFileAtomically(a.targets_out, t.dump(2) + "\n"));
    fmt::print("\nper-layer targets for {:g}% overall:\n", 100 * a.target);
    for (const auto& l : r.layers) fmt::print("  {:<{}}  {:.3f}\n", l.node, w, targets[l.node]);
    fmt::print("wrote {}\n", a.targets_out);
  }
  if (!a.json.empty()) {
    nlohmann::json j;
    j["model"] = a.model;
    j["block"] = a.block;
    j["score"] = a.score;
    j["levels"] = r.levels;
    j["dense"] = EvalJson(r.dense);
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& l : r.layers) {
      nlohmann::json e = nlohmann::json::array();
      for (const auto& x : l.eval) e.push_back(EvalJson(x));
      layers.push_back({{"node", l.node},
                        {"weight", l.weight},
                        {"blocks", l.blocks},
                        {"achieved", l.achieved},
                        {"eval", e}});
    }
    j["layers"] = layers;
    if (!targets.empty()) j["targets"] = targets;
    WBS_RETURN_IF_ERROR(EnsureParentDirectory(a.json));
    WBS_RETURN_IF_ERROR(onnxio::WriteFileAtomically(a.json, j.dump(2) + "\n"));
    fmt::print("wrote {}\n", a.json);
  }
  return Status::Ok();
}

}  // namespace

Command AddSensitivityCommand(CLI::App& parent) {
  auto args = std::make_shared<SensitivityArgs>();
  CLI::App* app = parent.add_subcommand(
      "sensitivity",
      "Per-layer accuracy vs block sparsity without retraining; per-layer targets for finetune");
  app->add_option("model", args->model, "ONNX file or zoo model name (with --checkpoint)")
      ->required()
      ->type_name("MODEL");
  app->add_option("--checkpoint", args->checkpoint, "Weights from a `wbs train` checkpoint")
      ->type_name("FILE.pt");
  AddInputShapeOption(*app, args->input_shapes);
  app->add_option("--data", args->data, "Dataset (as wbs train)")->capture_default_str();
  app->add_option("--levels", args->levels, "Comma-separated sparsity levels, increasing")
      ->capture_default_str();
  app->add_option("--block", args->block, "Block shape RxC")->capture_default_str();
  app->add_option("--score", args->score, "l2, l1, mean-abs, var-block, var-tensor")
      ->capture_default_str();
  app->add_option("--exclude", args->exclude, "Keep a layer dense (repeatable)")
      ->take_first()
      ->allow_extra_args(false);
  app->add_flag("--include-first", args->include_first, "Also scan the first conv");
  app->add_flag("--keep-channels,!--no-keep-channels", args->keep_channels,
                "Never zero a whole block-row or block-column (default on)");
  app->add_option("--max-images", args->max_images,
                  "Validation images per evaluation (0: the whole split)")
      ->capture_default_str();
  app->add_option("--batch", args->batch, "Evaluation batch size")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--val-fraction", args->val_fraction,
                  "Validation split of the training set (as wbs train)")
      ->capture_default_str();
  app->add_option("--seed", args->seed, "Seed of the validation split (as wbs train)")
      ->capture_default_str();
  app->add_option("--threads", args->threads, "Intra-op threads (0: LibTorch's default)")
      ->capture_default_str();
  app->add_option("--json", args->json, "Write the scan as JSON")->type_name("OUT.json");
  app->add_option("--targets-out", args->targets_out,
                  "Write per-layer targets meeting --target overall (for finetune "
                  "--per-layer-targets)")
      ->type_name("OUT.json");
  app->add_option("--target", args->target, "Overall block sparsity of --targets-out")
      ->capture_default_str();
  app->add_flag("-q,--quiet", args->quiet, "No progress display");
  app->footer(
      "Example:\n"
      "  wbs sensitivity out/fmnist_resnet.onnx --json out/sens.json --targets-out "
      "out/targets50.json --target 0.5\n"
      "  wbs finetune out/fmnist_resnet.onnx --sparsity 0.5 --per-layer-targets "
      "out/targets50.json");
  return {app, [args] { return RunSensitivity(*args); }};
}

}  // namespace wbs::cli
