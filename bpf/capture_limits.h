/* SPDX-License-Identifier: MIT */
/*
 * The XDP program's bounds: how deep it parses. Shared by the program and
 * the addon; the addon exports
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

#endif /* WGJIT_CAPTURE_LIMITS_H */
