#!/usr/bin/env bash
# Tier-3 test: wbs agrees with ONNX Runtime (CPU) on every zoo model.
#
#   bash tests/crosscheck/run.sh path/to/wbs WORKDIR
#
# For each zoo model (batch 1, fixed seeds): export it with `wbs zoo`, make a
# deterministic random input (tools/ort/gen_input.js), run ORT on it
# (tools/ort/run.js) and compare with
#   - `wbs run --backend fast` (every model),
#   - `wbs run --backend reference` (resnet18 and fmnist_resnet only: the
#     naive convs are too slow for the big models),
#   - ORT (optimizations off) on our own export after `wbs convert --fold-bn`
#     (every model),
# each PASS iff max |ORT - x| <= TOL * (max - min of ORT's output) for every
# output (tools/ort/compare.js). A negative control per model checks that
# the test can fail: ORT on a different input must NOT pass the same
# comparison (random-weight nets can collapse to input-independent outputs,
# which would make the agreement meaningless).
# Prints a table and "crosscheck: N passed, M failed"; exits non-zero on any
# failure. Env: CROSSCHECK_MODELS (space-separated subset), CROSSCHECK_THREADS
# (threads for wbs and ORT, default 2), CROSSCHECK_TOL (default 1e-4).
set -uo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 path/to/wbs WORKDIR" >&2
  exit 2
fi
WBS=$(realpath "$1")
WORK=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ORT_DIR=$ROOT/tools/ort
TOL=${CROSSCHECK_TOL:-1e-4}
THREADS=${CROSSCHECK_THREADS:-2}
MODELS=${CROSSCHECK_MODELS:-"fmnist_resnet resnet18 mobilenet_v2 resnet50 inception_v3 vgg16"}
REFERENCE_MODELS=" fmnist_resnet resnet18 "
CMD_TIMEOUT=900  # seconds per command; a hang is a failure, not a stuck test

if [ ! -x "$WBS" ]; then
  echo "crosscheck: error: '$1' is not an executable" >&2
  exit 2
fi
if ! command -v node >/dev/null || [ ! -d "$ORT_DIR/node_modules/onnxruntime-node" ]; then
  echo "crosscheck: error: node or onnxruntime-node missing (run scripts/setup.sh)" >&2
  exit 2
fi
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
LOG=$WORK/log.txt
: >"$LOG"

passed=0
failed=0
ROWS=()

# run NAME CMD...: runs CMD with a timeout, its output appended to the log.
run() {
  local what=$1
  shift
  echo "+ $*" >>"$LOG"
  if ! timeout "$CMD_TIMEOUT" "$@" >>"$LOG" 2>&1; then
    echo "crosscheck: $what failed: $*" >&2
    tail -n 5 "$LOG" | sed 's/^/    /' >&2
    return 1
  fi
}

