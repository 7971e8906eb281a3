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
#     restarting server has them (restart_2cpu);
#   - DNS CPU per 1,000 answers for a signed mix on the pool (dnsperf -D, DNS_RATE qps for
#     DNS_SECONDS), packet cache off so that every answer walks the zone table, the pool's
#     name tree and its NSEC3 chain: 40 % referrals to children (NS + DS), 30 % answers from
#     child zones, 20 % absent names (NSEC3 proofs from the pool's chain of N), 10 % apex SOA.
#     The same 1,000 children and 5,000 absent names at every N, asked once to warm the
#     signature cache and then counted, so what changes between sizes is only the size of the
#     pool (not how many fresh signatures a run needs).
# It ends with the ratios commit p50 and DNS CPU per answer at the largest N / at the smallest. The server is pinned to
# CPU 0, the clients to CPU 1. Benchmarks report; they do not assert.
#
# Env: SIZES (default "1000 10000"; add 100000 for the issue's full run, which takes long until
#      commits stop costing O(pool))  DURATION (cycle run, s, default 10)  PDM_BIN  DATABASE
#      DNS_RATE (default 20000)  DNS_SECONDS (default 5)
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
DNS_RATE=${DNS_RATE:-20000}
DNS_SECONDS=${DNS_SECONDS:-5}
command -v dnsperf >/dev/null 2>&1 || log "dnsperf not installed: no DNS CPU figures (apt-get install dnsperf)"

# dns_cpu N: CPU ms of pdm per 1,000 answers for the pool mix above, or n/a. A first run
# (not counted) signs what the mix needs; the counted run asks the same questions.
dns_cpu() {
    local n=$1
    command -v dnsperf >/dev/null 2>&1 || { echo n/a; return; }
    dns_mix "$n" >"$TMP/dns-mix.txt"
    dns_run "$TMP/dns-mix.txt" >/dev/null
    dns_run "$TMP/dns-mix.txt"
}

# dns_mix N: 100,000 queries of the mix, always about the same 1,000 children and 5,000
# absent names.
dns_mix() {
    awk -v n="$1" -v pool="$POOL" 'BEGIN {
        for (i = 0; i < 1000; i++) c[i] = int(i * n / 1000)
        srand(7)
        for (i = 0; i < 5000; i++) a[i] = sprintf("n%08x", int(rand() * 2^31))
        for (i = 0; i < 100000; i++) {
            r = rand(); k = c[int(rand() * 1000)]
            if (r < 0.4) printf "c%d.%s A\n", k, pool
            else if (r < 0.7) printf "www.c%d.%s A\n", k, pool
            else if (r < 0.9) printf "%s.%s A\n", a[int(rand() * 5000)], pool
            else printf "%s SOA\n", pool
        }}'
}

# dns_run FILE: dnsperf with DO set; prints pdm's CPU ms per 1,000 answers.
dns_run() {
    local out before after done_
    before=$(cpu_ticks "$PDM_PID")
    out=$(timeout $((DNS_SECONDS + 30)) taskset -c 1 dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$1" -D \
        -c 4 -T 1 -l "$DNS_SECONDS" -Q "$DNS_RATE" -q 500 -t 2 2>&1) || true
    after=$(cpu_ticks "$PDM_PID")
    done_=$(awk '/Queries completed:/ {print $3}' <<<"$out")
    awk -v d=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="${done_:-0}" \
        'BEGIN {if (n > 0) printf "%.2f", d * 1000 / hz / (n / 1000); else print "n/a"}'
}

start_pdm() { # [want] [cpus] [serve flags...]: sets PDM_PID and READY_S, seconds from start to ready (readyz 200 and want answered)
    local t0 want=${1:-} cpus=${2:-0}
    t0=$(date +%s.%N)
    PDM_LOG=${PDM_LOG:-warn} taskset -c "$cpus" "$PDM_BIN" --database "$DB" serve \
        --http "127.0.0.1:$HTTP_PORT" --dns "127.0.0.1:$DNS_PORT" "${@:3}" >>"$TMP/pdm.log" 2>&1 &
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
first_dns=
printf '\n%-8s %-12s %-14s %-14s %-12s %-10s %-12s %-14s %-14s %-12s\n' children commits/s commit_p50_ms commit_p99_ms cycles/s rss_MiB KiB/child restart_1cpu_s restart_2cpu_s dns_cpu_ms/1k
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
    kill -TERM "$PDM_PID"
    wait "$PDM_PID" 2>/dev/null || true
    start_pdm "c$((n - 1)).$POOL" 0 --packet-cache 0
    dns=$(dns_cpu "$n")
    kill -TERM "$PDM_PID"
    wait "$PDM_PID" 2>/dev/null || true
    start_pdm "c$((n - 1)).$POOL"
    [[ -z $first_dns ]] && first_dns=$dns
    printf '%-8s %-12s %-14s %-14s %-12s %-10s %-12s %-14s %-14s %-12s\n' "$n" "$(get commits_per_s)" "$p50" \
        "$(get commit_p99_ms)" "${cyc:-n/a}" "$((rss / 1024))" "$per" "$restart" "$restart2" "$dns"
    printf 'commit 200 -> first correct answer (same node), 20 commits: '
    timeout 300 taskset -c 1 python3 bench/latency.py "$BASE" "$TOKEN" "$POOL" 127.0.0.1 "$DNS_PORT" 20 |
        tail -n 1 || true
done
printf '\ncommit p50 at %s / at %s children: %s (target <= 1.3)\n' "$have" "${SIZES%% *}" "$(ratio "$p50" "$first_p50")"
printf 'DNS CPU per answer at %s / at %s children: %s (target <= 1.10)\n' "$have" "${SIZES%% *}" "$(ratio "$dns" "$first_dns")"
