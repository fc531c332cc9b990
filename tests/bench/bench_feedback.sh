#!/usr/bin/env bash
# Proactive feedback (docs/feedback.md), on a durable PostgreSQL (fsync and synchronous_commit
# on):
#  1. CSV import: `rabtad transactions import` of BENCH_FB_IMPORT (1,000,000) transactions
#     for 360 offices (COPY in chunks of 50,000, each committed); figure: seconds and rows/s.
#     Goal: under 60 s.
#  2. POST /api/v1/transactions: wrk at 16 connections posting batches of 1,000 new
#     transactions with an office's API key for BENCH_DURATION; figure: transactions/s
#     stored (counted in the database afterwards, not from wrk). Goal: at least 20,000/s.
#  3. The outreach scheduler: BENCH_FB_DUE (100,000) transactions whose first step is due at
#     once (SMS only), the SMS plugin paced at BENCH_FB_RATE (500)/s against a local sendsms
#     sink; figures: steps run a second, SMS handed to the sink a second against the pace, and
#     rabtad's resident memory sampled every second (flat: it holds nothing per transaction).
#     Bounded by BENCH_FB_STEPS_SECS (60) seconds.
#  4. Reports over BENCH_FB_REPORT (10,000,000) transactions (written by SQL, with the roll-up
#     the server keeps, to spare the hour an import of that many would take): each report
#     (by district, office, official, service, department; the league; CSV) timed through
#     the API, 3 times each, the slowest printed. Goal: every one under 2 s.
#
# BENCH_FB_PARTS (1234) picks the parts to run.
#
#   tests/bench/bench_feedback.sh BUILD_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BENCH_DURATION=${BENCH_DURATION:-15s}
bench_init "$@"
HERE=$(cd "$(dirname "$0")" && pwd)
IMPORT_N=${BENCH_FB_IMPORT:-1000000}
DUE_N=${BENCH_FB_DUE:-100000}
RATE=${BENCH_FB_RATE:-500}
STEPS_SECS=${BENCH_FB_STEPS_SECS:-60}
REPORT_N=${BENCH_FB_REPORT:-10000000}
PARTS=${BENCH_FB_PARTS:-1234} # which of the four parts to run
secs=${DURATION%s}

bench_port SINKPORT
python3 "$HERE/sendsms_sink.py" "$SINKPORT" "$TMP/arrivals.txt" >"$TMP/sink.log" 2>&1 &
BENCH_PIDS+=("$!")

cat >"$TMP/outreach.yaml" <<EOF2
timezone: Asia/Karachi
defaults:
  delay: 2h
  channels: [sms]
  sms_wait: 24h
  agent_sample: 0
  quiet_hours: "00:00-00:00"
  per_citizen_days: 0
EOF2
BENCH_EXTRA_YAML="  - name: sms_kannel
    config:
      secret: \"bench-feedback-secret-0123\"
      sendsms_url: \"http://127.0.0.1:$SINKPORT/cgi-bin/sendsms\"
      rate: $RATE
      burst: 50
outreach: \"$TMP/outreach.yaml\""
export BENCH_EXTRA_YAML

bench_pg_start on
case $PARTS in *1*) ;; *) IMPORT_N=$DUE_N ;; esac
python3 "$HERE/feedback_gen.py" "$TMP" "$IMPORT_N"
# The configuration and the schema, through a first start of rabtad.
bench_rabtad_start 8
stop_pid "$RABTAD_PID"
CONF=$TMP/rabta.yaml
"$RABTAD" offices -c "$CONF" import "$TMP/offices.csv" >/dev/null
"$RABTAD" officials -c "$CONF" import "$TMP/officials.csv" >/dev/null

part() { case $PARTS in *$1*) return 0 ;; *) return 1 ;; esac; }
if part 1 || part 3; then
echo "== 1. CSV import of $IMPORT_N transactions (fsync on)"
t0=$(date +%s.%N)
rc=0
timeout 600 "$RABTAD" transactions -c "$CONF" import "$TMP/transactions.csv" \
  >"$TMP/import.out" 2>"$TMP/import.err" || rc=$?
