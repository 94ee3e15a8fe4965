/* SPDX-License-Identifier: MIT */
/*
 * The record the XDP program writes to the ring buffer for every captured
 * handshake initiation, and the reasons the program counts. Shared by the BPF
 * program and the addon; src/capture/record.ts parses the same layout, so any
 * change here must be mirrored there (the offsets are asserted below).
 */
#ifndef WGJIT_CAPTURE_RECORD_H
#define WGJIT_CAPTURE_RECORD_H

#include <linux/types.h>
#include "wg_wire.h"

#define CAPTURE_FAMILY_IPV4 4
#define CAPTURE_FAMILY_IPV6 6
#define CAPTURE_ADDR_SIZE 16

/*
 * Fixed size with explicit padding, so kernel, C++ and TypeScript agree on
 * every offset without relying on a compiler's layout rules. Addresses are in
 * network order; an IPv4 address fills the first 4 bytes, the rest is zero.
 * Ports are in network order, as on the wire.
 */
struct capture_record {
	__u32 ifindex;                    /*   0: ingress interface */
	__u8 family;                      /*   4: CAPTURE_FAMILY_IPV4 or _IPV6 */
	__u8 pad0[3];                     /*   5 */
	__u8 saddr[CAPTURE_ADDR_SIZE];    /*   8: client address */
	__u8 daddr[CAPTURE_ADDR_SIZE];    /*  24: gateway address */
	__be16 sport;                     /*  40: client port */
	__be16 dport;                     /*  42: gateway (listen) port */
	__u32 pad1;                       /*  44 */
	__u64 arrival_ns;                 /*  48: bpf_ktime_get_ns() */
	__u8 msg[WG_MSG_INITIATION_SIZE]; /*  56: the whole initiation */
	__u8 pad2[4];                     /* 204: keeps the size a multiple of 8 */
};                                        /* 208 */

#define CAPTURE_RECORD_SIZE 208
#define CAPTURE_RECORD_OFF_IFINDEX 0
#define CAPTURE_RECORD_OFF_FAMILY 4
#define CAPTURE_RECORD_OFF_SADDR 8
#define CAPTURE_RECORD_OFF_DADDR 24
#define CAPTURE_RECORD_OFF_SPORT 40
#define CAPTURE_RECORD_OFF_DPORT 42
#define CAPTURE_RECORD_OFF_ARRIVAL_NS 48
#define CAPTURE_RECORD_OFF_MSG 56

#if defined(__cplusplus)
#define CAPTURE_STATIC_ASSERT static_assert
#else
#define CAPTURE_STATIC_ASSERT _Static_assert
#endif
CAPTURE_STATIC_ASSERT(sizeof(struct capture_record) == CAPTURE_RECORD_SIZE, "record size");
CAPTURE_STATIC_ASSERT(__builtin_offsetof(struct capture_record, family) == CAPTURE_RECORD_OFF_FAMILY, "family");
CAPTURE_STATIC_ASSERT(__builtin_offsetof(struct capture_record, saddr) == CAPTURE_RECORD_OFF_SADDR, "saddr");
CAPTURE_STATIC_ASSERT(__builtin_offsetof(struct capture_record, daddr) == CAPTURE_RECORD_OFF_DADDR, "daddr");
CAPTURE_STATIC_ASSERT(__builtin_offsetof(struct capture_record, sport) == CAPTURE_RECORD_OFF_SPORT, "sport");
CAPTURE_STATIC_ASSERT(__builtin_offsetof(struct capture_record, dport) == CAPTURE_RECORD_OFF_DPORT, "dport");
CAPTURE_STATIC_ASSERT(__builtin_offsetof(struct capture_record, arrival_ns) == CAPTURE_RECORD_OFF_ARRIVAL_NS, "arrival_ns");
CAPTURE_STATIC_ASSERT(__builtin_offsetof(struct capture_record, msg) == CAPTURE_RECORD_OFF_MSG, "msg");

/*
 * One counter per exit of the XDP program. Every frame is counted exactly
 * once. The string is the name user space reports (src/capture/addon.ts has
 * the same list, in the same order, and checks it against the addon's).
 * source_table_error is an initiation copied to the ring without a rate check
 * because the source table could not hold its source (fail open; the table
 * is an LRU, so this should stay 0). bad_ip_header is also a hop-by-hop
 * header anywhere but first, which RFC 8200 forbids and Linux discards. The
 * limits are in capture_limits.h.
 */
#define CAPTURE_STATS(X)                                                        \
	X(CAPTURED, "captured")                     /* copied to the ring */          \
	X(RATE_LIMITED, "rate_limited")             /* over its source's limit */     \
	X(SOURCE_TABLE_ERROR, "source_table_error") /* copied, not rate checked */    \
	X(RINGBUF_FULL, "ringbuf_full")             /* initiation, ring full */       \
	X(TRUNCATED, "truncated")                   /* a header ran past the end */   \
	X(VLAN_LIMIT, "vlan_limit")                 /* more VLAN tags than the max */ \
	X(NOT_IP, "not_ip")                         /* ARP, LLDP, ... */              \
	X(BAD_IP_HEADER, "bad_ip_header")           /* version, ihl, hop-by-hop */    \
	X(FRAGMENT, "fragment")                     /* IPv4 or IPv6 fragment */       \
	X(IPV6_EXT_LIMIT, "ipv6_ext_limit")         /* more ext. headers than max */  \
	X(NOT_UDP, "not_udp")                       /* TCP, AH, ESP, no next, ... */  \
	X(OTHER_PORT, "other_port")                 /* UDP, not the listen port */    \
	X(WRONG_SIZE, "wrong_size")                 /* UDP payload is not 148 */      \
	X(NOT_INITIATION, "not_initiation")         /* 148 bytes, type is not 1 */    \
	X(BAD_RESERVED, "bad_reserved")             /* reserved bytes not zero */

enum capture_stat {
#define CAPTURE_STAT_ENUM(name, text) CAPTURE_STAT_##name,
	CAPTURE_STATS(CAPTURE_STAT_ENUM)
#undef CAPTURE_STAT_ENUM
	CAPTURE_STAT_MAX
};

#endif /* WGJIT_CAPTURE_RECORD_H */
