#!/usr/bin/env python3
"""The Linux kernel's TCP as the server under abuse, for bench:abuse's comparisons.

usage: kernel_servers.py ADDRESS

Listens on [ADDRESS]:80 (a minimal HTTP/1.0 server: a 200 response, then close) and [ADDRESS]:7 (echo),
with the kernel's default listen backlog handling (SYN cookies when it overflows: net.ipv4.tcp_syncookies,
which covers IPv6 too). Prints "listening" once both listen; runs until killed.
"""
import socket
import sys
import threading

address = sys.argv[1]
family = socket.AF_INET6 if ":" in address else socket.AF_INET
BODY = b"<html><body>kernel</body></html>\n"
RESPONSE = b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)


def listen(port):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, port))
    s.listen(128)
    return s


def http(c):
    try:
        c.settimeout(5)
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = c.recv(4096)
            if not chunk:
                return
            got += chunk
        c.sendall(RESPONSE)
    except OSError:
        pass
    finally:
        c.close()


def echo(c):
    try:
        c.settimeout(5)
        while True:
            chunk = c.recv(4096)
            if not chunk:
                return
            c.sendall(chunk)
    except OSError:
        pass
    finally:
        c.close()


def serve(s, handler):
    while True:
        c, _ = s.accept()
        threading.Thread(target=handler, args=(c,), daemon=True).start()


servers = [(listen(80), http), (listen(7), echo)]
print("listening", flush=True)
threads = [threading.Thread(target=serve, args=pair, daemon=True) for pair in servers]
for t in threads:
    t.start()
for t in threads:
    t.join()
