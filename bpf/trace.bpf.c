// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * netstack trace: the in-kernel half of the packet tracer.
 *
 * Three programs share one parser and one filter: `trace_xdp` (XDP, ingress), `trace_tc` (TC egress,
 * attached as a tcx link or a clsact filter) and `trace_tc_ingress` (tcx ingress: the hook several
 * programs can share, used when another program holds the interface's XDP hook). For every packet they
 * count it as seen, parse Ethernet (up to two 802.1Q/802.1ad tags) or, on raw-IP devices
 * (trace_config.link_raw), start at the IP header, ARP, IPv4, IPv6 (hop-by-hop, routing, destination options, fragment
 * and AH extension headers), TCP, UDP, SCTP, ICMP and ICMPv6, apply the tcpdump expression (trace_expr) and the
 * filter from `trace_config`, and
 * copy a record (struct trace_record + the first snaplen bytes) into the ring buffer. They always return
 * XDP_PASS / TC_ACT_UNSPEC: tracing never changes traffic. TC_ACT_UNSPEC is tcx's TCX_NEXT, so the
 * programs after this one on the hook (another trace, Cilium…) still run; TC_ACT_OK would end the chain
 * there. For a clsact filter it means "no verdict", and the packet goes on as well.
 *
 * Build: clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -c trace.bpf.c (scripts/build_bpf.ts).
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "trace_record.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by user space before load (bpf_map__set_initial_value on .rodata); see trace_record.h. */
const volatile struct trace_config trace_config = {.snaplen = 128};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TRACE_RING_BYTES);
} trace_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 256);
	__type(key, struct trace_counter_key);
	__type(value, struct trace_counters);
} trace_counters SEC(".maps");

/* Which interface owns each counter slot (0: none); written by user space before it attaches. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TRACE_COUNTER_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} trace_slot_owner SEC(".maps");

/* The counters of the slots' owners: entry slot * 2 + direction. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * TRACE_COUNTER_SLOTS);
	__type(key, __u32);
	__type(value, struct trace_counters);
} trace_slot_counters SEC(".maps");

/* The data area is the power of two above TRACE_MAX_SNAPLEN so that a mask can bound the copy length. */
#define TRACE_SCRATCH_MASK (2 * TRACE_MAX_SNAPLEN - 1)

/* A VLAN tag (TPID and TCI) the kernel moved out of the frame, put back into records at tcx ingress. */
#define VLAN_TAG_BYTES 4
#define MAC_ADDRS_BYTES 12

struct trace_scratch {
	struct trace_record record;
	/* VLAN_TAG_BYTES more: a restored tag shifts the rest of the copy by that much. */
	__u8 data[2 * TRACE_MAX_SNAPLEN + VLAN_TAG_BYTES];
};

/* Where a record is assembled before bpf_ringbuf_output copies it (the reserve API needs a constant size). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct trace_scratch);
} trace_scratch SEC(".maps");

struct vlan_tag {
	__be16 tci;
	__be16 proto;
};

struct l4_ports {
	__be16 source;
	__be16 dest;
};

/* What the filter looks at. Addresses in network order; IPv4 (and ARP's protocol addresses) in word 0. */
struct parsed {
	__u16 eth_proto; /* network order, after VLAN tags */
	__u8 family;     /* TRACE_HOST_IPV4 (also ARP) / TRACE_HOST_IPV6 / 0 */
	__u8 l4_proto;   /* IPPROTO_*, 0 when there is no transport header (ARP, non-first fragment) */
	__u8 has_ports;
	__be16 sport;
	__be16 dport;
	__u32 saddr[4];
	__u32 daddr[4];
};

#define IPV6_EXT_MAX 6

/* IPv6 extension headers and ICMPv6 (linux/in6.h defines them only for some libc set-ups). */
#define NH_HOPOPTS 0
#define NH_ROUTING 43
#define NH_FRAGMENT 44
#define NH_AH 51
#define NH_DSTOPTS 60
#define NH_ICMPV6 58

