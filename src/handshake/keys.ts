/**
 * WireGuard keys as wg writes them: standard base64 of 32 bytes, 44
 * characters ending in '='. URL paths may carry base64url instead, so the
 * parser accepts both alphabets, but never both in one key, and only the
 * canonical encoding (the last character's spare bits must be zero), so
 * one key has one spelling in the store.
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

/** A key and one zero pad byte: 11 whole base64 groups of 3 bytes. */
const KEY_SLOT = KEY_LENGTH + 1;
const KEY_SLOT_CHARS = (KEY_SLOT / 3) * 4;

/**
 * Many keys turned into their standard spelling with one base64 encoding
 * rather than one per key: a device read lists every peer, 100,000 on a
 * big gateway, at every sweep. Each key is kept in a slot of KEY_SLOT
 * bytes, so slot i encodes to characters [44 i, 44 i + 44): the key's
 * spelling, except that the last one encodes the pad byte ('A') where the
 * spelling of 32 bytes has its '='.
 */
export class KeyBatch {
  private slots = new Uint8Array(KEY_SLOT * 1024);
  private added = 0;

  /** Appends the key at bytes[at, at + 32). */
  add(bytes: Uint8Array, at = 0): void {
    if (bytes.length - at < KEY_LENGTH) throw new RangeError(`a key is ${KEY_LENGTH} bytes, got ${bytes.length - at}`);
    if ((this.added + 1) * KEY_SLOT > this.slots.length) {
      const bigger = new Uint8Array(this.slots.length * 2);
      bigger.set(this.slots);
      this.slots = bigger;
    }
    const slot = this.added * KEY_SLOT;
    for (let i = 0; i < KEY_LENGTH; i++) this.slots[slot + i] = bytes[at + i]!;
    this.added++;
  }

  /** Whether bytes[at, at + 32) is the key added last. */
  isLast(bytes: Uint8Array, at = 0): boolean {
    return this.added > 0 && bytes.length - at >= KEY_LENGTH && this.isSlot(this.added - 1, bytes, at);
  }

  /**
   * The index of the first key equal to one added before it, or -1. Found
   * in a hash table of slot numbers (FNV-1a over the key's bytes), so no
   * string is made or hashed for the check.
   */
  firstRepeat(): number {
    let size = 16;
    while (size < this.added * 2) size *= 2;
    const table = new Int32Array(size); // slot number + 1; 0 is empty
    for (let i = 0; i < this.added; i++) {
      const slot = i * KEY_SLOT;
      let hash = 0x811c9dc5;
      for (let j = 0; j < KEY_LENGTH; j++) hash = Math.imul(hash ^ this.slots[slot + j]!, 0x01000193);
      for (let at = hash & (size - 1); ; at = (at + 1) & (size - 1)) {
        const other = table[at]! - 1;
        if (other < 0) {
          table[at] = i + 1;
          break;
        }
        if (this.isSlot(other, this.slots, slot)) return i;
      }
    }
    return -1;
  }

  /** Whether slot `index` holds bytes[at, at + 32). */
  private isSlot(index: number, bytes: Uint8Array, at: number): boolean {
    const slot = index * KEY_SLOT;
    for (let i = 0; i < KEY_LENGTH; i++) if (this.slots[slot + i] !== bytes[at + i]) return false;
    return true;
  }

  /** The keys in standard base64, in the order added. */
  base64(): string[] {
    const all = Buffer.from(this.slots.buffer, this.slots.byteOffset, this.added * KEY_SLOT).toString('base64');
    const keys = new Array<string>(this.added);
    for (let i = 0; i < this.added; i++) keys[i] = `${all.slice(i * KEY_SLOT_CHARS, (i + 1) * KEY_SLOT_CHARS - 1)}=`;
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
