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

/** Bit 1: a character of standard base64. Bit 2: one a key's 43rd character may be (its last 4 bits are spare, so zero). */
const STANDARD_CHARS = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/') STANDARD_CHARS[c.charCodeAt(0)] = 1;
for (const c of 'AEIMQUYcgkosw048') STANDARD_CHARS[c.charCodeAt(0)]! |= 2;

/**
 * Whether `text` is a key in wg's spelling: 42 characters of standard
 * base64, one of the 16 whose spare bits are zero, '='. A loop rather than
 * a regular expression: an import checks a million of them, and this is
 * a third of the time.
 */
function isStandardKey(text: string): boolean {
  if (text.length !== KEY_BASE64_LENGTH || text.charCodeAt(43) !== 61) return false;
  for (let i = 0; i < 42; i++) {
    const c = text.charCodeAt(i);
    if (c > 127 || STANDARD_CHARS[c] === 0) return false;
  }
  const last = text.charCodeAt(42);
  return last <= 127 && (STANDARD_CHARS[last]! & 2) !== 0;
}
const URLSAFE = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]=?$/;

/** The 32 key bytes, or null when `text` is not a canonical base64 key. */
export function parseKey(text: unknown): Uint8Array | null {
  if (typeof text !== 'string') return null;
  if (isStandardKey(text)) return new Uint8Array(Buffer.from(text, 'base64'));
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

/** PublicKey's constructor, for the key reader (set by the class itself). */
let makeKey: (store: Uint8Array, at: number, id: string) => PublicKey;

/**
 * A WireGuard public key: 32 bytes from the responder to the device and
 * back, spelled in base64 only where a person reads it (the API, the logs,
 * the CLI, the store's Redis spelling). Immutable: the bytes are copied in
 * and never changed.
 */
export class PublicKey {
  /**
   * The bytes as a binary (latin1) string: a primitive with value
   * semantics, for Map and Set keys, made without an encoding pass. The
   * key's only own property, so a deep equality compares keys by value.
   */
  readonly id: string;
  /** Where the bytes are: a buffer of their own, or a chunk shared with the other keys of a read. */
  readonly #store: Uint8Array;
  readonly #at: number;

  private constructor(store: Uint8Array, at: number, id: string) {
    this.id = id;
    this.#store = store;
    this.#at = at;
  }

  /** The key's 32 bytes: a view, never to be written to. */
  get bytes(): Uint8Array {
    return this.#store.subarray(this.#at, this.#at + KEY_LENGTH);
  }

  /** A copy of bytes[at, at + 32). */
  static fromBytes(bytes: Uint8Array, at = 0): PublicKey {
    if (!(bytes instanceof Uint8Array) || !Number.isInteger(at) || at < 0 || bytes.length - at < KEY_LENGTH) {
      throw new RangeError(`a key is ${KEY_LENGTH} bytes`);
    }
    const own = new Uint8Array(bytes.subarray(at, at + KEY_LENGTH));
    return new PublicKey(own, 0, Buffer.from(own.buffer, own.byteOffset, KEY_LENGTH).toString('latin1'));
  }

  /**
   * A reader of many keys (every peer of a device read, 100,000 on a big
   * gateway, at every sweep): see KeyReader.
   */
  static reader(): KeyReader {
    return new ChunkedKeyReader();
  }

  static {
    // The reader below makes keys too: the one maker outside this class.
    makeKey = (store, at, id) => new PublicKey(store, at, id);
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
 * Keys read in bulk. Each key's bytes are copied into a shared chunk of
 * KEYS_PER_CHUNK keys as the read goes; the PublicKeys are made at the end,
 * all at once, with one latin1 decode per chunk: a key then costs its 32
 * bytes and a slice of a string, not a buffer and a decode of its own.
 */
export interface KeyReader {
  /** Keys added so far. */
  readonly count: number;
  /** Copies bytes[at, at + 32) in as the next key. */
  add(bytes: Uint8Array, at?: number): void;
  /** Whether bytes[at, at + 32) is the key added last. */
  isLast(bytes: Uint8Array, at?: number): boolean;
  /**
   * The index of the first key equal to one added before it, or -1. Found
   * in a hash table of key numbers (FNV-1a over the bytes), so no string is
   * made or hashed for the check.
   */
  firstRepeat(): number;
  /** The keys added, in order. */
  keys(): PublicKey[];
}

class ChunkedKeyReader implements KeyReader {
  private readonly chunks: Uint8Array[] = [];
  private chunk = new Uint8Array(0);
  private used = 0;
  count = 0;

  add(bytes: Uint8Array, at = 0): void {
    if (!Number.isInteger(at) || at < 0 || bytes.length - at < KEY_LENGTH) throw new RangeError(`a key is ${KEY_LENGTH} bytes`);
    if (this.used === this.chunk.length) {
      this.chunk = new Uint8Array(KEY_LENGTH * KEYS_PER_CHUNK);
      this.chunks.push(this.chunk);
      this.used = 0;
    }
    const { chunk, used } = this;
    for (let i = 0; i < KEY_LENGTH; i++) chunk[used + i] = bytes[at + i]!;
    this.used = used + KEY_LENGTH;
    this.count++;
  }

  isLast(bytes: Uint8Array, at = 0): boolean {
    if (this.count === 0 || bytes.length - at < KEY_LENGTH) return false;
    const { chunk } = this;
    const last = this.used - KEY_LENGTH;
    for (let i = 0; i < KEY_LENGTH; i++) if (chunk[last + i] !== bytes[at + i]) return false;
    return true;
  }

  firstRepeat(): number {
    let size = 16;
    while (size < this.count * 2) size *= 2;
    const table = new Int32Array(size); // key number + 1; 0 is empty
    for (let i = 0; i < this.count; i++) {
      const chunk = this.chunks[Math.floor(i / KEYS_PER_CHUNK)]!;
      const at = (i % KEYS_PER_CHUNK) * KEY_LENGTH;
      let hash = 0x811c9dc5;
      for (let j = 0; j < KEY_LENGTH; j++) hash = Math.imul(hash ^ chunk[at + j]!, 0x01000193);
      for (let slot = hash & (size - 1); ; slot = (slot + 1) & (size - 1)) {
        const other = table[slot]! - 1;
        if (other < 0) {
          table[slot] = i + 1;
          break;
        }
        if (this.isKey(other, chunk, at)) return i;
      }
    }
    return -1;
  }

  /** Whether key number `index` is bytes[at, at + 32). */
  private isKey(index: number, bytes: Uint8Array, at: number): boolean {
    const chunk = this.chunks[Math.floor(index / KEYS_PER_CHUNK)]!;
    const from = (index % KEYS_PER_CHUNK) * KEY_LENGTH;
    for (let i = 0; i < KEY_LENGTH; i++) if (chunk[from + i] !== bytes[at + i]) return false;
    return true;
  }

  keys(): PublicKey[] {
    const keys = new Array<PublicKey>(this.count);
    let n = 0;
    for (let c = 0; c < this.chunks.length; c++) {
      const chunk = this.chunks[c]!;
      const used = c === this.chunks.length - 1 ? this.used : chunk.length;
      // One decode per chunk; each key's id is a slice of it, which V8 keeps as a view, not a copy.
      const text = Buffer.from(chunk.buffer, chunk.byteOffset, used).toString('latin1');
      for (let at = 0; at < used; at += KEY_LENGTH) keys[n++] = makeKey(chunk, at, text.slice(at, at + KEY_LENGTH));
    }
    return keys;
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
  // A standard spelling that parses is already the canonical one: no round trip through bytes.
  if (typeof text === 'string' && isStandardKey(text)) return text;
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
