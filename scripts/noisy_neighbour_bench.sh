#!/bin/bash
# Robustness of the 2-thread runtime to a noisy neighbour: ResNet-50 batch 1,
# wbs dense and 50% block-sparse and ONNX Runtime dense, each run quiet and
# with scripts/noisy_neighbour.py (a duty-cycled RT busy loop pinned to one
# CPU: a stand-in for a hypervisor stealing that vCPU), in alternating rounds.
# Reports each engine's slowdown (noisy / quiet median of all samples) and
# the ORT / wbs ratios in both conditions (docs/BENCHMARKS.md "h_dyn").
#
#   flock /tmp/wbs_bench.lock chrt -f 10 bash scripts/noisy_neighbour_bench.sh BUILD OUTDIR [ROUNDS] [THREADS]
#
# BUILD: a build dir with bench/wbs_bench_models and wbs; OUTDIR: as in
# scripts/e2e_ort_rounds.sh (r50.onnx and in/input.npy made once, shareable),
# gets noisy_samples.tsv and noisy_summary.txt. Defaults: 3 rounds, 2 threads.
# Environment: NOISE_CPU (1), NOISE_BUSY_MS (2), NOISE_IDLE_MS (8),
# NOISE_PRIO (20; must be above the caller's chrt priority), NOISY_REPS (10
# samples per engine and run), NOISY_WAITS ("auto passive": wbs's own
# start-up wait choice, core/omp_wait.h, and OMP_WAIT_POLICY=passive; also
# "active" or "spin"=GOMP_SPINCOUNT=10000), WBS_VARIANTS (passed to
# wbs_bench_models as --variants=..., e.g. WBS_SCHED=static,dynamic: one
# wbs sample series per value), NOISY_BIND (0; 1: wbs runs with
# OMP_PROC_BIND=true OMP_PLACES=cores, so the kernel cannot move the
# preempted OpenMP thread to the other CPU, as with a real vCPU steal).
# The neighbour is killed on exit.
set -euo pipefail
build=${1:?usage: noisy_neighbour_bench.sh BUILD OUTDIR [ROUNDS] [THREADS]}
out=${2:?usage: noisy_neighbour_bench.sh BUILD OUTDIR [ROUNDS] [THREADS]}
rounds=${3:-3}
t=${4:-2}
root=$(cd "$(dirname "$0")/.." && pwd)
bench="$build/bench/wbs_bench_models"
[ -x "$bench" ] || { echo "noisy_neighbour_bench: $bench not found" >&2; exit 1; }
reps=${NOISY_REPS:-10}
read -r -a waits <<< "${NOISY_WAITS:-auto passive}"
variants=()
[ -z "${WBS_VARIANTS:-}" ] || variants=(--variants="$WBS_VARIANTS")
mkdir -p "$out"
if [ ! -f "$out/r50.onnx" ]; then
  "$build/wbs" zoo resnet50 -o "$out/r50.onnx.tmp" --batch 1 --seed 1 >/dev/null
  mv "$out/r50.onnx.tmp" "$out/r50.onnx"
fi
[ -f "$out/in/input.npy" ] || node "$root/tools/ort/gen_input.js" --model "$out/r50.onnx" --seed 7 --outdir "$out/in" >/dev/null
noise_pid=""
stop_noise() {
  if [ -n "$noise_pid" ]; then
    kill -TERM "$noise_pid" 2>/dev/null || true
    wait "$noise_pid" 2>>"$out/noise.txt" || true
    noise_pid=""
  fi
}
trap stop_noise EXIT
start_noise() {
  : > "$out/noise.ready"
  python3 "$root/scripts/noisy_neighbour.py" --cpu "${NOISE_CPU:-1}" --busy-ms "${NOISE_BUSY_MS:-2}" \
    --idle-ms "${NOISE_IDLE_MS:-8}" --prio "${NOISE_PRIO:-20}" >"$out/noise.ready" 2>>"$out/noise.txt" &
  noise_pid=$!
  for _ in $(seq 1 40); do [ -s "$out/noise.ready" ] && break; sleep 0.05; done
  [ -s "$out/noise.ready" ] || {
    echo "noisy_neighbour_bench: the neighbour did not start (CPU, SCHED_FIFO rights?), see $out/noise.txt" >&2
    exit 1
  }
}
log="$out/noisy_samples.tsv"; : > "$log"; : > "$out/noise.txt"
run_wbs() {  # mode wait
  local env=()
  case "$2" in
    auto) env=(env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT) ;;
    passive) env=(env OMP_WAIT_POLICY=passive) ;;
    active) env=(env OMP_WAIT_POLICY=active) ;;
    spin) env=(env -u OMP_WAIT_POLICY GOMP_SPINCOUNT=10000) ;;
    *) echo "noisy_neighbour_bench: unknown wait '$2'" >&2; exit 2 ;;
  esac
  [ "${NOISY_BIND:-0}" = 0 ] || env+=(OMP_PROC_BIND=true OMP_PLACES=cores)
  "${env[@]}" "$bench" --models=resnet50 --threads="$t" --sparsity=0,50 --interleaved="$reps" \
    "${variants[@]}" 2>"$out/wait.txt" | grep -E "^sample" | sed "s/^/$1\twbs-$2\t/" >> "$log"
  echo "# wait $1 $2: $(grep 'OpenMP wait' "$out/wait.txt" || true)" >> "$log"
}
for r in $(seq 1 "$rounds"); do
  modes=(quiet noisy); [ $((r % 2)) -eq 1 ] || modes=(noisy quiet)
  for mode in "${modes[@]}"; do
    echo "# round $r $mode $(date -u +%T) $(uptime)" >> "$log"
    echo "noisy_neighbour_bench: round $r/$rounds, $mode" >&2
    [ "$mode" = quiet ] || start_noise
    for w in "${waits[@]}"; do run_wbs "$mode" "$w"; done
    node "$root/tools/ort/run.js" "$out/r50.onnx" --inputs "$out/in/input.npy" --threads "$t" \
      --warmup 3 --repeat "$reps" 2>&1 | sed "s/^/$mode\tort\t/" >> "$log"
    stop_noise
  done
done
/usr/bin/python3 "$root/scripts/noisy_neighbour_summary.py" "$log" | tee "$out/noisy_summary.txt"
cat "$out/noise.txt"
