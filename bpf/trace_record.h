/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * netstack trace: the layouts shared by the BPF programs (trace.bpf.c) and user space.
 *
 * The TypeScript side declares the structs in lib/trace/layout.ts (used by record.ts, filter.ts and
 * counters.ts); tests/unit/trace_layout.test.ts compares it with the BTF of the compiled object, member by
 * member, and the #defines below with their TypeScript twins. All fields are in the host's byte order
 * (little-endian on x86-64) unless marked "network order". Change a layout here and in layout.ts together
 * (then `deno task build:bpf`), and bump TRACE_RECORD_VERSION when the record changes.
 */
#ifndef NETSTACK_TRACE_RECORD_H
#define NETSTACK_TRACE_RECORD_H

#include <linux/types.h>

#define TRACE_RECORD_VERSION 1

/* Largest --snaplen: the size of the per-CPU scratch buffer a record is assembled in. */
#define TRACE_MAX_SNAPLEN 4096

/* Ring-buffer size in bytes (a power of two, a multiple of the page size). */
#define TRACE_RING_BYTES (8 * 1024 * 1024)

/* Forced wake-up of the reader once this much is pending; below it records are written with
 * BPF_RB_NO_WAKEUP and the reader finds them on its short poll timeout. */
#define TRACE_WAKEUP_BYTES (64 * 1024)

/* Records and counters say which hook saw the packet. */
#define TRACE_DIR_INGRESS 0 /* XDP, or tcx ingress when XDP is taken */
#define TRACE_DIR_EGRESS 1  /* TC egress (tcx or clsact) */

/*
 * One ring-buffer record: this fixed header (24 bytes), then cap_len bytes of the frame starting at
 * the Ethernet header (at the IP header on raw-IP devices, see trace_config.link_raw). The ring buffer's own 8-byte header (length, busy and discard bits) precedes it
 * and is not part of this struct.
 *
 *   offset size field
 *        0    8 timestamp_ns  bpf_ktime_get_ns(): CLOCK_MONOTONIC, nanoseconds
 *        8    4 ifindex       interface the packet was seen on
 *       12    4 wire_len      the frame's full length
 *       16    2 cap_len       bytes of the frame that follow (min(wire_len, snaplen))
 *       18    1 direction     TRACE_DIR_INGRESS or TRACE_DIR_EGRESS
 *       19    1 version       TRACE_RECORD_VERSION
 *       20    4 reserved      zero
 *       24    …  data[cap_len]
 */
struct trace_record {
	__u64 timestamp_ns;
	__u32 ifindex;
	__u32 wire_len;
	__u16 cap_len;
	__u8 direction;
	__u8 version;
	__u32 reserved;
	/* then: __u8 data[cap_len] */
};

#define TRACE_RECORD_HEADER_BYTES 24

/* --proto values of struct trace_config.proto. */
#define TRACE_PROTO_ANY 0
#define TRACE_PROTO_TCP 1   /* TCP over IPv4 or IPv6 */
#define TRACE_PROTO_UDP 2   /* UDP over IPv4 or IPv6 */
#define TRACE_PROTO_ICMP 3  /* ICMP (IPv4) */
#define TRACE_PROTO_ICMP6 4 /* ICMPv6 */
#define TRACE_PROTO_ARP 5
#define TRACE_PROTO_IP 6   /* any IPv4 */
#define TRACE_PROTO_IP6 7  /* any IPv6 */
#define TRACE_PROTO_SCTP 8 /* SCTP over IPv4 or IPv6 */

/* struct trace_config.host_family */
#define TRACE_HOST_ANY 0
#define TRACE_HOST_IPV4 4
#define TRACE_HOST_IPV6 6

/*
 * The filter, the program's only variable in .rodata (`const volatile`), written by user space with
 * bpf_map__set_initial_value() before load. The verifier then sees it as constants and removes the code
 * of filters that are off. 48 bytes:
 *
 *   offset size field
 *        0    4 snaplen      bytes copied per packet, 1..TRACE_MAX_SNAPLEN
 *        4    1 proto        TRACE_PROTO_*
 *        5    1 host_family  TRACE_HOST_*: match packets whose source or destination is in the prefix
 *        6    1 port_set     1: match TCP/UDP/SCTP packets whose source or destination port is `port`
 *        7    1 link_raw     1: frames start at the IP header (TUN, ipip, sit, WireGuard: ARPHRD_NONE,
 *                            ARPHRD_TUNNEL…), 0: at an Ethernet header. Per loaded object: user space
 *                            loads one object per link type and attaches each to its interfaces.
 *        8    2 port         host order
 *       10    1 expr         1: run trace_expr (the spliced tcpdump expression) first; 0: skip it
 *       11    1 reserved
 *       12    4 reserved
 *       16   16 host_addr    network order; IPv4 in the first 4 bytes, already masked
 *       32   16 host_mask    network order; the prefix as a mask
 */
struct trace_config {
	__u32 snaplen;
	__u8 proto;
	__u8 host_family;
	__u8 port_set;
	__u8 link_raw;
	__u16 port;
	__u8 expr;
	__u8 reserved1;
	__u32 reserved2;
	__u8 host_addr[16];
	__u8 host_mask[16];
};

/* An immediate in trace_expr's placeholder body by which user space recognises it ("nstx"). */
#define TRACE_EXPR_MAGIC 0x6e737478

/* Key of the per-CPU counters map: one entry per (interface, hook), created by user space before attach. */
struct trace_counter_key {
	__u32 ifindex;
	__u32 direction;
};

/*
 * Counter slots: the counters of an interface whose slot (ifindex % TRACE_COUNTER_SLOTS) it owns live in
 * per-CPU array entries slot * 2 + direction, found with two array lookups (inlined by the verifier)
 * instead of a hash lookup, which cost more than a short expression (BPF_PROG_TEST_RUN, ~20 ns). User
 * space claims the slot when it attaches (trace_slot_owner[slot] = ifindex); an interface whose slot is
 * taken by another one keeps its counters in the hash map. A power of two.
 */
#define TRACE_COUNTER_SLOTS 64

/* Value of the counters maps, per CPU; user space sums the CPUs. */
struct trace_counters {
	__u64 seen;      /* every packet the hook ran for */
	__u64 matched;   /* passed the filters */
	__u64 submitted; /* written to the ring buffer */
	__u64 lost;      /* matched but dropped because the ring buffer was full */
};

#endif
