"""The oracle corpus of netstack trace's expression test, built with scapy (Debian's python3-scapy).

  corpus:  python3 filter_corpus.py corpus OUT.pcap      write the frames (deterministic) to a pcap file
  send:    python3 filter_corpus.py send FILE.pcap IFACE...
           send every frame of FILE.pcap once on each IFACE through an AF_PACKET socket, interleaved and
           paced (bounded: the file's frames, once)

The frames cover TCP with various flags and ports, UDP (DNS, mDNS, port ranges, payload patterns,
large), ICMP and ICMPv6 (echo, errors, neighbour discovery), ARP, 802.1Q and 802.1ad tags, IPv4 options
and fragments, IPv6 extension headers (hop-by-hop, routing, fragment, destination options), SCTP, LLDP,
broadcast and multicast, and different lengths, TTLs and TOS values.
"""

import socket
import struct
import sys
import time


def corpus(path):
    from scapy.all import (ARP, ICMP, IP, SCTP, TCP, UDP, Dot1AD, Dot1Q, Ether, ICMPv6DestUnreach,
                           ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NS, ICMPv6ND_RS, IPOption_RR,
                           IPOption_Router_Alert, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                           IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, Raw, fragment, wrpcap)

    a, b = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
    e = lambda **kw: Ether(src=a, dst=b, **kw)
    frames = []
    for flags, sport, dport in [("S", 40000, 80), ("SA", 80, 40000), ("A", 40000, 80), ("PA", 1234, 443),
                                ("F", 22, 50000), ("FA", 50000, 22), ("R", 1500, 2500), ("RA", 2500, 1500),
                                ("SE", 1000, 2000), ("U", 7, 1999), ("SEC", 3000, 2001)]:
        frames.append(e() / IP(src="10.1.2.3", dst="192.168.1.1") / TCP(sport=sport, dport=dport, flags=flags))
    frames.append(e() / IP(src="10.1.2.3", dst="192.168.1.1") / TCP(sport=1234, dport=80, flags="PA")
                  / Raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
    frames.append(e() / IP(src="172.16.5.5", dst="8.8.8.8", tos=0x28) / TCP(sport=443, dport=1234, flags="A")
                  / Raw(b"x" * 600))
    frames.append(e() / IP(src="172.31.0.1", dst="10.9.9.9", ttl=3) / TCP(sport=22, dport=1200, flags="PA")
                  / Raw(b"ssh"))
    frames.append(e() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5353, dport=53) / Raw(b"\x12\x34" + b"q" * 20))
    frames.append(e() / IP(src="10.0.0.2", dst="10.0.0.1") / UDP(sport=53, dport=5353) / Raw(b"\x12\x34" + b"r" * 40))
    frames.append(e() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000, dport=2000) / Raw(b"\xde\xad\xbe\xef" + b"p"))
    frames.append(e() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=999, dport=2001) / Raw(b"\xde\xad\xbe\xee"))
    frames.append(e() / IP(src="192.168.3.4", dst="10.0.0.2") / UDP(sport=30000, dport=30001) / Raw(b"z" * 1000))
    frames.append(Ether(src=a, dst="01:00:5e:00:00:fb") / IP(src="10.0.0.1", dst="224.0.0.251", ttl=255)
                  / UDP(sport=5353, dport=5353) / Raw(b"m" * 30))
    frames.append(Ether(src=a, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
                  / UDP(sport=68, dport=67) / Raw(b"\x01" * 240))
    frames.append(e() / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=8, id=1, seq=1) / Raw(b"ping"))
    frames.append(e() / IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=0, id=1, seq=1) / Raw(b"ping"))
    frames.append(e() / IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=3, code=3)
                  / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5, dport=6))
    frames.append(e() / IP(src="10.5.5.5", dst="10.0.0.2", options=[IPOption_Router_Alert()]) / TCP(sport=2000, dport=443, flags="S"))
    frames.append(e() / IP(src="10.5.5.6", dst="10.0.0.2", options=[IPOption_RR(routers=["1.2.3.4"])]) / UDP(sport=1100, dport=1200))
    frames += [e() / f for f in fragment(IP(src="10.6.6.6", dst="10.0.0.2", id=77) / UDP(sport=1500, dport=53)
                                        / Raw(b"f" * 900), fragsize=400)]
    frames.append(e() / IP(src="10.7.7.7", dst="10.0.0.2", proto=132) / SCTP(sport=5000, dport=6000))
    frames.append(Ether(src=a, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=a, psrc="10.0.0.1", pdst="10.0.0.2"))
    frames.append(e() / ARP(op=2, hwsrc=a, psrc="10.0.0.1", hwdst=b, pdst="10.0.0.2"))
    frames.append(e(type=0x88cc) / Raw(b"\x02\x07\x04" + b"\x02\x00\x00\x00\x00\x0a" + b"\x00\x00"))
    frames.append(e() / Dot1Q(vlan=100) / IP(src="10.1.1.1", dst="10.2.2.2") / TCP(sport=1234, dport=80, flags="S"))
    frames.append(e() / Dot1Q(vlan=200) / IP(src="10.1.1.1", dst="10.2.2.2") / UDP(sport=1234, dport=53))
    frames.append(e() / Dot1Q(vlan=100) / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=443, dport=1500, flags="A"))
    frames.append(e() / Dot1AD(vlan=300) / Dot1Q(vlan=100) / IP(src="10.1.1.1", dst="10.2.2.2") / TCP(sport=22, dport=22, flags="F"))
    frames.append(e() / Dot1Q(vlan=5) / ARP(op=1, psrc="10.0.0.1", pdst="10.0.0.3"))
    frames.append(e() / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=40000, dport=443, flags="S"))
    frames.append(e() / IPv6(src="2001:db8::2", dst="2001:db8::1") / TCP(sport=443, dport=40000, flags="SA"))
    frames.append(e() / IPv6(src="2001:db8::3", dst="2001:db8::1") / UDP(sport=1500, dport=1600) / Raw(b"\xde\xad\xbe\xef"))
    frames.append(e() / IPv6(src="2001:db8::3", dst="2001:db8::4") / ICMPv6EchoRequest(id=9, seq=1))
    frames.append(e() / IPv6(src="2001:db8::4", dst="2001:db8::3") / ICMPv6EchoReply(id=9, seq=1))
    frames.append(e() / IPv6(src="2001:db8::4", dst="2001:db8::3") / ICMPv6DestUnreach() / IPv6() / UDP())
    frames.append(Ether(src=a, dst="33:33:ff:00:00:02") / IPv6(src="2001:db8::3", dst="ff02::1:ff00:2")
                  / ICMPv6ND_NS(tgt="2001:db8::2"))
    frames.append(Ether(src=a, dst="33:33:00:00:00:02") / IPv6(src="fe80::1", dst="ff02::2") / ICMPv6ND_RS())
    frames.append(e() / IPv6(src="2001:db8::5", dst="2001:db8::1") / IPv6ExtHdrHopByHop() / TCP(sport=80, dport=1999, flags="A"))
    frames.append(e() / IPv6(src="2001:db8::5", dst="2001:db8::1") / IPv6ExtHdrRouting(addresses=["2001:db8::9"])
                  / UDP(sport=1234, dport=53))
    frames.append(e() / IPv6(src="2001:db8::6", dst="2001:db8::1") / IPv6ExtHdrFragment(m=1, id=5)
                  / TCP(sport=1000, dport=22, flags="S"))
    frames.append(e() / IPv6(src="2001:db8::6", dst="2001:db8::1") / IPv6ExtHdrFragment(offset=100, id=5) / Raw(b"r" * 16))
    frames.append(e() / IPv6(src="2001:db8::7", dst="2001:db8::1") / IPv6ExtHdrDestOpt() / ICMPv6EchoRequest())
    frames.append(e() / IPv6(src="2001:db8::8", dst="2001:db8::1", nh=132) / SCTP(sport=1, dport=2))
    wrpcap(path, frames)


def send(path, ifaces):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    assert magic == 0xA1B2C3D4, "little-endian microsecond pcap expected"
    frames, at = [], 24
    while at + 16 <= len(data):
        caplen = struct.unpack("<I", data[at + 8:at + 12])[0]
        frames.append(data[at + 16:at + 16 + caplen])
        at += 16 + caplen
    sockets = []
    for name in ifaces:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind((name, 0))
        sockets.append(s)
    for frame in frames:
        for s in sockets:
            s.send(frame)
        time.sleep(0.001)
    print(len(frames))


if __name__ == "__main__":
    if sys.argv[1] == "corpus":
        corpus(sys.argv[2])
    else:
        send(sys.argv[2], sys.argv[3:])
