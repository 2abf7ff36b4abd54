// wbs report: renders OUT/report.html and OUT/summary.json from whatever the
// pipeline stages left in OUT (report/report.h; docs/REPORT.md).
#include <fmt/format.h>

#include <filesystem>
#include <memory>

#include "cli/command.h"
#include "report/report.h"

namespace wbs::cli {

namespace {

struct ReportArgs {
  std::string out_dir;
  std::string html;
  std::string summary;
  std::string source_dir;
};

Status RunReport(const ReportArgs& a) {
  report::ReportOptions o;
  o.html_path = a.html;
  o.summary_path = a.summary;
  o.source_dir = a.source_dir;
  for (const std::string& p : {a.html, a.summary})
    if (!p.empty()) WBS_RETURN_IF_ERROR(EnsureParentDirectory(p));
  WBS_RETURN_IF_ERROR(report::WriteReport(a.out_dir, o));
  namespace fs = std::filesystem;
  fmt::print("wrote {} and {}\n",
             a.html.empty() ? (fs::path(a.out_dir) / "report.html").string() : a.html,
             a.summary.empty() ? (fs::path(a.out_dir) / "summary.json").string() : a.summary);
  return Status::Ok();
}

}  // namespace

Command AddReportCommand(CLI::App& parent) {
  auto args = std::make_shared<ReportArgs>();
  CLI::App* app = parent.add_subcommand(
      "report",
      "Build the pipeline report (self-contained HTML + summary.json) from an output folder");
  app->add_option("out", args->out_dir, "The pipeline's output folder (wbs pipeline)")
      ->type_name("OUT")
      ->required();
  app->add_option("-o,--output", args->html, "HTML file to write (default OUT/report.html)")
      ->type_name("FILE.html");
  app->add_option("--summary", args->summary, "JSON summary to write (default OUT/summary.json)")
      ->type_name("FILE.json");
  app->add_option("--source-dir", args->source_dir,
                  "Repository root for docs links and relative report.accuracy_results "
                  "(default: the tree wbs was built from)")
      ->type_name("DIR");
  app->footer(
      "Stages that did not run show as \"not run\" (null in summary.json). Sections: "
      "docs/REPORT.md.\n\n"
      "Examples:\n"
      "  wbs report out\n"
      "  wbs report out -o /tmp/report.html --summary /tmp/summary.json");
  return {app, [args] { return RunReport(*args); }};
}

}  // namespace wbs::cli
