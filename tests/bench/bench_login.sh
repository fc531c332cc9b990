#!/usr/bin/env bash
# Sign-ins are deliberately slow (argon2id) but must never hold up the event loop: latency of
# GET /healthz at low concurrency alone, then during a continuous burst of staff sign-ins
# (a second wrk POSTing /api/v1/staff/login on 16 connections). Printed: healthz p50/p99 in
# both runs and the sign-ins/s the server did meanwhile. Fails only when it cannot run or a
# sign-in does not answer 200 (a 503 "overloaded" from the bounded password queue counts
# separately and is printed).
#   tests/bench/bench_login.sh BUILD_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_init "$@"
bench_pg_start off
bench_rabtad_start 4
PW=bench-password-1
echo "$PW" | "$RABTAD" staff -c "$TMP/rabta.yaml" add bench.admin --role admin >/dev/null

probe() { # LABEL: healthz latency on 4 connections for DURATION
  local out
  out=$(bench_wrk -t1 -c4 -d"$DURATION" --latency "http://127.0.0.1:$RPORT/healthz")
  printf '  %-40s p50 %8s   p99 %8s   (%s req/s)\n' "$1" \
    "$(awk '$1 == "50%" { print $2 }' <<<"$out")" "$(awk '$1 == "99%" { print $2 }' <<<"$out")" \
    "$(awk '/Requests\/sec/ { print $2 }' <<<"$out")"
}
echo "GET /healthz, wrk -t1 -c4 -d$DURATION --latency"
probe "alone"
RB_BENCH_USER=bench.admin RB_BENCH_PASSWORD=$PW timeout 300 wrk -t1 -c16 \
  -d"$(( ${DURATION%s} + 4 ))s" -s "$SRC/tests/bench/wrk/login.lua" \
  "http://127.0.0.1:$RPORT/api/v1/staff/login" >"$TMP/login.out" 2>&1 &
LOGIN_PID=$!
BENCH_PIDS+=("$LOGIN_PID")
sleep 2
probe "during the sign-in burst"
wait "$LOGIN_PID" || die "the sign-in wrk failed: $(cat "$TMP/login.out")"
total=$(awk '/requests in/ { print $1 }' "$TMP/login.out")
non2xx=$(awk '/Non-2xx/ { print $NF }' "$TMP/login.out")
ok=$(bench_psql "SELECT count(*) FROM staff_tokens")
echo "  sign-ins: $(awk '/Requests\/sec/ { print $2 }' "$TMP/login.out")/s" \
     "($total answered, ${non2xx:-0} not 200, $ok sessions stored)"
[ "$ok" -gt 0 ] || die "no sign-in succeeded"