/* The ports of TCP, UDP and SCTP, which all start with source and destination port. */
static __always_inline void parse_ports(void *cur, void *data_end, __u8 proto, struct parsed *p)
{
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_SCTP)
		return;
	struct l4_ports *ports = cur;
	if ((void *)(ports + 1) > data_end)
		return;
	p->sport = ports->source;
	p->dport = ports->dest;
	p->has_ports = 1;
}

static __always_inline int parse_ipv6(void *cur, void *data_end, struct parsed *p)
{
	struct ipv6hdr_min {
		__u8 priority_version;
		__u8 flow_lbl[3];
		__be16 payload_len;
		__u8 nexthdr;
		__u8 hop_limit;
		__u32 saddr[4];
		__u32 daddr[4];
	} *ip6 = cur;
	if ((void *)(ip6 + 1) > data_end)
		return -1;
	p->family = TRACE_HOST_IPV6;
#pragma unroll
	for (int i = 0; i < 4; i++) {
		p->saddr[i] = ip6->saddr[i];
		p->daddr[i] = ip6->daddr[i];
	}
	__u8 next = ip6->nexthdr;
	cur = ip6 + 1;
#pragma unroll
	for (int i = 0; i < IPV6_EXT_MAX; i++) {
		__u8 *ext = cur;
		if (next != NH_HOPOPTS && next != NH_ROUTING && next != NH_DSTOPTS &&
		    next != NH_FRAGMENT && next != NH_AH)
			break;
		if ((void *)(ext + 8) > data_end)
			return 0;
		if (next == NH_FRAGMENT) {
			/* Only the first fragment (offset 0) carries the transport header. */
			if ((ext[2] << 8 | ext[3]) & 0xfff8)
				return 0;
			next = ext[0];
			cur = ext + 8;
		} else if (next == NH_AH) {
			next = ext[0];
			cur = ext + (((__u32)ext[1] + 2) << 2);
		} else {
			next = ext[0];
			cur = ext + (((__u32)ext[1] + 1) << 3);
		}
	}
	p->l4_proto = next;
	parse_ports(cur, data_end, next, p);
	return 0;
}

static __always_inline int parse_ipv4(void *cur, void *data_end, struct parsed *p)
{
	struct iphdr_min {
		__u8 version_ihl;
		__u8 tos;
		__be16 tot_len;
		__be16 id;
		__be16 frag_off;
		__u8 ttl;
		__u8 protocol;
		__sum16 check;
		__be32 saddr;
		__be32 daddr;
	} *ip = cur;
	if ((void *)(ip + 1) > data_end)
		return -1;
	__u32 header_len = (ip->version_ihl & 0x0f) << 2;
	if (header_len < sizeof(*ip))
		return -1;
	p->family = TRACE_HOST_IPV4;
	p->saddr[0] = ip->saddr;
	p->daddr[0] = ip->daddr;
	p->l4_proto = ip->protocol;
	if (ip->frag_off & bpf_htons(0x1fff)) {
		p->l4_proto = 0; /* not the first fragment: no transport header */
		return 0;
	}
	parse_ports(cur + header_len, data_end, ip->protocol, p);
	return 0;
}

static __always_inline int parse_arp(void *cur, void *data_end, struct parsed *p)
{
	/* Ethernet/IPv4 ARP: htype, ptype, hlen, plen, oper, sha[6], spa[4], tha[6], tpa[4]. */
	__u8 *arp = cur;
	if ((void *)(arp + 28) > data_end)
		return -1;
	if (arp[0] != 0 || arp[1] != 1 || arp[2] != 0x08 || arp[3] != 0x00 || arp[4] != 6 || arp[5] != 4)
		return 0;
	p->family = TRACE_HOST_IPV4;
	__builtin_memcpy(&p->saddr[0], arp + 14, 4);
	__builtin_memcpy(&p->daddr[0], arp + 24, 4);
	return 0;
}

