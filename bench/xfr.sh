#!/usr/bin/env bash
# bench/xfr.sh — pdm as a primary (issue 13), next to Knot in the same run.
#
#   1. AXFR of a signed pool zone with N delegations (NS + DS each, NSEC3): from pdm (first
#      transfer, which signs what the cache lacks, then a second one) and from Knot serving
#      the same signed zone (pdm's `zone export --signed`, loaded as is): time, bytes, messages,
#      and each server's peak RSS.
#   2. IXFR of one commit into that pool (the Knot secondary's, from pdm's transfer log):
#      bytes and time.
#   3. commit -> the child answered by a Knot secondary (pool IXFR + catalog IXFR + the child's
#      AXFR, all by NOTIFY): p50/p90/p99 over COMMITS commits (bench/latency.py).
# pdm and the primary Knot are pinned to CPU 0, clients and the secondary to CPU 1.
# Benchmarks report; they do not assert. Targets: AXFR time <= 1.5x Knot's; IXFR of one
# commit < 5 KB and < 50 ms; commit -> secondary p99 < 1 s.
#
# Env: N (delegations, default 100000)  COMMITS (default 100)  PDM_BIN  MAX_SECONDS
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

N=${N:-100000}
COMMITS=${COMMITS:-100}
POOL=pool.bench
MAX_SECONDS=${MAX_SECONDS:-3600}
BENCH_NAME=xfr
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for t in knotd kdig python3 curl taskset; do command -v "$t" >/dev/null || die "$t not installed"; done

ensure_pdm_bin
export PDM_SECRET_KEY=${PDM_SECRET_KEY:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}
DB=sqlite://$TMP/pdm.db
HTTP_PORT=$(free_port)
DNS_PORT=$(free_port)
KNOT_PORT=$(free_port)
SEC_PORT=$(free_port)
BASE=http://127.0.0.1:$HTTP_PORT

cat >"$TMP/pdm.toml" <<TOML
hostmaster = "hostmaster.$POOL"
packet_cache = 0
[transfer]
allow = [{ from = ["127.0.0.0/8"], key = "xfr" }]
also_notify = [{ address = "127.0.0.1:$SEC_PORT", key = "xfr" }]
catalog = "catalog.invalid"
notify_retry_initial_ms = 200
[[nameservers]]
name = "ns1.$POOL"
addresses = ["127.0.0.1"]
[[pools]]
domain = "$POOL"
TOML
PDM_GLOBAL_ARGS=(--config "$TMP/pdm.toml")
pdm() { "$PDM_BIN" --database "$DB" "${PDM_GLOBAL_ARGS[@]}" "$@"; }

log "zone file: $POOL with $N delegations (NS + DS)"
python3 - "$POOL" "$N" >"$TMP/pool.zone" <<'PY'
import hashlib, sys
pool, n = sys.argv[1], int(sys.argv[2])
out = [f"$ORIGIN {pool}.", "$TTL 3600",
       f"@ IN SOA ns1 hostmaster 1 10800 3600 604800 300", "@ IN NS ns1", "ns1 IN A 127.0.0.1"]
for i in range(n):
    d = hashlib.sha256(str(i).encode()).hexdigest().upper()
    out.append(f"c{i} IN NS ns1.c{i}.example.net.")
    out.append(f"c{i} IN DS {i % 65536} 13 2 {d}")
print("\n".join(out))
PY
pdm migrate >/dev/null 2>&1
t0=$(date +%s.%N)
pdm zone import --zone "$POOL" --sign --denial nsec3 "$TMP/pool.zone" >"$TMP/import.log" 2>&1 ||
    { cat "$TMP/import.log" >&2; die "import failed"; }
log "imported and keyed in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
SECRET=$(pdm tsig create xfr 2>/dev/null)
TOKEN=$(pdm token create --name bench --scope admin 2>/dev/null | tail -n 1)

PDM_LOG=${PDM_LOG:-warn} taskset -c 0 "$PDM_BIN" --database "$DB" "${PDM_GLOBAL_ARGS[@]}" serve \
    --dns "127.0.0.1:$DNS_PORT" --http "127.0.0.1:$HTTP_PORT" >"$TMP/pdm.log" 2>&1 &
PDM_PID=$!
PIDS+=("$PDM_PID")
watchdog "$PDM_PID"
for _ in $(seq 1 600); do
    curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null && break
    kill -0 "$PDM_PID" 2>/dev/null || { tail -n 30 "$TMP/pdm.log" >&2; die "pdm exited"; }
    sleep 0.1
done

# axfr NAME PORT [KEY]: one AXFR with kdig from CPU 1; prints "seconds bytes messages records".
axfr() {
    local key=() t0 t1
    [[ -n ${3:-} ]] && key=(-y "hmac-sha256:xfr:$3")
    t0=$(date +%s.%N)
    taskset -c 1 kdig -b 127.0.0.2 @127.0.0.1 -p "$2" +tcp "${key[@]}" AXFR "$1" >"$TMP/axfr.out" 2>&1
    t1=$(date +%s.%N)
    # ";; Received 123 B (4 messages, 56 records)"
    awk -v a="$t0" -v b="$t1" '/^;; Received/ {gsub(/[(,]/, ""); bytes = $3; msgs = $5; recs = $7}
        END {printf "%.3f %s %s %s", b - a, bytes, msgs, recs}' "$TMP/axfr.out"
}
hwm() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

