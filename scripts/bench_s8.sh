#!/usr/bin/env bash
# Int8 block-sparse kernels vs oneDNN int8 dense (bench/bench_s8.cc) and the
# section "Int8 block-sparse kernels" of the benchmark report (the block
# between <!-- int8-kernels --> and <!-- /int8-kernels -->).
#
#   bash scripts/bench_s8.sh BUILD_DIR [REPORT [OLD_REPORT]]
#
# REPORT defaults to docs/BENCHMARKS.md; the section replaces the marked block
# (else goes before "## Commands", else at the end). With BENCH_S8=0 nothing
# is measured and OLD_REPORT's section (default: REPORT's) is carried over, so
# scripts/bench.sh can regenerate the rest of the report without losing it.
# Env: BENCH_S8 (1), BENCH_S8_THREADS (1,2), BENCH_S8_SPARSITY (0,50,75,90),
# BENCH_S8_MIN_TIME (0.2 s per benchmark), OMP_WAIT_POLICY (unset: wbs's per-process choice).
set -euo pipefail
source "$(dirname "$0")/bench_common.sh"
bench_args bench_s8 "$@"
BM=$BUILD/bench/wbs_bench_s8
THREADS=${BENCH_S8_THREADS:-1,2}
SPARSITY=${BENCH_S8_SPARSITY:-0,50,75,90}
MIN_TIME=${BENCH_S8_MIN_TIME:-0.2}

section=$(mktemp)
trap 'rm -f "$section"' EXIT
if [ "${BENCH_S8:-1}" = 0 ]; then
  bench_old_section int8-kernels "$OLD" >"$section"
else
  bench_require_exec "cmake --build $BUILD_ARG --target wbs_bench_s8" "$BM"
  R=$BUILD/bench_results/s8
  mkdir -p "$R"
  cmd="${OMP_WAIT_PREFIX}${BUILD_ARG%/}/bench/wbs_bench_s8 --threads=$THREADS --sparsity=$SPARSITY --benchmark_min_time=$MIN_TIME"
  load_start=$(bench_load)
  echo "bench_s8: $cmd" >&2
  "$BM" --threads="$THREADS" --sparsity="$SPARSITY" --benchmark_min_time="$MIN_TIME" \
    --benchmark_out="$R/bench_s8.json" >"$R/bench_s8.txt" 2>"$R/bench_s8.log"
  # The same at 1 thread with power-of-two multipliers (the AIE mode: a 4-op epilogue).
  pot_cmd="${OMP_WAIT_PREFIX}${BUILD_ARG%/}/bench/wbs_bench_s8 --threads=1 --pot --sparsity=$SPARSITY --benchmark_min_time=$MIN_TIME"
  if [ "${BENCH_S8_POT:-1}" != 0 ]; then
    echo "bench_s8: $pot_cmd" >&2
    "$BM" --threads=1 --pot --sparsity="$SPARSITY" --benchmark_min_time="$MIN_TIME" \
      >"$R/bench_s8_pot.txt" 2>>"$R/bench_s8.log"
  else
    : >"$R/bench_s8_pot.txt"
  fi
  python3 - "$R/bench_s8.txt" "$cmd" "$load_start" "$(bench_load)" "$(bench_commit)" \
    "$(bench_cpu)" "$R/bench_s8_pot.txt" "$pot_cmd" >"$section" <<'PY'
