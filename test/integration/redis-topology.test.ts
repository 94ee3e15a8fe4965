/**
 * The Redis topologies of test/support/redis.ts, proved with the client the
 * product uses (ioredis): a Sentinel set follows a failover, a Cluster
 * spreads keys over its three primaries and survives losing one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, Redis } from 'ioredis';
import { redisCommand, startCluster, startSentinelSet, waitFor, type Address, type SentinelSet, type TestCluster } from '../support/redis.js';

/** How long a client that has been through a failover may take to write again once the topology has a new primary. */
const CLIENT_RECOVERY_TIMEOUT_MS = 15_000;
/** WAIT: how long a write may take to reach the replica. */
const REPLICATION_WAIT_MS = 2_000;
const KEY_COUNT = 300;

const keys = Array.from({ length: KEY_COUNT }, (_, i) => `topology:${i}`);

/** Reports a measured duration for docs/testing.md; never asserted. */
function report(what: string, since: number): void {
  console.log(`[redis-topology] ${what}: ${Date.now() - since} ms`);
}

describe('Redis Sentinel: one primary, one replica, three sentinels', () => {
  let set: SentinelSet;
  let client: Redis;

  beforeAll(async () => {
    const startedAt = Date.now();
    set = await startSentinelSet();
    report('Sentinel set: start until every sentinel sees the replica and the others', startedAt);
    // ioredis defaults otherwise: the test is that they follow a failover.
    client = new Redis({ sentinels: set.sentinels, name: set.masterName });
    // Reconnect failures while the primary is gone; the waits below report what matters.
    client.on('error', () => {});
  });

  afterAll(async () => {
    client?.disconnect();
    await set?.stop();
  });

  it('serves reads and writes through the primary the sentinels name', async () => {
    expect(await set.currentPrimary()).toEqual(set.primary);
    expect(await client.set('sentinel:hello', 'world')).toBe('OK');
    expect(await client.get('sentinel:hello')).toBe('world');
    // The write went to the primary and from it to the replica.
    expect(await redisCommand(set.primary.port, 'GET', 'sentinel:hello')).toBe('world');
    expect(await client.wait(1, REPLICATION_WAIT_MS)).toBe(1);
    expect(await redisCommand(set.replica.port, 'GET', 'sentinel:hello')).toBe('world');
  });

  it('follows a failover: after SIGKILL of the primary the replica is promoted and the same client writes again', async () => {
    expect(await client.set('sentinel:before', 'acknowledged')).toBe('OK');
    expect(await client.wait(1, REPLICATION_WAIT_MS)).toBe(1);

    const killedAt = Date.now();
    const killed = await set.killPrimary();
    expect(killed).toEqual(set.primary);
    const promoted = await set.waitForNewPrimary(killed);
    report('Sentinel: SIGKILL to every sentinel naming the promoted replica', killedAt);
    expect(promoted).toEqual(set.replica);

    await waitFor('the same ioredis client to write through the promoted primary', CLIENT_RECOVERY_TIMEOUT_MS, async () => (await client.set('sentinel:after', 'written')) === 'OK' || undefined);
    report('Sentinel: SIGKILL to the first write of the same client', killedAt);

    expect(await redisCommand(promoted.port, 'GET', 'sentinel:after')).toBe('written');
    // Acknowledged by the replica before the kill (WAIT 1), so not lost.
    expect(await client.get('sentinel:before')).toBe('acknowledged');
  });
});

/** The shard whose slot range holds `slot`. */
function shardOf(cluster: TestCluster, slot: number): number {
  const index = cluster.shards.findIndex(({ slots: [first, last] }) => slot >= first && slot <= last);
  if (index < 0) throw new Error(`no shard serves slot ${slot}`);
  return index;
}

/** One SET per key: an ioredis Cluster pipeline must keep to one node's slots. */
async function writeAll(client: Cluster, value: string): Promise<void> {
  const replies = await Promise.all(keys.map((key) => client.set(key, value)));
  expect(replies.every((r) => r === 'OK')).toBe(true);
}

