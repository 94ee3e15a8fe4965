/**
 * The symmetric half of Noise as WireGuard uses it (paper §5.4): a chaining
 * key C, a running hash H and the current AEAD key k. The helpers are named
 * after the Noise operations so the responder and initiator read like the
 * spec; each replaces what it consumes and wipes the old secret.
 */
import { aeadDecrypt, aeadEncrypt, type NoiseCrypto } from './crypto.js';
import { wipe } from '../../src/handshake/keys.js';
import { INITIATION_OFF_MAC1, LABEL_MAC1, NOISE_CONSTRUCTION, WG_IDENTIFIER } from '../../src/handshake/messages.js';

export const EMPTY = new Uint8Array(0);
const BYTE_1 = Uint8Array.of(1);
const BYTE_2 = Uint8Array.of(2);
const BYTE_3 = Uint8Array.of(3);
const utf8 = new TextEncoder();

/** Every handshake message here uses AEAD counter 0: each key seals one field. */
const HANDSHAKE_COUNTER = 0n;

export interface SymmetricState {
  ck: Uint8Array;
  h: Uint8Array;
  k: Uint8Array | null;
}

/** C₀ = HASH(construction): the same for every WireGuard handshake. */
export function initialChainingKey(c: NoiseCrypto): Uint8Array {
  return c.hash(utf8.encode(NOISE_CONSTRUCTION));
}

/** H₀ = HASH(HASH(C₀ ‖ identifier) ‖ S_pub_responder): fixed per responder key. */
export function initialHash(c: NoiseCrypto, responderPublicKey: Uint8Array): Uint8Array {
  return c.hash(c.hash(initialChainingKey(c), utf8.encode(WG_IDENTIFIER)), responderPublicKey);
}

/** A fresh state from precomputed C₀ and H₀ (copied, so wiping it spares them). */
export function startState(ck: Uint8Array, h: Uint8Array): SymmetricState {
  return { ck: Uint8Array.from(ck), h: Uint8Array.from(h), k: null };
}

export function kdf1(c: NoiseCrypto, ck: Uint8Array, input: Uint8Array): [Uint8Array] {
  const t0 = c.hmac(ck, input);
  const t1 = c.hmac(t0, BYTE_1);
  wipe(t0);
  return [t1];
}

export function kdf2(c: NoiseCrypto, ck: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array] {
  const t0 = c.hmac(ck, input);
  const t1 = c.hmac(t0, BYTE_1);
  const t2 = c.hmac(t0, t1, BYTE_2);
  wipe(t0);
  return [t1, t2];
}

export function kdf3(c: NoiseCrypto, ck: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array, Uint8Array] {
  const t0 = c.hmac(ck, input);
  const t1 = c.hmac(t0, BYTE_1);
  const t2 = c.hmac(t0, t1, BYTE_2);
  const t3 = c.hmac(t0, t2, BYTE_3);
  wipe(t0);
  return [t1, t2, t3];
}

export function mixHash(c: NoiseCrypto, s: SymmetricState, data: Uint8Array): void {
  s.h = c.hash(s.h, data);
}

function setKey(s: SymmetricState, ck: Uint8Array, k: Uint8Array | null): void {
  wipe(s.ck);
  if (s.k !== null) wipe(s.k);
  s.ck = ck;
  s.k = k;
}

/** C = KDF1(C, input): for public inputs (ephemeral keys) and ee/se DHs. */
export function mixKey(c: NoiseCrypto, s: SymmetricState, input: Uint8Array): void {
  const [ck] = kdf1(c, s.ck, input);
  wipe(s.ck);
  s.ck = ck;
}

/** (C, k) = KDF2(C, dh): a DH result becomes the key for the next field. */
export function mixDh(c: NoiseCrypto, s: SymmetricState, dh: Uint8Array): void {
  const [ck, k] = kdf2(c, s.ck, dh);
  setKey(s, ck, k);
}

/** (C, τ, k) = KDF3(C, psk); H = HASH(H ‖ τ). */
export function mixKeyAndHash(c: NoiseCrypto, s: SymmetricState, psk: Uint8Array): void {
  const [ck, tau, k] = kdf3(c, s.ck, psk);
  setKey(s, ck, k);
  mixHash(c, s, tau);
  wipe(tau);
}

/** AEAD-decrypt one field under k with H as associated data, then hash the ciphertext in. */
export function decryptAndHash(c: NoiseCrypto, s: SymmetricState, sealed: Uint8Array): Uint8Array | null {
  if (s.k === null) return null;
  const plain = aeadDecrypt(s.k, HANDSHAKE_COUNTER, sealed, s.h);
  if (plain !== null) mixHash(c, s, sealed);
  return plain;
}

export function encryptAndHash(c: NoiseCrypto, s: SymmetricState, plain: Uint8Array): Uint8Array {
  if (s.k === null) throw new Error('encryptAndHash before any key was mixed in');
  const sealed = aeadEncrypt(s.k, HANDSHAKE_COUNTER, plain, s.h);
  mixHash(c, s, sealed);
  return sealed;
}

export function wipeState(s: SymmetricState): void {
  wipe(s.ck);
  if (s.k !== null) wipe(s.k);
  s.k = null;
}

/** The mac1 key of whoever receives a message: HASH("mac1----" ‖ S_pub_receiver). */
export function mac1Key(c: NoiseCrypto, receiverPublicKey: Uint8Array): Uint8Array {
  return c.hash(utf8.encode(LABEL_MAC1), receiverPublicKey);
}

/** mac1 over everything before it; `macOffset` is where the mac1 field starts. */
export function computeMac1(c: NoiseCrypto, key: Uint8Array, msg: Uint8Array, macOffset = INITIATION_OFF_MAC1): Uint8Array {
  return c.mac(key, msg.subarray(0, macOffset));
}
