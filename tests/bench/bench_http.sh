#!/usr/bin/env bash
# HTTP throughput of rabtad against a bare libevent server, both answering GET /healthz.
#
#   tests/bench/bench_http.sh BUILD_DIR
#
# Starts a throwaway PostgreSQL, the real rabtad on it (GET /healthz answers without a
# database query), and bench_plain_server (the baseline). Runs wrk against each, alternating,
# twice each, keeps the better run of each, and prints both requests/s and their ratio.
# Environment: BENCH_DURATION (default 10s), BENCH_CONNECTIONS (64), BENCH_THREADS (2).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_init "$@"
PLAIN=$BUILD/tests/bench/bench_plain_server
[ -x "$PLAIN" ] || die "$PLAIN is missing; build the target bench_plain_server"

bench_pg_start off
bench_rabtad_start
PPORT=$(free_port)
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

best_plain=0
best_rabtad=0
echo "wrk -t$THREADS -c$CONNS -d$DURATION GET /healthz, alternating, twice each"
for round in 1 2; do
  p=$(run_wrk "http://127.0.0.1:$PPORT/healthz")
  echo "  round $round  plain libevent: $p req/s"
  r=$(run_wrk "http://127.0.0.1:$RPORT/healthz")
  echo "  round $round  rabtad:         $r req/s"
  best_plain=$(max "$best_plain" "$p")
  best_rabtad=$(max "$best_rabtad" "$r")
done
ratio=$(awk -v r="$best_rabtad" -v p="$best_plain" 'BEGIN { if (p > 0) printf "%.2f", r / p; else print "n/a" }')
printf 'best of 2:  plain libevent %s req/s   rabtad %s req/s   rabtad/plain %s\n' \
  "$best_plain" "$best_rabtad" "$ratio"
