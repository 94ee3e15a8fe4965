/**
 * WireGuard keys. Inside wgjit a public key is a PublicKey, 32 bytes; a
 * preshared key is a Uint8Array of 32 bytes. At the edges (API, CLI, logs,
 * the store's Redis spelling) a key is written as wg writes it: standard
 * base64, 44 characters ending in '='. URL paths may carry base64url
 * instead, so the parser accepts both alphabets, but never both in one
 * key, and only the canonical encoding (the last character's spare bits
 * must be zero), so one key has one spelling in the store.
 */
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

/** Keys read in bulk (a device read) are copied into chunks of this many. */
const KEYS_PER_CHUNK = 1024;

/**
 * Each key's base64, once made. Kept beside the keys rather than in a field,
 * which would make two equal keys differ to a deep equality. Made from `id`,
 * not `bytes`: pino's redaction logs a deep copy of an object, in which a
 * Uint8Array is no longer one, but a string is still the same string.
 */
const spellings = new WeakMap<PublicKey, string>();

/**
 * A WireGuard public key: 32 bytes from the responder to the device and
 * back, spelled in base64 only where a person reads it (the API, the logs,
 * the CLI, the store's Redis spelling). Immutable: the bytes are copied in
 * and never changed.
 */
export class PublicKey {
  /** The key's 32 bytes; never written to. */
  readonly bytes: Uint8Array;
  /**
   * The bytes as a binary (latin1) string: a primitive with value
   * semantics, for Map and Set keys, made without an encoding pass.
   */
  readonly id: string;

  private constructor(bytes: Uint8Array, id: string) {
    this.bytes = bytes;
    this.id = id;
  }

  /** A copy of bytes[at, at + 32). */
  static fromBytes(bytes: Uint8Array, at = 0): PublicKey {
    if (!(bytes instanceof Uint8Array) || !Number.isInteger(at) || at < 0 || bytes.length - at < KEY_LENGTH) {
      throw new RangeError(`a key is ${KEY_LENGTH} bytes`);
    }
    const own = new Uint8Array(bytes.subarray(at, at + KEY_LENGTH));
    return new PublicKey(own, Buffer.from(own.buffer, own.byteOffset, KEY_LENGTH).toString('latin1'));
  }

  /**
   * A maker of keys for a read of many (every peer of a device): each copy
   * goes into one shared backing buffer, a chunk of KEYS_PER_CHUNK keys, so
   * a key costs 32 bytes and a short string rather than a buffer of its own.
   */
  static reader(): (bytes: Uint8Array, at?: number) => PublicKey {
    let chunk = Buffer.allocUnsafeSlow(0);
    let used = 0;
    return (bytes, at = 0) => {
      if (bytes.length - at < KEY_LENGTH || at < 0) throw new RangeError(`a key is ${KEY_LENGTH} bytes`);
      if (used === chunk.length) {
        chunk = Buffer.allocUnsafeSlow(KEY_LENGTH * KEYS_PER_CHUNK);
        used = 0;
      }
      const start = used;
      for (let i = 0; i < KEY_LENGTH; i++) chunk[used++] = bytes[at + i]!;
      return new PublicKey(new Uint8Array(chunk.buffer, chunk.byteOffset + start, KEY_LENGTH), chunk.toString('latin1', start, used));
    };
  }

  /** The key `text` spells (standard base64 or base64url, canonical only: see parseKey); null if none. */
  static parse(text: unknown): PublicKey | null {
    const bytes = parseKey(text);
    return bytes === null ? null : PublicKey.fromBytes(bytes);
  }

  equals(other: PublicKey): boolean {
    return other instanceof PublicKey && other.id === this.id;
  }

  /** Standard base64, as wg spells it; made once, when first asked for. */
  toString(): string {
    let text = spellings.get(this);
    if (text === undefined) {
      text = Buffer.from(this.id, 'latin1').toString('base64');
      spellings.set(this, text);
    }
    return text;
  }

  /** The same as toString(): log lines and JSON bodies spell the key as wg does. */
  toJSON(): string {
    return this.toString();
  }
}

/**
 * Why `text` is not a key, in a few words for an error message. Never
 * echoes the text: it may be a secret (a preshared key).
 */
export function keyProblem(text: unknown): string {
  if (typeof text !== 'string') return 'not a string';
  if (text.length === 0) return 'empty';
  const alphabet = /^[A-Za-z0-9+/]+={0,2}$/.test(text) ? 'base64' : /^[A-Za-z0-9_-]+={0,2}$/.test(text) ? 'base64url' : null;
  if (alphabet === null) return 'not base64';
  const bytes = Buffer.from(text, alphabet).length;
  if (bytes !== KEY_LENGTH) return `base64 of ${bytes} bytes, not ${KEY_LENGTH}`;
  return parseKey(text) === null ? `not the canonical spelling of ${KEY_LENGTH} bytes` : 'a key';
}

/** What an error says a key should look like. */
export const KEY_FORM = `base64 of ${KEY_LENGTH} bytes: ${KEY_BASE64_LENGTH} characters ending in '='`;

/** A key given as either alphabet, in wg's standard spelling; null if invalid. */
export function normalizeKey(text: unknown): string | null {
  const key = parseKey(text);
  return key === null ? null : formatKey(key);
}

export function keyToHex(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex');
}

export function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  return x25519.getPublicKey(privateKey);
}

/** Overwrite a secret in place once it is no longer needed. */
export function wipe(...secrets: Uint8Array[]): void {
  for (const s of secrets) s.fill(0);
}
