/**
 * PeerStore on a real Redis Cluster (test/support/redis.ts: three primaries
 * with a replica each): every script runs (each touches one slot), listing
 * walks the groups across nodes, events reach a subscriber from every
 * node by sharded pub/sub, and all of it goes on after a primary is killed
 * and its replica promoted.
 */
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateCreate, type PeerRecord } from '../../src/authorize/peer.js';
import { PeerStore, StoreUnavailableError, type StoreEvent } from '../../src/authorize/store.js';
import { formatKey, PublicKey, publicKeyOf } from '../../src/handshake/keys.js';
import { tai64nFromUnixMs } from '../../src/handshake/tai64n.js';
import { generatePrivateKey } from '../../harness/noise/keys.js';
import { createLogger } from '../../src/telemetry/log.js';
import { redisCommand, startCluster, waitFor, type TestCluster } from '../support/redis.js';

const NOW = new Date('2030-01-01T00:00:00.000Z');
const PREFIX = 'sc:';
const newKey = () => formatKey(publicKeyOf(generatePrivateKey()));
const pk = (text: string) => PublicKey.parse(text)!;

function record(fields: Record<string, unknown> = {}): PeerRecord {
  const r = validateCreate({ publicKey: newKey(), allowedIPs: ['10.0.0.2/32'], ...fields }, NOW);
  if (!r.ok) throw new Error(r.message);
  return r.value;
}

/** Which shard (as formed) serves the slot of a peer's names. */
async function shardOfKey(cluster: TestCluster, publicKey: string): Promise<number> {
  const slot = Number(await redisCommand(cluster.nodes[0]!.port, 'CLUSTER', 'KEYSLOT', `${PREFIX}{${publicKey.slice(0, 2)}}:peer:${publicKey}`));
  return cluster.shards.findIndex((s) => slot >= s.slots[0] && slot <= s.slots[1]);
}

