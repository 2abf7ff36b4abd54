// wbs pipeline: the whole flow (train -> block sparsity -> int8 -> AIE
// compile -> simulate -> CPU benchmark -> report) from one config, with a
// stage cache (pipeline/pipeline.h, docs/PIPELINE.md).
#include <fmt/format.h>

#include "cli/command.h"
#include "cli/plugin.h"
#include "core/progress.h"
#include "pipeline/config.h"
#include "pipeline/pipeline.h"

namespace wbs::cli {

namespace {

struct PipelineArgs {
  std::string config, output, only, from;
  bool force = false, print_config = false, quiet = false;
};

Status RunPipelineCommand(const PipelineArgs& a) {
  if (a.print_config && a.config.empty()) {
    fmt::print("{}\n", pipeline::DefaultConfigText());
    return Status::Ok();
  }
  WBS_ASSIGN_OR_RETURN(pipeline::Config config, pipeline::LoadConfig(a.config));
  if (!a.output.empty()) {
    config.output = a.output;
    config.resolved["output"] = a.output;
  }
  if (a.print_config) {
    fmt::print("{}\n", config.resolved.dump(2));
    return Status::Ok();
  }
  if (a.quiet) SetProgressEnabled(false);
  pipeline::RunOptions o;
  o.force = a.force;
  o.only = a.only;
  o.from = a.from;
  o.with_train = TrainPluginAvailable();
  WBS_ASSIGN_OR_RETURN(std::string self, ExecutablePath());
  o.runner = pipeline::ChildProcessRunner(self);
  return pipeline::RunPipeline(config, o);
}

}  // namespace

Command AddPipelineCommand(CLI::App& parent) {
  auto args = std::make_shared<PipelineArgs>();
  CLI::App* app = parent.add_subcommand(
      "pipeline",
      "Run every stage: train, block sparsity, int8, AIE compile, simulate, benchmark, report");
  app->add_option("config", args->config, "Config file (JSON; default: the embedded demo config)")
      ->type_name("CONFIG.json");
  app->add_option("-o,--output", args->output, "Output folder (overrides the config's 'output')")
      ->type_name("DIR");
  app->add_flag("--force", args->force, "Rerun every stage (ignore the stage cache)");
  app->add_option("--only", args->only,
                  "Run only this stage (dense, sparse, int8, aie, sim, bench, report)")
      ->type_name("STAGE");
  app->add_option("--from", args->from, "Rerun this stage and every later one")->type_name("STAGE");
  app->add_flag(
      "--print-config", args->print_config,
      "Print the config (the embedded default, or CONFIG resolved with defaults) and exit");
  app->add_flag("-q,--quiet", args->quiet, "No progress display");
  app->footer(
      "Outputs: OUT/<stage>/ with stage.json written last (the cache), OUT/pipeline.json,\n"
      "OUT/report.html. Config keys and the output layout: docs/PIPELINE.md.\n\n"
      "Examples:\n"
      "  wbs pipeline                                   # the demo (make demo)\n"
      "  wbs pipeline configs/pipeline/tiny.json --force\n"
      "  wbs pipeline my.json --from aie");
  return {app, [args] { return RunPipelineCommand(*args); }};
}

}  // namespace wbs::cli
