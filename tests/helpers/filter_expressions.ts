/**
 * tcpdump expressions the filter tests run (unit tests against libpcap's interpreter, the privileged
 * oracle test against tcpdump), and a corpus of Ethernet frames built in TypeScript for the unit tests.
 *
 * @module
 */

import { arpRequest, ethernet, icmpEcho, ipv4, ipv6, MAC_A, tcp, udp, v6 } from "./trace_packets.ts";

/** Expressions covering protocols, addresses, ports, flags, fragments, VLANs, lengths and payload bytes. */
export const EXPRESSIONS = [
  "tcp",
  "udp",
  "icmp",
  "icmp6",
  "arp",
  "not arp",
  "ip6 and tcp",
  "vlan and tcp",
  "vlan 100",
  "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0",
  "tcp[tcpflags] & tcp-rst != 0",
  "tcp[13] = 2",
  "ip[6:2] & 0x1fff != 0",
  "ip[6:2] & 0x2000 != 0",
  "net 10.0.0.0/8",
  "dst net 192.168.0.0/16 or src net 172.16.0.0/12",
  "portrange 1000-2000",
  "ip6 and udp portrange 1000-2000",
  "len > 500",
  "less 100",
  "greater 1000",
  "ether broadcast",
  "ether multicast",
  "ether dst 02:00:00:00:00:0b",
  "ether proto 0x88cc",
  "ip multicast",
  "ip6 multicast",
  "udp[8:4] = 0xdeadbeef",
  "host 10.1.2.3",
  "src host 10.1.2.3 and dst port 80",
  "tcp port 443",
  "udp port 53",
  "udp and not port 53",
  "ip6 host 2001:db8::1",
  "ip proto 17",
  "icmp[icmptype] = icmp-echo",
  "tcp and (port 22 or port 80)",
  "ip[0] & 0xf > 5",
  "ip and ip[8] < 10",
  "ip[2:2] > 576",
  "ip6[6] = 44",
  "sctp",
  "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
  "tcp src port 1234 and tcp[tcpflags] & tcp-ack != 0",
  "ip[1] / 4 = 10 or ip[1] % 3 = 2",
  "ip[8] * 2 - 1 > 100 and ip[8] << 1 != 0 and ip[8] >> 1 != 99",
];

/** A deterministic PRNG (xorshift32) for mutations. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

const BROADCAST = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff];

/** Ethernet frames of many kinds, then truncated and byte-mutated copies of them. */
export function unitCorpus(): Uint8Array[] {
  const httpGet = [...new TextEncoder().encode("GET / HTTP/1.1\r\n")];
  const frames: Uint8Array[] = [
    ethernet(0x0800, ipv4("10.1.2.3", "192.168.1.1", 6, tcp(1234, 80, 1, 0, 0x02))),
    ethernet(0x0800, ipv4("10.1.2.3", "192.168.1.1", 6, tcp(1234, 80, 1, 1, 0x18, httpGet))),
    ethernet(0x0800, ipv4("172.16.5.5", "8.8.8.8", 6, tcp(443, 50000, 7, 9, 0x11))),
    ethernet(0x0800, ipv4("172.31.0.1", "10.9.9.9", 6, tcp(22, 1500, 7, 9, 0x04))),
    ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, udp(5353, 53, [1, 2, 3, 4]))),
    ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, udp(1000, 2000, [0xde, 0xad, 0xbe, 0xef]))),
    ethernet(0x0800, ipv4("10.0.0.1", "224.0.0.251", 17, udp(5353, 5353, new Array(600).fill(7)))),
    ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 1, icmpEcho(8, 1, 1, [1, 2, 3]))),
    ethernet(0x0800, ipv4("10.0.0.2", "10.0.0.1", 1, icmpEcho(0, 1, 1, [1, 2, 3]))),
    ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, udp(1, 2, [9]), { fragmentOffset: 0x2000 })),
    ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, [1, 2, 3, 4, 5, 6, 7, 8], { fragmentOffset: 0x0010 })),
    ethernet(
      0x0800,
      ipv4("10.0.0.1", "10.0.0.2", 6, tcp(2000, 443, 1, 0, 0x02), { ipOptions: [0x94, 4, 0, 0] }),
    ),
    ethernet(0x0800, ipv4("10.1.2.3", "10.1.2.4", 132, [0, 1, 0, 2, 0, 0, 0, 0])),
    ethernet(0x0806, arpRequest("10.0.0.1", "10.0.0.2")),
    ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 80, 1, 0, 0x02)), [100, 200]),
    ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 80, 1, 0, 0x02)), [100]),
    ethernet(0x86dd, ipv6(v6(1), v6(2), 17, udp(1500, 53, [0, 0]))),
    ethernet(0x86dd, ipv6(v6(1), v6(2), 6, tcp(1234, 443, 5, 0, 0x12)), [7, 8]),
    ethernet(0x86dd, ipv6(v6(2), v6(1), 6, tcp(443, 1234, 5, 6, 0x10))),
    ethernet(0x86dd, ipv6(v6(3), v6(1), 58, [128, 0, 0, 0, 0, 1, 0, 1])),
    ethernet(0x86dd, ipv6(v6(3), v6(2), 0, [6, 0, 1, 4, 0, 0, 0, 0, ...tcp(80, 1999, 1, 1, 0x10)])),
    ethernet(0x86dd, ipv6(v6(3), v6(2), 44, [17, 0, 0, 1, 0, 0, 0, 9, ...udp(1200, 1300, [5])])),
    ethernet(0x88cc, [2, 7, 4, 1, 2, 3, 4, 5, 6]),
    ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, udp(3, 4, new Array(1100).fill(1)))),
  ];
  const broadcast = ethernet(0x0806, arpRequest("10.0.0.1", "10.0.0.3"));
  broadcast.set(BROADCAST, 0);
  frames.push(broadcast);
  const multicastIp6 = ethernet(
    0x86dd,
    ipv6(v6(1), [0xff, 2, ...new Array(13).fill(0), 1], 58, [133, 0, 0, 0]),
  );
  multicastIp6.set([0x33, 0x33, 0, 0, 0, 1], 0);
  frames.push(multicastIp6);
  const fromA = ethernet(0x0800, ipv4("10.1.2.3", "10.1.2.4", 6, tcp(1234, 8080, 1, 1, 0x10)));
  fromA.set(MAC_A, 0);
  frames.push(fromA);
  const lowTtl = ethernet(0x0800, ipv4("10.0.0.9", "10.0.0.2", 17, udp(7, 7, [])));
  lowTtl[22] = 3;
  lowTtl[15] = 41; // TOS
  frames.push(lowTtl, new Uint8Array([1, 2, 3]));

  const random = prng(0x5eed);
  const result = [...frames];
  for (const frame of frames) {
    // Truncations (every load must fail cleanly) and mutations (other branches of the filters).
    for (let cut = 0; cut < frame.length; cut += 1 + (random() % 15)) result.push(frame.slice(0, cut));
    for (let i = 0; i < 3; i++) {
      const copy = frame.slice();
      for (let j = 0; j < 3; j++) copy[14 + (random() % Math.max(1, copy.length - 14))] = random() & 0xff;
      result.push(copy);
    }
  }
  return result;
}
