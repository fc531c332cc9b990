#!/usr/bin/env bash
# The SLA engine at national scale, on the real rabtad and a throwaway PostgreSQL:
#   1. resident memory (VmRSS) with 1,000 open cases each with its pending sla.check job, and
#      with 1,000,000: just after start and after 10 s idle. DESIGN.md: memory does not grow
#      with the number of open cases, so RSS(1,000,000) / RSS(1,000) must stay within 1.10.
#   2. start-to-ready (exec to the first /healthz 200) with 1,000 and with 1,000,000 open cases.
#   3. bursts of 100,000 simultaneous breaches (BENCH_SLA_ROUNDS rounds, other cases each round):
#      100,000 cases pass their resolution deadline at the same second; time until sla_firings
#      holds all of them, and until every breach has told its supervisor (an inbox notification
#      and an SMS queued for the sms_kannel plugin, which sends to a loopback sink at its
#      configured rate); escalations/s, and lateness (fired_at - due) percentiles. Each round is
#      preceded by the same run's pgbench baseline (bench_pgbench_cases), and the headline is
#      the median of the rounds with their range.
#   4. timer lateness at a steady rate: 5,000 deadlines spread over 10 s (500/s).
# Cases and jobs are inserted with SQL (bench_sla_load.sql), shaped like intake's: one case
# submitted through POST /api/v1/cases is compared with a generated one first. The SLA config
# uses an always-open calendar (business time = wall time), as tests/integration/test_sla.py.
# Times are printed, never judged; the run fails (non-zero) when something is wrong: a breach
# fired twice or not at all, a non-burst case fired, a job died, payloads differ from intake's,
# memory grew with the open cases, or rabtad did not stop cleanly.
#
#   tests/bench/bench_sla.sh BUILD_DIR
#
# Environment: BENCH_SLA_SMALL (1000), BENCH_SLA_BIG (1000000), BENCH_SLA_BURST (100000),
# BENCH_SLA_STEADY (5000) deadlines over BENCH_SLA_STEADY_S (10) seconds,
# BENCH_SLA_CONCURRENCY (2000) and BENCH_SLA_BATCH (500): rabta.yaml jobs:, BENCH_SLA_POOL (8):
# database.pool_size, BENCH_SLA_FSYNC (on), BENCH_SLA_IDLE (10: seconds idle), BENCH_SLA_LEAD
# (seconds from the burst's UPDATE to its deadline; default: twice what a dry run took, + 5 s),
# BENCH_SLA_ROUNDS (3), BENCH_SLA_SMS_RATE (50: sms_kannel's rate to the sink, messages/s),
# BENCH_SLA_PGSS (0; 1: PostgreSQL with pg_stat_statements, and after each round the statements
# that took the most of its time during the burst).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_init "$@"
HERE=$(cd "$(dirname "$0")" && pwd)
SMALL=${BENCH_SLA_SMALL:-1000}
BIG=${BENCH_SLA_BIG:-1000000}
BURST=${BENCH_SLA_BURST:-100000}
CONC=${BENCH_SLA_CONCURRENCY:-2000}
BATCH=${BENCH_SLA_BATCH:-500}
POOL=${BENCH_SLA_POOL:-8}
FSYNC=${BENCH_SLA_FSYNC:-on}
IDLE=${BENCH_SLA_IDLE:-10}
STEADY=${BENCH_SLA_STEADY:-5000}
STEADY_S=${BENCH_SLA_STEADY_S:-10}
ROUNDS=${BENCH_SLA_ROUNDS:-3}
SMS_RATE=${BENCH_SLA_SMS_RATE:-50}
[ "$SMALL" -ge 2 ] && [ "$BIG" -gt "$SMALL" ] && [ "$BURST" -ge 1 ] && [ "$ROUNDS" -ge 1 ] &&
  [ $((BURST * ROUNDS)) -lt "$BIG" ] ||
  die "need 2 <= BENCH_SLA_SMALL < BENCH_SLA_BIG, 1 <= BENCH_SLA_ROUNDS, 1 <= BENCH_SLA_BURST and BURST * ROUNDS < BIG"
