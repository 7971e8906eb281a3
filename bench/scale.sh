#!/usr/bin/env bash
# bench/scale.sh — what a change costs as a pool grows (issue: incremental data plane).
#
# Commits children into one pool (the real API path, 4 clients) up to each N in SIZES, and at
# each size reports:
#   - commit p50/p99 over the last tenth of the commits that reached N, and commits/s;
#   - reserve -> commit -> release cycles/s with 4 clients (bench/cycle.py, fresh names);
#   - commit 200 -> first correct answer on the same node (bench/latency.py);
#   - pdm's RSS, and RSS per child zone;
#   - restart: `pdm serve` start -> /readyz 200 and the newest child answered, pinned to one
#     core like the rest of the run (restart_1cpu) and with the machine's two cores, as a
#     restarting server has them (restart_2cpu).
# It ends with the ratio commit p50 at the largest N / at the smallest. The server is pinned to
# CPU 0, the clients to CPU 1. Benchmarks report; they do not assert.
#
# Env: SIZES (default "1000 10000"; add 100000 for the issue's full run, which takes long until
#      commits stop costing O(pool))  DURATION (cycle run, s, default 10)  PDM_BIN  DATABASE
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SIZES=${SIZES:-"1000 10000"}
DURATION=${DURATION:-10}
POOL=example.test
MAX_SECONDS=${MAX_SECONDS:-7200}
BENCH_NAME=scale
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_pdm_bin
api_setup

start_pdm() { # [want] [cpus]: sets PDM_PID and READY_S, seconds from start to ready (readyz 200 and want answered)
    local t0 want=${1:-} cpus=${2:-0}
    t0=$(date +%s.%N)
    PDM_LOG=${PDM_LOG:-warn} taskset -c "$cpus" "$PDM_BIN" --database "$DB" serve \
        --http "127.0.0.1:$HTTP_PORT" --dns "127.0.0.1:$DNS_PORT" >>"$TMP/pdm.log" 2>&1 &
    PDM_PID=$!
    PIDS+=("$PDM_PID")
    watchdog "$PDM_PID"
    for _ in $(seq 1 3000); do
        if curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null; then
            [[ -z $want ]] && break
            [[ $(dig +short +norecurse -p "$DNS_PORT" @127.0.0.1 "$want" A 2>/dev/null) != "" ]] && break
        fi
        kill -0 "$PDM_PID" 2>/dev/null || { tail -n 30 "$TMP/pdm.log" >&2; die "pdm exited"; }
        sleep 0.05
    done
    READY_S=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')
}

start_pdm
log "pdm pid $PDM_PID on $BASE (CPU 0), database $DB; sizes: $SIZES"
RSS0=$(awk '/VmRSS/ {print $2}' "/proc/$PDM_PID/status")

have=0
first_p50=
printf '\n%-8s %-12s %-14s %-14s %-12s %-10s %-12s %-14s %-14s\n' children commits/s commit_p50_ms commit_p99_ms cycles/s rss_MiB KiB/child restart_1cpu_s restart_2cpu_s
for n in $SIZES; do
    out=$(taskset -c 1 python3 bench/fill.py "$BASE" "$TOKEN" "$POOL" "$have" "$n" 4) ||
        { printf '%s\n' "$out" >&2; die "filling to $n failed"; }
    have=$n
    line=$(grep '^RESULT' <<<"$out")
    get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
    p50=$(get commit_p50_ms)
    [[ -z $first_p50 ]] && first_p50=$p50
    cyc=$(timeout $((DURATION + 120)) taskset -c 1 python3 bench/cycle.py "$BASE" "$TOKEN" "$POOL" "$DURATION" 4 |
        sed -n 's/.*cycles_per_s=\([^ ]*\).*/\1/p')
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$PDM_PID/status")
    per=$(awk -v r="$rss" -v r0="$RSS0" -v n="$n" 'BEGIN {printf "%.1f", (r - r0) / n}')
    kill -TERM "$PDM_PID"
    wait "$PDM_PID" 2>/dev/null || true
    start_pdm "c$((n - 1)).$POOL" 0,1
    restart2=$READY_S
    kill -TERM "$PDM_PID"
    wait "$PDM_PID" 2>/dev/null || true
    start_pdm "c$((n - 1)).$POOL"
    restart=$READY_S
    printf '%-8s %-12s %-14s %-14s %-12s %-10s %-12s %-14s %-14s\n' "$n" "$(get commits_per_s)" "$p50" \
        "$(get commit_p99_ms)" "${cyc:-n/a}" "$((rss / 1024))" "$per" "$restart" "$restart2"
    printf 'commit 200 -> first correct answer (same node), 20 commits: '
    timeout 300 taskset -c 1 python3 bench/latency.py "$BASE" "$TOKEN" "$POOL" 127.0.0.1 "$DNS_PORT" 20 |
        tail -n 1 || true
done
printf '\ncommit p50 at %s / at %s children: %s (target <= 1.3)\n' "$have" "${SIZES%% *}" "$(ratio "$p50" "$first_p50")"
