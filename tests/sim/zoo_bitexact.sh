#!/usr/bin/env bash
# Every zoo model on paper-2x2 and paper-4x4, dense and 50% block-sparse:
# wbs compile --zoo -> wbs simulate --check (output bit-exact with the CPU
# int8 runtime on the same in-process int8 model). Prints a TSV row per run
# (host seconds of compile and simulate, simulated and estimated cycles) and
# fails on the first mismatch or fault.
# Usage: zoo_bitexact.sh WBS_BINARY WORK_DIR [MODEL...]
#   (default models: every zoo model; the large ones take minutes each)
set -uo pipefail
WBS=${1:?usage: zoo_bitexact.sh WBS_BINARY WORK_DIR [MODEL...]}
D=${2:?usage: zoo_bitexact.sh WBS_BINARY WORK_DIR [MODEL...]}
shift 2
MODELS=("$@")
if [ ${#MODELS[@]} -eq 0 ]; then
  MODELS=(fmnist_resnet mobilenet_v2 resnet18 resnet50 inception_v3 vgg16)
fi
PRESETS=${WBS_SIM_PRESETS:-"paper-2x2 paper-4x4"}
SPARSITIES=${WBS_SIM_SPARSITIES:-"0 0.5"}
mkdir -p "$D"
failures=0
printf 'model\ttarget\tsparsity\tcompile_s\tsimulate_s\tsim_cycles\test_cycles\tsim/est\tbit_exact\n' | tee "$D/zoo_bitexact.tsv"
for m in "${MODELS[@]}"; do
  for t in $PRESETS; do
    for sp in $SPARSITIES; do
      o="$D/$m.$t.$sp"
      rm -rf "$o" && mkdir -p "$o"
      t0=$(date +%s.%N)
      if ! "$WBS" compile --zoo "$m" --sparsity "$sp" --target "$t" -o "$o" >"$o/compile.out" 2>&1; then
        echo "FAIL: compile $m $t $sp: $(tail -1 "$o/compile.out")" >&2
        failures=$((failures + 1))
        continue
      fi
      t1=$(date +%s.%N)
      "$WBS" simulate "$o/program.bin" --zoo "$m" --sparsity "$sp" --check \
        --report "$o/report.json" --report "$o/report.txt" >"$o/simulate.out" 2>&1
      rc=$?
      t2=$(date +%s.%N)
      row=$(python3 - "$o/report.json" <<'PY' 2>/dev/null
import json, sys
j = json.load(open(sys.argv[1]))
print(f"{j['sim_cycles']:.0f}\t{j['estimate_cycles']:.0f}\t{j['sim_over_est']:.3f}\t{str(j['bit_exact']).lower()}")
PY
)
      [ -n "$row" ] || row="-\t-\t-\tfalse"
      printf '%s\t%s\t%s\t%.1f\t%.1f\t%b\n' "$m" "$t" "$sp" "$(echo "$t1 - $t0" | bc)" \
        "$(echo "$t2 - $t1" | bc)" "$row" | tee -a "$D/zoo_bitexact.tsv"
      if [ $rc -ne 0 ] || ! grep -q "bit-exact" "$o/simulate.out"; then
        echo "FAIL: simulate $m $t $sp: $(grep -m1 -E 'error|mismatch' "$o/simulate.out")" >&2
        failures=$((failures + 1))
      fi
    done
  done
done
if [ $failures -ne 0 ]; then
  echo "zoo_bitexact: $failures failed" >&2
  exit 1
fi
echo "zoo_bitexact: every run bit-exact"
