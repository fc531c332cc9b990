#!/usr/bin/env bash
# The department inbox with 100,000 open cases: latency of GET /api/v1/staff/inbox for an
# officer of that department (issue: p99 under 20 ms), the plan PostgreSQL uses for it
# (auto_explain of the server's own query, not a copy of its SQL), and a baseline in the same
# run: GET /healthz on the same rabtad at the same concurrency, which measures the machine.
#   tests/bench/bench_inbox.sh BUILD_DIR
# Knobs: BENCH_INBOX_CASES (100000), BENCH_DURATION (10s), BENCH_INBOX_CONNECTIONS (8).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_init "$@"
N=${BENCH_INBOX_CASES:-100000}
C=${BENCH_INBOX_CONNECTIONS:-8}
DEPT=police

bench_pg_start on
bench_rabtad_start 4
echo "loading $N open cases of $DEPT, $((N * 2)) of another department, $((N / 2)) closed ones"
t0=$(date +%s.%N)
"$PGBIN/psql" -h "$PGSOCK" -p "$PGPORT" -U rabta -d rabta -qAt -v ON_ERROR_STOP=1 \
  -v n="$N" -v other="$((N * 2))" -v closed="$((N / 2))" -v dept="$DEPT" \
  -f "$SRC/tests/bench/bench_inbox.sql" >/dev/null
echo "  loaded in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
open=$(bench_psql "SELECT count(*) FROM cases WHERE department_id = '$DEPT' AND status <> 'closed'")
[ "$open" = "$N" ] || die "expected $N open cases of $DEPT, found $open"

echo 'bench-password-1' | "$RABTAD" staff -c "$TMP/rabta.yaml" add bench.officer \
  --role officer --department "$DEPT" --name "Bench Officer" >/dev/null
token=$(curl -sf -X POST -H 'Content-Type: application/json' \
  -d '{"username":"bench.officer","password":"bench-password-1"}' \
  "http://127.0.0.1:$RPORT/api/v1/staff/login" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])') || die "login failed"
AUTH="Authorization: Bearer $token"

# Every answer must be a full, ordered page of this department's open cases.
check_page() { # QUERY
  curl -sf -H "$AUTH" "http://127.0.0.1:$RPORT/api/v1/staff/inbox$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)
c = d["cases"]
assert len(c) == 50, len(c)
assert all(x["department"] == "'"$DEPT"'" and x["status"] != "closed" for x in c)
due = [x["resolve_due_at"] for x in c]
assert due == sorted(due), "not ordered by deadline"
assert d["next_cursor"]
print(d["next_cursor"])' || die "inbox answer$1 is wrong"
}
cursor=$(check_page "")
check_page "?cursor=$cursor" >/dev/null
check_page "?overdue=true" >/dev/null
check_page "?service=fir_registration&district=lahore" >/dev/null

latency() { # URL-PATH LABEL
  local out
  out=$(bench_wrk -t2 -c"$C" -d"$DURATION" --latency -H "$AUTH" "http://127.0.0.1:$RPORT$1")
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
  p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
  p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
  grep -q 'Non-2xx' <<<"$out" && die "$2: non-2xx answers: $out"
  printf '  %-34s %10s req/s   p50 %8s   p99 %8s\n' "$2" "$rps" "$p50" "$p99"
}
echo "wrk -t2 -c$C -d$DURATION --latency"
latency /healthz "baseline GET /healthz"
latency /api/v1/staff/inbox "inbox, first page"
latency "/api/v1/staff/inbox?cursor=$cursor" "inbox, second page (cursor)"
latency "/api/v1/staff/inbox?overdue=true" "inbox, overdue only"
latency "/api/v1/staff/inbox?service=fir_registration&district=lahore" "inbox, service + district"

# The plan of the server's own query: auto_explain in a fresh rabtad's sessions, one request.
stop_pid "$RABTAD_PID"
bench_psql "ALTER ROLE rabta SET session_preload_libraries = 'auto_explain'" >/dev/null
bench_psql "ALTER ROLE rabta SET auto_explain.log_min_duration = 0" >/dev/null
bench_psql "ALTER ROLE rabta SET auto_explain.log_analyze = on" >/dev/null
: >"$PGSOCK/postgres.log"
bench_rabtad_start 1
curl -sf -H "$AUTH" "http://127.0.0.1:$RPORT/api/v1/staff/inbox" >/dev/null || die "inbox after restart"
sleep 0.5
echo "plan of the inbox query (auto_explain, EXPLAIN ANALYZE of the server's statement):"
awk '/duration: .* plan:/ { keep = 0 } /Query Text: SELECT json_build_object\(  .tracking_no/ { keep = 1 }
     keep && !/Query Text/ { print "  " $0 }' "$PGSOCK/postgres.log" | sed -n '1,40p' | tee "$TMP/plan.txt"
grep -q 'Index' "$TMP/plan.txt" || die "the inbox query does not use an index"
