#!/usr/bin/env bash
# Paired A/B of the f32 block-sparse conv (bench/bench_sparse_ab.cc): the
# kernel (kernels/sparse/bsr_conv_avx512.cc) and plan (bsr_conv_plan.*) of
# COMMIT, renamed into namespace wbs::kernels::sparse::ab_old, against BUILD's
# libwbs_kernels, in one process on the same weights.
#
#   bash scripts/bench_sparse_ab.sh BUILD COMMIT [bench_sparse_ab flags]
#   e.g. bash scripts/bench_sparse_ab.sh build/release HEAD~3 --layers=16,22 --sp=50,90
#
# BUILD must have wbs_kernels built (cmake --build BUILD --target wbs_kernels);
# COMMIT's plan must keep the current BsrConvPlan::Create/Run interface.
set -euo pipefail
BUILD=$(cd "$1" && pwd)
COMMIT=$2
shift 2
SRC=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
ns='s/^namespace wbs::kernels::sparse {/namespace wbs::kernels::sparse::ab_old {/'
git -C "$SRC" show "$COMMIT:kernels/sparse/bsr_conv_avx512.cc" | sed "$ns" >"$TMP/old_avx512.cc"
git -C "$SRC" show "$COMMIT:kernels/sparse/bsr_conv_plan.h" |
  sed "$ns"'; s/^\(namespace wbs::kernels::sparse::ab_old {\)$/\1\nvoid f32_pack_plane__avx512(const PackPlaneArgs\& a);/' \
    >"$TMP/old_plan.h"
git -C "$SRC" show "$COMMIT:kernels/sparse/bsr_conv_plan.cc" |
  sed "$ns"'; s#"kernels/sparse/bsr_conv_plan.h"#"old_plan.h"#' >"$TMP/old_plan.cc"
LIB=$(find "$BUILD" -maxdepth 2 -name libwbs_kernels.a | head -1)
CORE=$(find "$BUILD" -maxdepth 2 -name libwbs_core.a | head -1)
FLAGS=(-O3 -DNDEBUG -fopenmp -std=c++20 -I"$SRC" -I"$TMP" -DFMT_SHARED -DSPDLOG_COMPILED_LIB
  -DSPDLOG_FMT_EXTERNAL -DSPDLOG_SHARED_LIB -w)
AVX512=(-mavx512f -mavx512vl -mavx512dq -mavx512bw -mfma)
c++ "${FLAGS[@]}" "${AVX512[@]}" -c "$TMP/old_avx512.cc" -o "$TMP/old_avx512.o" &
c++ "${FLAGS[@]}" -c "$TMP/old_plan.cc" -o "$TMP/old_plan.o" &
c++ "${FLAGS[@]}" -DWBS_AB_OLD_PLAN_H='"old_plan.h"' -DWBS_SOURCE_DIR="\"$SRC\"" \
  -c "$SRC/bench/bench_sparse_ab.cc" -o "$TMP/ab.o" &
wait
c++ -fopenmp "$TMP/ab.o" "$TMP/old_avx512.o" "$TMP/old_plan.o" "$LIB" "$CORE" -ldnnl -lfmt -lspdlog \
  -o "$TMP/bench_sparse_ab"
"$TMP/bench_sparse_ab" "$@"