[ "$STEADY_S" -ge 1 ] && [ "$STEADY" -ge "$STEADY_S" ] && [ $((BURST * ROUNDS + STEADY)) -lt "$BIG" ] ||
  die "need 1 <= BENCH_SLA_STEADY_S <= BENCH_SLA_STEADY and BURST * ROUNDS + STEADY < BIG"

# The SLA policy (seconds): deadlines far in the future, nothing due while idle.
ACK=2592000  # acknowledge: 30d
RES=7776000  # resolve: 90d
WARN=3888000 # warn_at: [0.5]
L1=86400     # escalation level 2: 1d after the breach
L2=172800    # escalation level 3: 2d after the breach
SUP_PHONE=+923001234567
FAILED=0
fail() { echo "  FAILED: $*"; FAILED=1; }

# ---- PostgreSQL, the SLA config, rabtad ------------------------------------------------------

[ -f "$BUILD/plugins/sms_kannel.so" ] || die "$BUILD/plugins/sms_kannel.so is missing"
# The escalations' SMS go to sms_kannel, which sends them to a stand-in for Kannel's sendsms
# on loopback (as bench_sms.sh) at its configured rate; the figure counts them queued.
bench_sink_start # SINKPORT; arrivals in $TMP/arrivals.txt

PGSS=${BENCH_SLA_PGSS:-0}
[ "$PGSS" = 1 ] && BENCH_PG_OPTIONS="${BENCH_PG_OPTIONS:-} -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
bench_pg_start "$FSYNC"
[ "$PGSS" = 1 ] && bench_psql "CREATE EXTENSION pg_stat_statements" >/dev/null
mkdir -p "$TMP/sla"
cat >"$TMP/sla/always.yaml" <<'EOF'
timezone: UTC
hours:
  mon-sun: [00:00-24:00]
EOF
cat >"$TMP/sla/sla.yaml" <<'EOF'
calendar: always.yaml
policies:
  default:     { acknowledge: 30d, resolve: 90d, warn_at: [0.5] }
  urgent:      { acknowledge: 30d, resolve: 90d, warn_at: [0.5] }
  information: { acknowledge: 30d, resolve: 90d, warn_at: [0.5] }
  feedback:    { acknowledge: 30d, resolve: 90d, warn_at: [0.5] }
escalation:
  - after: 0s
    actions: [ { notify: supervisor, via: inbox }, { notify: supervisor, via: sms },
               { raise_priority: 1 } ]
  - after: 1d
    actions: [ { reassign: supervisor }, { notify: supervisor, via: sms } ]
  - after: 2d
    actions: [ { flag: oversight } ]
EOF
bench_port RPORT # reserved (lib.sh): the start-to-ready timing needs the port up front
cat >"$TMP/rabta.yaml" <<EOF
server:
  listen: "127.0.0.1:$RPORT"
  max_body: 1MiB
  shutdown_grace: 2s
state_dir: "$TMP/state"
database:
  url: "host=$PGSOCK port=$PGPORT dbname=rabta user=rabta"
  pool_size: $POOL
log:
  level: warn
jobs: { concurrency: $CONC, batch: $BATCH }
sla: "$TMP/sla/sla.yaml"
lua_dir: "$SRC/lua"
migrations_dir: "$SRC/migrations"
plugin_dir: "$BUILD/plugins"
districts: "$SRC/config/districts.yaml"
departments: "$SRC/config/departments/*.yaml"
services: "$SRC/config/services/*.yaml"
plugins:
  - name: staff_inbox
  - name: webhook
  - name: app
  - name: sms_kannel
    config:
      secret: "bench-sla-secret-0123"
      sendsms_url: "http://127.0.0.1:$SINKPORT/cgi-bin/sendsms"
      rate: $SMS_RATE
      burst: 1
EOF

