#!/usr/bin/env bash
# The LibTorch commands as a plugin (cli/plugin.h): `wbs --help` lists them
# with or without the plugin; with it, `wbs train|finetune|sensitivity` parse
# and run in the plugin (found next to wbs or in ../lib); without it, or with
# a broken one, one error line and exit 1; and wbs itself loads no LibTorch.
# Usage: plugin_test.sh WBS_BINARY PLUGIN|none WORK_DIR
set -uo pipefail
WBS=${1:?usage: plugin_test.sh WBS_BINARY PLUGIN|none WORK_DIR}
PLUGIN=${2:?usage: plugin_test.sh WBS_BINARY PLUGIN|none WORK_DIR}
D=${3:?usage: plugin_test.sh WBS_BINARY PLUGIN|none WORK_DIR}
rm -rf "$D" && mkdir -p "$D"

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# run NAME CMD...: stdout in $D/NAME.out, stderr in $D/NAME.err; sets rc.
run() {
  local name=$1; shift
  "$@" >"$D/$name.out" 2>"$D/$name.err"
  rc=$?
}

# The executable does not need LibTorch (its start-up cost is the point).
if ldd "$WBS" | grep -q 'libtorch'; then
  fail "wbs links LibTorch: $(ldd "$WBS" | grep libtorch | head -3 | tr '\n' ' ')"
fi

# `wbs --help` lists the plugin commands with their one-line help.
run help "$WBS" --help
[ $rc -eq 0 ] || fail "wbs --help: exit $rc"
for c in train finetune sensitivity; do
  grep -qE "^  $c +[A-Z]" "$D/help.out" || fail "wbs --help does not list '$c': $(cat "$D/help.out")"
done

# A wbs without its plugin: one line naming where it was looked for.
mkdir -p "$D/alone"
cp "$WBS" "$D/alone/wbs"
run missing "$D/alone/wbs" train fmnist_resnet --epochs 1
[ $rc -eq 1 ] || fail "missing plugin: exit $rc, expected 1"
want="wbs: error: wbs train: the training plugin $D/alone/libwbs_train_cli.so is not available (built with WBS_BUILD_TRAIN=OFF?)"
[ "$(cat "$D/missing.err")" = "$want" ] || fail "missing plugin: got '$(cat "$D/missing.err")', want '$want'"
run missing_help "$D/alone/wbs" finetune --help
[ $rc -eq 1 ] && grep -q "^wbs: error: wbs finetune: the training plugin" "$D/missing_help.err" ||
  fail "finetune --help without the plugin: exit $rc: $(cat "$D/missing_help.err")"
# ... and the other commands work as before.
run alone_zoo "$D/alone/wbs" zoo --list
[ $rc -eq 0 ] || fail "wbs zoo --list without the plugin: exit $rc"

# Files that are not the plugin: the loader's reason, one line, exit 1.
mkdir -p "$D/broken" "$D/foreign"
cp "$WBS" "$D/broken/wbs"
: >"$D/broken/libwbs_train_cli.so"
run broken "$D/broken/wbs" sensitivity model.onnx
[ $rc -eq 1 ] || fail "empty plugin file: exit $rc, expected 1"
grep -qx "wbs: error: wbs sensitivity: cannot load the training plugin $D/broken/libwbs_train_cli.so: .*" \
  "$D/broken.err" || fail "empty plugin file: $(cat "$D/broken.err")"
libz=$(ldd "$WBS" | awk '/libz\.so/ {print $3; exit}')
if [ -n "$libz" ]; then
  cp "$WBS" "$D/foreign/wbs"
  ln -s "$libz" "$D/foreign/libwbs_train_cli.so"
  run foreign "$D/foreign/wbs" train x
  [ $rc -eq 1 ] || fail "foreign library: exit $rc, expected 1"
  grep -qx "wbs: error: wbs train: .*libwbs_train_cli.so has no wbs_train_cli_main (not a wbs training plugin)" \
    "$D/foreign.err" || fail "foreign library: $(cat "$D/foreign.err")"
fi

if [ "$PLUGIN" != none ]; then
  # Next to the executable: the plugin parses the command line itself.
  run train_help "$WBS" train --help
  [ $rc -eq 0 ] || fail "wbs train --help: exit $rc: $(cat "$D/train_help.err")"
  grep -q -- "--epochs" "$D/train_help.out" || fail "wbs train --help shows no --epochs"
  # The one-line help is the same in both listings (cli/plugin.h's table).
  for c in train finetune sensitivity; do
    run "${c}_h" "$WBS" "$c" --help
    line=$(grep -E "^  $c +[A-Z]" "$D/help.out" | sed -E "s/^  $c +//")
    grep -qF "$line" "$D/${c}_h.out" || fail "wbs $c --help lacks the listed help '$line'"
  done
  # Global flags before the command, usage errors with the command's hint.
  run verbose_help "$WBS" -v sensitivity --help
  [ $rc -eq 0 ] || fail "wbs -v sensitivity --help: exit $rc"
  run bad_flag "$WBS" finetune --no-such-flag
  [ $rc -eq 2 ] || fail "finetune --no-such-flag: exit $rc, expected 2"
  grep -q "^wbs: error: .*(see 'wbs finetune --help')$" "$D/bad_flag.err" ||
    fail "finetune --no-such-flag: $(cat "$D/bad_flag.err")"
  # A failing command inside the plugin: its Status as one line, exit 1.
  run bad_model "$WBS" sensitivity "$D/no_such_model.onnx" --json "$D/s.json"
  [ $rc -eq 1 ] || fail "sensitivity on a missing file: exit $rc, expected 1"
  [ "$(wc -l <"$D/bad_model.err")" -eq 1 ] && grep -q "^wbs: error: .*no_such_model.onnx" "$D/bad_model.err" ||
    fail "sensitivity on a missing file: $(cat "$D/bad_model.err")"

  # From $ORIGIN/../lib (an installed layout: bin/wbs, lib/libwbs_train_cli.so).
  mkdir -p "$D/prefix/bin" "$D/prefix/lib"
  cp "$WBS" "$D/prefix/bin/wbs"
  ln -s "$(realpath "$PLUGIN")" "$D/prefix/lib/libwbs_train_cli.so"
  run lib_help "$D/prefix/bin/wbs" finetune --help
  [ $rc -eq 0 ] && grep -q -- "--sparsity" "$D/lib_help.out" ||
    fail "plugin in ../lib: exit $rc: $(cat "$D/lib_help.err")"
fi

if [ $failures -ne 0 ]; then
  echo "$failures failure(s); outputs in $D" >&2
  exit 1
fi
echo "plugin_test: all checks passed"
