// wbs info: what a model computes and how much — op histogram, per-layer
// shapes, MACs and block-sparsity eligibility, totals; and the block
// sparsity the weights already have (per layer and model: blocks, zero
// blocks, zero weights, bytes dense vs BSR-compressed with its index).
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "sparse/layers.h"
#include "sparse/sparsify.h"
#include "zoo/model_stats.h"

namespace wbs::cli {

namespace {

struct InfoArgs {
  std::string model;
  std::vector<std::string> input_shapes;
  bool json = false;
  bool all_nodes = false;
};

constexpr size_t kMaxNameWidth = 40;
constexpr double kBytesPerKB = 1024.0;

// The block sparsity one layer's weight has now: its Value's block mask when
// it carries one (`wbs sparsify` output, ONNX metadata), else its all-zero
// 8x8 blocks. Layers that cannot be blocked (grouped convs, run-time
// weights, fewer than one block) have none.
struct LayerSparsity {
  std::string name;
  std::string mask_source;  // "mask" or "zeros"
  sparse::MaskStats stats;
};
struct ModelSparsity {
  std::vector<LayerSparsity> layers;
  sparse::MaskStats total;  // over the layers listed
};

Result<ModelSparsity> ComputeSparsity(const ir::Graph& g) {
  sparse::LayerRules rules;
  rules.include_first = true;  // statistics cover the first conv too
  WBS_ASSIGN_OR_RETURN(std::vector<sparse::Layer> layers, sparse::FindLayers(g, rules));
  ModelSparsity out;
  for (const sparse::Layer& l : layers) {
    if (!l.blockable || l.weight == nullptr) continue;
    const Tensor& w = l.weight->constant;
    BlockMask mask;
    LayerSparsity ls;
    ls.name = l.node->name;
    if (l.weight->block_mask) {
      mask = *l.weight->block_mask;
      ls.mask_source = "mask";
    } else {
      Result<BlockMask> zeros = MaskFromZeroBlocks(w, rules.block_rows, rules.block_cols, l.layout);
      if (!zeros.ok()) return zeros.status().WithContext(l.node->Describe());
      mask = std::move(zeros).value();
      ls.mask_source = "zeros";
    }
    Result<sparse::MaskStats> st = sparse::ComputeMaskStats(w, mask);
    if (!st.ok()) return st.status().WithContext(l.node->Describe());
    ls.stats = *st;
    sparse::MaskStats& t = out.total;
    t.blocks += st->blocks;
    t.zero_blocks += st->zero_blocks;
    t.weights += st->weights;
    t.zero_weights += st->zero_weights;
    t.dense_bytes += st->dense_bytes;
    t.compressed_bytes += st->compressed_bytes;
    out.layers.push_back(std::move(ls));
  }
  return out;
}

nlohmann::ordered_json MaskStatsJson(const sparse::MaskStats& s) {
  return {{"blocks", s.blocks},
          {"zero_blocks", s.zero_blocks},
          {"block_sparsity", s.block_sparsity()},
          {"weights", s.weights},
          {"zero_weights", s.zero_weights},
          {"zero_weight_fraction", s.zero_fraction()},
          {"dense_bytes", s.dense_bytes},
          {"compressed_bytes", s.compressed_bytes}};
}

nlohmann::ordered_json ShapeJson(const Shape& s) { return nlohmann::ordered_json(s); }

nlohmann::ordered_json ValuesJson(const std::vector<ir::Value*>& values) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const ir::Value* v : values)
    out.push_back(
        {{"name", v->name}, {"dtype", DTypeName(v->dtype)}, {"shape", ShapeJson(v->shape)}});
  return out;
}

