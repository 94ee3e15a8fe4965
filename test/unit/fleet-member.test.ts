/**
 * This gateway's part in the fleet's holders (src/fleet/member.ts), the
 * confirmation watch that feeds it (src/lifecycle/confirmer.ts), and the
 * routes that follow confirmed peers (src/route/route-sync.ts): pure
 * logic over a table and holders held in memory. The real store's side is
 * test/integration/fleet-store.test.ts; the fleet end to end,
 * test/integration/fleet.test.ts.
 */
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Holder, TakeResult } from '../../src/fleet/holders.js';
import { FleetMember, movedAway } from '../../src/fleet/member.js';
import { PublicKey } from '../../src/handshake/keys.js';
import type { PeerStatus } from '../../src/install/device.js';
import { Confirmer, CONFIRM_FIRST_CHECK_MS } from '../../src/lifecycle/confirmer.js';
import { InstalledPeers, type InstalledPeer } from '../../src/lifecycle/installed.js';
import type { Removal } from '../../src/lifecycle/removal.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { RouteSync } from '../../src/route/route-sync.js';
import type { Cidr } from '../../src/net/cidr.js';
import { tai64nFromUnixMs } from '../../src/handshake/tai64n.js';
import { keyName, testKey } from '../support/keys.js';

const ts = (ms: number) => tai64nFromUnixMs(ms);
const log = pino({ level: 'silent' });

describe('movedAway', () => {
  const holder = (gateway: string, ms: number): Pick<Holder, 'gateway' | 'timestamp'> => ({ gateway, timestamp: ts(ms) });
  it('is true only for another gateway whose session is no older than ours', () => {
    expect(movedAway({ timestamp: ts(1000) }, holder('b', 2000), 'a')).toBe(true);
    expect(movedAway({ timestamp: ts(1000) }, holder('b', 1000), 'a')).toBe(true); // the same initiation, confirmed there
    expect(movedAway({ timestamp: ts(2000) }, holder('b', 1000), 'a')).toBe(false); // ours is newer: its take follows
    expect(movedAway({ timestamp: ts(1000) }, holder('a', 5000), 'a')).toBe(false); // ours
    expect(movedAway({ timestamp: null }, holder('b', 1), 'a')).toBe(true); // adopted: yields to any holder
  });
});

/** Holders in memory, with TAKE_LUA's rules, recording what was asked. */
class MemoryHolders {
  readonly held = new Map<string, Holder>();
  readonly released: string[] = [];
  failing = false;

  async take(key: PublicKey, gateway: string, timestamp: Uint8Array | null, since: Date): Promise<TakeResult> {
    if (this.failing) throw new Error('store down');
    const cur = this.held.get(key.id);
    const t = timestamp ?? new Uint8Array(12);
    if (cur !== undefined) {
      if (cur.gateway === gateway) return { result: 'kept' };
      if (timestamp === null || Buffer.compare(t, cur.timestamp) < 0) return { result: 'refused', holder: cur };
    }
    this.held.set(key.id, { gateway, since, timestamp: t });
    return { result: 'taken' };
  }

  async release(key: PublicKey, gateway: string): Promise<boolean> {
    this.released.push(keyName(key));
    if (this.held.get(key.id)?.gateway !== gateway) return false;
    return this.held.delete(key.id);
  }

  async of(publicKey: string): Promise<Holder | null> {
    return this.held.get(PublicKey.parse(publicKey)!.id) ?? null;
  }

  async ofMany(keys: readonly PublicKey[]): Promise<Map<string, Holder>> {
    return new Map(keys.flatMap((k) => (this.held.has(k.id) ? [[k.id, this.held.get(k.id)!] as const] : [])));
  }
}

function setup(gatewayId = 'gw-a') {
  const holders = new MemoryHolders();
  const removed: Removal[][] = [];
  const metrics = createMetrics({ processMetrics: false });
  const installed = new InstalledPeers();
  const member = new FleetMember({
    gatewayId,
    holders,
    installed,
    remove: async (removals) => {
      removed.push(removals);
      for (const r of removals) installed.delete(r.publicKey);
    },
    log,
    metrics,
  });
  installed.listen(member);
  const install = (name: string, ms: number | null, state: 'provisional' | 'confirmed' = 'provisional'): InstalledPeer => {
    const peer = installed.add(testKey(name), Date.now(), null, state);
    peer.timestamp = ms === null ? null : ts(ms);
    return peer;
  };
  const settle = () => new Promise((r) => setTimeout(r, 0));
  return { holders, removed, installed, member, install, settle, metrics };
}

