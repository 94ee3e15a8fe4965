/**
 * The store reset's logic: judgeEpochs (pure), and StoreGuard over an
 * in-memory epoch (the real store's part is tested on redis-server in
 * test/integration/store-reset.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { judgeEpochs, parseResetMarker, type ResetMarker, type StoreEpoch } from '../../src/authorize/epoch.js';
import { GROUPS, parseEvents } from '../../src/authorize/store.js';
import { StoreGuard, REPLICATION_LAG_BOUND_MS } from '../../src/lifecycle/store-guard.js';
import { StoreUnavailableError } from '../../src/authorize/store.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { tai64nFromUnixMs } from '../../src/handshake/tai64n.js';
import type { PublicKey } from '../../src/handshake/keys.js';
import { testKey } from '../support/keys.js';

const log = pino({ level: 'silent' });
const E = '0123456789abcdef';
const F = 'fedcba9876543210';

describe('judgeEpochs', () => {
  it('a store with no marker is new only when nothing says it was used', () => {
    const none = GROUPS.map(() => null);
    expect(judgeEpochs(none, null, false)).toEqual({ kind: 'new' });
    expect(judgeEpochs(none, E, false)).toEqual({ kind: 'lost', epoch: E, lost: GROUPS.length });
    const withEvidence = judgeEpochs(none, null, true);
    expect(withEvidence).toMatchObject({ kind: 'lost', lost: GROUPS.length });
  });

  it('intact when every group holds the known epoch (or, none known, one epoch)', () => {
    expect(judgeEpochs([E, E, E], E, true)).toEqual({ kind: 'intact', epoch: E });
    expect(judgeEpochs([E, E, E], null, false)).toEqual({ kind: 'intact', epoch: E });
  });

  it('groups missing the marker, or holding another, are lost', () => {
    expect(judgeEpochs([E, null, E], E, false)).toEqual({ kind: 'lost', epoch: E, lost: 1 });
    expect(judgeEpochs([F, F, F], E, false)).toEqual({ kind: 'lost', epoch: E, lost: 3 });
    // None known: the epoch most groups hold is the store's.
    expect(judgeEpochs([E, F, E, null], null, false)).toEqual({ kind: 'lost', epoch: E, lost: 2 });
  });

  it('reads only well-formed reset records', () => {
    const m: ResetMarker = { since: '2026-12-03T12:00:00.000Z', detectedBy: 'g1', lostGroups: 4096, epoch: E };
    expect(parseResetMarker(JSON.stringify(m))).toEqual(m);
    expect(parseResetMarker('{"since":1}')).toBeNull();
    expect(parseResetMarker('not json')).toBeNull();
    expect(parseResetMarker(null)).toBeNull();
  });

  it('parses the reset-replay event', () => {
    const key = testKey('a');
    expect(parseEvents(`{"op":"reset-replay","publicKeys":["${key.toString()}"]}`)).toEqual([{ op: 'reset-replay', publicKey: key }]);
  });
});

/** The markers and the reset record, in memory; `down` makes every call fail as an unreachable store does. */
class MemoryEpoch implements Pick<StoreEpoch, 'read' | 'fill' | 'reset' | 'recordReset' | 'holdsRecords'> {
  groups = new Map<string, string>();
  marker: ResetMarker | null = null;
  down = false;
  records = false;
  async holdsRecords() {
    this.check();
    return this.records;
  }
  private check(): void {
    if (this.down) throw new StoreUnavailableError('peer store unavailable: down');
  }
  async read(groups: readonly string[] = GROUPS) {
    this.check();
    return groups.map((g) => this.groups.get(g) ?? null);
  }
  async fill(groups: readonly string[], epoch: string, overwrite = false) {
    this.check();
    for (const g of groups) if (overwrite || !this.groups.has(g)) this.groups.set(g, epoch);
  }
  async reset() {
    this.check();
    return this.marker;
  }
  async recordReset(m: ResetMarker) {
    this.check();
    this.marker ??= m;
    return this.marker;
  }
  flush(): void {
    this.groups.clear();
    this.marker = null;
  }
}

function guardOn(epoch: MemoryEpoch, opts: { evidence?: boolean; timestamps?: Array<[PublicKey, Uint8Array, number]> } = {}) {
  let clock = Date.UTC(2026, 11, 3, 12);
  const written: string[] = [];
  let confirmed = 0;
  const metrics = createMetrics({ processMetrics: false });
  const guard = new StoreGuard({
    epoch,
    gatewayId: 'g1',
    evidence: () => opts.evidence ?? false,
    timestamps: function* (since) {
      for (const [k, ts, at] of opts.timestamps ?? []) if (at >= since) yield [k, ts];
    },
    advanceTimestamp: async (k) => {
      written.push(k.toString());
      return true;
    },
    onConfirmed: () => confirmed++,
    log,
    metrics,
    now: () => clock,
  });
  return { guard, written, metrics, confirmed: () => confirmed, tick: (ms: number) => (clock += ms), now: () => clock };
}

const gauge = async (m: ReturnType<typeof createMetrics>) => (await m.storeReset.get()).values[0]?.value ?? 0;

