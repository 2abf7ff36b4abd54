// Readers for the files the pipeline stages leave in OUT/ (the layout is in
// docs/PIPELINE.md): the AIE compiler's layers.tsv, the aie-sweep table, the
// simulator's text report and Chrome trace, and the block masks of a sparse
// ONNX model. Each parser takes the file's text (so unit tests need no files)
// and a `what` (usually the path) that starts every error message.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/block_mask.h"
#include "core/status.h"
#include "report/svg.h"

namespace wbs::report {

// The repository root for docs links and the config's relative paths:
// `configured` (ReportOptions::source_dir), else the source tree wbs was
// built from.
std::string SourceDir(const std::string& configured);

// `wbs compile -o DIR` DIR/layers.tsv: "# <model> on <target> (RxC): estimate
// X ms, roofline Y ms, efficiency Z", a header row, one row per layer.
struct AieLayer {
  std::string name, kind, binds;
  double macs_dense = 0, macs = 0, time_us = 0, roofline_us = 0, efficiency = 0;
};
struct AieLayers {
  std::string title;  // the comment line without "# "
  double estimate_ms = 0, roofline_ms = 0;
  std::vector<AieLayer> layers;
};
Result<AieLayers> ParseLayersTsv(const std::string& text, const std::string& what);

// `wbs aie-sweep -o FILE`: the first table (model, array, sparsity, used,
// estimate_ms, roofline_ms, efficiency, compile_s); the dense/sparse summary
// table after the blank line is derived data and skipped.
struct SweepRow {
  std::string model, array, used;
  double sparsity = 0, estimate_ms = 0, roofline_ms = 0, efficiency = 0;
};
Result<std::vector<SweepRow>> ParseSweepTsv(const std::string& text, const std::string& what);

// `wbs simulate --report FILE`: per-layer rows and the "total: N cycles ...,
// estimate M cycles" line.
struct SimLayer {
  std::string name, op;
  double sim_cycles = 0, estimate_cycles = 0;
};
struct SimReport {
  std::vector<SimLayer> layers;
  double sim_cycles = 0, estimate_cycles = 0;
  std::optional<bool> bit_exact;  // JSON report only (null there when --check was not run)
};
Result<SimReport> ParseSimReport(const std::string& text, const std::string& what);
// `wbs simulate --report FILE.json`: "sim_cycles", "estimate_cycles",
// "bit_exact" (bool or null), "layers": [{"name", "op", "sim_cycles", "est_cycles"}].
Result<SimReport> SimReportFromJson(const nlohmann::json& j, const std::string& what);

// A Chrome trace (JSON object with "traceEvents", complete "X" events, and
// "M" process/thread names) as a Timeline whose labels are layers (the event
// name's second word, e.g. "COMP layer1.0.conv1", or args.layer). When there
// are more than max_rows threads, threads named "*.core" keep a row each and
// each process's other threads share one row ("<process> (N channels)").
Result<Timeline> ParseChromeTrace(const nlohmann::json& trace, const std::string& what,
                                  int max_rows = 40);

// One masked layer of a sparse model (graph order).
struct MaskedLayer {
  std::string node, op, weight;
  BlockMask mask;
};
// Imports the ONNX model (masks from its metadata, onnx/mask_metadata.h) and
// lists the layers (sparse::FindLayers) whose weight carries a mask.
Result<std::vector<MaskedLayer>> LoadMaskedLayers(const std::string& onnx_path);

// Reads a whole text file; NotFound names the path.
Result<std::string> ReadText(const std::string& path);
// Reads and parses a JSON file; errors name the path.
Result<nlohmann::json> ReadJson(const std::string& path);
// j[a][b]... as a double when every step exists and the leaf is a number.
std::optional<double> NumberAt(const nlohmann::json& j, std::initializer_list<const char*> path);

}  // namespace wbs::report
