#!/usr/bin/env bash
# The web plugin's pages (docs/web.md): citizen pages against the trivial route in the same run
# (GET /healthz, as bench_http.sh uses; target: at least 0.5x its requests/s), and the staff
# inbox page with about a million cases stored (target: p99 under 200 ms).
#   tests/bench/bench_web.sh BUILD_DIR
# Knobs: BENCH_WEB_CASES (open cases of the officer's department, default 130000, at most
# 270000: bench_inbox.sql's fixture stores 3.5x that), BENCH_WEB_TOTAL (cases stored in all,
# default 1000000: the rest are closed cases of other departments), BENCH_DURATION (10s),
# BENCH_CONNECTIONS (64), BENCH_THREADS (2), BENCH_ROUNDS (3), BENCH_WEB_SKIP_CITIZEN /
# BENCH_WEB_SKIP_STAFF (set: leave out that part).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_init "$@"
N=${BENCH_WEB_CASES:-130000}
TOTAL=${BENCH_WEB_TOTAL:-1000000}
DEPT=police

bench_pg_start off
BENCH_EXTRA_YAML="  - name: web
    config:
      dir: \"$SRC/lua/web\"" bench_rabtad_start 4
BASE="http://127.0.0.1:$RPORT"

cpu_ticks() { # rabtad's user + system CPU time so far, in clock ticks
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$RABTAD_PID/stat"
}
run_wrk() { # URL [wrk args...] -> "req/s p99 rabtad-CPU-microseconds-per-request" on stdout
  local url=$1 out t0 t1 n
  shift
  t0=$(cpu_ticks)
  out=$(bench_wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$@" "$url")
  t1=$(cpu_ticks)
  grep -q "Non-2xx" <<<"$out" && die "non-2xx answers from $url: $(grep Non-2xx <<<"$out")"
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  echo "$(awk '/^Requests\/sec:/ {print $2}' <<<"$out") $(awk '$1 == "99%" {print $2}' <<<"$out")" \
    "$(awk -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" -v n="$n" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')"
}

if [ -n "${BENCH_WEB_SKIP_CITIZEN:-}" ]; then :; else
sizes="page sizes:"
for path in / /submit /track /kiosk; do
  read -r code size <<<"$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "$BASE$path")"
  [ "$code" = 200 ] || die "GET $path answered $code"
  sizes+=" $path $size bytes"
done
echo "$sizes"
ROUNDS=${BENCH_ROUNDS:-3}
echo "citizen pages: wrk -t$THREADS -c$CONNS -d$DURATION, alternating with GET /healthz," \
  "$ROUNDS rounds (every round printed; the headline is the median, never the best round);" \
  "cpu: rabtad's CPU time per request (user + system), steadier than req/s on a shared machine"
trivs=()
tcpus=()
declare -A rps_of ratio_of cpu_of
for round in $(seq 1 "$ROUNDS"); do
  read -r triv _ tcpu <<<"$(run_wrk "$BASE/healthz")"
  trivs+=("$triv")
  tcpus+=("$tcpu")
  line="  round $round  /healthz $triv req/s (cpu ${tcpu} us)"
  for path in / /submit /track; do
    read -r rps p99 cpu <<<"$(run_wrk "$BASE$path")"
    ratio=$(awk -v a="$rps" -v b="$triv" 'BEGIN { printf "%.2f", a / b }')
    line+="   $path $rps req/s = ${ratio}x (p99 $p99, cpu ${cpu} us)"
    rps_of[$path]+="$rps "
    ratio_of[$path]+="$ratio "
    cpu_of[$path]+="$cpu "
  done
  echo "$line"
done
echo "  median of $ROUNDS: /healthz $(bench_median "${trivs[@]}") req/s ($(bench_range "${trivs[@]}")), cpu $(bench_median "${tcpus[@]}") us/request"
for path in / /submit /track; do
  read -ra r <<<"${rps_of[$path]}"
  read -ra x <<<"${ratio_of[$path]}"
  read -ra c <<<"${cpu_of[$path]}"
  printf '  median of %s: %-8s %10s req/s (%s) = %sx the trivial route in the same round (%s); cpu %s us/request (%s)\n' \
    "$ROUNDS" "$path" "$(bench_median "${r[@]}")" "$(bench_range "${r[@]}")" \
    "$(bench_median "${x[@]}")" "$(bench_range "${x[@]}")" \
    "$(bench_median "${c[@]}")" "$(bench_range "${c[@]}")"
done
fi
[ -z "${BENCH_WEB_SKIP_STAFF:-}" ] || exit 0

echo "loading $N open cases of $DEPT, $((N * 2)) of another department, $((N / 2)) closed"
t0=$(date +%s.%N)
"$PGBIN/psql" -h "$PGSOCK" -p "$PGPORT" -U rabta -d rabta -qAt -v ON_ERROR_STOP=1 \
  -v n="$N" -v other="$((N * 2))" -v closed="$((N / 2))" -v dept="$DEPT" \
  -f "$SRC/tests/bench/bench_inbox.sql" >/dev/null
rest=$((TOTAL - $(bench_psql "SELECT count(*) FROM cases")))
if [ "$rest" -gt 0 ]; then
  bench_psql "INSERT INTO cases (tracking_no, kind, status, channel, service_id, department_id,
      category, priority, sla_policy, district_id, text, language, anonymous, created_at,
      updated_at, ack_due_at, resolve_due_at, closed_at)
    SELECT 'IZ-' || g, 'complaint', 'closed', 'web', 'domicile_certificate', 'revenue',
      'general', 3, 'default', 'multan', 'closed case ' || g, 'ur', false,
      now() - (g % 31536000) * interval '1 second', now(), now(), now(), now()
    FROM generate_series(1, $rest) g; ANALYZE cases" >/dev/null
