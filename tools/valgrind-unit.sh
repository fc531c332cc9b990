#!/usr/bin/env bash
# Runs every unit test under valgrind; any leak or memory error fails.
set -euo pipefail
build=${1:-build}
status=0
n=0
for t in "$build"/tests/test_*; do
  [ -x "$t" ] || continue
  case "$(basename "$t")" in test_*) ;; *) continue ;; esac
  # Only unit tests (registered with label "unit"); integration executables start servers.
  grep -q "unit/$(basename "$t")[\" ]" "$build/tests/CTestTestfile.cmake" || continue
  n=$((n + 1))
  if ! valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
       "$t" >"$build/valgrind-$(basename "$t").log" 2>&1; then
    echo "valgrind: $(basename "$t") FAILED (see $build/valgrind-$(basename "$t").log)"
    tail -40 "$build/valgrind-$(basename "$t").log"
    status=1
  fi
done
echo "valgrind: $n unit test programs checked"
exit $status
