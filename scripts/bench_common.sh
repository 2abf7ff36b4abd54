# Shared by the benchmark scripts (scripts/bench*.sh); source it, do not run it.
#
#   source "$(dirname "$0")/bench_common.sh"
#   bench_args NAME "$@"     # BUILD_DIR [REPORT [OLD_REPORT]] -> ROOT BUILD REPORT OLD
#
# It holds what every report section needs the same way: the argument
# convention, the machine facts printed under each table (commit, CPU, load),
# the checks for built binaries and ONNX Runtime, and splicing a section
# between its <!-- TAG --> and <!-- /TAG --> markers into the report. What a
# script measures and how it renders its numbers stays in that script.

# The repository root (this file's folder's parent).
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# bench_args NAME ARGS...: parses "BUILD_DIR [REPORT [OLD_REPORT]]" (usage
# error: exit 2) into ROOT, BUILD (absolute), BUILD_ARG (as given), REPORT
# (default docs/BENCHMARKS.md) and OLD (default REPORT); sets BENCH_NAME for
# messages; sets OMP_WAIT_DESC for the report lines: the user's
# OMP_WAIT_POLICY if set (exported to every binary), else "auto" (each wbs
# binary then chooses per process from the load, core/omp_wait.h, and prints
# its choice on stderr as "OpenMP wait: ...").
bench_args() {
  BENCH_NAME=$1
  shift
  if [ $# -lt 1 ] || [ $# -gt 3 ]; then
    echo "usage: $0 BUILD_DIR [REPORT [OLD_REPORT]]" >&2
    exit 2
  fi
  ROOT=$BENCH_ROOT
  BUILD_ARG=$1
  BUILD=$(cd "$1" && pwd)
  REPORT=${2:-$ROOT/docs/BENCHMARKS.md}
  OLD=${3:-$REPORT}
  # libgomp reads it at start-up; unset = wbs's own per-process choice.
  if [ -n "${OMP_WAIT_POLICY:-}" ]; then
    export OMP_WAIT_POLICY
    OMP_WAIT_DESC="OMP_WAIT_POLICY=$OMP_WAIT_POLICY"
    OMP_WAIT_PREFIX="OMP_WAIT_POLICY=$OMP_WAIT_POLICY "
  else
    unset OMP_WAIT_POLICY
    OMP_WAIT_DESC="OpenMP wait auto (spin when idle or at a real-time priority, passive when busy: core/omp_wait.h)"
    OMP_WAIT_PREFIX=""
  fi
}

# Machine facts for the line under a table.
bench_commit() { git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown; }
bench_cpu() { lscpu | sed -n 's/^Model name: *//p' | head -1; }
bench_load() { cut -d' ' -f1-3 /proc/loadavg; }

# bench_rec CMD...: appends CMD to the file $CMDS (and to $REC_ALSO when
# set), for the report's list of commands, with the build folder written
# BUILD/ and the repository root dropped; then runs it.
bench_rec() {
  local line
  line=$(echo "$*" | sed -e "s|$BUILD/|BUILD/|g" -e "s|$ROOT/||g")
  echo "$line" >>"$CMDS"
  [ -z "${REC_ALSO:-}" ] || echo "$line" >>"$REC_ALSO"
  "$@"
}

# bench_require_exec HINT FILE...: exit 2 naming the first FILE that is not
# an executable, with HINT (how to build it).
bench_require_exec() {
  local hint=$1 f
  shift
  for f in "$@"; do
    [ -x "$f" ] || { echo "${BENCH_NAME:-bench}: missing $f ($hint)" >&2; exit 2; }
  done
}

# bench_require_ort: exit 2 unless tools/ort has onnxruntime-node.
bench_require_ort() {
  [ -d "$BENCH_ROOT/tools/ort/node_modules/onnxruntime-node" ] || {
    echo "${BENCH_NAME:-bench}: onnxruntime-node missing (scripts/setup.sh)" >&2
    exit 2
  }
}

# bench_old_section TAG REPORT: prints REPORT's section between the TAG
# markers (nothing if REPORT or the section is missing), to carry it over.
bench_old_section() {
  [ -f "$2" ] || return 0
  sed -n "/<!-- $1 -->/,/<!-- \/$1 -->/p" "$2"
}

# bench_splice_section REPORT SECTION_FILE TAG [ANCHOR...]: replaces REPORT's
# block between the TAG markers with SECTION_FILE's text; without such a
# block, puts it before the first line that starts with an ANCHOR (default
# "## Commands"), else at the end. An empty SECTION_FILE changes nothing; the
# report is replaced atomically (a missing one starts as "# Benchmarks").
bench_splice_section() {
  local report=$1 section=$2 tag=$3
  shift 3
  [ -s "$section" ] || return 0
  [ $# -gt 0 ] || set -- "## Commands"
  python3 - "$report" "$section" "$tag" "$@" <<'PY'
import os, re, sys
path, section, tag, anchors = sys.argv[1], open(sys.argv[2]).read().rstrip("\n"), sys.argv[3], sys.argv[4:]
report = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
pat = re.compile(rf"<!-- {re.escape(tag)} -->[\s\S]*?<!-- /{re.escape(tag)} -->")
if pat.search(report):
    report = pat.sub(lambda _: section, report, count=1)
else:
    for anchor in anchors:
        m = re.search(r"^" + re.escape(anchor), report, re.M)
        if m:
            report = report[:m.start()] + section + "\n\n" + report[m.start():]
            break
    else:
        report = report.rstrip("\n") + "\n\n" + section + "\n"
tmp = path + ".tmp"
with open(tmp, "w") as f:
    f.write(report)
os.replace(tmp, path)
PY
}
