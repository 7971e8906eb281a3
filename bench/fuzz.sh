#!/usr/bin/env bash
# bench/fuzz.sh — every fuzz target run long (scripts/fuzz, libFuzzer on the
# stable toolchain): RUNS executions per target (default 10 million), each
# bounded by MAX_SECONDS, one after another on one core. Reports per target:
# executions, exec/s, corpus growth, peak RSS, and crashes (0 expected; a
# crash input lands in fuzz/artifacts/TARGET/ and belongs in
# fuzz/regressions/TARGET/ once fixed). Exit 1 if any target crashed.
#
# Env: RUNS (default 10000000)  MAX_SECONDS (per target, default 3600)
#      TARGETS (default: all, space separated)  FUZZ_JOBS (parallel workers, default 1)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${RUNS:-10000000}
MAX_SECONDS=${MAX_SECONDS:-3600}
read -r -a targets <<<"${TARGETS:-$(scripts/fuzz list | tr '\n' ' ')}"
scripts/fuzz build
LOGS=target/fuzz/bench
mkdir -p "$LOGS"
crashed=()
printf '%-12s %12s %10s %10s %8s %8s\n' target executions exec/s seconds rss_mb crashes
for t in "${targets[@]}"; do
    log="$LOGS/$t.log"
    start=$SECONDS
    rc=0
    scripts/fuzz run "$t" -runs="$RUNS" -max_total_time="$MAX_SECONDS" >"$log" 2>&1 || rc=$?
    secs=$((SECONDS - start))
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
    n=$(stat number_of_executed_units)
    crashes=0
    if [[ $rc -ne 0 ]]; then
        crashes=1
        crashed+=("$t")
    fi
    printf '%-12s %12s %10s %10s %8s %8s\n' "$t" "${n:-?}" "$(stat average_exec_per_sec)" "$secs" \
        "$(stat peak_rss_mb)" "$crashes"
done
if [[ ${#crashed[@]} -gt 0 ]]; then
    echo "crashed: ${crashed[*]} (logs in $LOGS, inputs in fuzz/artifacts/)" >&2
    exit 1
fi
