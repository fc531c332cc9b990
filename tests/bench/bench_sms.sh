#!/usr/bin/env bash
# The SMS channel without Kannel in the loop:
#  1. MO intake: wrk at 64 connections calling GET /sms/kannel/mo as Kannel's sms-service
#     would (unique Kannel id per request, 200,000 distinct phones, English and Urdu
#     complaints); figure: messages/s answered 200 within the run, next to a same-run pgbench
#     baseline (transactions committed, each the rows of one case, as bench_intake.sh) and the
#     same-run JSON intake rate (POST /api/v1/cases, anonymous, answered 201): all three count
#     answers. Each round also checks that every answer is a stored row (MO: the view
#     sms_received, where a complaint is stored with its case, migration 0026; JSON: cases).
#     Each round also runs the JSON submission that stores the rows an MO stores (signed in,
#     an SMS notice with its send job, an Idempotency-Key), and prints per answer the CPU of
#     rabtad and of PostgreSQL and the statements rabtad sent, for each of the three.
#  2. Outgoing dispatch: 3,000 queued messages with the plugin's rate at 50/s against a local
#     HTTP receiver standing in for sendsms (sendsms_sink.py), which logs each arrival;
#     figure: the achieved rate over the first minute and the spread per second.
#
#   tests/bench/bench_sms.sh BUILD_DIR
#
# Environment: BENCH_DURATION (15s), BENCH_CONNECTIONS (64), BENCH_THREADS (2),
# BENCH_SMS_ROUNDS (3: JSON and MO runs alternate; every round printed, the median of each
# and of the per-round MO/JSON the headline, with the range), BENCH_SMS_RATE (50),
# BENCH_SMS_MESSAGES (3000).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BENCH_DURATION=${BENCH_DURATION:-15s}
bench_init "$@"
HERE=$(cd "$(dirname "$0")" && pwd)
[ -f "$BUILD/plugins/sms_kannel.so" ] || die "$BUILD/plugins/sms_kannel.so is missing"
secs=${DURATION%s}
SMS_RATE=${BENCH_SMS_RATE:-50}
SMS_N=${BENCH_SMS_MESSAGES:-3000}
ROUNDS=${BENCH_SMS_ROUNDS:-3}
export RB_BENCH_SECRET=bench-sms-secret-0123
export RB_BENCH_PHONES=200000

bench_sink_start # SINKPORT; arrivals in $TMP/arrivals.txt

BENCH_EXTRA_YAML="  - name: sms_kannel
    config:
      secret: \"$RB_BENCH_SECRET\"
      sendsms_url: \"http://127.0.0.1:$SINKPORT/cgi-bin/sendsms\"
      rate: $SMS_RATE
      burst: 1"
export BENCH_EXTRA_YAML

bench_pg_start on
bench_rabtad_start 8

# The pgbench baseline's cases name citizens 1..20000 (as bench_intake.sh seeds them); they
# are signed in for the JSON round that stores what an SMS stores.
export RB_BENCH_CITIZENS=20000
bench_seed_citizens 20000

echo "PostgreSQL fsync=on synchronous_commit=on; $CONNS connections, $THREADS threads, $DURATION each"
base=$(bench_pgbench_cases)
echo "  pgbench, one case per transaction (case, 2 events, registered notice, its job): $base tps"

