// The training plugin's entry point (libwbs_train_cli.so, cli/plugin.h):
// the LibTorch commands of cli/train/ behind the same command-line driver as
// the executable. Built only into the plugin, never into `wbs` itself.
#include <cstdio>
#include <cstring>
#include <exception>
#include <iterator>
#include <stdexcept>

#include "cli/command.h"
#include "cli/plugin.h"

namespace wbs::cli {
namespace {

std::vector<Command> AddTrainPluginCommands(CLI::App& app) {
  std::vector<Command> commands = {AddTrainCommand(app), AddFinetuneCommand(app),
                                   AddSensitivityCommand(app)};
  // The executable lists these commands from kTrainPluginCommands: keep the
  // two in step (names checked, help taken from the table).
  if (commands.size() != std::size(kTrainPluginCommands))
    throw std::logic_error("cli/plugin.h lists a different number of training commands");
  for (size_t i = 0; i < commands.size(); ++i) {
    const PluginCommandInfo& info = kTrainPluginCommands[i];
    if (commands[i].app->get_name() != info.name)
      throw std::logic_error("plugin command '" + commands[i].app->get_name() +
                             "' is listed in cli/plugin.h as '" + info.name + "'");
    commands[i].app->description(info.help);
  }
  return commands;
}

}  // namespace
}  // namespace wbs::cli

// The only exported symbol (the plugin is built with hidden visibility).
extern "C" __attribute__((visibility("default"))) int wbs_train_cli_main(int abi_version, int argc,
                                                                         char** argv) {
  constexpr int kExitFailure = 1;
  if (abi_version != wbs::cli::kPluginAbiVersion) {
    std::fprintf(stderr,
                 "wbs: error: the training plugin was built for another wbs (plugin interface %d, "
                 "wbs has %d); rebuild both\n",
                 wbs::cli::kPluginAbiVersion, abi_version);
    return kExitFailure;
  }
  // RunCommandLine lets no exception out (LibTorch's c10::Error included), so
  // none crosses this C boundary.
  return wbs::cli::RunCommandLine(argc, argv, wbs::cli::AddTrainPluginCommands);
}