/* A raw-IP frame (TUN, ipip, WireGuard): the version nibble says which IP it is. */
static __always_inline void parse_raw_ip(void *data, void *data_end, struct parsed *p)
{
	__u8 *first = data;
	if ((void *)(first + 1) > data_end)
		return;
	if ((*first >> 4) == 4) {
		p->eth_proto = bpf_htons(ETH_P_IP);
		parse_ipv4(data, data_end, p);
	} else if ((*first >> 4) == 6) {
		p->eth_proto = bpf_htons(ETH_P_IPV6);
		parse_ipv6(data, data_end, p);
	}
}

static __always_inline void parse(void *data, void *data_end, struct parsed *p)
{
	/* A constant for the verifier: the branch not taken is removed from the loaded program. */
	if (trace_config.link_raw) {
		parse_raw_ip(data, data_end, p);
		return;
	}
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return;
	__be16 proto = eth->h_proto;
	void *cur = eth + 1;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		struct vlan_tag *tag = cur;
		if ((void *)(tag + 1) > data_end)
			return;
		proto = tag->proto;
		cur = tag + 1;
	}
	p->eth_proto = proto;
	if (proto == bpf_htons(ETH_P_IP))
		parse_ipv4(cur, data_end, p);
	else if (proto == bpf_htons(ETH_P_IPV6))
		parse_ipv6(cur, data_end, p);
	else if (proto == bpf_htons(ETH_P_ARP))
		parse_arp(cur, data_end, p);
}

static __always_inline int in_prefix(const __u32 *addr)
{
	const volatile __u32 *want = (const volatile __u32 *)trace_config.host_addr;
	const volatile __u32 *mask = (const volatile __u32 *)trace_config.host_mask;
	if ((addr[0] & mask[0]) != want[0])
		return 0;
	if (trace_config.host_family == TRACE_HOST_IPV4)
		return 1;
	return (addr[1] & mask[1]) == want[1] && (addr[2] & mask[2]) == want[2] && (addr[3] & mask[3]) == want[3];
}

static __always_inline int matches(const struct parsed *p)
{
	switch (trace_config.proto) {
	case TRACE_PROTO_ANY:
		break;
	case TRACE_PROTO_TCP:
		if (p->l4_proto != IPPROTO_TCP)
			return 0;
		break;
	case TRACE_PROTO_UDP:
		if (p->l4_proto != IPPROTO_UDP)
			return 0;
		break;
	case TRACE_PROTO_SCTP:
		if (p->l4_proto != IPPROTO_SCTP)
			return 0;
		break;
	case TRACE_PROTO_ICMP:
		if (p->eth_proto != bpf_htons(ETH_P_IP) || p->l4_proto != IPPROTO_ICMP)
			return 0;
		break;
	case TRACE_PROTO_ICMP6:
		if (p->eth_proto != bpf_htons(ETH_P_IPV6) || p->l4_proto != NH_ICMPV6)
			return 0;
		break;
	case TRACE_PROTO_ARP:
		if (p->eth_proto != bpf_htons(ETH_P_ARP))
			return 0;
		break;
	case TRACE_PROTO_IP:
		if (p->eth_proto != bpf_htons(ETH_P_IP))
			return 0;
		break;
	case TRACE_PROTO_IP6:
		if (p->eth_proto != bpf_htons(ETH_P_IPV6))
			return 0;
		break;
	default:
		return 0;
	}
	if (trace_config.host_family != TRACE_HOST_ANY) {
		if (p->family != trace_config.host_family)
			return 0;
		if (!in_prefix(p->saddr) && !in_prefix(p->daddr))
			return 0;
	}
	if (trace_config.port_set) {
		if (!p->has_ports)
			return 0;
		__be16 port = bpf_htons(trace_config.port);
		if (p->sport != port && p->dport != port)
			return 0;
	}
	return 1;
}

/*
 * The tcpdump expression of `netstack trace EXPRESSION`. User space replaces this function's body with
 * the expression compiled by libpcap and translated to eBPF (lib/filter/to_ebpf.ts), spliced in before
 * load by lib/trace/splice.ts, which finds it as the target of the programs' BPF-to-BPF calls and checks
 * TRACE_EXPR_MAGIC. A separate (noinline) function gives the code its own registers and stack frame;
 * the verifier checks it in the caller's context, so the packet pointers keep their types.
 * Contract: data and data_end of the packet from the link-layer header, the wire length, and the VLAN
 * tag the kernel took out of an Ethernet frame (TPID << 16 | TCI, 0 when none: see the tc programs),
 * which the expression reads as if it were still in the frame; returns non-zero on a match. It is called only when trace_config.expr is set, so without an expression the
 * verifier prunes the call. The body here (a constant hidden from the compiler, which must neither
 * inline the function nor drop its arguments) is never run.
 */
