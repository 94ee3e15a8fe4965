import { describe, expect, it } from 'vitest';
import { RefusalCache } from '../../src/authorize/refusals.js';
import { testKey } from '../support/keys.js';

describe('RefusalCache', () => {
  it('remembers a refusal until its TTL, then forgets it', () => {
    let now = 1_000;
    const c = new RefusalCache(10, 4_000, () => now);
    c.set(testKey('a'), 'unknown');
    expect(c.get(testKey('a'))).toBe('unknown');
    now += 3_999;
    expect(c.get(testKey('a'))).toBe('unknown');
    now += 1;
    expect(c.get(testKey('a'))).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it('forgets a key whose record changed', () => {
    const c = new RefusalCache(10, 4_000);
    c.set(testKey('a'), 'disabled');
    c.delete(testKey('a'));
    expect(c.get(testKey('a'))).toBeUndefined();
  });

  it('is bounded: the least recently refused key goes first', () => {
    const c = new RefusalCache(3, 60_000);
    for (const k of ['a', 'b', 'c']) c.set(testKey(k), 'unknown');
    c.set(testKey('a'), 'expired'); // refreshed: now the newest
    c.set(testKey('d'), 'unknown');
    expect(c.size).toBe(3);
    expect(c.get(testKey('b'))).toBeUndefined();
    expect(c.get(testKey('a'))).toBe('expired');
    expect(c.get(testKey('d'))).toBe('unknown');
    for (let i = 0; i < 10_000; i++) c.set(testKey(`flood${i}`), 'unknown');
    expect(c.size).toBe(3);
  });

  it('capacity 0 remembers nothing; bad settings are refused', () => {
    const off = new RefusalCache(0, 1_000);
    off.set(testKey('a'), 'unknown');
    expect(off.get(testKey('a'))).toBeUndefined();
    expect(() => new RefusalCache(-1)).toThrow(RangeError);
    expect(() => new RefusalCache(1, Number.NaN)).toThrow(RangeError);
  });
});
