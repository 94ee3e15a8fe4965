/**
 * Writes handshake-initiations.json: deterministic initiations (keys derived
 * from labels, fixed ephemeral keys and timestamps) and what a responder must
 * answer for each. Run: npx tsx test/vectors/generate-handshake-vectors.ts
 * The unit tests check both crypto backends against the file, and that the
 * initiator still produces the same bytes from the same inputs.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createInitiation, stampMac1 } from '../../harness/noise/initiator.js';
import { keyToHex, publicKeyOf } from '../../src/handshake/keys.js';
import { INITIATION_OFF_EPHEMERAL, INITIATION_OFF_RESERVED, INITIATION_OFF_STATIC, INITIATION_OFF_TIMESTAMP, INITIATION_OFF_MAC1, KEY_SIZE } from '../../src/handshake/messages.js';
import { createResponder } from '../../harness/noise/responder.js';
import { tai64nFromUnixMs } from '../../src/handshake/tai64n.js';

export interface VectorInputs {
  responderPrivateKey: string;
  initiatorPrivateKey: string;
  ephemeralPrivateKey: string;
  senderIndex: number;
  timestamp: string;
  claimedStaticKey?: string;
}

export interface Vector {
  name: string;
  /** What the initiator was given to make the message. */
  inputs: VectorInputs;
  /** What was done to the initiator's output, if anything. */
  edit?: string;
  message: string;
  expected: { ok: true; initiatorKey: string; timestamp: string; senderIndex: number } | { ok: false; reason: string };
}

/** A clamped private key derived from a label, so the file can be regenerated. */
export function labelKey(label: string): Uint8Array {
  const key = new Uint8Array(createHash('sha256').update(`wgjit test vector ${label}`).digest());
  key[0]! &= 248;
  key[31]! = (key[31]! & 127) | 64;
  return key;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function inputsFor(label: string, extra: Partial<VectorInputs> = {}): VectorInputs {
  return {
    responderPrivateKey: keyToHex(labelKey('responder')),
    initiatorPrivateKey: keyToHex(labelKey(`initiator ${label}`)),
    ephemeralPrivateKey: keyToHex(labelKey(`ephemeral ${label}`)),
    senderIndex: 0x01020304,
    timestamp: hex(tai64nFromUnixMs(Date.UTC(2025, 0, 1, 12, 0, 0, 500))),
    ...extra,
  };
}

export function buildMessage(inputs: VectorInputs): Uint8Array {
  const responderPublic = publicKeyOf(Buffer.from(inputs.responderPrivateKey, 'hex'));
  return createInitiation({
    initiatorPrivateKey: Buffer.from(inputs.initiatorPrivateKey, 'hex'),
    responderPublicKey: responderPublic,
    ephemeralPrivateKey: Buffer.from(inputs.ephemeralPrivateKey, 'hex'),
    senderIndex: inputs.senderIndex,
    timestamp: Buffer.from(inputs.timestamp, 'hex'),
    ...(inputs.claimedStaticKey ? { claimedStaticKey: Buffer.from(inputs.claimedStaticKey, 'hex') } : {}),
  }).message;
}

function vector(name: string, inputs: VectorInputs, edit?: { what: string; apply: (m: Uint8Array, responderPublic: Uint8Array) => void }): Vector {
  const message = buildMessage(inputs);
  const responderPrivate = Buffer.from(inputs.responderPrivateKey, 'hex');
  if (edit) edit.apply(message, publicKeyOf(responderPrivate));
  const result = createResponder(responderPrivate, { crypto: 'noble' }).verify(message);
  const expected = result.ok
    ? { ok: true as const, initiatorKey: result.initiatorKey.toString(), timestamp: hex(result.timestamp), senderIndex: result.senderIndex }
    : result;
  return { name, inputs, ...(edit ? { edit: edit.what } : {}), message: hex(message), expected };
}

export function generateVectors(): Vector[] {
  const registered = keyToHex(publicKeyOf(labelKey('initiator alice')));
  return [
    vector('valid alice', inputsFor('alice')),
    vector('valid bob', inputsFor('bob', { senderIndex: 0xfffffffe })),
    vector('mac1 flipped', inputsFor('alice'), { what: 'xor 0x01 into the first mac1 byte', apply: (m) => { m[INITIATION_OFF_MAC1]! ^= 1; } }),
    vector('type 2', inputsFor('alice'), { what: 'type byte set to 2', apply: (m) => { m[0] = 2; } }),
    vector('reserved set', inputsFor('alice'), { what: 'first reserved byte set to 1', apply: (m) => { m[INITIATION_OFF_RESERVED] = 1; } }),
    vector('static flipped', inputsFor('alice'), {
      what: 'xor 0x01 into the first encrypted static byte, mac1 recomputed',
      apply: (m, r) => { m[INITIATION_OFF_STATIC]! ^= 1; stampMac1(m, r); },
    }),
    vector('timestamp flipped', inputsFor('alice'), {
      what: 'xor 0x01 into the first encrypted timestamp byte, mac1 recomputed',
      apply: (m, r) => { m[INITIATION_OFF_TIMESTAMP]! ^= 1; stampMac1(m, r); },
    }),
    vector('zero ephemeral', inputsFor('alice'), {
      what: 'ephemeral replaced by the all-zero point, mac1 recomputed',
      apply: (m, r) => { m.fill(0, INITIATION_OFF_EPHEMERAL, INITIATION_OFF_EPHEMERAL + KEY_SIZE); stampMac1(m, r); },
    }),
    vector('forged static', inputsFor('mallory', { claimedStaticKey: registered })),
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = new URL('./handshake-initiations.json', import.meta.url);
  writeFileSync(out, JSON.stringify(generateVectors(), null, 2) + '\n');
  console.log(`wrote ${fileURLToPath(out)}`);
}
