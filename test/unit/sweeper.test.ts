import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { DeviceInfo, PeerConfig, PeerStatus, WireGuardDevice } from '../../src/install/device.js';
import { InstalledPeers } from '../../src/lifecycle/installed.js';
import type { SweepPolicy } from '../../src/lifecycle/sweep.js';
import { Sweeper } from '../../src/lifecycle/sweeper.js';
import { createMetrics, type Metrics } from '../../src/telemetry/metrics.js';
import { gatewayStats } from '../../src/telemetry/stats.js';
import type { PublicKey } from '../../src/handshake/keys.js';
import { keyName, testKey } from '../support/keys.js';

const policy: SweepPolicy = { idleTimeoutMs: 180_000, provisionalGraceMs: 15_000, rxStillMs: 5_000 };

/** A device held in memory: what the sweeper reads and removes, and a count of each call. */
class MemoryDevice implements WireGuardDevice {
  readonly kind = 'uapi' as const;
  readonly name = 'wg0';
  /** By PublicKey.id. */
  readonly peers = new Map<string, PeerStatus>();
  reads = 0;
  /** The names (testKey) of the keys removed, per call. */
  removals: string[][] = [];
  failRead = false;
  failRemove = false;

  add(name: string, fields: Partial<PeerStatus> = {}): void {
    const publicKey = testKey(name);
    this.peers.set(publicKey.id, { publicKey, allowedIPs: [], persistentKeepalive: 0, lastHandshakeAt: null, rxBytes: 0n, txBytes: 0n, hasPresharedKey: false, ...fields });
  }

  async getDevice(): Promise<DeviceInfo> {
    return { name: this.name, publicKey: null, privateKey: new Uint8Array(32), listenPort: 0, fwmark: 0, peers: await this.listPeers() };
  }

  async setPeers(_peers: readonly PeerConfig[]): Promise<void> {}

  async removePeers(publicKeys: readonly PublicKey[]): Promise<void> {
    if (this.failRemove) throw new Error('device gone');
    this.removals.push(publicKeys.map(keyName));
    for (const k of publicKeys) this.peers.delete(k.id);
  }

  async listPeers(): Promise<PeerStatus[]> {
    this.reads++;
    if (this.failRead) throw new Error('device gone');
    return [...this.peers.values()].map((p) => ({ ...p }));
  }

  async close(): Promise<void> {}
}

function setup(keepIdle?: () => boolean) {
  const device = new MemoryDevice();
  const installed = new InstalledPeers();
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const metrics = createMetrics({ processMetrics: false });
  metrics.observe({ installedPeers: () => installed.byState() });
  /** Removals by reason, as GET /v1/gateway/stats serves them (removed_<reason>). */
  const removed = async () =>
    Object.entries(await gatewayStats(metrics))
      .filter(([name]) => name.startsWith('removed_'))
      .map(([name, count]) => [name.slice('removed_'.length), count]);
  const sweeper = new Sweeper(device, installed, policy, log, metrics, keepIdle);
  return { device, installed, lines, metrics, removed, sweeper };
}

async function counter(metrics: Metrics, name: 'removals' | 'deviceErrors' | 'installedPeers'): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await metrics[name].get()).values) out[Object.values(v.labels).join(',')] = v.value;
  return out;
}

