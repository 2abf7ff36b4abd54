#!/usr/bin/env bash
# wbs pipeline end to end on a tiny torch-free config (label "cli", ~30 s):
# a random-weight fmnist_resnet ONNX model (no training), wbs sparsify,
# int8, paper-2x2 compile, simulation, a short benchmark. Checks the output
# layout of docs/PIPELINE.md, the stage cache (rerun, a changed key reruns
# only its stage and later ones, --only, --from), config errors, and that a
# failing stage keeps earlier stages' results.
# Usage: cli_pipeline.sh WBS_BINARY WORK_DIR
set -euo pipefail
WBS=${1:?usage: cli_pipeline.sh WBS WORK_DIR}
WORK=${2:?usage: cli_pipeline.sh WBS WORK_DIR}
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
export WBS_PROGRESS=plain
fail() { echo "FAIL: $*" >&2; exit 1; }
status() { python3 -c "import json,sys; d=json.load(open('$1/pipeline.json')); print(' '.join(s['name']+'='+s['status'] for s in d['stages']))"; }

"$WBS" zoo fmnist_resnet --seed 3 -o model.onnx >/dev/null
config() {  # config FILE BENCH_REPEATS [AIE_TARGET]
  cat >"$1" <<JSON
{
  "output": "out",
  "model": {"onnx": "model.onnx"},
  "sparse": {"finetune": false, "sparsity": 0.5},
  "int8": {"calib": 8, "eval": 0},
  "aie": {"targets": ["${3:-paper-2x2}"], "sweep": false},
  "sim": {"target": "${3:-paper-2x2}"},
  "bench": {"repeats": $2, "warmup": 0, "threads": 1},
  "report": {"accuracy_results": []}
}
JSON
}
config c.json 2

echo "== first run"
"$WBS" pipeline c.json 2>run1.log || { cat run1.log; fail "first run failed"; }
for f in pipeline.json dense/model.onnx dense/stage.json sparse/model.onnx sparse/sparsify.json \
  int8/dense.int8.onnx int8/sparse.int8.onnx int8/dense.json int8/sparse.json \
  aie/paper-2x2/dense/program.bin aie/paper-2x2/sparse/program.bin aie/paper-2x2/sparse/layers.tsv \
  sim/report.txt sim/report.json sim/trace.json sim/stage.json bench/cpu.json; do
  [ -s "out/$f" ] || fail "missing out/$f"
done
python3 - <<'PY' || fail "stage.json / cpu.json contents"
import json
for s in ["dense", "sparse", "int8", "aie", "sim", "bench"]:
    j = json.load(open(f"out/{s}/stage.json"))
    assert j["stage"] == s and j["status"] == "done" and len(j["key"]) == 16, j
    assert isinstance(j["seconds"], float) and j["demo_schedule"] is False, j
assert json.load(open("out/dense/stage.json"))["source"] == "onnx"
sp = json.load(open("out/sparse/stage.json"))
assert sp["method"] == "sparsify" and sp["block"] == "8x8", sp
assert json.load(open("out/sim/stage.json"))["bit_exact"] is True
cpu = json.load(open("out/bench/cpu.json"))
assert cpu["repeats"] == 2 and [r["name"] for r in cpu["runs"]] == ["dense fp32", "sparse fp32", "dense int8", "sparse int8"]
for r in cpu["runs"]:
    assert 0 < r["min_ms"] <= r["median_ms"] <= r["max_ms"], r
p = json.load(open("out/pipeline.json"))
assert p["config"]["bench"]["repeats"] == 2 and p["config_file"] == "c.json"
assert p["demo_schedule"] is False
PY
s=$(status out)
case "$s" in "dense=done sparse=done int8=done aie=done sim=done bench=done report="*) ;; *) fail "first run: $s";; esac

echo "== rerun: everything but the report is cached"
"$WBS" pipeline c.json 2>run2.log
s=$(status out)
case "$s" in "dense=cached sparse=cached int8=cached aie=cached sim=cached bench=cached report="*) ;; *) fail "rerun: $s";; esac

echo "== bench.repeats changed: only bench (and report) rerun"
config c3.json 3
"$WBS" pipeline c3.json 2>run3.log
s=$(status out)
case "$s" in "dense=cached sparse=cached int8=cached aie=cached sim=cached bench=done report="*) ;; *) fail "changed bench: $s";; esac

echo "== --only int8 and --from sim"
"$WBS" pipeline c3.json --only int8 2>run4.log
s=$(status out)
case "$s" in "dense=skipped sparse=skipped int8=done aie=skipped sim=skipped bench=skipped report=skipped") ;; *) fail "--only: $s";; esac
"$WBS" pipeline c3.json --from sim 2>run5.log
s=$(status out)
case "$s" in "dense=cached sparse=cached int8=cached aie=cached sim=done bench=done report="*) ;; *) fail "--from: $s";; esac

echo "== config errors name the key"
printf '{"sparse": {"sparsity": 1.5}}' >bad1.json
if "$WBS" pipeline bad1.json 2>err1.txt; then fail "sparsity 1.5 accepted"; fi
grep -qx 'wbs: error: bad1.json: sparse.sparsity: 1.5 is not in \[0,1)' err1.txt || { cat err1.txt; fail "error text"; }
printf '{"int8": {"calbi": 3}}' >bad2.json
if "$WBS" pipeline bad2.json 2>err2.txt; then fail "unknown key accepted"; fi
grep -q '^wbs: error: bad2.json: int8.calbi: unknown key' err2.txt || { cat err2.txt; fail "error text"; }

echo "== a failing stage stops the pipeline, earlier stages stay valid"
config c4.json 3 configs/none.json
if "$WBS" pipeline c4.json 2>err4.txt; then fail "missing AIE target accepted"; fi
grep -q '^wbs: error: pipeline stage 4/7 aie: wbs compile ' err4.txt || { cat err4.txt; fail "error text"; }
[ "$(wc -l <err4.txt | tr -d ' ')" -ge 1 ]
s=$(status out)
case "$s" in "dense=cached sparse=cached int8=cached aie=failed sim=pending bench=pending report=pending") ;; *) fail "failure: $s";; esac
[ -f out/int8/stage.json ] && [ ! -f out/aie/stage.json ] || fail "stage.json after the failure"
echo "cli_pipeline: all checks passed"