static __noinline int trace_expr(void *data, void *data_end, __u32 wire_len, __u32 vlan)
{
	int match;
	asm volatile("%[match] = %[magic]"
		     : [match] "=r"(match)
		     : [magic] "i"(TRACE_EXPR_MAGIC), "r"(data), "r"(data_end), "r"(wire_len), "r"(vlan));
	return match;
}

/*
 * The counters of (interface, hook): the first thing every packet pays for, before the expression, so
 * the common case is two array lookups (see TRACE_COUNTER_SLOTS); the hash only when the slot belongs
 * to another interface.
 */
static __always_inline struct trace_counters *counters_for(__u32 ifindex, __u32 direction)
{
	__u32 slot = ifindex & (TRACE_COUNTER_SLOTS - 1);
	__u32 *owner = bpf_map_lookup_elem(&trace_slot_owner, &slot);
	if (owner && *owner == ifindex) {
		__u32 index = slot * 2 + direction;
		return bpf_map_lookup_elem(&trace_slot_counters, &index);
	}
	struct trace_counter_key key = {.ifindex = ifindex, .direction = direction};
	return bpf_map_lookup_elem(&trace_counters, &key);
}

/*
 * Assembles the record in the scratch buffer and copies it to the ring; returns 0 or a negative error.
 * `wire_len` is the frame's length on the wire; `vlan` the tag (TPID << 16 | TCI) the kernel keeps out
 * of the packet (0 when none, see the tc programs): it is put back after the MAC addresses, so the record
 * holds the frame as it is on the wire, as XDP and tcpdump (which re-inserts it too) show it.
 */
static __always_inline long submit(void *ctx, int is_xdp, __u32 ifindex, __u32 direction, __u32 wire_len,
				   __u32 vlan)
{
	__u32 zero = 0;
	struct trace_scratch *scratch = bpf_map_lookup_elem(&trace_scratch, &zero);
	if (!scratch)
		return -1;
	__u32 packet_len = vlan ? wire_len - VLAN_TAG_BYTES : wire_len;
	__u64 cap = trace_config.snaplen;
	if (cap > wire_len)
		cap = wire_len;
	if (cap > TRACE_MAX_SNAPLEN)
		cap = TRACE_MAX_SNAPLEN;
	/* Too short to hold the MAC addresses and the tag: copied as it is, without the tag. */
	int restore = !is_xdp && vlan && cap >= MAC_ADDRS_BYTES + VLAN_TAG_BYTES;
	if (vlan && !restore && cap > packet_len)
		cap = packet_len;
	/* A no-op for the value (cap <= TRACE_MAX_SNAPLEN already) that gives the verifier a bound on the
	 * very register passed to the helpers; clang would otherwise pass an unclamped copy. */
	asm volatile("%[cap] &= %[mask]" : [cap] "+r"(cap) : [mask] "i"(TRACE_SCRATCH_MASK));
	if (restore) {
		long err = bpf_skb_load_bytes(ctx, 0, scratch->data, MAC_ADDRS_BYTES);
		if (err)
			return err;
		__be32 tag = bpf_htonl(vlan);
		__builtin_memcpy(scratch->data + MAC_ADDRS_BYTES, &tag, VLAN_TAG_BYTES);
		__u64 rest = cap - MAC_ADDRS_BYTES - VLAN_TAG_BYTES;
		/* rest < TRACE_MAX_SNAPLEN (a power of two): the same no-op bound as for cap. */
		asm volatile("%[rest] &= %[mask]" : [rest] "+r"(rest) : [mask] "i"(TRACE_MAX_SNAPLEN - 1));
		if (rest > 0) {
			err = bpf_skb_load_bytes(ctx, MAC_ADDRS_BYTES, scratch->data + MAC_ADDRS_BYTES + VLAN_TAG_BYTES,
						 rest);
			if (err)
				return err;
		}
	} else if (cap > 0) {
		long err = is_xdp ? bpf_xdp_load_bytes(ctx, 0, scratch->data, cap)
				  : bpf_skb_load_bytes(ctx, 0, scratch->data, cap);
		if (err)
			return err;
	}
	scratch->record.timestamp_ns = bpf_ktime_get_ns();
	scratch->record.ifindex = ifindex;
	scratch->record.wire_len = wire_len;
	scratch->record.cap_len = cap;
	scratch->record.direction = direction;
	scratch->record.version = TRACE_RECORD_VERSION;
	scratch->record.reserved = 0;
	__u64 size = TRACE_RECORD_HEADER_BYTES + cap;
	/* Wake the reader only when this record makes the pending data cross the threshold; otherwise it
	 * finds the records on its short poll timeout. A wake-up per record halves the capture rate. */
	__u64 pending = bpf_ringbuf_query(&trace_ring, BPF_RB_AVAIL_DATA);
	__u64 flags = pending < TRACE_WAKEUP_BYTES && pending + size >= TRACE_WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP
											   : BPF_RB_NO_WAKEUP;
	return bpf_ringbuf_output(&trace_ring, scratch, size, flags);
}

