import { describe, expect, it } from 'vitest';
import { consumeResponse, createInitiation, stampMac1 } from '../../harness/noise/initiator.js';
import { formatKey, PublicKey, publicKeyOf } from '../../src/handshake/keys.js';
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
  KEY_SIZE,
  MAC_SIZE,
  MESSAGE_COOKIE_REPLY_SIZE,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_RESPONSE_SIZE,
  MESSAGE_TRANSPORT_MIN_SIZE,
  MESSAGE_TYPE_INITIATION,
  WIRE_CONSTANTS,
} from '../../src/handshake/messages.js';
import { parseInitiation } from '../../harness/noise/initiation.js';
import { MAX_SS_CACHE, type VerifyResult } from '../../src/handshake/verify.js';
import { createResponder } from '../../harness/noise/responder.js';
import { tai64nFromUnixMs } from '../../src/handshake/tai64n.js';
import { labelKey } from '../vectors/generate-handshake-vectors.js';

const BACKENDS = ['node', 'noble'] as const;
const responderKey = labelKey('unit responder');
const responderPublic = publicKeyOf(responderKey);
const aliceKey = labelKey('unit alice');
const alicePublic = publicKeyOf(aliceKey);
const malloryKey = labelKey('unit mallory');
const TIMESTAMP = tai64nFromUnixMs(Date.UTC(2025, 5, 1));

const nodeResponder = createResponder(responderKey, { crypto: 'node' });
const nobleResponder = createResponder(responderKey, { crypto: 'noble' });

function aliceInitiation(extra: { claimedStaticKey?: Uint8Array; initiatorPrivateKey?: Uint8Array } = {}): Uint8Array {
  return createInitiation({
    initiatorPrivateKey: aliceKey,
    responderPublicKey: responderPublic,
    ephemeralPrivateKey: labelKey('unit ephemeral'),
    senderIndex: 0xa1b2c3d4,
    timestamp: TIMESTAMP,
    ...extra,
  }).message;
}

function verifyBoth(message: Uint8Array): VerifyResult {
  const a = nodeResponder.verify(message);
  const b = nobleResponder.verify(message);
  expect(a).toEqual(b);
  return a;
}

/**
 * X25519 points of order 1, 2, 4 and 8 (libsodium's blacklist), each also
 * with bit 255 set, which every implementation masks off.
 */
const LOW_ORDER_POINTS = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].flatMap((h) => {
  const p = Buffer.from(h, 'hex');
  const high = Buffer.from(p);
  high[31]! |= 0x80;
  return [new Uint8Array(p), new Uint8Array(high)];
});

describe('wire constants', () => {
  it('derive the sizes WireGuard uses', () => {
    expect(MESSAGE_INITIATION_SIZE).toBe(148);
    expect(MESSAGE_RESPONSE_SIZE).toBe(92);
    expect(MESSAGE_COOKIE_REPLY_SIZE).toBe(64);
    expect(MESSAGE_TRANSPORT_MIN_SIZE).toBe(32);
    expect([INITIATION_OFF_SENDER, INITIATION_OFF_EPHEMERAL, INITIATION_OFF_STATIC, INITIATION_OFF_TIMESTAMP, INITIATION_OFF_MAC1, INITIATION_OFF_MAC2])
      .toEqual([4, 8, 40, 88, 116, 132]);
  });

  it('are exported under the C header names', () => {
    expect(WIRE_CONSTANTS.WG_MSG_INITIATION_SIZE).toBe(MESSAGE_INITIATION_SIZE);
    expect(WIRE_CONSTANTS.WG_MSG_RESPONSE_SIZE).toBe(MESSAGE_RESPONSE_SIZE);
    expect(WIRE_CONSTANTS.WG_MSG_TYPE_INITIATION).toBe(MESSAGE_TYPE_INITIATION);
    expect(Object.isFrozen(WIRE_CONSTANTS)).toBe(true);
  });
});

describe('parseInitiation', () => {
  it('returns views of each field and the little-endian sender index', () => {
    const msg = aliceInitiation();
    const parsed = parseInitiation(msg);
    if (!parsed.ok) throw new Error(parsed.reason);
    const v = parsed.value;
    expect(v.senderIndex).toBe(0xa1b2c3d4);
    expect(v.ephemeral).toEqual(msg.subarray(INITIATION_OFF_EPHEMERAL, INITIATION_OFF_EPHEMERAL + KEY_SIZE));
    expect(v.encryptedStatic.length).toBe(ENCRYPTED_STATIC_SIZE);
    expect(v.encryptedTimestamp.length).toBe(ENCRYPTED_TIMESTAMP_SIZE);
    expect(v.mac1.byteOffset - msg.byteOffset).toBe(INITIATION_OFF_MAC1);
    expect(v.mac2).toEqual(new Uint8Array(MAC_SIZE));
  });

  it('rejects by framing in order: length, type, reserved', () => {
    expect(parseInitiation(new Uint8Array(147))).toEqual({ ok: false, reason: 'length' });
    const msg = aliceInitiation();
    msg[0] = 2;
    msg[1] = 1;
    expect(parseInitiation(msg)).toEqual({ ok: false, reason: 'type' });
    msg[0] = 1;
    expect(parseInitiation(msg)).toEqual({ ok: false, reason: 'reserved' });
  });
});

