#!/usr/bin/env python3
"""Timed client exchanges with the stack, from one long-lived process (no process start-up in the way).

usage: abuse_exchanges.py HOST COUNT INTERVAL_MS LIMIT_S

Every INTERVAL_MS, COUNT times: an HTTP GET of / (HTTP/1.0, until the server closes; a 200 status needed)
and an echo exchange on port 7 (5 bytes out, the same 5 back), each on a new connection and in a thread of
its own; each takes the time from connect() to the last byte. A failure or a timeout counts as LIMIT_S.
Prints one JSON object: {"http": [seconds...], "echo": [seconds...], "errors": [text...]}.
"""
import json
import socket
import sys
import threading
import time

host, count, interval, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) / 1000, float(sys.argv[4])
results = {"http": [None] * count, "echo": [None] * count, "errors": []}


def http(i):
    t = time.monotonic()
    try:
        s = socket.create_connection((host, 80), timeout=limit)
        s.settimeout(max(0.01, limit - (time.monotonic() - t)))
        s.sendall(b"GET / HTTP/1.0\r\nHost: " + host.encode() + b"\r\n\r\n")
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        s.close()
        if not got.startswith(b"HTTP/1.1 200") and not got.startswith(b"HTTP/1.0 200"):
            raise RuntimeError("status: %r" % got[:20])
        results["http"][i] = min(limit, time.monotonic() - t)
    except Exception as e:
        results["http"][i] = limit
        results["errors"].append("http %d: %r after %.3f s" % (i, e, time.monotonic() - t))


def echo(i):
    t = time.monotonic()
    try:
        s = socket.create_connection((host, 7), timeout=limit)
        s.settimeout(max(0.01, limit - (time.monotonic() - t)))
        s.sendall(b"ping\n")
        got = b""
        while len(got) < 5:
            chunk = s.recv(5 - len(got))
            if not chunk:
                raise RuntimeError("closed early")
            got += chunk
        s.close()
        results["echo"][i] = min(limit, time.monotonic() - t)
    except Exception as e:
        results["echo"][i] = limit
        results["errors"].append("echo %d: %r after %.3f s" % (i, e, time.monotonic() - t))


threads = []
for i in range(count):
    for fn in (http, echo):
        th = threading.Thread(target=fn, args=(i,))
        th.start()
        threads.append(th)
    time.sleep(interval)
for th in threads:
    th.join()
print(json.dumps(results), flush=True)
