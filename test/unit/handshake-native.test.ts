/**
 * The addon's responder (addon/noise_responder.cc) against the TypeScript
 * one: the same result for every committed vector, every mutation fast-check
 * finds and every kind of argument, and the same order of the claimed-static
 * callback. Needs the built addon (make test builds it first).
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { createInitiation, stampMac1 } from '../../src/handshake/initiator.js';
import { formatKey, publicKeyOf } from '../../src/handshake/keys.js';
import { MESSAGE_INITIATION_SIZE, MESSAGE_TYPE_INITIATION } from '../../src/handshake/messages.js';
import { createNativeResponder, MAX_SS_CACHE_SIZE, type NativeResponder } from '../../src/handshake/native.js';
import { createResponder, type VerifyResult } from '../../src/handshake/responder.js';
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

const initiation = (label: string) => createInitiation({ initiatorPrivateKey: labelKey(label), responderPublicKey: responderPublic }).message;

function outcome(verify: () => VerifyResult): VerifyResult | { threw: string } {
  try {
    return verify();
  } catch (e) {
    return { threw: (e as Error).message };
  }
}

describe('native responder', () => {
  it('derives the same public key as the TypeScript responder', () => {
    expect(native.publicKey).toBe(reference.publicKey);
    expect(native.publicKey).toBe(formatKey(responderPublic));
  });

  for (const v of vectors) {
    it(`${v.name}: the recorded result`, () => {
      const r = open(Buffer.from(v.inputs.responderPrivateKey, 'hex'));
      const expected = v.expected.ok ? { ...v.expected, timestamp: new Uint8Array(Buffer.from(v.expected.timestamp, 'hex')) } : v.expected;
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
    expect(native.verify(record.subarray(60, 60 + MESSAGE_INITIATION_SIZE))).toMatchObject({ ok: true, initiatorKey: formatKey(publicKeyOf(labelKey('native carol'))) });
  });

  it('calls onClaimedStatic with the claimed key before ss, and lets its exception through', () => {
    const message = initiation('native dave');
    const claimed: string[] = [];
    expect(native.verify(message, (k) => claimed.push(k))).toMatchObject({ ok: true });
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
