// wbs: the command-line front end. RunCommandLine (cli/app.cc) is the only
// place that prints a Status and chooses the exit code: 0 success, 1 a failed
// command (one line "wbs: error: <message>" on stderr), 2 a usage error. The
// LibTorch commands are a plugin loaded only when one of them runs
// (cli/plugin.h), so every other command starts without LibTorch.
#include <unistd.h>

#include <cstdlib>

#include "cli/command.h"

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
  // RunCommandLine prints what slips through (an exception) as one line.
  return wbs::cli::RunCommandLine(argc, argv, wbs::cli::AddAllCommands);
}
