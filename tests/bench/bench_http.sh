#!/usr/bin/env bash
# HTTP throughput of rabtad against a bare libevent server, both answering GET /healthz.
#
#   tests/bench/bench_http.sh BUILD_DIR
#
# Starts a throwaway PostgreSQL, the real rabtad on it (GET /healthz answers without a
# database query), and bench_plain_server (the baseline). Runs wrk against each, alternating,
# BENCH_ROUNDS times each; prints every round with its ratio, then the median of each (and of
# the ratios) with the range beside it. Both are counted the same way: wrk's requests/s, and
# any non-2xx answer stops the run.
# Environment: BENCH_DURATION (default 10s), BENCH_CONNECTIONS (64), BENCH_THREADS (2),
# BENCH_ROUNDS (3).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_init "$@"
PLAIN=$BUILD/tests/bench/bench_plain_server
[ -x "$PLAIN" ] || die "$PLAIN is missing; build the target bench_plain_server"

bench_pg_start off
bench_rabtad_start
ROUNDS=${BENCH_ROUNDS:-3}
bench_port PPORT
"$PLAIN" 127.0.0.1 "$PPORT" >"$TMP/plain.log" 2>&1 &
PLAIN_PID=$!
BENCH_PIDS+=("$PLAIN_PID")
bench_wait_ready plain "$PLAIN_PID" "http://127.0.0.1:$PPORT/healthz"

run_wrk() { # URL -> requests/s on stdout
  local out
  out=$(bench_wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" "$1")
  if echo "$out" | grep -q "Non-2xx"; then
    die "non-2xx answers from $1: $(echo "$out" | grep Non-2xx)"
  fi
  echo "$out" | awk '/^Requests\/sec:/ {print $2}'
}

plains=() rabtads=() ratios=()
echo "wrk -t$THREADS -c$CONNS -d$DURATION GET /healthz, alternating, $ROUNDS rounds"
for round in $(seq 1 "$ROUNDS"); do
  p=$(run_wrk "http://127.0.0.1:$PPORT/healthz")
  r=$(run_wrk "http://127.0.0.1:$RPORT/healthz")
  q=$(awk -v r="$r" -v p="$p" 'BEGIN { if (p > 0) printf "%.2f", r / p; else print 0 }')
  printf '  round %s  plain libevent %s req/s   rabtad %s req/s   rabtad/plain %s\n' \
    "$round" "$p" "$r" "$q"
  plains+=("$p") rabtads+=("$r") ratios+=("$q")
done
printf 'median of %s:  plain libevent %s req/s (%s)   rabtad %s req/s (%s)   rabtad/plain %s (%s)\n' \
  "$ROUNDS" "$(bench_median "${plains[@]}")" "$(bench_range "${plains[@]}")" \
  "$(bench_median "${rabtads[@]}")" "$(bench_range "${rabtads[@]}")" \
  "$(bench_median "${ratios[@]}")" "$(bench_range "${ratios[@]}")"
