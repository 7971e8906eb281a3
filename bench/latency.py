#!/usr/bin/env python3
"""bench/api.sh helper: commit -> first correct DNS answer, against a running pdm.

usage: latency.py BASE_URL TOKEN POOL DNS_HOST DNS_PORT COUNT
For COUNT fresh labels: reserve, then time from sending `commit` until the authoritative
server at DNS_HOST:DNS_PORT answers `console.<label>.<pool> A` with the committed address
(polled over UDP every 2 ms, stdlib only), then release. Prints p50/p90/max of that latency
and of the commit call alone.
"""
import http.client
import json
import random
import socket
import struct
import sys
import time
import urllib.parse


def pct(values, p):
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def query_a(sock, addr, name):
    qid = random.randint(0, 65535)
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.strip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", 1, 1)
    sock.sendto(q, addr)
    try:
        data, _ = sock.recvfrom(4096)
    except socket.timeout:
        return []
    if len(data) < 12 or struct.unpack(">H", data[:2])[0] != qid:
        return []
    ancount = struct.unpack(">H", data[6:8])[0]
    i = 12
    while data[i] != 0:  # skip the question name
        i += data[i] + 1
    i += 5
    out = []
    for _ in range(ancount):
        if data[i] & 0xC0 == 0xC0:
            i += 2
        else:
            while data[i] != 0:
                i += data[i] + 1
            i += 1
        rtype, _, _, rdlen = struct.unpack(">HHIH", data[i:i + 10])
        i += 10
        if rtype == 1 and rdlen == 4:
            out.append(socket.inet_ntoa(data[i:i + 4]))
        i += rdlen
    return out


def main():
    base, token, pool, dns_host, dns_port, count = sys.argv[1:7]
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.2)
    addr = (dns_host, int(dns_port))

    def call(method, path, body):
        conn.request(method, path, body=json.dumps(body).encode(), headers={
            "Authorization": "Bearer " + token, "Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"{}")

    first, commit_ms, pending = [], [], 0
    run = int(time.time()) % 100000
    for n in range(int(count)):
        label = "lat%d-%d" % (run, n)
        lb = "192.0.2.%d" % (n % 250 + 1)
        st, b = call("POST", "/api/v1/pool/%s/reserve" % pool, {"subdomain": label})
        if st != 201:
            print("reserve %s: %s %s" % (label, st, b), file=sys.stderr)
            return 1
        t0 = time.monotonic()
        st, c = call("POST", "/api/v1/pool/%s/commit" % pool, {
            "subdomain": label, "reservationToken": b["reservationToken"], "loadBalancerIP": lb})
        t1 = time.monotonic()
        if st != 200:
            print("commit %s: %s %s" % (label, st, c), file=sys.stderr)
            return 1
        if c.get("operation", {}).get("status") == "pending":
            pending += 1
        name = "console.%s.%s" % (label, pool)
        deadline = t0 + 30
        while time.monotonic() < deadline:
            if lb in query_a(sock, addr, name):
                break
            time.sleep(0.002)
        t2 = time.monotonic()
        commit_ms.append((t1 - t0) * 1000)
        first.append((t2 - t0) * 1000)
        call("DELETE", "/api/v1/pool/%s/release" % pool, {"subdomain": label})
    print("commit->first-correct-answer n=%d p50=%.1fms p90=%.1fms max=%.1fms | commit call p50=%.1fms p90=%.1fms | pending=%d | p99=%.1fms"
          % (len(first), pct(first, 50), pct(first, 90), max(first), pct(commit_ms, 50), pct(commit_ms, 90), pending,
             pct(first, 99)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
