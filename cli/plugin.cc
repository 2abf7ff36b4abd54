// The executable's side of the plugin commands (cli/plugin.h): finding the
// plugin, loading it, and the placeholders `wbs --help` lists.
#include "cli/plugin.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <filesystem>
#include <memory>

namespace wbs::cli {

namespace {

namespace fs = std::filesystem;

constexpr int kExitFailure = 1;  // as RunCommandLine's (cli/command.h)

// Loads the training plugin and returns its entry point; `command` names the
// command in the error.
Result<PluginMainFn> LoadTrainPlugin(const std::string& command) {
  const std::vector<std::string> candidates = TrainPluginCandidates();
  std::string path;
  std::error_code ec;
  for (const std::string& c : candidates) {
    if (fs::exists(c, ec)) {
      path = c;
      break;
    }
  }
  if (path.empty())
    return NotFound(
        "wbs {}: the training plugin {} is not available (built with "
        "WBS_BUILD_TRAIN=OFF?)",
        command, candidates.empty() ? kTrainPluginFile : candidates.front());
  // RTLD_LOCAL: the plugin's symbols stay its own; RTLD_NOW: a missing
  // library or symbol is reported here, not in the middle of training.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr)
    return FailedPrecondition("wbs {}: cannot load the training plugin {}: {}", command, path,
                              dlerror());
  void* entry = dlsym(handle, kTrainPluginEntry);
  if (entry == nullptr)
    return FailedPrecondition("wbs {}: {} has no {} (not a wbs training plugin)", command, path,
                              kTrainPluginEntry);
  return reinterpret_cast<PluginMainFn>(entry);
}

}  // namespace

std::vector<std::string> TrainPluginCandidates() {
  Result<std::string> exe = ExecutablePath();
  if (!exe.ok()) return {};
  const fs::path dir = fs::path(*exe).parent_path();
  return {(dir / kTrainPluginFile).string(),
          (dir / ".." / "lib" / kTrainPluginFile).lexically_normal().string()};
}

bool TrainPluginAvailable() {
  std::error_code ec;
  for (const std::string& c : TrainPluginCandidates())
    if (fs::exists(c, ec)) return true;
  return false;
}

std::vector<Command> AddPluginCommandPlaceholders(CLI::App& app) {
  std::vector<Command> commands;
  for (const PluginCommandInfo& info : kTrainPluginCommands) {
    CLI::App* sub = app.add_subcommand(info.name, info.help);
    // Everything after the name, --help included, is the plugin's to parse:
    // no help flag, no falling through to wbs's own flags, positionals
    // (also after "--") and unknown options accepted as they come.
    sub->set_help_flag();
    sub->fallthrough(false);
    sub->allow_extras();
    auto rest = std::make_shared<std::vector<std::string>>();
    sub->add_option("args", *rest, "The command's arguments (parsed by the plugin)");
    const std::string name = info.name;
    Command c;
    c.app = sub;
    c.run_plugin = [name, rest](int argc, char** argv) {
      Result<PluginMainFn> entry = LoadTrainPlugin(name);
      if (!entry.ok()) {
        fmt::print(stderr, "wbs: error: {}\n", entry.status().message());
        return kExitFailure;
      }
      return (*entry)(kPluginAbiVersion, argc, argv);
    };
    commands.push_back(std::move(c));
  }
  return commands;
}

}  // namespace wbs::cli
