#include "core/omp_wait.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

namespace wbs {

namespace {

constexpr const char* kChoiceVar = "WBS_OMP_WAIT";

// The 1-minute load average, or a negative value when unknown.
double LoadAverage1() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (f == nullptr) return -1.0;
  double load1 = -1.0;
  if (std::fscanf(f, "%lf", &load1) != 1) load1 = -1.0;
  std::fclose(f);
  return load1;
}

}  // namespace

OmpWait DecideOmpWait(double load1, int cpus, bool long_running) {
  if (long_running || load1 < 0.0 || cpus < 1) return OmpWait::kPassive;
  const int needed = std::min(cpus, 2);
  return load1 + needed <= cpus + 0.5 ? OmpWait::kSpin : OmpWait::kPassive;
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
  const double load1 = LoadAverage1();
  const int cpus = static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  const std::string where = load1 < 0.0 ? fmt::format("load unknown, {} CPUs", cpus)
                                        : fmt::format("load {:.2f} on {} CPUs", load1, cpus);
  if (DecideOmpWait(load1, cpus, long_running) == OmpWait::kSpin) {
    setenv("GOMP_SPINCOUNT", std::to_string(kOmpSpinCount).c_str(), 1);
    setenv(kChoiceVar, fmt::format("spin (GOMP_SPINCOUNT={}; {})", kOmpSpinCount, where).c_str(),
           1);
  } else {
    setenv("OMP_WAIT_POLICY", "passive", 1);
    setenv(kChoiceVar,
           fmt::format("passive ({}{})", long_running ? "long-running command; " : "", where)
               .c_str(),
           1);
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
