/**
 * The one removal path (src/lifecycle/removal.ts): sweep, reconciliation,
 * store events and the API all remove peers through it.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { GatewayView } from '../../src/api/gateway-view.js';
import { gatewayView } from '../../src/daemon/view.js';
import type { Readiness } from '../../src/daemon/readiness.js';
import { InstalledPeers } from '../../src/lifecycle/installed.js';
import { removePeers } from '../../src/lifecycle/removal.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { gatewayStats } from '../../src/telemetry/stats.js';
import type { PublicKey } from '../../src/handshake/keys.js';
import { keyName, testKey } from '../support/keys.js';

function setup(opts: { failRemove?: boolean } = {}) {
  const batches: string[][] = [];
  const device = {
    removePeers: async (keys: readonly PublicKey[]) => {
      if (opts.failRemove) throw new Error('device gone');
      batches.push(keys.map(keyName));
    },
  };
  const installed = new InstalledPeers();
  for (const k of ['a', 'b', 'c', 'd']) installed.add(testKey(k), 0, null, 'confirmed');
  const metrics = createMetrics({ processMetrics: false });
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { device, installed, metrics, lines, log, batches, deps: { device, installed, metrics } };
}

describe('removePeers', () => {
  it('removes a batch in one device call, then from the table; counts by reason; one info line, each peer at debug', async () => {
    const t = setup();
    await removePeers(t.deps, [{ publicKey: testKey('a'), reason: 'idle' }, { publicKey: testKey('b'), reason: 'idle' }, { publicKey: testKey('c'), reason: 'unconfirmed' }], t.log, 'sweep removed peers from the device');
    expect(t.batches).toEqual([['a', 'b', 'c']]);
    expect([...t.installed.values()].map((p) => keyName(p.publicKey))).toEqual(['d']);
    expect(await gatewayStats(t.metrics)).toMatchObject({ removed_idle: 2, removed_unconfirmed: 1 });
    const info = t.lines.filter((l) => l['level'] === 30);
    expect(info).toEqual([expect.objectContaining({ msg: 'sweep removed peers from the device', removed: { idle: 2, unconfirmed: 1 }, installed: 1 })]);
    expect(info[0]).not.toHaveProperty('publicKey');
    expect(t.lines.filter((l) => l['level'] === 20).map((l) => [keyName(l['publicKey']), l['reason']])).toEqual([
      ['a', 'idle'],
      ['b', 'idle'],
      ['c', 'unconfirmed'],
    ]);
  });

  it('names the key and the reason on the info line of a lone peer', async () => {
    const t = setup();
    await removePeers(t.deps, [{ publicKey: testKey('b'), reason: 'revoked', refusal: 'disabled' }], t.log, 'peer revoked in the store: removed from the device');
    expect(t.lines).toEqual([
      expect.objectContaining({ level: 30, msg: 'peer revoked in the store: removed from the device', publicKey: testKey('b').toString(), reason: 'revoked', refusal: 'disabled', removed: { revoked: 1 }, installed: 3 }),
    ]);
  });

  it('changes, counts and logs nothing when the device refuses the batch, and throws for the caller', async () => {
    const t = setup({ failRemove: true });
    await expect(removePeers(t.deps, [{ publicKey: testKey('a'), reason: 'idle' }], t.log, 'sweep removed peers from the device')).rejects.toThrow(/device gone/);
    expect(t.installed.size).toBe(4);
    expect((await t.metrics.removals.get()).values).toEqual([]);
    expect(t.lines).toEqual([]);
  });
});

describe('the API removes through it', () => {
  function view(t: ReturnType<typeof setup>): GatewayView {
    return gatewayView({
      ...t.deps,
      identity: { interface: 'wg0', publicKey: 'k', listenPort: 51820, backend: 'uapi' },
      sweep: async () => {},
      readiness: {} as Readiness,
      log: t.log,
    });
  }

  it('removes an installed peer with its reason, and says false for one not installed', async () => {
    const t = setup();
    const gw = view(t);
    expect(await gw.removePeer(testKey('a'), 'operator')).toBe(true);
    expect(await gw.removePeer(testKey('a'), 'operator')).toBe(false);
    expect(t.batches).toEqual([['a']]);
    expect(await gw.stats()).toMatchObject({ removed_operator: 1 });
    expect(t.lines).toEqual([expect.objectContaining({ level: 30, msg: 'peer removed from the device through the API', publicKey: testKey('a').toString(), reason: 'operator' })]);
  });
});
