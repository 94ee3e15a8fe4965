/**
 * The intake between capture and verification: fairness between sources,
 * the Diffie-Hellman budget, the bounds, and the drops, on fake timers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CaptureEvent } from '../../src/capture/types.js';
import { formatAddress, parseAddress, type IpAddress } from '../../src/net/address.js';
import { FairQueue } from '../../src/intake/fair-queue.js';
import { DH_PER_INITIATION, Intake, sourceKey, STALE_AFTER_MS, type DropReason } from '../../src/intake/intake.js';
import { TokenBucket } from '../../src/intake/token-bucket.js';

/* An address from its text (test input is written as people write addresses). */
function ip(text: string): IpAddress {
  const r = parseAddress(text);
  if (!r.ok) throw new RangeError(r.message);
  return r.address;
}

describe('FairQueue', () => {
  it('gives each source a turn, oldest item first within a source', () => {
    const q = new FairQueue<string>(100, 10);
    for (const item of ['a1', 'a2', 'a3', 'b1', 'c1', 'b2']) q.push(item[0]!, item);
    const order: string[] = [];
    for (let item = q.shift(); item !== undefined; item = q.shift()) order.push(item);
    expect(order).toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'a3']);
    expect(q.size).toBe(0);
    expect(q.sourceCount).toBe(0);
  });

  it('refuses beyond the per-source bound, and when full makes room from the longest FIFO', () => {
    const q = new FairQueue<string>(5, 3);
    expect([q.push('a', 'a1'), q.push('a', 'a2'), q.push('a', 'a3'), q.push('a', 'a4')]).toEqual(['queued', 'queued', 'queued', 'source_full']);
    expect([q.push('b', 'b1'), q.push('b', 'b2')]).toEqual(['queued', 'queued']);
    // Full: a new source displaces the newest item of the longest FIFO (a's)...
    expect(q.push('c', 'c1')).toBe('displaced');
    // ...then of b's, as long as a FIFO is longer than the one the newcomer would have.
    expect(q.push('d', 'd1')).toBe('displaced');
    expect(q.size).toBe(5);
    expect(q.push('c', 'c2')).toBe('queue_full'); // c would have 2: none is longer
    const order: string[] = [];
    for (let item = q.shift(); item !== undefined; item = q.shift()) order.push(item);
    expect(order).toEqual(['a1', 'b1', 'c1', 'd1', 'a2']);
  });

  it('keeps a new source out of nothing: a flood that fills the queue still makes room for it', () => {
    const q = new FairQueue<string>(4_096, 4);
    for (let s = 0; s < 1_024; s++) for (let i = 0; i < 6; i++) q.push(`10.0.${s >> 8}.${s & 255}`, 'flood');
    expect(q.size).toBe(4_096);
    expect(q.push('192.0.2.99', 'client')).toBe('displaced');
    let at = 0;
    while (q.shift() !== 'client') at++;
    expect(at).toBeLessThanOrEqual(1_024); // one round of the flood's sources
  });

  it('rejects bounds that are not positive integers', () => {
    expect(() => new FairQueue(0, 1)).toThrow(RangeError);
    expect(() => new FairQueue(1, 0.5)).toThrow(RangeError);
  });
});

describe('TokenBucket', () => {
  it('starts full, refills at its rate, and never saves more than the burst', () => {
    let t = 0;
    const b = new TokenBucket(100, 5, () => t); // one token per 10 ms
    for (let i = 0; i < 5; i++) expect(b.take(1)).toBe(true);
    expect(b.take(1)).toBe(false);
    expect(b.msUntil(2)).toBeCloseTo(20);
    t += 25;
    expect(b.take(2)).toBe(true);
    expect(b.take(1)).toBe(false);
    t += 10_000;
    expect(b.msUntil(5)).toBe(0);
    expect(b.msUntil(6)).toBeGreaterThan(0);
  });
});

describe('sourceKey', () => {
  const ev = (family: 4 | 6, address: string) => ({ family, src: { address: ip(address), port: 1 } }) as CaptureEvent;
  it('keys IPv4 by the address and IPv6 by its /64', () => {
    expect(sourceKey(ev(4, '192.0.2.7'))).toBe('192.0.2.7');
    expect(sourceKey(ev(6, '2001:db8:1:2::7'))).toBe(sourceKey(ev(6, '2001:db8:1:2:ffff::1')));
    expect(sourceKey(ev(6, '2001:db8:1:2::7'))).not.toBe(sourceKey(ev(6, '2001:db8:1:3::7')));
  });

  it('reads the /64 from the bytes, spelled as the 64 bits in hex', () => {
    expect(sourceKey(ev(6, '2001:db8:1:2::7'))).toBe('20010db800010002::/64');
    expect(sourceKey(ev(6, '::1'))).toBe('0::/64');
    expect(sourceKey(ev(6, '0:0:0:1::'))).toBe('1::/64');
    expect(sourceKey(ev(6, '0:1::'))).toBe('100000000::/64');
  });
});

