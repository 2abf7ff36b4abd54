// The list of `wbs` subcommands. Each stage's commands are added here when
// they land; LibTorch ones only in a WBS_BUILD_TRAIN build.
#include "cli/command.h"

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
#ifdef WBS_WITH_TRAIN
  commands.push_back(AddTrainCommand(app));
  commands.push_back(AddFinetuneCommand(app));
  commands.push_back(AddSensitivityCommand(app));
#endif
  return commands;
}

}  // namespace wbs::cli
