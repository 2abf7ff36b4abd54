// wbs: the command-line front end. The only place that prints a Status and
// chooses the exit code: 0 success, 1 a failed command (one line
// "wbs: error: <message>" on stderr), 2 a usage error.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/logging.h"

#ifndef WBS_VERSION
#define WBS_VERSION "0.1.0"
#endif

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

int Main(int argc, char** argv) {
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

  std::vector<wbs::cli::Command> commands = wbs::cli::AddAllCommands(app);

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
      for (const wbs::cli::Command& c : commands) known |= c.app->check_name(argv[i]);
      if (!known) {
        std::string names;
        for (const wbs::cli::Command& c : commands)
          names += (names.empty() ? "" : ", ") + c.app->get_name();
        fmt::print(stderr, "wbs: error: unknown command '{}' (commands: {})\n", argv[i], names);
        return kExitUsage;
      }
      break;
    }
    std::string hint = "wbs --help";
    for (const wbs::cli::Command& c : commands)
      if (c.app->parsed()) hint = "wbs " + c.app->get_name() + " --help";
    fmt::print(stderr, "wbs: error: {} (see '{}')\n", e.what(), hint);
    return kExitUsage;
  }
  wbs::SetVerbosity(verbosity);

  for (const wbs::cli::Command& c : commands) {
    if (!c.app->parsed()) continue;
    wbs::Status st = c.run();
    if (!st.ok()) {
      fmt::print(stderr, "wbs: error: {}\n", st.message());
      return kExitFailure;
    }
  }
  return 0;
}

}  // namespace

// OpenMP threads that busy-wait between parallel regions (libgomp's default)
// steal the CPU their partner needs whenever another process runs on this
// shared 2-core class of machine: ResNet-50 on 2 threads went from ~70 ms to
// ~330 ms in docs/BENCHMARKS.md. libgomp reads OMP_WAIT_POLICY only when it
// loads, so unless the user chose a policy we set "passive" and re-execute
// ourselves once. A failed exec just continues with the default.
static void EnsurePassiveOpenMpWait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "passive", 1);
  execv("/proc/self/exe", argv);
}

int main(int argc, char** argv) {
  EnsurePassiveOpenMpWait(argv);
  // Libraries return Status; this catches what slips through (allocation
  // failure, a bug) so the user still gets one line, not a stack trace.
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wbs: error: internal: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "wbs: error: internal: unknown exception\n");
  }
  return kExitFailure;
}
