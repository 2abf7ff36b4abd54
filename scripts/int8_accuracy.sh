#!/usr/bin/env bash
# Int8 post-training quantization accuracy on Fashion-MNIST (docs/ACCURACY.md
# "Int8"): for each fp32 model and observer, `wbs quantize --eval` measures
# fp32 and int8 top-1 on the test set and prints one markdown table row.
#
#   bash scripts/int8_accuracy.sh BUILD_DIR [NAME=MODEL.onnx ...]
#
# Default models: the dense baseline and the 50% block-sparse fine-tuned
# model of the accuracy runs, plus a 75% model made here by one-shot
# `wbs sparsify` of the 50% one when INT8_S75 is unset (weak: no fine-tuning;
# pass h_acc's fine-tuned 75% file as s75=PATH instead).
# Env: INT8_OBSERVERS ("minmax percentile mse entropy"), INT8_EVAL (10000
# test images), INT8_CALIB (256 train images), INT8_ACT (u8; s8 also
# possible), INT8_POT (0; 1 adds --pot), INT8_THREADS (2), INT8_OUT
# (BUILD_DIR/int8_accuracy: the int8 models, logs and rows.md).
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 BUILD_DIR [NAME=MODEL.onnx ...]" >&2
  exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd)
shift
WBS=$BUILD/wbs
[ -x "$WBS" ] || { echo "int8_accuracy: missing $WBS (build the wbs target)" >&2; exit 2; }
OBSERVERS=${INT8_OBSERVERS:-"minmax percentile mse entropy"}
EVAL=${INT8_EVAL:-10000}
CALIB=${INT8_CALIB:-256}
ACT=${INT8_ACT:-u8}
THREADS=${INT8_THREADS:-2}
OUT=${INT8_OUT:-$BUILD/int8_accuracy}
POT=()
[ "${INT8_POT:-0}" = 0 ] || POT=(--pot)
mkdir -p "$OUT"

MODELS=("$@")
if [ ${#MODELS[@]} -eq 0 ]; then
  MODELS=("dense=$ROOT/out/dense/fmnist_resnet.onnx" "s50=$ROOT/out/s50/fmnist_resnet_s50.onnx")
  if [ -n "${INT8_S75:-}" ]; then
    MODELS+=("s75=$INT8_S75")
  else
    # One-shot 75% from the fine-tuned 50% model (the zero blocks stay zero).
    "$WBS" sparsify "$ROOT/out/s50/fmnist_resnet_s50.onnx" -o "$OUT/fmnist_resnet_s75_oneshot.onnx" \
      --sparsity 0.75 >"$OUT/sparsify_s75.log"
    MODELS+=("s75-oneshot=$OUT/fmnist_resnet_s75_oneshot.onnx")
  fi
fi

ROWS=$OUT/rows.md
{
  echo "| model | observer | act | fp32 top-1 | int8 top-1 | delta (pt) | top-1 agreement |"
  echo "|---|---|---|---|---|---|---|"
} >"$ROWS"
for spec in "${MODELS[@]}"; do
  name=${spec%%=*}
  model=${spec#*=}
  [ -f "$model" ] || { echo "int8_accuracy: missing $model" >&2; exit 2; }
  for obs in $OBSERVERS; do
    tag=${name}_${obs}_${ACT}${POT[*]:+_pot}
    echo "[int8_accuracy] $name ($model), observer $obs" >&2
    "$WBS" quantize "$model" -o "$OUT/$tag.int8.onnx" --calib "$CALIB" --observer "$obs" \
      --act "$ACT" "${POT[@]}" --eval "$EVAL" --batch 100 --error-images 0 --threads "$THREADS" \
      --json >"$OUT/$tag.json"
    python3 - "$OUT/$tag.json" "$name" "$obs" "$ACT${POT[*]:+ pot}" >>"$ROWS" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))["eval"]
f, q = 100 * j["fp32_top1"], 100 * j["int8_top1"]
print(f"| {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} | {f:.2f}% | {q:.2f}% | {q - f:+.2f} | "
      f"{100 * j['top1_agreement']:.2f}% ({j['images']} images) |")
PY
  done
done
cat "$ROWS"