describe('PeerStore on a real Redis Cluster', () => {
  let cluster: TestCluster;
  let store: PeerStore;
  const records: PeerRecord[] = [];
  const events: Array<{ op: StoreEvent['op']; publicKey: string }> = [];
  let sub: { close(): Promise<void> };
  /** The store's log lines (component "store"), parsed. */
  const logged: Array<{ level: string; msg: string; err?: string; downSeconds?: number }> = [];
  const storeLog = createLogger('info', { write: (line: string) => void logged.push(JSON.parse(line)) });

  beforeAll(async () => {
    cluster = await startCluster({ primaries: 3, replicasPerPrimary: 1 });
    // As the daemon connects: --redis redis+cluster://node,node,… (any of them would do).
    store = PeerStore.connect(`redis+cluster://${cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`, { prefix: PREFIX, log: storeLog });
    expect(store.redis).toBeInstanceOf(Cluster);
    expect(await store.whenReady(10_000)).toBe(true);
    sub = await store.subscribe((e) => events.push({ op: e.op, publicKey: e.publicKey.toString() }));
  }, 60_000);

  afterAll(async () => {
    await sub?.close();
    await store?.close();
    await cluster?.stop();
  });

  it('creates, reads, lists, updates and deletes across all three primaries, one slot per script', async () => {
    for (let i = 0; i < 300; i++) records.push(record());
    for (const r of records) expect(await store.create(r)).toEqual({ ok: true, record: r });
    const shards = await Promise.all(records.map((r) => shardOfKey(cluster, r.publicKey)));
    expect(new Set(shards)).toEqual(new Set([0, 1, 2]));
    expect(await store.create(records[0]!)).toEqual({ ok: false, reason: 'exists' });

    // Listing walks 4,096 groups spread over three nodes, in key order.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await store.list({ limit: 70, cursor });
      if (!page.ok) throw new Error('bad cursor');
      seen.push(...page.items.map((r) => r.publicKey));
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(seen).toEqual(records.map((r) => r.publicKey).sort());

    const answers = await store.authorizeMany(records.map((r) => pk(r.publicKey)), NOW);
    expect([...answers.values()].every((a) => a.allowed)).toBe(true);
    const [a, b] = records;
    expect(await store.update(a!.publicKey, { disabled: true })).toMatchObject({ ok: true, record: { disabled: true } });
    expect(await store.authorize(pk(a!.publicKey), NOW)).toEqual({ allowed: false, reason: 'disabled' });
    expect(await store.advanceTimestamp(pk(b!.publicKey), tai64nFromUnixMs(1_000_000))).toBe(true);
    expect(await store.advanceTimestamp(pk(b!.publicKey), tai64nFromUnixMs(1_000_000))).toBe(false);
    expect(await store.delete(b!.publicKey)).toBe(true);
    expect(await store.get(b!.publicKey)).toBeNull();
    expect(await store.advanceTimestamp(pk(b!.publicKey), tai64nFromUnixMs(999_000))).toBe(false); // the tombstone
    records.splice(1, 1);
  });

  it('delivers every change to one subscriber, from each of the three nodes (sharded pub/sub)', async () => {
    await waitFor('the events of the first test', 10_000, async () => (events.length >= 300 + 2 ? true : undefined));
    const upserts = new Set(events.filter((e) => e.op === 'upsert').map((e) => e.publicKey));
    expect(upserts.size).toBe(300);
    expect(events.filter((e) => e.op === 'delete')).toHaveLength(1);
  });

  it('after its primary is killed and the replica promoted, a shard serves again: reads, writes and events', async () => {
    const shards = await Promise.all(records.map((r) => shardOfKey(cluster, r.publicKey)));
    /** One record on each shard. */
    const perShard = [0, 1, 2].map((n) => records[shards.indexOf(n)]!);
    const victim = perShard[0]!;
    const acknowledged = await store.get(victim.publicKey);
    await cluster.waitForReplication();
    const logBefore = logged.length;
    const killed = await cluster.killPrimary(0);
    // While no primary serves the shard: the store fails closed (StoreUnavailableError), it never hangs.
    const during = await store.get(victim.publicKey).then(
      () => 'answered',
      (err: unknown) => (err instanceof StoreUnavailableError ? 'unavailable' : `other: ${String(err)}`),
    );
    expect(['answered', 'unavailable']).toContain(during);
    await cluster.waitForPromotion(0);

    await waitFor('the store to read the shard again', 20_000, async () => ((await store.get(victim.publicKey).catch(() => null)) !== null ? true : undefined));
    expect(await store.get(victim.publicKey)).toEqual(acknowledged); // written and replicated before the kill
    // Writes on every shard, and their events from every node: the subscriber followed the slots.
    const before = events.length;
    await waitFor('writes and events on every shard after the failover', 20_000, async () => {
      for (const r of perShard) await store.update(r.publicKey, { persistentKeepalive: 25 }).catch(() => undefined);
      const heard = new Set(events.slice(before).map((e) => e.publicKey));
      return perShard.every((r) => heard.has(r.publicKey)) ? true : undefined;
    });
    for (const r of perShard) expect(await store.get(r.publicKey)).toMatchObject({ persistentKeepalive: 25 });

    // In the log, one outage: lost (the heartbeat found the primary gone), back once the slot map had the promoted replica.
    const since = () => logged.slice(logBefore);
    const back = await waitFor('the "reachable again" line', 20_000, async () => since().find((l) => l.msg === 'peer store reachable again'));
    expect(back.downSeconds).toBeGreaterThan(0);
    const lost = since().filter((l) => l.msg === 'peer store unreachable');
    expect(lost).toHaveLength(1);
    expect(lost[0]!.err).toContain(`Cluster node ${killed.host}:${killed.port} `);
    expect(since().filter((l) => l.msg === 'peer store reachable again')).toHaveLength(1);
  }, 120_000);
});
