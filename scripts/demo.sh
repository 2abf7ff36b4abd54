#!/usr/bin/env bash
# The `make demo` walk-through: build two zoo models, inspect ResNet-50, run
# it on the fast backend, fold its BatchNorms and check the folded model
# gives the same answer. Takes well under two minutes.
# Usage: scripts/demo.sh WBS_BINARY   (outputs go to $WBS_DEMO_OUT, default out/)
set -euo pipefail
WBS=${1:?usage: scripts/demo.sh WBS_BINARY}
OUT=${WBS_DEMO_OUT:-out}
THREADS=2
SEED=1
[ -x "$WBS" ] || { echo "demo: $WBS is not an executable (run 'make build' first)" >&2; exit 1; }
mkdir -p "$OUT"

step() { printf '\n==> %s\n' "$*"; }
start=$(date +%s)

step "wbs $("$WBS" --version | cut -d' ' -f2): build zoo models (random weights, seed $SEED)"
"$WBS" zoo resnet50 --seed "$SEED" -o "$OUT/resnet50.onnx"
"$WBS" zoo fmnist_resnet --seed "$SEED" -o "$OUT/fmnist_resnet.onnx"

step "wbs info $OUT/resnet50.onnx: layers, MACs and which layers can take 8x8 block sparsity"
"$WBS" info "$OUT/resnet50.onnx"

step "wbs run: ResNet-50 on a random image, fast backend, $THREADS threads"
"$WBS" run "$OUT/resnet50.onnx" --random --seed "$SEED" --backend fast --threads "$THREADS" \
  --warmup 1 --repeat 5 -o "$OUT/resnet50_run"

step "wbs convert --fold-bn: fold BatchNormalization into the convolutions"
"$WBS" convert "$OUT/resnet50.onnx" -o "$OUT/resnet50_folded.onnx" --fold-bn
"$WBS" info "$OUT/resnet50_folded.onnx" | grep -E '^(ops|total):'

step "wbs run the folded model on the same input: the top-5 classes should not change"
"$WBS" run "$OUT/resnet50_folded.onnx" --random --seed "$SEED" --backend fast --threads "$THREADS" \
  --warmup 1 --repeat 5 -o "$OUT/resnet50_folded_run"

step "fmnist_resnet (our Fashion-MNIST model) in one line"
"$WBS" info "$OUT/fmnist_resnet.onnx" | grep -E '^total:'

printf '\ndemo: done in %ss; models and outputs in %s/\n' "$(( $(date +%s) - start ))" "$OUT"
