#!/usr/bin/env bash
# bench/update.sh — RFC 2136 UPDATE (issue 14): updates per second, pdm vs Knot on the same
# zone in one run. Each iteration is two TSIG-signed (hmac-sha256) updates of one name: add
# a TXT record, then delete it. The client is nsupdate reading a script of many `send`s (one
# process, each update waits for its answer); 1 client, then CLIENTS clients in parallel on
# their own names. pdm answers an UPDATE only once its DNS serves the change; this is checked
# on SAMPLE updates (a dig right after nsupdate returns must see the new value).
# Knot: the same zone (pdm's export), dynamic, an `update` ACL with the same key,
# zonefile-sync -1 (journal only), twice: its default journal (an fsync per write) and an
# asynchronous one (no fsync per write, like pdm's SQLite store in WAL with synchronous=NORMAL).
# pdm and Knot are pinned to CPU 0, the clients to CPU 1. Benchmarks report; they do not
# assert. Target: pdm >= Knot. Then bench/update-pdns.sh (PowerDNS API PATCH vs pdns_server),
# when it exists.
#
# Env: N (iterations per measurement, default 500)  CLIENTS (default 4)  SAMPLE (default 50)
#      PDM_BIN  MAX_SECONDS
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

N=${N:-500}
CLIENTS=${CLIENTS:-4}
SAMPLE=${SAMPLE:-50}
POOL=pool.bench
ZONE=acme.$POOL
MAX_SECONDS=${MAX_SECONDS:-1800}
BENCH_NAME=update
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for t in knotd nsupdate dig curl taskset; do command -v "$t" >/dev/null || die "$t not installed"; done

ensure_pdm_bin
export PDM_SECRET_KEY=${PDM_SECRET_KEY:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}
DB=sqlite://$TMP/pdm.db
HTTP_PORT=$(free_port)
DNS_PORT=$(free_port)
KNOT_PORT=$(free_port)
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
pdm() { "$PDM_BIN" --database "$DB" "${PDM_GLOBAL_ARGS[@]}" "$@"; }

pdm migrate >/dev/null 2>&1
TOKEN=$(pdm token create --name bench --scope admin 2>/dev/null | tail -n 1)
SECRET=$(pdm tsig create upd --policy "{\"rules\":[{\"zone\":\"$ZONE\",\"access\":\"write\"}]}" 2>/dev/null)
[[ -n $SECRET ]] || die "pdm tsig create printed nothing"

PDM_LOG=${PDM_LOG:-warn} taskset -c 0 "$PDM_BIN" --database "$DB" "${PDM_GLOBAL_ARGS[@]}" serve \
    --dns "127.0.0.1:$DNS_PORT" --http "127.0.0.1:$HTTP_PORT" >"$TMP/pdm.log" 2>&1 &
PDM_PID=$!
PIDS+=("$PDM_PID")
watchdog "$PDM_PID"
for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null && break
    kill -0 "$PDM_PID" 2>/dev/null || { tail -n 30 "$TMP/pdm.log" >&2; die "pdm exited"; }
    sleep 0.1
done

# The tenant zone: reserve + commit through the API.
RES=$(curl -fsS -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"subdomain":"acme"}' "$BASE/api/v1/pool/$POOL/reserve")
RTOK=$(sed -n 's/.*"reservationToken":"\([^"]*\)".*/\1/p' <<<"$RES")
curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"subdomain\":\"acme\",\"reservationToken\":\"$RTOK\",\"sovereignFQDN\":\"$ZONE\",\"loadBalancerIP\":\"192.0.2.10\"}" \
    "$BASE/api/v1/pool/$POOL/commit" || die "commit failed"

# script FILE PORT NAME ITERATIONS: an nsupdate script of ITERATIONS add+delete pairs.
script() {
    local i
    {
        printf 'server 127.0.0.1 %s\nzone %s\n' "$2" "$ZONE"
        for ((i = 0; i < $4; i++)); do
            printf 'update add %s.%s 60 TXT "v%d"\nsend\nupdate delete %s.%s TXT\nsend\n' "$3" "$ZONE" "$i" "$3" "$ZONE"
        done
    } >"$1"
}

# rate PORT CLIENTS: updates/s of CLIENTS nsupdate processes sharing N iterations.
rate() {
    local port=$1 clients=$2 per c t0 t1 failed=0
    per=$((N / clients))
    for ((c = 0; c < clients; c++)); do script "$TMP/u$c.txt" "$port" "bench$c" "$per"; done
    local pids=()
    t0=$(date +%s.%N)
    for ((c = 0; c < clients; c++)); do
        taskset -c 1 nsupdate -y "hmac-sha256:upd:$SECRET" "$TMP/u$c.txt" >"$TMP/u$c.out" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || failed=1; done
    t1=$(date +%s.%N)
    if [[ $failed -ne 0 ]]; then
        grep -h -B2 -A2 -i "fail\|timed out" "$TMP"/u*.out | head -20 >&2
        [[ $port == "$DNS_PORT" ]] && tail -n 20 "$TMP/pdm.log" >&2
        die "an nsupdate run failed (port $port)"
    fi
    awk -v a="$t0" -v b="$t1" -v n=$((per * clients * 2)) 'BEGIN {printf "%.0f", n / (b - a)}'
}

