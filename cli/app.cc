// The command-line driver shared by the `wbs` executable and its plugins
// (cli/plugin.h): one place that sets up the global flags, parses, prints a
// Status and chooses the exit code.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/logging.h"
#include "core/omp_wait.h"

#ifndef WBS_VERSION
#define WBS_VERSION "0.1.0"
#endif

namespace wbs::cli {

namespace {
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

int Run(int argc, char** argv, const std::function<std::vector<Command>(CLI::App&)>& add_commands) {
  CLI::App app(
      "wbs: weight block sparsity for CNNs: model zoo, ONNX inspection, conversion and "
      "execution",
      "wbs");
  app.set_version_flag("--version", std::string("wbs ") + WBS_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // global flags may follow the subcommand
  int verbosity = 0;
  app.add_flag("-v,--verbose", verbosity, "More logging: -v info, -vv debug, -vvv trace");
  app.footer(
      "Run 'wbs COMMAND --help' for a command's options.\n\n"
      "Examples:\n"
      "  wbs zoo resnet50 -o out/resnet50.onnx\n"
      "  wbs info out/resnet50.onnx\n"
      "  wbs run out/resnet50.onnx --random --threads 2 --repeat 5\n"
      "  wbs convert out/resnet50.onnx -o out/resnet50_folded.onnx --fold-bn\n"
      "  wbs sparsify out/resnet50.onnx -o out/resnet50_s50.onnx --block 8x8 --sparsity 0.5");

  std::vector<Command> commands = add_commands(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // The global options are all flags, so the first word is the command.
    for (int i = 1; i < argc; ++i) {
      if (argv[i][0] == '-') continue;
      bool known = false;
      for (const Command& c : commands) known |= c.app->check_name(argv[i]);
      if (!known) {
        std::string names;
        for (const Command& c : commands) names += (names.empty() ? "" : ", ") + c.app->get_name();
        fmt::print(stderr, "wbs: error: unknown command '{}' (commands: {})\n", argv[i], names);
        return kExitUsage;
      }
      break;
    }
    std::string hint = "wbs --help";
    for (const Command& c : commands)
      if (c.app->parsed()) hint = "wbs " + c.app->get_name() + " --help";
    fmt::print(stderr, "wbs: error: {} (see '{}')\n", e.what(), hint);
    return kExitUsage;
  }

  for (const Command& c : commands) {
    if (!c.app->parsed()) continue;
    // A plugin parses the whole command line again and sets its own verbosity.
    if (c.run_plugin) return c.run_plugin(argc, argv);
    SetVerbosity(verbosity);
    WBS_LOG_INFO("OpenMP wait: {}", OmpWaitDescription());
    Status st = c.run();
    if (!st.ok()) {
      fmt::print(stderr, "wbs: error: {}\n", st.message());
      return kExitFailure;
    }
  }
  return 0;
}

}  // namespace

int RunCommandLine(int argc, char** argv,
                   const std::function<std::vector<Command>(CLI::App&)>& add_commands) {
  // Libraries return Status; this catches what slips through (allocation
  // failure, a bug, a LibTorch exception in the plugin) so the user still
  // gets one line, not a stack trace, and nothing crosses the plugin's C
  // boundary.
  try {
    return Run(argc, argv, add_commands);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wbs: error: internal: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "wbs: error: internal: unknown exception\n");
  }
  return kExitFailure;
}

}  // namespace wbs::cli