t1=$(date +%s.%N)
sed 's/^/  /' "$TMP/import.out"
[ "$rc" = 0 ] || { head -20 "$TMP/import.err" >&2; die "the import failed (exit $rc)"; }
stored=$(bench_psql "SELECT count(*) FROM transactions")
awk -v a="$t0" -v b="$t1" -v n="$stored" 'BEGIN { printf "  %d stored in %.1f s: %.0f transactions/s (goal: under 60 s)\n", n, b - a, n / (b - a) }'
fi

if part 2; then
echo "== 2. POST /api/v1/transactions, batches of 1,000, 16 connections, $DURATION"
bench_rabtad_start 8
OFFICE=lahore-0
RB_BENCH_KEY=$("$RABTAD" offices -c "$CONF" key "$OFFICE" 2>/dev/null)
export RB_BENCH_KEY RB_BENCH_OFFICE=$OFFICE
before=$(bench_psql "SELECT count(*) FROM transactions")
bench_wrk -t 2 -c 16 -d "$DURATION" --timeout 30s -s "$HERE/wrk/transactions.lua" \
  "http://127.0.0.1:$RPORT" | grep -E "Requests/sec|Latency|answers" | sed 's/^/  /'
after=$(bench_psql "SELECT count(*) FROM transactions")
awk -v n=$((after - before)) -v s="$secs" 'BEGIN { printf "  %d transactions stored in %d s: %.0f transactions/s (goal: at least 20,000/s)\n", n, s, n / s }'
stop_pid "$RABTAD_PID"
fi

if part 3; then
echo "== 3. The outreach scheduler: $DUE_N first steps due at once, SMS paced at $RATE/s"
# Every transaction so far is put far off, then DUE_N of them made due now.
bench_psql "UPDATE transactions SET next_at = NULL, state = 'skipped' WHERE state = 'waiting'" >/dev/null
bench_psql "UPDATE transactions SET next_at = now(), state = 'waiting', step = 0 WHERE id IN
  (SELECT id FROM transactions ORDER BY id LIMIT $DUE_N)" >/dev/null
bench_psql "INSERT INTO jobs (kind, run_at, dedup_key, max_attempts) VALUES
  ('outreach.schedule', now(), 'outreach.schedule', 1000000)
  ON CONFLICT (dedup_key) WHERE state IN ('queued', 'running') DO UPDATE SET run_at = now()" >/dev/null
: >"$TMP/arrivals.txt"
bench_rabtad_start 8
t0=$(date +%s)
printf '  %5s %12s %12s %10s\n' second steps_run sms_sent rss_kib
for s in $(seq 1 "$STEPS_SECS"); do
  sleep 1
  run=$(bench_psql "SELECT count(*) FROM transactions WHERE id <= (SELECT id FROM transactions ORDER BY id OFFSET $((DUE_N - 1)) LIMIT 1) AND state <> 'waiting'")
  sent=$(wc -l <"$TMP/arrivals.txt")
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$RABTAD_PID/status")
  [ $((s % 5)) = 0 ] && printf '  %5d %12d %12d %10d\n' "$s" "$run" "$sent" "$rss"
  echo "$rss" >>"$TMP/rss.txt"
  [ "$run" -ge "$DUE_N" ] && [ "$sent" -ge $((RATE * s / 2)) ] && [ "$s" -ge 20 ] && break
done
t1=$(date +%s)
el=$((t1 - t0))
echo "  $run of $DUE_N steps run in ${el} s ($((run / el))/s); $sent SMS sent: $((sent / el))/s of the $RATE/s pace; rabtad RSS $(sort -n "$TMP/rss.txt" | head -1)-$(sort -n "$TMP/rss.txt" | tail -1) KiB"
stop_pid "$RABTAD_PID"
fi