describe('FleetMember', () => {
  it('takes a peer when its install is confirmed, not before', async () => {
    const t = setup();
    t.install('a', 1000);
    await t.settle();
    expect(t.holders.held.size).toBe(0); // provisional: nothing
    t.installed.confirm(testKey('a'));
    await t.settle();
    expect(t.holders.held.get(testKey('a').id)).toMatchObject({ gateway: 'gw-a', timestamp: ts(1000) });
  });

  it('lets go of a peer however it leaves', async () => {
    const t = setup();
    t.install('a', 1000, 'provisional');
    t.installed.confirm(testKey('a'));
    await t.settle();
    t.installed.delete(testKey('a'));
    await t.settle();
    expect(t.holders.released).toEqual(['a']);
    expect(t.holders.held.size).toBe(0);
  });

  it('removes a peer another gateway took with a session no older than ours, and keeps one whose take was older', async () => {
    const t = setup();
    t.install('a', 1000, 'confirmed');
    t.install('b', 5000, 'provisional'); // a client that just came here
    t.holders.held.set(testKey('a').id, { gateway: 'gw-b', since: new Date(), timestamp: ts(2000) });
    t.member.held({ op: 'held', publicKey: testKey('a'), gateway: 'gw-b', timestamp: ts(2000) });
    t.member.held({ op: 'held', publicKey: testKey('b'), gateway: 'gw-b', timestamp: ts(2000) });
    t.member.held({ op: 'held', publicKey: testKey('c'), gateway: 'gw-b', timestamp: ts(2000) }); // not here
    await t.settle();
    expect(t.removed.map((batch) => batch.map((r) => [keyName(r.publicKey), r.reason, r.holder]))).toEqual([[['a', 'moved', 'gw-b']]]);
    expect(t.installed.has(testKey('b'))).toBe(true);
  });

  it("acts on an event only once the store confirms it (another fleet's, on another database of the server, does not)", async () => {
    const t = setup();
    t.install('a', 1000, 'confirmed');
    t.holders.held.set(testKey('a').id, { gateway: 'gw-a', since: new Date(), timestamp: ts(1000) });
    t.member.held({ op: 'held', publicKey: testKey('a'), gateway: 'gw-b', timestamp: ts(2000) });
    await t.settle();
    await t.settle();
    expect(t.removed).toEqual([]);
    expect(t.installed.has(testKey('a'))).toBe(true);
  });

  it('ignores its own take', async () => {
    const t = setup();
    t.install('a', 1000, 'confirmed');
    t.member.held({ op: 'held', publicKey: testKey('a'), gateway: 'gw-a', timestamp: ts(9000) });
    await t.settle();
    expect(t.removed).toEqual([]);
  });

  it('removes its peer when its own take is refused for a newer session elsewhere', async () => {
    const t = setup();
    t.holders.held.set(testKey('a').id, { gateway: 'gw-b', since: new Date(), timestamp: ts(2000) });
    t.install('a', 1000);
    t.installed.confirm(testKey('a'));
    await t.settle();
    await t.settle();
    expect(t.removed.flat().map((r) => [keyName(r.publicKey), r.reason])).toEqual([['a', 'moved']]);
  });

  it('reconciles: what moved goes, confirmed peers nobody holds are taken (weakly when adopted), provisional ones are not', async () => {
    const t = setup();
    t.install('moved', 1000, 'confirmed');
    t.holders.held.set(testKey('moved').id, { gateway: 'gw-b', since: new Date(), timestamp: ts(1500) });
    t.install('mine', 1000, 'confirmed');
    t.holders.held.set(testKey('mine').id, { gateway: 'gw-a', since: new Date(), timestamp: ts(1000) });
    t.install('unheld', 3000, 'confirmed');
    t.install('adopted', null, 'confirmed');
    t.install('new', 4000, 'provisional');
    expect(await t.member.reconcile()).toEqual({ moved: 1, taken: 2 });
    expect(t.installed.has(testKey('moved'))).toBe(false);
    expect(t.holders.held.get(testKey('unheld').id)).toMatchObject({ gateway: 'gw-a', timestamp: ts(3000) });
    expect(t.holders.held.get(testKey('adopted').id)).toMatchObject({ gateway: 'gw-a', timestamp: new Uint8Array(12) });
    expect(t.holders.held.has(testKey('new').id)).toBe(false);
  });

  it('counts a take the store could not answer, and tries again at the next reconciliation', async () => {
    const t = setup();
    t.holders.failing = true;
    t.install('a', 1000);
    t.installed.confirm(testKey('a'));
    await t.settle();
    expect((await t.metrics.holds.get()).values.find((v) => v.labels['result'] === 'failed')?.value).toBe(1);
    t.holders.failing = false;
    expect(await t.member.reconcile()).toEqual({ moved: 0, taken: 1 });
  });
});

