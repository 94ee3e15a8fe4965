/**
 * The addon's responder (addon/noise_responder.cc, on libsodium and libb2)
 * against the TypeScript one (node:crypto, and @noble for X25519): the same
 * result for every committed vector, every mutation fast-check finds, every
 * low-order and non-canonical point, and every kind of argument, and the
 * same order of the claimed-static callback. Needs the built addon (make
 * test builds it first).
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { getCrypto } from '../../harness/noise/crypto.js';
import { createInitiation, stampMac1 } from '../../harness/noise/initiator.js';
import { formatKey, PublicKey, publicKeyOf } from '../../src/handshake/keys.js';
import { INITIATION_OFF_EPHEMERAL, KEY_SIZE, MESSAGE_INITIATION_SIZE, MESSAGE_TYPE_INITIATION } from '../../src/handshake/messages.js';
import { createNativeResponder, MAX_SS_CACHE_SIZE, type NativeResponder } from '../../src/handshake/native.js';
import { createResponder } from '../../harness/noise/responder.js';
import type { VerifyResult } from '../../src/handshake/verify.js';
import { benchAddon } from '../../harness/addon/bench-addon.js';
import { labelKey, type Vector } from '../vectors/generate-handshake-vectors.js';

const vectors: Vector[] = JSON.parse(readFileSync(new URL('../vectors/handshake-initiations.json', import.meta.url), 'utf8'));

const responderKey = labelKey('native responder');
const responderPublic = publicKeyOf(responderKey);
const reference = createResponder(responderKey);
const opened: NativeResponder[] = [];
function open(key = responderKey, ssCacheSize?: number): NativeResponder {
  const r = createNativeResponder(key, ssCacheSize === undefined ? {} : { ssCacheSize });
  opened.push(r);
  return r;
}
const native = open();
afterAll(() => opened.forEach((r) => r.close()));

const initiation = (label: string, claimedStaticKey?: Uint8Array) =>
  createInitiation({ initiatorPrivateKey: labelKey(label), responderPublicKey: responderPublic, ...(claimedStaticKey && { claimedStaticKey }) }).message;

/* X25519 by the reference's two backends, with the responder's key. */
const referenceDh = { node: getCrypto('node').dhKey(responderKey), noble: getCrypto('noble').dhKey(responderKey) };

/* Curve25519 points as 32 little-endian bytes; bit 255 is what X25519 must ignore. */
const P = 2n ** 255n - 19n;
const HIGH_BIT = 2n ** 255n;
function point(u: bigint): Uint8Array {
  const out = new Uint8Array(KEY_SIZE);
  for (let i = 0; i < KEY_SIZE; i++) out[i] = Number((u >> BigInt(8 * i)) & 0xffn);
  return out;
}
function withHighBit(key: Uint8Array): Uint8Array {
  const out = Uint8Array.from(key);
  out[KEY_SIZE - 1]! |= 0x80;
  return out;
}
/**
 * Every 255-bit encoding of a point of order 1, 2, 4 or 8 on the curve or
 * its twist: u = 0, 1, -1, the two of order 8, and p, p + 1 (0 and 1 not
 * reduced). A clamped scalar is a multiple of 8, so each makes an all-zero
 * shared secret.
 */
const LOW_ORDER = [
  0n,
  1n,
  P - 1n,
  325606250916557431795983626356110631294008115727848805560023387167927233504n,
  39382357235489614581723060781553021112529911719440698176882885853963445705823n,
  P,
  P + 1n,
].flatMap((u) => [point(u), point(u + HIGH_BIT)]);

function outcome(verify: () => VerifyResult): VerifyResult | { threw: string } {
  try {
    return verify();
  } catch (e) {
    return { threw: (e as Error).message };
  }
}