now_s() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
cpu_s() { # PID: user + system CPU seconds it has used
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"
}

rabtad_start() { # sets RABTAD_PID, READY_S: seconds from exec to the first /healthz 200
  local t0 t1
  t0=$(now_s)
  "$RABTAD" -c "$TMP/rabta.yaml" >>"$TMP/rabtad.log" 2>&1 &
  RABTAD_PID=$!
  BENCH_PIDS+=("$RABTAD_PID")
  for _ in $(seq 1 6000); do # 120 s
    kill -0 "$RABTAD_PID" 2>/dev/null || { cat "$TMP/rabtad.log" >&2; die "rabtad exited early"; }
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
            "http://127.0.0.1:$RPORT/healthz" || true)" = 200 ]; then
      t1=$(now_s)
      READY_S=$(sub "$t1" "$t0")
      return 0
    fi
    sleep 0.02
  done
  cat "$TMP/rabtad.log" >&2
  die "rabtad did not answer /healthz within 120 s"
}

rabtad_stop() { # SIGTERM; the exit status must be 0
  local pid=$RABTAD_PID rc=0 keep=() p
  stop_pid "$pid"
  wait "$pid" || rc=$?
  for p in "${BENCH_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  BENCH_PIDS=("${keep[@]}")
  RABTAD_PID=""
  [ "$rc" -eq 0 ] || fail "rabtad exited with status $rc on SIGTERM (log: $(tail -3 "$TMP/rabtad.log"))"
}

load_cases() { # LO HI: open cases SB-LO .. SB-HI and their sla.check jobs
  "$PGBIN/psql" -h "$PGSOCK" -p "$PGPORT" -U rabta -d rabta -qAt -v ON_ERROR_STOP=1 \
    -v lo="$1" -v hi="$2" -v t0="$(date +%s)" -v ack=$ACK -v res=$RES -v warn=$WARN \
    -v l1=$L1 -v l2=$L2 -f "$HERE/bench_sla_load.sql" >/dev/null
}

# A job's payload, dedup key and run_at, and its case's deadlines, with every time made
# relative to the payload's own due, so that two cases created at different times compare.
shape() { # CASE_ID
  bench_psql "SELECT concat_ws(' ',
      (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(p) k),
      p->>'check', p->>'level', (p->>'deadline')::bigint - d,
      (SELECT string_agg(format('[%s,%s,%s,%s]', e->>0, e->>1, (e->>2)::bigint - d,
                                (e->>3)::bigint - d), ',' ORDER BY o)
       FROM jsonb_array_elements(p->'rest') WITH ORDINALITY AS r(e, o)),
      'key:' || (j.dedup_key = format('sla:%s:%s:%s:%s', p->>'case_id', p->>'check', p->>'level', d)),
      'run_at:' || (extract(epoch FROM j.run_at)::bigint - d),
      'ack_due:' || (extract(epoch FROM c.ack_due_at)::bigint - d),
      'resolve_due:' || (extract(epoch FROM c.resolve_due_at)::bigint - d),
      c.status, c.sla_policy)
    FROM jobs j CROSS JOIN LATERAL (SELECT j.payload AS p, (j.payload->>'due')::bigint AS d) x
    JOIN cases c ON c.id = (x.p->>'case_id')::bigint
    WHERE j.kind = 'sla.check' AND j.state = 'queued' AND c.id = $1"
}

idle_round() { # LABEL: restart rabtad, print ready time and RSS at start and after IDLE s
  rabtad_start
  local a b
  a=$(rss_kb "$RABTAD_PID")
  sleep "$IDLE"
  b=$(rss_kb "$RABTAD_PID")
  printf '  %-22s start-to-ready %6.3f s   VmRSS at ready %s, after %ss idle %s (x%s)\n' \
    "$1" "$READY_S" "$(mib "$a")" "$IDLE" "$(mib "$b")" \
    "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }')"
  RSS_START=$a
  RSS_IDLE=$b
}