describe('Confirmer', () => {
  beforeEach(() => vi.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => vi.useRealTimers());

  /** A device whose reads answer `statuses` and count themselves, each taking `readMs`. */
  function device(statuses: Map<string, PeerStatus>, readMs = 0) {
    const d = {
      reads: 0,
      async listPeers(): Promise<PeerStatus[]> {
        d.reads++;
        if (readMs > 0) await new Promise((r) => setTimeout(r, readMs));
        return [...statuses.values()];
      },
    };
    return d;
  }
  const status = (name: string, lastHandshakeAt: number | null): PeerStatus => ({
    publicKey: testKey(name),
    allowedIPs: [],
    persistentKeepalive: 0,
    lastHandshakeAt,
    rxBytes: 0n,
    txBytes: 0n,
    hasPresharedKey: false,
  });

  it('confirms a peer at the first read after its client completed a handshake, and then reads no more', async () => {
    const confirmed: string[] = [];
    const installed = new InstalledPeers();
    installed.listen({ confirmed: (p) => confirmed.push(keyName(p.publicKey)) });
    const statuses = new Map([[testKey('a').id, status('a', null)]]);
    const d = device(statuses);
    const c = new Confirmer({ device: d, installed, metrics: createMetrics({ processMetrics: false }), log, graceMs: 15_000 });
    installed.add(testKey('a'), Date.now(), null);
    c.watch(testKey('a'));
    await vi.advanceTimersByTimeAsync(CONFIRM_FIRST_CHECK_MS);
    expect(d.reads).toBe(1);
    expect(confirmed).toEqual([]);
    statuses.set(testKey('a').id, status('a', Date.now()));
    await vi.advanceTimersByTimeAsync(2 * CONFIRM_FIRST_CHECK_MS);
    expect(d.reads).toBe(2);
    expect(confirmed).toEqual(['a']);
    expect(installed.get(testKey('a'))?.state).toBe('confirmed');
    expect(c.size).toBe(0);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(d.reads).toBe(2);
    await c.close();
  });

  it('looks at doubling gaps and gives up at the grace, one read serving every peer awaiting', async () => {
    const installed = new InstalledPeers();
    const d = device(new Map([[testKey('a').id, status('a', null)], [testKey('b').id, status('b', null)]]));
    const c = new Confirmer({ device: d, installed, metrics: createMetrics({ processMetrics: false }), log, graceMs: 15_000 });
    for (const name of ['a', 'b']) {
      installed.add(testKey(name), Date.now(), null);
      c.watch(testKey(name));
    }
    await vi.advanceTimersByTimeAsync(16_000);
    // 50, 150, 350, 750, 1,550, 3,150, 6,350 and 12,750 ms: 8 looks for both peers together, then none.
    expect(d.reads).toBe(8);
    expect(c.size).toBe(0);
    await c.close();
  });

  it('spends at most its share of the time reading a slow device', async () => {
    const installed = new InstalledPeers();
    const d = device(new Map(), 400);
    const c = new Confirmer({ device: d, installed, metrics: createMetrics({ processMetrics: false }), log, graceMs: 15_000 });
    // A new install every 50 ms: always a peer due.
    for (let i = 0; i < 60; i++) {
      installed.add(testKey(`p${i}`), Date.now(), null);
      c.watch(testKey(`p${i}`));
      await vi.advanceTimersByTimeAsync(50);
    }
    // 3 s: reads of 400 ms each, then 1,200 ms of rest: at most 3.
    expect(d.reads).toBeLessThanOrEqual(3);
    expect(d.reads).toBeGreaterThanOrEqual(2);
    await c.close();
  });
});

