// How idle OpenMP threads wait between parallel regions, chosen per process
// from how busy the machine is when it starts.
//
// Batch-1 inference runs hundreds of short parallel regions; a thread that
// sleeps between them (OMP_WAIT_POLICY=passive) pays a futex wake-up at
// every one. Measured on the 2-core machine of docs/BENCHMARKS.md, ResNet-50
// int8 50% at 2 threads: 10.6 ms passive vs 5.4 ms with a short spin
// (GOMP_SPINCOUNT 3,000..300,000 all within 2%) when the machine is idle.
// But when other processes compete for the cores, a spinning thread holds
// the CPU its partner needs: at load average 11 the same run took 36-40 ms
// passive and 150-620 ms spinning. No single setting is right for both, so
// the front ends (cli/main.cc, the bench binaries) decide once at start-up,
// before libgomp reads its environment (it does so when it loads, hence the
// re-exec in the callers):
//   - the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT: theirs wins;
//   - long-running work (training) or a busy machine: passive;
//   - an idle machine: spin briefly (GOMP_SPINCOUNT = kOmpSpinCount), then sleep.
// "Idle" = the 1-minute load average leaves at least min(cpus, 2) CPUs free
// (with half a CPU of slack), i.e. load1 + min(cpus, 2) <= cpus + 0.5.
#pragma once

#include <string>

namespace wbs {

enum class OmpWait { kUser, kSpin, kPassive };

// Spin iterations before a waiting thread sleeps, when spinning.
inline constexpr long kOmpSpinCount = 10000;

// The decision rule above, without touching the environment.
OmpWait DecideOmpWait(double load1, int cpus, bool long_running);

// Reads the environment and /proc/loadavg and, unless the user chose, sets
// OMP_WAIT_POLICY=passive or GOMP_SPINCOUNT, plus WBS_OMP_WAIT (a one-line
// description of the choice, see OmpWaitDescription). Returns true when it
// changed the environment: the caller must then re-execute itself so libgomp
// sees it. Safe to call again after the re-exec (returns false).
bool ChooseOmpWaitEnvironment(bool long_running);

// Re-executes /proc/self/exe with argv when ChooseOmpWaitEnvironment changed
// the environment; returns (and the process continues) if exec fails.
void ApplyOmpWaitPolicy(char** argv, bool long_running);

// "spin (GOMP_SPINCOUNT=10000; load 0.12 on 2 CPUs)", "passive (load 3.10 on
// 2 CPUs)", "user (OMP_WAIT_POLICY=active)" or "default" when nothing chose.
std::string OmpWaitDescription();

}  // namespace wbs
