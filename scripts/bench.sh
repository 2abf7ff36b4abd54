#!/usr/bin/env bash
# Benchmarks wbs against ONNX Runtime and writes docs/BENCHMARKS.md.
#
#   bash scripts/bench.sh BUILD_DIR        (make bench = build/release)
#
# Statistic, both sides alike: the median of single timed runs after warm-up
# runs. wbs: Google Benchmark with --fixed_iterations=1, so each of
# --benchmark_repetitions is one run; ORT: tools/ort/run.js --warmup 3, each
# --repeat is one run. On a shared machine a mean over a time window would
# fold other processes' bursts into one side only.
#
# 1. Whole models, batch 1, 1 and 2 threads: wbs_bench_models (fast backend =
#    oneDNN) then ORT on the ONNX file `wbs zoo` wrote, alternating for
#    BENCH_ROUNDS rounds per (model, threads); medians over all rounds. wbs
#    runs with its default wait policy (core/omp_wait.h: each process spins
#    briefly when the machine is idle and sleeps at once when it is busy,
#    since spinning OpenMP threads starve each other on a loaded 2-core
#    machine; OMP_WAIT_POLICY set by the caller wins). At 2 threads wbs
#    also runs with OMP_WAIT_POLICY=active, libgomp's spinning, for the record
#    (BENCH_ACTIVE=0 skips it).
# 2. ResNet-50's distinct conv layers: wbs_bench_conv (GFLOP/s) and ORT on
#    the same one-node graphs (wbs_bench_conv --export_onnx), alternating.
# 3. Where ResNet-50's time goes (1 thread): oneDNN's verbose log (per
#    primitive), wbs per-node timings (--profile_nodes) and ORT's profiler.
# 4. End-to-end block-sparse: ResNet-50, VGG-16, Inception-v3 at batch 1, 1
#    and 2 threads: wbs dense, wbs after one-shot 50% and 75% block
#    sparsification (wbs_bench_models --sparsity=0,50,75 --interleaved: the
#    three sessions run in turn, so their samples are paired; the runtime picks
#    sparse or oneDNN per layer) and ORT on the dense model, alternating for
#    BENCH_ROUNDS rounds; then a per-node profile (dense vs 50%) of ResNet-50
#    at 2 threads. scripts/bench_sparse_report.py renders the section
#    "End-to-end block-sparse" of the report (between <!-- e2e-sparse -->
#    markers; with BENCH_SPARSE=0 the previous section is kept).
# Raw results go to BUILD_DIR/bench_results/; tools/ort/bench_report.js turns
# them into the report (the "notes" block of the old report is kept).
# Env: BENCH_MODELS, BENCH_THREADS ("1 2"), BENCH_REPETITIONS (10 runs per
# round), BENCH_ROUNDS (3), BENCH_CONV (1; 0 skips 2.), BENCH_ACTIVE (1),
# BENCH_OUT, BENCH_SPARSE (1; 0 skips 4.), BENCH_SPARSE_MODELS ("resnet50 vgg16
# inception_v3"), BENCH_SPARSITIES ("50 75"), BENCH_SPARSE_ONLY (0; 1 runs only
# step 4 and splices its section into the existing report); OMP_WAIT_POLICY
# (unset: each wbs process chooses, core/omp_wait.h) applies to every wbs run.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
source "$(dirname "$0")/bench_common.sh"
bench_args bench "$1"  # ROOT, BUILD; OMP_WAIT_DESC (the caller's OMP_WAIT_POLICY or auto)
WBS=$BUILD/wbs
BM_MODELS=$BUILD/bench/wbs_bench_models
BM_CONV=$BUILD/bench/wbs_bench_conv
ORT=$ROOT/tools/ort
MODELS=${BENCH_MODELS:-"resnet18 resnet50 vgg16 inception_v3 mobilenet_v2 fmnist_resnet"}
THREADS=${BENCH_THREADS:-"1 2"}
REPS=${BENCH_REPETITIONS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
RUN_CONV=${BENCH_CONV:-1}
RUN_ACTIVE=${BENCH_ACTIVE:-1}
RUN_SPARSE=${BENCH_SPARSE:-1}
SPARSE_ONLY=${BENCH_SPARSE_ONLY:-0}
SPARSE_MODELS=${BENCH_SPARSE_MODELS:-"resnet50 vgg16 inception_v3"}
SPARSITIES=${BENCH_SPARSITIES:-"50 75"}
if [ "$SPARSE_ONLY" != 0 ]; then
  MODELS=""
  RUN_CONV=0
  RUN_SPARSE=1
fi
OUT_MD=${BENCH_OUT:-$ROOT/docs/BENCHMARKS.md}
WEIGHT_SEED=1  # = kWeightSeed in bench/bench_models.cc
INPUT_SEED=7
PROFILE_MODEL=resnet50
PROFILE_RUNS=20  # = the runs bench_report.js divides the oneDNN log by

bench_require_exec "build first: cmake --build $1" "$WBS" "$BM_MODELS" \
  $([ "$RUN_CONV" != 0 ] && echo "$BM_CONV") \
  $([ "${BENCH_INT8:-1}" != 0 ] && echo "$BUILD/bench/wbs_bench_int8")
bench_require_ort

R=$BUILD/bench_results
if [ "$SPARSE_ONLY" != 0 ]; then
  rm -rf "$R/sparse"
  mkdir -p "$R/sparse"
else
  rm -rf "$R"
  mkdir -p "$R/models" "$R/onnx" "$R/conv" "$R/profile" "$R/sparse"
fi
WBS_FLAGS=(--fixed_iterations=1 --benchmark_repetitions="$REPS" --benchmark_out_format=json)
ORT_FLAGS=(--warmup 3 --repeat "$REPS")
CMDS=$R/commands.txt
: >"$CMDS"
log() { echo "[bench] $*" >&2; }
# rec CMD...: records a command for the report (also in $REC_ALSO if set), then runs it.
REC_ALSO=
rec() { bench_rec "$@"; }

# --- 1. whole models -------------------------------------------------------
for m in $MODELS; do
  rec "$WBS" zoo "$m" -o "$R/onnx/$m.onnx" --batch 1 --seed "$WEIGHT_SEED" >/dev/null
  inputs=$(rec node "$ORT/gen_input.js" --model "$R/onnx/$m.onnx" --seed "$INPUT_SEED" --outdir "$R/onnx/${m}_in")
  for t in $THREADS; do
    for k in $(seq "$ROUNDS"); do
      log "$m, $t thread(s), round $k/$ROUNDS"
      rec "$BM_MODELS" --models="$m" --threads="$t" "${WBS_FLAGS[@]}" \
        --benchmark_out="$R/models/wbs_${m}_t${t}_r$k.json" >/dev/null
      if [ "$t" -gt 1 ] && [ "$RUN_ACTIVE" != 0 ]; then
        # libgomp's own default spins at barriers; on a loaded machine a
        # spinning thread waits for a descheduled partner. Kept for the record.
        rec env OMP_WAIT_POLICY=active "$BM_MODELS" --models="$m" --threads="$t" "${WBS_FLAGS[@]}" \
          --benchmark_out="$R/models/wbs_${m}_t${t}_active_r$k.json" >/dev/null
      fi
      rec node "$ORT/run.js" "$R/onnx/$m.onnx" --inputs "$inputs" --threads "$t" "${ORT_FLAGS[@]}" \
        >"$R/models/ort_${m}_t${t}_r$k.json"
    done
  done
done

# --- 2. conv layers ----------------------------------------------------------
if [ "$RUN_CONV" != 0 ]; then
  log "ResNet-50 conv layers"
  # Checks the CSV against the zoo's ResNet-50 once, then exports the layers.
  rec "$BM_CONV" --export_onnx="$R/conv" >"$R/conv/files.txt"
  while read -r f; do
    shape=$(basename "$f" .onnx)
    shape=${shape#conv_}
    inputs=$(rec node "$ORT/gen_input.js" --model "$f" --seed "$INPUT_SEED" --outdir "$R/conv/in_$shape")
    for t in $THREADS; do
      rec "$BM_CONV" --verify=0 --benchmark_filter="^conv/$shape/threads:$t/" --threads="$t" "${WBS_FLAGS[@]}" \
        --benchmark_out="$R/conv/wbs_${shape}_t$t.json" >/dev/null
      rec node "$ORT/run.js" "$f" --inputs "$inputs" --threads "$t" "${ORT_FLAGS[@]}" >"$R/conv/ort_${shape}_t$t.json"
    done
  done <"$R/conv/files.txt"
fi

# --- 3. ResNet-50 profile (1 thread) ------------------------------------------
if [[ " $MODELS " == *" $PROFILE_MODEL "* ]]; then
  log "$PROFILE_MODEL profile"
  # oneDNN 2.x reads DNNL_VERBOSE, 3.x ONEDNN_VERBOSE; exactly PROFILE_RUNS runs.
  rec env DNNL_VERBOSE=1 ONEDNN_VERBOSE=1 "$BM_MODELS" --models="$PROFILE_MODEL" --threads=1 \
    --fixed_iterations="$PROFILE_RUNS" --benchmark_repetitions=1 --mark_timed_runs >"$R/profile/dnnl_verbose.log"
  rec "$BM_MODELS" --models="$PROFILE_MODEL" --threads=1 --profile_nodes=9 >"$R/profile/nodes.txt"
  inputs=$(rec node "$ORT/gen_input.js" --model "$R/onnx/$PROFILE_MODEL.onnx" --seed "$INPUT_SEED" --outdir "$R/profile/in")
  rec node "$ORT/run.js" "$R/onnx/$PROFILE_MODEL.onnx" --inputs "$inputs" --threads 1 --warmup 3 \
    --repeat "$PROFILE_RUNS" --profile "$R/profile/ortprof" \
    --save-optimized "$R/profile/ort_optimized.onnx" >"$R/profile/ort_run.json"
fi

# --- 4. end-to-end block-sparse -------------------------------------------------
S=$R/sparse
if [ "$RUN_SPARSE" != 0 ]; then
  SP_LIST="0,$(echo "$SPARSITIES" | tr ' ' ',')"
  load_start=$(bench_load)
  : >"$S/commands.txt"
  REC_ALSO=$S/commands.txt
  for m in $SPARSE_MODELS; do
    rec "$WBS" zoo "$m" -o "$S/$m.onnx" --batch 1 --seed "$WEIGHT_SEED" >/dev/null
    inputs=$(rec node "$ORT/gen_input.js" --model "$S/$m.onnx" --seed "$INPUT_SEED" --outdir "$S/${m}_in")
    for t in $THREADS; do
      for k in $(seq "$ROUNDS"); do
        log "sparse end-to-end: $m, $t thread(s), round $k/$ROUNDS"
        # Dense and sparse sessions run in turn (paired samples, see bench_models.cc).
        rec "$BM_MODELS" --models="$m" --threads="$t" --sparsity="$SP_LIST" --interleaved="$REPS" \
          >"$S/wbs_${m}_t${t}_r$k.tsv"
        rec node "$ORT/run.js" "$S/$m.onnx" --inputs "$inputs" --threads "$t" "${ORT_FLAGS[@]}" \
          >"$S/ort_${m}_t${t}_r$k.json"
      done
    done
  done
  if [[ " $SPARSE_MODELS " == *" resnet50 "* ]]; then
    log "sparse end-to-end: resnet50 per-node profile"
    rec "$BM_MODELS" --models=resnet50 --threads=2 --sparsity="0,$(echo "$SPARSITIES" | cut -d' ' -f1)" \
      --profile_nodes=9 >"$S/profile_resnet50_t2.txt"
  fi
  {
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "commit=$(bench_commit)"
    echo "load_start=$load_start"
    echo "load_end=$(bench_load)"
    echo "reps=$REPS"
    echo "rounds=$ROUNDS"
    echo "sparsities=$SPARSITIES"
  } >"$S/machine.txt"
  REC_ALSO=
fi

# Splices the end-to-end section (fresh, or the previous report's) into $1.
splice_sparse_section() {
  local report=$1 old=$2 section
  section=$(mktemp)
  if [ "$RUN_SPARSE" != 0 ]; then
    python3 "$ROOT/scripts/bench_sparse_report.py" "$S" --notes "$old" >"$section"
  else
    bench_old_section e2e-sparse "$old" >"$section"
  fi
  bench_splice_section "$report" "$section" e2e-sparse
  rm -f "$section"
}

if [ "$SPARSE_ONLY" != 0 ]; then
  cp "$OUT_MD" "$OUT_MD.tmp"
  splice_sparse_section "$OUT_MD.tmp" "$OUT_MD"
  mv "$OUT_MD.tmp" "$OUT_MD"
  log "wrote the end-to-end block-sparse section of $OUT_MD"
  exit 0
fi

# --- machine and versions ------------------------------------------------------
{
  echo "cpu=$(bench_cpu)"
  echo "cpus=$(nproc)"
  echo "threads_per_core=$(lscpu | sed -n 's/^Thread(s) per core: *//p')"
  echo "hypervisor=$(lscpu | sed -n 's/^Hypervisor vendor: *//p')"
  echo "isa=$(grep -o -w -E 'avx512f|avx512_vnni|avx512_bf16|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  echo "mem=$(free -g | awk '/^Mem:/{print $2 " GiB"}')"
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit=$(bench_commit)"
  echo "compiler=$(c++ --version | head -1)"
  echo "onednn=$(dpkg-query -W -f='${Version}' libdnnl-dev 2>/dev/null || echo unknown)"
  echo "benchmark=$(dpkg-query -W -f='${Version}' libbenchmark-dev 2>/dev/null || echo unknown)"
  echo "ort=$(node -e 'console.log(require(process.argv[1] + "/node_modules/onnxruntime-node/package.json").version)' "$ORT")"
  echo "node=$(node --version)"
  echo "load=$(bench_load)"
  echo "omp_wait_policy=$OMP_WAIT_DESC"
  echo "reps=$REPS"
  echo "rounds=$ROUNDS"
  echo "profile_runs=$PROFILE_RUNS"
} >"$R/machine.txt"

node "$ORT/bench_report.js" "$R" --notes "$OUT_MD" >"$OUT_MD.tmp"
splice_sparse_section "$OUT_MD.tmp" "$OUT_MD"
# The int8 kernel section (scripts/bench_s8.sh; BENCH_S8=0 keeps the previous one).
bash "$ROOT/scripts/bench_s8.sh" "$BUILD" "$OUT_MD.tmp" "$OUT_MD"
# The int8 end-to-end section (scripts/bench_int8_e2e.sh; BENCH_INT8=0 keeps
# the previous one).
bash "$ROOT/scripts/bench_int8_e2e.sh" "$BUILD" "$OUT_MD.tmp" "$OUT_MD"
# The f32 block-sparse kernel section (scripts/bench_sparse_kernels.sh;
# BENCH_SPARSE=0 keeps the previous one).
bash "$ROOT/scripts/bench_sparse_kernels.sh" "$BUILD" "$OUT_MD.tmp" "$OUT_MD"
mv "$OUT_MD.tmp" "$OUT_MD"
log "wrote $OUT_MD"
