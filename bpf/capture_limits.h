/* SPDX-License-Identifier: MIT */
/*
 * The XDP program's bounds: how deep it parses, and the range of each setting
 * the loader gives it. Shared by the program and the addon; the addon exports
 * them and src/capture/addon.ts checks them against its own constants (named
 * in brackets) when it loads the addon.
 */
#ifndef WGJIT_CAPTURE_LIMITS_H
#define WGJIT_CAPTURE_LIMITS_H

/* [MAX_VLAN_TAGS] An 802.1ad service tag and an 802.1Q customer tag (QinQ). */
#define CAPTURE_MAX_VLAN_TAGS 2

/*
 * [MAX_IPV6_EXT_HEADERS] Hop-by-hop, routing and destination options headers
 * walked to reach UDP. RFC 8200's order allows four of them ahead of an
 * unfragmented datagram without AH or ESP: hop-by-hop, destination options,
 * routing, destination options.
 */
#define CAPTURE_MAX_IPV6_EXT 4

/*
 * Initiations per second captured from one source (an IPv4 address, an IPv6
 * /64), and how many may come at once: WireGuard's own ratelimiter allows
 * the same (INITIATIONS_PER_SECOND, INITIATIONS_BURSTABLE). Rate 0 turns the
 * limit off. The maxima keep cost × burst (at most 10^9 ns × 10^6) far from
 * overflowing the program's 64-bit nanosecond arithmetic.
 */
#define CAPTURE_SOURCE_RATE_DEFAULT 20     /* [DEFAULT_SOURCE_RATE] */
#define CAPTURE_SOURCE_RATE_MAX 1000000    /* [MAX_SOURCE_RATE] */
#define CAPTURE_SOURCE_BURST_DEFAULT 5     /* [DEFAULT_SOURCE_BURST] */
#define CAPTURE_SOURCE_BURST_MIN 1         /* [MIN_SOURCE_BURST] */
#define CAPTURE_SOURCE_BURST_MAX 1000000   /* [MAX_SOURCE_BURST] */

/*
 * Sources remembered at once: LRU hash entries, preallocated, about 90 bytes
 * each as the kernel counts them (memlock in the map's fdinfo), so 5.5 MiB
 * by default and about 370 MiB at the maximum.
 */
#define CAPTURE_SOURCE_TABLE_DEFAULT 65536 /* [DEFAULT_SOURCE_TABLE_SIZE] */
#define CAPTURE_SOURCE_TABLE_MIN 16        /* [MIN_SOURCE_TABLE_SIZE] */
#define CAPTURE_SOURCE_TABLE_MAX (1 << 22) /* [MAX_SOURCE_TABLE_SIZE] */

#endif /* WGJIT_CAPTURE_LIMITS_H */
