import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createResponder } from '../../harness/noise/responder.js';
import { PublicKey } from '../../src/handshake/keys.js';
import { buildMessage, type Vector } from '../vectors/generate-handshake-vectors.js';

const vectors: Vector[] = JSON.parse(readFileSync(new URL('../vectors/handshake-initiations.json', import.meta.url), 'utf8'));
const captured: { source: string; responderPrivateKey: string; initiatorPublicKey: string; message: string } = JSON.parse(
  readFileSync(new URL('../vectors/wireguard-go-initiation.json', import.meta.url), 'utf8'),
);

function expectedOf(v: Vector) {
  return v.expected.ok ? { ...v.expected, initiatorKey: PublicKey.parse(v.expected.initiatorKey), timestamp: new Uint8Array(Buffer.from(v.expected.timestamp, 'hex')) } : v.expected;
}

describe('committed handshake vectors', () => {
  it('cover accepted and every kind of rejected message', () => {
    const reasons = new Set(vectors.map((v) => (v.expected.ok ? 'ok' : v.expected.reason)));
    expect([...reasons].sort()).toEqual(['low_order', 'mac1', 'ok', 'reserved', 'static_decrypt', 'timestamp_decrypt', 'type']);
  });

  for (const v of vectors) {
    it(`${v.name}: both backends give the recorded result`, () => {
      const message = Buffer.from(v.message, 'hex');
      for (const backend of ['node', 'noble'] as const) {
        const responder = createResponder(Buffer.from(v.inputs.responderPrivateKey, 'hex'), { crypto: backend });
        expect(responder.verify(message)).toEqual(expectedOf(v));
      }
      // Unedited vectors also pin the initiator's output.
      if (!v.edit) expect(Buffer.from(buildMessage(v.inputs)).toString('hex')).toBe(v.message);
    });
  }

  it(`an initiation captured from ${captured.source} verifies with both backends`, () => {
    const message = Buffer.from(captured.message, 'hex');
    for (const backend of ['node', 'noble'] as const) {
      const responder = createResponder(Buffer.from(captured.responderPrivateKey, 'hex'), { crypto: backend });
      expect(responder.verify(message)).toMatchObject({ ok: true, initiatorKey: PublicKey.parse(captured.initiatorPublicKey) });
    }
  });
});
