#!/usr/bin/env bash
# bench/flood.sh — legitimate clients during a random-subdomain NXDOMAIN flood, with RRL on.
#
# pdm serves bench/bench.test.zone signed online (NSEC3, ECDSA P-256), pinned to CPU 0, with
# `[rrl]` at its defaults except `exempt = []` (everything here is loopback, exempt by default).
# A flood generator (bench/flood.py, CPU 1, niced so the legitimate client keeps its turn) sends random <label>.bench.test A queries with DO=1
# from FLOOD_SOURCES loopback sources, one /24 each (127.2.N.1), at FLOOD_RATE qps in total;
# meanwhile dnsperf (CPU 1) plays a legitimate resolver from its own /24 (127.1.0.1) asking the
# positive query mix at LEGIT_RATE qps, under the per-prefix limit. The legitimate run is done
# once without the flood (baseline) and once during it. Reported: the legitimate answer rate and
# latency in both, the flood's offered rate and what came back to it (full answers, TC=1 slips,
# bytes: the reflection an attacker gets), pdm's CPU during the flood, RSS, and the RRL table
# memory (fixed: see docs/hostile-traffic.md; the unit test
# `a_million_prefixes_fit_in_the_fixed_table` fills it with 1M distinct prefixes).
# Benchmarks report; they do not assert.
#
# Env: DURATION (s, default 10)  FLOOD_RATE (default 20000)  FLOOD_SOURCES (default 32)
#      LEGIT_RATE (default 150)  PDM_BIN (skip `cargo build --release`)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

DURATION=${DURATION:-10}
FLOOD_RATE=${FLOOD_RATE:-20000}
FLOOD_SOURCES=${FLOOD_SOURCES:-32}
LEGIT_RATE=${LEGIT_RATE:-150}
ZONE=bench/bench.test.zone
MAX_SECONDS=$((DURATION * 4 + 240))
BENCH_NAME=flood
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

missing=()
for spec in dnsperf:dnsperf util-linux:taskset curl:curl bind9-dnsutils:dig python3:python3; do
    command -v "${spec#*:}" >/dev/null 2>&1 || missing+=("${spec%%:*}")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
ensure_pdm_bin

# --- pdm: bench.test signed, RRL on ----------------------------------------------------
DB="sqlite://$TMP/pdm.db"
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep '^PDM_' | grep -vx 'PDM_BIN' || true)
PDM_SECRET_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export PDM_SECRET_KEY
# The demo configuration (what bench/dns.sh runs) with loopback no longer exempt.
{ cat zones/demo.toml; printf '\n[rrl]\nexempt = []\n'; } >"$TMP/pdm.toml"
PDM_GLOBAL_ARGS=(--config "$TMP/pdm.toml")
"$PDM_BIN" --database "$DB" "${PDM_GLOBAL_ARGS[@]}" migrate >"$TMP/migrate.log" 2>&1 ||
    { cat "$TMP/migrate.log" >&2; die "pdm migrate failed"; }
"$PDM_BIN" --database "$DB" "${PDM_GLOBAL_ARGS[@]}" zone import --zone bench.test --sign --denial nsec3 "$ZONE" \
    >"$TMP/import.log" 2>&1 || { cat "$TMP/import.log" >&2; die "pdm zone import failed"; }
PORT=$(free_port) HTTP=$(free_port)
serve_pdm pdm "$PORT" "$HTTP"
PID=$STARTED_PID
log "pdm pid $PID on 127.0.0.1:$PORT (CPU 0); flood ${FLOOD_RATE} qps from $FLOOD_SOURCES /24s, legit $LEGIT_RATE qps, $DURATION s"
CLK_TCK=$(getconf CLK_TCK)
metric() { curl -fsS "http://127.0.0.1:$HTTP/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
limited() { curl -fsS "http://127.0.0.1:$HTTP/metrics" | awk '/^pdm_dns_rrl_limited_total/ {s += $2} END {print s + 0}'; }

legit() { # label: dnsperf as the legitimate resolver; prints one table row
    local out completed lostpct lat qps
    out=$(timeout $((DURATION + 30)) taskset -c 1 dnsperf -s 127.0.0.1 -p "$PORT" -a 127.1.0.1 \
        -d bench/queries.txt -c 1 -T 1 -l "$DURATION" -Q "$LEGIT_RATE" -q 50 -t 2 -D 2>&1) || true
    completed=$(awk '/Queries completed:/ {print $3}' <<<"$out")
    lostpct=$(sed -n 's/.*Queries lost:.*(\([0-9.]*\)%).*/\1/p' <<<"$out")
    qps=$(awk '/Queries per second:/ {print $4}' <<<"$out")
    lat=$(awk '/Average Latency/ {print $4}' <<<"$out")
    local max
    max=$(sed -n 's/.*Average Latency (s):.*max \([0-9.]*\).*/\1/p' <<<"$out")
    printf '%-22s %10s %10s %8s%% %10s %10s\n' "$1" "${qps:-0}" "${completed:-0}" "${lostpct:-100}" \
        "$(awk -v l="${lat:-0}" 'BEGIN {printf "%.3f", l * 1000}')" \
        "$(awk -v l="${max:-0}" 'BEGIN {printf "%.3f", l * 1000}')"
}

printf '\n%-22s %10s %10s %9s %10s %10s\n' legit_client qps answered lost avg_ms max_ms
legit "baseline (no flood)"
before=$(cpu_ticks "$PID") limited_before=$(limited)
nice -n 10 taskset -c 1 python3 bench/flood.py "$PORT" bench.test "$FLOOD_SOURCES" "$DURATION" "$FLOOD_RATE" \
    >"$TMP/flood.out" 2>&1 &
FLOOD=$!
PIDS+=("$FLOOD")
legit "during the flood"
wait "$FLOOD" || true
after=$(cpu_ticks "$PID") limited_after=$(limited)
cpu_pct=$(awk -v d=$((after - before)) -v hz="$CLK_TCK" -v s="$DURATION" 'BEGIN {printf "%.0f", d * 100 / hz / s}')
rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
printf '\nflood: %s\n' "$(cat "$TMP/flood.out")"
printf 'pdm during the flood: %s%% of one core (pinned to CPU 0), RRL held back %s responses, RSS %s MiB\n' \
    "$cpu_pct" "$((limited_after - limited_before))" "$((rss_kib / 1024))"
printf 'RRL table: %s bytes (fixed: 2^20 buckets x 8 bytes, whatever the number of prefixes)\n' \
    "$(metric pdm_dns_rrl_table_bytes)"
printf '%s, dnsperf -a 127.1.0.1 -D, bench/queries.txt; flood.py: random names, DO=1\n' \
    "$("$PDM_BIN" --version 2>/dev/null || echo '?')"