static __always_inline void trace(void *ctx, int is_xdp, void *data, void *data_end, __u32 ifindex,
				  __u32 direction, __u32 wire_len, __u32 vlan)
{
	struct trace_counters *counters = counters_for(ifindex, direction);
	if (counters)
		counters->seen++;
	if (trace_config.expr && !trace_expr(data, data_end, wire_len, vlan))
		return;
	/* Without a filter there is nothing to parse; the verifier sees trace_config as constants and
	 * removes the parser from the program altogether. */
	if (trace_config.proto != TRACE_PROTO_ANY || trace_config.host_family != TRACE_HOST_ANY ||
	    trace_config.port_set) {
		struct parsed p = {};
		parse(data, data_end, &p);
		if (!matches(&p))
			return;
	}
	if (counters)
		counters->matched++;
	long err = submit(ctx, is_xdp, ifindex, direction, wire_len, vlan);
	if (!counters)
		return;
	if (err == 0)
		counters->submitted++;
	else
		counters->lost++;
}

SEC("xdp")
int trace_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	trace(ctx, 1, data, data_end, ctx->ingress_ifindex, TRACE_DIR_INGRESS, bpf_xdp_get_buff_len(ctx), 0);
	return XDP_PASS;
}

/*
 * The VLAN tag an Ethernet frame carries out of band at the tc hooks (TPID << 16 | TCI), 0 when none: on
 * ingress the kernel moves the outer tag out of the packet (skb_vlan_untag) after XDP but before tc; on
 * egress a VLAN device may hand its tag down that way. The tracer puts it back, in the record and for
 * the expression, so tc shows frames as XDP and tcpdump do. Raw-IP devices have no place for a tag.
 */
static __always_inline __u32 offloaded_vlan(struct __sk_buff *skb)
{
	if (trace_config.link_raw || !skb->vlan_present)
		return 0;
	return (__u32)bpf_ntohs(skb->vlan_proto) << 16 | (skb->vlan_tci & 0xffff);
}

SEC("tc")
int trace_tc(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 vlan = offloaded_vlan(skb);
	trace(skb, 0, data, data_end, skb->ifindex, TRACE_DIR_EGRESS, skb->len + (vlan ? VLAN_TAG_BYTES : 0), vlan);
	return TC_ACT_UNSPEC;
}

/* tcx ingress: the kernel has pushed the link-layer header back, so data starts where XDP's would. */
SEC("tc")
int trace_tc_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 vlan = offloaded_vlan(skb);
	trace(skb, 0, data, data_end, skb->ifindex, TRACE_DIR_INGRESS, skb->len + (vlan ? VLAN_TAG_BYTES : 0), vlan);
	return TC_ACT_UNSPEC;
}
