#!/usr/bin/env bash
# bench/lua.sh — LUA records: pdm vs PowerDNS Authoritative 4.7 (run as `LUA=1 bench/dns.sh`).
#
# Both servers serve bench/lua.zone on 127.0.0.1 (UDP), each pinned to CPU 0; dnsperf (1 thread)
# is pinned to CPU 1. PowerDNS runs gsqlite3 with `enable-lua-records=shared` (one Lua state
# per thread, its fastest mode) and default caches (LUA answers are never cached). The LUA mix
# (bench/lua-queries.txt: pickrandom, pickwhashed, ifportup on a local open port — pdm's HTTP
# listener — and createForward) runs at a steady RATE and at a saturation PROBE against both;
# then pdm answers the static twins (bench/lua-static-queries.txt) for the LUA/static cost ratio.
# Prints achieved qps, loss, average latency, CPU ms per 1,000 answered queries and the ratios.
#
# Env: DURATION (s, default 10)  RATE (default 20000)  PROBE (default 100000)  PDM_BIN
#      LUA_OFFLOAD=0: pdm evaluates inline on its reactor thread (`[lua] offload = false`)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

DURATION=${DURATION:-10}
RATE=${RATE:-20000}
PROBE=${PROBE:-100000}
MAX_SECONDS=$((DURATION * 8 + 240))
BENCH_NAME=lua
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

