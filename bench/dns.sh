#!/usr/bin/env bash
# bench/dns.sh — pdm vs Knot DNS on the same zone and query mix, in one run.
#
# Both servers serve bench/bench.test.zone on 127.0.0.1 (UDP), each pinned to CPU 0;
# dnsperf (1 thread) is pinned to CPU 1. For each server and each offered load
# (steady RATE, then a saturation PROBE) it prints achieved qps, loss, average latency and
# the server's CPU time (utime+stime from /proc/PID/stat) per 1,000 answered queries, the
# kernel's share of it (sys), context switches per answer (all threads),
# the softirq time on the client's CPU per 1,000 answers (cl_si/1kq: on loopback, packet
# delivery runs on the CPU that sends or takes the packet, so a server whose answers go out
# from the client's side has that work booked there, not on its own CPU time), the busy time
# of both CPUs per 1,000 answers (both/1kq: dnsperf included), then the pdm/Knot ratios of
# CPU per answer: the server's own, the server's plus cl_si (+cl_si), and both CPUs. pdm runs twice: as configured by default (packet cache on) and as
# `pdm-nc` with the packet cache off. Benchmarks report; they do not assert.
#
# Env: DURATION (s, default 10)  RATE (default 20000)  PROBE (default 100000)
#      QUERIES (default bench/queries.txt)  PDM_BIN (skip `cargo build --release`)
#      MODE=udp|tcp (default udp). tcp also runs knot-nd (below; KNOT_NODELAY=0 skips it)
#      and bench/pipeline.py against each server: the latency of two pipelined queries.
#      CLIENT_CPU (default 1): the CPU dnsperf is pinned to. 0 puts it on the servers' core:
#      no cross-CPU wake-ups, so the CPU per answer is the server's own work (see the
#      wake/q column: interrupts the servers' answers raise on the client's CPU, per answer).
#      LUA=1: the LUA record mix (bench/lua.zone, bench/lua-queries.txt) on pdm vs PowerDNS
#      4.7 (enable-lua-records=shared), plus pdm's LUA/static cost ratio (see bench/lua.sh).
#      PROFILE=1: instead of timed runs, both servers run under `valgrind --tool=callgrind`
#      and each mix sends PROFILE_QUERIES (default 20000) queries at 2,000 qps; prints the
#      instructions per answer (all threads, collection on only while dnsperf runs).
#      PROFILE_KEEP=DIR keeps each mix's callgrind dumps there (DIR/LABEL.*), for
#      callgrind_annotate.
#      DNSSEC=1: both servers sign the zone (Knot: automatic signing, ECDSA P-256 CSK,
#      NSEC3 0 iterations/no salt; pdm: online signing, same parameters) and every query
#      has DO=1. Two mixes run: the positive QUERIES file and an NXDOMAIN-heavy mix of
#      random names (one new name per query: pdm signs nothing new for these, the NSEC3
#      records and the SOA are cached signatures).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# LUA=1: LUA records, pdm vs PowerDNS 4.7 instead of Knot (bench/lua.sh has the details).
if [[ ${LUA:-0} == 1 ]]; then exec bash bench/lua.sh "$@"; fi
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

DURATION=${DURATION:-10}
RATE=${RATE:-20000}
PROBE=${PROBE:-100000}
QUERIES=${QUERIES:-bench/queries.txt}
MODE=${MODE:-udp}
CLIENT_CPU=${CLIENT_CPU:-1}
ZONE=bench/bench.test.zone
# hard bound on the whole run: servers are killed by a watchdog after this many seconds
MAX_SECONDS=$((DURATION * 4 + 240))
BENCH_NAME=dns
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"


# --- tools (Debian), same approach as scripts/test ------------------------------------
missing=()
for spec in knot:knotd dnsperf:dnsperf util-linux:taskset curl:curl bind9-dnsutils:dig; do
    command -v "${spec#*:}" >/dev/null 2>&1 || missing+=("${spec%%:*}")
done
# knot-nd's shim (MODE=tcp) is built here: a C compiler and libc's headers.
if [[ $MODE == tcp ]] && ! { command -v cc >/dev/null 2>&1 && [[ -e /usr/include/dlfcn.h ]]; }; then
    missing+=(gcc libc6-dev)
