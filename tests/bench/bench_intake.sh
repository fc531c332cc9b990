#!/usr/bin/env bash
# Durable case intake: rabtad's POST /api/v1/cases against pgbench inserting the same rows (a
# case, its two events, the citizen's "registered" notice and its send job: what
# intake stores for a signed-in citizen) one transaction per case, at the same concurrency, in
# the same run,
# with fsync and synchronous_commit on. Then: zero lost (every 201 is a stored row), the same load
# with 1,000,000 cases already stored, and status look-ups against the trivial route.
#
#   tests/bench/bench_intake.sh BUILD_DIR
#
# Environment: BENCH_DURATION (default 15s), BENCH_CONNECTIONS (64), BENCH_THREADS (2),
# BENCH_BIG (cases to pre-load for the second round; default 1000000, 0 skips it).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BENCH_DURATION=${BENCH_DURATION:-15s}
bench_init "$@"
BIG=${BENCH_BIG:-1000000}
CITIZENS=20000
export RB_BENCH_CITIZENS=$CITIZENS
HERE=$(cd "$(dirname "$0")" && pwd)
secs=${DURATION%s}

bench_pg_start on
bench_rabtad_start 8

bench_seed_citizens "$CITIZENS"

intake_round() { # label -> prints the figures; sets RATE
  local before after out ok rate rcpu pcpu pm
  pm=$(head -1 "$TMP/pgdata/postmaster.pid")
  before=$(bench_psql "SELECT count(*) FROM cases")
  rcpu=$(bench_cpu_s "$RABTAD_PID")
  pcpu=$(bench_cpu_s "$pm")
  out=$(bench_wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$HERE/wrk/submit.lua" \
        "http://127.0.0.1:$RPORT")
  sleep 1
  rcpu=$(awk -v a="$rcpu" -v b="$(bench_cpu_s "$RABTAD_PID")" 'BEGIN { print b - a }')
  pcpu=$(awk -v a="$pcpu" -v b="$(bench_cpu_s "$pm")" 'BEGIN { print b - a }')
  after=$(bench_psql "SELECT count(*) FROM cases")
  ok=$(echo "$out" | awk '/^status 201:/ {print $3}')
  ok=${ok:-0}
  rate=$(awk -v n="$ok" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
  echo "  $1: $rate durable submissions/s, p50 $(echo "$out" | awk '/^p50_ms/ {print $2}') ms, p99 $(echo "$out" | awk '/^p99_ms/ {print $2}') ms"
  echo "$out" | grep -E '^(status |4xx: |5xx: )' | sed 's/^/    /'
  # CPU per stored case: less at the mercy of other load on the machine than the rate.
  awk -v r="$rcpu" -v p="$pcpu" -v n="$((after - before))" 'BEGIN { if (n > 0)
    printf "    CPU per stored case: rabtad %.0f us, PostgreSQL %.0f us\n", r * 1e6 / n, p * 1e6 / n }'
  # Every 201 is a stored row; a few more rows may be stored than answered: the requests in
  # flight when wrk stopped (at most one per connection), whose answers it did not wait for.
  local extra=$((after - before - ok))
  if [ "$extra" -ge 0 ] && [ "$extra" -le "$CONNS" ]; then
    echo "    stored $((after - before)) rows for $ok answers 201 (+$extra in flight at the cut-off): none lost"
  else
    echo "    stored $((after - before)) rows for $ok answers 201: LOST OR DOUBLED"
    LOST=1
  fi
  RATE=$rate
}

LOST=0
echo "PostgreSQL fsync=on synchronous_commit=on; $CONNS connections, $THREADS threads, $DURATION each"
base=$(bench_pgbench_cases)
echo "  pgbench, one case per transaction (case, 2 events, registered notice, its job): $base tps"
intake_round "rabtad POST /api/v1/cases (empty database)"
empty_rate=$RATE
printf '  intake/pgbench: %s\n' "$(awk -v a="$empty_rate" -v b="$base" 'BEGIN { printf "%.2f", a / b }')"

# Status look-ups vs the trivial route.
bench_psql "SELECT c.tracking_no, right(ci.phone, 4) FROM cases c JOIN citizens ci ON ci.id = c.citizen_id WHERE c.tracking_no LIKE 'RB-%' LIMIT 5000" | tr '|' ' ' >"$TMP/tracking.txt"
export RB_BENCH_TRACKING=$TMP/tracking.txt
st=$(bench_wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" -s "$HERE/wrk/status.lua" "http://127.0.0.1:$RPORT")
if echo "$st" | grep -q Non-2xx; then
  head -3 "$TMP/tracking.txt" >&2
  curl -s "http://127.0.0.1:$RPORT/api/v1/cases/$(head -1 "$TMP/tracking.txt" | tr ' ' '?' | sed 's/?/?phone_last4=/')" >&2
  die "status look-ups failed: $(echo "$st" | grep Non-2xx)"
fi
st_rate=$(echo "$st" | awk '/^Requests\/sec:/ {print $2}')
hz_rate=$(bench_wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" "http://127.0.0.1:$RPORT/healthz" | awk '/^Requests\/sec:/ {print $2}')
echo "  status look-ups: $st_rate req/s; trivial route: $hz_rate req/s; ratio $(awk -v a="$st_rate" -v b="$hz_rate" 'BEGIN { printf "%.2f", a / b }')"

if [ "$BIG" -gt 0 ]; then
  echo "  loading $BIG cases ..."
  bench_psql "INSERT INTO cases (tracking_no, kind, status, citizen_id, channel, service_id, department_id, category, priority, sla_policy, district_id, text, language)
    SELECT 'BG-' || g, 'complaint', 'routed', (g % $CITIZENS) + 1, 'web', 'domicile_certificate', 'district_administration', 'general', 3, 'default', 'lahore', 'pre-loaded case number ' || g, 'en'
    FROM generate_series(1, $BIG) g" >/dev/null
  bench_psql "VACUUM ANALYZE cases" >/dev/null
  intake_round "rabtad POST /api/v1/cases ($(bench_psql 'SELECT count(*) FROM cases') cases stored)"
  printf '  with %s stored / empty: %s\n' "$BIG" "$(awk -v a="$RATE" -v b="$empty_rate" 'BEGIN { printf "%.2f", a / b }')"
fi
[ "$LOST" -eq 0 ] || die "rows stored differ from 201 answers"
