#!/usr/bin/env bash
# Two builds' durable case intake at the same moment: both rabtads on ONE throwaway PostgreSQL
# (fsync on), each loaded by its own wrk (POST /api/v1/cases as signed-in citizens, half the
# connections each), in rounds. On a shared, noisy machine two runs of bench_intake.sh minutes
# apart compare two moments as much as two builds; here every round puts both under the same
# load, so B/A says whether a change made intake faster or slower. Swap the builds for a
# second run: the position may favour one side slightly.
#
#   tests/bench/ab_intake.sh BUILD_A BUILD_B
#
# Environment: BENCH_DURATION (default 15s a round), BENCH_AB_ROUNDS (6), BENCH_CONNECTIONS
# (64, split in two). Not run by run.sh (it needs two builds).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -eq 2 ] && [ -d "$2" ] || { echo "usage: $0 BUILD_A BUILD_B" >&2; exit 2; }
BENCH_DURATION=${BENCH_DURATION:-15s}
bench_init "$1"
A=$BUILD
B=$(cd "$2" && pwd)
[ -x "$B/rabtad" ] || die "$B/rabtad is missing"
export RB_BENCH_CITIZENS=20000
HERE=$(cd "$(dirname "$0")" && pwd)
secs=${DURATION%s}
half=$((CONNS / 2))

bench_pg_start on
BUILD=$A RABTAD=$A/rabtad bench_rabtad_start 4
PORT_A=$RPORT
BUILD=$B RABTAD=$B/rabtad bench_rabtad_start 4
PORT_B=$RPORT
bench_seed_citizens "$RB_BENCH_CITIZENS"

echo "A: $A"
echo "B: $B"
echo "one PostgreSQL, fsync on; $half connections each, $DURATION a round"
for round in $(seq 1 "${BENCH_AB_ROUNDS:-6}"); do
  bench_wrk -t1 -c"$half" -d"$DURATION" -s "$HERE/wrk/submit.lua" \
    "http://127.0.0.1:$PORT_A" >"$TMP/a.out" &
  wa=$!
  bench_wrk -t1 -c"$half" -d"$DURATION" -s "$HERE/wrk/submit.lua" \
    "http://127.0.0.1:$PORT_B" >"$TMP/b.out" &
  wb=$!
  wait "$wa" "$wb"
  ra=$(awk -v s="$secs" '/^status 201:/ {printf "%.0f", $3 / s}' "$TMP/a.out")
  rb=$(awk -v s="$secs" '/^status 201:/ {printf "%.0f", $3 / s}' "$TMP/b.out")
  grep -q '^status 5xx: 0$' "$TMP/a.out" && grep -q '^status 5xx: 0$' "$TMP/b.out" ||
    die "5xx answers in round $round: $(grep -h '^status 5xx' "$TMP/a.out" "$TMP/b.out" | tr '\n' ' ')"
  echo "  round $round: A ${ra:-0} durable submissions/s, B ${rb:-0}/s, B/A $(awk -v a="${ra:-0}" -v b="${rb:-0}" 'BEGIN { printf "%.2f", a ? b / a : 0 }')"
done
