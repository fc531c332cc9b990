#!/usr/bin/env bash
# Runs every tests/bench/bench_*.sh against a build directory and says which failed.
#   tests/bench/run.sh BUILD_DIR
set -uo pipefail
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
status=0
n=0
for b in "$here"/bench_*.sh; do
  [ -f "$b" ] || continue
  n=$((n + 1))
  echo "== $(basename "$b")"
  if ! bash "$b" "$build"; then
    echo "== $(basename "$b") FAILED"
    status=1
  fi
done
echo "== $n benchmark(s) run"
exit $status
