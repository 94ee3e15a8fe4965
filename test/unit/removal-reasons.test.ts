/**
 * A peer the store refuses leaves the device as `expired` when its
 * expiresAt passed, `revoked` when it was deleted or disabled, in both paths
 * that learn it: the reconciler (a batched read) and StoreSync (an event).
 * In-memory device and store stand-ins; the real ones: test/contract.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { AdmissionResult, PeerGrant } from '../../src/authorize/peer.js';
import { cidrs } from '../../harness/cidr.js';
import type { StoreEvent } from '../../src/authorize/store.js';
import type { DeviceInfo, PeerConfig, PeerStatus, WireGuardDevice } from '../../src/install/device.js';
import { InstalledPeers } from '../../src/lifecycle/installed.js';
import { removalReason } from '../../src/lifecycle/reconcile.js';
import { Reconciler } from '../../src/lifecycle/reconciler.js';
import { StoreSync } from '../../src/lifecycle/store-sync.js';
import { createMetrics, type Metrics } from '../../src/telemetry/metrics.js';
import { gatewayStats } from '../../src/telemetry/stats.js';
import { PublicKey } from '../../src/handshake/keys.js';
import { testKey } from '../support/keys.js';

/** A key as the store and the log lines spell it. */
const key = (c: string) => testKey(c).toString();

class MemoryDevice implements WireGuardDevice {
  readonly kind = 'uapi' as const;
  readonly name = 'wg0';
  /** The keys held, in base64. */
  readonly peers = new Set<string>();
  async getDevice(): Promise<DeviceInfo> {
    return { name: this.name, publicKey: null, privateKey: new Uint8Array(32), listenPort: 0, fwmark: 0, peers: await this.listPeers() };
  }
  async setPeers(_peers: readonly PeerConfig[]): Promise<void> {}
  async removePeers(keys: readonly PublicKey[]): Promise<void> {
    for (const k of keys) this.peers.delete(k.toString());
  }
  async listPeers(): Promise<PeerStatus[]> {
    return [...this.peers].map((text) => ({ publicKey: PublicKey.parse(text)!, allowedIPs: ['10.0.0.2/32'], persistentKeepalive: 0, lastHandshakeAt: null, rxBytes: 0n, txBytes: 0n, hasPresharedKey: false }));
  }
  async close(): Promise<void> {}
}

const grant: PeerGrant = { allowedIPs: cidrs('10.0.0.2/32'), version: 'v1' };

/** What the store says of each key: `undefined` keys are allowed. */
const verdicts = new Map<string, AdmissionResult>([
  [key('a'), { allowed: false, reason: 'unknown' }],
  [key('b'), { allowed: false, reason: 'disabled' }],
  [key('c'), { allowed: false, reason: 'expired' }],
  [key('d'), { allowed: false, reason: 'expired' }],
]);
const verdict = (k: string): AdmissionResult => verdicts.get(k) ?? { allowed: true, grant };

async function removals(metrics: Metrics): Promise<Record<string, number>> {
  return Object.fromEntries((await metrics.removals.get()).values.map((v) => [String(v.labels['reason']), v.value]));
}

function setup() {
  const device = new MemoryDevice();
  const installed = new InstalledPeers();
  for (const c of 'abcde') {
    device.peers.add(key(c));
    installed.add(testKey(c), 0, null, 'confirmed').recordVersion = 'v1';
  }
  return { device, installed, metrics: createMetrics({ processMetrics: false }), log: pino({ level: 'silent' }) };
}

describe('removal reasons', () => {
  it('expired for an expiry, revoked for a delete or a disable', () => {
    expect(removalReason('expired')).toBe('expired');
    expect(removalReason('unknown')).toBe('revoked');
    expect(removalReason('disabled')).toBe('revoked');
  });

  it('the reconciler counts its removals per reason', async () => {
    const { device, installed, metrics, log } = setup();
    const reconciler = new Reconciler({
      device,
      installed,
      metrics,
      log,
      store: { authorizeMany: async (keys) => new Map(keys.map((k) => [k.id, verdict(k.toString())])) },
    });
    expect(await reconciler.reconcile()).toMatchObject({ removed: 4 });
    expect([...device.peers]).toEqual([key('e')]);
    // As GET /v1/gateway/stats serves them.
    const stats = await gatewayStats(metrics);
    const reported = Object.entries(stats).filter(([name]) => name.startsWith('removed_')).map(([name, n]) => [name.slice('removed_'.length), n]);
    expect(reported.sort()).toEqual([
      ['expired', 2],
      ['revoked', 2],
    ]);
    expect(await removals(metrics)).toEqual({ expired: 2, revoked: 2 });
  });

  it('StoreSync reports the reason of each removal it makes on an event', async () => {
    const { device, installed, metrics } = setup();
    let publish: (event: StoreEvent) => void = () => {};
    // Each removal's line names the key and the reason.
    const reported: Array<[string, string]> = [];
    const log = pino({ level: 'info' }, {
      write: (line: string) => {
        const entry = JSON.parse(line) as { publicKey?: string; reason?: string };
        if (entry.publicKey !== undefined && entry.reason !== undefined) reported.push([entry.publicKey, entry.reason]);
      },
    });
    const sync = new StoreSync({
      device,
      installed,
      log,
      metrics,
      store: {
        subscribe: async (onEvent) => {
          publish = onEvent;
          return { close: async () => {} };
        },
        authorize: async (k) => verdict(k.toString()),
      },
    });
    await sync.start();
    publish({ op: 'upsert', publicKey: testKey('b') }); // disabled
    publish({ op: 'upsert', publicKey: testKey('c') }); // expiresAt moved into the past
    await sync.close(); // waits for the changes under way
    expect(reported).toEqual([
      [key('b'), 'revoked'],
      [key('c'), 'expired'],
    ]);
    expect(device.peers.has(key('b')) || device.peers.has(key('c'))).toBe(false);
    expect(await removals(metrics)).toEqual({ expired: 1, revoked: 1 });
  });
});
