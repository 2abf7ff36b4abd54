#!/usr/bin/env bash
# wbs aie-sweep end to end on a small model (a few seconds): the table's rows
# and speed-up summary, a larger array never slower, the TSV written
# atomically, progress on stderr (never on stdout), and bad lists failing
# with exit code 1, one line naming the option, and no output file.
set -euo pipefail
WBS="$1"
OUT="$2"
rm -rf "$OUT"
mkdir -p "$OUT"

fail() { echo "FAIL: $*" >&2; exit 1; }

WBS_PROGRESS=plain "$WBS" aie-sweep --models fmnist_resnet --arrays 2x2..3x3 --sparsity 0,0.5 \
  -o "$OUT/sweep.tsv" > "$OUT/stdout.txt" 2> "$OUT/stderr.txt" || fail "sweep failed: $(cat "$OUT/stderr.txt")"
# 4 compiles: 2 arrays x 2 sparsities, one row each, then 2 summary rows.
[[ $(awk -F'\t' '$1 == "fmnist_resnet" && NF == 8' "$OUT/stdout.txt" | wc -l) -eq 4 ]] ||
  fail "want 4 rows: $(cat "$OUT/stdout.txt")"
grep -q '^failures: 0$' "$OUT/stdout.txt" || fail "failures line"
grep -q 'aie-sweep' "$OUT/stdout.txt" && fail "progress leaked into stdout"
grep -q 'aie-sweep .*4/4 100%' "$OUT/stderr.txt" || fail "no final progress line: $(cat "$OUT/stderr.txt")"
# The file holds the rows and the summary printed on stdout.
diff <(grep -v '^failures' "$OUT/stdout.txt") "$OUT/sweep.tsv" > /dev/null || fail "TSV differs from stdout"
# Speed-up summary: dense / sparse per array; 3x3 never slower than 2x2.
awk -F'\t' '$1 == "fmnist_resnet" && NF == 5 { n++; if ($5 + 0 <= 0) bad = 1; v[$2] = $4 }
            END { if (n != 2 || bad || v["3x3"] > v["2x2"]) exit 1 }' "$OUT/stdout.txt" ||
  fail "summary rows: $(cat "$OUT/stdout.txt")"

expect_error() {  # EXPECTED-SUBSTRING ARGS...
  local want="$1"
  shift
  set +e
  "$WBS" aie-sweep -o "$OUT/bad.tsv" "$@" > /dev/null 2> "$OUT/err.txt"
  local rc=$?
  set -e
  [[ $rc -eq 1 ]] || fail "$*: exit code $rc, want 1"
  [[ $(wc -l < "$OUT/err.txt") -eq 1 ]] || fail "$*: error is not one line: $(cat "$OUT/err.txt")"
  grep -qF -- "$want" "$OUT/err.txt" || fail "$*: want '$want' in: $(cat "$OUT/err.txt")"
  [[ ! -e "$OUT/bad.tsv" ]] || fail "$*: wrote bad.tsv"
}
expect_error "--sparsity: 'abc' is not a number in [0, 1]" --models fmnist_resnet --arrays 2x2 --sparsity abc
expect_error "--sparsity: '0.5x' is not a number in [0, 1]" --models fmnist_resnet --arrays 2x2 --sparsity 0.5x
expect_error "--sparsity: '1.5' is not a number in [0, 1]" --models fmnist_resnet --arrays 2x2 --sparsity 1.5
expect_error "--arrays: '3x3..2x2' runs backwards" --models fmnist_resnet --arrays 3x3..2x2
expect_error "--arrays: '2x3' is not NxN" --models fmnist_resnet --arrays 2x3..4x4
expect_error "--arrays: '0x0' is not NxN" --models fmnist_resnet --arrays 0x0
expect_error "--arrays: '4x4y' is not NxN" --models fmnist_resnet --arrays 2x2,4x4y
expect_error "--models: unknown model 'nosuch'" --models nosuch --arrays 2x2 --sparsity 0
echo "cli_aie_sweep: OK"