fi
echo "  loaded in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s;" \
  "$(bench_psql "SELECT count(*) FROM cases") cases stored"

echo 'bench-password-1' | "$RABTAD" staff -c "$TMP/rabta.yaml" add bench.officer \
  --role officer --department "$DEPT" --name "Bench Officer" >/dev/null
token=$(curl -sf -X POST -H 'Content-Type: application/json' \
  -d '{"username":"bench.officer","password":"bench-password-1"}' "$BASE/api/v1/staff/login" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])') || die "login failed"
COOKIE="Cookie: rb_staff=$token"
rows=$(curl -sf -H "$COOKIE" "$BASE/staff/inbox" | grep -c '<a href="/staff/cases/IB-' || true)
[ "$rows" = 50 ] || die "the inbox page shows $rows cases of $DEPT, not 50"
echo "staff pages with $(bench_psql "SELECT count(*) FROM cases") cases stored (-c8), each after" \
  "the staff API's own answer to the same question (what the page costs on top of it):"
for q in "" "?overdue=true" "?service=fir_registration&district=lahore"; do
  read -r rps p99 _ <<<"$(CONNS=8 run_wrk "$BASE/api/v1/staff/inbox${q:-?}${q:+&}limit=50" \
    -H "Authorization: Bearer $token")"
  printf '  API  /api/v1/staff/inbox%-34s %8s req/s   p99 %s\n' "$q" "$rps" "$p99"
  read -r rps p99 _ <<<"$(CONNS=8 run_wrk "$BASE/staff/inbox$q" -H "$COOKIE")"
  printf '  page /staff/inbox%-38s %8s req/s   p99 %s\n' "$q" "$rps" "$p99"
done
echo 'bench-password-1' | "$RABTAD" staff -c "$TMP/rabta.yaml" add bench.oversight \
  --role oversight --name "Bench Oversight" >/dev/null
otoken=$(curl -sf -X POST -H 'Content-Type: application/json' \
  -d '{"username":"bench.oversight","password":"bench-password-1"}' "$BASE/api/v1/staff/login" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])') || die "login failed"
t0=$(date +%s.%N)
curl -sf -o "$TMP/dash.html" -H "Cookie: rb_staff=$otoken" "$BASE/staff/dashboard" ||
  die "the dashboard did not answer"
grep -q 'class="dash-dept"' "$TMP/dash.html" || die "the dashboard shows no department"
echo "oversight dashboard: first view (six monthly reports asked) took" \
  "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s"
read -r rps p99 _ <<<"$(CONNS=8 run_wrk "$BASE/staff/dashboard" -H "Cookie: rb_staff=$otoken")"
printf '  page /staff/dashboard (reports kept 60 s, refreshed behind)  %8s req/s   p99 %s\n' \
  "$rps" "$p99"