echo "PostgreSQL fsync=$FSYNC; rabtad jobs: {concurrency: $CONC, batch: $BATCH}, database.pool_size $POOL"
echo "SLA: always-open calendar; acknowledge 30d, resolve 90d, warn_at [0.5]; escalation after 0s (the supervisor told in the staff inbox and by SMS), 1d, 2d"

# ---- 1 and 2: idle memory and start-up with SMALL and BIG open cases ------------------------

rabtad_start # applies the migrations
out=$(curl -s -w '\n%{http_code}' --max-time 10 -H 'Content-Type: application/json' \
      -d '{"kind":"complaint","anonymous":true,"service":"domicile_certificate","text":"pending for weeks, nobody answers"}' \
      "http://127.0.0.1:$RPORT/api/v1/cases")
[ "$(echo "$out" | tail -1)" = 201 ] || die "POST /api/v1/cases: $out"
tn=$(echo "$out" | head -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["tracking_no"])')
real_id=$(bench_psql "SELECT id FROM cases WHERE tracking_no = '$tn'")
# The supervisor the escalations tell: a staff inbox notification and an SMS (queued through
# rb_message_queue_many; sms_kannel sends them to the sink at its rate) per breach.
bench_psql "INSERT INTO staff (username, display_name, role, department_id, phone)
  VALUES ('bench_sup', 'Bench Supervisor', 'supervisor', 'district_administration', '$SUP_PHONE')"
load_cases 1 $((SMALL - 1))
gen_id=$(bench_psql "SELECT min(id) FROM cases WHERE tracking_no LIKE 'SB-%'")
real_shape=$(shape "$real_id")
gen_shape=$(shape "$gen_id")
echo "  sla.check job of a case from intake: $real_shape"
echo "  sla.check job generated with SQL:    $gen_shape"
[ -n "$real_shape" ] && [ "$real_shape" = "$gen_shape" ] ||
  die "the generated sla.check jobs are not shaped like intake's"
rabtad_stop

check_open() { # N: open cases and queued sla.check jobs, one per case
  local c j
  c=$(bench_psql "SELECT count(*) FROM cases WHERE status = 'routed' AND resolve_due_at > now()")
  j=$(bench_psql "SELECT count(*) FROM jobs WHERE kind = 'sla.check' AND state = 'queued'")
  [ "$c" = "$1" ] && [ "$j" = "$1" ] || fail "expected $1 open cases and sla.check jobs, found $c and $j"
}

check_open "$SMALL"
idle_round "$SMALL open cases:"
small_start=$RSS_START
small_idle=$RSS_IDLE
small_ready=$READY_S
rabtad_stop

echo "  loading $((BIG - SMALL)) more cases and their sla.check jobs ..."
t0=$(now_s)
load_cases "$SMALL" $((BIG - 1))
bench_psql "VACUUM ANALYZE cases" && bench_psql "VACUUM ANALYZE jobs"
echo "  ... $(sub "$(now_s)" "$t0") s"
check_open "$BIG"
idle_round "$BIG open cases:"
big_start=$RSS_START
big_idle=$RSS_IDLE
r_start=$(awk -v a="$big_start" -v b="$small_start" 'BEGIN { printf "%.3f", a / b }')
r_idle=$(awk -v a="$big_idle" -v b="$small_idle" 'BEGIN { printf "%.3f", a / b }')
echo "  VmRSS $BIG / $SMALL open cases: at ready x$r_start, after ${IDLE}s idle x$r_idle (limit 1.10)"
echo "  start-to-ready $BIG / $SMALL open cases: $READY_S s / $small_ready s"
awk -v r="$r_start" 'BEGIN { exit !(r <= 1.10) }' || fail "resident memory at ready grew with the open cases: x$r_start"
awk -v r="$r_idle" 'BEGIN { exit !(r <= 1.10) }' || fail "resident memory after idling grew with the open cases: x$r_idle"

# ---- 3: bursts of BURST simultaneous breaches, ROUNDS rounds --------------------------------

