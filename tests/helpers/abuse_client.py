#!/usr/bin/env python3
"""Many TCP connections held open from the host side (the kernel's TCP as the peer), for the abuse tests.

usage: abuse_client.py COUNT HOST PORT SRC[,SRC...] [TIMEOUT_S]

Opens COUNT connections to HOST:PORT, spread over the source addresses SRC (each one gives its own range of
ephemeral ports), non-blocking and a few hundred at a time, and prints one JSON line: {"connected": n,
"failed": n, "seconds": s}. It never reads nor writes: the connections are idle (or, to chargen, their
reader is stalled). Then it waits for a line on stdin and closes them all, printing {"closed": n}.
Bounded: gives up connecting after TIMEOUT_S (default 60).
"""
import json
import resource
import select
import socket
import sys
import time

count, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
sources = sys.argv[4].split(",")
timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 60.0
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 64)), hard))

started = time.monotonic()
pending = {}
done = []
failed = 0
poller = select.epoll()
opened = 0
while (opened < count or pending) and time.monotonic() - started < timeout:
    while opened < count and len(pending) < 256:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((sources[opened % len(sources)], 0))
        try:
            s.connect((host, port))
        except BlockingIOError:
            pass
        pending[s.fileno()] = s
        poller.register(s.fileno(), select.EPOLLOUT | select.EPOLLERR)
        opened += 1
    for fd, _ in poller.poll(0.2):
        s = pending.pop(fd)
        poller.unregister(fd)
        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
            done.append(s)
        else:
            failed += 1
            s.close()
failed += len(pending)
for s in pending.values():
    s.close()
print(json.dumps({"connected": len(done), "failed": failed, "seconds": round(time.monotonic() - started, 2)}),
      flush=True)
sys.stdin.readline()
for s in done:
    s.close()
print(json.dumps({"closed": len(done)}), flush=True)
