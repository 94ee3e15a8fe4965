import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatKey, KEY_LENGTH, KeyBatch } from '../../src/handshake/keys.js';

const batchOf = (keys: Uint8Array[]) => {
  const batch = new KeyBatch();
  for (const k of keys) batch.add(k);
  return batch;
};

describe('KeyBatch', () => {
  it('spells each key as formatKey does, in order, past its first allocation', () => {
    const keys = Array.from({ length: 3_000 }, () => new Uint8Array(randomBytes(KEY_LENGTH)));
    const batch = batchOf(keys);
    expect(batch.base64()).toHaveLength(3_000);
    expect(batch.base64()).toEqual(keys.map(formatKey));
  });

  it('spells any key as formatKey does, wherever it sits in the bytes it is added from', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: KEY_LENGTH, maxLength: KEY_LENGTH }), fc.nat(7), (key, offset) => {
        const bytes = new Uint8Array(offset + KEY_LENGTH + 3);
        bytes.set(key, offset);
        const batch = new KeyBatch();
        batch.add(bytes, offset);
        expect(batch.base64()).toEqual([formatKey(key)]);
      }),
    );
  });

  it('refuses fewer than 32 bytes and knows the key added last', () => {
    const batch = new KeyBatch();
    expect(() => batch.add(new Uint8Array(31))).toThrow(RangeError);
    expect(batch.isLast(new Uint8Array(32))).toBe(false);
    const key = new Uint8Array(randomBytes(KEY_LENGTH));
    batch.add(key);
    const shifted = new Uint8Array(40);
    shifted.set(key, 5);
    expect(batch.isLast(shifted, 5)).toBe(true);
    expect(batch.isLast(shifted, 4)).toBe(false);
    expect(batch.isLast(shifted, 9)).toBe(false); // fewer than 32 bytes left
  });

  it('firstRepeat finds the first key equal to an earlier one, or -1', () => {
    const keys = Array.from({ length: 2_000 }, () => new Uint8Array(randomBytes(KEY_LENGTH)));
    expect(batchOf(keys).firstRepeat()).toBe(-1);
    expect(batchOf([...keys, keys[1_234]!, keys[5]!]).firstRepeat()).toBe(2_000);
    expect(new KeyBatch().firstRepeat()).toBe(-1);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 30 }), (ids) => {
        // Keys that differ in one byte only, so equal hashes must still be told apart by their bytes.
        const keyOf = (id: number) => new Uint8Array(KEY_LENGTH).fill(7, 0, 31).fill(id, 31);
        const firstAgain = ids.findIndex((id, i) => ids.indexOf(id) < i);
        expect(batchOf(ids.map(keyOf)).firstRepeat()).toBe(firstAgain);
      }),
    );
  });
});
