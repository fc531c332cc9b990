#!/usr/bin/env bash
# Prints how many tests the last ctest run in BUILD_DIR skipped, and which: the Python
# integration tests' "rbtest summary:" lines (a skip there is a failure unless it is listed in
# tests/integration/allowed_skips.txt) and CMocka's "[  SKIPPED ]" lines (ctest itself lists
# the tests it did not run). Reads BUILD_DIR/Testing/Temporary/LastTest.log, which holds every
# test's output, passed or not.
#   tools/test-summary.sh BUILD_DIR
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
log=$1/Testing/Temporary/LastTest.log
[ -f "$log" ] || { echo "test-summary: no $log (has ctest run in $1?)" >&2; exit 2; }
awk -v build="$1" '
  /^Command: .*\/test_[a-z0-9_]+\.py"?$/ {
    f = $0; sub(/"?$/, "", f); sub(/^.*\//, "", f); pyfiles[f] = 1
  }
  /^rbtest summary: / {
    files++
    f = $3; sub(/:$/, "", f); summarised[f] = 1
    for (i = 1; i <= NF; i++) {
      if ($(i + 1) == "run,") run += $i
      if ($(i + 1) == "skipped") skipped += $i
      if ($(i + 1) == "allowed,") allowed += $i
    }
    if ($0 !~ / 0 skipped /) detail = detail "  " substr($0, 16) "\n"
  }
  /^rbtest allowed skip: / { detail = detail "  " $0 "\n" }
  /\[  SKIPPED \] [0-9]+ test/ { cm += $4; detail = detail "  cmocka: " $0 "\n" }
  END {
    printf "test summary (%s): %d Python test(s) in %d file(s), %d skipped (%d allowed, %d counted as failures); %d CMocka test(s) skipped\n", \
      build, run, files, skipped, allowed, skipped - allowed, cm
    printf "%s", detail
    for (f in pyfiles) if (!(f in summarised))
      printf "  %s printed no rbtest summary (does it end with rbtest.main()?): its skips are not counted\n", f
  }' "$log"
