#!/usr/bin/env bash
# bench/replica.sh — a commit through one replica, answered by another (issue: incremental data
# plane, "the same on a second replica (Postgres)").
#
# Two `pdm serve` processes on one Postgres database (a throwaway cluster, or DATABASE). COUNT
# fresh children are committed through replica A; each is timed from sending `commit` until
# replica B's DNS answers the child with the committed address (bench/latency.py, UDP poll every
# 2 ms), then the same through A against A's own DNS for comparison (read-your-writes: answered
# before the 200). Prints p50/p90/p99/max of both. The replicas share core 0, clients core 1.
# Benchmarks report; they do not assert.
#
# Env: COUNT (default 100)  CHILDREN (children committed first, default 10000: the pool a
#      replica follows is not empty)  DATABASE (postgres://...; default: a throwaway cluster)
#      PDM_BIN
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

COUNT=${COUNT:-100}
CHILDREN=${CHILDREN:-10000}
POOL=example.test
MAX_SECONDS=${MAX_SECONDS:-900}
BENCH_NAME=replica
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_pdm_bin

# A throwaway Postgres cluster unless DATABASE names one, stopped on exit before bench/lib.sh's
# cleanup stops the replicas and removes TMP.
if [[ -z ${DATABASE:-} ]]; then
    PG_BIN=$(compgen -G '/usr/lib/postgresql/*/bin' | sort -V | tail -n 1 || true)
    [[ -n $PG_BIN && -x $PG_BIN/initdb ]] || die "PostgreSQL server binaries not found (apt-get install postgresql)"
    as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
    mkdir -p "$TMP/pg"
    if [[ $(id -u) -eq 0 ]]; then
        chmod o+x "$TMP" # the postgres user walks into it
        chown postgres: "$TMP/pg"
    fi
    as_pg "$PG_BIN/initdb" -D "$TMP/pg/data" -U postgres -A trust -E UTF8 --no-sync >"$TMP/initdb.log" 2>&1 ||
        { cat "$TMP/initdb.log" >&2; die "initdb failed"; }
    PG_PORT=$(free_port)
    as_pg "$PG_BIN/pg_ctl" -D "$TMP/pg/data" -l "$TMP/pg/postgres.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $TMP/pg" start >/dev/null ||
        { cat "$TMP/pg/postgres.log" >&2; die "could not start PostgreSQL"; }
    trap 'rc=$?; as_pg "$PG_BIN/pg_ctl" -D "$TMP/pg/data" stop -m immediate -w >/dev/null 2>&1; (exit $rc); cleanup' EXIT
    DATABASE="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    log "PostgreSQL on 127.0.0.1:$PG_PORT"
fi

api_setup
# Both replicas must open the same sealed keys: one secret key for both (api_setup cleared PDM_*).
PDM_SECRET_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export PDM_SECRET_KEY

start_replica() { # NAME HTTP_PORT DNS_PORT: waits for /readyz
    PDM_LOG=${PDM_LOG:-warn} taskset -c 0 "$PDM_BIN" --database "$DB" serve \
        --http "127.0.0.1:$2" --dns "127.0.0.1:$3" >"$TMP/$1.log" 2>&1 &
    PIDS+=($!)
    watchdog $!
    for _ in $(seq 1 600); do
        curl -fsS -o /dev/null "http://127.0.0.1:$2/readyz" 2>/dev/null && return
        sleep 0.05
    done
    tail -n 30 "$TMP/$1.log" >&2
    die "replica $1 not ready"
}

HTTP_B=$(free_port)
DNS_B=$(free_port)
start_replica a "$HTTP_PORT" "$DNS_PORT"
start_replica b "$HTTP_B" "$DNS_B"
log "replica A http $HTTP_PORT dns $DNS_PORT, replica B http $HTTP_B dns $DNS_B, database $DB"

if ((CHILDREN > 0)); then
    log "committing $CHILDREN children first (bench/fill.py, 4 clients, through A)"
    out=$(taskset -c 1 python3 bench/fill.py "$BASE" "$TOKEN" "$POOL" 0 "$CHILDREN" 4) ||
        { printf '%s\n' "$out" >&2; die "filling failed"; }
fi

printf '\n%d commits through replica A (Postgres, pool of %d children), commit sent -> first correct answer:\n' "$COUNT" "$CHILDREN"
printf 'on replica B: '
timeout 600 taskset -c 1 python3 bench/latency.py "$BASE" "$TOKEN" "$POOL" 127.0.0.1 "$DNS_B" "$COUNT" | tail -n 1
printf 'on replica A: '
timeout 600 taskset -c 1 python3 bench/latency.py "$BASE" "$TOKEN" "$POOL" 127.0.0.1 "$DNS_PORT" "$COUNT" | tail -n 1
printf '(target: p99 < 100 ms on replica B; 0 on A, which answers before its 200)\n'
