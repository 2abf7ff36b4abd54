// The `wbs` command-line tool: one file per subcommand (cli/cmd_*.cc).
//
// A subcommand registers its options on the CLI11 app and returns an action.
// CLI11 parses the whole command line first (usage errors: exit code 2);
// main then runs the chosen action, which reports failures as a Status
// (printed as one line "wbs: error: <message>", exit code 1). Actions write
// output files atomically, so a failed command leaves no partial file.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "ir/graph.h"

namespace wbs::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<Status()> run;
  // Set instead of `run` for a command that lives in a plugin (cli/plugin.h):
  // it gets the whole command line and returns the exit code, because the
  // plugin parses and reports errors itself.
  std::function<int(int argc, char** argv)> run_plugin = nullptr;
};

Command AddZooCommand(CLI::App& parent);      // cli/cmd_zoo.cc
Command AddInfoCommand(CLI::App& parent);     // cli/cmd_info.cc
Command AddRunCommand(CLI::App& parent);      // cli/cmd_run.cc
Command AddConvertCommand(CLI::App& parent);  // cli/cmd_convert.cc
Command AddSparsifyCommand(CLI::App& parent);  // cli/cmd_sparsify.cc
Command AddQuantizeCommand(CLI::App& parent);  // cli/cmd_quantize.cc
Command AddAieTargetCommand(CLI::App& parent);  // cli/cmd_aie_target.cc
Command AddCompileCommand(CLI::App& parent);    // cli/cmd_compile.cc
Command AddAieSweepCommand(CLI::App& parent);   // cli/cmd_aie_sweep.cc
Command AddSimulateCommand(CLI::App& parent);   // cli/cmd_simulate.cc
Command AddReportCommand(CLI::App& parent);     // cli/cmd_report.cc
Command AddPipelineCommand(CLI::App& parent);   // cli/cmd_pipeline.cc
#ifdef WBS_WITH_TRAIN
// LibTorch commands (cli/train/, built into the plugin libwbs_train_cli.so
// with WBS_BUILD_TRAIN; see cli/plugin.h).
Command AddTrainCommand(CLI::App& parent);        // cli/train/cmd_train.cc
Command AddFinetuneCommand(CLI::App& parent);     // cli/train/cmd_finetune.cc
Command AddSensitivityCommand(CLI::App& parent);  // cli/train/cmd_sensitivity.cc
#endif
// Every command main() offers, in --help order (cli/commands.cc): the
// built-in ones, then placeholders for the plugin commands (cli/plugin.h).
std::vector<Command> AddAllCommands(CLI::App& app);

// Parses the command line with the commands `add_commands` registers and runs
// the chosen one; returns the exit code (0 success, 1 failed command with one
// line "wbs: error: <message>" on stderr, 2 usage error). Shared by the `wbs`
// executable and its plugins, so both parse and report errors the same way
// (cli/app.cc).
int RunCommandLine(int argc, char** argv,
                   const std::function<std::vector<Command>(CLI::App&)>& add_commands);

// Shared helpers (cli/common.cc).

// Parses repeated "NAME=D0,D1,..." arguments of --input-shape.
Result<std::map<std::string, Shape>> ParseInputShapes(const std::vector<std::string>& specs);
// Splits "NAME=VALUE" at the last '='; error names the option and the text.
Result<std::pair<std::string, std::string>> SplitNameValue(const std::string& option,
                                                           const std::string& text);
// Imports an ONNX model with the given input shapes (shapes inferred).
Result<std::unique_ptr<ir::Graph>> LoadModel(const std::string& path,
                                             const std::map<std::string, Shape>& input_shapes);
// "25,557,032".
std::string WithThousands(int64_t n);
// A file name for a tensor name: characters other than [A-Za-z0-9._-] become '_'.
std::string SanitizeFileName(const std::string& name);
// Creates the directory that will hold `path`, if missing.
Status EnsureParentDirectory(const std::string& path);
// This executable's path (/proc/self/exe), e.g. for running its commands as
// child processes or finding its plugins.
Result<std::string> ExecutablePath();
// Adds the --input-shape option used by info, run and convert.
CLI::Option* AddInputShapeOption(CLI::App& app, std::vector<std::string>& specs);

}  // namespace wbs::cli
