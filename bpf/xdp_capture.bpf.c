// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Copies every WireGuard handshake initiation that reaches the listen port to
 * a ring buffer, and lets every frame through: the program observes, it
 * never decides. Each exit is counted by reason in a per-CPU array.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "capture_limits.h"
#include "capture_record.h"

/* Not exported by the uapi headers user space builds against. */
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8

/* Set by the loader before load: the WireGuard listen port, host order. */
const volatile __u16 listen_port = 51820;

/* Size is set by the loader (bpf_map__set_max_entries) before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} capture_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CAPTURE_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} capture_stats SEC(".maps");

struct cursor {
	void *pos;
	void *end;
};

static __always_inline int count(enum capture_stat reason)
{
	__u32 key = reason;
	__u64 *value = bpf_map_lookup_elem(&capture_stats, &key);

	if (value)
		*value += 1; /* per-CPU slot: no other writer */
	return XDP_PASS;
}

static __always_inline struct ethhdr *parse_eth(struct cursor *c)
{
	struct ethhdr *eth = c->pos;

	if ((void *)(eth + 1) > c->end)
		return NULL;
	c->pos = eth + 1;
	return eth;
}

static __always_inline bool is_vlan(__be16 proto)
{
	return proto == bpf_htons(ETH_P_8021Q_) || proto == bpf_htons(ETH_P_8021AD_);
}

/*
 * Steps over up to CAPTURE_MAX_VLAN_TAGS tags, of either kind in either
 * position (switches disagree on which outer type QinQ uses); *proto becomes
 * the ethertype after them. NICs that strip tags in hardware show XDP an
 * untagged frame, which needs nothing here.
 */
static __always_inline bool parse_vlans(struct cursor *c, __be16 *proto, enum capture_stat *reason)
{
	struct vlan_tag {
		__be16 tci;
		__be16 proto;
	} *tag;

#pragma unroll
	for (int i = 0; i < CAPTURE_MAX_VLAN_TAGS; i++) {
		if (!is_vlan(*proto))
			return true;
		tag = c->pos;
		if ((void *)(tag + 1) > c->end) {
			*reason = CAPTURE_STAT_TRUNCATED;
			return false;
		}
		*proto = tag->proto;
		c->pos = tag + 1;
	}
	if (is_vlan(*proto)) {
		*reason = CAPTURE_STAT_VLAN_LIMIT;
		return false;
	}
	return true;
}

/*
 * Returns the header with the cursor past its options, on the UDP header of
 * an unfragmented datagram; *reason says why on NULL.
 */
static __always_inline struct iphdr *parse_ipv4(struct cursor *c, enum capture_stat *reason)
{
	struct iphdr *iph = c->pos;
	__u32 hdr_len;

	if ((void *)(iph + 1) > c->end) {
		*reason = CAPTURE_STAT_TRUNCATED;
		return NULL;
	}
	hdr_len = iph->ihl * 4;
	if (iph->version != 4 || hdr_len < sizeof(*iph)) {
		*reason = CAPTURE_STAT_BAD_IP_HEADER;
		return NULL;
	}
	if (c->pos + hdr_len > c->end) {
		*reason = CAPTURE_STAT_TRUNCATED;
		return NULL;
	}
	if (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
		*reason = CAPTURE_STAT_FRAGMENT;
		return NULL;
	}
	if (iph->protocol != IPPROTO_UDP) {
		*reason = CAPTURE_STAT_NOT_UDP;
		return NULL;
	}
	c->pos += hdr_len;
	return iph;
}

/* The extension headers that share the (hdrlen + 1) * 8 length rule. */
static __always_inline bool is_ipv6_ext(__u8 nexthdr)
{
	return nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING || nexthdr == IPPROTO_DSTOPTS;
}

/*
 * Walks up to CAPTURE_MAX_IPV6_EXT extension headers from *nexthdr to UDP.
 * A fragment header anywhere makes a fragment; AH, ESP, "no next header"
 * and anything else are not UDP we can read.
 */
static __always_inline bool skip_ipv6_ext(struct cursor *c, __u8 *nexthdr, enum capture_stat *reason)
{
	struct ipv6_opt_hdr *ext;
	__u32 len;

#pragma unroll
	for (int i = 0; i < CAPTURE_MAX_IPV6_EXT; i++) {
		if (!is_ipv6_ext(*nexthdr))
			break;
		if (*nexthdr == IPPROTO_HOPOPTS && i > 0) {
			*reason = CAPTURE_STAT_BAD_IP_HEADER;
			return false;
		}
		ext = c->pos;
		if ((void *)(ext + 1) > c->end) {
			*reason = CAPTURE_STAT_TRUNCATED;
			return false;
		}
		len = (ext->hdrlen + 1) * 8;
		if (c->pos + len > c->end) {
			*reason = CAPTURE_STAT_TRUNCATED;
			return false;
		}
		*nexthdr = ext->nexthdr;
		c->pos += len;
	}
	if (is_ipv6_ext(*nexthdr))
		*reason = CAPTURE_STAT_IPV6_EXT_LIMIT;
	else if (*nexthdr == IPPROTO_FRAGMENT)
		*reason = CAPTURE_STAT_FRAGMENT;
	else if (*nexthdr != IPPROTO_UDP)
		*reason = CAPTURE_STAT_NOT_UDP;
	else
		return true;
	return false;
}

