/**
 * An initiation split into its fields, for the reference responder and the
 * tests (the addon's responder reads the same offsets in C++).
 */
import {
  ENCRYPTED_STATIC_SIZE,
  ENCRYPTED_TIMESTAMP_SIZE,
  INITIATION_OFF_EPHEMERAL,
  INITIATION_OFF_MAC1,
  INITIATION_OFF_MAC2,
  INITIATION_OFF_RESERVED,
  INITIATION_OFF_SENDER,
  INITIATION_OFF_STATIC,
  INITIATION_OFF_TIMESTAMP,
  INITIATION_OFF_TYPE,
  KEY_SIZE,
  MAC_SIZE,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_TYPE_INITIATION,
} from '../../src/handshake/messages.js';

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
