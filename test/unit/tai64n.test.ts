import { describe, expect, it } from 'vitest';
import { TAI64N_WHITENER_MASK, compareTai64n, tai64nFromUnixMs, tai64nToUnixMs } from '../../src/handshake/tai64n.js';
import { tai64nNow } from '../../harness/noise/tai64n.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('tai64n', () => {
  it('encodes 2^62 + 10 + Unix seconds, then whitened nanoseconds, big-endian', () => {
    expect(hex(tai64nFromUnixMs(0))).toBe('400000000000000a00000000');
    // 2025-01-01T12:00:00.5Z: 500 000 000 ns = 0x1dcd6500, low 24 bits dropped.
    expect(hex(tai64nFromUnixMs(Date.UTC(2025, 0, 1, 12, 0, 0, 500)))).toBe('4000000067752e4a1d000000');
  });

  it('drops the low 24 bits of the nanoseconds', () => {
    const t = tai64nNow();
    expect(new DataView(t.buffer).getUint32(8, false) & TAI64N_WHITENER_MASK).toBe(0);
  });

  it('converts back to Unix milliseconds within the whitening step', () => {
    const stepMs = (TAI64N_WHITENER_MASK + 1) / 1e6;
    for (const ms of [0, 1_700_000_000_123, Date.UTC(2038, 0, 19, 3, 14, 8, 999)]) {
      const back = tai64nToUnixMs(tai64nFromUnixMs(ms));
      expect(back).toBeLessThanOrEqual(ms);
      expect(ms - back).toBeLessThan(stepMs);
    }
    expect(tai64nToUnixMs(new Uint8Array(11))).toBeNaN();
  });

  it('orders as time orders', () => {
    const a = tai64nFromUnixMs(1_700_000_000_000);
    const b = tai64nFromUnixMs(1_700_000_000_100);
    const c = tai64nFromUnixMs(1_700_000_001_000);
    expect(compareTai64n(a, b)).toBe(-1);
    expect(compareTai64n(c, b)).toBe(1);
    expect(compareTai64n(b, Uint8Array.from(b))).toBe(0);
    // Within one whitening step two stamps are equal: a responder treats the second as a replay.
    expect(compareTai64n(tai64nFromUnixMs(1_700_000_000_001), tai64nFromUnixMs(1_700_000_000_002))).toBe(0);
  });
});
