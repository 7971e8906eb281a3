-- wrk script for bench/api.sh: GET /api/v1/pool/<pool>/check?sub=<label> over a small
-- rotation of labels, optionally paced to a fixed offered rate, latency percentiles at the end.
--
-- env: POOL (default example.test), RATE (total requests/s; 0 = closed loop, as fast as
-- possible), THREADS (must equal wrk -t: each thread's Lua state paces RATE/THREADS).
local pool = os.getenv("POOL") or "example.test"
local rate = tonumber(os.getenv("RATE") or "0")
local threads = tonumber(os.getenv("THREADS") or "1")
local labels = { "bench-free-1", "bench-free-2", "www", "Invalid_Label", "a-very-long-but-valid-label-42" }
local i = 0

-- Pacing: the connections of a thread share one schedule with a slot every threads/rate
-- seconds; each request waits for the next free slot (the wait shrinks when a response was
-- slow), so the offered rate stays constant unless the server cannot keep up. Uses LuaJIT's FFI for a monotonic millisecond clock.
local now_ms
local ok, ffi = pcall(require, "ffi")
if ok then
    pcall(ffi.cdef, [[
        typedef struct { long tv_sec; long tv_nsec; } pdm_timespec;
        int clock_gettime(int clk_id, pdm_timespec *tp);
    ]])
    local ts = ffi.new("pdm_timespec")
    now_ms = function()
        ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
        return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
    end
end
local interval = 0
if rate > 0 then interval = threads * 1000.0 / rate end
local next_at = nil

function request()
    i = i + 1
    local sub = labels[(i % #labels) + 1]
    return wrk.format("GET", "/api/v1/pool/" .. pool .. "/check?sub=" .. sub)
end

function delay()
    if interval <= 0 then return 0 end
    if not now_ms then return interval end
    local now = now_ms()
    if next_at == nil then next_at = now end
    next_at = next_at + interval
    local d = next_at - now
    if d < 0 then
        next_at = now -- fell behind: do not burst to catch up
        return 0
    end
    return d
end

function done(summary, latency, requests)
    local secs = summary.duration / 1e6
    local errs = summary.errors
    io.write(string.format("RESULT requests=%d duration_s=%.2f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f non2xx=%d socket_errors=%d\n",
        summary.requests, secs, summary.requests / secs,
        latency:percentile(50) / 1000, latency:percentile(90) / 1000,
        latency:percentile(99) / 1000, latency:percentile(99.9) / 1000, latency.max / 1000,
        errs.status, errs.connect + errs.read + errs.write + errs.timeout))
end
