#include "core/omp_wait.h"

#include <fmt/format.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace wbs {

namespace {

constexpr const char* kChoiceVar = "WBS_OMP_WAIT";

// The fewest runnable tasks other than this process seen in kOmpSamples
// reads of /proc/loadavg ("0.93 2.75 5.42 R/T last-pid": R counts us), or -1.
// The fewest, so a short-lived task (a kernel worker, a shell) does not
// count as competition; a busy process is runnable in every sample.
int OtherRunnableTasks() {
  int fewest = -1;
  for (int i = 0; i < kOmpSamples; ++i) {
    if (i > 0) usleep(1000);
    std::FILE* f = std::fopen("/proc/loadavg", "r");
    if (f == nullptr) return -1;
    double l1, l5, l15;
    int running = 0, total = 0;
    const int got = std::fscanf(f, "%lf %lf %lf %d/%d", &l1, &l5, &l15, &running, &total);
    std::fclose(f);
    if (got != 5) return -1;
    fewest = fewest < 0 ? std::max(0, running - 1) : std::min(fewest, std::max(0, running - 1));
  }
  return fewest;
}

}  // namespace

OmpWait DecideOmpWait(int others, int cpus, bool long_running, bool realtime) {
  if (long_running || cpus < 1) return OmpWait::kPassive;
  if (realtime) return OmpWait::kSpin;  // SCHED_OTHER tasks cannot preempt us
  if (others < 0) return OmpWait::kPassive;
  const int needed = std::min(cpus, 2);
  return others + needed <= cpus ? OmpWait::kSpin : OmpWait::kPassive;
}

bool ChooseOmpWaitEnvironment(bool long_running) {
  const char* chosen = std::getenv(kChoiceVar);
  if (chosen != nullptr && *chosen != '\0') return false;  // chosen before the re-exec
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  if (policy != nullptr || spin != nullptr) {
    const std::string what = policy != nullptr ? fmt::format("OMP_WAIT_POLICY={}", policy)
                                               : fmt::format("GOMP_SPINCOUNT={}", spin);
    setenv(kChoiceVar, fmt::format("user ({})", what).c_str(), 1);
    return false;  // nothing libgomp needs to re-read
  }
  const int others = long_running ? -1 : OtherRunnableTasks();
  const int cpus = static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  const int policy_now = sched_getscheduler(0);
  const bool realtime = policy_now == SCHED_FIFO || policy_now == SCHED_RR;
  const std::string where = long_running ? std::string("long-running command")
                            : others < 0 ? fmt::format("{}runnable tasks unknown, {} CPUs",
                                                       realtime ? "real-time priority, " : "", cpus)
                                         : fmt::format("{}{} other runnable task{} on {} CPUs",
                                                       realtime ? "real-time priority, " : "",
                                                       others, others == 1 ? "" : "s", cpus);
  if (DecideOmpWait(others, cpus, long_running, realtime) == OmpWait::kSpin) {
    setenv("GOMP_SPINCOUNT", std::to_string(kOmpSpinCount).c_str(), 1);
    setenv(kChoiceVar, fmt::format("spin (GOMP_SPINCOUNT={}; {})", kOmpSpinCount, where).c_str(),
           1);
  } else {
    setenv("OMP_WAIT_POLICY", "passive", 1);
    setenv(kChoiceVar, fmt::format("passive ({})", where).c_str(), 1);
  }
  return true;
}

void ApplyOmpWaitPolicy(char** argv, bool long_running) {
  if (ChooseOmpWaitEnvironment(long_running)) execv("/proc/self/exe", argv);
}

std::string OmpWaitDescription() {
  const char* v = std::getenv(kChoiceVar);
  return v != nullptr && *v != '\0' ? std::string(v) : std::string("default");
}

}  // namespace wbs