missing=()
for spec in pdns-server:pdns_server pdns-backend-sqlite3:/usr/lib/x86_64-linux-gnu/pdns/libgsqlite3backend.so \
    sqlite3:sqlite3 dnsperf:dnsperf util-linux:taskset curl:curl bind9-dnsutils:dig; do
    bin=${spec#*:}
    if [[ $bin == /* ]]; then [[ -e $bin ]] || missing+=("${spec%%:*}"); continue; fi
    command -v "$bin" >/dev/null 2>&1 || missing+=("${spec%%:*}")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
ensure_pdm_bin


PDM_PORT=$(free_port)
PDM_HTTP=$(free_port)
PDNS_PORT=$(free_port)
ZONE="$TMP/lua.zone"
sed "s/@PORT@/$PDM_HTTP/g" bench/lua.zone >"$ZONE"

# --- pdm -------------------------------------------------------------------------------
DB="sqlite://$TMP/pdm.db"
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep '^PDM_' | grep -vx 'PDM_BIN' || true)
PDM_SECRET_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export PDM_SECRET_KEY
CFG_ARGS=()
if [[ ${LUA_OFFLOAD:-1} == 0 ]]; then
    # Evaluate LUA records inline on the reactor thread instead of the blocking pool.
    printf 'hostmaster = "hostmaster.bench.test"\n[lua]\noffload = false\n[[nameservers]]\nname = "ns1.bench.test"\naddresses = ["127.0.0.1"]\n' >"$TMP/pdm.toml"
    CFG_ARGS=(--config "$TMP/pdm.toml")
fi
"$PDM_BIN" --database "$DB" "${CFG_ARGS[@]}" zone import --zone bench.test "$ZONE" >"$TMP/import.log" 2>&1 ||
    { cat "$TMP/import.log" >&2; die "pdm zone import failed"; }
PDM_GLOBAL_ARGS=("${CFG_ARGS[@]}")
serve_pdm pdm "$PDM_PORT" "$PDM_HTTP"
PDM_PID=$STARTED_PID

# --- PowerDNS 4.7 ----------------------------------------------------------------------
mkdir -p "$TMP/pdns/run"
SCHEMA=/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql
[[ -f $SCHEMA ]] || SCHEMA=/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql
sqlite3 "$TMP/pdns/pdns.sqlite3" <"$SCHEMA"
cat >"$TMP/pdns/pdns.conf" <<PDNS
launch=gsqlite3
gsqlite3-database=$TMP/pdns/pdns.sqlite3
local-address=127.0.0.1
local-port=$PDNS_PORT
socket-dir=$TMP/pdns/run
daemon=no
guardian=no
disable-syslog=yes
loglevel=3
security-poll-suffix=
enable-lua-records=shared
lua-health-checks-interval=5
PDNS
pdnsutil --config-dir="$TMP/pdns" load-zone bench.test "$ZONE" >"$TMP/pdns/load.log" 2>&1 ||
    { cat "$TMP/pdns/load.log" >&2; die "pdnsutil load-zone failed"; }
pdnsutil --config-dir="$TMP/pdns" rectify-zone bench.test >>"$TMP/pdns/load.log" 2>&1 || true
taskset -c 0 pdns_server --config-dir="$TMP/pdns" >"$TMP/pdns/pdns.log" 2>&1 &
PDNS_PID=$!
PIDS+=("$PDNS_PID")
watchdog "$PDNS_PID"
wait_dns "$PDNS_PORT" || { cat "$TMP/pdns/pdns.log" >&2; die "pdns_server did not come up"; }
log "pdm pid $PDM_PID :$PDM_PORT, pdns pid $PDNS_PID :$PDNS_PORT (both CPU 0), $(nproc) CPUs, $DURATION s per run"

# Let both run their first health checks (the first answer of ifportup is a backup pick).
for p in "$PDM_PORT" "$PDNS_PORT"; do dig +short -p "$p" @127.0.0.1 port.bench.test A >/dev/null; done
sleep 6
for p in "$PDM_PORT" "$PDNS_PORT"; do
    log "port.bench.test on :$p -> $(dig +short -p "$p" @127.0.0.1 port.bench.test A | tr '\n' ' ')"
done

# --- runs ------------------------------------------------------------------------------
CLK_TCK=$(getconf CLK_TCK)
declare -A R
run() { # label pid port rate clients outstanding queries
    local label=$1 pid=$2 port=$3 rate=$4 clients=$5 outst=$6 queries=$7 out before after
    before=$(cpu_ticks "$pid")
    out=$(timeout $((DURATION + 30)) taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" \
        -d "$queries" -c "$clients" -T 1 -l "$DURATION" -Q "$rate" -q "$outst" -t 2 2>&1) || true
    after=$(cpu_ticks "$pid")
    local completed lostpct qps lat
    completed=$(awk '/Queries completed:/ {print $3}' <<<"$out")
    lostpct=$(sed -n 's/.*Queries lost:.*(\([0-9.]*\)%).*/\1/p' <<<"$out")
    qps=$(awk '/Queries per second:/ {print $4}' <<<"$out")
    lat=$(awk '/Average Latency/ {print $4}' <<<"$out")
    if [[ -z $completed ]]; then
        printf '%s\n' "$out" >&2
        log "dnsperf produced no summary for $label"
        completed=0 lostpct=100 qps=0 lat=0
    fi
    local cpu_ms per1k rcodes
    cpu_ms=$(awk -v d=$((after - before)) -v hz="$CLK_TCK" 'BEGIN {printf "%.0f", d * 1000 / hz}')
    per1k=$(awk -v ms="$cpu_ms" -v n="$completed" 'BEGIN {if (n > 0) printf "%.3f", ms / (n / 1000); else print "nan"}')
    R[$label.qps]=$qps R[$label.cpu]=$per1k
    rcodes=$(sed -n 's/.*Response codes: *//p' <<<"$out" | tr -d ' ')
    printf '%-18s %9s %12.0f %10s %8s%% %10s %10s %12s  %s\n' "$label" "$rate" "$qps" "$completed" \
        "${lostpct:-0}" "$(awk -v l="$lat" 'BEGIN {printf "%.3f", l * 1000}')" "$cpu_ms" "$per1k" "$rcodes"
}

printf '\n%-18s %9s %12s %10s %9s %10s %10s %12s  %s\n' server offered_qps achieved_qps answered lost avg_ms cpu_ms cpu_ms/1kq rcodes
for srv in pdns pdm; do
    if [[ $srv == pdns ]]; then pid=$PDNS_PID port=$PDNS_PORT; else pid=$PDM_PID port=$PDM_PORT; fi
    run "$srv@lua-steady" "$pid" "$port" "$RATE" 4 200 bench/lua-queries.txt
    sleep 1
    run "$srv@lua-probe" "$pid" "$port" "$PROBE" 8 500 bench/lua-queries.txt
    sleep 1
done
run "pdm@static-steady" "$PDM_PID" "$PDM_PORT" "$RATE" 4 200 bench/lua-static-queries.txt
sleep 1
run "pdm@static-probe" "$PDM_PID" "$PDM_PORT" "$PROBE" 8 500 bench/lua-static-queries.txt

printf '\nratios pdm/PowerDNS on the LUA mix (qps: higher is better for pdm; cpu/1kq: lower is better)\n'
for load in lua-steady lua-probe; do
    printf '  %-11s qps %s   cpu_ms/1kq %s\n' "$load" \
        "$(ratio "${R[pdm@$load.qps]}" "${R[pdns@$load.qps]}")" \
        "$(ratio "${R[pdm@$load.cpu]}" "${R[pdns@$load.cpu]}")"
done
printf 'pdm LUA/static cost (cpu_ms/1kq, steady): %s   saturation qps LUA/static: %s\n' \
    "$(ratio "${R[pdm@lua-steady.cpu]}" "${R[pdm@static-steady.cpu]}")" \
    "$(ratio "${R[pdm@lua-probe.qps]}" "${R[pdm@static-probe.qps]}")"
printf '\n%s, %s, dnsperf -T 1 pinned to CPU 1, servers pinned to CPU 0\n' \
    "$(pdns_server --version 2>&1 | sed -n 's/.*\(PowerDNS Authoritative Server [0-9.]*\).*/\1/p' | head -1)" \
    "$("$PDM_BIN" --version 2>/dev/null || echo '?')"
