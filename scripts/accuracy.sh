#!/usr/bin/env bash
# Reproduces the "Block sparsity" tables of docs/ACCURACY.md: fmnist_resnet on
# Fashion-MNIST, fine-tuned from the dense checkpoint to 25/50/75/90% block
# sparsity with each method (8x8 blocks; 1x1 and 4x4 for contrast), accuracy
# and loss vs the dense model, wall time. Run by `make experiments`.
#
#   bash scripts/accuracy.sh [WBS] [OUT_DIR]
#
# Two budgets:
#   recipe  the default `wbs finetune` recipe (oneshot L2, BN recalibration,
#           distillation from the dense model) with FULL_EPOCHS full epochs:
#           the runs that check the targets (50% and 75% 8x8);
#   quick   every method x sparsity with QUICK_EPOCHS x QUICK_IMAGES training
#           images (same images for every run): the method comparison.
#
# Environment (defaults in brackets):
#   DENSE_CKPT   dense `wbs train` checkpoint [out/dense/ckpt/best.pt if it
#                exists, else OUT/dense/ckpt/best.pt, trained here when missing]
#   DENSE_EPOCHS [10]  epochs of that dense run
#   FULL_EPOCHS  [2]   epochs of the recipe runs
#   QUICK_EPOCHS [2], QUICK_IMAGES [6400]  budget of the quick runs
#   THREADS      intra-op threads [2]
#   SEED         [1]
#   VAL_FRACTION validation split, the dense run's [0.1]
#   ONLY         run only the runs whose id matches this regex (e.g. 'recipe_8x8_0.5')
#   TABLE_ONLY   1 = run nothing, rebuild the tables and JSON from existing runs
# Each run writes OUT/runs/<id>.json (skipped when it exists: the script can be
# stopped and restarted); the tables are rebuilt from whatever runs exist, with
# "not run yet" for the others, between the markers in docs/ACCURACY.md, and
# docs/results/accuracy.json gets every run's summary (with its id and command).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WBS=${1:-$ROOT/build/release/wbs}
OUT=${2:-$ROOT/out/accuracy}
DENSE_EPOCHS=${DENSE_EPOCHS:-10}
FULL_EPOCHS=${FULL_EPOCHS:-2}
QUICK_EPOCHS=${QUICK_EPOCHS:-2}
QUICK_IMAGES=${QUICK_IMAGES:-6400}
THREADS=${THREADS:-2}
SEED=${SEED:-1}
VAL_FRACTION=${VAL_FRACTION:-0.1}
ONLY=${ONLY:-.}
TABLE_ONLY=${TABLE_ONLY:-0}
if [[ -z ${DENSE_CKPT:-} ]]; then
  DENSE_CKPT=$OUT/dense/ckpt/best.pt
  [[ -f $ROOT/out/dense/ckpt/best.pt ]] && DENSE_CKPT=$ROOT/out/dense/ckpt/best.pt
fi
DOC=$ROOT/docs/ACCURACY.md
JSON=$ROOT/docs/results/accuracy.json
mkdir -p "$OUT/runs" "$OUT/logs" "$(dirname "$JSON")"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

if [[ $TABLE_ONLY != 1 && ! -x $WBS ]]; then
  echo "accuracy.sh: $WBS not found (build first: make build)" >&2
  exit 1
fi

# 1. The dense baseline (docs/ACCURACY.md "Dense baseline").
if [[ $TABLE_ONLY != 1 && ! -f $DENSE_CKPT ]]; then
  echo "== dense: wbs train fmnist_resnet --epochs $DENSE_EPOCHS" >&2
  "$WBS" train fmnist_resnet --epochs "$DENSE_EPOCHS" --seed "$SEED" --threads "$THREADS" \
    --val-fraction "$VAL_FRACTION" --checkpoint-dir "$(dirname "$DENSE_CKPT")" --resume \
    -o "$OUT/dense/fmnist_resnet.onnx" --metrics "$OUT/dense/metrics.jsonl" -q |
    tee "$OUT/logs/dense.log"
