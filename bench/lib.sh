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
    while :; do
        p=$((20000 + RANDOM % 30000))
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
