// wbs: the command-line front end. RunCommandLine (cli/app.cc) is the only
// place that prints a Status and chooses the exit code: 0 success, 1 a failed
// command (one line "wbs: error: <message>" on stderr), 2 a usage error. The
// LibTorch commands are a plugin loaded only when one of them runs
// (cli/plugin.h), so every other command starts without LibTorch.
#include <unistd.h>

#include <string>

#include "cli/command.h"
#include "core/omp_wait.h"

// How idle OpenMP threads wait is chosen once, before libgomp reads its
// environment (core/omp_wait.h: spin briefly on an idle machine or at a
// real-time priority, sleep at once on a busy one or for training; the user's
// OMP_WAIT_POLICY / GOMP_SPINCOUNT win). `wbs pipeline` leaves it to its stages, which are wbs
// processes too.
static void ChooseOpenMpWait(int argc, char** argv) {
  std::string command;
  for (int i = 1; i < argc && command.empty(); ++i)
    if (argv[i][0] != '-') command = argv[i];
  if (command == "pipeline") return;
  const bool long_running = command == "train" || command == "finetune" || command == "sensitivity";
  wbs::ApplyOmpWaitPolicy(argv, long_running);
}

int main(int argc, char** argv) {
  ChooseOpenMpWait(argc, argv);
  // RunCommandLine prints what slips through (an exception) as one line.
  return wbs::cli::RunCommandLine(argc, argv, wbs::cli::AddAllCommands);
}
