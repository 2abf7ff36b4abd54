#!/usr/bin/python3
"""Ceilings of the int8 block-sparse kernel medians on this machine.

A layer's block-sparse time is at least t(s) = (1 - s) * dense_ops / peak +
T_out, where peak is the machine's zmm `vpdpbusd` rate (wbs_bench_peak) and
T_out the per-output cost that sparsity does not remove (accumulator set-up,
exact requantization, stores, the padded input copy), measured as the 100%
sparsity run of wbs_bench_s8. Ceiling = oneDNN's dense time / t(s): the
speed-up a kernel would reach if its kept-block loop ran at the machine's
peak. Prints per layer and the medians, with T_out scaled by 1, 0.5 and 0.

  OMP_WAIT_POLICY=passive BUILD/bench/wbs_bench_s8 --threads=1 --sparsity=100 \\
      --benchmark_min_time=0.2 > s8_100.txt
  BUILD/bench/wbs_bench_peak            # int8_gops on a quiet machine
  scripts/s8_ceiling.py s8_100.txt --peak-gops 1117
"""
import argparse
import re
import statistics
import sys


def parse(path):
    rows = []
    with open(path) as f:
        for line in f:
            if not line.startswith("| 1 |"):
                continue
            cells = [c.strip() for c in line.split("|")[1:-1]]
            name, shape = cells[1], cells[2]
            dense_s = float(cells[3]) * 1e-3
            out_s = float(cells[4].split()[0]) * 1e-3
            if shape.startswith("gemm"):
                k, m = map(int, re.findall(r"\d+", shape)[:2])
                ops = 2 * k * m
            else:
                g = re.match(r"cin(\d+)_cout(\d+)_k(\d+)_s(\d+)_p(\d+)_(\d+)x(\d+)", shape)
                if not g:
                    sys.exit(f"s8_ceiling: {path}: cannot parse shape '{shape}'")
                cin, cout, k, s, p, h, w = map(int, g.groups())
                oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
                ops = 2 * cin * cout * k * k * oh * ow
            rows.append((name, dense_s, out_s, ops))
    if not rows:
        sys.exit(f"s8_ceiling: {path}: no 1-thread rows (run wbs_bench_s8 --threads=1 --sparsity=100)")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench_output")
    ap.add_argument("--peak-gops", type=float, required=True, help="int8 peak, GOP/s per core")
    a = ap.parse_args()
    peak = a.peak_gops * 1e9
    rows = parse(a.bench_output)
    print("| layer | oneDNN us | oneDNN % of peak | T_out us (100% run) | ceiling 50% | ceiling 75% |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, d, o, ops in rows:
        full = ops / peak
        print(f"| {name} | {d*1e6:.1f} | {full/d*100:.0f}% | {o*1e6:.1f} | "
              f"{d/(0.5*full+o):.2f}x | {d/(0.25*full+o):.2f}x |")
    print()
    for scale in (1.0, 0.5, 0.0):
        c50 = [d / (0.5 * ops / peak + o * scale) for _, d, o, ops in rows]
        c75 = [d / (0.25 * ops / peak + o * scale) for _, d, o, ops in rows]
        print(f"T_out x {scale}: median ceiling 50% {statistics.median(c50):.2f}x "
              f"({sum(c >= 1.9 for c in c50)}/{len(rows)} layers >= 1.9x), "
              f"75% {statistics.median(c75):.2f}x ({sum(c >= 3.6 for c in c75)}/{len(rows)} >= 3.6x)")


if __name__ == "__main__":
    main()
