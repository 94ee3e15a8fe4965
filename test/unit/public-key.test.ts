import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatKey, KEY_LENGTH, PublicKey } from '../../src/handshake/keys.js';

const bytesOf = (b: number) => new Uint8Array(KEY_LENGTH).fill(b);

describe('PublicKey', () => {
  it('parses standard base64 and base64url to the same key, spelled in standard base64', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: KEY_LENGTH, maxLength: KEY_LENGTH }), (bytes) => {
        const standard = Buffer.from(bytes).toString('base64');
        const url = Buffer.from(bytes).toString('base64url');
        const a = PublicKey.parse(standard)!;
        const b = PublicKey.parse(url)!;
        const c = PublicKey.parse(`${url}=`)!; // base64url with its padding
        expect(a.toString()).toBe(standard);
        expect(b.toString()).toBe(standard);
        expect(a.equals(b) && b.equals(c)).toBe(true);
        expect(Array.from(a.bytes)).toEqual(Array.from(bytes));
      }),
    );
  });

  it('parses only the canonical spelling of 32 bytes, and nothing else', () => {
    const canonical = formatKey(bytesOf(0xab));
    expect(PublicKey.parse(canonical)).not.toBeNull();
    const notCanonical = `${canonical.slice(0, 42)}t=`; // spare bits set: the same bytes, another spelling
    expect(Buffer.from(notCanonical, 'base64')).toEqual(Buffer.from(canonical, 'base64'));
    for (const bad of [notCanonical, canonical.slice(0, 42), `${canonical}=`, 'A'.repeat(44), '', 'x', 42, null, undefined, bytesOf(1)]) {
      expect(PublicKey.parse(bad), String(bad)).toBeNull();
    }
    // Never both alphabets in one key.
    const both = formatKey(bytesOf(0xfb)); // '+/v7...': both of the standard alphabet's own characters
    expect(both).toMatch(/\+/);
    expect(both).toMatch(/\//);
    expect(PublicKey.parse(both.replace('+', '-'))).toBeNull();
  });

  it('is equal by value: equals and id agree with the bytes', () => {
    const a = PublicKey.fromBytes(bytesOf(1));
    const b = PublicKey.parse(formatKey(bytesOf(1)))!;
    const c = PublicKey.fromBytes(bytesOf(2));
    expect(a).not.toBe(b);
    expect(a.equals(b)).toBe(true);
    expect(a.equals(c)).toBe(false);
    expect(a.id).toBe(b.id);
    expect(a.id).not.toBe(c.id);
    expect(typeof a.id).toBe('string');
    expect(a.id).toHaveLength(KEY_LENGTH);
    expect(new Set([a.id, b.id, c.id]).size).toBe(2);
  });

  it('spells itself in standard base64 for toString, String(), templates and JSON (log lines, bodies)', () => {
    const bytes = new Uint8Array(randomBytes(KEY_LENGTH));
    const key = PublicKey.fromBytes(bytes);
    const text = formatKey(bytes);
    expect(key.toString()).toBe(text);
    expect(String(key)).toBe(text);
    expect(`${key}`).toBe(text);
    expect(key.toJSON()).toBe(text);
    expect(JSON.parse(JSON.stringify({ publicKey: key }))).toEqual({ publicKey: text });
  });

  it('fromBytes copies the 32 bytes at an offset: later changes to the source do not reach the key', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: KEY_LENGTH, maxLength: KEY_LENGTH }), fc.nat(7), (bytes, offset) => {
        const source = new Uint8Array(offset + KEY_LENGTH + 3);
        source.set(bytes, offset);
        const key = PublicKey.fromBytes(source, offset);
        source.fill(0x5a);
        expect(Array.from(key.bytes)).toEqual(Array.from(bytes));
        expect(key.toString()).toBe(formatKey(bytes));
      }),
    );
    expect(() => PublicKey.fromBytes(new Uint8Array(31))).toThrow(RangeError);
    expect(() => PublicKey.fromBytes(new Uint8Array(40), 9)).toThrow(RangeError);
  });

  it('a reader copies many keys into shared chunks, past the first, and makes them all at once, each its own value', () => {
    const reader = PublicKey.reader();
    expect(reader.keys()).toEqual([]);
    expect(reader.isLast(new Uint8Array(KEY_LENGTH))).toBe(false);
    const all = Array.from({ length: 3_000 }, () => new Uint8Array(randomBytes(KEY_LENGTH)));
    const scratch = new Uint8Array(KEY_LENGTH + 5);
    for (const bytes of all) {
      scratch.set(bytes, 5);
      reader.add(scratch, 5);
      expect(reader.isLast(scratch, 5)).toBe(true);
      expect(reader.isLast(scratch, 4)).toBe(false);
      expect(reader.isLast(scratch, 9)).toBe(false); // fewer than 32 bytes left
    }
    scratch.fill(0);
    expect(reader.count).toBe(3_000);
    const keys = reader.keys();
    expect(keys.map(String)).toEqual(all.map(formatKey));
    for (const [i, key] of keys.entries()) {
      expect(key.equals(PublicKey.fromBytes(all[i]!))).toBe(true);
      expect(key.id).toBe(PublicKey.fromBytes(all[i]!).id);
      expect(Array.from(key.bytes)).toEqual(Array.from(all[i]!));
    }
    expect(() => reader.add(new Uint8Array(31))).toThrow(RangeError);
  });

  it('a reader finds the first key equal to one added before it, or -1', () => {
    const readerOf = (keys: Uint8Array[]) => {
      const reader = PublicKey.reader();
      for (const k of keys) reader.add(k);
      return reader;
    };
    const keys = Array.from({ length: 2_000 }, () => new Uint8Array(randomBytes(KEY_LENGTH)));
    expect(readerOf(keys).firstRepeat()).toBe(-1);
    expect(readerOf([...keys, keys[1_234]!, keys[5]!]).firstRepeat()).toBe(2_000);
    expect(PublicKey.reader().firstRepeat()).toBe(-1);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 30 }), (ids) => {
        // Keys that differ in one byte only, so equal hashes must still be told apart by their bytes.
        const keyOf = (id: number) => new Uint8Array(KEY_LENGTH).fill(7, 0, 31).fill(id, 31);
        const firstAgain = ids.findIndex((id, i) => ids.indexOf(id) < i);
        expect(readerOf(ids.map(keyOf)).firstRepeat()).toBe(firstAgain);
      }),
    );
  });
});