read -r P1_S P1_B P1_M P1_R <<<"$(axfr "$POOL" "$DNS_PORT" "$SECRET")"
read -r P2_S P2_B P2_M P2_R <<<"$(axfr "$POOL" "$DNS_PORT" "$SECRET")"
PDM_HWM=$(hwm "$PDM_PID")

pdm zone export --signed "$POOL" >"$TMP/signed.zone" 2>"$TMP/export.log" ||
    { cat "$TMP/export.log" >&2; die "signed export failed"; }
mkdir -p "$TMP/knot"
cat >"$TMP/knot/knot.conf" <<KNOT
server:
    rundir: "$TMP/knot"
    listen: 127.0.0.1@$KNOT_PORT
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stdout
    any: warning
database:
    storage: "$TMP/knot"
acl:
  - id: all
    address: 127.0.0.0/8
    action: transfer
zone:
  - domain: $POOL
    file: "$TMP/signed.zone"
    zonefile-sync: -1
    journal-content: none
    acl: all
KNOT
taskset -c 0 knotd -c "$TMP/knot/knot.conf" >"$TMP/knot.log" 2>&1 &
KNOT_PID=$!
PIDS+=("$KNOT_PID")
for _ in $(seq 1 600); do
    dig +tries=1 +time=1 +short -p "$KNOT_PORT" @127.0.0.1 "$POOL" SOA 2>/dev/null | grep -q hostmaster && break
    sleep 0.1
done
read -r K_S K_B K_M K_R <<<"$(axfr "$POOL" "$KNOT_PORT")"
read -r K2_S K2_B K2_M K2_R <<<"$(axfr "$POOL" "$KNOT_PORT")"
KNOT_HWM=$(hwm "$KNOT_PID")
kill "$KNOT_PID" 2>/dev/null || true

printf '\nAXFR of %s, %d delegations, signed (NSEC3)\n' "$POOL" "$N"
printf '%-28s %-9s %-12s %-9s %-10s %-9s\n' server seconds bytes messages records peak_MiB
printf '%-28s %-9s %-12s %-9s %-10s %-9s\n' "pdm (first, signs)" "$P1_S" "$P1_B" "$P1_M" "$P1_R" "$PDM_HWM"
printf '%-28s %-9s %-12s %-9s %-10s %-9s\n' "pdm (again)" "$P2_S" "$P2_B" "$P2_M" "$P2_R" "$PDM_HWM"
printf '%-28s %-9s %-12s %-9s %-10s %-9s\n' "knot (same zone, presigned)" "$K_S" "$K_B" "$K_M" "$K_R" "$KNOT_HWM"
printf '%-28s %-9s %-12s %-9s %-10s %-9s\n' "knot (again)" "$K2_S" "$K2_B" "$K2_M" "$K2_R" "$KNOT_HWM"
printf 'pdm/knot time: first %s, again %s\n' "$(ratio "$P1_S" "$K2_S")" "$(ratio "$P2_S" "$K2_S")"

# A Knot secondary of the pool and the catalog (children come and go through it).
mkdir -p "$TMP/sec"
cat >"$TMP/sec/knot.conf" <<KNOT
server:
    rundir: "$TMP/sec"
    listen: 127.0.0.1@$SEC_PORT
log:
  - target: stdout
    any: warning
database:
    storage: "$TMP/sec"
key:
  - id: xfr
    algorithm: hmac-sha256
    secret: $SECRET
remote:
  - id: primary
    address: 127.0.0.1@$DNS_PORT
    key: xfr
acl:
  - id: notify
    address: 127.0.0.1
    key: xfr
    action: notify
template:
  - id: default
    storage: "$TMP/sec"
    master: primary
    acl: notify
    zonefile-sync: -1
    zonefile-load: none
    journal-content: all
zone:
  - domain: $POOL
  - domain: catalog.invalid
    catalog-role: interpret
    catalog-template: default
KNOT
taskset -c 1 knotd -c "$TMP/sec/knot.conf" >"$TMP/sec.log" 2>&1 &
PIDS+=($!)
want=$(dig +short -p "$DNS_PORT" @127.0.0.1 "$POOL" SOA | awk '{print $3}')
for _ in $(seq 1 1200); do
    [[ $(dig +tries=1 +time=1 +short -p "$SEC_PORT" @127.0.0.1 "$POOL" SOA 2>/dev/null | awk '{print $3}') == "$want" ]] && break
    sleep 0.1
done
log "secondary holds $POOL at $want; $COMMITS commits follow"
LAT=$(timeout 900 taskset -c 1 python3 bench/latency.py "$BASE" "$TOKEN" "$POOL" 127.0.0.1 "$SEC_PORT" "$COMMITS" || true)
IXFR=$(curl -fsS -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/transfers" | python3 -c '
import json, sys
t = [x for x in json.load(sys.stdin)["transfers"] if x["zone"] == sys.argv[1] + "." and x["kind"] == "Ixfr"]
b = sorted(x["bytes"] for x in t); m = sorted(x["millis"] for x in t)
print("n=%d bytes p50=%d max=%d | ms p50=%d max=%d" % (len(t), b[len(b)//2], b[-1], m[len(m)//2], m[-1]) if t else "none")
' "$POOL")
printf '\nIXFR of one commit into %s (pdm -> Knot secondary): %s\n' "$POOL" "$IXFR"
printf 'commit -> child answered by the Knot secondary: %s\n' "$LAT"
