#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite twice: in the
# release build (the one users install and benchmark) and in an
# AddressSanitizer + UndefinedBehaviorSanitizer debug build, then each fuzz
# harness briefly (scripts/fuzz.sh, one test per harness).
# Ends with one summary line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh || exit 1
passed=0
failed=0
failure_digest=$(mktemp)
run_suite() {   # dir label [meson setup args...]; $TEST_ARGS: more meson test args
  local dir=$1 label=$2
  shift 2
  if ! scripts/build.sh "$dir" "$@"; then
    echo "== $label: build failed"
    failed=$((failed + 1))
    return
  fi
  echo "== $label: running the test suite"
  # shellcheck disable=SC2086
  meson test -C "$dir" --print-errorlogs --num-processes 1 ${TEST_ARGS:-} 2>&1 | tee "$dir/test-summary.txt"
  local ok fail
  ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$dir/test-summary.txt" | tail -1)
  fail=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$dir/test-summary.txt" | tail -1)
  to=$(sed -n 's/^Timeout: *\([0-9]*\).*/\1/p' "$dir/test-summary.txt" | tail -1)
  passed=$((passed + ${ok:-0}))
  failed=$((failed + ${fail:-0} + ${to:-0}))
  if [ -z "$ok" ]; then failed=$((failed + 1)); fi
  # What failed, in a few lines the end of a long log still shows: the
  # Criterion cases (failed, crashed, timed out) and the failing scripts' checks.
  if [ "${fail:-0}${to:-0}" != 00 ]; then
    grep -a -E '^\[FAIL\]|crashed|Timed out|^\[----\] .*:[0-9]+: |^FAIL[: ]|^not ok' \
      "$dir/meson-logs/testlog.txt" 2>/dev/null | head -40 >> "$failure_digest"
  fi
  # A sanitizer report in a test's forked child does not always fail the test
  # (Criterion misses LeakSanitizer's exit in its workers): read the log too.
  local reports
  reports=$(grep -c -E 'ERROR: (LeakSanitizer|AddressSanitizer)|runtime error:' \
              "$dir/meson-logs/testlog.txt" 2>/dev/null)
  if [ "${reports:-0}" -gt 0 ]; then
    echo "== $label: $reports sanitizer report(s) in $dir/meson-logs/testlog.txt"
    failed=$((failed + 1))
  fi
}
run_suite build-release "release build" -Dbuildtype=release
# The seed plan on Kubernetes, with and without faults, runs in the release
# build only (tests/meson.build says why).
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  TEST_ARGS="--no-suite release-only" run_suite build-asan "ASan+UBSan build" -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
# 40 s per harness (four: under three minutes); longer runs are by hand,
# tests/fuzz/README.md says how.
echo "== fuzzing: 40 s per harness"
fuzz_log=$(mktemp)
scripts/fuzz.sh 40 2>&1 | tee "$fuzz_log"
fuzz_ok=$(grep -c '^fuzz_[a-z]*: .*, clean$' "$fuzz_log")
fuzz_fail=$(grep -c '^fuzz_[a-z]*: .*, FAILED' "$fuzz_log")
passed=$((passed + fuzz_ok))
failed=$((failed + fuzz_fail))
if [ $((fuzz_ok + fuzz_fail)) -eq 0 ]; then failed=$((failed + 1)); fi   # did not build
rm -f "$fuzz_log"
if [ -s "$failure_digest" ]; then
  echo "== what failed (from the test logs)"
  cat "$failure_digest"
fi
rm -f "$failure_digest"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
