/* SPDX-License-Identifier: MIT */
/*
 * WireGuard wire format: message types, field sizes and offsets of the
 * handshake messages. Every size is derived from the fields so none is a bare
 * number; src/handshake/messages.ts holds the same constants and a test
 * checks that both agree. Usable from BPF C, user-space C and C++.
 */
#ifndef WGJIT_WG_WIRE_H
#define WGJIT_WG_WIRE_H

/* Message types: the first byte of every message, followed by 3 zero bytes. */
#define WG_MSG_TYPE_INITIATION 1
#define WG_MSG_TYPE_RESPONSE 2
#define WG_MSG_TYPE_COOKIE_REPLY 3
#define WG_MSG_TYPE_TRANSPORT 4

/* Field sizes. */
#define WG_TYPE_SIZE 1
#define WG_RESERVED_SIZE 3
#define WG_HEADER_SIZE (WG_TYPE_SIZE + WG_RESERVED_SIZE)
#define WG_INDEX_SIZE 4
#define WG_KEY_SIZE 32
#define WG_AEAD_TAG_SIZE 16
#define WG_TIMESTAMP_SIZE 12
#define WG_MAC_SIZE 16
#define WG_COOKIE_SIZE 16
#define WG_COOKIE_NONCE_SIZE 24
#define WG_COUNTER_SIZE 8

#define WG_ENCRYPTED_STATIC_SIZE (WG_KEY_SIZE + WG_AEAD_TAG_SIZE)
#define WG_ENCRYPTED_TIMESTAMP_SIZE (WG_TIMESTAMP_SIZE + WG_AEAD_TAG_SIZE)
#define WG_ENCRYPTED_NOTHING_SIZE (0 + WG_AEAD_TAG_SIZE)
#define WG_ENCRYPTED_COOKIE_SIZE (WG_COOKIE_SIZE + WG_AEAD_TAG_SIZE)

/* Handshake initiation (type 1). */
#define WG_INITIATION_OFF_TYPE 0
#define WG_INITIATION_OFF_RESERVED (WG_INITIATION_OFF_TYPE + WG_TYPE_SIZE)
#define WG_INITIATION_OFF_SENDER (WG_INITIATION_OFF_RESERVED + WG_RESERVED_SIZE)
#define WG_INITIATION_OFF_EPHEMERAL (WG_INITIATION_OFF_SENDER + WG_INDEX_SIZE)
#define WG_INITIATION_OFF_STATIC (WG_INITIATION_OFF_EPHEMERAL + WG_KEY_SIZE)
#define WG_INITIATION_OFF_TIMESTAMP (WG_INITIATION_OFF_STATIC + WG_ENCRYPTED_STATIC_SIZE)
#define WG_INITIATION_OFF_MAC1 (WG_INITIATION_OFF_TIMESTAMP + WG_ENCRYPTED_TIMESTAMP_SIZE)
#define WG_INITIATION_OFF_MAC2 (WG_INITIATION_OFF_MAC1 + WG_MAC_SIZE)
#define WG_MSG_INITIATION_SIZE (WG_INITIATION_OFF_MAC2 + WG_MAC_SIZE)

/* Handshake response (type 2). */
#define WG_RESPONSE_OFF_SENDER WG_HEADER_SIZE
#define WG_RESPONSE_OFF_RECEIVER (WG_RESPONSE_OFF_SENDER + WG_INDEX_SIZE)
#define WG_RESPONSE_OFF_EPHEMERAL (WG_RESPONSE_OFF_RECEIVER + WG_INDEX_SIZE)
#define WG_RESPONSE_OFF_EMPTY (WG_RESPONSE_OFF_EPHEMERAL + WG_KEY_SIZE)
#define WG_RESPONSE_OFF_MAC1 (WG_RESPONSE_OFF_EMPTY + WG_ENCRYPTED_NOTHING_SIZE)
#define WG_RESPONSE_OFF_MAC2 (WG_RESPONSE_OFF_MAC1 + WG_MAC_SIZE)
#define WG_MSG_RESPONSE_SIZE (WG_RESPONSE_OFF_MAC2 + WG_MAC_SIZE)

/* Cookie reply (type 3). */
#define WG_COOKIE_OFF_RECEIVER WG_HEADER_SIZE
#define WG_COOKIE_OFF_NONCE (WG_COOKIE_OFF_RECEIVER + WG_INDEX_SIZE)
#define WG_COOKIE_OFF_COOKIE (WG_COOKIE_OFF_NONCE + WG_COOKIE_NONCE_SIZE)
#define WG_MSG_COOKIE_REPLY_SIZE (WG_COOKIE_OFF_COOKIE + WG_ENCRYPTED_COOKIE_SIZE)

/* Transport data (type 4): header, receiver, counter, then at least a tag. */
#define WG_TRANSPORT_OFF_RECEIVER WG_HEADER_SIZE
#define WG_TRANSPORT_OFF_COUNTER (WG_TRANSPORT_OFF_RECEIVER + WG_INDEX_SIZE)
#define WG_TRANSPORT_OFF_DATA (WG_TRANSPORT_OFF_COUNTER + WG_COUNTER_SIZE)
#define WG_MSG_TRANSPORT_MIN_SIZE (WG_TRANSPORT_OFF_DATA + WG_AEAD_TAG_SIZE)

#if defined(__cplusplus)
static_assert(WG_MSG_INITIATION_SIZE == 148, "initiation is 148 bytes");
static_assert(WG_MSG_RESPONSE_SIZE == 92, "response is 92 bytes");
static_assert(WG_MSG_COOKIE_REPLY_SIZE == 64, "cookie reply is 64 bytes");
static_assert(WG_MSG_TRANSPORT_MIN_SIZE == 32, "transport is at least 32 bytes");
#else
_Static_assert(WG_MSG_INITIATION_SIZE == 148, "initiation is 148 bytes");
_Static_assert(WG_MSG_RESPONSE_SIZE == 92, "response is 92 bytes");
_Static_assert(WG_MSG_COOKIE_REPLY_SIZE == 64, "cookie reply is 64 bytes");
_Static_assert(WG_MSG_TRANSPORT_MIN_SIZE == 32, "transport is at least 32 bytes");
#endif

#endif /* WGJIT_WG_WIRE_H */
