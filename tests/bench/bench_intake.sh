#!/usr/bin/env bash
# Durable case intake: rabtad's POST /api/v1/cases against pgbench inserting the same rows (a
# case, its two events, the citizen's "registered" notice and its send job: what intake stores
# for a signed-in citizen) one transaction per case, at the same concurrency, in the same run,
# with fsync and synchronous_commit on. Then status look-ups against the trivial route, and
# intake again with BENCH_BIG cases already stored.
#
#   tests/bench/bench_intake.sh BUILD_DIR
#
# Every part runs BENCH_ROUNDS rounds, subject and baseline alternating within each round;
# every round is printed with its ratio, and the headline of each part is the median (of each
# figure and of the per-round ratios) with the range beside it, never the best round. Subject
# and baseline are counted the same way: answers within the run, divided by its duration
# (rabtad: 201 answers; pgbench: committed transactions; look-ups and /healthz: wrk's
# requests/s, any non-2xx stopping the run). Each intake round also checks the answers against
# the rows stored (none lost, none doubled).
#
# Environment: BENCH_DURATION (default 15s), BENCH_CONNECTIONS (64), BENCH_THREADS (2),
# BENCH_ROUNDS (3), BENCH_BIG (cases to pre-load for the last part; default 1000000, 0 skips
# it).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BENCH_DURATION=${BENCH_DURATION:-15s}
bench_init "$@"
ROUNDS=${BENCH_ROUNDS:-3}
BIG=${BENCH_BIG:-1000000}
CITIZENS=20000
export RB_BENCH_CITIZENS=$CITIZENS
HERE=$(cd "$(dirname "$0")" && pwd)
secs=${DURATION%s}

bench_pg_start on
bench_rabtad_start 8

bench_seed_citizens "$CITIZENS"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

stored_cases() { bench_psql "SELECT count(*) FROM cases WHERE tracking_no LIKE 'RB-%'"; }

# Until the submissions wrk did not wait for at its cut-off are committed: the count of stored
# cases stands still over half a second (at most 30 s).
settled_cases() {
  local last now
  last=$(stored_cases)
  for _ in $(seq 1 60); do
    sleep 0.5
    now=$(stored_cases)
    [ "$now" = "$last" ] && { echo "$now"; return 0; }
    last=$now
  done
  die "cases were still being stored 30 s after wrk stopped"
}

