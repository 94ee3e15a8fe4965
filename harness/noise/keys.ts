/** Keys the harness makes for its clients, gateways and vectors. */
import { randomBytes } from 'node:crypto';
import { KEY_LENGTH } from '../../src/handshake/keys.js';

/** A clamped X25519 private key, as `wg genkey` makes. */
export function generatePrivateKey(): Uint8Array {
  const key = new Uint8Array(randomBytes(KEY_LENGTH));
  key[0]! &= 248;
  key[31]! = (key[31]! & 127) | 64;
  return key;
}