describe('Intake', () => {
  beforeEach(() => vi.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => vi.useRealTimers());

  let seq = 0;
  const event = (address: string, ageMs = 0): CaptureEvent => ({
    ifindex: 2,
    family: 4,
    src: { address: ip(address), port: 40000 + (seq++ % 1000) },
    dst: { address: ip('192.0.2.1'), port: 51820 },
    arrivalNs: BigInt(Date.now() - ageMs) * 1_000_000n,
    message: new Uint8Array(148),
  });

  function intake(opts: { dhPerSecond?: number; queueSize?: number; perSource?: number; maxConcurrent?: number; hold?: boolean } = {}) {
    const handled: CaptureEvent[] = [];
    const drops: DropReason[] = [];
    const pending: Array<() => void> = [];
    const i = new Intake({
      handle: (e) => {
        handled.push(e);
        return opts.hold ? new Promise<void>((r) => pending.push(r)) : Promise.resolve();
      },
      onDrop: (r) => drops.push(r),
      nowMs: () => Date.now(),
      monotonicNs: () => BigInt(Date.now()) * 1_000_000n,
      ...opts,
    });
    return { i, handled, drops, pending };
  }

  it('serves a lone client within one round of a flood from many sources', async () => {
    const t = intake({ dhPerSecond: 2_000, queueSize: 1_000, perSource: 4 }); // 1,000 initiations/s
    for (let s = 0; s < 100; s++) t.i.offer(Array.from({ length: 10 }, () => event(`10.0.${s}.1`)));
    t.i.offer([event('192.0.2.99')]);
    expect(t.drops.filter((d) => d === 'source_full')).toHaveLength(600); // 6 of 10 per flooding source
    await vi.advanceTimersByTimeAsync(150);
    const at = t.handled.findIndex((e) => formatAddress(e.src.address) === '192.0.2.99');
    expect(at).toBeGreaterThanOrEqual(0);
    expect(at).toBeLessThanOrEqual(101); // behind at most one turn of each source
  });

  it('spends no more Diffie-Hellman work than its budget', async () => {
    const t = intake({ dhPerSecond: 200, queueSize: 1_000, perSource: 1_000 }); // 100 initiations/s, 5 saved up
    t.i.offer(Array.from({ length: 300 }, () => event('10.0.0.1')));
    await vi.advanceTimersByTimeAsync(0);
    expect(t.handled).toHaveLength((200 * 0.05) / DH_PER_INITIATION);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(t.handled.length).toBeGreaterThanOrEqual(100);
    expect(t.handled.length).toBeLessThanOrEqual(106);
    expect(t.i.queued).toBe(300 - t.handled.length);
  });

  it('drops what does not fit, by reason, and never holds more than its bound', () => {
    const t = intake({ dhPerSecond: 2, queueSize: 10, perSource: 3 });
    t.i.offer(Array.from({ length: 5 }, () => event('10.0.0.1')));
    for (let s = 2; s < 12; s++) t.i.offer([event(`10.0.0.${s}`)]);
    expect(t.i.queued).toBe(10);
    expect(t.drops.filter((d) => d === 'source_full')).toHaveLength(2);
    expect(t.drops.filter((d) => d === 'queue_full')).toHaveLength(3);
  });

  it('waits, without dropping, while the admissions under way are at their bound', async () => {
    const t = intake({ maxConcurrent: 3, hold: true, perSource: 10 });
    t.i.offer(Array.from({ length: 8 }, () => event('10.0.0.1')));
    await vi.advanceTimersByTimeAsync(10);
    expect(t.handled).toHaveLength(3);
    expect(t.i.inProgress).toBe(3);
    t.pending.shift()!();
    await vi.advanceTimersByTimeAsync(10);
    expect(t.handled).toHaveLength(4);
    expect(t.drops).toEqual([]);
  });

  it('drops an initiation that waited past the point where its client has sent the next one', async () => {
    const t = intake();
    t.i.offer([event('10.0.0.1', STALE_AFTER_MS + 1), event('10.0.0.2', 100)]);
    await vi.advanceTimersByTimeAsync(1);
    expect(t.handled.map((e) => formatAddress(e.src.address))).toEqual(['10.0.0.2']);
    expect(t.drops).toEqual(['stale']);
  });

  it('after close, takes nothing and drops what waited', async () => {
    const t = intake({ dhPerSecond: 2 });
    t.i.offer([event('10.0.0.1'), event('10.0.0.2'), event('10.0.0.3')]);
    t.i.close();
    t.i.offer([event('10.0.0.4')]);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(t.handled).toHaveLength(0);
    expect(t.drops).toHaveLength(4);
  });

  it('lets a stop wait for the admissions under way, and no longer than told', async () => {
    const t = intake({ hold: true });
    t.i.offer([event('10.0.0.1'), event('10.0.0.2')]);
    await vi.advanceTimersByTimeAsync(1);
    t.i.close();
    const idle = t.i.idle(1_000);
    t.pending.shift()!();
    t.pending.shift()!();
    expect(await idle).toBe(true);
    t.i.offer([event('10.0.0.3')]);
    await vi.advanceTimersByTimeAsync(10);
    expect(t.handled).toHaveLength(2);
    const stuck = intake({ hold: true });
    stuck.i.offer([event('10.0.0.4')]);
    await vi.advanceTimersByTimeAsync(1);
    const timedOut = stuck.i.idle(500);
    await vi.advanceTimersByTimeAsync(500);
    expect(await timedOut).toBe(false);
  });

  it('rejects a budget below one initiation per second', () => {
    expect(() => intake({ dhPerSecond: 1 })).toThrow(/at least 2/);
  });
});
