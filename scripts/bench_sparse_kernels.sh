#!/usr/bin/env bash
# Block-sparse f32 kernels vs oneDNN dense (bench/bench_sparse.cc) and the
# section "Block-sparse kernels" of the benchmark report (the block between
# <!-- sparse-kernels --> and <!-- /sparse-kernels -->).
#
#   bash scripts/bench_sparse_kernels.sh BUILD_DIR [REPORT [OLD_REPORT]]
#
# REPORT defaults to docs/BENCHMARKS.md; the section replaces the marked block
# (else goes before "## Int8 block-sparse kernels", else before "## Commands",
# else at the end). The analysis between <!-- sparse-kernels-notes --> and
# <!-- /sparse-kernels-notes --> of OLD_REPORT (default: REPORT) is carried
# over. With BENCH_SPARSE=0 nothing is measured and OLD_REPORT's section is
# carried over; with BENCH_SPARSE_OUT=FILE an earlier run's stdout is rendered.
# Env: BENCH_SPARSE_THREADS (1,2), BENCH_SPARSE_SPARSITY (0,25,50,75,90),
# BENCH_SPARSE_MIN_TIME (0.2 s per benchmark), OMP_WAIT_POLICY (unset: wbs's per-process choice).
set -euo pipefail
source "$(dirname "$0")/bench_common.sh"
bench_args bench_sparse_kernels "$@"
BM=$BUILD/bench/wbs_bench_sparse
THREADS=${BENCH_SPARSE_THREADS:-1,2}
SPARSITY=${BENCH_SPARSE_SPARSITY:-0,25,50,75,90}
MIN_TIME=${BENCH_SPARSE_MIN_TIME:-0.2}

section=$(mktemp)
trap 'rm -f "$section"' EXIT
if [ "${BENCH_SPARSE:-1}" = 0 ]; then
  bench_old_section sparse-kernels "$OLD" >"$section"
else
  R=$BUILD/bench_results/sparse_kernels
  mkdir -p "$R"
  cmd="${OMP_WAIT_PREFIX}BUILD/bench/wbs_bench_sparse --threads=$THREADS --sparsity=$SPARSITY --benchmark_min_time=$MIN_TIME"
  if [ -n "${BENCH_SPARSE_OUT:-}" ]; then
    out=$BENCH_SPARSE_OUT
    load_start=${BENCH_SPARSE_LOAD_START:-unknown}
    load_end=${BENCH_SPARSE_LOAD_END:-unknown}
    commit=${BENCH_SPARSE_COMMIT:-unknown}
  else
    bench_require_exec "cmake --build $BUILD_ARG --target wbs_bench_sparse" "$BM"
    out=$R/bench_sparse.txt
    load_start=$(bench_load)
    echo "bench_sparse_kernels: $cmd" >&2
    "$BM" --threads="$THREADS" --sparsity="$SPARSITY" --benchmark_min_time="$MIN_TIME" \
      --benchmark_out="$R/bench_sparse.json" >"$out" 2>"$R/bench_sparse.log"
    load_end=$(bench_load)
    commit=$(bench_commit)
  fi
  python3 - "$out" "$cmd" "$load_start" "$load_end" "$commit" "$(bench_cpu)" "$OLD" \
    >"$section" <<'PY'
import datetime, re, statistics, sys
out, cmd, load0, load1, commit, cpu, old = sys.argv[1:8]
text = open(out).read()
rows = [l for l in text.splitlines() if l.startswith("| ")]
head, body = rows[0], [r for r in rows[1:] if not r.startswith("|---")]
sep = [l for l in text.splitlines() if l.startswith("|---")][0]
med = re.findall(r"threads (\d+) sparsity (\d+)%: ([\d.]+)x over (\d+) layers \(min ([\d.]+)x, "
                 r"max ([\d.]+)x\); eff ratio median ([\d.]+), >= 0.70 on (\d+) of (\d+)", text)