describe('RouteSync', () => {
  /** A route table in memory: the calls it got, as CIDR text. */
  function table() {
    const t = {
      calls: [] as Array<[string, string[]]>,
      routes: new Set<string>(),
      async add(cidrs: readonly Cidr[]) {
        t.calls.push(['add', cidrs.map((c) => c.text)]);
        for (const c of cidrs) t.routes.add(c.text);
        return { changed: cidrs.length, failed: [] };
      },
      async remove(cidrs: readonly Cidr[]) {
        t.calls.push(['remove', cidrs.map((c) => c.text)]);
        for (const c of cidrs) t.routes.delete(c.text);
        return { changed: cidrs.length, failed: [] };
      },
      async reconcile(wanted: readonly Cidr[]) {
        const want = new Set(wanted.map((c) => c.text));
        const removed = [...t.routes].filter((r) => !want.has(r));
        const added = [...want].filter((r) => !t.routes.has(r));
        t.routes = want;
        return { added: added.length, removed: removed.length, kept: want.size - added.length, failed: [] };
      },
    };
    return t;
  }
  function setup() {
    const routes = table();
    const installed = new InstalledPeers();
    const sync = new RouteSync(routes, installed, log, createMetrics({ processMetrics: false }));
    installed.listen(sync);
    const add = (name: string, ips: string[]) => {
      const peer = installed.add(testKey(name), Date.now(), null);
      installed.setAllowedIPs(peer, ips);
      return peer;
    };
    return { routes, installed, sync, add };
  }

  it('routes a peer once its client confirms, not at install, in one batch per turn', async () => {
    const t = setup();
    t.add('a', ['10.0.0.2/32']);
    t.add('b', ['10.0.0.3/32', 'fd00::3/128']);
    await t.sync.idle();
    expect(t.routes.calls).toEqual([]);
    t.installed.confirm(testKey('a'));
    t.installed.confirm(testKey('b'));
    await t.sync.idle();
    expect(t.routes.calls).toEqual([['add', ['10.0.0.2/32', '10.0.0.3/32', 'fd00::3/128']]]);
  });

  it('follows a confirmed peer\'s allowed IPs, and removes its routes with it', async () => {
    const t = setup();
    const a = t.add('a', ['10.0.0.2/32', '10.0.0.4/32']);
    t.installed.confirm(testKey('a'));
    await t.sync.idle();
    t.installed.setAllowedIPs(a, ['10.0.0.4/32', '10.0.0.5/32']);
    await t.sync.idle();
    expect([...t.routes.routes].sort()).toEqual(['10.0.0.4/32', '10.0.0.5/32']);
    t.installed.delete(testKey('a'));
    await t.sync.idle();
    expect(t.routes.routes.size).toBe(0);
  });

  it('sends nothing for a provisional peer that leaves, and leaves the route another peer has', async () => {
    const t = setup();
    t.add('a', ['10.0.0.2/32']);
    t.installed.confirm(testKey('a'));
    await t.sync.idle();
    t.add('copy', ['10.0.0.2/32']); // never confirmed
    t.installed.delete(testKey('copy'));
    await t.sync.idle();
    expect(t.routes.calls).toEqual([['add', ['10.0.0.2/32']]]);
    expect([...t.routes.routes]).toEqual(['10.0.0.2/32']);
  });

  it('keeps the route of an address one confirmed peer lost to another (two records claiming it), in either order', async () => {
    for (const order of ['gain first', 'loss first']) {
      const t = setup();
      const a = t.add('a', ['10.0.0.2/32']);
      const b = t.add('b', ['10.0.0.3/32']);
      t.installed.confirm(testKey('a'));
      t.installed.confirm(testKey('b'));
      await t.sync.idle();
      // B's write took A's address on the device: both changes in one turn.
      if (order === 'gain first') {
        t.installed.setAllowedIPs(b, ['10.0.0.3/32', '10.0.0.2/32']);
        t.installed.setAllowedIPs(a, []);
      } else {
        t.installed.setAllowedIPs(a, []);
        t.installed.setAllowedIPs(b, ['10.0.0.3/32', '10.0.0.2/32']);
      }
      await t.sync.idle();
      expect([...t.routes.routes].sort()).toEqual(['10.0.0.2/32', '10.0.0.3/32']);
    }
  });

  it('reconciles the table to the confirmed peers only', async () => {
    const t = setup();
    t.add('a', ['10.0.0.2/32']);
    t.add('b', ['10.0.0.3/32']); // provisional
    t.installed.confirm(testKey('a'));
    await t.sync.idle();
    // The interface went down and took the route along; a stray of ours is left from an earlier run.
    t.routes.routes = new Set(['10.9.9.9/32']);
    expect(await t.sync.reconcile()).toMatchObject({ added: 1, removed: 1 });
    expect([...t.routes.routes]).toEqual(['10.0.0.2/32']);
  });
});
