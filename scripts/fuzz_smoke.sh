#!/usr/bin/env bash
# Smoke-runs the fuzzers of outside input: the ONNX model importer (seeded
# with small ONNX backend node-test models) for SECONDS, then the TensorProto
# reader (seeded with those tests' input/output .pb files) for a quarter of
# that. Exits non-zero if a fuzzer finds a crash, hang, leak or sanitizer
# report; the reproducer is left in BUILD_DIR/fuzz-artifacts/<fuzzer>/.
#
# usage: scripts/fuzz_smoke.sh BUILD_DIR [SECONDS]   (default 60)
set -euo pipefail

BUILD_DIR=${1:?usage: fuzz_smoke.sh BUILD_DIR [SECONDS]}
SECONDS_TO_RUN=${2:-60}
NODE_TESTS=/usr/share/libonnx-testdata/data/node

# Small models covering initializers, Constant nodes, optional inputs,
# attributes of every kind, several opsets and element types.
SEED_MODELS=(
  test_add test_add_bcast test_relu test_leakyrelu test_clip test_clip_default_inbounds
  test_conv_with_strides_padding test_convtranspose test_gemm_default_single_elem_vector_bias
  test_matmul_2d test_maxpool_2d_pads test_averagepool_2d_strides test_batchnorm_example
  test_softmax_axis_1 test_reshape_reordered_all_dims test_concat_2d_axis_0 test_constant
  test_flatten_axis1 test_transpose_default test_cast_FLOAT_to_DOUBLE test_slice
  test_globalaveragepool test_sigmoid test_equal
)

# run_fuzzer NAME SEED_DIR SECONDS
run_fuzzer() {
  local name=$1 seeds=$2 secs=$3
  local fuzzer="$BUILD_DIR/fuzz/$name"
  local corpus="$BUILD_DIR/fuzz-corpus/$name"
  local artifacts="$BUILD_DIR/fuzz-artifacts/$name"
  local log="$BUILD_DIR/fuzz-$name.log"
  if [ ! -x "$fuzzer" ]; then
    echo "fuzz_smoke: $fuzzer not found; build with 'cmake --preset fuzz && cmake --build build/fuzz'" >&2
    exit 2
  fi
  rm -rf "$artifacts"
  mkdir -p "$corpus" "$artifacts"
  echo "fuzz_smoke: $name: $(ls "$seeds" | wc -l) seeds, ${secs}s"
  # -timeout: an input that takes this long counts as a hang (a failure).
  # -rss_limit_mb: an input that balloons memory counts as a failure.
  set +e
  "$fuzzer" "$corpus" "$seeds" \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1
  local rc=$?
  set -e
  grep -E "^(Done|stat::)" "$log" || true
  if [ $rc -ne 0 ]; then
    tail -n 40 "$log" >&2
    echo "fuzz_smoke: $name FAILED (exit $rc); full log: $log; reproducers:" >&2
    ls -l "$artifacts" >&2
    exit 1
  fi
}

SEEDS="$BUILD_DIR/fuzz-seeds"
rm -rf "$SEEDS"
mkdir -p "$SEEDS/models" "$SEEDS/tensors"
for name in "${SEED_MODELS[@]}"; do
  dir="$NODE_TESTS/$name"
  [ -f "$dir/model.onnx" ] || continue
  cp "$dir/model.onnx" "$SEEDS/models/$name.onnx"
  for pb in "$dir"/test_data_set_0/*.pb; do
    [ -f "$pb" ] && cp "$pb" "$SEEDS/tensors/${name}_$(basename "$pb")"
  done
done

run_fuzzer onnx_import_fuzzer "$SEEDS/models" "$SECONDS_TO_RUN"
run_fuzzer tensor_proto_fuzzer "$SEEDS/tensors" $(( (SECONDS_TO_RUN + 3) / 4 ))
echo "fuzz_smoke: no crash"