fi
if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
[[ $(nproc) -ge 2 ]] || log "warning: fewer than 2 CPUs; pinning will put server and client on one core"

# --- pdm release binary ---------------------------------------------------------------
ensure_pdm_bin



if [[ ${PROFILE:-0} == 1 ]]; then
    command -v valgrind >/dev/null 2>&1 || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends valgrind
    # Instrumentation starts off (and start-up runs at near native speed): start-up and
    # signing at load are not the answer path.
    SERVER_WRAP=(valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$TMP/callgrind.%p")
    START_SLOWDOWN=10
    MAX_SECONDS=$((MAX_SECONDS + 1200))
fi

# --- Knot ------------------------------------------------------------------------------
# start_knot NAME [PRELOAD]: a knotd serving the zone on a port of its own, rundir and
# database under $TMP/NAME; PRELOAD, if given, is put in its LD_PRELOAD.
start_knot() {
    local name=$1 preload=${2:-} port dir
    port=$(free_port) dir="$TMP/$name"
    mkdir -p "$dir/run" "$dir/db" "$dir/zones"
    cp "$ZONE" "$dir/zones/bench.test.zone"
    cat >"$dir/knot.conf" <<KNOT
server:
    rundir: "$dir/run"
    listen: 127.0.0.1@$port
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: warning
database:
    storage: "$dir/db"
template:
  - id: default
    storage: "$dir/zones"
    file: "%s.zone"
    journal-content: none
    zonefile-sync: -1
policy:
  - id: csk
    algorithm: ecdsap256sha256
    single-type-signing: on
    nsec3: on
    nsec3-iterations: 0
    nsec3-salt-length: 0
zone:
  - domain: bench.test
KNOT
    if [[ ${DNSSEC:-0} == 1 ]]; then
        printf '    dnssec-signing: on\n    dnssec-policy: csk\n' >>"$dir/knot.conf"
    fi
    env ${preload:+LD_PRELOAD="$preload"} taskset -c 0 "${SERVER_WRAP[@]}" knotd -c "$dir/knot.conf" >"$dir/knotd.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    watchdog "$pid"
    wait_dns "$port" || { cat "$dir/knotd.log" >&2; die "knotd ($name) did not come up"; }
    log "$name pid $pid on 127.0.0.1:$port (CPU 0)"
    SRV_PID[$name]=$pid SRV_PORT[$name]=$port
}
declare -A SRV_PID SRV_PORT
SERVERS=(knot)
start_knot knot
# knot-nd (MODE=tcp, unless KNOT_NODELAY=0 or PROFILE=1: user-space instructions do not
# depend on it): the same knotd with TCP_NODELAY set on every
# accepted socket by a small LD_PRELOAD shim. knotd leaves Nagle's algorithm on, so an
# answer written while its previous one is unacknowledged waits for the client's next
# segment and is sent from the softirq that delivers it, on the client's CPU; with
# TCP_NODELAY it is sent at once from knotd's own CPU, as pdm's are.
# Same answers, the transmission booked to the sender: the comparison of TCP servers'
# own CPU on loopback that does not depend on where Nagle leaves the work.
if [[ $MODE == tcp && ${KNOT_NODELAY:-1} == 1 && ${PROFILE:-0} != 1 ]]; then
    cc -shared -fPIC -O2 -o "$TMP/nodelay.so" bench/nodelay.c -ldl
    start_knot knot-nd "$TMP/nodelay.so"
    SERVERS+=(knot-nd)
fi

# --- pdm -------------------------------------------------------------------------------
DB="sqlite://$TMP/pdm.db"
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep '^PDM_' | grep -vx 'PDM_BIN' || true)
# A throwaway key for the demo config's signed pool zone (and bench.test when DNSSEC=1).
PDM_SECRET_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export PDM_SECRET_KEY
SIGN_ARGS=()
[[ ${DNSSEC:-0} == 1 ]] && SIGN_ARGS=(--sign --denial nsec3)
"$PDM_BIN" --database "$DB" zone import --zone bench.test "${SIGN_ARGS[@]}" "$ZONE" >"$TMP/import.log" 2>&1 ||
    { cat "$TMP/import.log" >&2; die "pdm zone import failed"; }