fi

# 2. The runs: "<id> <epochs> <images> <finetune options...>", in priority
# order (the target cells first).
RUNS=()
add() { RUNS+=("$*"); }
for sp in 0.5 0.75; do
  add "recipe_8x8_${sp}_oneshot" "$FULL_EPOCHS" 0 --block 8x8 --sparsity "$sp" --method oneshot
done
# Half the recipe's budget: how far one full epoch gets.
add "recipe_8x8_0.5_oneshot-1epoch" 1 0 --block 8x8 --sparsity 0.5 --method oneshot
# Past the 2-epoch recipe (docs/ACCURACY.md "Target runs"): a third epoch at
# 50% (what fits the 10-minute budget on 2 idle cores), the same with the
# weights averaged over the last epoch, and at 75% the Fisher ranking with 3
# epochs; --fill-target (the finetune default) makes 75% reach 75%.
add "recipe_8x8_0.5_oneshot-3epoch" 3 0 --block 8x8 --sparsity 0.5 --method oneshot
add "recipe_8x8_0.5_oneshot-3epoch-ema" 3 0 --block 8x8 --sparsity 0.5 --method oneshot --ema 0.995
add "recipe_8x8_0.75_fisher-3epoch" 3 0 --block 8x8 --sparsity 0.75 --method fisher
add "recipe_8x8_0.25_oneshot-2epoch" 2 0 --block 8x8 --sparsity 0.25 --method oneshot
add "recipe_8x8_0.9_fisher-4epoch" 4 0 --block 8x8 --sparsity 0.9 --method fisher
# The same without keep-channels: reaches 90% by letting whole block-rows go.
add "recipe_8x8_0.9_fisher-4epoch-nokeep" 4 0 --block 8x8 --sparsity 0.9 --method fisher --no-keep-channels
incremental_epochs() {  # events of 20% of the kept blocks to reach $1, + 1 epoch
  python3 -c "import sys
s,l,n=float(sys.argv[1]),0.0,0
while l<s-1e-9: l=min(s,l+0.2*(1-l)); n+=1
print(n+1)" "$1"
}
quick() {  # quick <block> <sparsity> <method> [options...]
  local block=$1 sp=$2 method=$3
  shift 3
  local epochs=$QUICK_EPOCHS images=$QUICK_IMAGES extra=()
  case $method in
    incremental)
      # The paper's schedule (20% of the kept blocks per epoch, one more
      # epoch after the target) with the same images in total.
      epochs=$(incremental_epochs "$sp")
      images=$((QUICK_IMAGES * QUICK_EPOCHS / epochs))
      extra=(--step-fraction 0.2 --every 1)
      ;;
  esac
  add "quick_${block}_${sp}_${method}${QUICK_ID_SUFFIX:-}" "$epochs" "$images" --block "$block" --sparsity "$sp" \
    --method "$method" "${extra[@]}" "$@"
}
for sp in 0.5 0.75; do
  for m in oneshot fisher learned incremental; do quick 8x8 "$sp" "$m"; done
done
quick 1x1 0.5 oneshot
quick 4x4 0.5 oneshot
for sp in 0.25 0.9; do
  for m in oneshot fisher learned incremental; do quick 8x8 "$sp" "$m"; done
done
# At 90% the keep-channels rule (no block-row or block-column entirely zero)
# caps fmnist_resnet's small layers, so the cells above reach only ~83% even
# with --fill-target; these reach 90% by letting whole block-rows go.
for m in oneshot fisher learned incremental; do
  QUICK_ID_SUFFIX=-nokeep quick 8x8 0.9 "$m" --no-keep-channels
done

