#!/usr/bin/env bash
# bench/api.sh — pdm HTTP API figures on SQLite (release build), one bounded run.
#
#  1. `check` at a fixed offered rate (wrk + bench/check.lua pacing): achieved rps, p50/p90/p99.
#  2. `check` closed-loop saturation (same connections, no pacing): max rps and latency.
#  3. Full reserve -> commit -> release cycles (bench/cycle.py, stdlib only): cycles/s, per-step
#     p50/p99, with 1 and with 4 concurrent clients.
#  4. Zone backends side by side: cycles/s (1 client) and commit -> first correct DNS answer
#     (bench/latency.py) on the embedded backend and on `[backend] kind = "powerdns"` with a
#     local pdns_server 4.7 (gsqlite3, DNSSEC, default caches; skipped when not installed).
# The server is pinned to CPU 0 and the load generators to CPU 1. Benchmarks report; they do
# not assert.
#
# Env: DURATION (s, default 10)  CHECK_RATE (default 2000)  CONNS (default 4)  LAT_COUNT (default 50)
#      PDM_BIN (skip `cargo build --release`)  DATABASE (default sqlite in a temp dir)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${DURATION:-10}
CHECK_RATE=${CHECK_RATE:-2000}
CONNS=${CONNS:-4}
POOL=example.test
MAX_SECONDS=$((DURATION * 6 + 240))
BENCH_NAME=api
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"


missing=()
for spec in wrk:wrk curl:curl python3:python3 util-linux:taskset; do
    command -v "${spec#*:}" >/dev/null 2>&1 || missing+=("${spec%%:*}")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

ensure_pdm_bin


api_setup

PDM_LOG=${PDM_LOG:-warn} taskset -c 0 "$PDM_BIN" --database "$DB" serve \
    --http "127.0.0.1:$HTTP_PORT" --dns "127.0.0.1:$DNS_PORT" >"$TMP/pdm.log" 2>&1 &
PDM_PID=$!
PIDS+=("$PDM_PID")
(
    end=$((SECONDS + MAX_SECONDS))
    while ((SECONDS < end)); do sleep 1; kill -0 "$PDM_PID" 2>/dev/null || exit 0; done
    kill -KILL "$PDM_PID" 2>/dev/null
) >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 1 150); do
    curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null && break
    kill -0 "$PDM_PID" 2>/dev/null || { cat "$TMP/pdm.log" >&2; die "pdm exited"; }
    sleep 0.2
done
curl -fsS -o /dev/null "$BASE/readyz" || { cat "$TMP/pdm.log" >&2; die "pdm /readyz not 200"; }
code=$(curl -s -o "$TMP/check.json" -w '%{http_code}' "$BASE/api/v1/pool/$POOL/check?sub=bench-free-1")
[[ $code == 200 ]] || { cat "$TMP/check.json" >&2; die "check answered $code"; }
log "pdm pid $PDM_PID on $BASE (CPU 0), database $DB, $DURATION s per run"

CLK_TCK=$(getconf CLK_TCK)

wrk_run() { # label rate
    local before after out
    before=$(cpu_ticks "$PDM_PID")
    out=$(POOL=$POOL RATE=$2 THREADS=1 timeout $((DURATION + 30)) taskset -c 1 \
        wrk -t 1 -c "$CONNS" -d "${DURATION}s" --timeout 5s -s bench/check.lua "$BASE" 2>&1) || true
    after=$(cpu_ticks "$PDM_PID")
    local line
    line=$(grep '^RESULT' <<<"$out" || true)
    if [[ -z $line ]]; then
        printf '%s\n' "$out" >&2
        printf '%-22s wrk failed\n' "$1"
        return
    fi
    local reqs
    reqs=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$line")
    printf '%-22s offered=%-6s %s cpu_ms/1k_req=%s\n' "$1" "$2" "${line#RESULT }" \
        "$(awk -v d=$((after - before)) -v hz="$CLK_TCK" -v n="$reqs" \
            'BEGIN {if (n > 0) printf "%.2f", d * 1000 / hz / (n / 1000); else print "nan"}')"
}

printf '\n== check (GET /api/v1/pool/%s/check, %s connections, 1 wrk thread)\n' "$POOL" "$CONNS"
wrk_run "check@fixed-rate" "$CHECK_RATE"
wrk_run "check@closed-loop" 0

printf '\n== reserve -> commit -> release cycles (%s s each)\n' "$DURATION"
for workers in 1 4; do
    timeout $((DURATION + 60)) taskset -c 1 python3 bench/cycle.py "$BASE" "$TOKEN" "$POOL" "$DURATION" "$workers" ||
        log "cycle run with $workers workers reported errors"