describe('responder', () => {
  it('names the initiator of a valid initiation, the same with both backends', () => {
    const result = verifyBoth(aliceInitiation());
    expect(result).toEqual({ ok: true, initiatorKey: PublicKey.fromBytes(alicePublic), timestamp: TIMESTAMP, senderIndex: 0xa1b2c3d4 });
    expect(nodeResponder.publicKey.toString()).toBe(formatKey(responderPublic));
    expect(nobleResponder.publicKey.toString()).toBe(formatKey(responderPublic));
  });

  it('rejects every length but 148, including 0', () => {
    const valid = aliceInitiation();
    for (let len = 0; len <= 200; len++) {
      if (len === MESSAGE_INITIATION_SIZE) continue;
      const msg = new Uint8Array(len);
      msg.set(valid.subarray(0, len));
      expect(nodeResponder.verify(msg), `length ${len}`).toEqual({ ok: false, reason: 'length' });
    }
  });

  it('rejects a wrong type and any non-zero reserved byte before mac1', () => {
    const valid = aliceInitiation();
    for (let type = 0; type < 256; type++) {
      if (type === MESSAGE_TYPE_INITIATION) continue;
      const msg = Uint8Array.from(valid);
      msg[0] = type;
      expect(nodeResponder.verify(msg)).toEqual({ ok: false, reason: 'type' });
    }
    for (let i = INITIATION_OFF_RESERVED; i < INITIATION_OFF_SENDER; i++) {
      const msg = aliceInitiation();
      msg[i] = 0x80;
      expect(verifyBoth(msg)).toEqual({ ok: false, reason: 'reserved' });
    }
  });

  it('rejects a change to any byte mac1 covers, and to mac1 itself, as mac1', () => {
    const valid = aliceInitiation();
    for (let i = INITIATION_OFF_SENDER; i < INITIATION_OFF_MAC2; i++) {
      for (const bit of [0x01, 0x80]) {
        const msg = Uint8Array.from(valid);
        msg[i]! ^= bit;
        expect(nodeResponder.verify(msg), `byte ${i} ^ ${bit}`).toEqual({ ok: false, reason: 'mac1' });
      }
    }
  });

  it('ignores mac2, which only matters under load with a cookie', () => {
    for (let i = INITIATION_OFF_MAC2; i < MESSAGE_INITIATION_SIZE; i++) {
      const msg = aliceInitiation();
      msg[i]! ^= 0xff;
      expect(nodeResponder.verify(msg).ok).toBe(true);
    }
  });

  it('with mac1 recomputed, names the step each altered field breaks', () => {
    const valid = aliceInitiation();
    const fields = [
      { from: INITIATION_OFF_EPHEMERAL, to: INITIATION_OFF_STATIC, reasons: ['static_decrypt', 'low_order'] },
      { from: INITIATION_OFF_STATIC, to: INITIATION_OFF_TIMESTAMP, reasons: ['static_decrypt'] },
      { from: INITIATION_OFF_TIMESTAMP, to: INITIATION_OFF_MAC1, reasons: ['timestamp_decrypt'] },
    ];
    for (const { from, to, reasons } of fields) {
      for (let i = from; i < to; i++) {
        const msg = Uint8Array.from(valid);
        msg[i]! ^= 0x01;
        stampMac1(msg, responderPublic);
        const result = verifyBoth(msg);
        expect(result.ok, `byte ${i}`).toBe(false);
        if (!result.ok) expect(reasons, `byte ${i}`).toContain(result.reason);
      }
    }
  });

  it('takes the sender index from the message: Noise does not cover it, only mac1 does', () => {
    const msg = aliceInitiation();
    msg[INITIATION_OFF_SENDER]! ^= 0xff;
    stampMac1(msg, responderPublic);
    expect(verifyBoth(msg)).toMatchObject({ ok: true, senderIndex: 0xa1b2c32b });
  });

  it('rejects every low-order ephemeral as low_order', () => {
    expect(LOW_ORDER_POINTS.length).toBe(14);
    for (const point of LOW_ORDER_POINTS) {
      const msg = aliceInitiation();
      msg.set(point, INITIATION_OFF_EPHEMERAL);
      stampMac1(msg, responderPublic);
      expect(verifyBoth(msg), Buffer.from(point).toString('hex')).toEqual({ ok: false, reason: 'low_order' });
    }
  });

  it('rejects a low-order static key as low_order', () => {
    for (const point of LOW_ORDER_POINTS.slice(0, 4)) {
      expect(verifyBoth(aliceInitiation({ claimedStaticKey: point }))).toEqual({ ok: false, reason: 'low_order' });
    }
  });

  it('does not accept a forged initiation claiming a registered key', () => {
    const forged = aliceInitiation({ initiatorPrivateKey: malloryKey, claimedStaticKey: alicePublic });
    expect(verifyBoth(forged)).toEqual({ ok: false, reason: 'timestamp_decrypt' });
    // ...also when alice's ss is already cached from a genuine initiation.
    expect(nodeResponder.verify(aliceInitiation()).ok).toBe(true);
    expect(nodeResponder.verify(forged)).toEqual({ ok: false, reason: 'timestamp_decrypt' });
  });

  it('rejects an initiation made for another responder as mac1', () => {
    const other = createResponder(labelKey('unit other responder'));
    expect(other.verify(aliceInitiation())).toEqual({ ok: false, reason: 'mac1' });
  });

  it('keeps verifying while the ss cache evicts, and with no cache', () => {
    expect(MAX_SS_CACHE).toBeGreaterThan(0);
    const tiny = createResponder(responderKey, { ssCacheSize: 2 });
    const none = createResponder(responderKey, { ssCacheSize: 0 });
    const keys = [0, 1, 2, 3].map((n) => labelKey(`unit cache ${n}`));
    for (let round = 0; round < 3; round++) {
      for (const key of keys) {
        const { message } = createInitiation({ initiatorPrivateKey: key, responderPublicKey: responderPublic });
        const expected = { ok: true, initiatorKey: PublicKey.fromBytes(publicKeyOf(key)) };
        expect(tiny.verify(message)).toMatchObject(expected);
        expect(none.verify(message)).toMatchObject(expected);
      }
    }
  });

  it('does not throw on a buffer view at an odd offset', () => {
    const backing = new Uint8Array(MESSAGE_INITIATION_SIZE + 3);
    backing.set(aliceInitiation(), 3);
    expect(nodeResponder.verify(backing.subarray(3))).toMatchObject({ ok: true });
  });
});