intake_round() { # LABEL -> prints the figures; sets RATE (201 answers a second)
  local before after out ok rcpu pcpu pm extra
  pm=$(head -1 "$TMP/pgdata/postmaster.pid")
  before=$(stored_cases)
  rcpu=$(bench_cpu_s "$RABTAD_PID")
  pcpu=$(bench_cpu_s "$pm")
  out=$(bench_wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$HERE/wrk/submit.lua" \
        "http://127.0.0.1:$RPORT")
  after=$(settled_cases)
  rcpu=$(awk -v a="$rcpu" -v b="$(bench_cpu_s "$RABTAD_PID")" 'BEGIN { print b - a }')
  pcpu=$(awk -v a="$pcpu" -v b="$(bench_cpu_s "$pm")" 'BEGIN { print b - a }')
  ok=$(echo "$out" | awk '/^status 201:/ {print $3}')
  ok=${ok:-0}
  RATE=$(awk -v n="$ok" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
  echo "    $1: $RATE durable submissions/s answered 201, p50 $(echo "$out" | awk '/^p50_ms/ {print $2}') ms, p99 $(echo "$out" | awk '/^p99_ms/ {print $2}') ms"
  echo "$out" | grep -E '^(status |4xx: |5xx: )' | sed 's/^/      /'
  # CPU per stored case: less at the mercy of other load on the machine than the rate.
  awk -v r="$rcpu" -v p="$pcpu" -v n="$((after - before))" 'BEGIN { if (n > 0)
    printf "      CPU per stored case: rabtad %.0f us, PostgreSQL %.0f us\n", r * 1e6 / n, p * 1e6 / n }'
  # Every 201 is a stored row; a few more rows may be stored than answered: the requests in
  # flight when wrk stopped (at most one per connection), whose answers it did not wait for.
  extra=$((after - before - ok))
  if [ "$extra" -ge 0 ] && [ "$extra" -le "$CONNS" ]; then
    echo "      stored $((after - before)) rows for $ok answers 201 (+$extra in flight at the cut-off): none lost"
  else
    echo "      stored $((after - before)) rows for $ok answers 201: LOST OR DOUBLED"
    LOST=1
  fi
}

LOST=0
echo "PostgreSQL fsync=on synchronous_commit=on; $CONNS connections, $THREADS threads, $DURATION each, $ROUNDS rounds"

# 1. Intake against pgbench storing the same rows, alternating.
echo "intake: rabtad POST /api/v1/cases vs pgbench one case per transaction (case, 2 events, registered notice, its job)"
bases=() intakes=() ratios=()
for round in $(seq 1 "$ROUNDS"); do
  base=$(printf '%.0f' "$(bench_pgbench_cases)")
  intake_round "round $round  rabtad"
  r=$(ratio "$RATE" "$base")
  echo "  round $round  pgbench $base tps   rabtad $RATE submissions/s   intake/pgbench $r"
  bases+=("$base") intakes+=("$RATE") ratios+=("$r")
done
empty_rate=$(bench_median "${intakes[@]}")
printf '  median of %s: pgbench %s tps (%s)   rabtad %s submissions/s (%s)   intake/pgbench %s (%s)\n' \
  "$ROUNDS" "$(bench_median "${bases[@]}")" "$(bench_range "${bases[@]}")" \
  "$empty_rate" "$(bench_range "${intakes[@]}")" \
  "$(bench_median "${ratios[@]}")" "$(bench_range "${ratios[@]}")"

# 2. Status look-ups vs the trivial route, alternating.
bench_psql "SELECT c.tracking_no, right(ci.phone, 4) FROM cases c JOIN citizens ci ON ci.id = c.citizen_id WHERE c.tracking_no LIKE 'RB-%' LIMIT 5000" | tr '|' ' ' >"$TMP/tracking.txt"
export RB_BENCH_TRACKING=$TMP/tracking.txt
echo "status look-ups GET /api/v1/cases/:tracking vs the trivial route GET /healthz"
sts=() hzs=() ratios=()
for round in $(seq 1 "$ROUNDS"); do
  st=$(bench_wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" -s "$HERE/wrk/status.lua" "http://127.0.0.1:$RPORT")
  if echo "$st" | grep -q Non-2xx; then
    head -3 "$TMP/tracking.txt" >&2
    curl -s "http://127.0.0.1:$RPORT/api/v1/cases/$(head -1 "$TMP/tracking.txt" | tr ' ' '?' | sed 's/?/?phone_last4=/')" >&2
    die "status look-ups failed: $(echo "$st" | grep Non-2xx)"
  fi
  st_rate=$(echo "$st" | awk '/^Requests\/sec:/ {print $2}')
  hz=$(bench_wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" "http://127.0.0.1:$RPORT/healthz")
  echo "$hz" | grep -q Non-2xx && die "/healthz failed: $(echo "$hz" | grep Non-2xx)"
  hz_rate=$(echo "$hz" | awk '/^Requests\/sec:/ {print $2}')
  r=$(ratio "$st_rate" "$hz_rate")
  echo "  round $round  status $st_rate req/s   trivial $hz_rate req/s   status/trivial $r"
  sts+=("$st_rate") hzs+=("$hz_rate") ratios+=("$r")
done
printf '  median of %s: status %s req/s (%s)   trivial %s req/s (%s)   status/trivial %s (%s)\n' \
  "$ROUNDS" "$(bench_median "${sts[@]}")" "$(bench_range "${sts[@]}")" \
  "$(bench_median "${hzs[@]}")" "$(bench_range "${hzs[@]}")" \
  "$(bench_median "${ratios[@]}")" "$(bench_range "${ratios[@]}")"

# 3. Intake with BIG cases stored, against the median of part 1.
if [ "$BIG" -gt 0 ]; then
  echo "  loading $BIG cases ..."
  bench_psql "INSERT INTO cases (tracking_no, kind, status, citizen_id, channel, service_id, department_id, category, priority, sla_policy, district_id, text, language)
    SELECT 'BG-' || g, 'complaint', 'routed', (g % $CITIZENS) + 1, 'web', 'domicile_certificate', 'district_administration', 'general', 3, 'default', 'lahore', 'pre-loaded case number ' || g, 'en'
    FROM generate_series(1, $BIG) g" >/dev/null
  bench_psql "VACUUM ANALYZE cases" >/dev/null
  echo "intake with $(bench_psql 'SELECT count(*) FROM cases') cases stored"
  bigs=() ratios=()
  for round in $(seq 1 "$ROUNDS"); do
    intake_round "round $round  rabtad"
    r=$(ratio "$RATE" "$empty_rate")
    echo "  round $round  rabtad $RATE submissions/s   / median of part 1: $r"
    bigs+=("$RATE") ratios+=("$r")
  done
  printf '  median of %s: rabtad %s submissions/s (%s)   with %s stored / before: %s (%s)\n' \
    "$ROUNDS" "$(bench_median "${bigs[@]}")" "$(bench_range "${bigs[@]}")" "$BIG" \
    "$(bench_median "${ratios[@]}")" "$(bench_range "${ratios[@]}")"
fi
[ "$LOST" -eq 0 ] || die "rows stored differ from 201 answers"
