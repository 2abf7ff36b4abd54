#!/usr/bin/env bash
# wbs simulate end to end from real files: wbs zoo fmnist_resnet -> wbs
# sparsify 50% -> wbs quantize (QDQ ONNX, Fashion-MNIST calibration) -> wbs
# compile (paper-2x2, paper-4x4) -> wbs simulate --check: the output read
# back from DDR equals the CPU int8 runtime's on the same file bit for bit;
# report.json (bit_exact, per-layer sim/est cycles, critical paths) and the
# trace; the error paths (exit 1, one line).
# Usage: cli_simulate.sh WBS_BINARY WORK_DIR
set -uo pipefail
WBS=${1:?usage: cli_simulate.sh WBS_BINARY WORK_DIR}
D=${2:?usage: cli_simulate.sh WBS_BINARY WORK_DIR}
rm -rf "$D" && mkdir -p "$D"

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
expect_ok() {  # NAME CMD...: exit 0, stdout in $D/NAME.out
  local name=$1; shift
  "$@" >"$D/$name.out" 2>"$D/$name.err" || fail "$name: exit $?: $* :: $(head -c 400 "$D/$name.err")"
}
expect_fail() {  # NAME PATTERN CMD...: exit 1, one line 'wbs: error: ...PATTERN'
  local name=$1 pattern=$2; shift 2
  "$@" >"$D/$name.out" 2>"$D/$name.err"
  local rc=$?
  [ $rc -eq 1 ] || fail "$name: exit $rc, expected 1: $*"
  [ "$(wc -l <"$D/$name.err")" -eq 1 ] || fail "$name: stderr is not one line: $(cat "$D/$name.err")"
  grep -qE "^wbs: error: .*$pattern" "$D/$name.err" || fail "$name: stderr does not match '$pattern': $(cat "$D/$name.err")"
}
# report.json checks: bit_exact, totals, one row per compiled layer.
check_report() {  # REPORT_JSON LAYERS_TSV
  python3 - "$1" "$2" <<'PY' || fail "$1: report checks"
import json, sys
j = json.load(open(sys.argv[1]))
rows = [l for l in open(sys.argv[2]) if l.strip() and not l.startswith("#") and not l.startswith("layer\t")]
assert j["bit_exact"] is True, "bit_exact"
assert j["mismatches"] == 0
assert j["sim_cycles"] > 0 and j["estimate_cycles"] > 0
assert abs(j["sim_over_est"] - j["sim_cycles"] / j["estimate_cycles"]) < 1e-9
assert len(j["layers"]) == len(rows), (len(j["layers"]), len(rows))
# Per-layer sim cycles are increments: they add up to the total.
assert abs(sum(l["sim_cycles"] for l in j["layers"]) - j["sim_cycles"]) <= 1e-6 * j["sim_cycles"]
assert abs(sum(l["est_cycles"] for l in j["layers"]) - j["estimate_cycles"]) <= 1e-6 * j["estimate_cycles"]
for l in j["layers"]:
    assert l["name"] and l["op"], l
    # (a layer fused into another has no instructions and no time)
    assert l["critical"] or l["sim_cycles"] == 0, l["name"]
    for c in l["critical"]:
        assert c["op"] in ("LOAD", "LOADW", "LOADFM", "LOADWM", "COMP", "WRITEFM", "WRITE"), c
        assert 0 <= c["share"] <= 1
# The compiler's estimate: the compile's own total (ms in layers.tsv's header).
head = open(sys.argv[2]).readline()
ms = float(head.split("estimate ")[1].split(" ms")[0])
assert abs(j["est_ms"] - ms) <= 1e-4 + 1e-3 * ms, (j["est_ms"], ms)
PY
}

# A 1x1x28x28 f32 input (.npy v1.0, written without numpy).
python3 - "$D/x.npy" <<'PY'
import random, struct, sys
random.seed(3)
h = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 28, 28), }"
h += " " * (63 - (10 + len(h)) % 64) + "\n"
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode())
    f.write(struct.pack("<784f", *[random.gauss(0, 1) for _ in range(784)]))
