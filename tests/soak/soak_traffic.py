#!/usr/bin/python3
"""Steady traffic for the soak test (tests/soak/soak.sh), Python stdlib only.

soak_traffic.py --target IP:PORT [--target IP:PORT ...] --seconds S
                [--pps R] [--size B] [--tcp-chunks N] [--rotate S]

One process, one thread, for every target at once (ten agents would otherwise need ten
traffic.py streams): per target UDP datagrams at R per second and one TCP connection that
writes a 4 KiB chunk N times per second, both echoed back by `traffic.py serve` on the
target, so the target's interface sees traffic both ways. Every --rotate seconds each
target gets a new UDP socket and a new TCP connection (new source ports): the agents see
new flows all run long, not the same two. Stops sending after S seconds, closes the TCP
connections cleanly, waits briefly for the last echoes, and prints one line per target.

Only 198.18.0.0/15 addresses are accepted, as in traffic.py.
"""
import argparse
import ipaddress
import selectors
import socket
import sys
import time

ALLOWED = ipaddress.ip_network("198.18.0.0/15")
CHUNK = b"\x5a" * 4096


def parse_target(s):
    host, _, port = s.rpartition(":")
    if ipaddress.ip_address(host) not in ALLOWED:
        sys.exit(f"soak_traffic.py: refusing address {host}: tests only use {ALLOWED}")
    return host, int(port)


class Target:
    def __init__(self, addr, sel):
        self.addr = addr
        self.sel = sel
        self.udp = None
        self.tcp = None
        self.out = b""  # unsent part of the current TCP chunk
        self.closing = []  # (socket, deadline): old sockets draining their last echoes
        self.udp_sent = self.udp_echoed = self.tcp_sent = self.tcp_echoed = self.conns = 0
        self.errors = 0

    def open(self):
        self.retire()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.setblocking(False)
        u.connect(self.addr)
        self.sel.register(u, selectors.EVENT_READ, (self, "udp"))
        self.udp = u
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setblocking(False)
        t.connect_ex(self.addr)
        self.sel.register(t, selectors.EVENT_READ, (self, "tcp"))
        self.tcp = t
        self.out = b""
        self.conns += 1

    def retire(self):
        """Moves the current sockets to the draining list: the TCP side is shut for
        writing once its chunk is out (the echo server then closes), the UDP side is kept
        two seconds for echoes still on their way (a closed port would answer them with
        ICMP)."""
        now = time.monotonic()
        if self.udp is not None:
            self.closing.append((self.udp, now + 2))
            self.udp = None
        if self.tcp is not None:
            self.flush()
            try:
                self.tcp.setblocking(True)
                self.tcp.settimeout(2)
                if self.out:
                    self.tcp.sendall(self.out)
                    self.tcp_sent += len(self.out)
                self.tcp.shutdown(socket.SHUT_WR)
                self.tcp.setblocking(False)
            except OSError:
                self.errors += 1
            self.out = b""
            self.closing.append((self.tcp, now + 10))
            self.tcp = None

    def send_udp(self, size):
        try:
            self.udp.send(b"\xa5" * size)
            self.udp_sent += 1
        except OSError:  # a full buffer or an ICMP error from the last datagram
            self.errors += 1

    def queue_chunk(self):
        if not self.out:  # a slow peer skips a chunk rather than queueing without bound
            self.out = CHUNK
        self.flush()

    def flush(self):
        if not self.out or self.tcp is None:
            return
        try:
            n = self.tcp.send(self.out)
            self.tcp_sent += n
            self.out = self.out[n:]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self.errors += 1
            self.out = b""

    def readable(self, sock, kind):
        try:
            if kind == "udp":
                while True:
                    sock.recv(65535)
                    self.udp_echoed += 1
            else:
                data = sock.recv(262144)
                if data:
                    self.tcp_echoed += len(data)
                else:
                    self.drop(sock)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            if kind == "tcp":
                self.drop(sock)

    def drop(self, sock):
        try:
            self.sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()
        self.closing = [(s, d) for s, d in self.closing if s is not sock]
        if sock is self.tcp:
            self.tcp = None

    def reap(self, now):
        for s, deadline in list(self.closing):
            if now >= deadline:
                self.drop(s)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--target", action="append", required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--pps", type=float, default=50)
    p.add_argument("--size", type=int, default=300)
    p.add_argument("--tcp-chunks", type=float, default=10)
    p.add_argument("--rotate", type=float, default=60)
    args = p.parse_args()
    sel = selectors.DefaultSelector()
    targets = [Target(parse_target(t), sel) for t in args.target]
    for t in targets:
        t.open()
    print(f"sending to {len(targets)} targets for {args.seconds:.0f} s", flush=True)

    start = time.monotonic()
    end = start + args.seconds
    udp_gap, tcp_gap = 1.0 / args.pps, 1.0 / args.tcp_chunks
    # Targets are spread over the first gap, so the datagrams do not leave in bursts of ten.
    next_udp = [start + udp_gap * i / len(targets) for i in range(len(targets))]
    next_tcp = [start + tcp_gap * i / len(targets) for i in range(len(targets))]
    next_rotate = start + args.rotate
    now = start
    while now < end:
        for i, t in enumerate(targets):
            if next_udp[i] <= now:
                t.send_udp(args.size)
                # Behind by more than a second (a stalled machine): catch up, no burst.
                next_udp[i] = max(next_udp[i] + udp_gap, now - 1)
            if next_tcp[i] <= now:
                if t.tcp is not None:
                    t.queue_chunk()
                next_tcp[i] = max(next_tcp[i] + tcp_gap, now - 1)
            else:
                t.flush()
            t.reap(now)
        if now >= next_rotate:
            for t in targets:
                t.open()
            next_rotate += args.rotate
        wake = min(min(next_udp), min(next_tcp), next_rotate, end)
        for key, _ in sel.select(max(0.0, min(wake - time.monotonic(), 0.1))):
            tgt, kind = key.data
            tgt.readable(key.fileobj, kind)
        now = time.monotonic()

    for t in targets:
        t.retire()
    # The last echoes and the servers' FINs.
    deadline = time.monotonic() + 5
    while any(t.closing for t in targets) and time.monotonic() < deadline:
        for key, _ in sel.select(0.1):
            tgt, kind = key.data
            tgt.readable(key.fileobj, kind)
        for t in targets:
            t.reap(time.monotonic())
    for t in targets:
        for s, _ in list(t.closing):
            t.drop(s)
        print(f"{t.addr[0]}:{t.addr[1]}: udp {t.udp_sent} sent, {t.udp_echoed} echoed; "
              f"tcp {t.tcp_sent} bytes sent, {t.tcp_echoed} echoed over {t.conns} connections; "
              f"{t.errors} send errors", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
