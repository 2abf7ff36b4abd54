#!/usr/bin/env bash
# End-to-end checks of the wbs CLI on the small fmnist_resnet: every command's
# happy path, exit codes (0 ok, 1 failure, 2 usage), the one-line error
# format, and that failed commands leave no output files.
# Usage: cli_smoke.sh WBS_BINARY WORK_DIR
set -uo pipefail
WBS=${1:?usage: cli_smoke.sh WBS_BINARY WORK_DIR}
D=${2:?usage: cli_smoke.sh WBS_BINARY WORK_DIR}
rm -rf "$D" && mkdir -p "$D"
PY=/usr/bin/python3
have_numpy=0
"$PY" -c "import numpy" 2>/dev/null && have_numpy=1

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# expect_ok NAME CMD...: exit 0; stdout in $D/NAME.out.
expect_ok() {
  local name=$1; shift
  "$@" >"$D/$name.out" 2>"$D/$name.err"
  local rc=$?
  [ $rc -eq 0 ] || fail "$name: exit $rc: $* :: $(head -c 400 "$D/$name.err")"
}
# expect_fail NAME CODE PATTERN CMD...: exit CODE; stderr is one line
# "wbs: error: ..." matching PATTERN (grep -E).
expect_fail() {
  local name=$1 code=$2 pattern=$3; shift 3
  "$@" >"$D/$name.out" 2>"$D/$name.err"
  local rc=$?
  [ $rc -eq "$code" ] || fail "$name: exit $rc, expected $code: $*"
  [ "$(wc -l <"$D/$name.err")" -eq 1 ] || fail "$name: stderr is not one line: $(cat "$D/$name.err")"
  grep -q '^wbs: error: ' "$D/$name.err" || fail "$name: stderr lacks 'wbs: error: ': $(cat "$D/$name.err")"
  grep -qE "$pattern" "$D/$name.err" || fail "$name: stderr does not match '$pattern': $(cat "$D/$name.err")"
}
expect_grep() {  # FILE PATTERN
  grep -qE "$2" "$1" || fail "$(basename "$1") lacks '$2'"
}
expect_absent() {
  [ ! -e "$1" ] || fail "$1 exists after a failed command"
}

# --- help, version, list -----------------------------------------------------
expect_ok version "$WBS" --version
expect_grep "$D/version.out" '^wbs [0-9]+\.[0-9]+'
expect_ok help "$WBS" --help
for cmd in zoo info run convert; do
  expect_ok "help_$cmd" "$WBS" "$cmd" --help
  expect_grep "$D/help_$cmd.out" "Examples:"
  expect_grep "$D/help_$cmd.out" "wbs $cmd "
done
expect_ok list "$WBS" zoo --list
for m in resnet18 resnet50 vgg16 inception_v3 mobilenet_v2 fmnist_resnet; do
  expect_grep "$D/list.out" "^$m "
done

# --- zoo -> info -> run -> convert ---------------------------------------------
expect_ok zoo "$WBS" -v zoo fmnist_resnet -o "$D/models/fm.onnx" --batch 2 --seed 3
[ -s "$D/models/fm.onnx" ] || fail "zoo wrote no model"
expect_ok info "$WBS" info "$D/models/fm.onnx"
expect_grep "$D/info.out" '^inputs: +input f32\[2,1,28,28\]'
expect_grep "$D/info.out" '^layer2\.0\.downsample\.0 +Conv +\[2,32,28,28\] +\[2,64,14,14\] +\[64,32,1,1\]'
expect_grep "$D/info.out" '^conv1 .* no$'
expect_grep "$D/info.out" '^total: .* GMAC, [0-9,]+ parameters'
expect_ok info_json "$WBS" info "$D/models/fm.onnx" --json
if "$PY" -c "import json" 2>/dev/null; then
  "$PY" - "$D/info_json.out" <<'EOF' || fail "info --json is inconsistent"
import json, sys
d = json.load(open(sys.argv[1]))
layers, t = d["layers"], d["totals"]
assert sum(l["macs"] for l in layers) == t["macs"], "layer MACs do not add up"
assert t["blockable_layers"] == sum(l["blockable"] for l in layers)
convs = [l for l in layers if l["op"] == "Conv"]
assert not convs[0]["blockable"] and all(l["blockable"] for l in convs[1:])
assert d["inputs"][0]["shape"] == [2, 1, 28, 28] and d["outputs"][0]["shape"] == [2, 10]
EOF
fi

expect_ok run "$WBS" run "$D/models/fm.onnx" --random --seed 5 --threads 2 --repeat 2 -o "$D/out"
expect_grep "$D/run.out" '^output logits: f32\[2,10\]'
expect_grep "$D/run.out" 'top-5 \[row 1\]'
expect_grep "$D/run.out" '^latency: median [0-9.]+ ms.* over 2 runs'
[ -s "$D/out/logits.npy" ] || fail "run -o wrote no logits.npy"