describe('native responder', () => {
  it('derives the same public key as the TypeScript responder', () => {
    expect(native.publicKey.toString()).toBe(reference.publicKey.toString());
    expect(native.publicKey.toString()).toBe(formatKey(responderPublic));
  });

  for (const v of vectors) {
    it(`${v.name}: the recorded result`, () => {
      const r = open(Buffer.from(v.inputs.responderPrivateKey, 'hex'));
      const expected = v.expected.ok ? { ...v.expected, initiatorKey: PublicKey.parse(v.expected.initiatorKey), timestamp: new Uint8Array(Buffer.from(v.expected.timestamp, 'hex')) } : v.expected;
      expect(r.verify(Buffer.from(v.message, 'hex'))).toEqual(expected);
    });
  }

  it('agrees with the TypeScript responder on mutated initiations, mac1 restamped or not', () => {
    const valid = initiation('native alice');
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.nat(MESSAGE_INITIATION_SIZE - 1), xor: fc.integer({ min: 1, max: 255 }) }), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        (edits, restamp) => {
          const m = Uint8Array.from(valid);
          for (const { at, xor } of edits) m[at]! ^= xor;
          if (restamp) stampMac1(m, responderPublic);
          expect(outcome(() => native.verify(m))).toEqual(outcome(() => reference.verify(m)));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('agrees on arbitrary bytes and never accepts them', () => {
    const framed = fc.uint8Array({ minLength: MESSAGE_INITIATION_SIZE, maxLength: MESSAGE_INITIATION_SIZE }).map((m) => {
      m.set([MESSAGE_TYPE_INITIATION, 0, 0, 0]);
      return m;
    });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), framed), (m) => {
        const result = outcome(() => native.verify(m));
        expect(result).toEqual(outcome(() => reference.verify(m)));
        expect(result).toMatchObject({ ok: false });
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects what is not a Uint8Array of 148 bytes as a length error, without throwing', () => {
    const message = initiation('native bob');
    for (const bad of [undefined, null, 'x'.repeat(148), Array.from(message), new Uint16Array(74), message.subarray(1), new Uint8Array(149)]) {
      expect(native.verify(bad as Uint8Array)).toEqual({ ok: false, reason: 'length' });
    }
  });

  it('accepts an initiation in any Uint8Array view, e.g. inside a larger capture record', () => {
    const message = initiation('native carol');
    const record = new Uint8Array(256);
    record.set(message, 60);
    expect(native.verify(record.subarray(60, 60 + MESSAGE_INITIATION_SIZE))).toMatchObject({ ok: true, initiatorKey: PublicKey.fromBytes(publicKeyOf(labelKey('native carol'))) });
  });

  it('calls onClaimedStatic with the claimed key before ss, and lets its exception through', () => {
    const message = initiation('native dave');
    const claimed: string[] = [];
    expect(native.verify(message, (k) => claimed.push(k.toString()))).toMatchObject({ ok: true });
    expect(claimed).toEqual([formatKey(publicKeyOf(labelKey('native dave')))]);
    expect(() =>
      native.verify(message, () => {
        throw new Error('lookup refused');
      }),
    ).toThrow('lookup refused');
    // The responder is intact afterwards.
    expect(native.verify(message)).toMatchObject({ ok: true });
  });

  it('is unaffected when the callback rewrites the caller\'s buffer', () => {
    const message = initiation('native erin');
    const result = native.verify(message, () => message.fill(0));
    expect(result).toMatchObject({ ok: true });
  });

  it('gives the same answers with the ss cache off, tiny or evicting', () => {
    const messages = ['a', 'b', 'c', 'a', 'b', 'c'].map((l) => initiation(`native cache ${l}`));
    for (const size of [0, 1, 2]) {
      const r = open(responderKey, size);
      for (const m of messages) expect(r.verify(m)).toEqual(reference.verify(m));
    }
  });

  it('computes X25519 like the TypeScript side and refuses low-order points', () => {
    const peer = labelKey('native dh peer');
    const expected = open(peer).dh(responderPublic);
    expect(Buffer.from(native.dh(publicKeyOf(peer))!)).toEqual(Buffer.from(expected!));
    expect(native.dh(new Uint8Array(32))).toBeNull();
    expect(native.dh(new Uint8Array(31))).toBeNull();
  });

  it('refuses every low-order point as the reference does, as an ephemeral and as a static key', () => {
    for (const low of LOW_ORDER) {
      const hex = Buffer.from(low).toString('hex');
      expect(referenceDh.node.dh(low), hex).toBeNull();
      expect(referenceDh.noble.dh(low), hex).toBeNull();
      expect(native.dh(low), hex).toBeNull();

      const asEphemeral = initiation('native low order');
      asEphemeral.set(low, INITIATION_OFF_EPHEMERAL);
      stampMac1(asEphemeral, responderPublic);
      expect(native.verify(asEphemeral), hex).toEqual({ ok: false, reason: 'low_order' });
      expect(reference.verify(asEphemeral), hex).toEqual({ ok: false, reason: 'low_order' });

      const asStatic = initiation('native low order', low);
      expect(native.verify(asStatic), hex).toEqual({ ok: false, reason: 'low_order' });
      expect(reference.verify(asStatic), hex).toEqual({ ok: false, reason: 'low_order' });
    }
  });

  it('ignores bit 255 and reduces u ≥ p in X25519, as the reference does', () => {
    const peers = [publicKeyOf(labelKey('native high bit a')), publicKeyOf(labelKey('native high bit b'))];
    // u and u + p for every u whose second encoding fits in 255 bits.
    const small = Array.from({ length: 19 }, (_, u) => [point(BigInt(u)), point(BigInt(u) + P)] as const);
    for (const [canonical, other] of [...peers.map((k) => [k, withHighBit(k)] as const), ...small]) {
      const expected = native.dh(canonical);
      for (const encoding of [other, withHighBit(other)]) {
        const hex = Buffer.from(encoding).toString('hex');
        const got = native.dh(encoding);
        expect(got === null ? null : Buffer.from(got), hex).toEqual(expected === null ? null : Buffer.from(expected));
        expect(referenceDh.node.dh(encoding), hex).toEqual(referenceDh.noble.dh(encoding));
        const ref = referenceDh.noble.dh(encoding);
        expect(got === null ? null : Buffer.from(got), hex).toEqual(ref === null ? null : Buffer.from(ref));
      }
    }
  });

  it('accepts a static key sent with bit 255 set under that spelling, as the reference does', () => {
    // ss is the same DH either way, so the timestamp opens: the result names
    // the key as sent, which no store holds under the canonical spelling.
    const label = 'native high bit static';
    const sent = withHighBit(publicKeyOf(labelKey(label)));
    const message = initiation(label, sent);
    const result = native.verify(message);
    expect(result).toMatchObject({ ok: true, initiatorKey: PublicKey.fromBytes(sent) });
    expect(result).toEqual(reference.verify(message));
  });

  it('rejects an ephemeral key resent with bit 255 set as the reference does (H covers the bytes as sent)', () => {
    const message = initiation('native high bit ephemeral');
    message[INITIATION_OFF_EPHEMERAL + KEY_SIZE - 1]! ^= 0x80;
    stampMac1(message, responderPublic);
    expect(native.verify(message)).toEqual({ ok: false, reason: 'static_decrypt' });
    expect(reference.verify(message)).toEqual({ ok: false, reason: 'static_decrypt' });
  });

  it('survives close() from the claimed-static callback', () => {
    const r = open();
    const message = initiation('native grace');
    expect(r.verify(message, () => r.close())).toMatchObject({ ok: true, initiatorKey: PublicKey.fromBytes(publicKeyOf(labelKey('native grace'))) });
    expect(() => r.verify(message)).toThrow(/closed/);
  });

  it('has bench backends that compute what the responder computes', () => {
    const { benchCrypto } = benchAddon();
    for (const op of ['x25519:libsodium', 'x25519:openssl-import', 'x25519:openssl-reuse', 'symmetric:libb2+libsodium', 'symmetric:openssl']) {
      expect(benchCrypto(op, 1), op).toBeGreaterThan(0);
    }
    expect(() => benchCrypto('x25519:nothing', 1)).toThrow(/unknown op/);
  });

  it('checks its construction arguments and refuses use after close', () => {
    expect(() => createNativeResponder(new Uint8Array(31))).toThrow(RangeError);
    expect(() => createNativeResponder(responderKey, { ssCacheSize: -1 })).toThrow(RangeError);
    expect(() => createNativeResponder(responderKey, { ssCacheSize: MAX_SS_CACHE_SIZE + 1 })).toThrow(RangeError);
    expect(() => createNativeResponder(responderKey, { ssCacheSize: 1.5 })).toThrow(RangeError);
    const r = createNativeResponder(responderKey);
    r.close();
    expect(() => r.verify(initiation('native frank'))).toThrow(/closed/);
  });
});
