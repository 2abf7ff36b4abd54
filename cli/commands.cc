// The list of `wbs` subcommands. Each stage's commands are added here when
// they land; the LibTorch ones are placeholders for the training plugin
// (cli/plugin.h), listed even when it was not built.
#include "cli/command.h"
#include "cli/plugin.h"

namespace wbs::cli {

std::vector<Command> AddAllCommands(CLI::App& app) {
  std::vector<Command> commands = {AddZooCommand(app), AddInfoCommand(app), AddRunCommand(app),
                                   AddConvertCommand(app), AddSparsifyCommand(app)};
  commands.push_back(AddQuantizeCommand(app));
  commands.push_back(AddAieTargetCommand(app));
  commands.push_back(AddCompileCommand(app));
  commands.push_back(AddAieSweepCommand(app));
  commands.push_back(AddSimulateCommand(app));
  commands.push_back(AddReportCommand(app));
  commands.push_back(AddPipelineCommand(app));
  for (Command& c : AddPluginCommandPlaceholders(app)) commands.push_back(std::move(c));
  return commands;
}

}  // namespace wbs::cli
