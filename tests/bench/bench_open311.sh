#!/usr/bin/env bash
# Open311 intake next to the JSON API's, in the same run: wrk at 64 connections posting
# complaints to POST /api/v1/cases (anonymous, answered 201) and to
# POST /open311/v2/requests.json and requests.xml (form-encoded with an API key, anonymous,
# answered 201 with the service_request_id). The three alternate within every round, their
# order turning from round to round, every round is printed with Open311/JSON for each
# format, and the headline is the median of each with the range beside it. Every round also
# checks the answers against the cases stored (none lost, none doubled).
#
#   tests/bench/bench_open311.sh BUILD_DIR
#
# Environment: BENCH_DURATION (10s), BENCH_CONNECTIONS (64), BENCH_THREADS (2),
# BENCH_O311_ROUNDS (3). Target (issue 14): Open311 >= 0.8x the JSON API's durable
# submissions/s.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_init "$@"
HERE=$(cd "$(dirname "$0")" && pwd)
[ -f "$BUILD/plugins/open311.so" ] || die "$BUILD/plugins/open311.so is missing"
secs=${DURATION%s}
ROUNDS=${BENCH_O311_ROUNDS:-3}

BENCH_EXTRA_YAML="  - name: open311"
export BENCH_EXTRA_YAML
bench_pg_start on
bench_rabtad_start 8

export RB_BENCH_O311_KEY="rbk_bench_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
bench_psql "INSERT INTO api_keys (name, key_hash) VALUES ('bench', sha256(convert_to('$RB_BENCH_O311_KEY', 'UTF8')))" >/dev/null

LOST=0
run() { # LABEL CHANNEL SCRIPT [ENV=VALUE...] -> sets RATE (answers 201 a second)
  local label=$1 channel=$2 script=$3 before after out ok
  shift 3
  before=$(bench_psql "SELECT count(*) FROM cases WHERE channel = '$channel'")
  out=$(export "$@"; bench_wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency \
        -s "$HERE/wrk/$script" "http://127.0.0.1:$RPORT")
  sleep 1 # the answers wrk did not wait for at the cut-off are committed meanwhile
  after=$(bench_psql "SELECT count(*) FROM cases WHERE channel = '$channel'")
  ok=$(echo "$out" | awk '/^status 201:/ {print $3}')
  ok=${ok:-0}
  RATE=$(awk -v n="$ok" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
  printf '  round %s  %-34s %6s submissions/s answered 201, p50 %s ms, p99 %s ms\n' "$round" \
    "$label" "$RATE" "$(echo "$out" | awk '/^p50_ms/ {print $2}')" "$(echo "$out" | awk '/^p99_ms/ {print $2}')"
  echo "$out" | grep -E '^(4xx|5xx): ' | sed 's/^/    /' || true
  bench_check_stored "$label" "$ok" $((after - before))
}

echo "PostgreSQL fsync=on synchronous_commit=on; $CONNS connections, $THREADS threads, $DURATION each, $ROUNDS rounds"
jsons=() o311j=() o311x=() rj=() rx=()
run_kind() { # 0: JSON API, 1: Open311 .json, 2: Open311 .xml
  case $1 in
    0) run "JSON POST /api/v1/cases" app submit.lua RB_BENCH_ANONYMOUS=1; json=$RATE ;;
    1) run "Open311 POST requests.json" open311 open311.lua RB_BENCH_O311_FMT=json; oj=$RATE ;;
    2) run "Open311 POST requests.xml" open311 open311.lua RB_BENCH_O311_FMT=xml; ox=$RATE ;;
  esac
}
for round in $(seq 1 "$ROUNDS"); do
  # The order turns each round (JSON first, then second, then third), so that none of the
  # three always runs at the same moment of the machine's drift.
  for k in 0 1 2; do run_kind $(((k + 3 - (round - 1) % 3) % 3)); done
  ratio_j=$(awk -v a="$oj" -v b="$json" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print 0 }')
  ratio_x=$(awk -v a="$ox" -v b="$json" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print 0 }')
  echo "  round $round  Open311/JSON: .json $ratio_j  .xml $ratio_x"
  jsons+=("$json") o311j+=("$oj") o311x+=("$ox") rj+=("$ratio_j") rx+=("$ratio_x")
done
printf '  median of %s rounds: JSON %.0f/s (%s), Open311 .json %.0f/s (%s), .xml %.0f/s (%s)\n' "$ROUNDS" \
  "$(bench_median "${jsons[@]}")" "$(bench_range "${jsons[@]}")" \
  "$(bench_median "${o311j[@]}")" "$(bench_range "${o311j[@]}")" \
  "$(bench_median "${o311x[@]}")" "$(bench_range "${o311x[@]}")"
printf '  Open311/JSON (median of the rounds): .json %s (%s), .xml %s (%s)   (target: >= 0.8)\n' \
  "$(bench_median "${rj[@]}")" "$(bench_range "${rj[@]}")" \
  "$(bench_median "${rx[@]}")" "$(bench_range "${rx[@]}")"
[ "$LOST" -eq 0 ] || die "rows stored differ from the answers (see LOST OR DOUBLED above)"
