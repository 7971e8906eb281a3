-- wrk script for bench/update-pdns.sh: PowerDNS-API PATCH REPLACE of one TXT RRset
-- (bench-wrk.<ZONE>), a new value every request, as fast as one connection goes. A client
-- that costs the servers' peer almost nothing per request (patch.py's Python costs ~0.1-0.3
-- ms of its own per request), so the one-client rate is the server's, not the client's.
--
-- env: KEY (the X-API-Key), ZONE (with or without the trailing dot).
local key = os.getenv("KEY") or ""
local zone = (os.getenv("ZONE") or "example.test"):gsub("%.$", "") .. "."
local path = "/api/v1/servers/localhost/zones/" .. zone
local headers = { ["X-API-Key"] = key, ["Content-Type"] = "application/json", ["Accept"] = "application/json" }
local n = 0
math.randomseed(os.time())

function request()
    n = n + 1
    local body = string.format(
        '{"rrsets":[{"name":"bench-wrk.%s","type":"TXT","ttl":60,"changetype":"REPLACE",' ..
        '"records":[{"content":"\\"w%d-%d\\"","disabled":false}]}]}',
        zone, n, math.random(0, 1073741823))
    return wrk.format("PATCH", path, headers, body)
end

function done(summary, latency, requests)
    local secs = summary.duration / 1e6
    local errs = summary.errors
    local ok = summary.requests - errs.status
    io.write(string.format("WRK requests=%d rate=%.1f/s p50_ms=%.3f p99_ms=%.3f non2xx=%d socket_errors=%d\n",
        summary.requests, ok / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
        errs.status, errs.connect + errs.read + errs.write + errs.timeout))
end
