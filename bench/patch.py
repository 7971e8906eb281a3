#!/usr/bin/env python3
"""PowerDNS-API PATCH REPLACE of one RRset, as fast as one client goes (stdlib only).

Usage: patch.py BASE KEY ZONE DURATION DNS_PORT LABEL [VERIFY]

For DURATION seconds, PATCHes `bench-txt.ZONE` TXT to a new value each time (changetype
REPLACE, one record), sequentially, keeping the connection when the server allows it
(pdns_server closes it after every answer). Then VERIFY (default 50) more PATCHes, each
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
                r.read()
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
    zone = zone.rstrip(".") + "."
    name = "bench-txt." + zone
    path = "/api/v1/servers/localhost/zones/" + zone
    c = Client(base, key)
    n = errors = 0
    lat = []

    def one(value):
        body = json.dumps({"rrsets": [{"name": name, "type": "TXT", "ttl": 60, "changetype": "REPLACE",
                                        "records": [{"content": '"%s"' % value, "disabled": False}]}]})
        t = time.perf_counter()
        st = c.patch(path, body)
        lat.append(time.perf_counter() - t)
        return st

    end = time.perf_counter() + float(duration)
    t0 = time.perf_counter()
    while time.perf_counter() < end:
        n += 1
        if one("v%d-%d" % (n, random.randint(0, 1 << 30))) != 204:
            errors += 1
    elapsed = time.perf_counter() - t0
    lat.sort()
    p50, p99 = (lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")
                for q in (0.5, 0.99))
    served = 0
    for i in range(verify):
        value = "check%d-%d" % (i, random.randint(0, 1 << 30))
        if one(value) == 204 and dns_txt_has(int(dns_port), name, value):
            served += 1
    print("RESULT %s patches=%d rate=%.1f/s p50_ms=%.2f p99_ms=%.2f errors=%d served_on_return=%d/%d"
          % (label, n, n / elapsed, p50, p99, errors, served, verify))


if __name__ == "__main__":
    main()
