#!/usr/bin/env bash
# wbs quantize end to end on the zoo's fmnist_resnet (seeded random weights,
# 50% block-sparse), calibrated on Fashion-MNIST train images and checked on
# test images: the report, the masks in the int8 file, `wbs run` on the QDQ
# file reproducing the quantizer's int8 predictions exactly (lower-qdq), ONNX
# Runtime agreeing with our int8 top-1, the power-of-two/s8 and histogram
# observer variants, and the error paths (exit 1, one line, no file left).
# Usage: cli_quantize.sh WBS_BINARY WORK_DIR
set -uo pipefail
WBS=${1:?usage: cli_quantize.sh WBS_BINARY WORK_DIR}
D=${2:?usage: cli_quantize.sh WBS_BINARY WORK_DIR}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ORT_DIR=$ROOT/tools/ort
N_EVAL=200
rm -rf "$D" && mkdir -p "$D"

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
expect_ok() {  # NAME CMD...: exit 0, stdout in $D/NAME.out
  local name=$1; shift
  "$@" >"$D/$name.out" 2>"$D/$name.err" || fail "$name: exit $?: $* :: $(head -c 400 "$D/$name.err")"
}
expect_fail() {  # NAME PATTERN OUTFILE CMD...: exit 1, one line 'wbs: error: ...PATTERN', no OUTFILE
  local name=$1 pattern=$2 out=$3; shift 3
  "$@" >"$D/$name.out" 2>"$D/$name.err"
  local rc=$?
  [ $rc -eq 1 ] || fail "$name: exit $rc, expected 1: $*"
  [ "$(wc -l <"$D/$name.err")" -eq 1 ] || fail "$name: stderr is not one line: $(cat "$D/$name.err")"
  grep -qE "^wbs: error: .*$pattern" "$D/$name.err" || fail "$name: stderr does not match '$pattern': $(cat "$D/$name.err")"
  [ ! -e "$out" ] || fail "$name: left $out behind"
}
expect_grep() { grep -qE -- "$2" "$1" || fail "$(basename "$1") lacks '$2'"; }

