#!/usr/bin/env bash
# Prints the numbers the test tiers report (conformance counts, the ONNX
# Runtime agreement table) from ctest's log, since ctest hides the output of
# passing tests. Usage: scripts/test_summary.sh BUILD_DIR
set -euo pipefail
log="${1:?usage: test_summary.sh BUILD_DIR}/Testing/Temporary/LastTest.log"
[ -f "$log" ] || { echo "test_summary: no ctest log at $log" >&2; exit 0; }
echo
echo "== Conformance (ONNX backend node tests) =="
grep -E '^conformance\[' "$log" || echo "(conformance did not run)"
echo
echo "== Cross-check against ONNX Runtime =="
awk '/^model +check +max_abs_err/{on=1} on{print} /^crosscheck: /{on=0}' "$log" || true