describe('StoreGuard', () => {
  it('gives a new store an epoch, then removals of unknown peers go ahead', async () => {
    const epoch = new MemoryEpoch();
    const { guard } = guardOn(epoch);
    await guard.watch();
    expect(new Set(epoch.groups.values()).size).toBe(1);
    expect(epoch.groups.size).toBe(GROUPS.length);
    expect(await guard.mayRemoveUnknown([testKey('a'), testKey('b')])).toBe(true);
    expect(guard.reset).toBeNull();
  });

  it('a store found empty with peers on the device was reset, not new: nothing unknown is removed', async () => {
    const epoch = new MemoryEpoch();
    const { guard, metrics } = guardOn(epoch, { evidence: true });
    await guard.watch();
    expect(guard.reset).toMatchObject({ detectedBy: 'g1', lostGroups: GROUPS.length });
    expect(epoch.marker).not.toBeNull();
    expect(await guard.mayRemoveUnknown([testKey('a')])).toBe(false);
    expect(await gauge(metrics)).toBe(1);
  });

  it('a flush under a running gateway: the next removal check finds the lost group, records the reset and holds; writes back every kept timestamp', async () => {
    const epoch = new MemoryEpoch();
    const t = guardOn(epoch, { timestamps: [[testKey('a'), tai64nFromUnixMs(1), 0], [testKey('b'), tai64nFromUnixMs(2), 0]] });
    await t.guard.watch();
    epoch.flush();
    expect(await t.guard.mayRemoveUnknown([testKey('a')])).toBe(false);
    expect(epoch.marker).toMatchObject({ detectedBy: 'g1', lostGroups: GROUPS.length });
    expect(new Set(epoch.groups.values())).toEqual(new Set([epoch.marker!.epoch]));
    expect(epoch.groups.size).toBe(GROUPS.length);
    // The lost group has the store's epoch again.
    expect(epoch.groups.get(testKey('a').toString().slice(0, 2))).toBe(epoch.marker!.epoch);
    await t.guard.stop();
    expect(t.written.sort()).toEqual([testKey('a').toString(), testKey('b').toString()].sort());
    // Held until an operator confirms; then removals go ahead again, and the daemon is told.
    expect(await t.guard.mayRemoveUnknown([testKey('b')])).toBe(false);
    epoch.marker = null;
    await t.guard.watch();
    expect(t.confirmed()).toBe(1);
    expect(await gauge(t.metrics)).toBe(0);
    expect(await t.guard.mayRemoveUnknown([testKey('a')])).toBe(true);
  });

  it('an outage only the store client saw (shorter than a look) still gets its write-back when the store is back', async () => {
    const epoch = new MemoryEpoch();
    const t0 = Date.UTC(2026, 11, 3, 12);
    const t = guardOn(epoch, { timestamps: [[testKey('new'), tai64nFromUnixMs(2), t0 - 1_000]] });
    await t.guard.watch();
    t.guard.storeChanged(false);
    t.tick(300);
    t.guard.storeChanged(true);
    await t.guard.watch();
    expect(t.written).toEqual([testKey('new').toString()]);
  });

  it('a store with records but no marker predates the markers (an upgrade): given an epoch, no reset', async () => {
    const epoch = new MemoryEpoch();
    epoch.records = true;
    const { guard } = guardOn(epoch, { evidence: true });
    await guard.watch();
    expect(guard.reset).toBeNull();
    expect(epoch.groups.size).toBe(GROUPS.length);
    expect(await guard.mayRemoveUnknown([testKey('a')])).toBe(true);
  });

  it('learns of a reset another gateway recorded, also after its own restart, and holds', async () => {
    const epoch = new MemoryEpoch();
    await guardOn(epoch).guard.watch();
    epoch.marker = { since: '2026-12-03T12:00:00.000Z', detectedBy: 'g2', lostGroups: 3, epoch: [...epoch.groups.values()][0]! };
    const { guard } = guardOn(epoch);
    await guard.watch();
    expect(guard.reset?.detectedBy).toBe('g2');
    expect(await guard.mayRemoveUnknown([testKey('a')])).toBe(false);
  });

  it('after an outage with the epoch intact (a failover), writes back only what was kept shortly before it', async () => {
    const epoch = new MemoryEpoch();
    const t0 = Date.UTC(2026, 11, 3, 12);
    const t = guardOn(epoch, {
      timestamps: [
        [testKey('old'), tai64nFromUnixMs(1), t0 - REPLICATION_LAG_BOUND_MS - 10_000],
        [testKey('new'), tai64nFromUnixMs(2), t0 - 1_000],
      ],
    });
    await t.guard.watch();
    epoch.down = true;
    await t.guard.watch();
    expect(await t.guard.mayRemoveUnknown([testKey('a')])).toBe(false); // cannot tell: hold
    t.tick(5_000);
    epoch.down = false;
    await t.guard.watch();
    expect(t.written).toEqual([testKey('new').toString()]);
    expect(t.guard.reset).toBeNull();
    expect(await t.guard.mayRemoveUnknown([testKey('a')])).toBe(true);
  });
});