done
printf '\n== zone backends: embedded vs powerdns (1 client, %s s; latency over %s commits)\n' "$DURATION" "${LAT_COUNT:=50}"
printf 'embedded  '
timeout $((DURATION + 60)) taskset -c 1 python3 bench/cycle.py "$BASE" "$TOKEN" "$POOL" "$DURATION" 1 | grep "^RESULT" || true
printf 'embedded  '
timeout 300 taskset -c 1 python3 bench/latency.py "$BASE" "$TOKEN" "$POOL" 127.0.0.1 "$DNS_PORT" "$LAT_COUNT" || true
PDNS_SCHEMA=/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql
if command -v pdns_server >/dev/null && command -v sqlite3 >/dev/null && [[ -f $PDNS_SCHEMA ]]; then
    W=$TMP/pdns
    mkdir -p "$W/run"
    sqlite3 "$W/pdns.sqlite3" <"$PDNS_SCHEMA"
    PDNS_DNS=$(free_port)
    PDNS_API=$(free_port)
    PDNS_KEY=bench-$RANDOM$RANDOM
    printf '%s\n' \
        launch=gsqlite3 "gsqlite3-database=$W/pdns.sqlite3" gsqlite3-dnssec=yes \
        local-address=127.0.0.1 "local-port=$PDNS_DNS" "socket-dir=$W/run" daemon=no guardian=no \
        disable-syslog=yes loglevel=3 security-poll-suffix= enable-lua-records=yes \
        api=yes "api-key=$PDNS_KEY" webserver=yes webserver-address=127.0.0.1 \
        "webserver-port=$PDNS_API" webserver-allow-from=127.0.0.0/8 >"$W/pdns.conf"
    taskset -c 0 pdns_server --config-dir="$W" >"$W/pdns.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null -H "X-API-Key: $PDNS_KEY" \
            "http://127.0.0.1:$PDNS_API/api/v1/servers/localhost" 2>/dev/null && break
        sleep 0.1
    done
    printf '%s\n' "$PDNS_KEY" >"$TMP/pdns.key"
    printf '%s\n' \
        'hostmaster = "hostmaster.example.test"' \
        '[backend]' 'kind = "powerdns"' "url = \"http://127.0.0.1:$PDNS_API\"" \
        "api_key_file = \"$TMP/pdns.key\"" 'reconcile_interval_secs = 0' \
        '[dnssec]' "secret_key_file = \"$TMP/pdm-pdns.secret\"" \
        '[[nameservers]]' 'name = "ns1.example.test"' 'addresses = ["127.0.0.1"]' \
        '[[nameservers]]' 'name = "ns2.example.test"' 'addresses = ["127.0.0.2"]' \
        '[[pools]]' "domain = \"$POOL\"" >"$TMP/pdm-pdns.toml"
    DB2=sqlite://$TMP/pdm-pdns.db
    P2=("$PDM_BIN" --config "$TMP/pdm-pdns.toml" --database "$DB2")
    "${P2[@]}" migrate >"$TMP/migrate2.log" 2>&1 ||
        { cat "$TMP/migrate2.log" >&2; die "pdm migrate (powerdns) failed"; }
    TOKEN2=$("${P2[@]}" token create --name bench --scope admin 2>>"$TMP/token.log" | tail -n 1)
    HTTP2=$(free_port)
    DNS2=$(free_port)
    PDM_LOG=${PDM_LOG:-warn} taskset -c 0 "${P2[@]}" serve \
        --http "127.0.0.1:$HTTP2" --dns "127.0.0.1:$DNS2" >"$TMP/pdm-pdns.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 150); do
        curl -fsS -o /dev/null "http://127.0.0.1:$HTTP2/readyz" 2>/dev/null && break
        sleep 0.2
    done
    printf 'powerdns  '
    timeout $((DURATION + 60)) taskset -c 1 python3 bench/cycle.py "http://127.0.0.1:$HTTP2" \
        "$TOKEN2" "$POOL" "$DURATION" 1 | grep "^RESULT" || true
    printf 'powerdns  '
    timeout 300 taskset -c 1 python3 bench/latency.py "http://127.0.0.1:$HTTP2" "$TOKEN2" "$POOL" \
        127.0.0.1 "$PDNS_DNS" "$LAT_COUNT" || true
else
    log "pdns_server / pdns-backend-sqlite3 not installed: powerdns backend figures skipped"
fi

printf '\n%s, database %s, %s CPUs (server on CPU 0, clients on CPU 1)\n' \
    "$("$PDM_BIN" --version 2>/dev/null || echo '?')" "${DB%%:*}" "$(nproc)"
