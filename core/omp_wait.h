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
//   - an idle machine: spin briefly (GOMP_SPINCOUNT = kOmpSpinCount), then sleep;
//   - a process running at a real-time priority (SCHED_FIFO / SCHED_RR, e.g.
//     `chrt -f 10`, as every benchmark of docs/BENCHMARKS.md): spin briefly
//     whatever the load, because no ordinary (SCHED_OTHER) task can take a
//     CPU from it, so the runnable tasks counted below are no competition.
//     Before, a nice'd build next to an RT benchmark made it sleep, and the
//     choice flipped between runs with the load; ResNet-50 at 2 threads, 8
//     paired runs: spin / passive 0.82-1.09, median 0.91 dense, 0.92 at 50%
//     (docs/BENCHMARKS.md, h_dyn).
// "Idle" = no other task is runnable right now on the CPUs we need: the
// kernel's count of runnable tasks (/proc/loadavg field 4, which includes
// us), sampled kOmpSamples times over ~4 ms, leaves min(cpus, 2) CPUs free
// at least once (the fewest is taken: a busy competitor is runnable in every
// sample, a short-lived task is not). The load average is not used: it lags by a minute and counts
// the previous runs of a benchmark loop as competitors.
#pragma once

#include <string>

namespace wbs {

enum class OmpWait { kUser, kSpin, kPassive };

// Spin iterations before a waiting thread sleeps, when spinning.
inline constexpr long kOmpSpinCount = 10000;

// Samples of the runnable-task count taken at start-up.
inline constexpr int kOmpSamples = 5;

// The decision rule above, without touching the environment: `others` is
// the fewest runnable tasks other than this process seen (< 0: unknown),
// `realtime` whether this process runs under SCHED_FIFO or SCHED_RR.
OmpWait DecideOmpWait(int others, int cpus, bool long_running, bool realtime = false);

// Reads the environment and /proc/loadavg and, unless the user chose, sets
// OMP_WAIT_POLICY=passive or GOMP_SPINCOUNT, plus WBS_OMP_WAIT (a one-line
// description of the choice, see OmpWaitDescription). Returns true when it
// changed the environment: the caller must then re-execute itself so libgomp
// sees it. Safe to call again after the re-exec (returns false).
bool ChooseOmpWaitEnvironment(bool long_running);

// Re-executes /proc/self/exe with argv when ChooseOmpWaitEnvironment changed
// the environment; returns (and the process continues) if exec fails.
void ApplyOmpWaitPolicy(char** argv, bool long_running);

// "spin (GOMP_SPINCOUNT=10000; 0 other runnable tasks on 2 CPUs)", "spin
// (GOMP_SPINCOUNT=10000; real-time priority, 3 other runnable tasks on 2 CPUs)", "passive
// (3 other runnable tasks on 2 CPUs)", "user (OMP_WAIT_POLICY=active)" or
// "default" when nothing chose.
std::string OmpWaitDescription();

}  // namespace wbs
