"""A controlled noisy neighbour: a duty-cycled busy loop pinned to one CPU
at a real-time priority above the benchmark's (chrt -f 10), so every
`busy` ms of each `busy + idle` ms period the benchmark thread on that CPU
cannot run: a stand-in for a hypervisor stealing the vCPU for a few ms.

    python3 scripts/noisy_neighbour.py [--cpu 1] [--busy-ms 2] [--idle-ms 8] [--prio 20]

Prints "ready" on stdout once pinned and at its priority, runs until
SIGTERM/SIGINT, then prints the periods run and the measured busy
share on stderr. RT throttling (sched_rt_runtime_us) still applies; keep the
busy share well below it. Unlike a real vCPU steal, the kernel may migrate
the preempted benchmark thread to the other CPU when that one goes idle
(a passive OpenMP wait); see docs/BENCHMARKS.md "h_dyn".
"""
import argparse
import os
import signal
import sys
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cpu", type=int, default=1)
    p.add_argument("--busy-ms", type=float, default=2.0)
    p.add_argument("--idle-ms", type=float, default=8.0)
    p.add_argument("--prio", type=int, default=20, help="SCHED_FIFO priority; 0: stay SCHED_OTHER")
    a = p.parse_args()
    os.sched_setaffinity(0, {a.cpu})
    if a.prio > 0:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(a.prio))
    print("ready", flush=True)  # noisy_neighbour_bench.sh waits for this line
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    busy, idle = a.busy_ms / 1e3, a.idle_ms / 1e3
    periods, busy_total, t0 = 0, 0.0, time.perf_counter()
    clock = time.perf_counter
    while not stop:
        b0 = clock()
        end = b0 + busy
        while clock() < end:
            pass
        busy_total += clock() - b0
        periods += 1
        time.sleep(idle)
    wall = time.perf_counter() - t0
    print(f"noisy_neighbour: cpu {a.cpu}, {periods} periods, busy {100 * busy_total / max(wall, 1e-9):.1f}% "
          f"of {wall:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
