#!/usr/bin/env python3
"""bench/scale.sh helper: commit children into a pool until it holds TARGET.

usage: fill.py BASE_URL TOKEN POOL FROM TARGET WORKERS
Commits labels c<FROM>..c<TARGET-1> (reserve + commit) with WORKERS persistent
HTTP/1.1 connections, and prints the commit latency of the last 10% of them
(p50/p99), the commits/s, and errors. Stdlib only.
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def main():
    base, token, pool, first, target, workers = sys.argv[1:7]
    first, target, workers = int(first), int(target), int(workers)
    u = urllib.parse.urlsplit(base)
    lock = threading.Lock()
    nxt = [first]
    tail_from = target - max(1, (target - first) // 10)
    lat, errors = [], []

    def call(conn, path, body):
        conn.request("POST", path, body=json.dumps(body).encode(), headers={
            "Authorization": "Bearer " + token, "Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read()

    def worker():
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        while True:
            with lock:
                i = nxt[0]
                if i >= target or len(errors) > 20:
                    return
                nxt[0] += 1
            sub = "c%d" % i
            try:
                st, body = call(conn, "/api/v1/pool/%s/reserve" % pool, {"subdomain": sub})
                if st != 201:
                    raise RuntimeError("reserve %d %s" % (st, body[:200]))
                tok = json.loads(body)["reservationToken"]
                t0 = time.perf_counter()
                st, body = call(conn, "/api/v1/pool/%s/commit" % pool, {
                    "subdomain": sub, "reservationToken": tok,
                    "loadBalancerIP": "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255)})
                dt = time.perf_counter() - t0
                if st != 200:
                    raise RuntimeError("commit %d %s" % (st, body[:200]))
            except Exception as e:  # noqa: BLE001 - report and go on
                with lock:
                    errors.append(str(e))
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
                continue
            if i >= tail_from:
                with lock:
                    lat.append(dt)

    start = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    print("RESULT children=%d commits=%d seconds=%.1f commits_per_s=%.1f "
          "commit_p50_ms=%.2f commit_p99_ms=%.2f errors=%d" % (
              target, target - first, elapsed, (target - first) / max(elapsed, 1e-9),
              pct(lat, 50) * 1000, pct(lat, 99) * 1000, len(errors)))
    for e in errors[:5]:
        print("  error: " + e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
