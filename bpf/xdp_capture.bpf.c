// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Copies every WireGuard handshake initiation that reaches the listen port to
 * a ring buffer, at most a few per second from each source, and lets every
 * frame through: the program observes, it never decides. Each exit is counted
 * by reason in a per-CPU array.
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
#define NSEC_PER_SEC 1000000000ULL

/*
 * Lost compare-and-swap races on one source's bucket before its initiation
 * is refused (see admit()).
 */
#define ADMIT_TRIES 4

/* Set by the loader before load: the WireGuard listen port, host order. */
const volatile __u16 listen_port = 51820;

/*
 * Set by the loader before load: initiations per second per source (0: no
 * limit), and how many may arrive at once.
 */
const volatile __u32 source_rate = CAPTURE_SOURCE_RATE_DEFAULT;
const volatile __u32 source_burst = CAPTURE_SOURCE_BURST_DEFAULT;

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

/*
 * A source as the limiter sees it: an IPv4 address, or an IPv6 /64 (one
 * LAN: a host there may use any of its addresses, so a key per address
 * would limit nothing). The family keeps 32.1.13.184 and 2001:db8::/64 apart.
 */
struct source_key {
	__u8 family; /* CAPTURE_FAMILY_IPV4 or _IPV6 */
	__u8 pad[7];
	__u8 prefix[8]; /* IPv4: the address, then zeros */
};

/*
 * A token bucket kept as the instant it is full again (bpf_ktime_get_ns()),
 * as in the generic cell rate algorithm: one word, so one compare-and-swap
 * takes a token. 0, what a new entry holds, is a full bucket.
 */
struct source_bucket {
	__u64 full_at;
};

/* Size is set by the loader (bpf_map__set_max_entries) before load. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CAPTURE_SOURCE_TABLE_DEFAULT);
	__type(key, struct source_key);
	__type(value, struct source_bucket);
} capture_sources SEC(".maps");

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

/*
 * A token bucket per source, WireGuard's ratelimiter in nanoseconds: an
 * initiation costs NSEC_PER_SEC / rate, the bucket holds burst of them.
 *
 * Several CPUs may take from one bucket at once. The kernel refuses a
 * bpf_spin_lock in an LRU hash (seen on 6.1 and on 6.18), so the bucket is
 * one word changed by compare-and-swap: a token is only taken by a swap that
 * moves full_at by exactly one cost from the value it read, so concurrent
 * CPUs cannot take a single token more than the limit allows. A CPU that
 * loses the race ADMIT_TRIES times in a row refuses the initiation: each lost
 * race is another CPU taking a token of this same source at that moment,
 * which a source within its rate does not do.
 *
 * An evicted source comes back with a full bucket; so does one an attacker
 * pushes out by cycling through more sources than the table holds, which
 * costs the attacker a fresh address (or /64) per burst. An LRU entry can
 * also be evicted and reused for another source while a CPU still holds it;
 * a swap there moves that other source's bucket by one cost. Only a table
 * under eviction pressure sees this, and it costs or gives one token.
 */
static __always_inline enum capture_stat admit(const struct source_key *key, __u64 now)
{
	const struct source_bucket full = {};
	struct source_bucket *b;
	__u64 cost = NSEC_PER_SEC / source_rate;
	__u64 cap = cost * source_burst;
	__u64 seen, next;

	b = bpf_map_lookup_elem(&capture_sources, key);
	if (!b) {
		/* EEXIST means another CPU inserted it first: use theirs. */
		bpf_map_update_elem(&capture_sources, key, &full, BPF_NOEXIST);
		b = bpf_map_lookup_elem(&capture_sources, key);
		if (!b)
			return CAPTURE_STAT_SOURCE_TABLE_ERROR;
	}
#pragma unroll
	for (int i = 0; i < ADMIT_TRIES; i++) {
		seen = *(volatile __u64 *)&b->full_at;
		next = (seen > now ? seen : now) + cost;
		if (next - now > cap)
			return CAPTURE_STAT_RATE_LIMITED;
		if (__sync_val_compare_and_swap(&b->full_at, seen, next) == seen)
			return CAPTURE_STAT_CAPTURED;
	}
	return CAPTURE_STAT_RATE_LIMITED;
}

/* Only well-formed initiations get here: nothing else costs a token. */
static __always_inline enum capture_stat limit(const struct iphdr *iph,
					       const struct ipv6hdr *ip6h, __u64 now)
{
	struct source_key key = {};

	if (source_rate == 0)
		return CAPTURE_STAT_CAPTURED;
	if (iph) {
		key.family = CAPTURE_FAMILY_IPV4;
		__builtin_memcpy(key.prefix, &iph->saddr, sizeof(iph->saddr));
	} else if (ip6h) {
		key.family = CAPTURE_FAMILY_IPV6;
		__builtin_memcpy(key.prefix, &ip6h->saddr, sizeof(key.prefix));
	}
	return admit(&key, now);
}

static __always_inline struct capture_record *reserve(struct xdp_md *ctx, __u8 family,
						      struct udphdr *udp, const __u8 *msg,
						      __u64 now)
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
	rec->arrival_ns = now;
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
	__u64 now;
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
	now = bpf_ktime_get_ns();
	/* CAPTURED, or SOURCE_TABLE_ERROR: captured all the same (fail open). */
	verdict = limit(iph, ip6h, now);
	if (verdict == CAPTURE_STAT_RATE_LIMITED)
		return count(verdict);
	rec = reserve(ctx, family, udp, c.pos, now);
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
	return count(verdict);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
