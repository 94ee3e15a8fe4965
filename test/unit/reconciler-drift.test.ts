/**
 * Drift repaired by the reconciler, on an in-memory device whose allowed
 * IPs are exclusive as a WireGuard device's are (writing an address to one
 * peer takes it from another): the table shows what the device has, an
 * address a PATCH took and gave back returns to its owner right after the
 * revert (StoreSync's onNarrowed → Reconciler.recheck()), and two records
 * claiming one address neither flap nor warn every pass. The real device
 * and store: test/contract/lifecycle-contract.ts.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { AdmissionResult, PeerGrant } from '../../src/authorize/peer.js';
import type { StoreEvent } from '../../src/authorize/store.js';
import type { PublicKey } from '../../src/handshake/keys.js';
import type { DeviceInfo, PeerConfig, PeerStatus, WireGuardDevice } from '../../src/install/device.js';
import { InstalledPeers } from '../../src/lifecycle/installed.js';
import { PeriodicPass } from '../../src/lifecycle/periodic.js';
import { Reconciler } from '../../src/lifecycle/reconciler.js';
import { StoreSync } from '../../src/lifecycle/store-sync.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { cidrs } from '../../harness/cidr.js';
import { keyName, testKey } from '../support/keys.js';

/** Each peer's own address: a → 10.0.0.97/32. */
const ip = (c: string) => `10.0.0.${c.charCodeAt(0)}/32`;

/** A device whose allowed IPs are exclusive, as WireGuard's are; it counts the peers written. */
class ExclusiveDevice implements WireGuardDevice {
  readonly kind = 'uapi' as const;
  readonly name = 'wg0';
  /** By PublicKey.id. */
  readonly peers = new Map<string, PeerStatus>();
  /** The names of the peers written, per call. */
  writes: string[][] = [];

  add(c: string): void {
    this.peers.set(testKey(c).id, { publicKey: testKey(c), allowedIPs: [ip(c)], persistentKeepalive: 0, lastHandshakeAt: null, rxBytes: 0n, txBytes: 0n, hasPresharedKey: false });
  }

  allowed(c: string): string[] {
    return [...(this.peers.get(testKey(c).id)?.allowedIPs ?? [])].sort();
  }

  async getDevice(): Promise<DeviceInfo> {
    return { name: this.name, publicKey: null, privateKey: new Uint8Array(32), listenPort: 0, fwmark: 0, peers: await this.listPeers() };
  }

  async setPeers(configs: readonly PeerConfig[]): Promise<void> {
    this.writes.push(configs.map((c) => keyName(c.publicKey)));
    for (const config of configs) {
      const peer = this.peers.get(config.publicKey.id);
      if (peer === undefined) continue; // update-only
      const texts = (config.allowedIPs ?? []).map((c) => c.text);
      // Exclusive: an address written to this peer leaves any other.
      for (const other of this.peers.values()) if (other !== peer) other.allowedIPs = other.allowedIPs.filter((t) => !texts.includes(t));
      peer.allowedIPs = config.replaceAllowedIPs ? texts : [...new Set([...peer.allowedIPs, ...texts])];
      if (config.persistentKeepalive !== undefined) peer.persistentKeepalive = config.persistentKeepalive;
      if (config.presharedKey !== undefined) peer.hasPresharedKey = config.presharedKey.some((b) => b !== 0);
    }
  }

  async removePeers(keys: readonly PublicKey[]): Promise<void> {
    for (const k of keys) this.peers.delete(k.id);
  }

  async listPeers(): Promise<PeerStatus[]> {
    return [...this.peers.values()].map((p) => ({ ...p, allowedIPs: [...p.allowedIPs] }));
  }

  async close(): Promise<void> {}
}