/* Like parse_ipv4: the cursor ends on the UDP header. */
static __always_inline struct ipv6hdr *parse_ipv6(struct cursor *c, enum capture_stat *reason)
{
	struct ipv6hdr *ip6h = c->pos;
	__u8 nexthdr;

	if ((void *)(ip6h + 1) > c->end) {
		*reason = CAPTURE_STAT_TRUNCATED;
		return NULL;
	}
	if (ip6h->version != 6) {
		*reason = CAPTURE_STAT_BAD_IP_HEADER;
		return NULL;
	}
	c->pos = ip6h + 1;
	nexthdr = ip6h->nexthdr;
	if (!skip_ipv6_ext(c, &nexthdr, reason))
		return NULL;
	return ip6h;
}

static __always_inline struct udphdr *parse_udp(struct cursor *c)
{
	struct udphdr *udp = c->pos;

	if ((void *)(udp + 1) > c->end)
		return NULL;
	c->pos = udp + 1;
	return udp;
}

/*
 * The UDP payload at the cursor: capture it if it is a well-formed initiation.
 * The record's addresses are filled by the caller after a successful reserve.
 */
static __always_inline int classify_payload(struct cursor *c, struct udphdr *udp)
{
	__u8 *msg = c->pos;

	if (udp->dest != bpf_htons(listen_port))
		return CAPTURE_STAT_OTHER_PORT;
	if (bpf_ntohs(udp->len) != sizeof(*udp) + WG_MSG_INITIATION_SIZE)
		return CAPTURE_STAT_WRONG_SIZE;
	if ((void *)(msg + WG_MSG_INITIATION_SIZE) > c->end)
		return CAPTURE_STAT_TRUNCATED;
	if (msg[WG_INITIATION_OFF_TYPE] != WG_MSG_TYPE_INITIATION)
		return CAPTURE_STAT_NOT_INITIATION;
	if (msg[WG_INITIATION_OFF_RESERVED] | msg[WG_INITIATION_OFF_RESERVED + 1] |
	    msg[WG_INITIATION_OFF_RESERVED + 2])
		return CAPTURE_STAT_BAD_RESERVED;
	return CAPTURE_STAT_CAPTURED;
}

static __always_inline struct capture_record *reserve(struct xdp_md *ctx, __u8 family,
						      struct udphdr *udp, const __u8 *msg)
{
	struct capture_record *rec = bpf_ringbuf_reserve(&capture_ring, sizeof(*rec), 0);

	if (!rec)
		return NULL;
	/* Ring memory is not zeroed: clear what no field below overwrites. */
	__builtin_memset(rec, 0, offsetof(struct capture_record, msg));
	__builtin_memset(rec->pad2, 0, sizeof(rec->pad2));
	rec->ifindex = ctx->ingress_ifindex;
	rec->family = family;
	rec->sport = udp->source;
	rec->dport = udp->dest;
	rec->arrival_ns = bpf_ktime_get_ns();
	__builtin_memcpy(rec->msg, msg, WG_MSG_INITIATION_SIZE);
	return rec;
}

SEC("xdp")
int xdp_capture(struct xdp_md *ctx)
{
	struct cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};
	enum capture_stat reason = CAPTURE_STAT_TRUNCATED;
	struct capture_record *rec;
	struct ipv6hdr *ip6h = NULL;
	struct iphdr *iph = NULL;
	struct ethhdr *eth;
	struct udphdr *udp;
	__be16 proto;
	__u8 family;
	int verdict;

	eth = parse_eth(&c);
	if (!eth)
		return count(CAPTURE_STAT_TRUNCATED);
	proto = eth->h_proto;
	if (!parse_vlans(&c, &proto, &reason))
		return count(reason);

	if (proto == bpf_htons(ETH_P_IP)) {
		iph = parse_ipv4(&c, &reason);
		if (!iph)
			return count(reason);
		family = CAPTURE_FAMILY_IPV4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		ip6h = parse_ipv6(&c, &reason);
		if (!ip6h)
			return count(reason);
		family = CAPTURE_FAMILY_IPV6;
	} else {
		return count(CAPTURE_STAT_NOT_IP);
	}

	udp = parse_udp(&c);
	if (!udp)
		return count(CAPTURE_STAT_TRUNCATED);
	verdict = classify_payload(&c, udp);
	if (verdict != CAPTURE_STAT_CAPTURED)
		return count(verdict);
	rec = reserve(ctx, family, udp, c.pos);
	if (!rec)
		return count(CAPTURE_STAT_RINGBUF_FULL);
	if (iph) {
		__builtin_memcpy(rec->saddr, &iph->saddr, sizeof(iph->saddr));
		__builtin_memcpy(rec->daddr, &iph->daddr, sizeof(iph->daddr));
	} else if (ip6h) {
		__builtin_memcpy(rec->saddr, &ip6h->saddr, sizeof(ip6h->saddr));
		__builtin_memcpy(rec->daddr, &ip6h->daddr, sizeof(ip6h->daddr));
	}
	bpf_ringbuf_submit(rec, 0);
	return count(CAPTURE_STAT_CAPTURED);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
