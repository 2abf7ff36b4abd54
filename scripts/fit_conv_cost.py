#!/usr/bin/python3
"""Fits the runtime's sparse-vs-dense conv cost rule (runtime/ops_sparse.cc,
kConvCost*: t_sparse / t_dense = a * kept + b per class) to wbs_bench_sparse
output.

    OMP_WAIT_POLICY=passive build/release/bench/wbs_bench_sparse --threads=1 \
        --sparsity=0,25,50,75,90 --benchmark_min_time=0.2 --winograd=off > run.txt
    /usr/bin/python3 scripts/fit_conv_cost.py [--isa=avx512|avx2] run.txt [run2.txt ...]

Reads every "pair/<shape>/sp:<pct>/threads:<t>" line (speedup = oneDNN
median / block-sparse median, both timed alternately in one loop), pools the
files given (median of a point's samples), and prints per class the
least-squares a, b, the largest residual, and the kept fraction where the rule
flips to sparse (t_sparse / t_dense <= 1) -- in the order of the kConvCost
tables. The classes (--isa): avx512 (default, kConvCostAvx512): output plane
>= 700, 150..699, < 150 positions, each stride 1 or not; avx2
(kConvCostAvx2): pointwise stride 1 >= 700 / < 700 positions, pointwise
strided, kh x kw > 1 stride 1, kh x kw > 1 strided. It also prints the batch-1
Gemm's ("pair/gemm_...") points and fit (kGemm* constants).
"""
import re
import statistics
import sys

GEMM = re.compile(r"^pair/gemm_k(\d+)_m(\d+)_n(\d+)/sp:(\d+)/threads:(\d+)\S*\s.*?speedup=([0-9.eE+-]+)")
LINE = re.compile(r"^pair/cin(\d+)_cout(\d+)_k(\d+)_s(\d+)_p(\d+)_(\d+)x(\d+)/sp:(\d+)/threads:(\d+)\S*\s.*?speedup=([0-9.eE+-]+)")


# (name, min positions, max positions, strided, kernel elements: None any, 1, or >1)
CLASSES = {
    "avx512": [(f">= {lo:3d} positions {'s2' if st else 's1'}", lo, hi, st, None)
               for lo, hi in ((700, 1 << 30), (150, 700), (0, 150)) for st in (False, True)],
    "avx2": [("pointwise s1 >= 700 positions", 700, 1 << 30, False, 1),
             ("pointwise s1 < 700 positions", 0, 700, False, 1),
             ("pointwise s2", 0, 1 << 30, True, 1),
             ("kh x kw > 1 s1", 0, 1 << 30, False, ">1"),
             ("kh x kw > 1 s2", 0, 1 << 30, True, ">1")],
}


def fit(pts):
    n = len(pts)
    mx = sum(x for x, _, _ in pts) / n
    my = sum(y for _, y, _ in pts) / n
    sxx = sum((x - mx) ** 2 for x, _, _ in pts)
    a = sum((x - mx) * (y - my) for x, y, _ in pts) / sxx if sxx > 0 else 0.0
    return a, my - a * mx


def main(paths, isa):
    samples, gemm = {}, {}
    for path in paths:
        with open(path) as f:
            for line in f:
                g = GEMM.match(line)
                if g:
                    k, m, n, sp, t = map(int, g.groups()[:5])
                    gemm.setdefault((t, (k, m, n), 1 - sp / 100), []).append(1 / float(g.group(6)))
                    continue
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
        for name, lo, hi, strided, kern in CLASSES[isa]:
            pts = [(k[4], statistics.median(v), k[1]) for k, v in samples.items()
                   if k[0] == threads and lo <= k[2] < hi and k[3] == strided and
                   (kern is None or (k[1][2] == 1) == (kern == 1))]
            if len(pts) < 2:
                print(f"  {name}: {len(pts)} points, no fit")
                continue
            a, b = fit(pts)
            worst = max(pts, key=lambda q: abs(q[1] - (a * q[0] + b)))
            flip = (1 - b) / a if a > 0 else float("nan")
            at50 = sorted(y for x, y, _ in pts if abs(x - 0.5) < 1e-9)
            print(f"  {name}: a = {a:.3f}, b = {b:.3f} "
                  f"over {len(pts)} points ({len({q[2] for q in pts})} shapes); max residual "
                  f"{abs(worst[1] - (a * worst[0] + b)):.2f} (shape {worst[2]}, kept {worst[0]:.2f}); "
                  f"sparse while kept <= {flip:.2f}; t_s/t_d at 50%: "
                  + (", ".join(f"{y:.2f}" for y in at50) or "-"))
        gp = [(k[2], statistics.median(v), k[1]) for k, v in gemm.items() if k[0] == threads]
        if len(gp) >= 2:
            a, b = fit(gp)
            print(f"  gemm (few rows): a = {a:.3f}, b = {b:.3f}; t_s/t_d by kept: "
                  + ", ".join(f"{x:.2f}: {y:.2f}" for x, y, _ in sorted(gp)))


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--isa=")]
    isas = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--isa=")]
    isa = isas[-1] if isas else "avx512"
    if not args or isa not in CLASSES:
        sys.exit(__doc__)
    main(args, isa)