import re, sys, datetime
out, cmd, load0, load1, commit, cpu, pot_out, pot_cmd = sys.argv[1:9]
text = open(out).read()
table = text[text.index("| threads |"):text.index("\nMedian per-layer")].rstrip()
medians = re.findall(r"threads (\d+) sparsity (\d+)%: ([\d.]+)x over (\d+) layers \(min ([\d.]+)x, max ([\d.]+)x\)", text)
kernel = re.search(r"Median per-layer speed-up \(kernel ([^)]*)\)", text)
targets = {50: 1.9, 75: 3.6}
print("<!-- int8-kernels -->")
print("## Int8 block-sparse kernels\n")
print(f"Int8 block-sparse conv/Gemm (`kernels/sparse/s8_*`, kernel `{kernel.group(1) if kernel else '?'}`) "
      "vs oneDNN int8 dense (`kernels/dnnl/conv_s8.h`, kNative: its fastest u8 x s8 -> u8 "
      "configuration, activations in its own layouts, no reorders timed) on every distinct "
      "ResNet-50 conv shape plus the FC layer, batch 1, random 8x8 block masks, "
      "bias + ReLU + requantization fused on both sides; ours bit-exact with docs/int8.md, "
      "activations nChw4c in and out (the padded input copy of 3x3/strided layers included). "
      "Medians of each benchmark's iterations, both sides in the same run.\n")
print(f"{datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, commit {commit}, {cpu}, "
      f"load {load0} -> {load1} (2 shared cores: the 2-thread rows are noisy).\n")
print("```sh\n" + cmd + "\n```\n")
print("Median per-layer speed-up over the 24 layers (target: >= 1.9x at 50%, >= 3.6x at 75%):\n")
print("| threads | sparsity | median | min | max | target |")
print("|---:|---:|---:|---:|---:|---|")
for t, sp, med, n, lo, hi in medians:
    tgt = targets.get(int(sp))
    verdict = "" if tgt is None else (f"{tgt}x: met" if float(med) >= tgt else
                                      f"{tgt}x: missed by {100 * (1 - float(med) / tgt):.0f}%")
    print(f"| {t} | {sp}% | {med}x | {lo}x | {hi}x | {verdict} |")
pot = re.findall(r"threads (\d+) sparsity (\d+)%: ([\d.]+)x over (\d+) layers \(min ([\d.]+)x, max ([\d.]+)x\)",
                 open(pot_out).read())
if pot:
    print("\nWith power-of-two multipliers (M = 1, the AIE \"fix position\" mode; our "
          "epilogue is then clamp + add + shift, 4 ops per 16 outputs instead of 10):\n")
    print("```sh\n" + pot_cmd + "\n```\n")
    print("| threads | sparsity | median | min | max |")
    print("|---:|---:|---:|---:|---:|")
    for t, sp, med, n, lo, hi in pot:
        print(f"| {t} | {sp}% | {med}x | {lo}x | {hi}x |")
print("\nPer layer (ms, speed-up = oneDNN / ours):\n")
print(table)
print("\nWhy the targets are missed (details: docs/KERNELS.md, \"Int8 kernels\"). (1) oneDNN's "
      "dense int8 convolution runs at ~100% of the VNNI peak here, so a 1.9x median at 50% "
      "needs a kernel as fast per kept MAC as oneDNN with no fixed cost at all; our VNNI loop "
      "is at 0.9-1.05x oneDNN's rate per MAC on the kept blocks. (2) A per-output cost that "
      "sparsity does not remove: the exact requantization (64-bit products, rounding shift, "
      "clamp: ~10 vector ops per 16 outputs, where oneDNN's f32 epilogue takes ~4 but is not "
      "bit-exact with docs/int8.md), the interleaved stores and the accumulator set-up, "
      "measured at 100% sparsity as ~0.3 cycles per output: 10-15% of oneDNN's whole time on "
      "the K = 64..256 layers. Power-of-two multipliers cut the requantization to 4 ops (table "
      "above). (3) 7x7 and 14x14 outputs fill 49 of 64 and 196 of 208 lanes of the "
      "16-position vectors (layer4: ~0.6x of dense at 0%). (4) 3x3 and strided layers first "
      "copy their input into zero-point-padded phase planes.")
print("<!-- /int8-kernels -->")
PY
fi

if [ -s "$section" ]; then
  bench_splice_section "$REPORT" "$section" int8-kernels
  echo "bench_s8: wrote the int8 kernel section of $REPORT" >&2
fi
