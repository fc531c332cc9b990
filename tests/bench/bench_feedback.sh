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
python3 "$HERE/feedback_gen.py" "$TMP" "$IMPORT_N"
# The configuration and the schema, through a first start of rabtad.
bench_rabtad_start 8
stop_pid "$RABTAD_PID"
CONF=$TMP/rabta.yaml
"$RABTAD" offices -c "$CONF" import "$TMP/offices.csv" >/dev/null
"$RABTAD" officials -c "$CONF" import "$TMP/officials.csv" >/dev/null

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
