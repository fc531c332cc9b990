# Shared pieces of the benchmarks: sourced, not run. Each benchmark calls bench_init BUILD_DIR
# first; everything started through these functions is stopped by PID on exit.
#   bench_pg_start [fsync]     a throwaway PostgreSQL on a Unix socket (fsync on|off)
#   bench_rabtad_start         the real rabtad on it with the sample config, on port 0 (RPORT:
#                              the port it reports)
#   bench_port VAR             a port for another server (reserved: see below) into $VAR
#   bench_sink_start           sendsms_sink.py (Kannel's sendsms stand-in) on a reserved port
#                              (SINKPORT), each request it gets a line of $TMP/arrivals.txt
#   bench_wait_ready NAME PID URL
#   bench_wrk ARGS...          wrk bounded by a timeout; output on stdout
#   bench_pgbench_cases        pgbench tps storing one case per transaction with the rows intake stores
#   bench_median VALUES...     the median; bench_range VALUES...: "MIN-MAX"
# Rounds: a benchmark that runs several rounds prints every one, and its headline is the
# median of the rounds with their range beside it (never the best round).
#   bench_cpu_s PID...         CPU seconds used so far by these processes and their children
#   bench_seed_citizens N      N signed-in citizens, tokens "bench-token-%08d" (wrk/submit.lua)
#   bench_check_stored LABEL ANSWERS STORED   prints whether a run's answers are all stored
#                              (at most CONNS more in flight); sets LOST=1 when not
# BENCH_EXTRA_YAML (optional) is appended to the rabtad config's plugins list;
# BENCH_PG_OPTIONS (optional) to PostgreSQL's options (e.g. "-c shared_preload_libraries=
# pg_stat_statements", to see where its time goes).

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

