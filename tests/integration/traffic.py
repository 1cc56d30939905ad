#!/usr/bin/python3
"""Known UDP/TCP traffic for the integration tests (Python stdlib only).

serve  --bind IP --port P [--max-seconds S]
    UDP and TCP echo server on the same port. Prints "listening" once both sockets are
    bound, then echoes until SIGTERM or --max-seconds.
udp    --to IP --port P --count N [--sizes 1,100,...] [--src IP --sport P]
    Lock-step: sends a datagram, waits for its echo, N times. Fails if an echo is missing
    or has the wrong length.
tcp    --to IP --port P --bytes N
    One connection: sends N bytes, reads the N echoed bytes back, closes cleanly.
stream --to IP --port P --seconds S [--pps R] [--size B]
    Background load: UDP datagrams at a fixed rate for S seconds (echoes are drained,
    not awaited), plus one TCP connection pushing data back and forth in small chunks.

Only 198.18.0.0/15 addresses are accepted, so a typo cannot send traffic anywhere else.
"""
import argparse
import ipaddress
import signal
import socket
import sys
import threading
import time

ALLOWED = ipaddress.ip_network("198.18.0.0/15")


def check_addr(a):
    if ipaddress.ip_address(a) not in ALLOWED:
        sys.exit(f"traffic.py: refusing address {a}: tests only use {ALLOWED}")
    return a


def serve(args):
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    u.bind((args.bind, args.port))
    u.settimeout(0.2)
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind((args.bind, args.port))
    t.listen(16)
    t.settimeout(0.2)

    def udp_loop():
        while not stop.is_set():
            try:
                data, peer = u.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                u.sendto(data, peer)
            except OSError:
                pass

    def tcp_conn(c):
        with c:
            c.settimeout(30)
            try:
                while True:
                    data = c.recv(65536)
                    if not data:
                        break
                    c.sendall(data)
            except OSError:
                pass

    threading.Thread(target=udp_loop, daemon=True).start()
    print("listening", flush=True)
    deadline = time.monotonic() + args.max_seconds
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            c, _ = t.accept()
        except socket.timeout:
            continue
        threading.Thread(target=tcp_conn, args=(c,), daemon=True).start()
    return 0


def udp(args):
    sizes = [int(x) for x in args.sizes.split(",")]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if args.src:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((check_addr(args.src), args.sport))
    s.connect((args.to, args.port))
    s.settimeout(3)
    for i in range(args.count):
        n = sizes[i % len(sizes)]
        s.send(bytes([i & 0xFF]) * n)
        got = s.recv(65535)
        if len(got) != n:
            sys.exit(f"udp: echo {i} has {len(got)} bytes, sent {n}")
    print(f"udp: {args.count} datagrams echoed by {args.to}:{args.port}")
    return 0


def tcp_exchange(to, port, total, chunk=65536, pace=0.0):
    s = socket.create_connection((to, port), timeout=10)
    received = [0]

    def reader():
        while received[0] < total:
            data = s.recv(262144)
            if not data:
                break
            received[0] += len(data)

    r = threading.Thread(target=reader)
    r.start()
    sent = 0
    while sent < total:
        n = min(chunk, total - sent)
        s.sendall(b"\x5a" * n)
        sent += n
        if pace:
            time.sleep(pace)
    r.join(30)
    s.shutdown(socket.SHUT_WR)
    s.settimeout(5)
    try:
        while s.recv(65536):
            pass
    except OSError:
        pass
    s.close()
    if received[0] != total:
        sys.exit(f"tcp: sent {total} bytes to {to}:{port}, {received[0]} came back")
    return total


def tcp(args):
    tcp_exchange(args.to, args.port, args.bytes)
    print(f"tcp: {args.bytes} bytes echoed by {args.to}:{args.port}")
    return 0


def stream(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((args.to, args.port))
    s.settimeout(0.2)
    stop = threading.Event()

    def drain():
        while not stop.is_set():
            try:
                s.recv(65535)
            except (socket.timeout, ConnectionRefusedError):
                continue
            except OSError:
                return

    d = threading.Thread(target=drain, daemon=True)
    d.start()
    end = time.monotonic() + args.seconds
    # TCP alongside: ~10 chunks of 4 KiB per second each way, for the whole period.
    chunks = max(1, int(args.seconds * 10))
    tt = threading.Thread(target=tcp_exchange, args=(args.to, args.port, chunks * 4096, 4096, 0.1))
    tt.start()
    sent = 0
    interval = 1.0 / args.pps
    nxt = time.monotonic()
    while time.monotonic() < end:
        try:
            s.send(b"\xa5" * args.size)
            sent += 1
        except ConnectionRefusedError:
            pass
        nxt += interval
        delay = nxt - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    tt.join(60)
    time.sleep(0.3)
    stop.set()
    print(f"stream: {sent} datagrams to {args.to}:{args.port} in {args.seconds}s")
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("serve")
    a.add_argument("--bind", required=True)
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--max-seconds", type=float, default=240)
    a = sub.add_parser("udp")
    a.add_argument("--to", required=True)
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--count", type=int, required=True)
    a.add_argument("--sizes", default="1,64,200,512,1000,1472")
    a.add_argument("--src")
    a.add_argument("--sport", type=int, default=0)
    a = sub.add_parser("tcp")
    a.add_argument("--to", required=True)
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--bytes", type=int, required=True)
    a = sub.add_parser("stream")
    a.add_argument("--to", required=True)
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--seconds", type=float, required=True)
    a.add_argument("--pps", type=float, default=500)
    a.add_argument("--size", type=int, default=300)
    args = p.parse_args()
    check_addr(getattr(args, "to", None) or args.bind)
    return {"serve": serve, "udp": udp, "tcp": tcp, "stream": stream}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