describe('initiator', () => {
  it('is deterministic given the ephemeral key and timestamp, and matches across backends', () => {
    const opts = { initiatorPrivateKey: aliceKey, responderPublicKey: responderPublic, ephemeralPrivateKey: labelKey('e'), senderIndex: 7, timestamp: TIMESTAMP };
    const a = createInitiation({ ...opts, crypto: 'node' }).message;
    const b = createInitiation({ ...opts, crypto: 'noble' }).message;
    expect(a).toEqual(b);
    expect(a.subarray(INITIATION_OFF_MAC2)).toEqual(new Uint8Array(MAC_SIZE));
  });

  it('draws a random sender index and ephemeral key by default', () => {
    const a = createInitiation({ initiatorPrivateKey: aliceKey, responderPublicKey: responderPublic });
    const b = createInitiation({ initiatorPrivateKey: aliceKey, responderPublicKey: responderPublic });
    expect(a.message.subarray(INITIATION_OFF_EPHEMERAL, INITIATION_OFF_STATIC)).not.toEqual(b.message.subarray(INITIATION_OFF_EPHEMERAL, INITIATION_OFF_STATIC));
    for (const backend of BACKENDS) expect(createResponder(responderKey, { crypto: backend }).verify(a.message)).toMatchObject({ ok: true, senderIndex: a.senderIndex });
  });

  it('refuses responses with the wrong framing', () => {
    const fresh = () => createInitiation({ initiatorPrivateKey: aliceKey, responderPublicKey: responderPublic }).state;
    expect(consumeResponse(fresh(), new Uint8Array(91))).toEqual({ ok: false, reason: 'length' });
    expect(consumeResponse(fresh(), new Uint8Array(MESSAGE_RESPONSE_SIZE))).toEqual({ ok: false, reason: 'type' });
    const state = fresh();
    const response = new Uint8Array(MESSAGE_RESPONSE_SIZE);
    response[0] = 2;
    new DataView(response.buffer).setUint32(8, state.senderIndex, true);
    expect(consumeResponse(state, response)).toEqual({ ok: false, reason: 'mac1' });
  });
});