targets = {50: 1.9, 75: 3.6, 90: 8.0}
notes = ""
try:
    o = open(old).read()
    m = re.search(r"<!-- sparse-kernels-notes -->[\s\S]*?<!-- /sparse-kernels-notes -->", o)
    if m:
        notes = m.group(0)
except OSError:
    pass
p = print
p("<!-- sparse-kernels -->")
p("## Block-sparse kernels")
p()
p("Our f32 block-sparse conv/Gemm (`kernels/sparse/bsr_conv_*`, `BsrConvPlan`; kernel "
  "`f32_bsr8xn_conv__avx512`) vs oneDNN dense (`kernels/dnnl`: Conv with plain NCHW in and out, "
  "its reorders included, like ours; the Gemm as a MatMul with a packed weight) on every distinct "
  "ResNet-50 conv shape (`bench/data/resnet50_convs.csv`) and its Gemm "
  "(`bench/data/resnet50_gemms.csv`), batch 1, random masks with exactly the given fraction of "
  "zero 8x8 blocks, bias + ReLU fused on both sides (the Gemm: bias only), our input copy into "
  "padded phase or shifted planes included. Each benchmark times the two sides in alternating 25 ms blocks "
  "of back-to-back calls (same machine load, each side warm); time = median of each side's calls. "
  "Cells: speed-up = oneDNN median / ours (effective GFLOP/s = FLOPs of the kept blocks / our "
  "median); *eff ratio* = effective GFLOP/s / oneDNN's GFLOP/s on the same shape.")
p()
p(f"{datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, commit {commit}, {cpu}, load {load0} -> "
  f"{load1} (2 CPUs shared with other jobs: absolute numbers move by +-20%, the 2-thread rows "
  "most).")
p()
p("```sh")
p("cmake --build BUILD --target wbs_bench_sparse")
p(cmd)
p("#   subsets: --layers=2,19 (rows of the conv CSV, then the Gemm CSV) --threads=1 "
  "--sparsity=50 --block=8x8 --layout=phase|shifted")
p("bash scripts/bench_sparse_kernels.sh BUILD   # runs the above and rewrites this section")
p("```")
p()
for t in sorted({r.split("|")[1].strip() for r in body}):
    p(f"### {t} thread{'s' if t != '1' else ''}")
    p()
    p(head)
    p(sep)
    for r in body:
        if r.split("|")[1].strip() == t:
            p(r)
    p()
# oneDNN's median rate per thread count: when 2 threads run slower than 1,
# oneDNN's runs stalled (a busy machine), and the 2-thread ratios say so.
rate = {}
for r in body:
    f = [c.strip() for c in r.split("|")]
    m = re.search(r"\(([\d.]+)\)", f[5])
    if m:
        rate.setdefault(f[1], []).append(float(m.group(1)))
rate = {t: statistics.median(v) for t, v in rate.items()}
p("Medians over the layers (conv shapes + the Gemm), against the targets:")
p()
p("| threads | sparsity | median speed-up (min, max) | target | eff ratio median | eff ratio >= 0.70 |")
p("|---|---|---:|---:|---:|---:|")
for t, sp, m, n, lo, hi, er, met, tot in med:
    tgt = targets.get(int(sp))
    verdict = ""
    if tgt:
        verdict = f"{tgt:.1f}x: " + ("met" if float(m) >= tgt else f"missed by {100 * (1 - float(m) / tgt):.0f}%")
        if t != "1" and rate.get(t, 0) < rate.get("1", 0):
            verdict += (f" (not meaningful: oneDNN's median rate at {t} threads, {rate[t]:.0f} "
                        f"GFLOP/s, is below its 1-thread {rate['1']:.0f})")
    p(f"| {t} | {sp}% | {float(m):.2f}x ({float(lo):.2f}x, {float(hi):.2f}x) | {verdict or '—'} | "
      f"{float(er):.2f} | {met} of {tot} |")
p()
if notes:
    p(notes)
    p()
p("<!-- /sparse-kernels -->")
PY
fi

bench_splice_section "$REPORT" "$section" sparse-kernels \
  "<!-- int8-kernels -->" "## Int8 block-sparse kernels" "## Commands"
