/**
 * The primitives Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s needs, behind one
 * interface with two backends: 'node' (OpenSSL through node:crypto, fast)
 * and 'noble' (pure JS, the reference the node backend is checked against).
 * Nothing here throws on attacker-controlled input: a failed DH or AEAD
 * comes back as null.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  type KeyObject,
} from 'node:crypto';
import { x25519 } from '@noble/curves/ed25519.js';
import { blake2s } from '@noble/hashes/blake2.js';
import { hmac } from '@noble/hashes/hmac.js';

export type CryptoBackend = 'node' | 'noble';

/** An X25519 private key, prepared once for many DHs. */
export interface DhKey {
  readonly publicKey: Uint8Array;
  /** The shared secret, or null when the peer's point has low order (all-zero result). */
  dh(peerPublicKey: Uint8Array): Uint8Array | null;
}

export interface NoiseCrypto {
  readonly backend: CryptoBackend;
  /** HASH: BLAKE2s-256 over the concatenation of `parts`. */
  hash(...parts: Uint8Array[]): Uint8Array;
  /** HMAC-BLAKE2s-256 over the concatenation of `parts`. */
  hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array;
  /** MAC: keyed BLAKE2s-128. */
  mac(key: Uint8Array, data: Uint8Array): Uint8Array;
  dhKey(privateKey: Uint8Array): DhKey;
}

const AEAD_TAG_LENGTH = 16;
const AEAD_NONCE_LENGTH = 12;
/** The 4 zero bytes before the little-endian counter in a WireGuard nonce. */
const NONCE_COUNTER_OFFSET = 4;
const MAC_LENGTH = 16;

function nonce(counter: bigint): Buffer {
  const n = Buffer.alloc(AEAD_NONCE_LENGTH);
  n.writeBigUInt64LE(counter, NONCE_COUNTER_OFFSET);
  return n;
}

/** AEAD: ChaCha20-Poly1305 with WireGuard's nonce; ciphertext ‖ tag. */
export function aeadEncrypt(key: Uint8Array, counter: bigint, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  const cipher = createCipheriv('chacha20-poly1305', key, nonce(counter), { authTagLength: AEAD_TAG_LENGTH });
  cipher.setAAD(ad, { plaintextLength: plaintext.length });
  const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
}

/** The plaintext, or null when `sealed` is too short or does not authenticate. */
export function aeadDecrypt(key: Uint8Array, counter: bigint, sealed: Uint8Array, ad: Uint8Array): Uint8Array | null {
  if (sealed.length < AEAD_TAG_LENGTH) return null;
  const bodyLength = sealed.length - AEAD_TAG_LENGTH;
  try {
    const decipher = createDecipheriv('chacha20-poly1305', key, nonce(counter), { authTagLength: AEAD_TAG_LENGTH });
    decipher.setAAD(ad, { plaintextLength: bodyLength });
    decipher.setAuthTag(sealed.subarray(bodyLength));
    const plain = Buffer.concat([decipher.update(sealed.subarray(0, bodyLength)), decipher.final()]);
    return new Uint8Array(plain.buffer, plain.byteOffset, plain.byteLength);
  } catch {
    return null;
  }
}

function isAllZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (const b of bytes) acc |= b;
  return acc === 0;
}

function toBytes(buf: Buffer): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/* ---------- node:crypto backend ---------- */

// DER wrapper that turns a raw X25519 private key into PKCS#8 (RFC 8410).
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

function base64url(raw: Uint8Array): string {
  return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64url');
}

/**
 * Keys cross into OpenSSL as JWK rather than DER: OpenSSL 3's DER decoders
 * cost more than the DH itself (on the test machine ≈ 1.7k PKCS#8 and
 * ≈ 6.7k SPKI imports/s, against ≈ 15k and ≈ 83k/s as JWK). That matters
 * for the peer's ephemeral key, imported once per initiation, and for test
 * clients that make many keys. Node reads only `d` of a private JWK, so `x`
 * is left empty; PKCS#8 stays as the fallback should that ever change.
 */
function nodePrivateKey(raw: Uint8Array): KeyObject {
  try {
    return createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: base64url(raw), x: '' }, format: 'jwk' });
  } catch {
    const der = Buffer.concat([PKCS8_X25519_PREFIX, raw]);
    try {
      return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    } finally {
      der.fill(0);
    }
  }
}

function nodePublicKey(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: base64url(raw) }, format: 'jwk' });
}

function nodeDhKey(privateKey: Uint8Array): DhKey {
  if (privateKey.length !== 32) throw new RangeError('X25519 private key must be 32 bytes');
  const key = nodePrivateKey(privateKey);
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  const publicKey = new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url'));
  return {
    publicKey,
    dh(peer) {
      if (peer.length !== 32) return null;
      try {
        // OpenSSL refuses (throws) when the result is all zero: a low-order point.
        const shared = toBytes(diffieHellman({ privateKey: key, publicKey: nodePublicKey(peer) }));
        return isAllZero(shared) ? null : shared;
      } catch {
        return null;
      }
    },
  };
}

function nodeHash(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('blake2s256');
  for (const p of parts) h.update(p);
  return toBytes(h.digest());
}

function nodeHmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = createHmac('blake2s256', key);
  for (const p of parts) h.update(p);
  return toBytes(h.digest());
}

/** Keyed BLAKE2s: node:crypto has no keyed mode, so both backends share noble's. */
function keyedMac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return blake2s(data, { key, dkLen: MAC_LENGTH });
}

const nodeCrypto: NoiseCrypto = {
  backend: 'node',
  hash: nodeHash,
  hmac: nodeHmac,
  mac: keyedMac,
  dhKey: nodeDhKey,
};

/* ---------- pure JS backend ---------- */

function concat(parts: Uint8Array[]): Uint8Array {
  return parts.length === 1 ? parts[0]! : toBytes(Buffer.concat(parts));
}

function nobleDhKey(privateKey: Uint8Array): DhKey {
  if (privateKey.length !== 32) throw new RangeError('X25519 private key must be 32 bytes');
  const secret = Uint8Array.from(privateKey);
  return {
    publicKey: x25519.getPublicKey(secret),
    dh(peer) {
      try {
        // noble throws on low-order points instead of returning zeros.
        const shared = x25519.getSharedSecret(secret, peer);
        return isAllZero(shared) ? null : shared;
      } catch {
        return null;
      }
    },
  };
}

const nobleCrypto: NoiseCrypto = {
  backend: 'noble',
  hash: (...parts) => blake2s(concat(parts)),
  hmac: (key, ...parts) => hmac(blake2s, key, concat(parts)),
  mac: keyedMac,
  dhKey: nobleDhKey,
};

export function getCrypto(backend: CryptoBackend = 'node'): NoiseCrypto {
  return backend === 'noble' ? nobleCrypto : nodeCrypto;
}
