#!/usr/bin/env python3
"""bench/pipeline.py PORT [ROUNDS]: two pipelined TCP queries, time to both answers.

On one warm connection (50 queries one at a time first, so the client's TCP has left
its quick-ACK start), each round writes two queries for bench.test's www A as two
segments, back to back, and times until both answers are read. A server that leaves
Nagle's algorithm on holds the second answer until the client acknowledges the first,
which a Linux client does on its delayed-ACK timer (~40 ms). Prints the median, min and
max in ms.
"""
import socket
import struct
import sys
import time


def query(qid: int) -> bytes:
    qname = b"".join(bytes([len(l)]) + l for l in (b"www", b"bench", b"test")) + b"\0"
    msg = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + qname + struct.pack(">HH", 1, 1)
    return struct.pack(">H", len(msg)) + msg


def read_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise SystemExit("connection closed by the server")
        buf += chunk
    return buf


def answer(s: socket.socket) -> bytes:
    (n,) = struct.unpack(">H", read_exact(s, 2))
    return read_exact(s, n)


def main() -> None:
    port = int(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(50):
        s.sendall(query(i))
        answer(s)
    times = []
    for r in range(rounds):
        t0 = time.perf_counter()
        s.sendall(query(1000 + 2 * r))
        s.sendall(query(1001 + 2 * r))
        answer(s)
        answer(s)
        times.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.005)
    times.sort()
    print(f"{times[len(times) // 2]:.2f} {times[0]:.2f} {times[-1]:.2f}")


if __name__ == "__main__":
    main()
