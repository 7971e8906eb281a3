#!/usr/bin/env python3
"""bench/api.sh helper: full reserve -> commit -> release cycles against a running pdm.

usage: cycle.py BASE_URL TOKEN POOL SECONDS WORKERS
Each worker loops over unique labels with a persistent HTTP/1.1 connection (stdlib only) and
records the latency of each step; prints cycles/s and p50/p99 per step.
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
    base, token, pool, seconds, workers = sys.argv[1:6]
    seconds, workers = float(seconds), int(workers)
    u = urllib.parse.urlsplit(base)
    lat = {"reserve": [], "commit": [], "release": [], "cycle": []}
    errors = []
    cycles = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    run_id = int(time.time()) % 100000

    def call(conn, method, path, body):
        data = json.dumps(body).encode()
        conn.request(method, path, body=data, headers={
            "Authorization": "Bearer " + token,
            "Content-Type": "application/json",
        })
        r = conn.getresponse()
        payload = r.read()
        return r.status, payload

    def worker(w):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        n = 0
        local = {k: [] for k in lat}
        done = 0
        while time.monotonic() < deadline:
            n += 1
            sub = "b%d-w%d-%d" % (run_id, w, n)
            t0 = time.perf_counter()
            try:
                st, body = call(conn, "POST", "/api/v1/pool/%s/reserve" % pool,
                                {"subdomain": sub, "createdBy": "bench"})
                t1 = time.perf_counter()
                if st != 201:
                    raise RuntimeError("reserve %d %s" % (st, body[:200]))
                tok = json.loads(body)["reservationToken"]
                st, body = call(conn, "POST", "/api/v1/pool/%s/commit" % pool,
                                {"subdomain": sub, "reservationToken": tok,
                                 "loadBalancerIP": "192.0.2.%d" % (n % 250 + 1)})
                t2 = time.perf_counter()
                if st != 200:
                    raise RuntimeError("commit %d %s" % (st, body[:200]))
                st, body = call(conn, "DELETE", "/api/v1/pool/%s/release" % pool, {"subdomain": sub})
                t3 = time.perf_counter()
                if st != 200:
                    raise RuntimeError("release %d %s" % (st, body[:200]))
            except Exception as e:  # noqa: BLE001 - report and continue
                with lock:
                    errors.append(str(e))
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
                if len(errors) > 20:
                    return
                continue
            local["reserve"].append(t1 - t0)
            local["commit"].append(t2 - t1)
            local["release"].append(t3 - t2)
            local["cycle"].append(t3 - t0)
            done += 1
        with lock:
            for k in lat:
                lat[k].extend(local[k])
            cycles[0] += done

    start = time.monotonic()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    print("RESULT cycles=%d seconds=%.2f cycles_per_s=%.1f workers=%d errors=%d" % (
        cycles[0], elapsed, cycles[0] / elapsed, workers, len(errors)))
    for k in ("reserve", "commit", "release", "cycle"):
        print("  %-8s p50 %8.2f ms   p99 %8.2f ms   (n=%d)" % (
            k, pct(lat[k], 50) * 1000, pct(lat[k], 99) * 1000, len(lat[k])))
    for e in errors[:5]:
        print("  error: " + e)
    return 1 if errors and cycles[0] == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
