#!/usr/bin/env bash
# wbs sparsify end to end on the zoo's fmnist_resnet and resnet18: the table,
# exact per-layer counts, global mode caps, exclusion rules, masks in the file's
# metadata, the file still running in wbs and ONNX Runtime with the same
# outputs, and the error paths (exit codes, one-line messages, no output left).
# Usage: cli_sparsify.sh WBS_BINARY WORK_DIR
set -uo pipefail
WBS=${1:?usage: cli_sparsify.sh WBS_BINARY WORK_DIR}
D=${2:?usage: cli_sparsify.sh WBS_BINARY WORK_DIR}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ORT_DIR=$ROOT/tools/ort
rm -rf "$D" && mkdir -p "$D"

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
expect_ok() {  # NAME CMD...: exit 0, stdout in $D/NAME.out
  local name=$1; shift
  "$@" >"$D/$name.out" 2>"$D/$name.err" || fail "$name: exit $?: $* :: $(head -c 400 "$D/$name.err")"
}
expect_fail() {  # NAME CODE PATTERN CMD...: exit CODE, one line 'wbs: error: ...PATTERN'
  local name=$1 code=$2 pattern=$3; shift 3
  "$@" >"$D/$name.out" 2>"$D/$name.err"
  local rc=$?
  [ $rc -eq "$code" ] || fail "$name: exit $rc, expected $code: $*"
  [ "$(wc -l <"$D/$name.err")" -eq 1 ] || fail "$name: stderr is not one line: $(cat "$D/$name.err")"
  grep -qE "^wbs: error: .*$pattern" "$D/$name.err" || fail "$name: stderr does not match '$pattern': $(cat "$D/$name.err")"
}
expect_grep() { grep -qE -- "$2" "$1" || fail "$(basename "$1") lacks '$2'"; }
# table_check FILE: for every blocked layer row, zeroed == round(target*blocks)
# (awk's rounding of .5 matches llround for these counts: checked exactly below).
rows_of() { awk '$4 ~ /^[0-9,]+$/ && $5 ~ /^[0-9,]+$/ {gsub(",","",$4); gsub(",","",$5); print $1, $4, $5, $6}' "$1"; }

expect_ok zoo_f "$WBS" zoo fmnist_resnet -o "$D/f.onnx"
expect_ok zoo_r "$WBS" zoo resnet18 -o "$D/r18.onnx"

# 1. fmnist_resnet, 8x8, 50% per layer: table, totals, file.
expect_ok f50 "$WBS" sparsify "$D/f.onnx" -o "$D/f50.onnx" --block 8x8 --sparsity 0.5 --score l2
expect_grep "$D/f50.out" '^layer +op +weight +blocks +zeroed +block-sp +zero-w +dense KB +comp KB'
expect_grep "$D/f50.out" '^conv1 +Conv +\[32,1,3,3\] .*dense: smaller than one 8x8 block'
expect_grep "$D/f50.out" '^layer1\.0\.conv1 +Conv +\[32,32,3,3\] +16 +8 +50\.0% +50\.0% +36\.0 +18\.1'
expect_grep "$D/f50.out" '^total: 15 of 16 weighted layers blocked'
[ -s "$D/f50.onnx" ] || fail "f50.onnx not written"
n_masks=$(grep -ao 'wbs\.block_mask\.[A-Za-z0-9_.]*' "$D/f50.onnx" | sort -u | wc -l)
[ "$n_masks" -eq 15 ] || fail "f50.onnx has $n_masks mask entries, expected 15"
grep -aq 'wbs.block_shape' "$D/f50.onnx" || fail "f50.onnx lacks wbs.block_shape"
expect_ok f50_info "$WBS" info "$D/f50.onnx"
# BN folding keeps the masks (the folded weights are new initializers).
expect_ok f50_fold "$WBS" convert "$D/f50.onnx" -o "$D/f50_fold.onnx" --fold-bn
n_masks=$(grep -ao 'wbs\.block_mask\.[A-Za-z0-9_.]*' "$D/f50_fold.onnx" | sort -u | wc -l)
[ "$n_masks" -eq 15 ] || fail "f50_fold.onnx has $n_masks mask entries, expected 15"
# Sparsifying the result again at the same target keeps the same zeros.
expect_ok f50_again "$WBS" sparsify "$D/f50.onnx" -o "$D/f50b.onnx" --sparsity 0.5
expect_grep "$D/f50_again.out" '687 of 1,376 blocks zeroed'
expect_grep "$D/f50.out" '687 of 1,376 blocks zeroed'