# Two pdm processes on the same database: `pdm` as configured by default (packet cache on) and
# `pdm-nc` with the packet cache off, so the run shows the answer path itself as well.
start_pdm() { # name extra-args...
    local name=$1 port http
    shift
    port=$(free_port) http=$(free_port)
    serve_pdm "$name" "$port" "$http" "$@"
    log "$name pid $STARTED_PID on 127.0.0.1:$port (CPU 0), $(nproc) CPUs, $DURATION s per run, mode $MODE"
    SRV_PID[$name]=$STARTED_PID SRV_PORT[$name]=$port
}
start_pdm pdm
start_pdm pdm-nc --packet-cache 0

# --- runs ------------------------------------------------------------------------------
CLK_TCK=$(getconf CLK_TCK)

declare -A R
# profile LABEL PID PORT: PROFILE_QUERIES queries of RUN_QUERIES at 2,000 qps with callgrind
# collecting; prints instructions per answered query.
profile() {
    local label=$1 pid=$2 port=$3 n=${PROFILE_QUERIES:-20000} out completed ir lines
    # The file is short for the static mixes: repeat it to about n queries.
    lines=$(grep -vc '^#' "${RUN_QUERIES:-$QUERIES}")
    lines=$(( (n + lines - 1) / lines ))
    head -n "$n" "${RUN_QUERIES:-$QUERIES}" >"$TMP/profile-queries.txt"
    # Switching instrumentation off discards the counts: dump first.
    callgrind_control -i on "$pid" >/dev/null 2>&1
    callgrind_control -z "$pid" >/dev/null 2>&1
    rm -f "$TMP"/callgrind."$pid".[0-9]*
    out=$(timeout 300 taskset -c "$CLIENT_CPU" dnsperf -m "$MODE" -s 127.0.0.1 -p "$port" -d "$TMP/profile-queries.txt" \
        -n "$lines" -c 4 -T 1 -Q 2000 -q 100 -t 5 "${DO_ARGS[@]}" 2>&1) || true
    callgrind_control -d "$pid" >/dev/null 2>&1
    callgrind_control -i off "$pid" >/dev/null 2>&1
    completed=$(awk '/Queries completed:/ {print $3}' <<<"$out")
    # Every thread's dump of this collection window, summed.
    ir=$(cat "$TMP"/callgrind."$pid".[0-9]* 2>/dev/null | awk '/^summary:/ {s += $2} END {print s + 0}')
    if [[ -n ${PROFILE_KEEP:-} ]]; then
        mkdir -p "$PROFILE_KEEP"
        for f in "$TMP"/callgrind."$pid".[0-9]*; do
            if [[ -e $f ]]; then cp "$f" "$PROFILE_KEEP/$label.${f##*.}"; fi
        done
    fi
    [[ $ir == 0 ]] && log "no callgrind dump for $label: $(ls "$TMP")"
    R[$label.ir]=$(awk -v i="$ir" -v n="${completed:-0}" 'BEGIN {if (n > 0) printf "%.0f", i / n; else print "nan"}')
    printf '%-16s %10s %14s %14s\n' "$label" "${completed:-0}" "$ir" "${R[$label.ir]}"
}

# per_1k TICKS N: TICKS in ms per 1,000 of N answers.
per_1k() {
    awk -v d="$1" -v hz="$CLK_TCK" -v n="$2" 'BEGIN {if (n > 0) printf "%.3f", d * 1000 / hz / (n / 1000); else print "nan"}'
}

# machine_ticks: busy ticks of the servers' CPU and the client's (once when they are one):
# dnsperf included, and whatever a server's packets cost in softirq on either CPU.
machine_ticks() {
    if [[ $CLIENT_CPU == 0 ]]; then
        busy_ticks 0
    else
        echo $(($(busy_ticks 0) + $(busy_ticks "$CLIENT_CPU")))
    fi
}

