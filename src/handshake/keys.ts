/**
 * WireGuard keys as wg writes them: standard base64 of 32 bytes, 44
 * characters ending in '='. URL paths may carry base64url instead, so the
 * parser accepts both alphabets, but never both in one key, and only the
 * canonical encoding (the last character's spare bits must be zero), so
 * one key has one spelling in the store.
 */
import { randomBytes } from 'node:crypto';
import { x25519 } from '@noble/curves/ed25519.js';

export const KEY_LENGTH = 32;
export const KEY_BASE64_LENGTH = 44;

const STANDARD = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;
const URLSAFE = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]=?$/;

/** The 32 key bytes, or null when `text` is not a canonical base64 key. */
export function parseKey(text: unknown): Uint8Array | null {
  if (typeof text !== 'string') return null;
  if (STANDARD.test(text)) return new Uint8Array(Buffer.from(text, 'base64'));
  if (URLSAFE.test(text)) return new Uint8Array(Buffer.from(text, 'base64url'));
  return null;
}

/** The standard base64 spelling of a 32-byte key. */
export function formatKey(key: Uint8Array): string {
  if (key.length !== KEY_LENGTH) throw new RangeError(`key must be ${KEY_LENGTH} bytes, got ${key.length}`);
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64');
}

/** A key given as either alphabet, in wg's standard spelling; null if invalid. */
export function normalizeKey(text: unknown): string | null {
  const key = parseKey(text);
  return key === null ? null : formatKey(key);
}

export function keyToHex(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex');
}

/** A clamped X25519 private key, as `wg genkey` makes. */
export function generatePrivateKey(): Uint8Array {
  const key = new Uint8Array(randomBytes(KEY_LENGTH));
  key[0]! &= 248;
  key[31]! = (key[31]! & 127) | 64;
  return key;
}

export function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  return x25519.getPublicKey(privateKey);
}

/** Overwrite a secret in place once it is no longer needed. */
export function wipe(...secrets: Uint8Array[]): void {
  for (const s of secrets) s.fill(0);
}
