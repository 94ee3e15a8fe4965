/**
 * The peer store on a real Sentinel set (test/support/redis.ts: a primary,
 * replicas, three sentinels, quorum 2) through a `redis+sentinel://` URL,
 * across a SIGKILL of the primary:
 *
 *   PeerStore + buildApp ─┐                  ┌─ primary ──▶ replica, replica
 *   subscriber ───────────┼─ sentinels (3) ──┤
 *   bin/wgjit api ────────┘                  └─ (promoted after the kill)
 *
 * While there is no primary, writes and lookups fail closed
 * (StoreUnavailableError, 503); once Sentinel promotes a replica, the same
 * store, subscriber and process work again; writes acknowledged with
 * WAIT (--redis-wait-replicas 1) before the kill are still there. Plus a
 * demoted node's READONLY as a 503, a client ended under the store, and
 * --redis-password-file against a Redis that requires a password.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { formatKey, PublicKey, publicKeyOf } from '../../src/handshake/keys.js';
import { generatePrivateKey } from '../../harness/noise/keys.js';
import { validateCreate, type PeerRecord } from '../../src/authorize/peer.js';
import { PeerStore, peerKeyName, StoreUnavailableError, type StoreEvent } from '../../src/authorize/store.js';
import { buildApp } from '../../src/api/app.js';
import { redisCommand, startRedis, startSentinelSet, waitFor, type Address, type SentinelSet, type TestRedis } from '../support/redis.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin/wgjit');
const TOKEN = 'store-sentinel-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
/** Records written (and acknowledged by a replica) before the failover. */
const BEFORE_COUNT = 20;
/** How long the store, the subscriber or the process may take to work again once Sentinel has promoted a replica. */
const RECOVERY_TIMEOUT_MS = 15_000;
/** How long an event may take to arrive. */
const EVENT_TIMEOUT_MS = 5_000;

const newKey = () => formatKey(publicKeyOf(generatePrivateKey()));
const NOW = new Date();

function record(): PeerRecord {
  const r = validateCreate({ publicKey: newKey(), allowedIPs: ['10.0.0.2/32'] }, NOW);
  if (!r.ok) throw new Error(r.message);
  return r.value;
}

const spell = (a: Address) => `${a.host}:${a.port}`;
const sentinelUrl = (set: SentinelSet) => `redis+sentinel://${set.sentinels.map(spell).join(',')}/${set.masterName}`;

/** What a call came to: its value, or the class of what it threw. */
async function outcome<T>(call: () => Promise<T>): Promise<{ ok: T } | { threw: string }> {
  try {
    return { ok: await call() };
  } catch (err) {
    return { threw: err instanceof StoreUnavailableError ? 'StoreUnavailableError' : String(err) };
  }
}

/**
 * Right after the kill, before any sentinel can have agreed the primary is
 * down (down-after is 1 s), there is no primary. `attempt` runs then; if the
 * sentinels still name the killed node once it is done, it ran while there
 * was none. Returns whether that held, so the caller asserts fail-closed
 * only when it is proved (a machine stalled past the promotion proves
 * nothing, and is reported).
 */
async function duringNoPrimary<T>(set: SentinelSet, killed: Address, attempt: () => Promise<T>): Promise<{ result: T; proved: boolean }> {
  const result = await attempt();
  const named = await set.currentPrimary().catch(() => killed);
  const proved = named.port === killed.port;
  if (!proved) console.log('[store-sentinel] the sentinels had promoted a replica before the attempt ended: fail-closed not checked this run');
  return { result, proved };
}

