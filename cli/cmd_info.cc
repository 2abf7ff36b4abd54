// wbs info: what a model computes and how much — op histogram, per-layer
// shapes, MACs and block-sparsity eligibility, totals.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.h"
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

nlohmann::ordered_json ShapeJson(const Shape& s) { return nlohmann::ordered_json(s); }

nlohmann::ordered_json ValuesJson(const std::vector<ir::Value*>& values) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const ir::Value* v : values)
    out.push_back(
        {{"name", v->name}, {"dtype", DTypeName(v->dtype)}, {"shape", ShapeJson(v->shape)}});
  return out;
}

void PrintJson(const InfoArgs& a, const ir::Graph& g, const zoo::ModelStats& s) {
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  for (const zoo::LayerStats& l : s.layers) {
    layers.push_back({{"name", l.name},
                      {"op", l.op_type},
                      {"input_shape", ShapeJson(l.input_shape)},
                      {"output_shape", ShapeJson(l.output_shape)},
                      {"weight_shape", ShapeJson(l.weight_shape)},
                      {"macs", l.macs},
                      {"params", l.params},
                      {"blockable", l.blockable}});
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
  if (a.json)
    PrintJson(a, *graph, stats);
  else
    PrintText(a, *graph, stats);
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
      "is a Conv (group 1), Gemm or MatMul with a constant weight whose COUT and CIN are >= 8.\n\n"
      "Examples:\n"
      "  wbs info out/resnet50.onnx\n"
      "  wbs info model.onnx --input-shape input=8,3,224,224 --json > model.json");
  return {app, [args] { return RunInfo(*args); }};
}

}  // namespace wbs::cli