if [ $have_numpy -eq 1 ]; then
  "$PY" -c "import numpy as np; np.random.seed(1); np.save('$D/x.npy', np.random.randn(2,1,28,28).astype('f4'))"
  expect_ok run_npy "$WBS" run "$D/models/fm.onnx" --input "input=$D/x.npy" -o "$D/out_npy"
  expect_ok run_ref "$WBS" run "$D/models/fm.onnx" --input "input=$D/x.npy" -o "$D/out_ref" --backend reference
  expect_ok convert "$WBS" convert "$D/models/fm.onnx" -o "$D/models/fm_folded.onnx" --fold-bn \
    --print-after=fold-batchnorm
  expect_grep "$D/convert.out" 'after fold-batchnorm'
  expect_ok info_folded "$WBS" info "$D/models/fm_folded.onnx" --all-nodes
  grep -q BatchNormalization "$D/info_folded.out" && fail "fold-bn left BatchNormalization nodes"
  expect_ok run_folded "$WBS" run "$D/models/fm_folded.onnx" --input "input=$D/x.npy" -o "$D/out_folded"
  "$PY" - "$D" <<'EOF' || fail "outputs disagree across backends / BN folding"
import numpy as np, sys
d = sys.argv[1]
a, r, f = (np.load(d + p + "/logits.npy") for p in ("/out_npy", "/out_ref", "/out_folded"))
assert a.shape == (2, 10) and a.dtype == np.float32, (a.shape, a.dtype)
scale = np.abs(r).max() + 1e-6
assert np.abs(a - r).max() <= 1e-3 * scale, ("fast vs reference", np.abs(a - r).max(), scale)
assert np.abs(f - r).max() <= 1e-3 * scale, ("folded vs reference", np.abs(f - r).max(), scale)
EOF
  # Truncated input file: a parse error naming the file.
  head -c 100 "$D/x.npy" >"$D/cut.npy"
  expect_fail run_cut 1 'cut\.npy' "$WBS" run "$D/models/fm.onnx" --input "input=$D/cut.npy"
  "$PY" -c "import numpy as np; np.save('$D/x3.npy', np.zeros((2,3,28,28), 'f4'))"
  expect_fail run_badshape 1 'input' "$WBS" run "$D/models/fm.onnx" --input "input=$D/x3.npy" -o "$D/out_bad"
  expect_absent "$D/out_bad"
else
  expect_ok convert "$WBS" convert "$D/models/fm.onnx" -o "$D/models/fm_folded.onnx" --fold-bn
fi

# --- errors ---------------------------------------------------------------------
expect_fail no_command 2 'subcommand' "$WBS"
expect_fail unknown_command 2 "unknown command 'bogus'" "$WBS" bogus
expect_fail zoo_no_name 2 'NAME' "$WBS" zoo
expect_fail zoo_no_output 2 'output' "$WBS" zoo resnet18
expect_fail bad_backend 2 'backend' "$WBS" run "$D/models/fm.onnx" --backend gpu
expect_fail zoo_unknown 1 "unknown model 'nosuch'" "$WBS" zoo nosuch -o "$D/nosuch.onnx"
expect_absent "$D/nosuch.onnx"
expect_fail info_missing 1 'missing\.onnx' "$WBS" info "$D/missing.onnx"
printf 'this is not a protobuf' >"$D/garbage.onnx"
expect_fail info_garbage 1 'garbage\.onnx' "$WBS" info "$D/garbage.onnx"
expect_fail run_no_input 1 "input 'input'.*--random" "$WBS" run "$D/models/fm.onnx"
expect_fail run_bad_shape_spec 1 'input=1,x' "$WBS" run "$D/models/fm.onnx" --random --input-shape input=1,x
expect_fail run_wrong_rank 1 'input' "$WBS" run "$D/models/fm.onnx" --random \
  --input-shape input=1,1,28 -o "$D/out_rank"
expect_absent "$D/out_rank"
expect_fail run_unknown_input 1 "'nosuch'" "$WBS" run "$D/models/fm.onnx" --random --input "nosuch=$D/out/logits.npy"
expect_fail convert_bad_pass 1 'nosuch' "$WBS" convert "$D/models/fm.onnx" -o "$D/c.onnx" --fold-bn \
  --print-after=nosuch
expect_absent "$D/c.onnx"
expect_fail convert_missing 1 'missing\.onnx' "$WBS" convert "$D/missing.onnx" -o "$D/c2.onnx"
expect_absent "$D/c2.onnx"

if [ $failures -ne 0 ]; then
  echo "cli_smoke: $failures failure(s); logs in $D" >&2
  exit 1
fi
echo "cli_smoke: all checks passed"
