// The child-process CommandRunner: `wbs ARGS...` with stdout and stderr in
// files, so a command's output is kept exactly and its failure is reported
// with its own error line.
#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include "pipeline/pipeline.h"

extern char** environ;

namespace wbs::pipeline {

namespace {

// The command's "wbs: error: ..." line from its stderr log (the last one
// written after `offset`), else the last non-empty line.
std::string ErrorLine(const std::string& log_path, std::streamoff offset) {
  std::ifstream in(log_path);
  in.seekg(offset);
  std::string line, error, last;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    last = line;
    if (line.rfind("wbs: error: ", 0) == 0) error = line.substr(12);
  }
  return !error.empty() ? error : last;
}

std::string CommandLine(const std::vector<std::string>& args) {
  std::string s = "wbs";
  for (const std::string& a : args)
    s += " " + (a.find(' ') == std::string::npos ? a : "'" + a + "'");
  return s;
}

}  // namespace

CommandRunner ChildProcessRunner(std::string wbs_binary) {
  return [wbs_binary](const std::vector<std::string>& args, const std::string& stdout_path,
                      const std::string& log_path, const std::function<void()>& poll) -> Status {
    {
      std::ofstream log(log_path, std::ios::app);
      if (!log) return IoError("{}: cannot open for writing", log_path);
      log << "$ " << CommandLine(args) << "\n";
    }
    std::streamoff offset = 0;
    {
      std::ifstream in(log_path, std::ios::ate);
      offset = in.tellg();
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (stdout_path.empty())
      posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
    else
      posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, stdout_path.c_str(),
                                       O_WRONLY | O_CREAT | O_TRUNC, 0644);

    std::vector<std::string> argv_s = {wbs_binary};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    // The pipeline draws the only progress display.
    std::vector<std::string> env_s = {"WBS_PROGRESS=0"};
    for (char** e = environ; *e; ++e)
      if (std::strncmp(*e, "WBS_PROGRESS=", 13) != 0) env_s.push_back(*e);
    std::vector<char*> envp;
    for (std::string& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);

    pid_t pid = 0;
    const int rc =
        posix_spawn(&pid, wbs_binary.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return IoError("cannot start {}: {}", wbs_binary, std::strerror(rc));
    int status = 0;
    for (;;) {
      const pid_t r = waitpid(pid, &status, WNOHANG);
      if (r == pid) break;
      if (r < 0 && errno != EINTR) return IoError("waitpid: {}", std::strerror(errno));
      if (poll) poll();
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    if (poll) poll();
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
    const std::string why =
        WIFSIGNALED(status)
            ? fmt::format("killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)))
            : ErrorLine(log_path, offset);
    return FailedPrecondition("{}: {} (log: {})", CommandLine(args), why, log_path);
  };
}

}  // namespace wbs::pipeline
