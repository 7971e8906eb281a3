#!/usr/bin/env bash
# bench/update-pdns.sh — PowerDNS-API PATCH REPLACE of one RRset per second: pdm vs
# pdns_server 4.7 (gsqlite3, DNSSEC, default caches) in the same run (release build).
#
# Both serve a signed zone acme.bench.test (pdm: a committed allocation of pool bench.test;
# pdns: created through its API with dnssec:true). bench/patch.py PATCHes TXT RRsets with
# changetype REPLACE for DURATION s: one client (sequential), then CLIENTS clients at once
# (each its own RRset); then it checks VERIFY more changes one by one: served on return
# when the first DNS answer after the 204 holds it. Servers on CPU 0, clients on CPU 1.
# Prints each RESULT line and the ratios pdm/pdns (target >= 5). pdns_server's rate
# depends on the disk's fsync latency (gsqlite3 syncs every commit; pdm's SQLite runs
# WAL with synchronous=NORMAL), so a busy disk widens the gap. Also prints each server's CPU
# per PATCH it handled (all its threads, over the timed and the checked PATCHes; refused
# ones count: patch.py's patches= counts every answer, its rate only the 2xx). Then, when
# wrk is installed, one wrk connection (bench/patch.lua) PATCHes each server for DURATION s:
# a client that costs almost nothing per request, so that rate is the server's (WRK lines).
# Benchmarks report; they do not assert. bench/update.sh calls this script.
#
# With ZONE_RECORDS=N both zones first get N more records (A RRsets of 10 records each,
# through each server's PowerDNS API, the same PATCHes to both), so the PATCHes run against a
# zone of that size: what a write costs as a tenant's zone grows (pdm's default bound on a
# child zone is 10,000 records).
#
# Env: DURATION (s, default 10)  VERIFY (default 50)  CLIENTS (default 4)  ZONE_RECORDS (default 0)
#      WRK_ROUNDS (default 1: wrk runs alternating pdm and pdns_server, and their median ratio)
#      PDM_BIN (skip `cargo build --release`)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${DURATION:-10}
VERIFY=${VERIFY:-50}
CLIENTS=${CLIENTS:-4}
WRK_ROUNDS=${WRK_ROUNDS:-1}
POOL=bench.test
ZONE=acme.$POOL
MAX_SECONDS=$((DURATION * 8 + 300))
BENCH_NAME=update-pdns
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for t in pdns_server sqlite3 python3 curl taskset dig; do command -v "$t" >/dev/null || die "$t not installed"; done
PDNS_SCHEMA=/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql
[[ -f $PDNS_SCHEMA ]] || die "pdns-backend-sqlite3 not installed"

ensure_pdm_bin
export PDM_SECRET_KEY=${PDM_SECRET_KEY:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}

# --- pdm: pool bench.test, allocation acme, an admin token as the X-API-Key.
DB=sqlite://$TMP/pdm.db
HTTP_PORT=$(free_port)
DNS_PORT=$(free_port)
BASE=http://127.0.0.1:$HTTP_PORT
cat >"$TMP/pdm.toml" <<TOML
hostmaster = "hostmaster.$POOL"
[[nameservers]]
name = "ns1.$POOL"
addresses = ["127.0.0.1"]
[[pools]]
domain = "$POOL"
TOML
PDM_GLOBAL_ARGS=(--config "$TMP/pdm.toml")
"$PDM_BIN" --database "$DB" "${PDM_GLOBAL_ARGS[@]}" migrate >"$TMP/migrate.log" 2>&1 ||
    { cat "$TMP/migrate.log" >&2; die "pdm migrate failed"; }
TOKEN=$("$PDM_BIN" --database "$DB" "${PDM_GLOBAL_ARGS[@]}" token create --name bench --scope admin 2>/dev/null | tail -n 1)
serve_pdm pdm "$DNS_PORT" "$HTTP_PORT"
PDM_PID=$STARTED_PID
RT=$(curl -fsS -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"subdomain":"acme"}' "$BASE/api/v1/pool/$POOL/reserve" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["reservationToken"])')
curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"subdomain\":\"acme\",\"reservationToken\":\"$RT\",\"loadBalancerIP\":\"192.0.2.10\"}" \
    "$BASE/api/v1/pool/$POOL/commit" || die "commit of $ZONE failed"