bench_init() {
  [ $# -eq 1 ] && [ -d "$1" ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
  BUILD=$(cd "$1" && pwd)
  SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  DURATION=${BENCH_DURATION:-10s}
  CONNS=${BENCH_CONNECTIONS:-64}
  THREADS=${BENCH_THREADS:-2}
  RABTAD=$BUILD/rabtad
  command -v wrk >/dev/null || die "wrk is not installed (tools/deps.sh installs it)"
  command -v curl >/dev/null || die "curl is not installed"
  [ -x "$RABTAD" ] || die "$RABTAD is missing; build it first (cmake --build $BUILD)"
  for p in staff_inbox webhook app; do # the sample departments name these plugins
    [ -f "$BUILD/plugins/$p.so" ] || die "$BUILD/plugins/$p.so is missing; build the plugins"
  done
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ] || die "no PostgreSQL under /usr/lib/postgresql/*/bin"
  TMP=$(mktemp -d /tmp/rabta-bench.XXXXXX)
  chmod 755 "$TMP"
  BENCH_PIDS=()
  PG_STARTED=""
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

as_pg() { # a PostgreSQL command as postgres when we are root, as ourselves otherwise
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Ports for servers other than rabtad (which binds port 0): below the kernel's ephemeral
# range, so no port-0 bind or outgoing connection takes them, and locked with flock in the
# directory the integration tests' harness uses (rbtest.reserve_port), so no other benchmark
# or test takes them while this one runs. Not in a subshell: the lock is the open descriptor.
PORT_LOCK_DIR=${TMPDIR:-/tmp}/rbtest-ports
bench_port() { # VAR: sets $VAR to a reserved port
  local eph hi port fd
  eph=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  hi=$((eph - 1))
  [ "$hi" -gt 11000 ] || hi=32767
  mkdir -p "$PORT_LOCK_DIR" && chmod 1777 "$PORT_LOCK_DIR" 2>/dev/null || true
  for _ in $(seq 1 500); do
    port=$(shuf -i "10000-$hi" -n 1)
    exec {fd}>>"$PORT_LOCK_DIR/$port" || continue
    if flock -n "$fd" && python3 -c 'import socket, sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' "$port" 2>/dev/null; then
      printf -v "$1" '%s' "$port"
      return 0
    fi
    exec {fd}>&-
  done
  die "no free port to reserve in 10000-$hi"
}

bench_median() { # VALUES... -> the median (the mean of the middle two for an even count)
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "n/a"; exit }
    if (NR % 2) printf "%.2f\n", v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

bench_range() { # VALUES... -> "MIN-MAX"
  printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s-%s\n", lo, hi }'
}

stop_pid() { # SIGTERM, wait up to 10 s, then SIGKILL
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

bench_cleanup() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do stop_pid "$pid"; done
  if [ -n "$PG_STARTED" ]; then
    as_pg "$PGBIN/pg_ctl" stop -D "$TMP/pgdata" -m fast -w -t 20 >/dev/null 2>&1 ||
      stop_pid "$(head -1 "$TMP/pgdata/postmaster.pid" 2>/dev/null)"
  fi
  rm -rf "$TMP"
}

bench_pg_start() { # [fsync on|off]; sets PGPORT, PGSOCK; psql via bench_psql
  local fsync=${1:-on}
  mkdir -p "$TMP/pgdata" "$TMP/pgsock"
  chmod 700 "$TMP/pgdata"
  chmod 777 "$TMP/pgsock"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$TMP/pgdata" "$TMP/pgsock"
  as_pg "$PGBIN/initdb" -D "$TMP/pgdata" -U rabta -A trust -E UTF8 --locale=C --no-sync \
    >"$TMP/initdb.log" 2>&1 || { cat "$TMP/initdb.log" >&2; die "initdb failed"; }
  PGPORT=5432 # names the socket file in our own directory only; nothing listens on TCP
  PGSOCK=$TMP/pgsock
  as_pg "$PGBIN/pg_ctl" start -D "$TMP/pgdata" -w -t 30 -l "$TMP/pgsock/postgres.log" \
    -o "-c listen_addresses='' -c unix_socket_directories=$PGSOCK -p $PGPORT -c fsync=$fsync -c synchronous_commit=$fsync -c max_connections=200 ${BENCH_PG_OPTIONS:-}" \
    >/dev/null || { cat "$TMP/pgsock/postgres.log" >&2; die "PostgreSQL did not start"; }
  PG_STARTED=1
  as_pg "$PGBIN/createdb" -h "$PGSOCK" -p "$PGPORT" -U rabta rabta
}

bench_psql() { # SQL -> rows, unaligned
  "$PGBIN/psql" -h "$PGSOCK" -p "$PGPORT" -U rabta -d rabta -v ON_ERROR_STOP=1 -qAt -c "$1"
}

# One client (the load generator) sends what a whole province would: the per-client rate
# limits of docs/security.md are off in benches. BENCH_SERVER_YAML replaces these lines.
BENCH_NO_RATE_LIMITS='  routes:
    "POST /api/v1/cases": {rate: "off"}
    "POST /api/v1/register": {rate: "off"}
    "POST /api/v1/verify": {rate: "off"}
    "GET /api/v1/cases/:tracking": {rate: "off"}
    "POST /api/v1/staff/login": {rate: "off"}'

bench_rabtad_start() { # [pool_size]; sets RPORT (the port rabtad bound), RABTAD_PID
  local pool=${1:-4}
  cat >"$TMP/rabta.yaml" <<EOF
server:
  listen: "127.0.0.1:0"
  max_body: 1MiB
  shutdown_grace: 2s
${BENCH_SERVER_YAML-$BENCH_NO_RATE_LIMITS}
state_dir: "$TMP/state"
database:
  url: "host=$PGSOCK port=$PGPORT dbname=rabta user=rabta"
  pool_size: $pool
log:
  level: ${BENCH_LOG_LEVEL:-warn}
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
${BENCH_EXTRA_YAML:-}
EOF
  "$RABTAD" -c "$TMP/rabta.yaml" >"$TMP/rabtad.log" 2>&1 &
  RABTAD_PID=$!
  BENCH_PIDS+=("$RABTAD_PID")
  bench_rabtad_port "$RABTAD_PID" "$TMP/rabtad.log"
  bench_wait_ready rabtad "$RABTAD_PID" "http://127.0.0.1:$RPORT/healthz"
}

bench_rabtad_port() { # PID LOG: sets RPORT from "rabtad is serving http://127.0.0.1:PORT/", at most 60 s
  local pid=$1 log=$2
  RPORT=
  for _ in $(seq 1 1200); do
    RPORT=$(sed -n 's|^rabtad is serving http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$log" | tail -1)
    [ -n "$RPORT" ] && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "rabtad exited before it said its port"; }
    sleep 0.05
  done
  cat "$log" >&2
  die "rabtad did not say which port it serves within 60 s"
}

bench_wait_ready() { # NAME PID URL: until GET URL answers 200, at most 60 s
  local name=$1 pid=$2 url=$3
  for _ in $(seq 1 600); do
    kill -0 "$pid" 2>/dev/null || { cat "$TMP/$name.log" >&2; die "$name exited early"; }
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true)" = 200 ] && return 0
    sleep 0.1
  done
  cat "$TMP/$name.log" >&2
  die "$name did not answer $url within 60 s"
}

bench_wrk() { # wrk ARGS... bounded by a timeout
  local out
  out=$(timeout 300 wrk "$@" 2>&1) || die "wrk failed: $* -- $out"
  echo "$out"
}

bench_seed_citizens() { # N: distinct signed-in citizens, as the app would have them after verification
  bench_psql "INSERT INTO citizens (phone) SELECT '+92300' || lpad(g::text, 7, '0') FROM generate_series(1, $1) g;
    INSERT INTO citizen_tokens (token_hash, citizen_id, expires_at)
    SELECT sha256(convert_to('bench-token-' || lpad((c.id - m.lo + 1)::text, 8, '0'), 'UTF8')), c.id, now() + interval '1 day'
    FROM citizens c, (SELECT min(id) AS lo FROM citizens) m;" >/dev/null
}

bench_cpu_s() { # PID... -> CPU seconds (user + system) of these processes and all their
  # children, live (from their own counters) and exited (from their parent's cutime/cstime)
  python3 - "$@" <<'PY'
import os, sys
def fields(pid): # /proc/PID/stat after the command name: state, ppid, ...
    try:
        with open("/proc/%s/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    return s[s.rindex(")") + 2:].split()
children = {}
for d in os.listdir("/proc"):
    f = fields(d) if d.isdigit() else None
    if f:
        children.setdefault(f[1], []).append(d)
ticks, todo = 0, sys.argv[1:]
while todo:
    pid = todo.pop()
    f = fields(pid)
    if f:
        ticks += sum(int(x) for x in f[11:15]) # utime stime cutime cstime
        todo += children.get(pid, [])
print("%.2f" % (ticks / os.sysconf("SC_CLK_TCK")))
PY
}

bench_check_stored() { # LABEL ANSWERS STORED
  local extra=$(($3 - $2))
  if [ "$extra" -ge 0 ] && [ "$extra" -le "$CONNS" ]; then
    echo "    $1: $2 answers, $3 stored (+$extra in flight at the cut-off): none lost"
  else
    echo "    $1: $2 answers but $3 stored: LOST OR DOUBLED"
    LOST=1
  fi
}

bench_sink_start() { # sets SINKPORT; $TMP/arrivals.txt: "MONOTONIC_TIME TO" per request
  bench_port SINKPORT
  : >"$TMP/arrivals.txt"
  python3 "$SRC/tests/bench/sendsms_sink.py" "$SINKPORT" "$TMP/arrivals.txt" >"$TMP/sink.log" 2>&1 &
  BENCH_PIDS+=("$!")
  for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SINKPORT/ping" || true)" = 202 ] && break
    sleep 0.1
  done
  : >"$TMP/arrivals.txt"
}

