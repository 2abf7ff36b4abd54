#!/usr/bin/env bash
# Reproduces the "Block sparsity" table of docs/ACCURACY.md: fmnist_resnet on
# Fashion-MNIST, fine-tuned to 25/50/75/90% block sparsity with each method
# (8x8 blocks; 1x1 and 4x4 for contrast), accuracy and loss vs the dense
# model, wall time. Run by `make experiments`.
#
#   bash scripts/accuracy.sh [WBS] [OUT_DIR]
#
# Environment (defaults in brackets):
#   DENSE_CKPT   dense `wbs train` checkpoint to start from [OUT/dense/ckpt/best.pt];
#                trained here with DENSE_EPOCHS epochs when missing
#   DENSE_EPOCHS [15], DENSE_IMAGES training images per epoch [0 = all],
#   DENSE_WARMUP LR warmup epochs [1]
#   EPOCHS       fine-tuning epochs per run [2]
#   MAX_IMAGES   training images per fine-tuning epoch, 0 = all [0]
#   THREADS      intra-op threads [2]
#   SEED         [1]
#   VAL_FRACTION validation split, as the dense run's [0.05]
#   ONLY         run only the runs whose id matches this regex (e.g. '8x8_0.5_')
#   PRIORITY     'first' = only the 50%/75% 8x8 runs (the targets) [all]
# Each run writes OUT/runs/<id>.json (skipped when it exists: the script can be
# stopped and restarted); the table is rebuilt from whatever runs exist, with
# "not run yet" for the others, between the markers in docs/ACCURACY.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WBS=${1:-$ROOT/build/release/wbs}
OUT=${2:-$ROOT/out/accuracy}
DENSE_EPOCHS=${DENSE_EPOCHS:-15}
DENSE_IMAGES=${DENSE_IMAGES:-0}
DENSE_WARMUP=${DENSE_WARMUP:-1}
EPOCHS=${EPOCHS:-2}
MAX_IMAGES=${MAX_IMAGES:-0}
THREADS=${THREADS:-2}
SEED=${SEED:-1}
VAL_FRACTION=${VAL_FRACTION:-0.05}
EVAL_DENSE=--eval-dense
ONLY=${ONLY:-.}
PRIORITY=${PRIORITY:-all}
DENSE_CKPT=${DENSE_CKPT:-$OUT/dense/ckpt/best.pt}
DOC=$ROOT/docs/ACCURACY.md
mkdir -p "$OUT/runs" "$OUT/logs"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

if [[ ! -x $WBS ]]; then
  echo "accuracy.sh: $WBS not found (build first: make build)" >&2
  exit 1
fi

# 1. The dense baseline.
if [[ ! -f $DENSE_CKPT ]]; then
  echo "== dense: wbs train fmnist_resnet --epochs $DENSE_EPOCHS" >&2
  "$WBS" train fmnist_resnet --epochs "$DENSE_EPOCHS" --seed "$SEED" --threads "$THREADS" \
    --val-fraction "$VAL_FRACTION" --max-train-images "$DENSE_IMAGES" --warmup "$DENSE_WARMUP" \
    --checkpoint-dir "$(dirname "$DENSE_CKPT")" --resume -o "$OUT/dense/fmnist_resnet.onnx" \
    --metrics "$OUT/dense/metrics.jsonl" -q | tee "$OUT/logs/dense.log"
fi

# 2. The fine-tuning runs: id = <block>_<sparsity>_<method>[_<variant>].
RUNS=()
add() { RUNS+=("$*"); }
# In order of priority: the targets (50% and 75% 8x8) first.
add 8x8 0 oneshot  # control: the dense model fine-tuned with the same budget, no masks
for sp in 0.5 0.75 0.25 0.9; do
  if [[ $PRIORITY == first && ($sp == 0.25 || $sp == 0.9) ]]; then continue; fi
  add 8x8 "$sp" oneshot
  add 8x8 "$sp" fisher
  add 8x8 "$sp" learned
  add 8x8 "$sp" incremental
  if [[ $sp == 0.5 || $sp == 0.75 ]]; then add 8x8 "$sp" oneshot distill --distill --bn-recal; fi
done
if [[ $PRIORITY != first ]]; then
  for sp in 0.5 0.75; do
    add 1x1 "$sp" oneshot
    add 4x4 "$sp" oneshot
  done
fi