# JSON report: the same totals as the table.
expect_ok f50_json "$WBS" sparsify "$D/f.onnx" -o "$D/f50j.onnx" --sparsity 0.5 --json
if command -v node >/dev/null; then
  node -e '
    const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const ok = j.total.blocks === 1376 && j.total.zero_blocks === 687 && j.blockable_layers === 15 &&
      j.layers.length === 16 && j.layers[0].reason === "smaller than one 8x8 block" &&
      j.mode === "per-layer" && j.block[0] === 8 && j.block[1] === 8;
    process.exit(ok ? 0 : 1);' "$D/f50_json.out" || fail "f50_json: unexpected JSON: $(head -c 300 "$D/f50_json.out")"
fi
cmp -s "$D/f50.onnx" "$D/f50j.onnx" || fail "--json changed the written model"

# 2. Exact per-layer counts without keep-channels (resnet18, several targets
#    and block shapes); keep-channels at 100% leaves blocks in every layer.
for spec in "0.25 8x8" "0.75 4x8" "0.9 16x4" "1.0 8x8"; do
  set -- $spec
  t=$1 blk=$2
  name="r18_${t}_${blk}"
  expect_ok "$name" "$WBS" sparsify "$D/r18.onnx" -o "$D/$name.onnx" --sparsity "$t" --block "$blk" --no-keep-channels
  bad=$(rows_of "$D/$name.out" | awk -v t="$t" '{ want = int(t * $2 + 0.5); if ($3 != want) print $1": "$3" != "want }')
  [ -z "$bad" ] || fail "$name: per-layer count not exact: $bad"
  [ "$(rows_of "$D/$name.out" | wc -l)" -eq 20 ] || fail "$name: expected 20 blocked layers"
done
expect_ok r18_full "$WBS" sparsify "$D/r18.onnx" -o "$D/r18_full.onnx" --sparsity 1.0
bad=$(rows_of "$D/r18_full.out" | awk '{ if ($3 >= $2) print $1 }')
[ -z "$bad" ] || fail "r18_full: keep-channels left a layer with no block: $bad"

# 3. Global mode with caps: total exact, no layer above --max-layer.
expect_ok r18_global "$WBS" sparsify "$D/r18.onnx" -o "$D/r18_g.onnx" --global --sparsity 0.6 --min-layer 0.3 --max-layer 0.8
expect_grep "$D/r18_global.out" 'global target 60\.0% \(per layer 30\.0%\.\.80\.0%\)'
bad=$(rows_of "$D/r18_global.out" | awk '{ if ($3 > int(0.8 * $2 + 0.5) || $3 < int(0.3 * $2 + 0.5)) print $1 }')
[ -z "$bad" ] || fail "r18_global: layers outside the caps: $bad"
tot=$(rows_of "$D/r18_global.out" | awk '{ b += $2; z += $3 } END { print b, z }')
set -- $tot
[ "$2" -eq $(( ($1 * 6 + 5) / 10 )) ] || fail "r18_global: $2 of $1 blocks zeroed, expected 60%"

