#!/usr/bin/env bash
# Inception-v3 on paper-4x4 at 50%: a Mixed block's concat output stays in
# the memtiles (each branch writes its channel slot of the region, the next
# block's branches and pool read it from there), the invariants hold and the
# program runs bit-exactly with simulated cycles = the estimate.
set -euo pipefail
WBS="$1"
OUT="$2"
mkdir -p "$OUT"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$WBS" compile --zoo inception_v3 --sparsity 0.5 --target paper-4x4 -o "$OUT/p" --print-after=fusion --check > "$OUT/fusion.txt" 2> "$OUT/compile.err" ||
  fail "compile: $(tail -1 "$OUT/compile.err")"
grep -q "invariants OK" "$OUT/compile.err" "$OUT/fusion.txt" || fail "no 'invariants OK'"
grep -q "^resident Mixed_5b.cat memtile" "$OUT/fusion.txt" || fail "Mixed_5b.cat is not resident"
"$WBS" simulate "$OUT/p/program.bin" --zoo inception_v3 --sparsity 0.5 --check > "$OUT/sim.txt" 2>&1 || fail "simulate: $(tail -1 "$OUT/sim.txt")"
grep -q "^check: output bit-exact" "$OUT/sim.txt" || fail "not bit-exact"
grep -q "sim/est 1.000" "$OUT/sim.txt" || fail "simulated cycles differ from the estimate: $(grep '^total' "$OUT/sim.txt")"
echo "concat_resident: OK"