async function expectAll(client: Cluster, which: string[], value: string): Promise<void> {
  const values = await Promise.all(which.map((key) => client.get(key)));
  expect(which.filter((_, i) => values[i] !== value), `keys not holding "${value}"`).toEqual([]);
}

/** Every key is on the primary of the shard its slot belongs to, and on no other primary; every primary holds some. */
async function expectSpreadOverAllPrimaries(cluster: TestCluster, client: Cluster): Promise<void> {
  const primaries = cluster.shards.map((s) => s.primary);
  const held = await Promise.all(primaries.map((p) => redisCommand(p.port, 'DBSIZE') as Promise<number>));
  for (const [i, count] of held.entries()) expect(count, `keys on shard ${i}'s primary`).toBeGreaterThan(0);
  expect(held.reduce((a, b) => a + b, 0)).toBe(KEY_COUNT);

  for (const key of keys) {
    const slot = (await client.call('CLUSTER', 'KEYSLOT', key)) as number;
    const owner = shardOf(cluster, slot);
    await expect(redisCommand(primaries[owner]!.port, 'EXISTS', key), `${key} (slot ${slot}) on shard ${owner}'s primary`).resolves.toBe(1);
    // A node asked for a key of a slot it does not serve answers MOVED.
    for (const [i, other] of primaries.entries()) {
      if (i !== owner) await expect(redisCommand(other.port, 'EXISTS', key)).rejects.toThrow(/MOVED/);
    }
  }
}

/** A Cluster and one client of it for the describe block it is called in. */
function useCluster(replicasPerPrimary: 0 | 1, label: string): () => { cluster: TestCluster; client: Cluster } {
  let cluster: TestCluster;
  let client: Cluster;

  beforeAll(async () => {
    const startedAt = Date.now();
    cluster = await startCluster({ primaries: 3, replicasPerPrimary });
    report(`Cluster, ${label}: start until cluster_state:ok on every node`, startedAt);
    client = new Cluster(cluster.nodes);
    client.on('error', () => {});
  });

  afterAll(async () => {
    client?.disconnect();
    await cluster?.stop();
  });

  return () => ({ cluster, client });
}

describe('Redis Cluster: three primaries, no replicas', () => {
  const current = useCluster(0, 'no replicas');

  it('spreads keys over all three primaries by slot', async () => {
    const { cluster, client } = current();
    await writeAll(client, 'spread');
    await expectSpreadOverAllPrimaries(cluster, client);
    await expectAll(client, keys, 'spread');
  });
});

describe('Redis Cluster: three primaries with a replica each', () => {
  const current = useCluster(1, 'a replica each');

  it('spreads keys over all three primaries and survives SIGKILL of one: its replica is promoted and the same client reads and writes its slots', async () => {
    const { cluster, client } = current();
    await writeAll(client, 'before');
    await expectSpreadOverAllPrimaries(cluster, client);
    await cluster.waitForReplication();

    const victim = 0;
    const victimKeys: string[] = [];
    for (const key of keys) {
      if (shardOf(cluster, (await client.call('CLUSTER', 'KEYSLOT', key)) as number) === victim) victimKeys.push(key);
    }
    expect(victimKeys.length).toBeGreaterThan(0);

    const killedAt = Date.now();
    const killed: Address = await cluster.killPrimary(victim);
    const promoted = await cluster.waitForPromotion(victim);
    report('Cluster: SIGKILL to the replica promoted and cluster_state:ok everywhere', killedAt);
    expect(promoted).toEqual(cluster.shards[victim]!.replicas[0]);
    expect(promoted.port).not.toBe(killed.port);

    await waitFor(`the same Cluster client to write ${victimKeys[0]} (slot of the killed primary)`, CLIENT_RECOVERY_TIMEOUT_MS, async () => (await client.set(victimKeys[0]!, 'after')) === 'OK' || undefined);
    report('Cluster: SIGKILL to the first write of the same client to the lost slots', killedAt);
    expect(await redisCommand(promoted.port, 'GET', victimKeys[0]!)).toBe('after');

    // Replicated before the kill, so every other key is still there.
    await expectAll(client, keys.filter((k) => k !== victimKeys[0]), 'before');
  });
});
