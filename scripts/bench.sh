#!/usr/bin/env bash
# Benchmarks wbs against ONNX Runtime and writes docs/BENCHMARKS.md.
#
#   bash scripts/bench.sh BUILD_DIR        (make bench = build/release)
#
# 1. Whole models, batch 1, 1 and 2 threads: wbs_bench_models (Google
#    Benchmark, fast/oneDNN session) and, right after each, ONNX Runtime on
#    the same ONNX file (tools/ort/run.js, warm-up 3); wbs and ORT alternate
#    for BENCH_ROUNDS rounds per (model, threads) so machine noise hits both
#    alike; medians over all rounds.
# 2. wbs_bench_conv: ResNet-50's distinct conv shapes, GFLOP/s, 5 repetitions.
# 3. Where ResNet-50's time goes (1 thread): oneDNN's verbose log for wbs
#    (per-primitive times: convolutions vs reorders vs the rest) and ORT's
#    own profiler (per op type).
# Raw results go to BUILD_DIR/bench_results/; tools/ort/bench_report.js turns
# them into the report. Env: BENCH_MODELS, BENCH_THREADS ("1 2"),
# BENCH_REPETITIONS (5 per round), BENCH_ORT_REPEAT (10 per round), BENCH_ROUNDS (3),
# BENCH_OUT (docs/BENCHMARKS.md).
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd)
WBS=$BUILD/wbs
BM_MODELS=$BUILD/bench/wbs_bench_models
BM_CONV=$BUILD/bench/wbs_bench_conv
ORT=$ROOT/tools/ort
MODELS=${BENCH_MODELS:-"resnet18 resnet50 vgg16 inception_v3 mobilenet_v2 fmnist_resnet"}
THREADS=${BENCH_THREADS:-"1 2"}
REPS=${BENCH_REPETITIONS:-5}
ORT_REPEAT=${BENCH_ORT_REPEAT:-10}
ROUNDS=${BENCH_ROUNDS:-3}
OUT_MD=${BENCH_OUT:-$ROOT/docs/BENCHMARKS.md}
WEIGHT_SEED=1  # = kWeightSeed in bench/bench_models.cc
PROFILE_MODEL=resnet50
PROFILE_RUNS=20

for f in "$WBS" "$BM_MODELS" "$BM_CONV"; do
  [ -x "$f" ] || { echo "bench: missing $f (build first: cmake --build $1)" >&2; exit 2; }
done
[ -d "$ORT/node_modules/onnxruntime-node" ] || { echo "bench: onnxruntime-node missing (scripts/setup.sh)" >&2; exit 2; }

R=$BUILD/bench_results
rm -rf "$R"
mkdir -p "$R/models" "$R/onnx" "$R/profile"
# Every repetition is kept in the JSON (the report pools them across rounds).
GB_FLAGS=(--benchmark_repetitions="$REPS" --benchmark_out_format=json)
CMDS=$R/commands.txt
: >"$CMDS"
log() { echo "[bench] $*" >&2; }
# rec CMD...: records a command for the report, then runs it.
rec() {
  echo "$*" | sed "s|$ROOT/||g" >>"$CMDS"
  "$@"
}