function setup(names: string) {
  const device = new ExclusiveDevice();
  const installed = new InstalledPeers();
  /** The store's records, by name; every one authorized. */
  const records = new Map<string, PeerGrant>();
  for (const c of names) {
    device.add(c);
    installed.setAllowedIPs(installed.add(testKey(c), 0, null, 'confirmed'), [ip(c)]);
    installed.get(testKey(c))!.recordVersion = 'v1';
    records.set(c, { allowedIPs: cidrs(ip(c)), version: 'v1' });
  }
  const admission = (k: PublicKey): AdmissionResult => {
    const grant = records.get(keyName(k));
    return grant === undefined ? { allowed: false, reason: 'unknown' } : { allowed: true, grant };
  };
  const warnings: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line) as Record<string, unknown>) });
  const metrics = createMetrics({ processMetrics: false });
  const reconciler = new Reconciler({ device, installed, metrics, log, store: { authorizeMany: async (keys) => new Map(keys.map((k) => [k.id, admission(k)])) } });
  /** Changes the record of `c`, a new version each time. */
  let version = 1;
  const change = (c: string, allowedIPs: string[]) => records.set(c, { allowedIPs: cidrs(...allowedIPs), version: `v${++version}` });
  const tableShows = (c: string) => [...(installed.get(testKey(c))?.allowedIPs ?? [])].sort();
  return { device, installed, records, admission, reconciler, change, tableShows, warnings, log, metrics };
}

