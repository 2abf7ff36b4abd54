#!/bin/bash
# ResNet-50 end to end, wbs (dense and 50% block-sparse) against ONNX Runtime
# dense, in alternating rounds (docs/BENCHMARKS.md "AVX2 end to end against
# ORT"). On a noisy machine only rounds taken minutes apart and medians over
# all samples mean anything; the per-round ratios show the spread.
#
#   bash scripts/e2e_ort_rounds.sh BUILD OUTDIR [ROUNDS] [THREADS...]
#
# BUILD: a build dir with bench/wbs_bench_models and wbs; OUTDIR gets
# r50.onnx, in/input.npy (made once: `wbs zoo resnet50 --batch 1 --seed 1`,
# `tools/ort/gen_input.js --seed 7`), samples.tsv and the summary. Each round
# and thread count runs wbs with OMP_WAIT_POLICY=passive forced (wbsP), ORT,
# then wbs with its own start-up wait choice (wbsA, core/omp_wait.h).
# Defaults: 8 rounds, threads 2 1. Needs node and tools/ort's npm install
# (`make bench` does it).
set -euo pipefail
build=${1:?usage: e2e_ort_rounds.sh BUILD OUTDIR [ROUNDS] [THREADS...]}
out=${2:?usage: e2e_ort_rounds.sh BUILD OUTDIR [ROUNDS] [THREADS...]}
rounds=${3:-8}
shift $(( $# < 3 ? $# : 3 ))
threads=("$@"); [ ${#threads[@]} -gt 0 ] || threads=(2 1)
root=$(cd "$(dirname "$0")/.." && pwd)
bench="$build/bench/wbs_bench_models"
[ -x "$bench" ] || { echo "e2e_ort_rounds: $bench not found (build the wbs_bench_models target)" >&2; exit 1; }
mkdir -p "$out"
if [ ! -f "$out/r50.onnx" ]; then
  "$build/wbs" zoo resnet50 -o "$out/r50.onnx.tmp" --batch 1 --seed 1 >/dev/null
  mv "$out/r50.onnx.tmp" "$out/r50.onnx"
fi
[ -f "$out/in/input.npy" ] || node "$root/tools/ort/gen_input.js" --model "$out/r50.onnx" --seed 7 --outdir "$out/in" >/dev/null
log="$out/samples.tsv"; : > "$log"
for r in $(seq 1 "$rounds"); do
  for t in "${threads[@]}"; do
    echo "# round $r t $t $(date -u +%T) $(uptime)" >> "$log"
    echo "e2e_ort_rounds: round $r/$rounds, $t thread(s)" >&2
    OMP_WAIT_POLICY=passive "$bench" --models=resnet50 --threads="$t" --sparsity=0,50 --interleaved=10 2>/dev/null \
      | grep -E "^sample" | sed "s/^/wbsP\t/" >> "$log"
    node "$root/tools/ort/run.js" "$out/r50.onnx" --inputs "$out/in/input.npy" --threads "$t" --warmup 3 --repeat 10 2>&1 \
      | sed "s/^/ort\t/" >> "$log"
    "$bench" --models=resnet50 --threads="$t" --sparsity=0,50 --interleaved=10 2>"$out/wait.txt" \
      | grep -E "^sample" | sed "s/^/wbsA\t/" >> "$log"
    echo "# auto: $(grep 'OpenMP wait' "$out/wait.txt" || true)" >> "$log"
  done
done
/usr/bin/python3 "$root/scripts/e2e_ort_summary.py" "$log" | tee "$out/summary.txt"
