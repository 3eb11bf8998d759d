#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz into build-fuzz (clang, ASan +
# UBSan + libFuzzer) and runs each for SECONDS (default 60) on a copy of its
# seed corpus in a temporary directory: the tree is never written to.
#
#   scripts/fuzz.sh [SECONDS] [HARNESS...]      HARNESS: spec, config, proto, kubeconfig (default: all)
#
# Prints one line per harness, "fuzz_NAME: N executions in S s (coverage: C
# edges), clean" or "..., FAILED (crash|leak|timeout|...)"; on a failure the input that caused it
# is kept under build-fuzz/findings/ and its path printed, with the command
# that replays it.  Exits non-zero when any harness failed.  Extra libFuzzer
# flags can be passed in FUZZ_FLAGS (e.g. FUZZ_FLAGS=-jobs=2).
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
case $seconds in
  '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [spec|config|proto|kubeconfig ...]" >&2; exit 2 ;;
esac
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(spec config proto kubeconfig)

# Longest input per harness: spec and config files are small; a protocol
# stream of several requests, one a whole JobGroup, is a little longer.
declare -A max_len=([spec]=8192 [config]=4096 [proto]=16384 [kubeconfig]=4096)
for h in "${harnesses[@]}"; do
  if [ -z "${max_len[$h]:-}" ]; then
    echo "scripts/fuzz.sh: unknown harness '$h' (spec, config, proto, kubeconfig)" >&2
    exit 2
  fi
done

dir=build-fuzz
if ! command -v clang >/dev/null; then
  echo "scripts/fuzz.sh: clang is needed (scripts/deps.sh installs it)" >&2
  exit 1
fi
targets=()
for h in "${harnesses[@]}"; do targets+=("tests/fuzz/fuzz_$h"); done
log=$(mktemp)
if [ ! -f "$dir/build.ninja" ] &&
   ! CC=clang meson setup "$dir" -Dfuzz=true -Dtests=false >"$log" 2>&1; then
  cat "$log"
  rm -f "$log"
  exit 1
fi
if ! ninja -C "$dir" "${targets[@]}" >"$log" 2>&1; then
  cat "$log"
  rm -f "$log"
  exit 1
fi
rm -f "$log"

work=$(mktemp -d "${TMPDIR:-/tmp}/jgsched-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
findings=$dir/findings
failed=0
for h in "${harnesses[@]}"; do
  name=fuzz_$h
  corpus=$work/$h
  mkdir -p "$corpus" "$work/artifacts-$h"
  cp tests/fuzz/corpus/"$h"/* "$corpus"/
  out=$work/$h.log
  # -timeout: one input may take at most 2 s (parsing is meant to be linear);
  # -rss_limit_mb: a memory blow-up is a finding, not a swapping machine.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$dir/tests/fuzz/$name" -max_total_time="$seconds" -max_len="${max_len[$h]}" \
      -timeout=2 -rss_limit_mb=2048 -print_final_stats=1 \
      -dict="tests/fuzz/$h.dict" -artifact_prefix="$work/artifacts-$h/" \
      ${FUZZ_FLAGS:-} "$corpus" >"$out" 2>&1
  rc=$?
  # libFuzzer ends a clean run with "Done N runs in S second(s)"; a failed one
  # with its final stats, "stat::number_of_executed_units: N".
  runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 executions in \2 s/p' "$out" | tail -1)
  if [ -z "$runs" ]; then
    runs="$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\)/\1/p' "$out" | tail -1) executions"
  fi
  # Coverage reached: "cov: N" of libFuzzer's last status line.
  cov=$(grep -o 'cov: [0-9]*' "$out" | tail -1 | cut -d' ' -f2)
  runs="$runs${cov:+ (coverage: $cov edges)}"
  if [ $rc -eq 0 ] && grep -q '^Done [0-9]* runs' "$out"; then
    echo "$name: $runs, clean"
    continue
  fi
  failed=$((failed + 1))
  kind=$(grep -o -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer): [a-z-]+|runtime error|ALARM: working on the last Unit for [0-9]+ seconds|out-of-memory' "$out")
  echo "$name: $runs, FAILED (${kind:-exit status $rc})"
  mkdir -p "$findings"
  kept=""
  for a in "$work/artifacts-$h"/*; do
    [ -e "$a" ] || continue
    cp "$a" "$findings/$name-$(basename "$a")"
    kept="$findings/$name-$(basename "$a")"
  done
  cp "$out" "$findings/$name.log"
  sed -n '/^==[0-9]*==ERROR\|runtime error\|ALARM\|^fuzz_/,+25p' "$out" | head -40
  if [ -n "$kept" ]; then
    echo "$name: reproducer kept at $kept; replay: $dir/tests/fuzz/$name $kept"
  fi
  echo "$name: full log at $findings/$name.log"
done
[ "$failed" -eq 0 ]
