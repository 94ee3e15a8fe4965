/**
 * The fleet's part of the store against a real redis-server: holders
 * (src/fleet/holders.ts), the gateways' heartbeats (gateways.ts,
 * presence.ts), and twin admissions of one initiation (store.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { formatKey, PublicKey, publicKeyOf } from '../../src/handshake/keys.js';
import { generatePrivateKey } from '../../harness/noise/keys.js';
import { validateCreate } from '../../src/authorize/peer.js';
import { holdersKeyName, PeerStore, twinKeyName, TWIN_WINDOW_MS, type StoreEvent } from '../../src/authorize/store.js';
import { tai64nFromUnixMs } from '../../src/handshake/tai64n.js';
import { Holders, NO_TIMESTAMP } from '../../src/fleet/holders.js';
import { GatewayIdInUseError } from '../../src/fleet/gateway-id.js';
import { Gateways, HEARTBEAT_TTL_MS, type GatewayBeat } from '../../src/fleet/gateways.js';
import { Presence } from '../../src/fleet/presence.js';
import { createLogger } from '../../src/telemetry/log.js';
import { startRedis, type TestRedis } from '../support/redis.js';

const PREFIX = 'fleet-test:';
const NOW = new Date('2030-01-01T00:00:00.000Z');
const newKey = () => formatKey(publicKeyOf(generatePrivateKey()));
const pk = (text: string) => PublicKey.parse(text)!;
const ts = (ms: number) => tai64nFromUnixMs(ms);
const log = createLogger('silent');

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) if (await check()) return;
  throw new Error(`timed out waiting for ${what}`);
}

describe('the fleet in the store, on a real redis-server', () => {
  let redis: TestRedis;
  let store: PeerStore;
  let raw: Redis;
  let holders: Holders;
  let gateways: Gateways;
  const events: StoreEvent[] = [];
  let subscription: { close(): Promise<void> };

  beforeAll(async () => {
    redis = await startRedis();
    store = PeerStore.connect(redis.url, { prefix: PREFIX });
    expect(await store.whenReady()).toBe(true);
    raw = new Redis(redis.url);
    holders = new Holders(store);
    gateways = new Gateways(store);
    subscription = await store.subscribe((e) => events.push(e));
  });

  afterAll(async () => {
    await subscription?.close();
    raw?.disconnect();
    await store?.close();
    await redis?.stop();
  });

  async function registered(): Promise<string> {
    const r = validateCreate({ publicKey: newKey(), allowedIPs: ['10.0.0.2/32'] }, NOW);
    if (!r.ok) throw new Error(r.message);
    expect((await store.create(r.value)).ok).toBe(true);
    return r.value.publicKey;
  }

  describe('one initiation admitted at two gateways (a twin)', () => {
    it('is admitted once per gateway within the window, never twice at one, and only on the admission path', async () => {
      const key = pk(await registered());
      expect(await store.advanceTimestamp(key, ts(1_000_000), 'gw-a')).toBe(true);
      expect(await store.advanceTimestamp(key, ts(1_000_000), 'gw-a')).toBe(false); // a replay at the same gateway
      expect(await store.advanceTimestamp(key, ts(1_000_000))).toBe(false); // kept only: no twin
      expect(await store.advanceTimestamp(key, ts(1_000_000), 'gw-b')).toBe(true); // the copy that raced to gw-b
      expect(await store.advanceTimestamp(key, ts(1_000_000), 'gw-b')).toBe(false);
      expect(await store.advanceTimestamp(key, ts(999_000), 'gw-c')).toBe(false); // older: never
      const ttl = await raw.pttl(twinKeyName(PREFIX, key.toString()));
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(TWIN_WINDOW_MS);
    });

    it('is refused once the window is over, and a newer initiation starts a window of its own', async () => {
      const key = pk(await registered());
      expect(await store.advanceTimestamp(key, ts(2_000_000), 'gw-a')).toBe(true);
      await raw.del(twinKeyName(PREFIX, key.toString())); // the window ran out
      expect(await store.advanceTimestamp(key, ts(2_000_000), 'gw-b')).toBe(false);
      expect(await store.advanceTimestamp(key, ts(2_001_000), 'gw-b')).toBe(true);
      expect(await store.advanceTimestamp(key, ts(2_000_000), 'gw-a')).toBe(false); // the older one's window is gone with it
      expect(await store.advanceTimestamp(key, ts(2_001_000), 'gw-a')).toBe(true);
    });

    it('does not count an initiation kept for a peer installed already as an admission', async () => {
      const key = pk(await registered());
      expect(await store.advanceTimestamp(key, ts(3_000_000))).toBe(true);
      expect(await store.advanceTimestamp(key, ts(3_000_000), 'gw-b')).toBe(false);
    });
  });

  describe('holders', () => {
    const heldEvents = (key: string) => events.filter((e): e is Extract<StoreEvent, { op: 'held' }> => e.op === 'held' && e.publicKey.toString() === key);

    it('are taken by the newer session, kept by the older, and each take is announced with its gateway and timestamp', async () => {
      const key = await registered();
      const since = new Date('2030-01-01T00:00:05.000Z');
      expect(await holders.take(pk(key), 'gw-a', ts(1_000_000), since)).toEqual({ result: 'taken' });
      expect(await holders.of(key)).toEqual({ gateway: 'gw-a', since, timestamp: ts(1_000_000) });
      await until('the held event', () => heldEvents(key).length === 1);
      expect(heldEvents(key)[0]).toMatchObject({ gateway: 'gw-a', timestamp: Buffer.from(ts(1_000_000)) });

      expect(await holders.take(pk(key), 'gw-a', ts(1_000_500), new Date())).toEqual({ result: 'kept' });
      expect((await holders.of(key))?.since).toEqual(since); // kept since its first take
      // gw-b with an older session (a stale gateway) cannot take it back.
      const refused = await holders.take(pk(key), 'gw-b', ts(999_000), new Date());
      expect(refused).toMatchObject({ result: 'refused', holder: { gateway: 'gw-a' } });
      // With a newer session it can.
      expect(await holders.take(pk(key), 'gw-b', ts(1_001_000), new Date())).toEqual({ result: 'taken' });
      expect((await holders.of(key))?.gateway).toBe('gw-b');
      await until('the second held event', () => heldEvents(key).length === 2);
      expect(heldEvents(key)[1]).toMatchObject({ gateway: 'gw-b' });
      // gw-a, whose own session is older (it raised its timestamp to 1_000_500), cannot.
      expect(await holders.take(pk(key), 'gw-a', ts(1_000_500), new Date())).toMatchObject({ result: 'refused', holder: { gateway: 'gw-b' } });
    });

    it('are let go only by the holder, and go with the record', async () => {
      const key = await registered();
      await holders.take(pk(key), 'gw-a', ts(1_000_000), NOW);
      expect(await holders.release(pk(key), 'gw-b')).toBe(false);
      expect((await holders.of(key))?.gateway).toBe('gw-a');
      expect(await holders.release(pk(key), 'gw-a')).toBe(true);
      expect(await holders.of(key)).toBeNull();
      await holders.take(pk(key), 'gw-a', ts(1_000_000), NOW);
      expect(await store.delete(key)).toBe(true);
      expect(await raw.hexists(holdersKeyName(PREFIX, key.slice(0, 2)), key)).toBe(0);
      // No record, no holder.
      expect(await holders.take(pk(key), 'gw-a', ts(2_000_000), NOW)).toEqual({ result: 'gone' });
      expect(await holders.of(key)).toBeNull();
    });

    it('take an empty place weakly without telling anyone, and never a held one', async () => {
      const key = await registered();
      expect(await holders.take(pk(key), 'gw-a', null, NOW)).toEqual({ result: 'taken' });
      expect((await holders.of(key))?.timestamp).toEqual(NO_TIMESTAMP);
      expect(await holders.take(pk(key), 'gw-b', null, NOW)).toMatchObject({ result: 'refused', holder: { gateway: 'gw-a' } });
      // Any real session beats a weak take.
      expect(await holders.take(pk(key), 'gw-b', ts(1_000), NOW)).toEqual({ result: 'taken' });
      await until('the held event', () => heldEvents(key).length === 1);
      expect(heldEvents(key)).toHaveLength(1); // the weak take announced nothing
    });

    it('are read for many peers of many groups at once', async () => {
      const keys = await Promise.all(Array.from({ length: 40 }, registered));
      await Promise.all(keys.slice(0, 30).map((k, i) => holders.take(pk(k), i % 2 === 0 ? 'gw-a' : 'gw-b', ts(1_000_000), NOW)));
      const read = await holders.ofMany(keys.map(pk));
      expect(read.size).toBe(30);
      keys.slice(0, 30).forEach((k, i) => expect(read.get(pk(k).id)?.gateway).toBe(i % 2 === 0 ? 'gw-a' : 'gw-b'));
      for (const k of keys.slice(30)) expect(read.has(pk(k).id)).toBe(false);
    });
  });

  describe('gateways', () => {
    const beat = (id: string, instance: string, installedPeers = 0): GatewayBeat => ({
      id,
      instance,
      host: 'h',
      pid: 1,
      version: 't',
      publicKey: 'k',
      startedAt: new Date().toISOString(),
      heartbeatAt: new Date().toISOString(),
      installedPeers,
    });

    it('beat, list with their counts, refuse a second instance of one id, and show a clean stop as gone', async () => {
      expect(await gateways.beat(beat('gw-list-1', 'i1', 3))).toEqual({ ok: true });
      expect(await gateways.beat(beat('gw-list-2', 'i2', 5))).toEqual({ ok: true });
      const other = await gateways.beat(beat('gw-list-1', 'i9'));
      expect(other).toMatchObject({ ok: false, other: { instance: 'i1', entry: { id: 'gw-list-1', installedPeers: 3 } } });
      let listed = (await gateways.list()).filter((g) => g.id.startsWith('gw-list-'));
      expect(listed.map((g) => [g.id, g.alive, g.installedPeers])).toEqual([
        ['gw-list-1', true, 3],
        ['gw-list-2', true, 5],
      ]);
      await gateways.leave('gw-list-1', 'i9'); // not its instance: nothing
      expect(await gateways.aliveOf(['gw-list-1'])).toEqual(new Set(['gw-list-1']));
      await gateways.leave('gw-list-1', 'i1');
      listed = (await gateways.list()).filter((g) => g.id.startsWith('gw-list-'));
      expect(listed.map((g) => [g.id, g.alive])).toEqual([
        ['gw-list-2', true],
        ['gw-list-1', false],
      ]);
    });

    it('lapse three heartbeats after the last', async () => {
      await gateways.beat(beat('gw-lapse', 'i1'));
      const ttl = await raw.pttl(`${PREFIX}{fleet}:alive:gw-lapse`);
      expect(ttl).toBeGreaterThan(HEARTBEAT_TTL_MS - 1_000);
      expect(ttl).toBeLessThanOrEqual(HEARTBEAT_TTL_MS);
      await until('the heartbeat to lapse', async () => !(await gateways.aliveOf(['gw-lapse'])).has('gw-lapse'), HEARTBEAT_TTL_MS + 1_000);
    });

    it('refuse to start a second gateway with an id alive elsewhere, with a clear error', async () => {
      const first = new Presence({ gateways, id: 'gw-dup', version: 't', publicKey: 'k', installedPeers: () => 0, log });
      await first.join();
      first.start();
      try {
        const second = new Presence({ gateways, id: 'gw-dup', version: 't', publicKey: 'k', installedPeers: () => 0, log });
        const err = await second.join().then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(GatewayIdInUseError);
        expect((err as Error).message).toMatch(/--gateway-id gw-dup is in use by a gateway alive elsewhere \(host .+, pid \d+, last heartbeat [\d.]+ s ago\)/);
        // The first is untouched.
        expect((await gateways.list()).find((g) => g.id === 'gw-dup')).toMatchObject({ alive: true, instance: first.instance });
      } finally {
        await first.stop();
      }
      expect((await gateways.list()).find((g) => g.id === 'gw-dup')?.alive).toBe(false);
    });

    it('let a gateway start again with its id after a run of its own died without leaving', async () => {
      expect(await gateways.beat(beat('gw-died', 'dead-instance'))).toEqual({ ok: true }); // and never again
      const again = new Presence({ gateways, id: 'gw-died', version: 't', publicKey: 'k', installedPeers: () => 7, log });
      const started = Date.now();
      await again.join();
      expect(Date.now() - started).toBeLessThanOrEqual(HEARTBEAT_TTL_MS + 1_500);
      expect((await gateways.list()).find((g) => g.id === 'gw-died')).toMatchObject({ alive: true, instance: again.instance, installedPeers: 7 });
      await again.stop();
    });
  });
});
