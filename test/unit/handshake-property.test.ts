import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createInitiation, stampMac1 } from '../../harness/noise/initiator.js';
import { publicKeyOf } from '../../src/handshake/keys.js';
import { INITIATION_OFF_EPHEMERAL, INITIATION_OFF_MAC1, INITIATION_OFF_MAC2, INITIATION_OFF_SENDER, MESSAGE_INITIATION_SIZE, MESSAGE_TYPE_INITIATION } from '../../src/handshake/messages.js';
import { createNativeResponder } from '../../src/handshake/native.js';
import { createResponder } from '../../harness/noise/responder.js';
import type { VerifyResult } from '../../src/handshake/verify.js';
import { labelKey } from '../vectors/generate-handshake-vectors.js';

const responderKey = labelKey('property responder');
const responderPublic = publicKeyOf(responderKey);
/** The reference in TypeScript, and the addon's responder the daemon runs. */
const RESPONDERS = [
  { name: 'reference', responder: createResponder(responderKey) },
  { name: 'addon', responder: createNativeResponder(responderKey) },
];
const valid = createInitiation({ initiatorPrivateKey: labelKey('property alice'), responderPublicKey: responderPublic }).message;

function safeVerify(responder: (typeof RESPONDERS)[number]['responder'], message: Uint8Array): VerifyResult | 'threw' {
  try {
    return responder.verify(message);
  } catch {
    return 'threw';
  }
}

/** Whether a and b agree on [from, to). mac2 is never checked: it matters only under load. */
function same(a: Uint8Array, b: Uint8Array, from: number, to: number): boolean {
  return Buffer.compare(a.subarray(from, to), b.subarray(from, to)) === 0;
}

const mutation = fc.record({
  edits: fc.array(fc.record({ at: fc.nat(MESSAGE_INITIATION_SIZE - 1), xor: fc.integer({ min: 1, max: 255 }) }), { minLength: 1, maxLength: 4 }),
  restampMac1: fc.boolean(),
});

describe.each(RESPONDERS)('$name responder on arbitrary input', ({ responder }) => {
  it('never throws and never accepts random bytes', () => {
    const anyBytes = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      // Well framed, so the random body reaches mac1 (and, rarely, further).
      fc.uint8Array({ minLength: MESSAGE_INITIATION_SIZE, maxLength: MESSAGE_INITIATION_SIZE }).map((m) => {
        m.set([MESSAGE_TYPE_INITIATION, 0, 0, 0]);
        return m;
      }),
    );
    fc.assert(
      fc.property(anyBytes, (m) => {
        const result = safeVerify(responder, m);
        expect(result).not.toBe('threw');
        expect(result).toMatchObject({ ok: false });
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws, and accepts a mutated initiation only if the bytes it covers are unchanged', () => {
    fc.assert(
      fc.property(mutation, ({ edits, restampMac1 }) => {
        const m = Uint8Array.from(valid);
        for (const { at, xor } of edits) m[at]! ^= xor;
        // Restamping lets the mutation reach the Diffie-Hellman and AEAD steps.
        if (restampMac1) stampMac1(m, responderPublic);
        const result = safeVerify(responder, m);
        expect(result).not.toBe('threw');
        if (result === 'threw') return;
        // Noise does not cover the sender index, and restamping rewrites mac1.
        const shouldAccept = restampMac1
          ? same(m, valid, 0, INITIATION_OFF_SENDER) && same(m, valid, INITIATION_OFF_EPHEMERAL, INITIATION_OFF_MAC1)
          : same(m, valid, 0, INITIATION_OFF_MAC2);
        expect(result.ok).toBe(shouldAccept);
      }),
      { numRuns: 1000 },
    );
  });
});