run_one() {
  local id=$1 epochs=$2 images=$3
  shift 3
  [[ $id =~ $ONLY ]] || return 0
  local json="$OUT/runs/$id.json"
  [[ -f $json ]] && return 0
  local cmd=("$WBS" finetune fmnist_resnet --checkpoint "$DENSE_CKPT" --epochs "$epochs"
             --max-train-images "$images" --seed "$SEED" --threads "$THREADS"
             --val-fraction "$VAL_FRACTION" --eval-dense --summary "$json" -q "$@")
  echo "== $id: ${cmd[*]}" >&2
  "${cmd[@]}" 2>&1 | tee "$OUT/logs/$id.log"
  # Record the run's id, exact command and start time next to the results.
  python3 - "$json" "$id" "${cmd[*]}" <<'EOF'
import json, sys, time
p, rid, cmd = sys.argv[1:4]
d = json.load(open(p))
d["id"] = rid
d["command"] = cmd
d["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
json.dump(d, open(p, "w"), indent=2)
EOF
}

if [[ $TABLE_ONLY != 1 ]]; then
  for r in "${RUNS[@]}"; do
    # shellcheck disable=SC2086
    run_one $r
  done
fi

# 3. The tables between the markers of docs/ACCURACY.md, and the JSON array.
ids=()
for r in "${RUNS[@]}"; do ids+=("${r%% *}"); done
python3 - "$OUT" "$DOC" "$JSON" "${ids[@]}" <<'EOF'
import json, os, sys
out, doc, js, ids = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
runs = {}
for i in ids:
    p = os.path.join(out, "runs", i + ".json")
    if os.path.exists(p):
        runs[i] = json.load(open(p))
dense = next((r["dense_test"] for r in runs.values() if "dense_test" in r), None)

def method_name(d):
    n = d["method"]
    if n == "incremental":
        n += " (20%/epoch)"
    extra = [x for x, on in (("distill", d.get("distill")), ("BN recal", d.get("bn_recal")),
                             ("EMA" + ("" if d.get("ema", {}).get("used") else " (not kept)"),
                              "ema" in d),
                             ("no keep-channels", "--no-keep-channels" in d.get("command", "")))
             if on]
    return n + (" + " + " + ".join(extra) if extra else "")

def rows(prefix):
    lines = []
    for i in ids:
        if not i.startswith(prefix):
            continue
        _, block, sp, method = i.split("_", 3)
        if i not in runs:
            lines.append(f"| {block} | {float(sp)*100:.0f}% | {method} | not run yet | | | | | | |")
            continue
        d = runs[i]
        dt = d.get("dense_test", dense)
        t = d["test"]
        imgs = d["max_train_images"] or "all"
        lines.append(
            f"| {block} | {float(sp)*100:.0f}% | {method_name(d)} | {d['block_sparsity']*100:.1f}% | "
            f"{t['accuracy']*100:.2f}% | {(t['accuracy']-dt['accuracy'])*100:+.2f} | "
            f"{t['loss']:.4f} ({t['loss']-dt['loss']:+.4f}) | {d['epochs']} x {imgs} | "
            f"{d['seed']} | {d['seconds']/60:.1f} |")
    return lines

head = ["| block | target | method | achieved | test acc | vs dense (pt) | test loss (vs dense) | "
        "epochs x images | seed | minutes |",
        "|---|---|---|---|---|---|---|---|---|---|"]
dense_line = (f"Dense fmnist_resnet (the starting checkpoint): test accuracy "
              f"{dense['accuracy']*100:.2f}%, loss {dense['loss']:.4f}.\n\n" if dense else "")
text = open(doc).read() if os.path.exists(doc) else ""
for name, prefix in (("recipe", "recipe_"), ("quick", "quick_")):
    table = (dense_line if name == "recipe" else "") + "\n".join(head + rows(prefix)) + "\n"
    begin, end = f"<!-- {name}-table:begin -->", f"<!-- {name}-table:end -->"
    if begin in text and end in text:
        a, b = text.index(begin) + len(begin), text.index(end)
        text = text[:a] + "\n" + table + text[b:]
    else:
        text += f"\n{begin}\n{table}{end}\n"
    print(table)
open(doc, "w").write(text)
tmp = js + ".tmp"
with open(tmp, "w") as f:
    json.dump([runs[i] for i in ids if i in runs], f, indent=2)
    f.write("\n")
os.replace(tmp, js)
EOF
