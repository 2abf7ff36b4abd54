#!/usr/bin/env bash
# wbs train with two data-parallel ranks on 127.0.0.1 (c10d Gloo):
#  1. both ranks finish with the same parameter checksum;
#  2. a rank killed with SIGKILL makes the other fail with a clear error
#     within its --dist-timeout instead of hanging.
# Usage: ddp_test.sh WBS WORKDIR
set -euo pipefail
WBS=$1
D=$2
rm -rf "$D"
mkdir -p "$D"
fail() { echo "FAIL: $*" >&2; exit 1; }
port=$((20000 + ($$ % 20000)))
ARGS=(train fmnist_resnet --epochs 1 --batch 32 --max-train-images 192 --max-eval-images 64
      --val-fraction 0.01 --threads 1 --seed 3 --world-size 2 -q)

# 1. Identical weights on both ranks.
"$WBS" "${ARGS[@]}" --rank 1 --master "127.0.0.1:$port" >"$D/r1.out" 2>&1 &
p1=$!
"$WBS" "${ARGS[@]}" --rank 0 --master "127.0.0.1:$port" >"$D/r0.out" 2>&1 || fail "rank 0: $(cat "$D/r0.out")"
wait "$p1" || fail "rank 1: $(cat "$D/r1.out")"
c0=$(sed -n 's/^rank 0\/2: parameter checksum //p' "$D/r0.out")
c1=$(sed -n 's/^rank 1\/2: parameter checksum //p' "$D/r1.out")
echo "rank 0 checksum $c0, rank 1 checksum $c1"
[ -n "$c0" ] && [ "$c0" = "$c1" ] || fail "ranks differ"

# 2. A dead rank: the survivor stops with an error, within the timeout.
port=$((port + 1))
timeout=15
# Not quiet: rank 0's first step line ("train epoch 1/50 ... 1/N") says both
# ranks have joined the group and run a collective. Rank 1 is killed only
# then, so the test covers a peer dying mid-training; killing it after a
# fixed sleep raced the start-up on a loaded machine (LibTorch takes seconds
# to load there), and rank 0 then failed to *join* instead.
LONG=(train fmnist_resnet --epochs 50 --batch 32 --max-train-images 192 --max-eval-images 64
      --val-fraction 0.01 --threads 1 --seed 3 --world-size 2 --dist-timeout $timeout)
"$WBS" "${LONG[@]}" --rank 1 --master "127.0.0.1:$port" >"$D/k1.out" 2>&1 &
p1=$!
"$WBS" "${LONG[@]}" --rank 0 --master "127.0.0.1:$port" >"$D/k0.out" 2>&1 &
p0=$!
for _ in $(seq 1 480); do
  grep -q "train epoch 1/50 .* 1/" "$D/k0.out" 2>/dev/null && break
  kill -0 "$p0" 2>/dev/null || fail "rank 0 ended early: $(cat "$D/k0.out")"
  sleep 0.25
done
grep -q "train epoch 1/50 .* 1/" "$D/k0.out" || { kill -9 "$p0" "$p1"; fail "rank 0 ran no step in 120 s: $(tail -3 "$D/k0.out")"; }
kill -0 "$p0" 2>/dev/null || fail "rank 0 ended early: $(cat "$D/k0.out")"
kill -9 "$p1"
start=$(date +%s)
set +e
# The survivor must not outlive the timeout by much (the test fails rather than hangs).
for _ in $(seq 1 $((4 * (timeout + 20)))); do
  kill -0 "$p0" 2>/dev/null || break
  sleep 0.25
done
if kill -0 "$p0" 2>/dev/null; then
  kill -9 "$p0"
  fail "rank 0 still running $((timeout + 20)) s after its peer died"
fi
wait "$p0"
rc=$?
set -e
took=$(($(date +%s) - start))
echo "rank 0 exited with $rc after ${took}s: $(grep "wbs: error" "$D/k0.out")"
[ "$rc" -eq 1 ] || fail "expected exit code 1, got $rc"
grep -q "wbs: error: rank 0/2: .*failed" "$D/k0.out" || fail "unclear error: $(tail -3 "$D/k0.out")"
echo "PASS"