run_one() {
  local block=$1 sp=$2 method=$3 variant=${4:-}
  shift 3
  [[ -n $variant ]] && shift
  local id="${block}_${sp}_${method}${variant:+_$variant}"
  [[ $id =~ $ONLY ]] || return 0
  local json="$OUT/runs/$id.json"
  [[ -f $json ]] && return 0
  local epochs=$EPOCHS images=$MAX_IMAGES extra=()
  case $method in
    incremental)
      # The paper's schedule: 20% of the kept blocks per epoch, one more
      # epoch after the target; the same images in total as the other runs.
      local events
      events=$(python3 -c "import sys
s,l,n=float(sys.argv[1]),0.0,0
while l<s-1e-9: l=min(s,l+0.2*(1-l)); n+=1
print(n)" "$sp")
      epochs=$((events + 1))
      if ((MAX_IMAGES > 0)); then images=$((MAX_IMAGES * EPOCHS / epochs)); fi
      extra=(--step-fraction 0.2 --every 1)
      ;;
    learned) extra=(--learned topk) ;;
  esac
  local cmd=("$WBS" finetune fmnist_resnet --checkpoint "$DENSE_CKPT" --sparsity "$sp"
             --block "$block" --method "$method" --epochs "$epochs" --seed "$SEED"
             --threads "$THREADS" --max-train-images "$images" --val-fraction "$VAL_FRACTION" $EVAL_DENSE
             --summary "$json" -q "${extra[@]}" "$@")
  echo "== $id: ${cmd[*]}" >&2
  "${cmd[@]}" 2>&1 | tee "$OUT/logs/$id.log"
  EVAL_DENSE=""  # the dense model's test accuracy is measured once
  # Record the exact command next to the results.
  python3 - "$json" "${cmd[*]}" <<'EOF'
import json, sys
p, cmd = sys.argv[1], sys.argv[2]
d = json.load(open(p))
d["command"] = cmd
json.dump(d, open(p, "w"), indent=2)
EOF
}

for r in "${RUNS[@]}"; do
  # shellcheck disable=SC2086
  run_one $r
done

# 3. The table, between the markers of docs/ACCURACY.md.
python3 - "$OUT" "$DOC" "${RUNS[@]}" <<'EOF'
import json, os, sys
out, doc, runs = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = []
dense = None
for f in sorted(os.listdir(os.path.join(out, "runs"))):
    d = json.load(open(os.path.join(out, "runs", f)))
    if "dense_test" in d:
        dense = d["dense_test"]
        break
for r in runs:
    f = r.split()
    block, sp, method = f[0], f[1], f[2]
    variant = f[3] if len(f) > 3 and not f[3].startswith("--") else ""
    rid = f"{block}_{sp}_{method}" + (f"_{variant}" if variant else "")
    p = os.path.join(out, "runs", rid + ".json")
    name = method + (" + distill + BN recal" if variant == "distill" else "")
    if float(sp) == 0:
        name = "none (dense, same fine-tune)"
    if not os.path.exists(p):
        rows.append(f"| {block} | {float(sp)*100:.0f}% | {name} | not run yet | | | | | |")
        continue
    d = json.load(open(p))
    dt = d.get("dense_test", dense or {"accuracy": float("nan"), "loss": float("nan")})
    t = d["test"]
    am = d.get("after_mask_val")
    rows.append(
        f"| {block} | {float(sp)*100:.0f}% | {name} | {d['block_sparsity']*100:.1f}% | "
        f"{t['accuracy']*100:.2f}% | {(t['accuracy']-dt['accuracy'])*100:+.2f} | "
        f"{t['loss']:.4f} ({t['loss']-dt['loss']:+.4f}) | {d['epochs']} x "
        f"{d['max_train_images'] or 'all'} | {d['seconds']/60:.1f} |")
head = ["| block | target | method | achieved | test acc | vs dense (pt) | test loss (vs dense) | epochs x images | minutes |",
        "|---|---|---|---|---|---|---|---|---|"]
dense_line = (f"Dense fmnist_resnet (the starting checkpoint): test accuracy "
              f"{dense['accuracy']*100:.2f}%, loss {dense['loss']:.4f}.\n\n" if dense else "")
table = dense_line + "\n".join(head + rows) + "\n"
begin, end = "<!-- block-sparsity-table:begin -->", "<!-- block-sparsity-table:end -->"
text = open(doc).read() if os.path.exists(doc) else ""
if begin in text and end in text:
    a, b = text.index(begin) + len(begin), text.index(end)
    text = text[:a] + "\n" + table + text[b:]
else:
    text += f"\n{begin}\n{table}{end}\n"
open(doc, "w").write(text)
print(table)
EOF
