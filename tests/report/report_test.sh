#!/usr/bin/env bash
# wbs report end to end (label "cli"): builds a small pipeline output folder
# with the real commands (zoo fmnist_resnet with seeded weights, so accuracies
# are near chance; seconds, no training), renders the report on a partial and
# on a complete folder, opens the page in headless Chromium, saves a
# screenshot and checks from the rendered DOM that every key number of
# summary.json is shown (and "not run" where the stage is missing).
# Usage: report_test.sh WBS WORKDIR
set -euo pipefail
WBS=$1
W=$2
HERE=$(cd "$(dirname "$0")" && pwd)
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $CHROMIUM ]]; then
  echo "FAIL: chromium not found; install the Debian package 'chromium' (scripts/setup.sh does)" >&2
  exit 1
fi
rm -rf "$W"
O=$W/out
mkdir -p "$O"/{dense,sparse}

# Stages 1-2: dense and block-sparse models (masks in the ONNX metadata).
"$WBS" zoo fmnist_resnet -o "$O/dense/model.onnx" >/dev/null
"$WBS" sparsify "$O/dense/model.onnx" -o "$O/sparse/model.onnx" --block 8x8 --sparsity 0.5 >/dev/null

# Partial run: only dense/sparse exist. Everything else must say "not run".
"$WBS" report "$O" >/dev/null
python3 "$HERE/check_summary.py" partial "$O/summary.json" "$O/report.html"

# Stage 3: int8 (QDQ) with fp32/int8 top-1 on the first test images.
mkdir -p "$O"/{int8,aie,sim,bench}
for v in dense sparse; do
  "$WBS" quantize "$O/$v/model.onnx" -o "$O/int8/$v.int8.onnx" --calib 32 --eval 200 \
    --error-images 0 --json >"$O/int8/$v.json"
done
# Stage 4: AIE programs for paper-4x4 and the array sweep (zoo weights, as wbs aie-sweep).
for v in dense:0 sparse:0.5; do
  "$WBS" compile --zoo fmnist_resnet --sparsity "${v#*:}" --target paper-4x4 \
    -o "$O/aie/paper-4x4/${v%%:*}" >/dev/null
done
"$WBS" aie-sweep --models fmnist_resnet --arrays 2x2..4x4 --sparsity 0,0.5 -o "$O/aie/sweep.tsv" >/dev/null
# Stage 5: the simulator on the sparse program, bit-exact check against the CPU int8 runtime.
"$WBS" simulate "$O/aie/paper-4x4/sparse/program.bin" --zoo fmnist_resnet --sparsity 0.5 --check \
  --trace "$O/sim/trace.json" --report "$O/sim/report.txt" --report "$O/sim/report.json" >/dev/null
# Stage 6: CPU latency, the contract's bench/cpu.json from `wbs run` medians.
runs=()
for r in "dense fp32:dense/model.onnx" "sparse fp32:sparse/model.onnx" \
         "dense int8:int8/dense.int8.onnx" "sparse int8:int8/sparse.int8.onnx"; do
  line=$("$WBS" run "$O/${r#*:}" --random --threads 1 --warmup 1 --repeat 5 | grep '^latency:')
  med=$(sed -E 's/.*median ([0-9.]+) ms.*/\1/' <<<"$line")
  min=$(sed -E 's/.*min ([0-9.]+) ms.*/\1/' <<<"$line")
  runs+=("{\"name\": \"${r%%:*}\", \"model\": \"${r#*:}\", \"median_ms\": $med, \"min_ms\": $min}")
done
(IFS=,; echo "{\"threads\": 1, \"repeats\": 5, \"runs\": [${runs[*]}]}") >"$O/bench/cpu.json"

"$WBS" report "$O" >/dev/null
python3 "$HERE/check_summary.py" full "$O/summary.json" "$O/report.html"

# The rendered page: screenshot and DOM after layout, offline.
flags=(--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run
       --user-data-dir="$W/chromium-profile" --window-size=1280,4000)
timeout 120 "$CHROMIUM" "${flags[@]}" --screenshot="$W/report.png" "file://$O/report.html" \
  >"$W/chromium-screenshot.log" 2>&1 || { cat "$W/chromium-screenshot.log" >&2; exit 1; }
timeout 120 "$CHROMIUM" "${flags[@]}" --dump-dom "file://$O/report.html" >"$W/dom.html" \
  2>"$W/chromium-dom.log" || { cat "$W/chromium-dom.log" >&2; exit 1; }
python3 "$HERE/check_summary.py" dom "$O/summary.json" "$W/dom.html" "$W/report.png"
echo "PASS: report at $O/report.html, screenshot $W/report.png"