# 4. Exclusions: regex, exact name; the first conv and --include-first.
expect_ok r18_excl "$WBS" sparsify "$D/r18.onnx" -o "$D/r18_x.onnx" --exclude 'layer4\..*' --exclude fc
expect_grep "$D/r18_excl.out" '^layer4\.1\.conv2 .*dense: excluded by --exclude'
expect_grep "$D/r18_excl.out" '^fc .*dense: excluded by --exclude'
# One pattern per --exclude: the positional after it stays the model.
expect_ok r18_excl_order "$WBS" sparsify --exclude fc "$D/r18.onnx" -o "$D/r18_xo.onnx"
expect_grep "$D/r18_excl_order.out" '^fc .*dense: excluded by --exclude'
expect_grep "$D/r18_excl.out" '^layer3\.1\.conv2 +Conv +\[256,256,3,3\] +1,024 +512 '
expect_ok r18_first "$WBS" sparsify "$D/r18.onnx" -o "$D/r18_first.onnx" --block 8x1
expect_grep "$D/r18_first.out" '^conv1 .*dense: first conv'
expect_ok r18_incl "$WBS" sparsify "$D/r18.onnx" -o "$D/r18_incl.onnx" --block 8x1 --include-first
expect_grep "$D/r18_incl.out" '^conv1 +Conv +\[64,3,7,7\] +24 +12 '

# 5. The sparse file runs: wbs and ONNX Runtime agree on it.
if command -v node >/dev/null && [ -d "$ORT_DIR/node_modules/onnxruntime-node" ]; then
  for m in f50 r18_g; do
    inputs=$(node "$ORT_DIR/gen_input.js" --model "$D/$m.onnx" --seed 3 --outdir "$D/${m}_in" 2>>"$D/ort.log") ||
      { fail "$m: gen_input failed"; continue; }
    node "$ORT_DIR/run.js" "$D/$m.onnx" --inputs "$inputs" --outdir "$D/${m}_ort" >>"$D/ort.log" 2>&1 ||
      { fail "$m: ONNX Runtime could not run the sparsified file"; continue; }
    args=()
    IFS=',' read -ra pairs <<<"$inputs"
    for p in "${pairs[@]}"; do args+=(--input "$p"); done
    expect_ok "${m}_run" "$WBS" run "$D/$m.onnx" "${args[@]}" -o "$D/${m}_wbs"
    node "$ORT_DIR/compare.js" "$D/${m}_ort" "$D/${m}_wbs" --tol 1e-4 >"$D/${m}_cmp.json" 2>>"$D/ort.log" ||
      fail "$m: wbs and ONNX Runtime disagree: $(head -c 300 "$D/${m}_cmp.json")"
  done
else
  echo "cli_sparsify: node/onnxruntime-node missing, ONNX Runtime check skipped"
fi

# 6. Errors: exit 1 (bad values) or 2 (usage), one line, no output file.
expect_fail bad_block 1 "block shape '17x8'" "$WBS" sparsify "$D/f.onnx" -o "$D/e1.onnx" --block 17x8
expect_fail bad_regex 1 "--exclude '\(': invalid regular expression" "$WBS" sparsify "$D/f.onnx" -o "$D/e2.onnx" --exclude '('
expect_fail bad_score 1 "unknown block score 'l3'" "$WBS" sparsify "$D/f.onnx" -o "$D/e3.onnx" --score l3
expect_fail bad_target 2 "sparsity" "$WBS" sparsify "$D/f.onnx" -o "$D/e4.onnx" --sparsity 1.5
expect_fail cap_needs_global 2 "global" "$WBS" sparsify "$D/f.onnx" -o "$D/e5.onnx" --max-layer 0.5
expect_fail missing_input 1 "nope.onnx" "$WBS" sparsify "$D/nope.onnx" -o "$D/e6.onnx"
for i in 1 2 3 4 5 6; do [ ! -e "$D/e$i.onnx" ] || fail "e$i.onnx exists after a failed command"; done

if [ $failures -ne 0 ]; then
  echo "cli_sparsify: $failures failure(s)" >&2
  exit 1
fi
echo "cli_sparsify: all checks passed"