max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b) ? a : b }'; }

bench_pgbench_cases() { # one case per transaction with the rows intake stores for it
  local secs=${DURATION%s}
  # What intake stores for a signed-in citizen's case: the case, its two events, the
  # citizen's "registered" notice (a messages row naming the routed event, to the citizen's
  # phone) and that notice's send job, through rabta_message_queue as intake stores them. The case events' trigger queues their jobs.
  cat >"$TMP/pgbench.sql" <<'SQL'
\set r random(1, 999999999999)
WITH c AS (INSERT INTO cases (tracking_no, kind, status, citizen_id, channel, service_id, department_id, category, priority, sla_policy, district_id, text, language) VALUES ('PB-' || :client_id::text || '-' || :r::text, 'complaint', 'routed', (:r::bigint % 20000) + 1, 'app', 'domicile_certificate', 'district_administration', 'general', 3, 'default', 'lahore', 'My domicile certificate has been pending for two months without any reason given', 'en') RETURNING id, citizen_id, tracking_no),
e AS (INSERT INTO case_events (case_id, actor_type, actor_id, event, from_status, to_status, data) SELECT id, 'system', x.a, x.e, x.f, x.t, '{}'::jsonb FROM c, (VALUES ('intake', 'submitted', NULL, 'submitted'), ('routing', 'routed', 'submitted', 'routed')) AS x(a, e, f, t) RETURNING id, case_id, event),
x AS (SELECT c.id, c.citizen_id, z.phone, 'Rabta: your complaint ' || c.tracking_no || ' is registered with District Administration. Keep this number to follow it.' AS body, e.id AS event_id FROM c JOIN e ON e.case_id = c.id AND e.event = 'routed' JOIN citizens z ON z.id = c.citizen_id)
SELECT count(*) FROM rabta_message_queue((SELECT array_agg('sms'::text) FROM x), (SELECT array_agg(phone) FROM x), (SELECT array_agg(body) FROM x), case_id => (SELECT array_agg(id) FROM x), citizen_id => (SELECT array_agg(citizen_id) FROM x), template => (SELECT array_agg('notice.routed'::text) FROM x), language => (SELECT array_agg('en'::text) FROM x), notice => (SELECT array_agg(true) FROM x), urgent => (SELECT array_agg(false) FROM x), event_id => (SELECT array_agg(event_id) FROM x));
SQL
  # With the same triggers and, like rabtad's own sessions, the jobs' wake-up as a notice
  # rather than a NOTIFY (migration 0018); pgbench has no use for the notices, so they are
  # not sent to it (client_min_messages), as they would only cost it printing them.
  PGOPTIONS="-c rabta.jobs_notify=client -c client_min_messages=warning" timeout 300 "$PGBIN/pgbench" -h "$PGSOCK" -p "$PGPORT" -U rabta -n -M prepared -c "$CONNS" -j "$THREADS" \
    -T "$secs" -f "$TMP/pgbench.sql" rabta 2>&1 | awk '/^tps = / {print $3}'
  # The baseline's cases are not rabtad's work: their jobs (delivery, notices) would otherwise
  # be worked off by rabtad during the rounds that follow.
  bench_psql "DELETE FROM jobs WHERE state = 'queued' AND ((payload->>'case_id')::bigint IN
                (SELECT id FROM cases WHERE tracking_no LIKE 'PB-%')
              OR (payload->>'message_id')::bigint IN
                (SELECT m.id FROM messages m JOIN cases c ON c.id = m.case_id
                 WHERE c.tracking_no LIKE 'PB-%'))" >/dev/null
}
