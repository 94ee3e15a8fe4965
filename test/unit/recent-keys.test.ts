import { describe, expect, it } from 'vitest';
import { MIN_INITIATION_INTERVAL_MS, RecentKeys } from '../../src/authorize/recent-keys.js';
import { tai64nFromUnixMs } from '../../src/handshake/tai64n.js';
import { testKey } from '../support/keys.js';

const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);

function keys(capacity = 4) {
  let clock = T0;
  const recent = new RecentKeys(capacity, MIN_INITIATION_INTERVAL_MS, () => clock);
  return { recent, tick: (ms: number) => (clock += ms) };
}

describe('RecentKeys', () => {
  it('considers one initiation per key per interval, keys apart', () => {
    const { recent, tick } = keys();
    expect(recent.consider(testKey('a'), tai64nFromUnixMs(T0))).toBe('considered');
    expect(recent.consider(testKey('b'), tai64nFromUnixMs(T0))).toBe('considered');
    tick(MIN_INITIATION_INTERVAL_MS - 1);
    expect(recent.consider(testKey('a'), tai64nFromUnixMs(T0 + 100))).toBe('too_soon');
    tick(1);
    expect(recent.consider(testKey('a'), tai64nFromUnixMs(T0 + 100))).toBe('considered');
  });

  it('refuses a timestamp not greater than the greatest considered, at any time, without taking the slot', () => {
    const { recent, tick } = keys();
    expect(recent.consider(testKey('a'), tai64nFromUnixMs(T0 + 100))).toBe('considered');
    tick(60_000);
    expect(recent.consider(testKey('a'), tai64nFromUnixMs(T0 + 100))).toBe('replayed');
    expect(recent.consider(testKey('a'), tai64nFromUnixMs(T0))).toBe('replayed');
    expect(recent.consider(testKey('a'), tai64nFromUnixMs(T0 + 200))).toBe('considered');
  });

  it('does not remember the timestamp of an initiation it did not consider', () => {
    const { recent, tick } = keys();
    recent.consider(testKey('a'), tai64nFromUnixMs(T0));
    tick(5);
    expect(recent.consider(testKey('a'), tai64nFromUnixMs(T0 + 500))).toBe('too_soon');
    tick(20);
    expect(recent.consider(testKey('a'), tai64nFromUnixMs(T0 + 100))).toBe('considered');
  });

  it('copies the timestamp: a caller reusing its buffer cannot change what is kept', () => {
    const { recent, tick } = keys();
    const buf = tai64nFromUnixMs(T0 + 100);
    recent.consider(testKey('a'), buf);
    buf.fill(0);
    tick(25);
    expect(recent.consider(testKey('a'), tai64nFromUnixMs(T0 + 50))).toBe('replayed');
  });

  it('allows a look-ahead lookup only for keys with nothing considered lately, once per interval', () => {
    const { recent, tick } = keys();
    expect(recent.lookAhead(testKey('a'))).toBe(true);
    expect(recent.lookAhead(testKey('a'))).toBe(false);
    tick(MIN_INITIATION_INTERVAL_MS);
    expect(recent.lookAhead(testKey('a'))).toBe(true);
    recent.consider(testKey('a'), tai64nFromUnixMs(T0));
    tick(60_000);
    expect(recent.lookAhead(testKey('a'))).toBe(false); // seen: resend or replay, the lookup waits for the timestamp
    expect(recent.lookAhead(testKey('b'))).toBe(true);
  });

  it('is bounded: the least recently touched key is forgotten first', () => {
    const { recent, tick } = keys(3);
    for (const k of ['a', 'b', 'c']) recent.consider(testKey(k), tai64nFromUnixMs(T0));
    tick(25);
    expect(recent.consider(testKey('a'), tai64nFromUnixMs(T0 + 100))).toBe('considered'); // touched: now the most recent
    expect(recent.lookAhead(testKey('d'))).toBe(true); // a fourth key: b goes
    expect(recent.size).toBe(3);
    expect(recent.consider(testKey('c'), tai64nFromUnixMs(T0))).toBe('replayed'); // remembered
    expect(recent.consider(testKey('b'), tai64nFromUnixMs(T0))).toBe('considered'); // forgotten
  });

  it('rejects a capacity that is not a positive integer', () => {
    expect(() => new RecentKeys(0)).toThrow(RangeError);
    expect(() => new RecentKeys(1.5)).toThrow(RangeError);
  });
});

describe('RecentKeys: timestamps kept for a write-back, and forgotten on an operator reset', () => {
  it('keeps the greatest timestamp the store accepted per key, with when', () => {
    const { recent, tick } = keys();
    recent.consider(testKey('a'), tai64nFromUnixMs(T0));
    recent.keep(testKey('a'), tai64nFromUnixMs(T0));
    tick(1_000);
    recent.keep(testKey('a'), tai64nFromUnixMs(T0 - 5)); // older: not kept
    recent.keep(testKey('b'), tai64nFromUnixMs(T0 + 7)); // never considered here: kept all the same
    const kept = new Map([...recent.keptTimestamps()].map(([k, ts]) => [k.id, ts]));
    expect(kept).toEqual(new Map([[testKey('a').id, tai64nFromUnixMs(T0)], [testKey('b').id, tai64nFromUnixMs(T0 + 7)]]));
    // Only what was kept since a moment.
    expect([...recent.keptTimestamps(T0 + 500)].map(([k]) => k.id)).toEqual([testKey('b').id]);
    // A key only considered (its owner's store may never have accepted it) is not offered.
    recent.consider(testKey('c'), tai64nFromUnixMs(T0));
    expect([...recent.keptTimestamps()].map(([k]) => k.id)).not.toContain(testKey('c').id);
  });

  it('a kept timestamp also refuses replays here, and forget() lets the key start over', () => {
    const { recent, tick } = keys();
    recent.keep(testKey('a'), tai64nFromUnixMs(T0 + 600_000)); // stamped ahead of time
    tick(100);
    expect(recent.consider(testKey('a'), tai64nFromUnixMs(T0 + 100))).toBe('replayed');
    recent.forget(testKey('a'));
    expect(recent.consider(testKey('a'), tai64nFromUnixMs(T0 + 100))).toBe('considered');
    expect([...recent.keptTimestamps()]).toEqual([]);
  });
});