# JSON intake and MO alternate (JSON, MO, JSON, MO, ...: BENCH_SMS_ROUNDS rounds); the
# headline is the median of each with the range beside it: this machine's speed drifts by
# 15-20% within minutes, and two back-to-back single runs would compare one moment with
# another. JSON, MO and pgbench are all counted as answers within the run (201, 200,
# committed transactions); each round also checks the answers against the rows stored.
LOST=0
jsons=() mos=() ratios=() sames=() sratios=()
# What one answer cost, next to the rate (which follows the machine's other load): CPU of
# rabtad and of PostgreSQL (all its processes) per answer, and the statements rabtad sent
# (rabta_db_queries of /metrics: round trips, a batch counting once) per answer.
PM=$(head -1 "$TMP/pgdata/postmaster.pid")
queries() { curl -s "http://127.0.0.1:$RPORT/metrics" | awk '/^rabta_db_queries / {print $2}'; }
cost_start() { c_r=$(bench_cpu_s "$RABTAD_PID"); c_p=$(bench_cpu_s "$PM"); c_q=$(queries); }
cost_end() { # ANSWERS -> "rabtad N us, PostgreSQL N us, N statements per answer"
  awk -v r0="$c_r" -v r1="$(bench_cpu_s "$RABTAD_PID")" -v p0="$c_p" \
      -v p1="$(bench_cpu_s "$PM")" -v q0="$c_q" -v q1="$(queries)" -v n="$1" 'BEGIN {
    if (n > 0) printf "rabtad %.0f us, PostgreSQL %.0f us, %.3f statements per answer",
      (r1 - r0) * 1e6 / n, (p1 - p0) * 1e6 / n, (q1 - q0) / n }'
}
for round in $(seq 1 "$ROUNDS"); do
  before=$(bench_psql "SELECT count(*) FROM cases WHERE channel <> 'sms' AND tracking_no NOT LIKE 'PB-%'")
  cost_start
  out=$(RB_BENCH_ANONYMOUS=1 bench_wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" -s "$HERE/wrk/submit.lua" \
        "http://127.0.0.1:$RPORT")
  sleep 1 # the answers wrk did not wait for at the cut-off are committed meanwhile
  after=$(bench_psql "SELECT count(*) FROM cases WHERE channel <> 'sms' AND tracking_no NOT LIKE 'PB-%'")
  json_ok=$(echo "$out" | awk '/^status 201:/ {print $3}')
  json_ok=${json_ok:-0}
  json_rate=$(awk -v n="$json_ok" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
  echo "  round $round  JSON intake POST /api/v1/cases (anonymous): $json_rate submissions/s answered 201"
  echo "    JSON cost: $(cost_end "$json_ok")"
  bench_check_stored "JSON" "$json_ok" $((after - before))

  # The JSON submission that stores what an MO complaint stores: a citizen with a phone (the
  # app's signed-in citizen), the SMS that tells them the tracking number with its send job
  # (the "registered" notice; an MO's reply), an idempotency key (Kannel's %I). An MO also adds
  # its citizen the first time a phone writes; this one finds it (and looks up the sign-in).
  before=$(bench_psql "SELECT count(*) FROM idempotency_keys WHERE key LIKE 'bench-%'")
  cost_start
  out=$(RB_BENCH_IDEMPOTENCY=1 bench_wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" -s "$HERE/wrk/submit.lua" \
        "http://127.0.0.1:$RPORT")
  sleep 1
  after=$(bench_psql "SELECT count(*) FROM idempotency_keys WHERE key LIKE 'bench-%'")
  same_ok=$(echo "$out" | awk '/^status 201:/ {print $3}')
  same_ok=${same_ok:-0}
  same_rate=$(awk -v n="$same_ok" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
  echo "  round $round  JSON POST /api/v1/cases storing an SMS's rows (signed in, SMS notice, Idempotency-Key): $same_rate submissions/s answered 201"
  echo "    JSON (same rows) cost: $(cost_end "$same_ok")"
  bench_check_stored "JSON (same rows)" "$same_ok" $((after - before))

  before=$(bench_psql "SELECT count(*) FROM sms_received")
  cases_before=$(bench_psql "SELECT count(*) FROM cases WHERE channel = 'sms'")
  cost_start
  out=$(bench_wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$HERE/wrk/sms_mo.lua" \
        "http://127.0.0.1:$RPORT")
  sleep 1
  after=$(bench_psql "SELECT count(*) FROM sms_received")
  cases_after=$(bench_psql "SELECT count(*) FROM cases WHERE channel = 'sms'")
  ok=$(echo "$out" | awk '/^status 200:/ {print $3}')
  ok=${ok:-0}
  stored=$((after - before))
  mo_rate=$(awk -v n="$ok" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
  ratio=$(awk -v a="$mo_rate" -v b="$json_rate" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print 0 }')
  same=$(awk -v a="$mo_rate" -v b="$same_rate" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print 0 }')
  echo "  round $round  MO GET /sms/kannel/mo: $mo_rate messages/s answered 200 ($stored SMS received, $((cases_after - cases_before)) cases), p50 $(echo "$out" | awk '/^p50_ms/ {print $2}') ms, p99 $(echo "$out" | awk '/^p99_ms/ {print $2}') ms; MO/JSON $ratio, MO/JSON (same rows) $same"
  echo "    MO cost: $(cost_end "$ok")"
  echo "$out" | grep -E '^(status |4xx: )' | sed 's/^/    /'
  bench_check_stored "MO" "$ok" "$stored"
  jsons+=("$json_rate") mos+=("$mo_rate") ratios+=("$ratio") sames+=("$same_rate") sratios+=("$same")
done
med_mo=$(bench_median "${mos[@]}")
printf '  median of %s rounds: JSON intake %.0f/s (%s), MO %.0f/s (%s), MO/JSON %s (%s)\n' "$ROUNDS" \
  "$(bench_median "${jsons[@]}")" "$(bench_range "${jsons[@]}")" \
  "$med_mo" "$(bench_range "${mos[@]}")" \
  "$(bench_median "${ratios[@]}")" "$(bench_range "${ratios[@]}")"
printf '  median of %s rounds: JSON storing an SMS'"'"'s rows %.0f/s (%s), MO/JSON (same rows) %s (%s)\n' "$ROUNDS" \
  "$(bench_median "${sames[@]}")" "$(bench_range "${sames[@]}")" \
  "$(bench_median "${sratios[@]}")" "$(bench_range "${sratios[@]}")"
printf '  MO/pgbench (median MO): %s   (targets: MO >= 5000/s and MO/JSON >= 0.5)\n' \
  "$(awk -v a="$med_mo" -v b="$base" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')"

# ---- outgoing dispatch: a fresh rabtad (the MO replies are dropped with their jobs) -------
stop_pid "$RABTAD_PID"
bench_psql "DELETE FROM jobs; UPDATE messages SET status = 'failed' WHERE status = 'queued'" >/dev/null
bench_rabtad_start 8
: >"$TMP/arrivals.txt"
bench_psql "SELECT count(*) FROM rabta_message_queue(
  (SELECT array_agg('sms'::text) FROM generate_series(1, $SMS_N) g),
  (SELECT array_agg('+92302' || lpad(g::text, 7, '0') ORDER BY g) FROM generate_series(1, $SMS_N) g),
  (SELECT array_agg('Rabta bench message ' || g ORDER BY g) FROM generate_series(1, $SMS_N) g),
  template => (SELECT array_agg('bench'::text) FROM generate_series(1, $SMS_N) g),
  language => (SELECT array_agg('en'::text) FROM generate_series(1, $SMS_N) g))" >/dev/null
expect=$(awk -v n="$SMS_N" -v r="$SMS_RATE" 'BEGIN { printf "%d", n / r }')
echo "  dispatch: $SMS_N messages queued at once, rate $SMS_RATE/s (burst 1): about ${expect}s"
limit=$((expect * 2 + 30))
for _ in $(seq 1 "$limit"); do
  [ "$(wc -l <"$TMP/arrivals.txt")" -ge "$SMS_N" ] && break
  sleep 1
done
sleep 2
python3 - "$TMP/arrivals.txt" "$SMS_RATE" "$SMS_N" <<'PY'
import sys
rows = [x.split() for x in open(sys.argv[1]) if x.strip()]
# only this part's messages (+92302...): a late reply of part 1 would not count
late = [r for r in rows if not (len(r) > 1 and r[1].startswith("+92302"))]
rows = [r for r in rows if len(r) > 1 and r[1].startswith("+92302")]
ts = sorted(float(r[0]) for r in rows)
tos = [r[1] for r in rows]
if late:
    print("    (%d late arrivals of part 1's replies left out)" % len(late))
rate, n = float(sys.argv[2]), int(sys.argv[3])
if not ts:
    print("    no message arrived"); sys.exit(1)
t0 = ts[0]
minute = [t for t in ts if t - t0 < 60.0]
per_sec = [0] * 60
for t in minute:
    per_sec[int(t - t0)] += 1
achieved = len(minute) / 60.0
overall = (len(ts) - 1) / (ts[-1] - t0) if len(ts) > 1 else 0
dup = len(tos) - len(set(tos))
print("    arrivals: %d of %d, %d distinct recipients, %d sent twice" % (len(ts), n, len(set(tos)), dup))
print("    first minute: %.2f msg/s (%.1f%% of %g)   whole run: %.2f msg/s over %.1f s"
      % (achieved, 100 * achieved / rate, rate, overall, ts[-1] - t0))
print("    per second in the first minute: min %d, max %d" % (min(per_sec[1:59]), max(per_sec)))
PY
sent=$(bench_psql "SELECT count(*) FROM messages WHERE template = 'bench' AND status = 'sent'")
dead=$(bench_psql "SELECT count(*) FROM jobs WHERE kind = 'message.send.sms' AND state = 'dead'")
echo "    marked sent: $sent; dead jobs: $dead; sends that got no answer and were retried: $(grep -c 'Kannel: ' "$TMP/rabtad.log" || true)"
[ "$LOST" -eq 0 ] || die "rows stored differ from the answers (see LOST OR DOUBLED above)"