describe('Sweeper', () => {
  it('reads once, removes every due peer in one batch, and counts and logs them per reason', async () => {
    const { device, installed, lines, metrics, removed, sweeper } = setup();
    const now = Date.now();
    for (const k of ['idle1', 'idle2', 'idle3']) {
      installed.add(testKey(k), now - policy.idleTimeoutMs - 60_000, null, 'confirmed');
      device.add(k);
    }
    installed.add(testKey('late'), now - policy.provisionalGraceMs - 5_000, null, 'provisional');
    device.add('late');
    installed.add(testKey('busy'), now - 1_000, null, 'confirmed');
    device.add('busy', { rxBytes: 4096n, txBytes: 512n, lastHandshakeAt: now - 1_000, endpoint: { address: '192.0.2.7', port: 51820 } });
    installed.add(testKey('new'), now - 1_000, null, 'provisional');
    device.add('new');

    await sweeper.sweep();

    expect(device.reads).toBe(1);
    expect(device.removals.map((batch) => [...batch].sort())).toEqual([['idle1', 'idle2', 'idle3', 'late']]);
    expect([...installed.values()].map((p) => keyName(p.publicKey)).sort()).toEqual(['busy', 'new']);
    expect(await counter(metrics, 'removals')).toEqual({ idle: 3, unconfirmed: 1 });
    expect((await removed()).sort()).toEqual([
      ['idle', 3],
      ['unconfirmed', 1],
    ]);
    const info = lines.filter((l) => l['level'] === 30);
    expect(info).toHaveLength(1);
    expect(info[0]).toMatchObject({ removed: { idle: 3, unconfirmed: 1 }, installed: 2 });
    expect(lines.filter((l) => l['level'] === 20 && l['publicKey'] !== undefined).map((l) => keyName(l['publicKey'])).sort()).toEqual(['idle1', 'idle2', 'idle3', 'late']);
    // What the device said is kept for the peers that stay.
    expect(installed.get(testKey('busy'))).toMatchObject({ rxBytes: 4096n, rxAtLastSweep: 4096n, txBytes: 512n, lastHandshakeAt: now - 1_000, endpoint: { address: '192.0.2.7', port: 51820 } });
    // Its counter moved in this pass: still from now on, not from its install.
    expect(installed.get(testKey('busy'))!.rxMovedAt).toBeGreaterThanOrEqual(now);
    expect(installed.get(testKey('new'))!.rxMovedAt).toBe(now - 1_000);
    expect(await counter(metrics, 'installedPeers')).toEqual({ provisional: 1, confirmed: 1 });
  });

  it('keeps idle peers while told to (a store reset in force), and still removes unconfirmed ones', async () => {
    let keep = true;
    const { device, installed, sweeper } = setup(() => keep);
    const now = Date.now();
    installed.add(testKey('idle'), now - policy.idleTimeoutMs - 60_000, null, 'confirmed');
    device.add('idle');
    installed.add(testKey('late'), now - policy.provisionalGraceMs - 5_000, null, 'provisional');
    device.add('late');
    await sweeper.sweep();
    expect(device.removals).toEqual([['late']]);
    keep = false;
    await sweeper.sweep();
    expect(device.removals).toEqual([['late'], ['idle']]);
  });

  it('confirms, forgets and counts states in the same pass, with nothing to remove and no removal line', async () => {
    const { device, installed, lines, metrics, sweeper } = setup();
    const now = Date.now();
    installed.add(testKey('fresh'), now - 100, null, 'provisional');
    device.add('fresh', { lastHandshakeAt: now });
    installed.add(testKey('gone'), now - 100, null, 'confirmed');
    installed.add(testKey('waiting'), now - 100, null, 'provisional');
    device.add('waiting');

    await sweeper.sweep();

    expect(device.removals).toEqual([]);
    expect(installed.has(testKey('gone'))).toBe(false);
    expect(installed.get(testKey('fresh'))?.state).toBe('confirmed');
    expect(await counter(metrics, 'installedPeers')).toEqual({ provisional: 1, confirmed: 1 });
    expect(lines.filter((l) => l['level'] === 30)).toEqual([]);
  });

  it('keeps the peers and counts a failed removal; counts a failed read', async () => {
    const { device, installed, metrics, removed, sweeper } = setup();
    installed.add(testKey('idle'), Date.now() - policy.idleTimeoutMs - 60_000, null, 'confirmed');
    device.add('idle');
    device.failRemove = true;
    await sweeper.sweep();
    expect(installed.has(testKey('idle'))).toBe(true);
    expect(await removed()).toEqual([]);
    expect(await counter(metrics, 'removals')).toEqual({});

    device.failRead = true;
    await sweeper.sweep();
    expect(await counter(metrics, 'deviceErrors')).toEqual({ 'sweep_remove,other': 1, 'sweep_read,other': 1 });
  });
});
