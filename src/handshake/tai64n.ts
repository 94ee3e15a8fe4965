/**
 * TAI64N timestamps as WireGuard clients write them: 8 bytes big-endian
 * seconds with the TAI64 label 2^62 plus 10 (TAI-UTC in 1972; wireguard-go
 * adds no leap seconds since), then 4 bytes big-endian nanoseconds. Byte
 * order is time order, which is all a responder needs.
 */
import { TIMESTAMP_SIZE } from './messages.js';

const TAI64_BASE = (1n << 62n) + 10n;
const SECONDS_SIZE = 8;
const NANOS_PER_MS = 1_000_000;
const MS_PER_SECOND = 1000;
/**
 * Clients round nanoseconds down to 2^24 ns (≈ 16.8 ms), as wireguard-go
 * and the kernel do, so a timestamp does not reveal the clock's precision.
 */
export const TAI64N_WHITENER_MASK = (1 << 24) - 1;

/** The TAI64N label of a Unix time in milliseconds, nanoseconds whitened. */
export function tai64nFromUnixMs(unixMs: number): Uint8Array {
  const seconds = Math.floor(unixMs / MS_PER_SECOND);
  const nanos = Math.floor((unixMs - seconds * MS_PER_SECOND) * NANOS_PER_MS);
  const out = new Uint8Array(TIMESTAMP_SIZE);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, TAI64_BASE + BigInt(seconds), false);
  view.setUint32(SECONDS_SIZE, (nanos & ~TAI64N_WHITENER_MASK) >>> 0, false);
  return out;
}

/** Byte-wise comparison, which is time order for TAI64N. */
export function compareTai64n(a: Uint8Array, b: Uint8Array): -1 | 0 | 1 {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** Unix milliseconds of a 12-byte TAI64N label (NaN if it is not 12 bytes). */
export function tai64nToUnixMs(t: Uint8Array): number {
  if (t.length !== TIMESTAMP_SIZE) return Number.NaN;
  const view = new DataView(t.buffer, t.byteOffset, t.byteLength);
  const seconds = view.getBigUint64(0, false) - TAI64_BASE;
  return Number(seconds) * MS_PER_SECOND + Math.floor(view.getUint32(SECONDS_SIZE, false) / NANOS_PER_MS);
}

/** Whether TAI64N `timestamp` is later than the Unix time `unixMs`. */
export function tai64nAfter(timestamp: Uint8Array, unixMs: number): boolean {
  return compareTai64n(timestamp, tai64nFromUnixMs(unixMs)) > 0;
}
