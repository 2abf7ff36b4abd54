// Commands that live in a shared-library plugin instead of the `wbs`
// executable.
//
// Why: loading LibTorch costs about 0.4 s of CPU per process start (`wbs
// --version`: 368 ms with LibTorch linked in, 5 ms without), and only `wbs
// train`, `finetune` and `sensitivity` use it. The shell tests and `wbs
// pipeline` start wbs hundreds of times, so those three commands are built
// from cli/train/*.cc into libwbs_train_cli.so, which the executable
// dlopen()s only when one of them runs. The executable registers a
// placeholder per plugin command (so `wbs --help` lists it) that takes the
// rest of the command line unparsed; the plugin then parses the whole
// command line itself with the same driver (RunCommandLine, cli/app.cc).
//
// The plugin is looked up next to the executable, then in $ORIGIN/../lib.
// It is a self-contained module: its own copy of the wbs libraries, nothing
// exported but the entry point, so the only interface is the C function
// below (no C++ objects cross the boundary).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/command.h"

namespace wbs::cli {

struct PluginCommandInfo {
  const char* name;
  // The one-line help of both `wbs --help` and `wbs NAME --help`: the plugin
  // sets it on its command, so the two cannot drift apart.
  const char* help;
};

// The commands of the training plugin, in --help order: the one list of
// them (the executable's placeholders and the plugin's check both use it).
inline constexpr PluginCommandInfo kTrainPluginCommands[] = {
    {"train", "Train a zoo model or ONNX file on an image dataset (LibTorch; dense)"},
    {"finetune",
     "Block-sparse fine-tuning of a dense model: oneshot, incremental, learned or fisher masks"},
    {"sensitivity",
     "Per-layer accuracy vs block sparsity without retraining; per-layer targets for finetune"},
};

inline constexpr char kTrainPluginFile[] = "libwbs_train_cli.so";
// extern "C" int wbs_train_cli_main(int abi_version, int argc, char** argv):
// runs the command line (argv[0] is the executable) and returns the exit code.
inline constexpr char kTrainPluginEntry[] = "wbs_train_cli_main";
// Bumped when the entry point's contract changes, so a stale plugin from
// another build is refused with a clear error instead of misbehaving.
inline constexpr int kPluginAbiVersion = 1;
using PluginMainFn = int (*)(int abi_version, int argc, char** argv);

// Where the training plugin is looked for, in order: the executable's folder,
// then ../lib next to it.
std::vector<std::string> TrainPluginCandidates();
// True when one of the candidates exists (the pipeline then runs the training
// stages; it does not load the plugin itself).
bool TrainPluginAvailable();

// Placeholders for kTrainPluginCommands on `app`: each lists its name and help
// and, when chosen, loads the plugin and hands it the command line.
std::vector<Command> AddPluginCommandPlaceholders(CLI::App& app);

}  // namespace wbs::cli