burst_sql() { # FILE ROUND T
  "$PGBIN/psql" -h "$PGSOCK" -p "$PGPORT" -U rabta -d rabta -qAt -v ON_ERROR_STOP=1 \
    -v n="$BURST" -v r="$2" -v t="$3" -v l1=$L1 -v l2=$L2 -f "$1" >/dev/null
}
# The deadline must come after the UPDATE commits, or the wait for the commit counts as
# lateness: time a dry run (rolled back) first unless BENCH_SLA_LEAD says how long it takes.
if [ -n "${BENCH_SLA_LEAD:-}" ]; then
  lead=$BENCH_SLA_LEAD
else
  t0=$(now_s)
  { sed 's/^COMMIT;$/ROLLBACK;/' "$HERE/bench_sla_burst.sql"; } >"$TMP/burst_dry.sql"
  burst_sql "$TMP/burst_dry.sql" 1 $(($(date +%s) + 86400))
  lead=$(awk -v d="$(sub "$(now_s)" "$t0")" 'BEGIN { printf "%d", d * 2 + 5 }')
fi
# The pgbench baseline's cases name citizens 1..20000 (as bench_intake.sh seeds them).
bench_psql "INSERT INTO citizens (phone) SELECT '+92300' || lpad(g::text, 7, '0') FROM generate_series(1, 20000) g" >/dev/null

