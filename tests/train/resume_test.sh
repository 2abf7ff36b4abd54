#!/usr/bin/env bash
# wbs train survives kill -9: a short run is killed with SIGKILL in the middle
# of its second epoch, resumed with --resume from its last checkpoint, and
# must end exactly like an uninterrupted run (same test accuracy and the same
# parameter checksum: training is deterministic for a seed and thread count).
# Usage: resume_test.sh WBS WORKDIR
set -euo pipefail
WBS=$1
D=$2
rm -rf "$D"
mkdir -p "$D"
ARGS=(train fmnist_resnet --epochs 3 --batch 32 --max-train-images 320 --max-eval-images 200
      --val-fraction 0.01 --threads 1 --seed 5 -q)

fail() { echo "FAIL: $*" >&2; exit 1; }
final() { tail -n 1 "$1"; }
field() { sed -E "s/.*\"$2\":(\"[^\"]*\"|[^,}]*).*/\1/" <<<"$1"; }

# 1. Uninterrupted.
"$WBS" "${ARGS[@]}" --checkpoint-dir "$D/full" --metrics "$D/full.jsonl" >"$D/full.out"

# 2. Killed with SIGKILL during epoch 2.
"$WBS" "${ARGS[@]}" --checkpoint-dir "$D/part" --metrics "$D/part.jsonl" >"$D/part.out" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  [ -s "$D/part.jsonl" ] && break
  kill -0 "$pid" 2>/dev/null || fail "the run ended before its first checkpoint"
  sleep 0.2
done
[ -f "$D/part/last.pt" ] || fail "no checkpoint after epoch 1"
# Half an epoch into epoch 2 (epoch 1's wall time is in the metrics line).
epoch_s=$(field "$(head -n 1 "$D/part.jsonl")" seconds)
sleep "$(awk -v s="$epoch_s" 'BEGIN { printf "%.2f", s / 2 }')"
kill -0 "$pid" 2>/dev/null || fail "the run ended before it could be killed"
kill -9 "$pid"
set +e
wait "$pid"
rc=$?
set -e
[ "$rc" -eq 137 ] || fail "expected exit 137 (SIGKILL), got $rc"
[ "$(wc -l <"$D/part.jsonl")" -eq 1 ] || fail "killed during epoch 2 but $(wc -l <"$D/part.jsonl") metric lines"

# 3. Resumed.
"$WBS" "${ARGS[@]}" --checkpoint-dir "$D/part" --metrics "$D/part.jsonl" --resume >"$D/resume.out"
grep -q "resumed at epoch 2" "$D/resume.out" || fail "resume did not start at epoch 2: $(cat "$D/resume.out")"

a=$(final "$D/full.jsonl")
b=$(final "$D/part.jsonl")
[ "$(wc -l <"$D/part.jsonl")" -eq 4 ] || fail "resumed metrics file has $(wc -l <"$D/part.jsonl") lines, expected 4"
ta=$(field "$a" test_acc)
tb=$(field "$b" test_acc)
echo "uninterrupted: test_acc $ta checksum $(field "$a" checksum)"
echo "killed+resumed: test_acc $tb checksum $(field "$b" checksum)"
awk -v a="$ta" -v b="$tb" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.001) }' ||
  fail "test accuracy differs by more than 0.1 pt: $ta vs $tb"
[ "$(field "$a" checksum)" = "$(field "$b" checksum)" ] || fail "final weights differ (checksums)"
echo "PASS"