void PrintJson(const InfoArgs& a, const ir::Graph& g, const zoo::ModelStats& s,
               const ModelSparsity& sp) {
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  for (const zoo::LayerStats& l : s.layers) {
    auto it = std::find_if(sp.layers.begin(), sp.layers.end(),
                           [&](const LayerSparsity& x) { return x.name == l.name; });
    nlohmann::ordered_json sparsity = nullptr;
    if (it != sp.layers.end()) {
      sparsity = MaskStatsJson(it->stats);
      sparsity["block"] = "8x8";
      sparsity["source"] = it->mask_source;
    }
    layers.push_back({{"name", l.name},
                      {"op", l.op_type},
                      {"input_shape", ShapeJson(l.input_shape)},
                      {"output_shape", ShapeJson(l.output_shape)},
                      {"weight_shape", ShapeJson(l.weight_shape)},
                      {"macs", l.macs},
                      {"params", l.params},
                      {"blockable", l.blockable},
                      {"sparsity", sparsity}});
  }
  nlohmann::ordered_json j = {
      {"model", a.model},
      {"graph", g.name},
      {"opset", g.opset},
      {"inputs", ValuesJson(g.inputs)},
      {"outputs", ValuesJson(g.outputs)},
      {"op_histogram", s.op_histogram},
      {"layers", layers},
      {"totals",
       {{"macs", s.total_macs},
        {"gmacs", static_cast<double>(s.total_macs) * 1e-9},
        {"parameters", s.num_parameters},
        {"parameter_bytes", s.parameter_bytes},
        {"blockable_layers", s.num_blockable},
        {"blockable_macs", s.blockable_macs}}},
      {"sparsity", MaskStatsJson(sp.total)},
  };
  fmt::print("{}\n", j.dump(2));
}

std::string ValuesText(const std::vector<ir::Value*>& values) {
  std::string out;
  for (const ir::Value* v : values)
    out += fmt::format("{}{} {}{}", out.empty() ? "" : ", ", v->name, DTypeName(v->dtype),
                       v->has_shape ? ShapeToString(v->shape) : "[?]");
  return out;
}

std::string KB(int64_t bytes) {
  return fmt::format("{:.1f}", static_cast<double>(bytes) / kBytesPerKB);
}
std::string Percent(double f) { return fmt::format("{:.1f}%", 100.0 * f); }

// The per-layer block-sparsity table, or one line when no weight has a zero
// block.
void PrintSparsityText(const ModelSparsity& sp) {
  const sparse::MaskStats& t = sp.total;
  if (t.zero_blocks == 0) {
    fmt::print(
        "\nblock sparsity (8x8): none; {} blocks over {} blockable layers, {} of weights zero\n",
        WithThousands(t.blocks), sp.layers.size(), Percent(t.zero_fraction()));
    return;
  }
  std::vector<std::array<std::string, 8>> rows;
  rows.push_back(
      {"layer", "blocks", "zero blk", "block-sp", "zero-w", "dense KB", "BSR KB", "from"});
  for (const LayerSparsity& l : sp.layers) {
    const sparse::MaskStats& s = l.stats;
    rows.push_back({l.name, WithThousands(s.blocks), WithThousands(s.zero_blocks),
                    Percent(s.block_sparsity()), Percent(s.zero_fraction()), KB(s.dense_bytes),
                    KB(s.compressed_bytes), l.mask_source});
  }
  std::array<size_t, 8> w{};
  for (const auto& r : rows)
    for (size_t c = 0; c < r.size(); ++c) w[c] = std::max(w[c], r[c].size());
  w[0] = std::min(w[0], kMaxNameWidth);
  fmt::print("\nblock sparsity (8x8 blocks; from = the weight's mask or its all-zero blocks):\n");
  for (const auto& r : rows)
    fmt::print("{:<{}}  {:>{}}  {:>{}}  {:>{}}  {:>{}}  {:>{}}  {:>{}}  {}\n", r[0], w[0], r[1],
               w[1], r[2], w[2], r[3], w[3], r[4], w[4], r[5], w[5], r[6], w[6], r[7]);
  fmt::print(
      "sparsity total: {} of {} blocks zero ({} block sparsity), {} of weights zero; {} KB dense "
      "-> {} KB BSR (values + int32 row pointers and column indices)\n",
      WithThousands(t.zero_blocks), WithThousands(t.blocks), Percent(t.block_sparsity()),
      Percent(t.zero_fraction()), KB(t.dense_bytes), KB(t.compressed_bytes));
}