burst_round() { # ROUND: one burst; appends to fired_rates, told_rates, bases
  local r=$1 T committed n fired told busy left cpu0 cpu rss_after span first p50 p99 pmax told_span
  local base msg0 note0 pgpid pgcpu0 pgcpu
  base=$(printf '%.0f' "$(bench_pgbench_cases)")
  bases+=("$base")
  msg0=$(bench_psql "SELECT coalesce(max(id), 0) FROM messages")
  note0=$(bench_psql "SELECT coalesce(max(id), 0) FROM case_events") # notifications name their event
  T=$(($(date +%s) + lead))
  cpu0=$(cpu_s "$RABTAD_PID")
  pgpid=$(head -1 "$TMP/pgdata/postmaster.pid")
  pgcpu0=$(bench_cpu_s "$pgpid")
  [ "$PGSS" = 1 ] && bench_psql "SELECT pg_stat_statements_reset()" >/dev/null
  burst_sql "$HERE/bench_sla_burst.sql" "$r" "$T"
  committed=$(now_s)
  n=$(bench_psql "SELECT count(*) FROM jobs WHERE kind = 'sla.check' AND state = 'queued' AND run_at = to_timestamp($T)")
  [ "$n" = "$BURST" ] || die "the burst update prepared $n jobs, not $BURST"
  printf '  round %s: pgbench baseline %s tps (one case a transaction, %s connections, %s); %s cases pass their resolve deadline at T (committed %.1f s before T)\n' \
    "$r" "$base" "$CONNS" "$DURATION" "$BURST" "$(sub "$T" "$committed")"
  awk -v c="$committed" -v t="$T" 'BEGIN { exit !(c < t) }' ||
    echo "    (the update committed after T: the lateness below includes the wait for the commit)"
  # Wait until the burst's work is done: no sla.check job due by T still queued, no sla.notify
  # job queued (a failed one waits for its retry there), no sla job running. These read the
  # queue's own indexes (cheap); the counts and times are read from the rows once, after.
  deadline=$(($(date +%s) + lead + 300))
  while :; do
    busy=$(bench_psql "SELECT EXISTS (SELECT 1 FROM jobs WHERE kind = 'sla.check' AND state = 'queued'
                                      AND run_at <= to_timestamp($T))
                          OR EXISTS (SELECT 1 FROM jobs WHERE kind = 'sla.notify' AND state = 'queued')
                          OR EXISTS (SELECT 1 FROM jobs WHERE state = 'running' AND kind LIKE 'sla.%')")
    [ "$busy" = f ] && break
    [ "$(date +%s)" -lt "$deadline" ] || { fail "the burst's jobs were not done within 300 s of T"; break; }
    sleep 0.5
  done
  fired=$(bench_psql "SELECT count(*) FROM sla_firings")
  [ "$fired" -ge $((BURST * r)) ] || fail "only $fired of $((BURST * r)) breaches fired"
  told=$(bench_psql "SELECT least((SELECT count(*) FROM staff_notifications WHERE event_id > $note0),
                                  (SELECT count(*) FROM messages WHERE id > $msg0 AND template = 'sla.escalated'))")
  [ "$told" -ge "$BURST" ] || fail "only $told of $BURST escalations told their people"
  for _ in $(seq 1 300); do
    left=$(bench_psql "SELECT count(*) FROM jobs WHERE kind IN ('sla.check', 'sla.notify') AND run_at <= to_timestamp($T)")
    [ "$left" = 0 ] && break
    sleep 0.1
  done
  [ "$left" = 0 ] || fail "$left burst jobs still in the queue 30 s after the last firing"
  sleep 2 # anything that would fire twice has had the time to
  rss_after=$(rss_kb "$RABTAD_PID")
  cpu=$(sub "$(cpu_s "$RABTAD_PID")" "$cpu0")
  pgcpu=$(sub "$(bench_cpu_s "$pgpid")" "$pgcpu0")
  rabtad_cpus+=("$cpu") pg_cpus+=("$pgcpu")

  IFS='|' read -r span first p50 p99 pmax < <(bench_psql "SELECT
      extract(epoch FROM max(fired_at)) - greatest($T, $committed),
      extract(epoch FROM min(fired_at)) - $T,
      percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM lateness)),
      percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM lateness)),
      extract(epoch FROM max(lateness))
    FROM sla_firings f JOIN bench_burst b ON b.id = f.case_id AND b.round = $r")
  told_span=$(bench_psql "SELECT extract(epoch FROM greatest(
      (SELECT max(created_at) FROM staff_notifications WHERE event_id > $note0),
      (SELECT max(created_at) FROM messages WHERE id > $msg0 AND template = 'sla.escalated')))
    - greatest($T, $committed)")
  fired_rates+=("$(awk -v n="$BURST" -v s="$span" 'BEGIN { printf "%.0f", n / s }')")
  told_rates+=("$(awk -v n="$BURST" -v s="$told_span" 'BEGIN { printf "%.0f", n / s }')")
  printf '    all %s fired %.2f s after T (first at T%+.3f s): %s escalations/s\n' "$BURST" "$span" \
    "$first" "${fired_rates[-1]}"
  printf '    lateness (fired_at - due): p50 %.3f s, p99 %.3f s, max %.3f s\n' "$p50" "$p99" "$pmax"
  printf '    all %s told their supervisor (inbox notification + SMS queued) %.2f s after T: %s escalations/s with their messages (%.2fx pgbench)\n' \
    "$BURST" "$told_span" "${told_rates[-1]}" \
    "$(awk -v a="${told_rates[-1]}" -v b="$base" 'BEGIN { if (b > 0) printf "%.2f", a / b }')"
  echo "    CPU for the burst (a measure the machine's load hardly moves): rabtad $cpu s," \
    "PostgreSQL $pgcpu s (all its processes, the run's polling included);" \
    "VmRSS after it: $(mib "$rss_after")" \
    "(x$(awk -v a="$rss_after" -v b="$big_idle" 'BEGIN { printf "%.3f", a / b }') of idle)"
  [ "$PGSS" = 1 ] && pgss_top
  check_round "$r" "$T"
}

pgss_top() { # the statements that took the most of PostgreSQL's time since the reset
  echo "    pg_stat_statements (top 12 by total time; calls, total ms, ms/call, rows):"
  bench_psql "SELECT calls, round(total_exec_time), round(mean_exec_time::numeric, 2), rows,
      left(regexp_replace(query, '\s+', ' ', 'g'), 150)
    FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'
    ORDER BY total_exec_time DESC LIMIT 12" | sed 's/^/      /'
}

