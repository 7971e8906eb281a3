#!/usr/bin/env python3
"""bench/flood.sh helper: a random-subdomain NXDOMAIN flood from many loopback sources.

usage: flood.py DNS_PORT ZONE SOURCES SECONDS RATE
Sends queries for <random>.ZONE (type A, EDNS DO=1, so a signed zone answers with signed
NSEC3 denial) to 127.0.0.1:DNS_PORT from SOURCES sockets bound to 127.2.N.1 (one /24 each),
round robin, at about RATE queries per second in total, for SECONDS. Counts what comes back
(full answers, TC=1 slips, total bytes) and prints one line of key=value pairs. Stdlib only.
"""
import os
import select
import socket
import struct
import sys
import time


def query(qid, name):
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 1)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    # A IN, then an OPT RR: payload 1232, DO=1.
    return q + b"\x00" + struct.pack(">HH", 1, 1) + b"\x00" + struct.pack(">HHIH", 41, 1232, 0x8000, 0)


def main():
    port, zone, sources, seconds, rate = (
        int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
    socks = []
    for n in range(sources):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((f"127.2.{n % 256}.{1 + n // 256}", 0))
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        socks.append(s)
    # A pool of distinct random names, reused round robin (pdm caches no NXDOMAIN).
    packets = [query(i & 0xFFFF, os.urandom(6).hex() + "." + zone) for i in range(50000)]
    dest = ("127.0.0.1", port)
    sent = full = tc = nbytes = 0
    started = time.monotonic()
    batch = max(1, rate // 1000)
    next_at = started

    def drain():
        nonlocal full, tc, nbytes
        r, _, _ = select.select(socks, [], [], 0)
        for s in r:
            while True:
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    break
                nbytes += len(data)
                if len(data) >= 4 and data[2] & 0x02:
                    tc += 1
                else:
                    full += 1

    while True:
        now = time.monotonic()
        if now - started >= seconds:
            break
        if now < next_at:
            drain()
            time.sleep(max(0.0, min(0.001, next_at - now)))
            continue
        for _ in range(batch):
            try:
                socks[sent % sources].sendto(packets[sent % len(packets)], dest)
            except BlockingIOError:
                pass
            sent += 1
        next_at += batch / rate
        if sent % (batch * 8) == 0:
            drain()
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        drain()
        time.sleep(0.01)
    took = time.monotonic() - started
    print(f"sent={sent} seconds={took:.2f} offered_qps={sent / took:.0f} full={full} tc={tc} "
          f"reply_bytes={nbytes}")


if __name__ == "__main__":
    main()
