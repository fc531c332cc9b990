#!/usr/bin/env bash
# The IVR channel's FastAGI side under load: one rabtad (plugin ivr_asterisk) and a load
# generator playing Asterisk's side of many hotline calls (agi_load.c): new calls at
# BENCH_IVR_RATE a second (200) until BENCH_IVR_CALLS (1,200) have started; each picks a
# language, presses an invalid key BENCH_IVR_LOOPS times (6) at the main menu with each prompt
# "playing" for BENCH_IVR_PLAY_MS (600 ms), then asks for status and is hung up by rabtad.
# Figures: the most calls connected at once; the time from a keypad answer to rabtad's next
# command (p50, p99, max) as the C load generator measures it end to end, from the key written
# to its socket to the command's arrival at its socket ("wire": the kernel's receive
# timestamp) and to the generator reading it ("read": plus its own loop's delay); the same
# inside rabtad (the plugin's own histogram from reading a reply to writing the next command,
# logged at stop); and rabtad's memory per active call (RSS at the peak minus
# RSS before, over the peak's calls). BENCH_IVR_ROUNDS (5) rounds, each with a fresh rabtad;
# every round is printed, and the headline is the median of the rounds with their range.
# BENCH_IVR_FIFO=1 (root) runs rabtad's threads SCHED_FIFO: on a machine shared with other
# work, what is left of the time is then rabtad's code and the kernel, not the wait for a CPU
# (a diagnostic: the headline figures are from runs without it).
#
#   tests/bench/bench_ivr.sh BUILD_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_init "$@"
RATE=${BENCH_IVR_RATE:-200}
CALLS=${BENCH_IVR_CALLS:-1200}
PLAY=${BENCH_IVR_PLAY_MS:-600}
LOOPS=${BENCH_IVR_LOOPS:-6}
ROUNDS=${BENCH_IVR_ROUNDS:-5}
FIFO=${BENCH_IVR_FIFO:-0}
LOAD=$BUILD/tests/bench/bench_agi_load
[ -x "$LOAD" ] || die "$LOAD is missing; build the benchmarks"
[ -f "$BUILD/plugins/ivr_asterisk.so" ] || die "$BUILD/plugins/ivr_asterisk.so is missing"
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"

bench_port AGIPORT
mkdir -p "$TMP/rec"
BENCH_EXTRA_YAML="  - name: ivr_asterisk
    config:
      agi_listen: \"127.0.0.1:$AGIPORT\"
      recordings_dir: \"$TMP/rec\"
      menu_tries: 9"
BENCH_LOG_LEVEL=info # the plugin logs its own latency figures at stop
bench_pg_start off
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$RABTAD_PID/status"; }
field() { echo "$1" | sed -n "s/.*$2 \([0-9.]*\).*/\1/p"; }
lat() { # OUT SECTION KEY: the value of KEY in the generator's SECTION ("wire_ms", "read_ms")
  echo "$1" | awk -v sec="$2" -v k="$3" '{ for (i = 1; i <= NF; i++) if ($i == sec)
    for (j = i + 1; j < NF; j += 2) if ($j == k) { print $(j + 1); exit } }'; }
P50=() P99=() MAXL=() R99=() PEAKS=() IN99=() KIB=()
echo "ivr: $ROUNDS rounds of $CALLS calls at $RATE/s, $LOOPS keys each$([ "$FIFO" = 1 ] &&
  echo ", rabtad SCHED_FIFO"); load average $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
  bench_rabtad_start
  if [ "$FIFO" = 1 ]; then
    for t in /proc/"$RABTAD_PID"/task/*; do
      chrt -f -p 1 "${t##*/}" || die "chrt: SCHED_FIFO needs root"
    done
  fi
  RSS0=$(rss)
  : >"$TMP/rss.txt"
  ( while kill -0 "$RABTAD_PID" 2>/dev/null; do rss >>"$TMP/rss.txt"; sleep 0.1; done ) &
  SAMPLER=$!
  BENCH_PIDS+=("$SAMPLER")
  OUT=$(timeout 120 "$LOAD" "$AGIPORT" "$RATE" "$CALLS" "$PLAY" "$LOOPS" 100) || {
    echo "$OUT"; tail -20 "$TMP/rabtad.log"; die "the load generator reported failed calls"; }
  kill "$SAMPLER" 2>/dev/null || true
  RSSMAX=$(sort -n "$TMP/rss.txt" | tail -1)
  stop_pid "$RABTAD_PID" # its stop logs the plugin's own reply-to-command figures
  INSIDE=$(grep -o 'FastAGI: [0-9]* replies[^"]*' "$TMP/rabtad.log" | tail -1)
  PEAK=$(field "$OUT" max_simultaneous)
  PEAKS+=("$PEAK")
  P50+=("$(lat "$OUT" wire_ms p50)")
  P99+=("$(lat "$OUT" wire_ms p99)")
  MAXL+=("$(lat "$OUT" wire_ms max)")
  R99+=("$(lat "$OUT" read_ms p99)")
  IN99+=("$(echo "$INSIDE" | sed -n 's/.*, \([0-9]*\) us (p99),.*/\1/p')")
  KIB+=("$(awk -v a="$RSS0" -v b="$RSSMAX" -v n="$PEAK" 'BEGIN { printf "%.1f", (b - a) / n }')")
  echo "ivr: round $round: $OUT; inside rabtad: ${INSIDE#FastAGI: }; RSS ${RSS0} KiB idle," \
    "${RSSMAX} KiB at the peak: ${KIB[-1]} KiB a call; load average $(cut -d' ' -f1 /proc/loadavg)"
done
echo "ivr: median of $ROUNDS rounds (range): key to next command end to end (wire) p50" \
  "$(bench_median "${P50[@]}") ms ($(bench_range "${P50[@]}")), p99 $(bench_median "${P99[@]}")" \
  "ms ($(bench_range "${P99[@]}")), max $(bench_median "${MAXL[@]}") ms" \
  "($(bench_range "${MAXL[@]}")); read by the generator p99 $(bench_median "${R99[@]}") ms" \
  "($(bench_range "${R99[@]}")); inside rabtad p99 $(bench_median "${IN99[@]}") us" \
  "($(bench_range "${IN99[@]}")); calls at once $(bench_median "${PEAKS[@]}")" \
  "($(bench_range "${PEAKS[@]}")); $(bench_median "${KIB[@]}") KiB a call ($(bench_range "${KIB[@]}"))"