check_round() { # ROUND T: exactly once, all of them, nothing else
  local r=$1 T=$2 f_rows f_cases f_other f_wrong ev ev_cases esc msgs notes nxt dead running queued
  IFS='|' read -r f_rows f_cases f_other f_wrong ev ev_cases esc msgs notes nxt dead running queued \
    < <(bench_psql "SELECT
      (SELECT count(*) FROM sla_firings f JOIN bench_burst b ON b.id = f.case_id AND b.round = $r),
      (SELECT count(DISTINCT case_id) FROM sla_firings f JOIN bench_burst b ON b.id = f.case_id AND b.round = $r),
      (SELECT count(*) FROM sla_firings f WHERE NOT EXISTS (SELECT 1 FROM bench_burst b WHERE b.id = f.case_id)),
      (SELECT count(*) FROM sla_firings f JOIN bench_burst b ON b.id = f.case_id AND b.round = $r
         WHERE NOT breached OR check_kind <> 'resolve' OR level <> 0 OR due <> to_timestamp($T)),
      (SELECT count(*) FROM case_events e JOIN bench_burst b ON b.id = e.case_id AND b.round = $r
         WHERE e.event = 'sla.escalated'),
      (SELECT count(DISTINCT e.case_id) FROM case_events e JOIN bench_burst b ON b.id = e.case_id AND b.round = $r
         WHERE e.event = 'sla.escalated' AND e.data->>'level' = '1'),
      (SELECT count(*) FROM cases c JOIN bench_burst b ON b.id = c.id AND b.round = $r
         WHERE c.escalation_level = 1 AND c.priority = 2),
      (SELECT count(*) FROM messages m JOIN bench_burst b ON b.id = m.case_id AND b.round = $r
         WHERE m.channel = 'sms' AND m.to_address = '$SUP_PHONE' AND m.template = 'sla.escalated'),
      (SELECT count(*) FROM staff_notifications n JOIN bench_burst b ON b.id = n.case_id AND b.round = $r
         WHERE n.staff_id = (SELECT id FROM staff WHERE username = 'bench_sup') AND n.level = 1),
      (SELECT count(*) FROM jobs j JOIN bench_burst b ON b.id = (j.payload->>'case_id')::bigint AND b.round = $r
         WHERE j.kind = 'sla.check' AND j.state = 'queued'
           AND j.dedup_key = 'sla:' || b.id || ':resolve:1:' || ($T + $L1)),
      (SELECT count(*) FROM jobs WHERE state = 'dead'),
      (SELECT count(*) FROM jobs WHERE state = 'running' AND kind LIKE 'sla.%'),
      (SELECT count(*) FROM jobs WHERE kind = 'sla.check' AND state = 'queued')")
  echo "    checks: $f_rows firings for $f_cases burst cases ($f_other outside the bursts, $f_wrong malformed);" \
    "$ev sla.escalated events ($ev_cases cases); $esc cases at level 1, priority 2; $notes inbox" \
    "notifications and $msgs SMS to the supervisor; $nxt next-level jobs queued; $dead dead," \
    "$running sla jobs running; $queued sla.check queued"
  [ "$f_rows" = "$BURST" ] && [ "$f_cases" = "$BURST" ] && [ "$f_other" = 0 ] && [ "$f_wrong" = 0 ] ||
    fail "breaches did not fire exactly once each for the $BURST burst cases"
  [ "$ev" = "$BURST" ] && [ "$ev_cases" = "$BURST" ] || fail "sla.escalated events: $ev for $ev_cases cases, want $BURST each once"
  [ "$esc" = "$BURST" ] || fail "escalation actions applied to $esc cases, want $BURST"
  [ "$msgs" = "$BURST" ] && [ "$notes" = "$BURST" ] ||
    fail "supervisor told: $notes notifications and $msgs SMS, want $BURST each"
  [ "$nxt" = "$BURST" ] || fail "next-level sla.check jobs: $nxt, want $BURST"
  [ "$dead" = 0 ] && [ "$running" = 0 ] || fail "$dead dead and $running running sla jobs after the burst"
  [ "$queued" = "$BIG" ] || fail "$queued sla.check jobs queued after the burst, want one per open case ($BIG)"
}

fired_rates=() told_rates=() bases=() rabtad_cpus=() pg_cpus=()
for round in $(seq 1 "$ROUNDS"); do burst_round "$round"; done
printf '  median of %s rounds: %.0f escalations/s fired (%s), %.0f escalations/s with their messages (%s); pgbench %.0f tps (%s)\n' \
  "$ROUNDS" "$(bench_median "${fired_rates[@]}")" "$(bench_range "${fired_rates[@]}")" \
  "$(bench_median "${told_rates[@]}")" "$(bench_range "${told_rates[@]}")" \
  "$(bench_median "${bases[@]}")" "$(bench_range "${bases[@]}")"
printf '  median CPU per burst of %s: rabtad %.2f s (%s), PostgreSQL %.2f s (%s)\n' "$BURST" \
  "$(bench_median "${rabtad_cpus[@]}")" "$(bench_range "${rabtad_cpus[@]}")" \
  "$(bench_median "${pg_cpus[@]}")" "$(bench_range "${pg_cpus[@]}")"
sent=$(grep -c -- " $SUP_PHONE\$" "$TMP/arrivals.txt" || true)
echo "  the sink (Kannel's sendsms stand-in) received $sent escalation SMS so far (rate $SMS_RATE/s)"
[ "$sent" -gt 0 ] || fail "no escalation SMS reached the sink"

# ---- 4: timer lateness at a steady rate -------------------------------------------------------
# STEADY deadlines spread evenly over STEADY_S seconds (not all at once): how late each fires
# when the engine is not draining a backlog.
T2=$(($(date +%s) + 5))
"$PGBIN/psql" -h "$PGSOCK" -p "$PGPORT" -U rabta -d rabta -qAt -v ON_ERROR_STOP=1 \
  -v n="$STEADY" -v s="$STEADY_S" -v t="$T2" -v l1=$L1 -v l2=$L2 \
  -f "$HERE/bench_sla_steady.sql" >/dev/null
[ "$(date +%s)" -lt "$T2" ] || echo "  (the steady update committed after its first deadline)"
deadline=$((T2 + STEADY_S + 120))
while :; do
  fired=$(bench_psql "SELECT count(*) FROM sla_firings f JOIN bench_steady b ON b.id = f.case_id")
  [ "$fired" -ge "$STEADY" ] && break
  [ "$(date +%s)" -lt "$deadline" ] || { fail "only $fired of $STEADY steady deadlines fired"; break; }
  sleep 0.5
done
sleep 2
IFS='|' read -r s_rows s_cases s_p50 s_p99 s_max < <(bench_psql "SELECT count(*),
    count(DISTINCT f.case_id),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM lateness)),
    percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM lateness)),
    extract(epoch FROM max(lateness))
  FROM sla_firings f JOIN bench_steady b ON b.id = f.case_id")
printf '  steady: %s deadlines over %s s (%s/s): lateness p50 %.3f s, p99 %.3f s, max %.3f s\n' \
  "$STEADY" "$STEADY_S" "$((STEADY / STEADY_S))" "$s_p50" "$s_p99" "$s_max"
[ "$s_rows" = "$STEADY" ] && [ "$s_cases" = "$STEADY" ] ||
  fail "steady deadlines: $s_rows firings for $s_cases cases, want $STEADY each once"
rabtad_stop
grep -E '"level":"(warn|error)"|WARN|ERROR' "$TMP/rabtad.log" | head -5 | sed 's/^/  rabtad: /' || true
[ "$FAILED" -eq 0 ] || die "something was wrong (see FAILED above)"