if [ ! -e /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  echo "cli_quantize: Fashion-MNIST not installed, skipped"
  exit 0
fi

expect_ok zoo "$WBS" zoo fmnist_resnet -o "$D/f.onnx"
expect_ok sparsify "$WBS" sparsify "$D/f.onnx" -o "$D/f50.onnx" --sparsity 0.5

# 1. Default: u8 activations, min-max, report, eval, the file.
expect_ok q "$WBS" quantize "$D/f50.onnx" -o "$D/f50.int8.onnx" --calib 128 --eval $N_EVAL \
  --dump-eval "$D/eval"
expect_grep "$D/q.out" '^node +op +out +scale +zp +observed +range +clip% +w-scale +SQNR dB'
expect_grep "$D/q.out" '^conv1 +QConv +u8 '
expect_grep "$D/q.out" '^layer1\.0\.add +QAdd +u8 '
expect_grep "$D/q.out" '^fc +QGemm +f32 '
expect_grep "$D/q.out" "^test images $N_EVAL: fp32 top-1 .*, agreement "
[ -s "$D/f50.int8.onnx" ] || fail "no int8 model written"
n_masks=$(grep -ao 'wbs\.block_mask\.[A-Za-z0-9_.]*' "$D/f50.int8.onnx" | sort -u | wc -l)
[ "$n_masks" -ge 10 ] || fail "int8 model carries $n_masks block masks, expected >= 10"
grep -qa 'QuantizeLinear' "$D/f50.int8.onnx" || fail "no QuantizeLinear in the int8 model"
grep -qa 'DequantizeLinear' "$D/f50.int8.onnx" || fail "no DequantizeLinear in the int8 model"

# 2. JSON report agrees with the table's count of layers.
expect_ok qjson "$WBS" quantize "$D/f50.onnx" -o "$D/f50.json.onnx" --calib 64 --json --error-images 0
if command -v node >/dev/null; then
  node -e '
    const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const convs = j.layers.filter((l) => l.op === "QConv");
    if (convs.length < 10) throw new Error(`only ${convs.length} QConv layers`);
    for (const l of convs) if (!(l.scale > 0) || l.dtype !== "u8") throw new Error(JSON.stringify(l));
    if (j.fallback_nodes !== 0) throw new Error(`fallbacks ${j.fallback_nodes}`);
    if (!convs.some((l) => l.zero_blocks > 0)) throw new Error("no zero blocks reported");
  ' "$D/qjson.out" || fail "JSON report check"
fi

# 3. wbs run on the QDQ file = the quantizer's int8 graph (bit-exact path).
expect_ok run "$WBS" run "$D/f50.int8.onnx" --input "input=$D/eval/images.npy" -o "$D/wbs_out"
# 4. ONNX Runtime on the same file and images.
if command -v node >/dev/null && [ -d "$ORT_DIR/node_modules/onnxruntime-node" ]; then
  node "$ORT_DIR/run.js" "$D/f50.int8.onnx" --inputs "$D/eval/images.npy" --outdir "$D/ort_out" \
    >"$D/ort.json" 2>"$D/ort.err" || fail "ORT could not run the int8 model: $(head -c 400 "$D/ort.err")"
  # ORT's u8 x s8 dot products saturate at 16 bits on x86 CPUs without VNNI
  # (vpmaddubsw; the same cause as oneDNN's, docs/int8.md), so there its top-1
  # drifts from the exact int8 result: 195/200 on an AVX2-only Zen 3, >= 98%
  # with VNNI. wbs itself is held to bit-exactness (wbs_run_vs_quantizer).
  MIN_AGREE=0.98
  grep -q -w -E 'avx512_vnni|avx_vnni' /proc/cpuinfo 2>/dev/null || MIN_AGREE=0.95
  node -e '
    const { readNpy } = require(process.argv[1] + "/npy");
    const fs = require("fs"), path = require("path");
    const one = (d) => path.join(d, fs.readdirSync(d).filter((f) => f.endsWith(".npy"))[0]);
    const ours = readNpy(one(process.argv[2])), ort = readNpy(one(process.argv[3]));
    const q = readNpy(process.argv[4]);
    const n = q.data.length, c = ours.dims[1];
    const top = (a, i) => { let b = 0; for (let k = 1; k < c; ++k) if (a.data[i * c + k] > a.data[i * c + b]) b = k; return b; };
    let exact = 0, agree = 0;
    for (let i = 0; i < n; ++i) { exact += top(ours, i) === Number(q.data[i]); agree += top(ours, i) === top(ort, i); }
    console.log(JSON.stringify({ images: n, wbs_run_vs_quantizer: exact / n, ort_vs_wbs: agree / n }));
    if (exact !== n) throw new Error(`wbs run disagrees with the quantizer on ${n - exact} images`);
    const min = Number(process.argv[5]);
    if (agree / n < min) throw new Error(`ORT agrees with wbs int8 on only ${agree}/${n} (< ${min})`);
  ' "$ORT_DIR" "$D/wbs_out" "$D/ort_out" "$D/eval/int8_top1.npy" "$MIN_AGREE" >"$D/agree.json" 2>"$D/agree.err" ||
    fail "agreement: $(cat "$D/agree.err" | head -c 400)"
  cat "$D/agree.json"
else
  echo "cli_quantize: node/onnxruntime-node missing, ONNX Runtime check skipped"
fi

# 5. Variants: power-of-two s8, histogram observers.
expect_ok pot "$WBS" quantize "$D/f50.onnx" -o "$D/pot.onnx" --calib 64 --pot --act s8 --eval 100
expect_grep "$D/pot.out" '^conv1 +QConv +i8 +0\.0[0-9]+ +0 '
for obs in percentile mse entropy; do
  expect_ok "obs_$obs" "$WBS" quantize "$D/f50.onnx" -o "$D/$obs.onnx" --calib 32 --observer $obs \
    --error-images 0
done

# 6. Errors.
expect_fail bad_observer "unknown observer 'kl'" "$D/x.onnx" \
  "$WBS" quantize "$D/f50.onnx" -o "$D/x.onnx" --observer kl
expect_fail bad_act "--act must be u8 or s8" "$D/x.onnx" "$WBS" quantize "$D/f50.onnx" -o "$D/x.onnx" --act u16
expect_fail missing "missing.onnx" "$D/x.onnx" "$WBS" quantize "$D/missing.onnx" -o "$D/x.onnx"
expect_fail bad_data "nowhere" "$D/x.onnx" "$WBS" quantize "$D/f50.onnx" -o "$D/x.onnx" --data folder:/nowhere
# 6. --data random (timing calibration): runs, reports, refuses --eval and a bad seed.
expect_ok random "$WBS" quantize "$D/f50.onnx" -o "$D/rand.onnx" --data random:3 --calib 8 --batch 4 \
  --error-images 4
expect_grep "$D/random.out" "calibrated on 8 train images of random:3"
expect_fail random_eval "has no labels" "$D/x.onnx" \
  "$WBS" quantize "$D/f50.onnx" -o "$D/x.onnx" --data random --eval 10
expect_fail random_seed "want random or random:SEED" "$D/x.onnx" \
  "$WBS" quantize "$D/f50.onnx" -o "$D/x.onnx" --data random:x

if [ $failures -ne 0 ]; then
  echo "cli_quantize: $failures failure(s)" >&2
  exit 1
fi
echo "cli_quantize: all checks passed"
