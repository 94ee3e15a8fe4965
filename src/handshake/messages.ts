/**
 * WireGuard wire format, mirrored from bpf/wg_wire.h: the XDP program and
 * this parser must agree on what an initiation is, so every size here is
 * derived from the fields, and WIRE_CONSTANTS lets a test compare both.
 */

export const MESSAGE_TYPE_INITIATION = 1;
export const MESSAGE_TYPE_RESPONSE = 2;
export const MESSAGE_TYPE_COOKIE_REPLY = 3;
export const MESSAGE_TYPE_TRANSPORT = 4;

export const TYPE_SIZE = 1;
export const RESERVED_SIZE = 3;
export const HEADER_SIZE = TYPE_SIZE + RESERVED_SIZE;
export const INDEX_SIZE = 4;
export const KEY_SIZE = 32;
export const AEAD_TAG_SIZE = 16;
export const TIMESTAMP_SIZE = 12;
export const MAC_SIZE = 16;
export const COOKIE_SIZE = 16;
export const COOKIE_NONCE_SIZE = 24;
export const COUNTER_SIZE = 8;

export const ENCRYPTED_STATIC_SIZE = KEY_SIZE + AEAD_TAG_SIZE;
export const ENCRYPTED_TIMESTAMP_SIZE = TIMESTAMP_SIZE + AEAD_TAG_SIZE;
export const ENCRYPTED_NOTHING_SIZE = 0 + AEAD_TAG_SIZE;
export const ENCRYPTED_COOKIE_SIZE = COOKIE_SIZE + AEAD_TAG_SIZE;

/* Handshake initiation (type 1). */
export const INITIATION_OFF_TYPE = 0;
export const INITIATION_OFF_RESERVED = INITIATION_OFF_TYPE + TYPE_SIZE;
export const INITIATION_OFF_SENDER = INITIATION_OFF_RESERVED + RESERVED_SIZE;
export const INITIATION_OFF_EPHEMERAL = INITIATION_OFF_SENDER + INDEX_SIZE;
export const INITIATION_OFF_STATIC = INITIATION_OFF_EPHEMERAL + KEY_SIZE;
export const INITIATION_OFF_TIMESTAMP = INITIATION_OFF_STATIC + ENCRYPTED_STATIC_SIZE;
export const INITIATION_OFF_MAC1 = INITIATION_OFF_TIMESTAMP + ENCRYPTED_TIMESTAMP_SIZE;
export const INITIATION_OFF_MAC2 = INITIATION_OFF_MAC1 + MAC_SIZE;
export const MESSAGE_INITIATION_SIZE = INITIATION_OFF_MAC2 + MAC_SIZE;

/* Handshake response (type 2). */
export const RESPONSE_OFF_SENDER = HEADER_SIZE;
export const RESPONSE_OFF_RECEIVER = RESPONSE_OFF_SENDER + INDEX_SIZE;
export const RESPONSE_OFF_EPHEMERAL = RESPONSE_OFF_RECEIVER + INDEX_SIZE;
export const RESPONSE_OFF_EMPTY = RESPONSE_OFF_EPHEMERAL + KEY_SIZE;
export const RESPONSE_OFF_MAC1 = RESPONSE_OFF_EMPTY + ENCRYPTED_NOTHING_SIZE;
export const RESPONSE_OFF_MAC2 = RESPONSE_OFF_MAC1 + MAC_SIZE;
export const MESSAGE_RESPONSE_SIZE = RESPONSE_OFF_MAC2 + MAC_SIZE;

/* Cookie reply (type 3). */
export const COOKIE_OFF_RECEIVER = HEADER_SIZE;
export const COOKIE_OFF_NONCE = COOKIE_OFF_RECEIVER + INDEX_SIZE;
export const COOKIE_OFF_COOKIE = COOKIE_OFF_NONCE + COOKIE_NONCE_SIZE;
export const MESSAGE_COOKIE_REPLY_SIZE = COOKIE_OFF_COOKIE + ENCRYPTED_COOKIE_SIZE;

/* Transport data (type 4): header, receiver, counter, then at least a tag. */
export const TRANSPORT_OFF_RECEIVER = HEADER_SIZE;
export const TRANSPORT_OFF_COUNTER = TRANSPORT_OFF_RECEIVER + INDEX_SIZE;
export const TRANSPORT_OFF_DATA = TRANSPORT_OFF_COUNTER + COUNTER_SIZE;
export const MESSAGE_TRANSPORT_MIN_SIZE = TRANSPORT_OFF_DATA + AEAD_TAG_SIZE;

/* Noise protocol labels (WireGuard paper §5.4). */
export const NOISE_CONSTRUCTION = 'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s';
export const WG_IDENTIFIER = 'WireGuard v1 zx2c4 Jason@zx2c4.com';
export const LABEL_MAC1 = 'mac1----';
export const LABEL_COOKIE = 'cookie--';