# --- pdns_server 4.7 with gsqlite3, its zone made through its API.
W=$TMP/pdns
mkdir -p "$W/run"
sqlite3 "$W/pdns.sqlite3" <"$PDNS_SCHEMA"
PDNS_DNS=$(free_port)
PDNS_API=$(free_port)
PDNS_KEY=bench-$RANDOM$RANDOM
printf '%s\n' \
    launch=gsqlite3 "gsqlite3-database=$W/pdns.sqlite3" gsqlite3-dnssec=yes \
    local-address=127.0.0.1 "local-port=$PDNS_DNS" "socket-dir=$W/run" daemon=no guardian=no \
    disable-syslog=yes loglevel=3 security-poll-suffix= \
    'default-soa-content=ns1.@ hostmaster.@ 0 10800 3600 604800 3600' \
    api=yes "api-key=$PDNS_KEY" webserver=yes webserver-address=127.0.0.1 \
    "webserver-port=$PDNS_API" webserver-allow-from=127.0.0.0/8 >"$W/pdns.conf"
taskset -c 0 pdns_server --config-dir="$W" >"$W/pdns.log" 2>&1 &
PDNS_PID=$!
PIDS+=("$PDNS_PID")
watchdog $!
for _ in $(seq 1 100); do
    curl -fsS -o /dev/null -H "X-API-Key: $PDNS_KEY" \
        "http://127.0.0.1:$PDNS_API/api/v1/servers/localhost" 2>/dev/null && break
    sleep 0.1
done
code=$(curl -s -o "$TMP/pdns-create.json" -w '%{http_code}' -H "X-API-Key: $PDNS_KEY" \
    -d "{\"name\":\"$ZONE.\",\"kind\":\"Native\",\"nameservers\":[\"ns1.$ZONE.\"],\"dnssec\":true}" \
    "http://127.0.0.1:$PDNS_API/api/v1/servers/localhost/zones")
[[ $code == 201 ]] || { cat "$TMP/pdns-create.json" "$W/pdns.log" >&2; die "pdns zone create: $code"; }

ZONE_RECORDS=${ZONE_RECORDS:-0}
if ((ZONE_RECORDS > 0)); then
    for target in "$BASE $TOKEN" "http://127.0.0.1:$PDNS_API $PDNS_KEY"; do
        read -r base key <<<"$target"
        python3 - "$base" "$key" "$ZONE." "$ZONE_RECORDS" <<'PY' || die "filling $ZONE at $base failed"
