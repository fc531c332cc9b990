#!/usr/bin/env bash
# HTTP throughput of rabtad against a bare libevent server, both answering GET /healthz.
#
#   tests/bench/bench_http.sh BUILD_DIR
#
# Starts a throwaway PostgreSQL (initdb as the postgres user in a mktemp directory, Unix
# socket only), the real rabtad on it (GET /healthz answers without a database query), and
# bench_plain_server (the baseline). Runs wrk against each, alternating, twice each, keeps
# the better run of each, and prints both requests/s and their ratio. Everything it started
# is stopped by PID on exit. Environment: BENCH_DURATION (default 10s), BENCH_CONNECTIONS
# (64), BENCH_THREADS (2).
set -euo pipefail

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
RABTAD=$BUILD/rabtad
PLAIN=$BUILD/tests/bench/bench_plain_server

die() { echo "bench_http: $*" >&2; exit 1; }
command -v wrk >/dev/null || die "wrk is not installed (tools/deps.sh installs it)"
command -v curl >/dev/null || die "curl is not installed"
[ -x "$RABTAD" ] || die "$RABTAD is missing; build it first (cmake --build $BUILD)"
[ -x "$PLAIN" ] || die "$PLAIN is missing; build the target bench_plain_server"
for p in inbox webhook app; do # the sample departments name these plugins
  [ -f "$BUILD/plugins/$p.so" ] || die "$BUILD/plugins/$p.so is missing; build the plugins"
done
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ] || die "no PostgreSQL under /usr/lib/postgresql/*/bin"

as_pg() { # runs a PostgreSQL command as postgres when we are root, as ourselves otherwise
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

TMP=$(mktemp -d /tmp/rabta-bench.XXXXXX)
chmod 755 "$TMP"
RABTAD_PID=""
PLAIN_PID=""
PG_STARTED=""

stop_pid() { # stop_pid PID: SIGTERM, wait up to 10 s, then SIGKILL
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  stop_pid "$RABTAD_PID"
  stop_pid "$PLAIN_PID"
  if [ -n "$PG_STARTED" ]; then
    as_pg "$PGBIN/pg_ctl" stop -D "$TMP/pgdata" -m fast -w -t 20 >/dev/null 2>&1 ||
      stop_pid "$(head -1 "$TMP/pgdata/postmaster.pid" 2>/dev/null)"
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- PostgreSQL: Unix socket only ------------------------------------------------------------
mkdir -p "$TMP/pgdata" "$TMP/pgsock"
chmod 700 "$TMP/pgdata"
chmod 777 "$TMP/pgsock"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$TMP/pgdata" "$TMP/pgsock"
as_pg "$PGBIN/initdb" -D "$TMP/pgdata" -U rabta -A trust -E UTF8 --locale=C --no-sync \
  >"$TMP/initdb.log" 2>&1 || { cat "$TMP/initdb.log" >&2; die "initdb failed"; }
PGPORT=$(free_port) # names the socket file only; nothing listens on TCP
as_pg "$PGBIN/pg_ctl" start -D "$TMP/pgdata" -w -t 30 -l "$TMP/pgsock/postgres.log" \
  -o "-c listen_addresses='' -c unix_socket_directories=$TMP/pgsock -p $PGPORT -c fsync=off" \
  >/dev/null || { cat "$TMP/pgsock/postgres.log" >&2; die "PostgreSQL did not start"; }
PG_STARTED=1
as_pg "$PGBIN/createdb" -h "$TMP/pgsock" -p "$PGPORT" -U rabta rabta

# ---- rabtad ------------------------------------------------------------------------------------
RPORT=$(free_port)
cat >"$TMP/rabta.yaml" <<EOF
server:
  listen: "127.0.0.1:$RPORT"
  max_body: 1MiB
  shutdown_grace: 2s
state_dir: "$TMP/state"
database:
  url: "host=$TMP/pgsock port=$PGPORT dbname=rabta user=rabta"
  pool_size: 4
log:
  level: warn
lua_dir: "$SRC/lua"
migrations_dir: "$SRC/migrations"
plugin_dir: "$BUILD/plugins"
districts: "$SRC/config/districts.yaml"
departments: "$SRC/config/departments/*.yaml"
services: "$SRC/config/services/*.yaml"
plugins:
  - name: inbox
  - name: webhook
  - name: app
EOF
"$RABTAD" -c "$TMP/rabta.yaml" --listen "127.0.0.1:$RPORT" >"$TMP/rabtad.log" 2>&1 &
RABTAD_PID=$!

# ---- the baseline --------------------------------------------------------------------------------
PPORT=$(free_port)
"$PLAIN" 127.0.0.1 "$PPORT" >"$TMP/plain.log" 2>&1 &
PLAIN_PID=$!

wait_ready() { # wait_ready NAME PID URL: until GET URL answers 200, at most 60 s
  local name=$1 pid=$2 url=$3
  for _ in $(seq 1 600); do
    kill -0 "$pid" 2>/dev/null || { cat "$TMP/$name.log" >&2; die "$name exited early"; }
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true)" = 200 ] && return 0
    sleep 0.1
  done
  cat "$TMP/$name.log" >&2
  die "$name did not answer $url within 60 s"
}
wait_ready rabtad "$RABTAD_PID" "http://127.0.0.1:$RPORT/healthz"
wait_ready plain "$PLAIN_PID" "http://127.0.0.1:$PPORT/healthz"

run_wrk() { # run_wrk URL -> requests/s on stdout
  local out
  out=$(timeout 120 wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" "$1" 2>&1) ||
    die "wrk failed against $1: $out"
  if echo "$out" | grep -q "Non-2xx"; then
    die "non-2xx answers from $1: $(echo "$out" | grep Non-2xx)"
  fi
  echo "$out" | awk '/^Requests\/sec:/ {print $2}'
}

best_plain=0
best_rabtad=0
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b) ? a : b }'; }
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
