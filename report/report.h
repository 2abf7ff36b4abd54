// The pipeline report: OUT/report.html (one self-contained page: inline CSS
// and SVG, no network) and OUT/summary.json (the same key numbers for
// machines), built from whatever stages of `wbs pipeline` left in OUT/
// (layout: /docs/PIPELINE.md; what the page shows: docs/REPORT.md).
//
// Missing stages are not errors: their numbers are null in summary.json and
// "not run" on the page, so the report works on partial runs. A file that
// exists but cannot be parsed is reported on the page (and in
// summary.json "problems") rather than failing the whole report; only an
// unusable OUT folder or a failed write is an error.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"

namespace wbs::report {

struct ReportOptions {
  // Where to write the page and the summary; empty = OUT/report.html and
  // OUT/summary.json.
  std::string html_path;
  std::string summary_path;
  // Repository root, for docs links and for relative entries of the
  // config's report.accuracy_results; empty = the source tree wbs was built from.
  std::string source_dir;
  // Timeline rows before the simulator's DMA channels are folded per process.
  int max_timeline_rows = 40;
};

// The summary.json document for OUT (also what the page shows): key numbers
// under "key" (null when the stage did not run), stage states, per-layer
// data and "problems" (unreadable files).
Result<nlohmann::json> BuildSummary(const std::string& out_dir, const ReportOptions& options);

// Renders the page for a summary built by BuildSummary.
Result<std::string> RenderHtml(const nlohmann::json& summary, const std::string& out_dir,
                               const ReportOptions& options);

// BuildSummary + RenderHtml, then writes both files atomically.
Status WriteReport(const std::string& out_dir, const ReportOptions& options);

}  // namespace wbs::report