void PrintText(const InfoArgs& a, const ir::Graph& g, const zoo::ModelStats& s) {
  fmt::print("model:   {} (graph '{}', opset {})\n", a.model, g.name, g.opset);
  fmt::print("inputs:  {}\n", ValuesText(g.inputs));
  fmt::print("outputs: {}\n", ValuesText(g.outputs));

  std::vector<std::pair<std::string, int64_t>> ops(s.op_histogram.begin(), s.op_histogram.end());
  std::stable_sort(ops.begin(), ops.end(), [](auto& x, auto& y) { return x.second > y.second; });
  std::string hist;
  for (auto& [op, n] : ops) hist += fmt::format("{}{} {}", hist.empty() ? "" : ", ", op, n);
  fmt::print("ops:     {} nodes: {}\n\n", g.num_nodes(), hist);

  // Column widths from the rows shown; names are capped so one long
  // torch.onnx name does not push every row off the screen.
  std::vector<std::array<std::string, 7>> rows;
  rows.push_back({"layer", "op", "input", "output", "weight", "MACs", "blockable"});
  int64_t weighted = 0;
  for (const zoo::LayerStats& l : s.layers) {
    const bool has_weight = !l.weight_shape.empty();
    weighted += has_weight;
    if (!a.all_nodes && !has_weight && l.macs == 0) continue;
    rows.push_back({l.name, l.op_type, ShapeToString(l.input_shape), ShapeToString(l.output_shape),
                    has_weight ? ShapeToString(l.weight_shape) : "-", WithThousands(l.macs),
                    l.blockable ? "yes" : "no"});
  }
  std::array<size_t, 7> w{};
  for (const auto& r : rows)
    for (size_t c = 0; c < r.size(); ++c) w[c] = std::max(w[c], r[c].size());
  w[0] = std::min(w[0], kMaxNameWidth);
  for (const auto& r : rows) {
    fmt::print("{:<{}}  {:<{}}  {:<{}}  {:<{}}  {:<{}}  {:>{}}  {}\n", r[0], w[0], r[1], w[1], r[2],
               w[2], r[3], w[3], r[4], w[4], r[5], w[5], r[6]);
  }
  const double pct = s.total_macs ? 100.0 * static_cast<double>(s.blockable_macs) /
                                        static_cast<double>(s.total_macs)
                                  : 0.0;
  fmt::print(
      "\ntotal: {:.3f} GMAC, {} parameters ({:.1f} MB); {} of {} weighted layers "
      "blockable (8x8), {:.1f}% of MACs\n",
      static_cast<double>(s.total_macs) * 1e-9, WithThousands(s.num_parameters),
      static_cast<double>(s.parameter_bytes) * 1e-6, s.num_blockable, weighted, pct);
}

Status RunInfo(const InfoArgs& a) {
  WBS_ASSIGN_OR_RETURN(auto shapes, ParseInputShapes(a.input_shapes));
  WBS_ASSIGN_OR_RETURN(std::unique_ptr<ir::Graph> graph, LoadModel(a.model, shapes));
  WBS_ASSIGN_OR_RETURN(zoo::ModelStats stats, zoo::ComputeModelStats(*graph));
  WBS_ASSIGN_OR_RETURN(ModelSparsity sparsity, ComputeSparsity(*graph));
  if (a.json) {
    PrintJson(a, *graph, stats, sparsity);
  } else {
    PrintText(a, *graph, stats);
    PrintSparsityText(sparsity);
  }
  return Status::Ok();
}

}  // namespace

Command AddInfoCommand(CLI::App& parent) {
  auto args = std::make_shared<InfoArgs>();
  CLI::App* app = parent.add_subcommand(
      "info", "Show a model's ops, per-layer shapes, MACs, parameters and 8x8-blockable layers");
  app->add_option("model", args->model, "ONNX model")->required()->type_name("MODEL.onnx");
  AddInputShapeOption(*app, args->input_shapes);
  app->add_flag("--json", args->json, "Print JSON (every node, with totals) instead of tables");
  app->add_flag("--all-nodes", args->all_nodes,
                "List every node in the table, not only Conv/ConvTranspose/Gemm/MatMul");
  app->footer(
      "MACs are counted for Conv, ConvTranspose, Gemm and MatMul. A layer is blockable when it\n"
      "is a Conv (group 1), Gemm or MatMul with a constant weight whose COUT and CIN are >= 8.\n"
      "The block-sparsity table counts, per blockable layer (the first conv included), the 8x8\n"
      "blocks the weight's mask zeroes (`wbs sparsify` output) or, without a mask, its all-zero\n"
      "blocks; BSR KB = kept blocks + int32 block-row pointers and column indices.\n\n"
      "Examples:\n"
      "  wbs info out/resnet50.onnx\n"
      "  wbs info model.onnx --input-shape input=8,3,224,224 --json > model.json");
  return {app, [args] { return RunInfo(*args); }};
}

}  // namespace wbs::cli
