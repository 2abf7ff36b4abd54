// wbs sparsify: one-shot block sparsification of an ONNX model. Scores every
// block of every blockable layer, zeroes the weakest, prints a per-layer
// table and writes an ONNX file whose weights hold the zeros and whose
// metadata records the masks (onnx/mask_metadata.h).
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "onnx/model_io.h"
#include "sparse/sparsify.h"

namespace wbs::cli {

namespace {

struct SparsifyArgs {
  std::string input;
  std::string output;
  std::vector<std::string> input_shapes;
  std::string block = "8x8";
  double sparsity = 0.5;
  std::string score = "l2";
  bool global = false;
  double min_layer = 0.0;
  double max_layer = 1.0;
  std::vector<std::string> exclude;
  bool include_first = false;
  bool keep_channels = true;
  uint64_t seed = 0;
  bool json = false;
};

constexpr size_t kMaxNameWidth = 40;
constexpr double kBytesPerKB = 1024.0;

std::string Percent(double f) { return fmt::format("{:.1f}%", 100.0 * f); }
std::string KB(int64_t bytes) {
  return fmt::format("{:.1f}", static_cast<double>(bytes) / kBytesPerKB);
}

void PrintTable(const sparse::SparsifyReport& r) {
  constexpr size_t kCols = 10;
  std::vector<std::array<std::string, kCols>> rows;
  rows.push_back({"layer", "op", "weight", "blocks", "zeroed", "block-sp", "zero-w", "dense KB",
                  "comp KB", "note"});
  for (const sparse::LayerReport& l : r.layers) {
    const bool has = !l.weight.empty();
    if (l.blockable) {
      rows.push_back({l.name, l.op_type, ShapeToString(l.weight_shape),
                      WithThousands(l.stats.blocks), WithThousands(l.stats.zero_blocks),
                      Percent(l.stats.block_sparsity()), Percent(l.stats.zero_fraction()),
                      KB(l.stats.dense_bytes), KB(l.stats.compressed_bytes), ""});
    } else {
      rows.push_back({l.name, l.op_type, has ? ShapeToString(l.weight_shape) : "-", "-", "-", "-",
                      l.stats.weights ? Percent(l.stats.zero_fraction()) : "-",
                      l.stats.weights ? KB(l.stats.dense_bytes) : "-",
                      l.stats.weights ? KB(l.stats.compressed_bytes) : "-", "dense: " + l.reason});
    }
  }
  std::array<size_t, kCols> w{};
  for (const auto& row : rows)
    for (size_t c = 0; c < kCols; ++c) w[c] = std::max(w[c], row[c].size());
  w[0] = std::min(w[0], kMaxNameWidth);
  for (const auto& row : rows) {
    fmt::print("{:<{}}  {:<{}}  {:<{}}  {:>{}}  {:>{}}  {:>{}}  {:>{}}  {:>{}}  {:>{}}  {}\n",
               row[0], w[0], row[1], w[1], row[2], w[2], row[3], w[3], row[4], w[4], row[5], w[5],
               row[6], w[6], row[7], w[7], row[8], w[8], row[9]);
  }
  const sparse::MaskStats& t = r.total;
  fmt::print(
      "\ntotal: {} of {} weighted layers blocked; {} of {} blocks zeroed ({} block sparsity); "
      "{} of weights zero; {} KB dense -> {} KB compressed (BSR, int32 indices)\n",
      r.num_blockable, r.layers.size(), WithThousands(t.zero_blocks), WithThousands(t.blocks),
      Percent(t.block_sparsity()), Percent(t.zero_fraction()), KB(t.dense_bytes),
      KB(t.compressed_bytes));
}

nlohmann::ordered_json StatsJson(const sparse::MaskStats& s) {
  return {{"blocks", s.blocks},
          {"zero_blocks", s.zero_blocks},
          {"block_sparsity", s.block_sparsity()},
          {"weights", s.weights},
          {"zero_weights", s.zero_weights},
          {"zero_fraction", s.zero_fraction()},
          {"dense_bytes", s.dense_bytes},
          {"compressed_bytes", s.compressed_bytes}};
}

void PrintJson(const SparsifyArgs& a, const sparse::SparsifyOptions& o,
               const sparse::SparsifyReport& r) {
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  for (const sparse::LayerReport& l : r.layers) {
    nlohmann::ordered_json j = {{"name", l.name},
                                {"op", l.op_type},
                                {"weight", l.weight},
                                {"weight_shape", l.weight_shape},
                                {"blockable", l.blockable}};
    if (!l.blockable) j["reason"] = l.reason;
    j["stats"] = StatsJson(l.stats);
    layers.push_back(std::move(j));
  }
  nlohmann::ordered_json j = {
      {"input", a.input},
      {"output", a.output},
      {"block", {o.rules.block_rows, o.rules.block_cols}},
      {"score", sparse::ScoreName(o.score)},
      {"mode", o.global ? "global" : "per-layer"},
      {"sparsity", o.sparsity},
      {"min_layer", o.min_layer},
      {"max_layer", o.max_layer},
      {"keep_channels", o.keep_channels},
      {"layers", layers},
      {"blockable_layers", r.num_blockable},
      {"total", StatsJson(r.total)},
  };
  fmt::print("{}\n", j.dump(2));
}

Status RunSparsify(const SparsifyArgs& a) {
  sparse::SparsifyOptions o;
  WBS_ASSIGN_OR_RETURN(o.rules, sparse::MakeLayerRules(a.block, a.include_first, a.exclude));
  WBS_ASSIGN_OR_RETURN(o.score, sparse::ParseScore(a.score));
  o.sparsity = a.sparsity;
  o.global = a.global;
  o.min_layer = a.min_layer;
  o.max_layer = a.max_layer;
  o.keep_channels = a.keep_channels;
  o.seed = a.seed;
  WBS_RETURN_IF_ERROR(sparse::ValidateOptions(o));

  WBS_ASSIGN_OR_RETURN(auto shapes, ParseInputShapes(a.input_shapes));
  WBS_ASSIGN_OR_RETURN(std::unique_ptr<ir::Graph> graph, LoadModel(a.input, shapes));
  Result<sparse::SparsifyReport> report = sparse::Sparsify(*graph, o);
  if (!report.ok()) return report.status().WithContext(a.input);

  WBS_RETURN_IF_ERROR(EnsureParentDirectory(a.output));
  WBS_RETURN_IF_ERROR(onnxio::ExportModel(*graph, a.output));
  if (a.json) {
    PrintJson(a, o, *report);
    return Status::Ok();
  }
  fmt::print("{}: block {}x{}, score {}, {} target {}{}{}\n\n", a.input, o.rules.block_rows,
             o.rules.block_cols, sparse::ScoreName(o.score), o.global ? "global" : "per-layer",
             Percent(o.sparsity),
             o.global
                 ? fmt::format(" (per layer {}..{})", Percent(o.min_layer), Percent(o.max_layer))
                 : "",
             o.keep_channels ? ", every block row/column keeps a block" : "");
  PrintTable(*report);
  fmt::print("wrote {}\n", a.output);
  return Status::Ok();
}

}  // namespace

Command AddSparsifyCommand(CLI::App& parent) {
  auto args = std::make_shared<SparsifyArgs>();
  CLI::App* app = parent.add_subcommand(
      "sparsify", "Zero the weakest weight blocks of an ONNX model (one-shot block sparsity)");
  app->add_option("input", args->input, "Input ONNX model")->required()->type_name("IN.onnx");
  app->add_option("-o,--output", args->output, "Output ONNX model (written atomically)")
      ->required()
      ->type_name("OUT.onnx");
  AddInputShapeOption(*app, args->input_shapes);
  app->add_option("--block", args->block, "Block shape COUTxCIN, each edge 1..16")
      ->type_name("RxC")
      ->capture_default_str();
  app->add_option("--sparsity", args->sparsity, "Target fraction of zero blocks")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app->add_option("--score", args->score,
                  "Block score: l2, l1, mean-abs, var-block (variance around the block mean), "
                  "var-tensor (around the tensor mean)")
      ->capture_default_str();
  app->add_flag("--global", args->global,
                "One threshold over all layers (scores normalised by each layer's mean score) "
                "instead of the same target per layer");
  app->add_option("--min-layer", args->min_layer, "With --global: least zero fraction per layer")
      ->check(CLI::Range(0.0, 1.0))
      ->needs("--global")
      ->capture_default_str();
  app->add_option("--max-layer", args->max_layer, "With --global: largest zero fraction per layer")
      ->check(CLI::Range(0.0, 1.0))
      ->needs("--global")
      ->capture_default_str();
  app->add_option("--exclude", args->exclude,
                  "Leave a layer dense: node or weight name, exact or as a regular expression "
                  "matching the whole name (repeatable)")
      ->type_name("REGEX")
      ->allow_extra_args(false)  // one pattern per --exclude: a model path never becomes one
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app->add_flag("--include-first", args->include_first,
                "Also sparsify the first Conv (left dense by default, as in the paper)");
  app->add_flag("--keep-channels,!--no-keep-channels", args->keep_channels,
                "Keep the best block of every block row and column, so no channel dies "
                "(default on)");
  app->add_option("--seed", args->seed, "Breaks ties between equal scores (0: by block index)")
      ->capture_default_str();
  app->add_flag("--json", args->json, "Print the per-layer report as JSON instead of a table");
  app->footer(
      "Blockable layers: Conv with group 1, Gemm/MatMul with a constant 2-D weight, with at\n"
      "least one full block; ConvTranspose and grouped convs stay dense. Per-layer mode zeroes\n"
      "exactly round(sparsity x blocks) blocks per layer unless --keep-channels forbids it.\n\n"
      "Examples:\n"
      "  wbs sparsify out/resnet50.onnx -o out/resnet50_s50.onnx --block 8x8 --sparsity 0.5\n"
      "  wbs sparsify m.onnx -o s.onnx --sparsity 0.75 --global --max-layer 0.9 --exclude 'fc'");
  return {app, [args] { return RunSparsify(*args); }};
}

}  // namespace wbs::cli