describe('PeerStore through redis+sentinel:// across a failover', () => {
  let set: SentinelSet;
  let store: PeerStore;
  let app: FastifyInstance;
  let subscription: { close(): Promise<void> };
  const events: StoreEvent[] = [];
  let subscriptionsReady = 0;
  const before: PeerRecord[] = [];

  const post = (body: unknown) => app.inject({ method: 'POST', url: '/v1/peers', headers: AUTH, payload: body as object });
  const sawEvent = (key: string) => waitFor(`the subscriber to receive the upsert of ${key}`, EVENT_TIMEOUT_MS, async () => events.some((e) => e.op === 'upsert' && e.publicKey.toString() === key) || undefined);

  beforeAll(async () => {
    set = await startSentinelSet({ replicas: 2 });
    store = PeerStore.connect(sentinelUrl(set), { prefix: 'ss:', waitReplicas: 1 });
    expect(await store.whenReady()).toBe(true);
    app = await buildApp({ store, token: TOKEN });
    subscription = await store.subscribe(
      (e) => events.push(e),
      () => subscriptionsReady++,
    );
  });

  afterAll(async () => {
    await subscription?.close();
    await app?.close();
    await store?.close();
    await set?.stop();
  });

  it('writes through the primary the sentinels name, each acknowledged by a replica (WAIT 1); events arrive', async () => {
    for (let i = 0; i < BEFORE_COUNT; i++) {
      const res = await post({ publicKey: newKey(), allowedIPs: ['10.0.0.2/32'] });
      expect(res.statusCode, res.body).toBe(201);
      before.push(res.json() as PeerRecord);
    }
    const primary = await set.currentPrimary();
    expect(primary).toEqual(set.primary);
    for (const r of before) {
      const key = peerKeyName('ss:', r.publicKey);
      expect(await redisCommand(primary.port, 'EXISTS', key)).toBe(1);
      // WAIT 1 answered 1: at least one replica had it when the API answered 201.
      const onReplicas = await Promise.all(set.replicas.map((rep) => redisCommand(rep.port, 'EXISTS', key) as Promise<number>));
      expect(onReplicas.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1);
    }
    await sawEvent(before[BEFORE_COUNT - 1]!.publicKey);
    expect(subscriptionsReady).toBeGreaterThanOrEqual(1);
  });

  it('fails closed while there is no primary (StoreUnavailableError, 503) and works again after the promotion, same store, same subscriber', async () => {
    const client = store.redis;
    const readyBefore = subscriptionsReady;
    const killed = await set.killPrimary();

    const gap = await duringNoPrimary(set, killed, async () => ({
      create: await outcome(() => store.create(record())),
      authorize: await outcome(() => store.authorize(PublicKey.parse(before[0]!.publicKey)!, new Date())),
      http: await post({ publicKey: newKey(), allowedIPs: ['10.0.0.3/32'] }),
    }));
    if (gap.proved) {
      expect(gap.result.create).toEqual({ threw: 'StoreUnavailableError' });
      // What the admission path counts as store_unavailable (src/pipeline.ts): a lookup that throws.
      expect(gap.result.authorize).toEqual({ threw: 'StoreUnavailableError' });
      expect(gap.result.http.statusCode).toBe(503);
      expect(gap.result.http.headers['retry-after']).toBe('1');
      expect(gap.result.http.json()).toEqual({ error: { code: 'store_unavailable', message: expect.any(String) } });
      expect(await store.ping()).toBe(false);
    }

    const promoted = await set.waitForNewPrimary(killed);
    expect(set.replicas).toContainEqual(promoted);

    // A write needs the other replica to follow the new primary (WAIT 1):
    // until Sentinel has moved it, a write is answered 503 and may be on the
    // primary, so every attempt uses a key of its own.
    const after = await waitFor('a POST through the same store to be answered 201 after the promotion', RECOVERY_TIMEOUT_MS, async () => {
      const r = record();
      const res = await post({ publicKey: r.publicKey, allowedIPs: r.allowedIPs });
      if (res.statusCode === 201) return r;
      throw new Error(`${res.statusCode} ${res.body}`);
    });
    expect(store.redis).toBe(client);
    expect(await redisCommand(promoted.port, 'EXISTS', peerKeyName('ss:', after.publicKey))).toBe(1);
    // Lookups (the admission path) have a connection of their own, which reconnects on its own schedule.
    const admitted = await waitFor('a lookup through the same store to answer after the promotion', RECOVERY_TIMEOUT_MS, () => store.authorize(PublicKey.parse(after.publicKey)!, new Date()));
    expect(admitted.allowed).toBe(true);

    // Acknowledged by a replica before the kill: Sentinel promotes the most
    // up-to-date replica, so none is lost.
    for (const r of before) {
      const res = await app.inject({ method: 'GET', url: `/v1/peers/${encodeURIComponent(r.publicKey)}`, headers: AUTH });
      expect(res.statusCode, r.publicKey).toBe(200);
      expect(res.json()).toEqual({ ...r, holder: null });
    }
    const listed = await store.list({ limit: 1000 });
    expect(listed.ok && listed.items.map((i) => i.publicKey)).toEqual(expect.arrayContaining(before.map((r) => r.publicKey)));

    // The subscriber followed too: subscribed again, and it hears a write made now.
    await waitFor('the subscriber to subscribe again after the failover', RECOVERY_TIMEOUT_MS, async () => subscriptionsReady > readyBefore || undefined);
    const late = record();
    expect(await store.create(late)).toEqual({ ok: true, record: late });
    await sawEvent(late.publicKey);
  });

  it('answers READONLY from a node that is not the primary with StoreUnavailableError and 503, not a 500', async () => {
    const primary = await set.currentPrimary();
    const replica = set.replicas.find((r) => r.port !== primary.port)!;
    expect(((await redisCommand(replica.port, 'ROLE')) as unknown[])[0]).toBe('slave');
    const onReplica = PeerStore.connect(`redis://${spell(replica)}`, { prefix: 'ss:' });
    const replicaApp = await buildApp({ store: onReplica, token: TOKEN });
    try {
      expect(await onReplica.whenReady()).toBe(true);
      await expect(onReplica.create(record())).rejects.toBeInstanceOf(StoreUnavailableError);
      const res = await replicaApp.inject({ method: 'POST', url: '/v1/peers', headers: AUTH, payload: { publicKey: newKey(), allowedIPs: ['10.0.0.4/32'] } });
      expect(res.statusCode).toBe(503);
      expect(res.json().error.code).toBe('store_unavailable');
      // Reads on a replica still answer.
      const read = await replicaApp.inject({ method: 'GET', url: `/v1/peers/${encodeURIComponent(before[0]!.publicKey)}`, headers: AUTH });
      expect(read.statusCode).toBe(200);
      expect(read.json()).toEqual({ ...before[0], holder: null });
    } finally {
      await replicaApp.close();
      await onReplica.close();
    }
  });

  it('connects a client again that ended without close()', async () => {
    const client = store.redis;
    await waitFor('the store to be connected', RECOVERY_TIMEOUT_MS, async () => (await store.ping()) || undefined);
    client.disconnect(); // as ioredis ends a client whose connector was disconnected mid-resolve
    await waitFor('the client to end', RECOVERY_TIMEOUT_MS, async () => client.status === 'end' || undefined);
    await waitFor('the ended client to be connected again by the store', RECOVERY_TIMEOUT_MS, async () => (await store.ping()) || undefined);
    expect(store.redis).toBe(client);
    // Lookups run on this connection (writes, with waitReplicas, on another).
    expect((await store.authorize(PublicKey.parse(before[0]!.publicKey)!, new Date())).allowed).toBe(true);
  });
});