# --- 1. whole models -------------------------------------------------------
# BENCH_ROUNDS rounds; in each, wbs (all repetitions) then ORT per (model,
# threads). The report takes the median over every repetition / timed run of
# all rounds.
for m in $MODELS; do
  rec "$WBS" zoo "$m" -o "$R/onnx/$m.onnx" --batch 1 --seed "$WEIGHT_SEED" >/dev/null
  inputs=$(node "$ORT/gen_input.js" --model "$R/onnx/$m.onnx" --seed 7 --outdir "$R/onnx/${m}_in")
  for t in $THREADS; do
    for k in $(seq "$ROUNDS"); do
      log "$m, $t thread(s), round $k: wbs"
      rec "$BM_MODELS" --models="$m" --threads="$t" "${GB_FLAGS[@]}" \
        --benchmark_out="$R/models/wbs_${m}_t${t}_r$k.json" >/dev/null
      if [ "$t" -gt 1 ]; then
        # libgomp spins at barriers by default; on a loaded machine a spinning
        # thread waits for a descheduled partner. Measured both ways.
        log "$m, $t threads, round $k: wbs, OMP_WAIT_POLICY=passive"
        rec env OMP_WAIT_POLICY=passive "$BM_MODELS" --models="$m" --threads="$t" "${GB_FLAGS[@]}" \
          --benchmark_out="$R/models/wbs_${m}_t${t}_passive_r$k.json" >/dev/null
      fi
      log "$m, $t thread(s), round $k: onnxruntime"
      rec node "$ORT/run.js" "$R/onnx/$m.onnx" --inputs "$inputs" --threads "$t" --warmup 3 \
        --repeat "$ORT_REPEAT" >"$R/models/ort_${m}_t${t}_r$k.json"
    done
  done
done

# --- 2. conv layers ----------------------------------------------------------
log "ResNet-50 conv layers"
rec "$BM_CONV" --threads="$(echo $THREADS | tr ' ' ',')" "${GB_FLAGS[@]}" --benchmark_out="$R/conv.json" >/dev/null

# --- 3. ResNet-50 profile (1 thread) ------------------------------------------
if [[ " $MODELS " == *" $PROFILE_MODEL "* ]]; then
  log "$PROFILE_MODEL profile: oneDNN verbose"
  # oneDNN 2.x reads DNNL_VERBOSE, 3.x ONEDNN_VERBOSE; exactly PROFILE_RUNS runs.
  rec env DNNL_VERBOSE=1 ONEDNN_VERBOSE=1 "$BM_MODELS" --models="$PROFILE_MODEL" --threads=1 \
    --fixed_iterations="$PROFILE_RUNS" --benchmark_repetitions=1 >"$R/profile/dnnl_verbose.log"
  log "$PROFILE_MODEL profile: per-node timings"
  rec "$BM_MODELS" --models="$PROFILE_MODEL" --threads=1 --profile_nodes=9 >"$R/profile/nodes.txt"
  log "$PROFILE_MODEL profile: onnxruntime profiler"
  inputs=$(node "$ORT/gen_input.js" --model "$R/onnx/$PROFILE_MODEL.onnx" --seed 7 --outdir "$R/profile/in")
  rec node "$ORT/run.js" "$R/onnx/$PROFILE_MODEL.onnx" --inputs "$inputs" --threads 1 --warmup 0 \
    --repeat "$PROFILE_RUNS" --profile "$R/profile/ortprof" \
    --save-optimized "$R/profile/ort_optimized.onnx" >"$R/profile/ort_run.json"
fi

# --- machine and versions ------------------------------------------------------
{
  echo "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  echo "cpus=$(nproc)"
  echo "threads_per_core=$(lscpu | sed -n 's/^Thread(s) per core: *//p')"
  echo "hypervisor=$(lscpu | sed -n 's/^Hypervisor vendor: *//p')"
  echo "isa=$(grep -o -w -E 'avx512f|avx512_vnni|avx512_bf16|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  echo "mem=$(free -g | awk '/^Mem:/{print $2 " GiB"}')"
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "compiler=$(c++ --version | head -1)"
  echo "onednn=$(dpkg-query -W -f='${Version}' libdnnl-dev 2>/dev/null || echo unknown)"
  echo "benchmark=$(dpkg-query -W -f='${Version}' libbenchmark-dev 2>/dev/null || echo unknown)"
  echo "ort=$(node -e 'console.log(require(process.argv[1] + "/node_modules/onnxruntime-node/package.json").version)' "$ORT")"
  echo "node=$(node --version)"
  echo "load=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$R/machine.txt"

node "$ORT/bench_report.js" "$R" --notes "$OUT_MD" >"$OUT_MD.tmp"
mv "$OUT_MD.tmp" "$OUT_MD"
log "wrote $OUT_MD"
