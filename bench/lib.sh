# bench/lib.sh — shared by the bench scripts: logging, a temp dir, servers
# registered in PIDS stopped by PID on exit, and free loopback ports.
# Source it after setting BENCH_NAME.

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/pdm-bench-${BENCH_NAME}.XXXXXX")
declare -a PIDS=()
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 0.5
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    local p
    # Below Linux's ephemeral range (32768-60999): a server restarted on its
    # port must not find it taken by some client's outgoing connection.
    while :; do
        p=$((20000 + RANDOM % 12000))
        port_in_use "$p" || { echo "$p"; return; }
    done
}

# PDM_BIN: the given binary, or a fresh release build of this checkout.
ensure_pdm_bin() {
    if [[ -z ${PDM_BIN:-} ]]; then
        log "cargo build --release"
        cargo build --release --bin pdm >&2
        PDM_BIN=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
            sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release/pdm
    fi
    [[ -x $PDM_BIN ]] || die "pdm binary not found: $PDM_BIN"
}

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo -n "$@"; fi; }

# watchdog PID: kills PID after MAX_SECONDS (set by the caller) even if the script is stuck.
watchdog() {
    local target=$1 end=$((SECONDS + MAX_SECONDS))
    (
        while ((SECONDS < end)); do
            sleep 1
            kill -0 "$target" 2>/dev/null || exit 0
        done
        kill -KILL "$target" 2>/dev/null
    ) >/dev/null 2>&1 &
    PIDS+=($!)
}

# wait_dns PORT: true once 127.0.0.1:PORT answers bench.test SOA.
wait_dns() {
    local i
    for i in $(seq 1 $((100 * ${START_SLOWDOWN:-1}))); do
        dig +tries=1 +time=1 +short -p "$1" @127.0.0.1 bench.test SOA 2>/dev/null | grep -q hostmaster && return 0
        sleep 0.2
    done
    return 1
}

# serve_pdm NAME DNS_PORT HTTP_PORT [serve flags...]: `pdm serve` on $DB pinned to CPU 0 (global
# flags such as --config in PDM_GLOBAL_ARGS), log in $TMP/NAME.log, watched and stopped by PID;
# returns once /readyz and DNS answer. Sets STARTED_PID.
serve_pdm() {
    local name=$1 port=$2 http=$3
    shift 3
    PDM_LOG=${PDM_LOG:-warn} taskset -c 0 "${SERVER_WRAP[@]}" "$PDM_BIN" --database "$DB" "${PDM_GLOBAL_ARGS[@]}" serve \
        --dns "127.0.0.1:$port" --http "127.0.0.1:$http" "$@" >"$TMP/$name.log" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
    watchdog "$STARTED_PID"
    for _ in $(seq 1 $((150 * ${START_SLOWDOWN:-1}))); do
        curl -fsS -o /dev/null "http://127.0.0.1:$http/readyz" 2>/dev/null && break
        kill -0 "$STARTED_PID" 2>/dev/null || { cat "$TMP/$name.log" >&2; die "$name exited"; }
        sleep 0.2
    done
    wait_dns "$port" || { cat "$TMP/$name.log" >&2; die "$name does not serve bench.test"; }
}
PDM_GLOBAL_ARGS=()
# SERVER_WRAP: a command the servers run under (e.g. valgrind); START_SLOWDOWN: how many
# times longer they may take to come up.
SERVER_WRAP=()

# cpu_ticks PID: utime+stime of the whole process (all threads), in clock ticks.
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# sys_ticks PID: stime of the whole process (the kernel's share of cpu_ticks).
sys_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $13}'; }

# ctx_switches PID: voluntary + involuntary context switches of all its threads so far.
ctx_switches() {
    cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s + 0}'
}

# wakeups_on CPU: the function-call and rescheduling interrupts CPU has taken so far
# (/proc/interrupts CAL + RES): how other CPUs woke its tasks; 0 where not shown.
wakeups_on() {
    awk -v col=$(($1 + 2)) '$1 == "CAL:" || $1 == "RES:" {s += $col} END {print s + 0}' /proc/interrupts 2>/dev/null || echo 0
}

# busy_ticks CPU: the clock ticks CPU has spent busy so far (/proc/stat: user, nice, system,
# irq and softirq; not idle, iowait or steal), whoever ran: a server's own CPU time misses
# the work its packets cause in softirq on the other CPU, this counts it.
busy_ticks() {
    awk -v cpu="cpu$1" '$1 == cpu {print $2 + $3 + $4 + $7 + $8}' /proc/stat
}

# softirq_ticks CPU: the clock ticks CPU has spent in softirq so far (/proc/stat): on loopback
# that is packet delivery, run on whichever CPU sends or takes the packet, not always the
# server's.
softirq_ticks() {
    awk -v cpu="cpu$1" '$1 == cpu {print $8}' /proc/stat
}

# ratio A B: A/B with two decimals, n/a when B is 0.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }

# api_setup: a clean PDM_* environment, DB (DATABASE or SQLite in TMP), migrated, free
# HTTP_PORT/DNS_PORT, BASE, and an admin TOKEN.
api_setup() {
    while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep '^PDM_' | grep -vx 'PDM_BIN' || true)
    DB=${DATABASE:-sqlite://$TMP/pdm.db}
    HTTP_PORT=$(free_port)
    DNS_PORT=$(free_port)
    BASE=http://127.0.0.1:$HTTP_PORT
    "$PDM_BIN" --database "$DB" migrate >"$TMP/migrate.log" 2>&1 ||
        { cat "$TMP/migrate.log" >&2; die "pdm migrate failed"; }
    TOKEN=$("$PDM_BIN" --database "$DB" token create --name bench --scope admin 2>"$TMP/token.log" | tail -n 1)
    [[ -n $TOKEN ]] || { cat "$TMP/token.log" >&2; die "pdm token create printed nothing"; }
}