describe('Reconciler: drift', () => {
  it('sets wgjit_last_reconciliation_timestamp_seconds at the end of a pass that ran through, not after one that failed', async () => {
    const { device, reconciler, metrics } = setup('ab');
    const gauge = async () => (await metrics.lastReconciliation.get()).values[0]?.value ?? 0;
    expect(await gauge()).toBe(0);
    const before = Date.now() / 1000;
    expect(await reconciler.reconcile()).not.toBeNull();
    const set = await gauge();
    expect(set).toBeGreaterThanOrEqual(before);
    expect(set).toBeLessThanOrEqual(Date.now() / 1000);
    device.listPeers = async () => {
      throw new Error('device gone');
    };
    expect(await reconciler.reconcile()).toBeNull();
    expect(await gauge()).toBe(set);
  });

  it('gives an address back to the peer whose record claims it when another peer\'s write took it, and the table shows the device', async () => {
    const { device, reconciler, tableShows } = setup('ab');
    // Behind wgjit's back (or a write since reverted): b holds a's address, a has none.
    await device.setPeers([{ publicKey: testKey('b'), allowedIPs: cidrs(ip('b'), ip('a')), replaceAllowedIPs: true }]);
    await device.setPeers([{ publicKey: testKey('b'), allowedIPs: cidrs(ip('b')), replaceAllowedIPs: true }]);
    expect(device.allowed('a')).toEqual([]);
    device.writes = [];

    expect(await reconciler.reconcile()).toMatchObject({ updated: 1 });
    expect(device.writes).toEqual([['a']]);
    expect(device.allowed('a')).toEqual([ip('a')]);
    expect(tableShows('a')).toEqual([ip('a')]);
    // Nothing left to repair: the next pass writes nothing.
    expect(await reconciler.reconcile()).toMatchObject({ updated: 0 });
    expect(device.writes).toEqual([['a']]);
  });

  it('takes in the device\'s allowed IPs on every read, rewritten or not', async () => {
    const { device, reconciler, tableShows, change } = setup('ab');
    // b's record and the device both say b has a's address too (a conflict b holds): nothing to write for a.
    change('b', [ip('b'), ip('a')]);
    await device.setPeers([{ publicKey: testKey('b'), allowedIPs: cidrs(ip('b'), ip('a')), replaceAllowedIPs: true }]);
    expect(tableShows('a')).toEqual([ip('a')]); // what wgjit wrote, until a read says otherwise
    await reconciler.reconcile();
    expect(tableShows('a')).toEqual([]);
    expect(tableShows('b')).toEqual([ip('b'), ip('a')].sort());
  });

  it('leaves a contested address with the peer holding it, every pass, and warns once per conflict', async () => {
    const { device, reconciler, change, warnings } = setup('abc');
    change('b', [ip('b'), ip('a')]);
    await device.setPeers([{ publicKey: testKey('b'), allowedIPs: cidrs(ip('b'), ip('a')), replaceAllowedIPs: true }]);
    device.writes = [];
    for (let pass = 0; pass < 3; pass++) await reconciler.reconcile();
    // b's new version (its event lost) is written once, keeping the address it holds; a is never written.
    expect(device.writes.flat()).not.toContain('a');
    expect(device.allowed('b')).toEqual([ip('b'), ip('a')].sort());
    expect(device.allowed('a')).toEqual([]);
    const conflicts = warnings.filter((w) => String(w['msg']).includes('claim one allowed IP'));
    expect(conflicts).toEqual([expect.objectContaining({ cidr: ip('a'), keeps: testKey('b').toString(), without: [testKey('a').toString()] })]);

    // Fixed in the store: a gets it back, and a conflict that comes again later is news again.
    change('b', [ip('b')]);
    await reconciler.reconcile();
    await reconciler.reconcile();
    expect(device.allowed('a')).toEqual([ip('a')]);
    change('c', [ip('c'), ip('a')]);
    await reconciler.reconcile();
    expect(device.allowed('a')).toEqual([ip('a')]); // a holds it: c is written without it
    expect(device.allowed('c')).toEqual([ip('c')]);
    expect(warnings.filter((w) => String(w['msg']).includes('claim one allowed IP')).map((w) => w['keeps'])).toEqual([testKey('b').toString(), testKey('a').toString()]);
  });

  it('a store change that narrows a peer\'s allowed IPs gives the freed address back at once, with no periodic pass', async () => {
    const { device, installed, admission, reconciler, change, tableShows, log, metrics } = setup('ab');
    let publish: (event: StoreEvent) => void = () => {};
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
        authorize: async (k) => admission(k),
      },
      onNarrowed: () => void reconciler.recheck(),
    });
    await sync.start();
    const reconciled: Array<Promise<unknown>> = [];
    const passes = () => Promise.all(reconciled);
    const recheck = reconciler.recheck.bind(reconciler);
    reconciler.recheck = () => {
      const p = recheck();
      reconciled.push(p);
      return p;
    };

    // The PATCH: b given a's address. Written at once; a loses it on the device. Nothing narrowed: no pass.
    change('b', [ip('b'), ip('a')]);
    publish({ op: 'upsert', publicKey: testKey('b') });
    await sync.close();
    expect(device.allowed('a')).toEqual([]);
    expect(reconciled).toHaveLength(0);

    // The revert: b narrowed, the pass that follows gives a its address back.
    await sync.start();
    change('b', [ip('b')]);
    publish({ op: 'upsert', publicKey: testKey('b') });
    await sync.close();
    expect(reconciled).toHaveLength(1);
    await passes();
    expect(device.allowed('a')).toEqual([ip('a')]);
    expect(device.allowed('b')).toEqual([ip('b')]);
    expect(tableShows('a')).toEqual([ip('a')]);
  });
});

describe('PeriodicPass.runAfter', () => {
  it('runs at once when idle; during a pass, queues one more that every call meanwhile shares; stop() cancels it', async () => {
    const started: number[] = [];
    let release: () => void = () => {};
    const pass = new PeriodicPass(async () => {
      started.push(started.length);
      await new Promise<void>((r) => (release = r));
      return started.length;
    });
    const first = pass.runAfter();
    expect(started).toEqual([0]);
    const second = pass.runAfter();
    const third = pass.runAfter();
    expect(second).toBe(third);
    expect(pass.run()).toBe(first); // run() shares the pass under way, as before
    release();
    expect(await first).toBe(1);
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([0, 1]);
    release();
    expect(await second).toBe(2);

    // stop() while a pass runs and one is queued: the queued one never starts.
    const running = pass.run();
    const queued = pass.runAfter();
    const stopped = pass.stop();
    release();
    await stopped;
    expect(await queued).toBe(await running);
    expect(started).toEqual([0, 1, 2]);
  });
});
