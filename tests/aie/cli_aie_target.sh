#!/usr/bin/env bash
# wbs aie-target end to end: every preset validates and prints a summary; bad
# configs fail with exit code 1 and one line naming the file and the key path.
set -euo pipefail
WBS="$1"
OUT="$2"
mkdir -p "$OUT"

fail() { echo "FAIL: $*" >&2; exit 1; }

presets=$("$WBS" aie-target --list | awk '{print $1}')
[[ -n "$presets" ]] || fail "no presets listed"
for p in $presets; do
  "$WBS" aie-target "$p" > "$OUT/$p.txt" || fail "$p does not validate"
  grep -q "^target $p: " "$OUT/$p.txt" || fail "$p: no summary"
  # --json prints every key; it loads back to the same target.
  "$WBS" aie-target "$p" --json > "$OUT/$p.json"
  "$WBS" aie-target "$OUT/$p.json" > "$OUT/$p.back.txt"
  cmp -s "$OUT/$p.txt" "$OUT/$p.back.txt" || fail "$p: --json does not round-trip"
done
grep -q "4 rows x 4 cols = 16 cores" "$OUT/paper-4x4.txt" || fail "paper-4x4 summary"

expect_error() {  # FILE CONTENT EXPECTED-SUBSTRING
  printf '%s\n' "$2" > "$OUT/$1"
  set +e
  "$WBS" aie-target "$OUT/$1" > "$OUT/$1.out" 2> "$OUT/$1.err"
  local rc=$?
  set -e
  [[ $rc -eq 1 ]] || fail "$1: exit code $rc, want 1"
  [[ $(wc -l < "$OUT/$1.err") -eq 1 ]] || fail "$1: error is not one line: $(cat "$OUT/$1.err")"
  grep -qF "$OUT/$1: $3" "$OUT/$1.err" || fail "$1: want '$3' in: $(cat "$OUT/$1.err")"
}
expect_error unknown.json '{"array": {"rows": 4, "colums": 4}}' "array.colums: unknown key"
expect_error type.json '{"core": {"banks": "8"}}' "core.banks: must be an integer"
expect_error range.json '{"array": {"rows": 0}}' "array.rows: 0 must be in [1, 64]"
expect_error reach.json '{"memtile": {"columns": [0], "reach": 0}}' "memtile.columns: core column 1"
expect_error syntax.json '{"array": ' "not valid JSON"

set +e
"$WBS" aie-target > /dev/null 2>&1
rc=$?
set -e
[[ $rc -eq 2 ]] || fail "no TARGET: exit code $rc, want 2 (usage)"
echo "cli_aie_target: OK ($(echo $presets | wc -w) presets)"