/** The same constants under the names bpf/wg_wire.h gives them. */
export const WIRE_CONSTANTS: Readonly<Record<string, number>> = Object.freeze({
  WG_MSG_TYPE_INITIATION: MESSAGE_TYPE_INITIATION,
  WG_MSG_TYPE_RESPONSE: MESSAGE_TYPE_RESPONSE,
  WG_MSG_TYPE_COOKIE_REPLY: MESSAGE_TYPE_COOKIE_REPLY,
  WG_MSG_TYPE_TRANSPORT: MESSAGE_TYPE_TRANSPORT,
  WG_TYPE_SIZE: TYPE_SIZE,
  WG_RESERVED_SIZE: RESERVED_SIZE,
  WG_HEADER_SIZE: HEADER_SIZE,
  WG_INDEX_SIZE: INDEX_SIZE,
  WG_KEY_SIZE: KEY_SIZE,
  WG_AEAD_TAG_SIZE: AEAD_TAG_SIZE,
  WG_TIMESTAMP_SIZE: TIMESTAMP_SIZE,
  WG_MAC_SIZE: MAC_SIZE,
  WG_COOKIE_SIZE: COOKIE_SIZE,
  WG_COOKIE_NONCE_SIZE: COOKIE_NONCE_SIZE,
  WG_COUNTER_SIZE: COUNTER_SIZE,
  WG_ENCRYPTED_STATIC_SIZE: ENCRYPTED_STATIC_SIZE,
  WG_ENCRYPTED_TIMESTAMP_SIZE: ENCRYPTED_TIMESTAMP_SIZE,
  WG_ENCRYPTED_NOTHING_SIZE: ENCRYPTED_NOTHING_SIZE,
  WG_ENCRYPTED_COOKIE_SIZE: ENCRYPTED_COOKIE_SIZE,
  WG_INITIATION_OFF_TYPE: INITIATION_OFF_TYPE,
  WG_INITIATION_OFF_RESERVED: INITIATION_OFF_RESERVED,
  WG_INITIATION_OFF_SENDER: INITIATION_OFF_SENDER,
  WG_INITIATION_OFF_EPHEMERAL: INITIATION_OFF_EPHEMERAL,
  WG_INITIATION_OFF_STATIC: INITIATION_OFF_STATIC,
  WG_INITIATION_OFF_TIMESTAMP: INITIATION_OFF_TIMESTAMP,
  WG_INITIATION_OFF_MAC1: INITIATION_OFF_MAC1,
  WG_INITIATION_OFF_MAC2: INITIATION_OFF_MAC2,
  WG_MSG_INITIATION_SIZE: MESSAGE_INITIATION_SIZE,
  WG_RESPONSE_OFF_SENDER: RESPONSE_OFF_SENDER,
  WG_RESPONSE_OFF_RECEIVER: RESPONSE_OFF_RECEIVER,
  WG_RESPONSE_OFF_EPHEMERAL: RESPONSE_OFF_EPHEMERAL,
  WG_RESPONSE_OFF_EMPTY: RESPONSE_OFF_EMPTY,
  WG_RESPONSE_OFF_MAC1: RESPONSE_OFF_MAC1,
  WG_RESPONSE_OFF_MAC2: RESPONSE_OFF_MAC2,
  WG_MSG_RESPONSE_SIZE: MESSAGE_RESPONSE_SIZE,
  WG_COOKIE_OFF_RECEIVER: COOKIE_OFF_RECEIVER,
  WG_COOKIE_OFF_NONCE: COOKIE_OFF_NONCE,
  WG_COOKIE_OFF_COOKIE: COOKIE_OFF_COOKIE,
  WG_MSG_COOKIE_REPLY_SIZE: MESSAGE_COOKIE_REPLY_SIZE,
  WG_TRANSPORT_OFF_RECEIVER: TRANSPORT_OFF_RECEIVER,
  WG_TRANSPORT_OFF_COUNTER: TRANSPORT_OFF_COUNTER,
  WG_TRANSPORT_OFF_DATA: TRANSPORT_OFF_DATA,
  WG_MSG_TRANSPORT_MIN_SIZE: MESSAGE_TRANSPORT_MIN_SIZE,
});

export interface Initiation {
  senderIndex: number;
  ephemeral: Uint8Array;
  encryptedStatic: Uint8Array;
  encryptedTimestamp: Uint8Array;
  mac1: Uint8Array;
  mac2: Uint8Array;
}

export type ParseRejection = 'length' | 'type' | 'reserved';
export type ParseResult = { ok: true; value: Initiation } | { ok: false; reason: ParseRejection };

function field(msg: Uint8Array, offset: number, size: number): Uint8Array {
  return msg.subarray(offset, offset + size);
}

/** True when the reserved bytes after the type are all zero. */
function reservedIsZero(msg: Uint8Array): boolean {
  for (let i = INITIATION_OFF_RESERVED; i < INITIATION_OFF_SENDER; i++) if (msg[i] !== 0) return false;
  return true;
}

/**
 * Split an initiation into views of its fields (no copies: the caller's
 * buffer must stay unchanged while they are in use). Checks only framing.
 */
export function parseInitiation(msg: Uint8Array): ParseResult {
  if (!(msg instanceof Uint8Array) || msg.length !== MESSAGE_INITIATION_SIZE) return { ok: false, reason: 'length' };
  if (msg[INITIATION_OFF_TYPE] !== MESSAGE_TYPE_INITIATION) return { ok: false, reason: 'type' };
  if (!reservedIsZero(msg)) return { ok: false, reason: 'reserved' };
  const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  return {
    ok: true,
    value: {
      senderIndex: view.getUint32(INITIATION_OFF_SENDER, true),
      ephemeral: field(msg, INITIATION_OFF_EPHEMERAL, KEY_SIZE),
      encryptedStatic: field(msg, INITIATION_OFF_STATIC, ENCRYPTED_STATIC_SIZE),
      encryptedTimestamp: field(msg, INITIATION_OFF_TIMESTAMP, ENCRYPTED_TIMESTAMP_SIZE),
      mac1: field(msg, INITIATION_OFF_MAC1, MAC_SIZE),
      mac2: field(msg, INITIATION_OFF_MAC2, MAC_SIZE),
    },
  };
}