interface ApiProcess {
  child: ChildProcess;
  base: string;
  /** Every line it wrote, stdout and stderr. */
  output: string[];
  stop(): Promise<number | null>;
}

/** Starts `bin/wgjit api` on a free port; resolves once it logs where it listens. */
function startApi(env: Record<string, string>): Promise<ApiProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, ['api', '--api-listen', '127.0.0.1:0'], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const output: string[] = [];
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.once('exit', (code) => reject(new Error(`wgjit api exited (${code}) before listening: ${output.join('\n')}`)));
    createInterface({ input: child.stderr! }).on('line', (line) => output.push(line));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output.push(line);
      let entry: { msg?: string; listen?: string };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        return;
      }
      if (entry.msg?.startsWith('API listening') && entry.listen !== undefined) {
        resolve({
          child,
          base: `http://${entry.listen}`,
          output,
          stop: async () => {
            child.kill('SIGTERM');
            return exited;
          },
        });
      }
    });
  });
}

async function postPeer(base: string): Promise<{ status: number; key: string; body: string }> {
  const key = newKey();
  const res = await fetch(`${base}/v1/peers`, { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json' }, body: JSON.stringify({ publicKey: key, allowedIPs: ['10.0.1.1/32'] }) });
  return { status: res.status, key, body: await res.text() };
}

/** The JSON log lines of a process with the given message. */
const logLines = (p: ApiProcess, msg: string) =>
  p.output.flatMap((l) => {
    try {
      const entry = JSON.parse(l) as { msg?: string; primary?: string };
      return entry.msg === msg ? [entry] : [];
    } catch {
      return [];
    }
  });

describe('bin/wgjit api through redis+sentinel:// across a failover', () => {
  let set: SentinelSet;
  let dir: string;
  let api: ApiProcess | undefined;

  beforeAll(async () => {
    set = await startSentinelSet({ replicas: 2 });
    dir = mkdtempSync(path.join(os.tmpdir(), 'wgjit-store-sentinel-'));
    writeFileSync(path.join(dir, 'token'), `${TOKEN}\n`);
  });

  afterAll(async () => {
    if (api !== undefined && api.child.exitCode === null) await api.stop();
    await set?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 while there is no primary and 201 again after the promotion, without a restart; it logs where it is connected', async () => {
    api = await startApi({ WGJIT_REDIS: sentinelUrl(set), WGJIT_REDIS_WAIT_REPLICAS: '1', WGJIT_API_TOKEN_FILE: path.join(dir, 'token') });
    const first = await waitFor('the first POST through wgjit api', RECOVERY_TIMEOUT_MS, async () => {
      const r = await postPeer(api!.base);
      if (r.status === 201) return r;
      throw new Error(`${r.status} ${r.body}`);
    });
    await waitFor('a "peer store connected" line naming the primary', EVENT_TIMEOUT_MS, async () => logLines(api!, 'peer store connected').some((l) => l.primary === spell(set.primary)) || undefined);

    const killed = await set.killPrimary();
    const gap = await duringNoPrimary(set, killed, () => postPeer(api!.base));
    if (gap.proved) {
      expect(gap.result.status, gap.result.body).toBe(503);
      expect(JSON.parse(gap.result.body)).toEqual({ error: { code: 'store_unavailable', message: expect.any(String) } });
      const ready = await fetch(`${api.base}/readyz`);
      expect(ready.status).toBe(503);
    }

    const promoted = await set.waitForNewPrimary(killed);
    await waitFor('a POST through the same process to be answered 201 after the promotion', RECOVERY_TIMEOUT_MS, async () => {
      const r = await postPeer(api!.base);
      if (r.status === 201) return r;
      throw new Error(`${r.status} ${r.body}`);
    });
    // Reads run on another connection than writes that wait (WAIT), which reconnects on its own schedule.
    const got = await waitFor('a GET of the peer created before the kill to be answered 200', RECOVERY_TIMEOUT_MS, async () => {
      const res = await fetch(`${api!.base}/v1/peers/${encodeURIComponent(first.key)}`, { headers: AUTH });
      if (res.status === 200) return (await res.json()) as { publicKey: string };
      throw new Error(`${res.status} ${await res.text()}`);
    });
    expect(got.publicKey).toBe(first.key);
    await waitFor('a "peer store reachable again" line naming the promoted primary', EVENT_TIMEOUT_MS, async () => logLines(api!, 'peer store reachable again').some((l) => l.primary === spell(promoted)) || undefined);
    expect(api.child.exitCode).toBeNull();
    expect(await api.stop()).toBe(0);
  });
});

describe('bin/wgjit api with --redis-password-file', () => {
  const PASSWORD = 'pw-from-file-7f3a9c';
  let redis: TestRedis;
  let dir: string;
  let api: ApiProcess | undefined;

  beforeAll(async () => {
    redis = await startRedis();
    dir = mkdtempSync(path.join(os.tmpdir(), 'wgjit-store-password-'));
    writeFileSync(path.join(dir, 'token'), `${TOKEN}\n`);
    writeFileSync(path.join(dir, 'redis-password'), `${PASSWORD}\n`);
    await redisCommand(redis.port, 'CONFIG', 'SET', 'requirepass', PASSWORD);
  });

  afterAll(async () => {
    if (api !== undefined && api.child.exitCode === null) await api.stop();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('authenticates with the password from the file, and never writes it out', async () => {
    api = await startApi({ WGJIT_REDIS: redis.url, WGJIT_API_TOKEN_FILE: path.join(dir, 'token'), WGJIT_REDIS_PASSWORD_FILE: path.join(dir, 'redis-password'), WGJIT_LOG_LEVEL: 'debug' });
    const created = await waitFor('a POST through wgjit api on a Redis that requires a password', RECOVERY_TIMEOUT_MS, async () => {
      const r = await postPeer(api!.base);
      if (r.status === 201) return r;
      throw new Error(`${r.status} ${r.body}`);
    });
    const got = await fetch(`${api.base}/v1/peers/${encodeURIComponent(created.key)}`, { headers: AUTH });
    expect(got.status).toBe(200);
    expect(await api.stop()).toBe(0);
    expect(api.output.length).toBeGreaterThan(0);
    expect(api.output.join('\n')).not.toContain(PASSWORD);
  });
});
