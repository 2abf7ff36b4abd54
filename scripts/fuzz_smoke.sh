#!/usr/bin/env bash
# Smoke-runs the ONNX importer fuzzer: seeds a corpus with small ONNX
# backend node-test models and fuzzes for a fixed time. Exits non-zero if the
# fuzzer finds a crash, hang, leak or sanitizer report (the reproducer is
# left in BUILD_DIR/fuzz-artifacts/).
#
# usage: scripts/fuzz_smoke.sh BUILD_DIR [SECONDS]
set -euo pipefail

BUILD_DIR=${1:?usage: fuzz_smoke.sh BUILD_DIR [SECONDS]}
SECONDS_TO_RUN=${2:-60}
FUZZER="$BUILD_DIR/fuzz/onnx_import_fuzzer"
NODE_TESTS=/usr/share/libonnx-testdata/data/node

if [ ! -x "$FUZZER" ]; then
  echo "fuzz_smoke: $FUZZER not found; build with 'cmake --preset fuzz && cmake --build build/fuzz'" >&2
  exit 2
fi

SEEDS="$BUILD_DIR/fuzz-seeds"
CORPUS="$BUILD_DIR/fuzz-corpus"
ARTIFACTS="$BUILD_DIR/fuzz-artifacts"
rm -rf "$SEEDS" "$ARTIFACTS"
mkdir -p "$SEEDS" "$CORPUS" "$ARTIFACTS"

# Small models covering initializers, Constant nodes, optional inputs,
# attributes of every kind, several opsets and element types.
SEED_MODELS=(
  test_add test_add_bcast test_relu test_leakyrelu test_clip test_clip_default_inbounds
  test_conv_with_strides_padding test_convtranspose test_gemm_default_single_elem_vector_bias
  test_matmul_2d test_maxpool_2d_pads test_averagepool_2d_strides test_batchnorm_example
  test_softmax_axis_1 test_reshape_reordered_all_dims test_concat_2d_axis_0 test_constant
  test_flatten_axis1 test_transpose_default test_cast_FLOAT_to_DOUBLE test_slice
  test_globalaveragepool test_pad test_sigmoid
)
n=0
for name in "${SEED_MODELS[@]}"; do
  if [ -f "$NODE_TESTS/$name/model.onnx" ]; then
    cp "$NODE_TESTS/$name/model.onnx" "$SEEDS/$name.onnx"
    n=$((n + 1))
  fi
done
echo "fuzz_smoke: $n seed models, fuzzing for ${SECONDS_TO_RUN}s"

# -timeout: an input that takes this long counts as a hang (a failure).
# -rss_limit_mb: an import that balloons memory counts as a failure.
set +e
"$FUZZER" "$CORPUS" "$SEEDS" \
  -max_total_time="$SECONDS_TO_RUN" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$ARTIFACTS/" >"$BUILD_DIR/fuzz.log" 2>&1
rc=$?
set -e
tail -n 25 "$BUILD_DIR/fuzz.log"
if [ $rc -ne 0 ]; then
  echo "fuzz_smoke: FAILED (exit $rc); full log: $BUILD_DIR/fuzz.log; reproducers:" >&2
  ls -l "$ARTIFACTS" >&2
  exit 1
fi
echo "fuzz_smoke: no crash in ${SECONDS_TO_RUN}s"