# row MODEL CHECK COMPARE_JSON_FILE|"" ERROR: records one result line.
row() {
  local model=$1 check=$2 json=$3 err=${4:-}
  local line status
  if [ -n "$json" ] && [ -s "$json" ]; then
    line=$(node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const w = r.worst;
      const f = (x) => (x === undefined ? "-" : Number(x).toExponential(2));
      console.log([f(w.max_abs_err), f(w.range), f(w.ratio), r.pass ? "PASS" : "FAIL", w.error || ""].join("\t"));
    ' "$json")
  else
    line=$(printf -- '-\t-\t-\tFAIL\t%s' "$err")
  fi
  status=$(cut -f4 <<<"$line")
  if [ "$status" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  ROWS+=("$(printf '%s\t%s\t%s' "$model" "$check" "$line")")
}

# compare REF TEST JSON: writes compare.js's JSON; never fails the script itself.
compare() {
  node "$ORT_DIR/compare.js" "$1" "$2" --tol "$TOL" >"$3" 2>>"$LOG"
  local rc=$?
  [ $rc -le 1 ] || : >"$3"  # usage/file error: no JSON, row() reports FAIL
}

# wbs_run MODEL_ONNX INPUT_PAIRS BACKEND OUTDIR
wbs_run() {
  local args=() pair
  IFS=',' read -ra pairs <<<"$2"
  for pair in "${pairs[@]}"; do args+=(--input "$pair"); done
  rm -rf "$4"
  run "wbs run ($3)" "$WBS" run "$1" "${args[@]}" -o "$4" --backend "$3" --threads "$THREADS"
}

controls_ok=0
controls_bad=0
control_ratios=()
seed=100
for m in $MODELS; do
  seed=$((seed + 1))
  d=$WORK/$m
  rm -rf "$d"
  mkdir -p "$d"
  echo "[crosscheck] $m" >&2
  if ! run "wbs zoo $m" "$WBS" zoo "$m" -o "$d/model.onnx" --batch 1 --seed "$seed"; then
    row "$m" "wbs zoo" "" "wbs zoo failed (see $LOG)"
    continue
  fi
  inputs=$(node "$ORT_DIR/gen_input.js" --model "$d/model.onnx" --seed "$seed" --outdir "$d/in" 2>>"$LOG")
  if [ -z "$inputs" ] ||
    ! run "ort $m" node "$ORT_DIR/run.js" "$d/model.onnx" --inputs "$inputs" --outdir "$d/ort" --threads "$THREADS"; then
    row "$m" "ort" "" "ORT could not run the wbs export (see $LOG)"
    continue
  fi

  # Negative control: a different input must give a clearly different output.
  other=$(node "$ORT_DIR/gen_input.js" --model "$d/model.onnx" --seed $((seed + 5000)) --outdir "$d/in_other" 2>>"$LOG")
  if run "ort $m (control)" node "$ORT_DIR/run.js" "$d/model.onnx" --inputs "$other" --outdir "$d/ort_other" \
    --threads "$THREADS"; then
    compare "$d/ort" "$d/ort_other" "$d/control.json"
    if [ -s "$d/control.json" ] && node -e 'process.exit(JSON.parse(require("fs").readFileSync(process.argv[1])).pass ? 1 : 0)' "$d/control.json"; then
      controls_ok=$((controls_ok + 1))
      control_ratios+=("$(node -e 'console.log(Number(JSON.parse(require("fs").readFileSync(process.argv[1])).worst.ratio).toExponential(1))' "$d/control.json")")
    else
      echo "crosscheck: control failed for $m: a different input passes the comparison" >&2
      controls_bad=$((controls_bad + 1))
    fi
  else
    controls_bad=$((controls_bad + 1))
  fi

  backends=(fast)
  [[ "$REFERENCE_MODELS" == *" $m "* ]] && backends+=(reference)
  for b in "${backends[@]}"; do
    if wbs_run "$d/model.onnx" "$inputs" "$b" "$d/wbs_$b"; then
      compare "$d/ort" "$d/wbs_$b" "$d/cmp_$b.json"
      row "$m" "wbs $b" "$d/cmp_$b.json"
    else
      row "$m" "wbs $b" "" "wbs run failed (see $LOG)"
    fi
  done

  # Our exporter: the BN-folded model must still be the same function. ORT runs
  # it with graph optimizations off, so it executes our graph as written (with
  # them on, ORT folds the original's BN itself, the same way).
  if run "wbs convert $m" "$WBS" convert "$d/model.onnx" -o "$d/folded.onnx" --fold-bn &&
    run "ort $m (folded)" node "$ORT_DIR/run.js" "$d/folded.onnx" --inputs "$inputs" --outdir "$d/ort_folded" \
      --threads "$THREADS" --opt disabled; then
    compare "$d/ort" "$d/ort_folded" "$d/cmp_folded.json"
    row "$m" "ort(convert --fold-bn)" "$d/cmp_folded.json"
  else
    row "$m" "ort(convert --fold-bn)" "" "convert or ORT on the export failed (see $LOG)"
  fi
done

{
  printf '%-14s %-24s %-10s %-10s %-10s %-5s %s\n' model check max_abs_err range ratio result note
  for r in "${ROWS[@]}"; do
    IFS=$'\t' read -r c1 c2 c3 c4 c5 c6 c7 <<<"$r"
    printf '%-14s %-24s %-10s %-10s %-10s %-5s %s\n' "$c1" "$c2" "$c3" "$c4" "$c5" "$c6" "${c7:-}"
  done
  echo "tolerance: max_abs_err <= $TOL * range of ORT's output; threads $THREADS; log $LOG"
  echo "negative controls (ORT on another input must fail the comparison): $controls_ok ok, $controls_bad bad;" \
    "their ratios: ${control_ratios[*]:-none}"
}
[ "$controls_bad" -eq 0 ] || failed=$((failed + controls_bad))
echo "crosscheck: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
