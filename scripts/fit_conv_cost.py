#!/usr/bin/python3
"""Fits the runtime's sparse-vs-dense conv cost rule (runtime/ops_sparse.cc,
kConvCost*: t_sparse / t_dense = a * kept + b per class) to wbs_bench_sparse
output.

    OMP_WAIT_POLICY=passive build/release/bench/wbs_bench_sparse --threads=1 \
        --sparsity=0,25,50,75,90 --benchmark_min_time=0.2 --winograd=off > run.txt
    /usr/bin/python3 scripts/fit_conv_cost.py run.txt [run2.txt ...]

Reads every "pair/<shape>/sp:<pct>/threads:<t>" line (speedup = oneDNN
median / block-sparse median, both timed alternately in one loop), pools the
files given (median of a point's samples), and prints per class (output plane
>= 700, 150..699, < 150 positions; stride 1 or not) the least-squares a, b, the
largest residual, and the kept fraction where the rule flips to sparse
(t_sparse / t_dense <= 1) -- in the order of the kConvCost tables.
"""
import re
import statistics
import sys

LINE = re.compile(r"^pair/cin(\d+)_cout(\d+)_k(\d+)_s(\d+)_p(\d+)_(\d+)x(\d+)/sp:(\d+)/threads:(\d+)\S*\s.*?speedup=([0-9.eE+-]+)")


def main(paths):
    samples = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                m = LINE.match(line)
                if not m:
                    continue
                cin, cout, k, s, p, h, w, sp, t = map(int, m.groups()[:9])
                speedup = float(m.group(10))
                oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
                key = (t, (cin, cout, k, s, p, h, w), oh * ow, s > 1, 1 - sp / 100)
                samples.setdefault(key, []).append(1 / speedup)
    if not samples:
        sys.exit("fit_conv_cost: no 'pair/...' lines with speedup= in " + ", ".join(paths))
    for threads in sorted({k[0] for k in samples}):
        print(f"threads {threads}")
        for lo, hi in ((700, 1 << 30), (150, 700), (0, 150)):
            for strided in (False, True):
                pts = [(k[4], statistics.median(v), k[1]) for k, v in samples.items()
                       if k[0] == threads and lo <= k[2] < hi and k[3] == strided]
                if len(pts) < 2:
                    print(f"  >= {lo:3d} positions {'s2' if strided else 's1'}: {len(pts)} points, no fit")
                    continue
                n = len(pts)
                mx = sum(x for x, _, _ in pts) / n
                my = sum(y for _, y, _ in pts) / n
                sxx = sum((x - mx) ** 2 for x, _, _ in pts)
                a = sum((x - mx) * (y - my) for x, y, _ in pts) / sxx if sxx > 0 else 0.0
                b = my - a * mx
                worst = max(pts, key=lambda q: abs(q[1] - (a * q[0] + b)))
                flip = (1 - b) / a if a > 0 else float("nan")
                at50 = sorted(y for x, y, _ in pts if abs(x - 0.5) < 1e-9)
                print(f"  >= {lo:3d} positions {'s2' if strided else 's1'}: a = {a:.3f}, b = {b:.3f} "
                      f"over {n} points ({len({q[2] for q in pts})} shapes); max residual "
                      f"{abs(worst[1] - (a * worst[0] + b)):.2f} (shape {worst[2]}, kept {worst[0]:.2f}); "
                      f"sparse while kept <= {flip:.2f}; t_s/t_d at 50%: "
                      + (", ".join(f"{y:.2f}" for y in at50) or "-"))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