run() { # label pid port rate clients outstanding
    local label=$1 pid=$2 port=$3 rate=$4 clients=$5 outst=$6 out before after sys0 sys1 ctx0 ctx1 ipi0 ipi1 m0 m1 si0 si1
    before=$(cpu_ticks "$pid") sys0=$(sys_ticks "$pid") ctx0=$(ctx_switches "$pid") ipi0=$(wakeups_on "$CLIENT_CPU")
    m0=$(machine_ticks) si0=$(softirq_ticks "$CLIENT_CPU")
    out=$(timeout $((DURATION + 30)) taskset -c "$CLIENT_CPU" dnsperf -m "$MODE" -s 127.0.0.1 -p "$port" \
        -d "${RUN_QUERIES:-$QUERIES}" -c "$clients" -T 1 -l "$DURATION" -Q "$rate" -q "$outst" -t 2 \
        "${DO_ARGS[@]}" 2>&1) || true
    after=$(cpu_ticks "$pid") sys1=$(sys_ticks "$pid") ctx1=$(ctx_switches "$pid") ipi1=$(wakeups_on "$CLIENT_CPU")
    m1=$(machine_ticks) si1=$(softirq_ticks "$CLIENT_CPU")
    local completed lost lostpct qps lat
    completed=$(awk '/Queries completed:/ {print $3}' <<<"$out")
    lost=$(awk '/Queries lost:/ {print $3}' <<<"$out")
    lostpct=$(sed -n 's/.*Queries lost:.*(\([0-9.]*\)%).*/\1/p' <<<"$out")
    qps=$(awk '/Queries per second:/ {print $4}' <<<"$out")
    lat=$(awk '/Average Latency/ {print $4}' <<<"$out")
    if [[ -z $completed ]]; then
        printf '%s\n' "$out" >&2
        log "dnsperf produced no summary for $label"
        completed=0 lost=0 lostpct=100 qps=0 lat=0
    fi
    local cpu_ms per1k sys_pct ctx_q ipi_q both1k si1k
    both1k=$(per_1k $((m1 - m0)) "$completed")
    si1k=$(per_1k $((si1 - si0)) "$completed")
    ipi_q=$(awk -v c=$((ipi1 - ipi0)) -v n="$completed" 'BEGIN {if (n > 0) printf "%.2f", c / n; else print "nan"}')
    sys_pct=$(awk -v s=$((sys1 - sys0)) -v d=$((after - before)) 'BEGIN {if (d > 0) printf "%.0f", 100 * s / d; else print "nan"}')
    ctx_q=$(awk -v c=$((ctx1 - ctx0)) -v n="$completed" 'BEGIN {if (n > 0) printf "%.2f", c / n; else print "nan"}')
    cpu_ms=$(awk -v d=$((after - before)) -v hz="$CLK_TCK" 'BEGIN {printf "%.0f", d * 1000 / hz}')
    per1k=$(awk -v ms="$cpu_ms" -v n="$completed" 'BEGIN {if (n > 0) printf "%.3f", ms / (n / 1000); else print "nan"}')
    R[$label.qps]=$qps R[$label.cpu]=$per1k R[$label.both]=$both1k
    # With the client on its own core, the softirq there is work the server's traffic caused.
    R[$label.cpusi]=$per1k
    [[ $CLIENT_CPU != 0 ]] && R[$label.cpusi]=$(awk -v a="$per1k" -v b="$si1k" 'BEGIN {printf "%.3f", a + b}')
    local rcodes
    rcodes=$(sed -n 's/.*Response codes: *//p' <<<"$out" | tr -d ' ')
    printf '%-16s %9s %12.0f %10s %8s%% %10s %10s %12s %5s%% %8s %7s %9s %10s  %s\n' "$label" "$rate" "$qps" "$completed" \
        "${lostpct:-0}" "$(awk -v l="$lat" 'BEGIN {printf "%.3f", l * 1000}')" "$cpu_ms" "$per1k" "$sys_pct" "$ctx_q" "$ipi_q" "$si1k" "$both1k" "$rcodes"
}

DO_ARGS=()
LOADS=(steady probe)
if [[ ${DNSSEC:-0} == 1 ]]; then
    DO_ARGS=(-D)
    LOADS=(pos-steady pos-probe nx-steady nx-probe)
    NXQ="$TMP/nx-queries.txt"
    awk 'BEGIN {srand(42); for (i = 0; i < 200000; i++) printf "n%08x.bench.test A\n", int(rand() * 2^31)}' >"$NXQ"