if part 4; then
echo "== 4. Reports over $REPORT_N transactions"
bench_psql "INSERT INTO transactions (office_id, reference, service_id, official_id, phone,
  completed_at, state, disposition, closed_at)
  SELECT o.a[g % o.n + 1], 'R-' || g, (ARRAY['driving_licence_issue', 'driving_licence_renewal',
    'learner_permit', 'character_certificate', 'fir_registration'])[g % 5 + 1],
    o.a[g % o.n + 1] || '.' || (g % 3), '+92301' || lpad((g % 10000000)::text, 7, '0'),
    timestamptz '2026-01-01' + (g % 365) * interval '1 day', 'done',
    (ARRAY['complete', 'partial', 'refusal', 'non_contact', 'unknown'])[g % 5 + 1], now()
  FROM (SELECT array_agg(id ORDER BY id) a, count(*)::int n FROM offices) o,
    generate_series(1, $REPORT_N) g" >/dev/null
# The roll-up the server keeps as transactions and answers arrive, for these rows.
bench_psql "INSERT INTO feedback_rollup AS r (day, office_id, official_id, service_id,
    transactions, contacted_sms, complete, partial, refusal, non_contact, unknown,
    satisfied_n, dissatisfied, bribe_n, bribe)
  SELECT (completed_at AT TIME ZONE 'UTC')::date, office_id, official_id, service_id, count(*),
    count(*), count(*) FILTER (WHERE disposition = 'complete'),
    count(*) FILTER (WHERE disposition = 'partial'), count(*) FILTER (WHERE disposition = 'refusal'),
    count(*) FILTER (WHERE disposition = 'non_contact'), count(*) FILTER (WHERE disposition = 'unknown'),
    count(*) FILTER (WHERE disposition IN ('complete', 'partial')),
    count(*) FILTER (WHERE disposition = 'complete' AND id % 7 = 0),
    count(*) FILTER (WHERE disposition = 'complete'), count(*) FILTER (WHERE disposition = 'complete' AND id % 11 = 0)
  FROM transactions WHERE reference LIKE 'R-%' GROUP BY 1, 2, 3, 4
  ON CONFLICT (day, office_id, official_id, service_id) DO UPDATE SET
    transactions = r.transactions + excluded.transactions" >/dev/null
bench_psql "ANALYZE" >/dev/null
bench_rabtad_start 8
echo "bench-password-1" | "$RABTAD" staff -c "$CONF" add bench.adm --role admin >/dev/null
TOKEN=$(curl -s -X POST -H 'Content-Type: application/json' \
  -d '{"username":"bench.adm","password":"bench-password-1"}' \
  "http://127.0.0.1:$RPORT/api/v1/staff/login" | sed -n 's/.*"token": *"\([^"]*\)".*/\1/p')
echo "  $(bench_psql "SELECT count(*) FROM transactions") transactions, $(bench_psql "SELECT count(*) FROM feedback_rollup") roll-up rows"
worst_all=0
for q in "by=district" "by=office" "by=official" "by=service" "by=department" \
         "by=office&format=csv" "league" ; do
  path="/api/v1/staff/reports/feedback?from=2026-01-01&to=2026-12-31&$q"
  [ "$q" = league ] && path="/api/v1/staff/reports/feedback/league?from=2026-01-01&to=2026-12-31"
  worst=0
  for _ in 1 2 3; do
    t=$(curl -s -o /dev/null -w '%{time_total}' --max-time 30 -H "Authorization: Bearer $TOKEN" \
      "http://127.0.0.1:$RPORT$path")
    worst=$(awk -v a="$worst" -v b="$t" 'BEGIN { print (b > a) ? b : a }')
  done
  worst_all=$(awk -v a="$worst_all" -v b="$worst" 'BEGIN { print (b > a) ? b : a }')
  printf '  %-28s slowest of 3: %.3f s\n' "$q" "$worst"
done
echo "  every report under $worst_all s (goal: under 2 s)"
stop_pid "$RABTAD_PID"
fi