PY

# In-process model (wbs compile --zoo), rebuilt for --check by --zoo.
expect_ok compile_zoo "$WBS" compile --zoo fmnist_resnet --sparsity 0.5 --target paper-4x4 -o "$D/zoo"
expect_ok simulate_zoo "$WBS" simulate "$D/zoo/program.bin" --zoo fmnist_resnet --sparsity 0.5 \
  --input "$D/x.npy" --check --report "$D/zoo/report.json" --report "$D/zoo/report.txt" \
  --trace "$D/zoo/sim_trace.json"
grep -q "bit-exact" "$D/simulate_zoo.out" || fail "simulate_zoo: no bit-exact line"
check_report "$D/zoo/report.json" "$D/zoo/layers.tsv"
grep -q "^total: " "$D/zoo/report.txt" || fail "report.txt has no total"
python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert any(e.get('ph')=='X' for e in j['traceEvents'])" \
  "$D/zoo/sim_trace.json" || fail "trace has no events"
# The program text form runs the same.
expect_ok simulate_txt "$WBS" simulate "$D/zoo/program.txt" --zoo fmnist_resnet --sparsity 0.5 \
  --input "$D/x.npy" --check
# The compiler's layers.tsv as the estimate gives the same total.
expect_ok simulate_est "$WBS" simulate "$D/zoo/program.bin" --estimate "$D/zoo/layers.tsv"
# --timing-only moves no bytes and times exactly as the functional run.
expect_ok simulate_timing "$WBS" simulate "$D/zoo/program.bin" --timing-only
[ "$(grep '^total: ' "$D/simulate_timing.out" | cut -d' ' -f2)" = "$(grep '^total: ' "$D/simulate_zoo.out" | cut -d' ' -f2)" ] ||
  fail "simulate --timing-only total differs from the functional run"
grep -q " 0 bytes moved" "$D/simulate_timing.out" || fail "simulate --timing-only moved bytes"

# Error paths.
expect_fail no_model "needs --model" "$WBS" simulate "$D/zoo/program.bin" --check
expect_fail timing_check "needs the functional run" "$WBS" simulate "$D/zoo/program.bin" --zoo fmnist_resnet \
  --sparsity 0.5 --check --timing-only
head -c 100 "$D/zoo/program.bin" >"$D/short.bin"
expect_fail truncated "short.bin" "$WBS" simulate "$D/short.bin"
printf 'layer\ttime_us\nconv1\t1.0\n' >"$D/bad_layers.tsv"
expect_fail bad_estimate "bad_layers.tsv: no row for the program's layer" \
  "$WBS" simulate "$D/zoo/program.bin" --estimate "$D/bad_layers.tsv"

# From a real QDQ file (wbs quantize -o): compile lowers QDQ to the integer ops.
if [ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  expect_ok zoo "$WBS" zoo fmnist_resnet -o "$D/f.onnx" --seed 1
  expect_ok sparsify "$WBS" sparsify "$D/f.onnx" -o "$D/f50.onnx" --sparsity 0.5
  expect_ok quantize "$WBS" quantize "$D/f50.onnx" -o "$D/f50.int8.onnx" --calib 64 --error-images 0
  for t in paper-2x2 paper-4x4; do
    expect_ok "compile_$t" "$WBS" compile "$D/f50.int8.onnx" --target "$t" -o "$D/q.$t"
    expect_ok "simulate_$t" "$WBS" simulate "$D/q.$t/program.bin" --model "$D/f50.int8.onnx" \
      --input "$D/x.npy" --check --report "$D/q.$t/report.json"
    grep -q "bit-exact" "$D/simulate_$t.out" || fail "simulate_$t: no bit-exact line"
    check_report "$D/q.$t/report.json" "$D/q.$t/layers.tsv"
  done
else
  echo "cli_simulate: Fashion-MNIST not installed, QDQ file part skipped"
fi

if [ $failures -ne 0 ]; then
  echo "cli_simulate: $failures failed" >&2
  exit 1
fi
echo "cli_simulate: OK"