fi
if [[ ${PROFILE:-0} == 1 ]]; then
    LOADS=(static)
    [[ ${DNSSEC:-0} == 1 ]] && LOADS=(pos nx)
    printf '\n%-16s %10s %14s %14s\n' server answered instructions instr/answer
    for srv in knot pdm pdm-nc; do
        for load in "${LOADS[@]}"; do
            RUN_QUERIES=$QUERIES
            [[ $load == nx ]] && RUN_QUERIES=$NXQ
            profile "$srv@$load" "${SRV_PID[$srv]}" "${SRV_PORT[$srv]}"
        done
    done
    printf '\ninstructions per answer, pdm/Knot\n'
    for srv in pdm pdm-nc; do
        for load in "${LOADS[@]}"; do
            printf '  %-7s %-7s %s\n' "$srv" "$load" "$(ratio "${R[$srv@$load.ir]}" "${R[knot@$load.ir]}")"
        done
    done
    exit 0
fi
printf '\n%-16s %9s %12s %10s %9s %10s %10s %12s %6s %8s %7s %9s %10s  %s\n' server offered_qps achieved_qps answered lost avg_ms cpu_ms cpu_ms/1kq sys cs/query wake/q cl_si/1kq both/1kq rcodes
for srv in "${SERVERS[@]}" pdm pdm-nc; do
    pid=${SRV_PID[$srv]} port=${SRV_PORT[$srv]}
    for load in "${LOADS[@]}"; do
        RUN_QUERIES=$QUERIES
        [[ $load == nx-* ]] && RUN_QUERIES=$NXQ
        if [[ $load == *probe ]]; then
            run "$srv@$load" "$pid" "$port" "$PROBE" 8 500
        else
            run "$srv@$load" "$pid" "$port" "$RATE" 4 200
        fi
        sleep 1
    done
done

if [[ $MODE == tcp ]]; then
    # What Nagle's algorithm costs a client: bench/pipeline.py's two pipelined queries.
    printf '\ntwo pipelined queries as two segments on a warm connection, ms to both answers (30 rounds)\n'
    printf '%-16s %8s %8s %8s\n' server median min max
    for srv in "${SERVERS[@]}" pdm; do
        read -r p_med p_min p_max < <(python3 bench/pipeline.py "${SRV_PORT[$srv]}" || echo '? ? ?')
        printf '%-16s %8s %8s %8s\n' "$srv" "$p_med" "$p_min" "$p_max"
    done
fi

for peer in "${SERVERS[@]}"; do
    printf '\nratios pdm/%s (qps: higher is better for pdm; cpu/1kq: lower is better for pdm)\n' "$peer"
    for srv in pdm pdm-nc; do
        for load in "${LOADS[@]}"; do
            printf '  %-7s %-10s qps %s   cpu_ms/1kq %s   +cl_si %s   both/1kq %s\n' "$srv" "$load" \
                "$(ratio "${R[$srv@$load.qps]}" "${R[$peer@$load.qps]}")" \
                "$(ratio "${R[$srv@$load.cpu]}" "${R[$peer@$load.cpu]}")" \
                "$(ratio "${R[$srv@$load.cpusi]}" "${R[$peer@$load.cpusi]}")" \
                "$(ratio "${R[$srv@$load.both]}" "${R[$peer@$load.both]}")"
        done
    done
done
printf 'pdm: packet cache on (the default); pdm-nc: --packet-cache 0 (every answer planned and encoded)\n'
[[ ${SERVERS[*]} == *knot-nd* ]] && printf 'knot-nd: knotd with TCP_NODELAY on its accepted sockets (bench/nodelay.c), its answers sent at once\n'
[[ ${DNSSEC:-0} == 1 ]] && printf 'DNSSEC: DO=1 on every query; pdm signature cache: see README (bench section)\n'
printf '\nknotd %s, %s, query file %s (%s lines), dnsperf -T 1 pinned to CPU %s, servers pinned to CPU 0\n' \
    "$(knotd --version | awk '{print $NF}')" "$("$PDM_BIN" --version 2>/dev/null || echo '?')" \
    "$QUERIES" "$(grep -vc '^#' "$QUERIES")" "$CLIENT_CPU"