# served PORT: of SAMPLE adds, how many a dig right after nsupdate returns sees.
served() {
    local port=$1 i ok=0
    for ((i = 0; i < SAMPLE; i++)); do
        printf 'server 127.0.0.1 %s\nzone %s\nupdate delete seen.%s TXT\nupdate add seen.%s 60 TXT "s%d"\nsend\n' \
            "$port" "$ZONE" "$ZONE" "$ZONE" "$i" >"$TMP/seen.txt"
        taskset -c 1 nsupdate -y "hmac-sha256:upd:$SECRET" "$TMP/seen.txt" >/dev/null 2>&1 || continue
        dig +tries=1 +time=1 +short -p "$port" @127.0.0.1 "seen.$ZONE" TXT | grep -q "\"s$i\"" && ok=$((ok + 1))
    done
    echo "$ok"
}

# The key is read by the server every 2 s: wait until an update goes through.
printf 'server 127.0.0.1 %s\nzone %s\nupdate delete probe.%s TXT\nsend\n' "$DNS_PORT" "$ZONE" "$ZONE" >"$TMP/probe.txt"
for _ in $(seq 1 100); do
    nsupdate -y "hmac-sha256:upd:$SECRET" "$TMP/probe.txt" >/dev/null 2>&1 && break
    sleep 0.1
done
nsupdate -y "hmac-sha256:upd:$SECRET" "$TMP/probe.txt" >"$TMP/probe.out" 2>&1 ||
    { cat "$TMP/probe.out" "$TMP/pdm.log" >&2; die "pdm refuses the bench key"; }

pdm zone export "$ZONE" >"$TMP/zone.txt" 2>"$TMP/export.log" ||
    { cat "$TMP/export.log" >&2; die "zone export failed"; }
# knot NAME PORT DB_MODE: knotd serving the zone (dynamic, update ACL with the same key).
knot() {
    local name=$1 port=$2 mode=$3 pid
    mkdir -p "$TMP/$name"
    cp "$TMP/zone.txt" "$TMP/$name/zone.txt"
    cat >"$TMP/$name/knot.conf" <<KNOT
server:
    rundir: "$TMP/$name"
    listen: 127.0.0.1@$port
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stdout
    any: warning
database:
    storage: "$TMP/$name"
    journal-db-mode: $mode
key:
  - id: upd
    algorithm: hmac-sha256
    secret: $SECRET
acl:
  - id: upd
    address: 127.0.0.0/8
    key: upd
    action: update
zone:
  - domain: $ZONE
    file: "$TMP/$name/zone.txt"
    zonefile-sync: -1
    acl: upd
KNOT
    taskset -c 0 knotd -c "$TMP/$name/knot.conf" >"$TMP/$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 300); do
        dig +tries=1 +time=1 +short -p "$port" @127.0.0.1 "$ZONE" SOA 2>/dev/null | grep -q hostmaster && return 0
        kill -0 "$pid" 2>/dev/null || { cat "$TMP/$name.log" >&2; die "knotd ($name) exited"; }
        sleep 0.1
    done
    die "knotd ($name) does not serve $ZONE"
}
# robust: Knot's default, an fsync per journal write. asynchronous: no fsync per write, as
# pdm's SQLite store (WAL, synchronous=NORMAL) does.
KNOT_PORT=$(free_port)
knot knot "$KNOT_PORT" robust
KNOTA_PORT=$(free_port)
knot knota "$KNOTA_PORT" asynchronous

log "measuring: $N iterations (add + delete) per run; ports: pdm $DNS_PORT, knot $KNOT_PORT, knot async $KNOTA_PORT"
P1=$(rate "$DNS_PORT" 1)
K1=$(rate "$KNOT_PORT" 1)
A1=$(rate "$KNOTA_PORT" 1)
PC=$(rate "$DNS_PORT" "$CLIENTS")
KC=$(rate "$KNOT_PORT" "$CLIENTS")
AC=$(rate "$KNOTA_PORT" "$CLIENTS")
PS=$(served "$DNS_PORT")
KS=$(served "$KNOT_PORT")
AS=$(served "$KNOTA_PORT")
PDM_SERIAL=$(dig +short -p "$DNS_PORT" @127.0.0.1 "$ZONE" SOA | awk '{print $3}')

printf '\nRFC 2136 UPDATE, zone %s, TSIG hmac-sha256, one TXT add or delete per update\n' "$ZONE"
printf '%-26s %-14s %-14s %-18s\n' server "1 client /s" "$CLIENTS clients /s" "served on return"
printf '%-26s %-14s %-14s %-18s\n' "pdm (SQLite WAL)" "$P1" "$PC" "$PS/$SAMPLE"
printf '%-26s %-14s %-14s %-18s\n' "knot (journal robust)" "$K1" "$KC" "$KS/$SAMPLE"
printf '%-26s %-14s %-14s %-18s\n' "knot (journal async)" "$A1" "$AC" "$AS/$SAMPLE"
printf 'pdm/knot robust: 1 client %s, %s clients %s; pdm/knot async: 1 client %s, %s clients %s (target >= 1)\n' \
    "$(ratio "$P1" "$K1")" "$CLIENTS" "$(ratio "$PC" "$KC")" "$(ratio "$P1" "$A1")" "$CLIENTS" "$(ratio "$PC" "$AC")"
printf 'pdm serial now %s\n' "$PDM_SERIAL"

if [[ -f bench/update-pdns.sh ]]; then
    printf '\n'
    PDM_BIN=$PDM_BIN bash bench/update-pdns.sh
else
    log "bench/update-pdns.sh not there yet: PowerDNS API PATCH part skipped"
fi
