#!/usr/bin/env bash
# `make demo`: the whole wbs flow in one command, `wbs pipeline` with its
# embedded default config (docs/PIPELINE.md): Fashion-MNIST fmnist_resnet,
# dense training (or the cached checkpoint out/dense/ckpt/best.pt), 50% 8x8
# block sparsity with fine-tuning, int8, AIE compile for paper-4x4 plus the
# 2x2..8x8 sweep, bit-exact simulation, CPU benchmark, then out/report.html.
# A cold run takes about 10-15 minutes on 2 cores; a rerun only redoes the
# report (stages are cached in out/<stage>/stage.json).
# Usage: scripts/demo.sh WBS_BINARY [wbs pipeline options, e.g. --force or CONFIG.json]
#        (WBS_DEMO_OUT=DIR writes to DIR instead of out/)
set -euo pipefail
WBS=${1:?usage: scripts/demo.sh WBS_BINARY [pipeline options]}
shift
[ -x "$WBS" ] || { echo "demo: $WBS is not an executable (run 'make build' first)" >&2; exit 1; }
args=("$@")
[ -n "${WBS_DEMO_OUT:-}" ] && args+=(-o "$WBS_DEMO_OUT")
start=$(date +%s)
"$WBS" pipeline "${args[@]}"
OUT=${WBS_DEMO_OUT:-out}
printf '\ndemo: done in %ss. Open %s/report.html (self-contained); numbers in %s/summary.json,\n' \
  "$(( $(date +%s) - start ))" "$OUT" "$OUT"
printf 'each stage'"'"'s files in %s/<stage>/ (docs/PIPELINE.md).\n' "$OUT"
