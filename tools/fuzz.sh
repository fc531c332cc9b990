#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (in BUILD_FUZZ, default build-fuzz) and runs each
# for FUZZ_SECONDS (default 60) on its seed corpus tests/fuzz/corpus/<name>/, adding what it
# finds to a working corpus in BUILD_FUZZ/corpus/<name>/ (the seeds stay as committed).
# Prints the executions of each target; stops at the first crash with the input's file.
#   tools/fuzz.sh [TARGET...]        all targets when none is named
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_FUZZ=${BUILD_FUZZ:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
command -v clang >/dev/null || { echo "fuzz: clang is missing (tools/deps.sh --fuzz installs it)" >&2; exit 1; }
if [ ! -f "$BUILD_FUZZ/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_FUZZ" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRB_FUZZ=ON >/dev/null
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do t=$(basename "$f" .c); targets+=("${t#fuzz_}"); done
fi
cmake --build "$BUILD_FUZZ" -j "${JOBS:-2}" --target $(printf 'fuzz_%s ' "${targets[@]}") >/dev/null
for t in "${targets[@]}"; do
  work="$BUILD_FUZZ/corpus/$t"
  mkdir -p "$work" "$BUILD_FUZZ/crashes"
  log="$BUILD_FUZZ/fuzz_$t.log"
  if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
       "$BUILD_FUZZ/fuzz/fuzz_$t" -max_total_time="$FUZZ_SECONDS" -max_len=8192 -timeout=10 \
       -rss_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$BUILD_FUZZ/crashes/$t-" \
       "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
    echo "fuzz $t: FAILED; see $log" >&2
    grep -E "ERROR|SUMMARY|Test unit written" "$log" >&2 || tail -20 "$log" >&2
    exit 1
  fi
  execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || true)
  [ -n "$execs" ] || execs=$(grep -Eo '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  echo "fuzz $t: ${execs:-?} executions in ${FUZZ_SECONDS}s, no crash"
done