import json, sys, urllib.request
base, key, zone, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sets = [{"name": "fill%d.%s" % (i, zone), "type": "A", "ttl": 300, "changetype": "REPLACE",
         "records": [{"content": "198.51.100.%d" % (j + 1), "disabled": False} for j in range(min(10, n - 10 * i))]}
        for i in range((n + 9) // 10)]
for at in range(0, len(sets), 50):
    req = urllib.request.Request("%s/api/v1/servers/localhost/zones/%s" % (base, zone), method="PATCH",
                                 data=json.dumps({"rrsets": sets[at:at + 50]}).encode(),
                                 headers={"X-API-Key": key, "Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=120).read()
PY
    done
    log "both zones filled with $ZONE_RECORDS more records"
fi

log "pdm on $BASE (DNS $DNS_PORT), pdns_server 4.7 on :$PDNS_API (DNS $PDNS_DNS), $DURATION s each"
CLK_TCK=$(getconf CLK_TCK)
run() { # label clients base key dns_port server_pid
    local before after patches
    before=$(cpu_ticks "$6")
    timeout $((DURATION + 120)) taskset -c 1 python3 bench/patch.py "$3" "$4" "$ZONE" "$DURATION" "$5" "$1" "$VERIFY" "$2" |
        tee "$TMP/$1-$2.result"
    after=$(cpu_ticks "$6")
    # Server CPU (all threads) over the timed PATCHes and the VERIFY ones after them.
    patches=$(sed -n 's/.* patches=\([0-9]*\).*/\1/p' "$TMP/$1-$2.result")
    awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="${patches:-0}" -v v="$VERIFY" -v l="$1" -v c="$2" \
        'BEGIN {if (n + v > 0) printf "CPU %s clients=%s server_ms_per_patch=%.3f\n", l, c, t * 1000 / hz / (n + v)}' |
        tee "$TMP/$1-$2.cpu"
}
cpu() { sed -n 's/.* server_ms_per_patch=\([0-9.]*\).*/\1/p' "$TMP/$1.cpu"; }
rate() { sed -n 's/.* rate=\([0-9.]*\)\/s.*/\1/p' "$TMP/$1.result"; }
for c in 1 "$CLIENTS"; do
    printf '\n== PowerDNS-API PATCH REPLACE of one TXT RRset per request (%s client(s), %s s; %s checked by DNS)\n' \
        "$c" "$DURATION" "$VERIFY"
    run pdm "$c" "$BASE" "$TOKEN" "$DNS_PORT" "$PDM_PID"
    run pdns "$c" "http://127.0.0.1:$PDNS_API" "$PDNS_KEY" "$PDNS_DNS" "$PDNS_PID"
    printf 'RATIO clients=%s pdm/pdns PATCH rate = %s (target >= 5)\n' "$c" "$(ratio "$(rate "pdm-$c")" "$(rate "pdns-$c")")"
    printf 'RATIO clients=%s pdm/pdns server CPU per PATCH = %s (lower is better for pdm)\n' "$c" "$(ratio "$(cpu "pdm-$c")" "$(cpu "pdns-$c")")"
done
# The same PATCHes from wrk (bench/patch.lua): one connection, a client whose own cost per
# request is a few µs, so the one-client rate measures the server rather than patch.py.
wrk_run() { # label base key server_pid
    local before after out n line
    before=$(cpu_ticks "$4")
    out=$(KEY=$3 ZONE=$ZONE timeout $((DURATION + 30)) taskset -c 1 \
        wrk -t 1 -c 1 -d "${DURATION}s" --timeout 5s -s bench/patch.lua "$2" 2>&1) || true
    after=$(cpu_ticks "$4")
    line=$(grep '^WRK' <<<"$out" || true)
    if [[ -z $line ]]; then
        printf '%s\n' "$out" >&2
        printf 'WRK %s failed\n' "$1"
        return
    fi
    n=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$line")
    printf '%s server_ms_per_patch=%s\n' "${line/WRK/WRK $1}" \
        "$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="${n:-0}" 'BEGIN {if (n > 0) printf "%.3f", t * 1000 / hz / n; else print "nan"}')" |
        tee "$TMP/wrk-$1.result"
}
if command -v wrk >/dev/null; then
    # Rounds alternate pdm and pdns_server so that a drift of the host (this VM's steal time
    # moves either server's rate by a third between minutes) lands on both; the median of
    # the rounds' ratios is the figure.
    ratios=()
    for round in $(seq 1 "$WRK_ROUNDS"); do
        printf '\n== the same, one wrk connection (bench/patch.lua), %s s, round %s of %s\n' "$DURATION" "$round" "$WRK_ROUNDS"
        wrk_run pdm "$BASE" "$TOKEN" "$PDM_PID"
        wrk_run pdns "http://127.0.0.1:$PDNS_API" "$PDNS_KEY" "$PDNS_PID"
        wrate() { sed -n 's/.* rate=\([0-9.]*\)\/s.*/\1/p' "$TMP/wrk-$1.result"; }
        r=$(ratio "$(wrate pdm)" "$(wrate pdns)")
        ratios+=("$r")
        printf 'RATIO wrk clients=1 pdm/pdns PATCH rate = %s (target >= 5)\n' "$r"
    done
    if ((WRK_ROUNDS > 1)); then
        printf 'RATIO wrk clients=1 pdm/pdns PATCH rate, median of %s rounds = %s (rounds: %s; target >= 5)\n' \
            "$WRK_ROUNDS" "$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}')" "${ratios[*]}"
    fi
fi

printf '\n%s, pdns_server %s, %s CPUs (servers on CPU 0, client on CPU 1), zone of %s more records\n' \
    "$("$PDM_BIN" --version 2>/dev/null || echo '?')" "$(pdns_server --version 2>&1 | sed -n 's/.*PowerDNS Authoritative Server \([^ ]*\).*/\1/p' | head -1)" "$(nproc)" "$ZONE_RECORDS"
