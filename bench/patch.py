#!/usr/bin/env python3
"""PowerDNS-API PATCH REPLACE of one RRset, as fast as one client goes (stdlib only).

Usage: patch.py BASE KEY ZONE DURATION DNS_PORT LABEL [VERIFY [CLIENTS]]

For DURATION seconds, each of CLIENTS (default 1) clients PATCHes its own TXT RRset
(`bench-txt[-N].ZONE`) to a new value each time (changetype REPLACE, one record),
sequentially, keeping the connection when the server allows it (pdns_server closes it
after every answer). Then VERIFY (default 50) more PATCHes by one client, each
followed at once by a UDP query to 127.0.0.1:DNS_PORT: a change counts as served on return
when that first answer already holds the new value. Prints one line:
RESULT LABEL patches=N rate=R/s p50_ms=.. p99_ms=.. errors=E served_on_return=K/VERIFY
"""
import http.client
import json
import random
import socket
import struct
import sys
import threading
import time


def dns_txt_has(port, name, want, timeout=2.0):
    qid = random.randint(0, 65535)
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", 16, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(q, ("127.0.0.1", port))
        data, _ = s.recvfrom(65535)
    except OSError:
        return False
    finally:
        s.close()
    return want.encode() in data


FIRST_ERROR = []


class Client:
    def __init__(self, base, key):
        host, port = base.split("//", 1)[1].split(":")
        self.host, self.port, self.key = host, int(port), key
        self.conn = None

    def patch(self, path, body):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self.conn.request("PATCH", path, body=body, headers={
                    "X-API-Key": self.key, "Content-Type": "application/json",
                    "Accept": "application/json"})
                r = self.conn.getresponse()
                text = r.read()
                if r.status >= 300 and not FIRST_ERROR:
                    FIRST_ERROR.append("%d %s" % (r.status, text[:200].decode(errors="replace")))
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        return 0


def main():
    base, key, zone, duration, dns_port, label = sys.argv[1:7]
    verify = int(sys.argv[7]) if len(sys.argv) > 7 else 50
    clients = int(sys.argv[8]) if len(sys.argv) > 8 else 1
    zone = zone.rstrip(".") + "."
    path = "/api/v1/servers/localhost/zones/" + zone
    lat, counts = [], []
    lock = threading.Lock()

    def one(c, name, value, mine):
        body = json.dumps({"rrsets": [{"name": name, "type": "TXT", "ttl": 60, "changetype": "REPLACE",
                                        "records": [{"content": '"%s"' % value, "disabled": False}]}]})
        t = time.perf_counter()
        st = c.patch(path, body)
        mine.append(time.perf_counter() - t)
        return st

    def worker(i, end):
        c = Client(base, key)
        name = "bench-txt%s.%s" % ("-%d" % i if i else "", zone)
        mine, n, errors = [], 0, 0
        while time.perf_counter() < end:
            n += 1
            if one(c, name, "v%d-%d" % (n, random.randint(0, 1 << 30)), mine) != 204:
                errors += 1
        with lock:
            lat.extend(mine)
            counts.append((n, errors))

    t0 = time.perf_counter()
    end = t0 + float(duration)
    threads = [threading.Thread(target=worker, args=(i, end)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    n = sum(c[0] for c in counts)
    errors = sum(c[1] for c in counts)
    lat.sort()
    p50, p99 = (lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")
                for q in (0.5, 0.99))
    served = 0
    c = Client(base, key)
    name = "bench-txt." + zone
    for i in range(verify):
        value = "check%d-%d" % (i, random.randint(0, 1 << 30))
        if one(c, name, value, []) == 204 and dns_txt_has(int(dns_port), name, value):
            served += 1
    # The rate counts changes made (2xx); a refused PATCH (pdns_server's gsqlite3 answers
    # concurrent writers "database is locked") is an error, not a change.
    print("RESULT %s clients=%d patches=%d rate=%.1f/s p50_ms=%.2f p99_ms=%.2f errors=%d served_on_return=%d/%d"
          % (label, clients, n, (n - errors) / elapsed, p50, p99, errors, served, verify))
    if FIRST_ERROR:
        print("  first error: %s" % FIRST_ERROR[0])


if __name__ == "__main__":
    main()
