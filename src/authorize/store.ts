/**
 * The peer store: Redis, one JSON value per peer plus a sorted-set index.
 * Schema and events: docs/store-schema.md.
 *
 * Every mutation is one Lua script, so the value, the index and the event
 * change together or not at all, also with many API processes writing.
 * A Redis that cannot be reached surfaces as StoreUnavailableError, quickly,
 * so the API answers 503 and the admission path counts it, instead of a
 * request waiting in a queue for a connection that may not come back.
 */
import { createHash } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { normalizeKey, PublicKey } from '../handshake/keys.js';
import { admission, decodeRecord, type AdmissionResult, type PeerPatch, type PeerRecord, type StoredPeer } from './peer.js';
import { CLUSTER_NOT_SUPPORTED, DEFAULT_WAIT_REPLICAS, describeRedisTarget, MAX_WAIT_REPLICAS, parseRedisUrl, type RedisTarget } from './redis-url.js';

export const DEFAULT_PREFIX = 'wgjit:';
export const DEFAULT_LIST_LIMIT = 100;
/** One page is one ZRANGEBYLEX + one MGET: 1000 records is ~300 KB, still one round trip. */
export const MAX_LIST_LIMIT = 1000;
/** Keys per MGET in authorizeMany: big enough to amortize the round trip, small enough not to stall Redis. */
export const MAX_BATCH_KEYS = 1000;

/** How long one command may wait for its reply: a WireGuard client resends its initiation after 5 s. */
export const REDIS_COMMAND_TIMEOUT_MS = 1000;
/** How long one TCP connect attempt may take before it counts as failed and is retried. */
export const REDIS_CONNECT_TIMEOUT_MS = 2000;
/** Reconnect backoff: 100 ms, 200 ms, ... capped here, forever, so an outage heals by itself. */
export const REDIS_RETRY_STEP_MS = 100;
export const REDIS_RETRY_MAX_DELAY_MS = 1000;
/**
 * How long a write waits for --redis-wait-replicas replicas to acknowledge
 * it (WAIT's timeout). Below REDIS_COMMAND_TIMEOUT_MS, so a WAIT that runs
 * out answers "too few" rather than timing out on the client.
 */
export const REDIS_WAIT_TIMEOUT_MS = 500;

/** A store change, as subscribe() hands it on (published as JSON with the key in base64). */
export type StoreEvent = { op: 'upsert' | 'delete'; publicKey: PublicKey };

export type CreateResult = { ok: true; record: PeerRecord } | { ok: false; reason: 'exists' };
export type UpdateResult = { ok: true; record: PeerRecord } | { ok: false; reason: 'not_found' };
export type ListResult = { ok: true; items: PeerRecord[]; nextCursor: string | null } | { ok: false; reason: 'bad_cursor' };

/** Redis could not be reached (or answered that it cannot serve now). The API answers 503. */
export class StoreUnavailableError extends Error {
  override readonly name: string = 'StoreUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * The write reached the primary, but fewer replicas than --redis-wait-replicas
 * acknowledged it within REDIS_WAIT_TIMEOUT_MS: a failover now could lose it.
 * A kind of unavailability (503): the caller should check and try again.
 */
export class StoreUnreplicatedError extends StoreUnavailableError {
  override readonly name: string = 'StoreUnreplicatedError';
}

/** A value under our prefix that is not a record we wrote (hand edits, another program). */
export class StoreCorruptError extends Error {
  override readonly name = 'StoreCorruptError';
}

export interface PeerStoreOptions {
  /** Namespace for every key and the event channel. Default 'wgjit:'. */
  prefix?: string;
  /** Where connection problems are reported (ioredis 'error' events). */
  log?: Logger;
  /**
   * Replicas that must acknowledge an API write (create, update, delete;
   * WAIT on a connection of its own) before it is answered. Default 0: no
   * wait. The admission path never waits.
   */
  waitReplicas?: number;
}

/** What PeerStore.connect takes beyond the store's options. */
export interface ConnectOptions extends PeerStoreOptions {
  /** The password from --redis-password-file, for Redis and the sentinels; the URL must then hold none. */
  password?: string;
  /** ioredis options over the ones connect() derives (tests). */
  redis?: RedisOptions;
}

/** The ioredis options PeerStore.connect uses; each says why it differs from the default. */
export const REDIS_OPTIONS: RedisOptions = {
  // Default false too, spelled out: connect now, so the first admission does
  // not pay for the TCP handshake and readiness reflects reality at start.
  lazyConnect: false,
  // Default 20. A command that hit a broken connection is retried at most
  // once, then fails: the caller (an admission, an API request) must learn
  // about the outage in time to answer, not after 20 reconnect cycles.
  maxRetriesPerRequest: 1,
  // Default true, which queues commands without limit while disconnected.
  // We want them to fail at once with StoreUnavailableError instead.
  enableOfflineQueue: false,
  // Default: min(times * 50, 2000). Ours is the same shape with a lower cap:
  // reconnect forever, so the store comes back without a restart of wgjit.
  retryStrategy: (times: number) => Math.min(times * REDIS_RETRY_STEP_MS, REDIS_RETRY_MAX_DELAY_MS),
  // Default 10000 ms. A black-holed Redis should count as down within the
  // admission budget, and the retry loop then tries again.
  connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
  // Default none (wait forever). A Redis that accepted the connection but
  // stopped answering (paused, swapping) must not hold an admission.
  commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
  // Default true, kept: wait for Redis to finish loading its data set
  // before calling the connection ready.
  enableReadyCheck: true,
  // Default false. Commands issued in one turn of the event loop go out in
  // one write: under a flood the daemon verifies many initiations per turn,
  // and a write per lookup cost more CPU than the verifications themselves
  // (each write on a local socket runs the receiving side too).
  enableAutoPipelining: true,
};

/** A reply from a primary that Sentinel demoted: the client should find the new one. */
const READONLY_REPLY = /^READONLY\b|: -READONLY\b/;

/**
 * The ioredis options for a Sentinel set, beyond REDIS_OPTIONS (which hold
 * for the primary connection as they do for a single server). Each reconnect
 * asks the sentinels, one after another, for the primary, and connects to it
 * only if it says it is a master (`role`); so a client follows a failover by
 * reconnecting, without a restart.
 */
export const SENTINEL_OPTIONS: RedisOptions = {
  // Default 'master', spelled out: writes go to the primary only. The role
  // is checked in the ready check (INFO), so REDIS_OPTIONS' enableReadyCheck
  // must stay on: a replica named while its promotion is under way is left
  // and the sentinels asked again.
  role: 'master',
  // Default min(times * 10, 1000): after every sentinel failed to answer,
  // start over after this. Ours: the same cap, forever (never null: null
  // would end the client for good).
  sentinelRetryStrategy: (times: number) => Math.min(times * REDIS_RETRY_STEP_MS, REDIS_RETRY_MAX_DELAY_MS),
  // Default none. A sentinel that accepted the connection but does not
  // answer must not hold the reconnect: the next one is asked.
  sentinelCommandTimeout: REDIS_COMMAND_TIMEOUT_MS,
  // Default false, spelled out: the failover detector (subscribe to
  // +switch-master and drop the connection) disconnects the connector while
  // it may be asking a sentinel, which once left a client ended for good.
  // The connection to a dead or demoted primary breaks anyway (Sentinel
  // kills a demoted primary's clients), and the reconnect asks again.
  failoverDetector: false,
  // Default true, kept: sentinels learned from a sentinel are asked too.
  updateSentinels: true,
  // Default none. A primary demoted while we were connected answers writes
  // with READONLY: reconnect (through the sentinels) so the next command
  // finds the new primary; this one fails (a 503, not a 500).
  reconnectOnError: (err: Error) => (READONLY_REPLY.test(err.message) ? 1 : false),
};

/**
 * ioredis options for a parsed --redis target. `password` (from
 * --redis-password-file) goes where the URL's would; Sentinel mode sends the
 * same user and password to the sentinels (docs/operations.md).
 */
export function redisOptionsFor(target: RedisTarget, password?: string): RedisOptions {
  if (target.kind === 'cluster') throw new TypeError(CLUSTER_NOT_SUPPORTED);
  if (password !== undefined && target.password !== undefined) {
    throw new TypeError('the Redis password is given twice, in the URL and in a password file: give it once');
  }
  const pass = password ?? target.password;
  const auth: RedisOptions = { ...(target.username !== undefined && { username: target.username }), ...(pass !== undefined && { password: pass }) };
  switch (target.kind) {
    case 'socket':
      return { ...REDIS_OPTIONS, ...auth, path: target.path };
    case 'single':
      return { ...REDIS_OPTIONS, ...auth, host: target.endpoint.host, port: target.endpoint.port, db: target.db, ...(target.tls && { tls: {} }) };
    case 'sentinel':
      return {
        ...REDIS_OPTIONS,
        ...SENTINEL_OPTIONS,
        ...auth,
        ...(target.username !== undefined && { sentinelUsername: target.username }),
        ...(pass !== undefined && { sentinelPassword: pass }),
        sentinels: target.sentinels.map((e) => ({ host: e.host, port: e.port })),
        name: target.masterName,
        db: target.db,
        // rediss+sentinel://: TLS to the sentinels and to the primary.
        ...(target.tls && { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true }),
      };
  }
}

/** Same text for the same failure, whatever the retry delay or attempt number in it. */
const failureShape = (message: string): string => message.replace(/\d+ms\b/g, 'Nms');

// Lua scripts. KEYS are declared keys; the channel is ARGV (not a key).

/** KEYS: peer, index. ARGV: json, publicKey, channel, event. 1 if created, 0 if it existed. */
const CREATE_LUA = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('ZADD', KEYS[2], 0, ARGV[2])
  redis.call('PUBLISH', ARGV[3], ARGV[4])
  return 1
end
return 0`;

/**
 * KEYS: peer. ARGV: patch json, updatedAt, channel, event.
 * The new json, or false when the peer does not exist. JSON null in the
 * patch clears a field.
 */
const UPDATE_LUA = `
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local record = cjson.decode(raw)
for k, v in pairs(cjson.decode(ARGV[1])) do
  if v == cjson.null then record[k] = nil else record[k] = v end
end
record['updatedAt'] = ARGV[2]
local out = cjson.encode(record)
redis.call('SET', KEYS[1], out)
redis.call('PUBLISH', ARGV[3], ARGV[4])
return out`;

/** KEYS: peer, index. ARGV: publicKey, channel, event. 1 if it existed. */
const DELETE_LUA = `
local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if n == 1 then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return n`;

/**
 * KEYS: timestamps hash. ARGV: publicKey, timestamp (24 lowercase hex
 * digits: TAI64N, where string order is time order). 1 if it was greater
 * than the one kept (and is kept now), 0 if not.
 */
const ADVANCE_TIMESTAMP_LUA = `
local kept = redis.call('HGET', KEYS[1], ARGV[1])
if kept and kept >= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`;

interface Script {
  lua: string;
  sha: string;
}

function script(lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

const SCRIPTS = {
  create: script(CREATE_LUA),
  update: script(UPDATE_LUA),
  delete: script(DELETE_LUA),
  advanceTimestamp: script(ADVANCE_TIMESTAMP_LUA),
};
const TAI64N_HEX = /^[0-9a-f]{24}$/;

/** Replies that mean "Redis is there but cannot serve now": as good as down for a caller. */
const UNAVAILABLE_REPLIES = /(?:^|: -)(LOADING|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|READONLY|NOREPLICAS)\b/;

/**
 * A reply that means "Redis is there but cannot serve now", also as Redis
 * before 7 wraps it when a script's call failed (`ERR Error running script
 * … -READONLY …`): READONLY from a demoted primary, NOREPLICAS from one
 * below min-replicas-to-write, MASTERDOWN from a replica whose primary is
 * gone.
 */
export function isUnavailableReply(message: string): boolean {
  return UNAVAILABLE_REPLIES.test(message);
}

function isReplyError(err: unknown): err is Error {
  return err instanceof Error && err.name === 'ReplyError';
}

/** Anything from ioredis that is not a reply from a healthy server means the store is unavailable. */
function storeError(err: unknown, what: string): Error {
  if (err instanceof StoreUnavailableError || err instanceof StoreCorruptError) return err;
  if (isReplyError(err) && !isUnavailableReply(err.message)) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return new StoreUnavailableError(`peer store unavailable (${what}): ${reason}`, { cause: err });
}

/** Cursors are opaque to callers: base64url of the last key of the previous page. */
export function encodeCursor(publicKey: string): string {
  return Buffer.from(publicKey, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string | null {
  if (!/^[A-Za-z0-9_-]{1,80}$/.test(cursor)) return null;
  const key = Buffer.from(cursor, 'base64url').toString('utf8');
  return normalizeKey(key) === key ? key : null;
}

export class PeerStore {
  readonly prefix: string;
  readonly channel: string;
  private readonly indexKey: string;
  private readonly timestampsKey: string;
  private readonly waitReplicas: number;
  /** API writes and their WAIT, when waitReplicas > 0: a WAIT that blocks must not hold the admission path's lookups. */
  private readonly writer: Redis | null;
  private readonly log: Logger | undefined;
  private closing = false;

  constructor(
    readonly redis: Redis,
    opts: PeerStoreOptions = {},
  ) {
    this.prefix = opts.prefix ?? DEFAULT_PREFIX;
    this.channel = `${this.prefix}events`;
    this.indexKey = `${this.prefix}peers`;
    this.timestampsKey = `${this.prefix}timestamps`;
    this.waitReplicas = opts.waitReplicas ?? DEFAULT_WAIT_REPLICAS;
    if (!Number.isInteger(this.waitReplicas) || this.waitReplicas < 0 || this.waitReplicas > MAX_WAIT_REPLICAS) {
      throw new RangeError(`waitReplicas must be an integer 0..${MAX_WAIT_REPLICAS}`);
    }
    this.log = opts.log;
    this.keepConnected(redis, 'commands', true);
    this.writer = this.waitReplicas > 0 ? redis.duplicate() : null;
    if (this.writer !== null) this.keepConnected(this.writer, 'writes', false);
  }

  /**
   * A store with its own client, connecting in the background. Commands
   * fail with StoreUnavailableError until it is connected; see whenReady().
   * `url`: any form of src/authorize/redis-url.ts but a Cluster (or the
   * target it parsed). Throws TypeError for a URL it cannot use.
   */
  static connect(url: string | RedisTarget, opts: ConnectOptions = {}): PeerStore {
    let target: RedisTarget;
    try {
      target = typeof url === 'string' ? parseRedisUrl(url) : url;
    } catch (err) {
      // The message names the part that is wrong, never the value (it may hold a password).
      throw new TypeError(`invalid Redis URL: ${(err as Error).message}`);
    }
    const redis = new Redis({ ...redisOptionsFor(target, opts.password), ...opts.redis });
    const log = opts.log?.child({ component: 'store' });
    const store = new PeerStore(redis, { ...opts, ...(log !== undefined && { log }) });
    log?.info({ redis: describeRedisTarget(target), waitReplicas: store.waitReplicas }, 'peer store connecting');
    return store;
  }

  /**
   * Listens to a connection of ours: reports its failures (once per
   * distinct failure, not once per retry; without a listener ioredis prints
   * each to stderr), and connects it again if it ended without close():
   * retryStrategy never gives up, but ioredis ends a client whose connector
   * was disconnected while it was asking a sentinel, and such a client would
   * fail every command until a restart.
   */
  private keepConnected(client: Redis, role: 'commands' | 'writes' | 'events', report: boolean, closed: () => boolean = () => this.closing): void {
    let lastError = '';
    let everReady = false;
    client.on('error', (err: Error) => {
      // ioredis says this also when it merely ran through its list of
      // sentinels after answers from them ("Last error" names a real failure).
      if (err.message.startsWith('All sentinels are unreachable') && !err.message.includes('Last error')) return;
      if (!report || failureShape(err.message) === lastError) return;
      lastError = failureShape(err.message);
      this.log?.warn({ err: err.message }, 'peer store connection error');
    });
    client.on('ready', () => {
      // The address the connection reached: with Sentinel, the primary it named.
      const primary = client.stream?.remoteAddress === undefined ? undefined : `${client.stream.remoteAddress}:${client.stream.remotePort}`;
      if (report && !everReady) this.log?.info({ primary }, 'peer store connected');
      else if (report && lastError !== '') this.log?.info({ primary }, 'peer store connection restored');
      everReady = true;
      lastError = '';
    });
    client.on('end', () => {
      if (closed()) return;
      this.log?.warn({ connection: role }, 'peer store connection ended without close(); connecting again');
      const timer = setTimeout(() => {
        if (!closed() && client.status === 'end') client.connect().catch(() => {}); // an 'end' again brings us back here
      }, REDIS_RETRY_MAX_DELAY_MS);
      timer.unref();
    });
  }

  /** Resolves true once connected (every connection of the store), false if `timeoutMs` passes first. Never rejects. */
  async whenReady(timeoutMs = 5000): Promise<boolean> {
    const clients = [this.redis, ...(this.writer === null ? [] : [this.writer])];
    const waits: Array<() => void> = [];
    const ready = (client: Redis) =>
      new Promise<void>((resolve) => {
        if (client.status === 'ready') return resolve();
        const onReady = () => resolve();
        client.once('ready', onReady);
        waits.push(() => client.off('ready', onReady));
      });
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([Promise.all(clients.map(ready)).then(() => true), expired]);
    } finally {
      clearTimeout(timer);
      for (const off of waits) off();
    }
  }

  private peerKey(publicKey: string): string {
    return `${this.prefix}peer:${publicKey}`;
  }

  private event(op: StoreEvent['op'], publicKey: string): string {
    return JSON.stringify({ op, publicKey });
  }

  /** EVALSHA, loading the script on NOSCRIPT (after a Redis restart or on a fresh server). */
  private async run(s: Script, keys: string[], args: string[], client: Redis = this.redis): Promise<unknown> {
    try {
      return await client.evalsha(s.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (isReplyError(err) && err.message.startsWith('NOSCRIPT')) return client.eval(s.lua, keys.length, ...keys, ...args);
      throw err;
    }
  }

  /**
   * An API write: the script on the writer connection, then, when it
   * changed something and waitReplicas > 0, WAIT for that many replicas.
   * Fewer in time: StoreUnreplicatedError (the write is on the primary, and
   * a failover could lose it).
   */
  private async write(s: Script, keys: string[], args: string[], changed: (reply: unknown) => boolean): Promise<unknown> {
    const client = this.writer ?? this.redis;
    const reply = await this.run(s, keys, args, client);
    if (this.waitReplicas > 0 && changed(reply)) {
      const acked = await client.wait(this.waitReplicas, REDIS_WAIT_TIMEOUT_MS);
      if (acked < this.waitReplicas) {
        this.log?.warn({ acked, waitReplicas: this.waitReplicas }, 'peer store write not acknowledged by enough replicas in time: answered 503');
        throw new StoreUnreplicatedError(
          `peer store write reached the primary but ${acked} of ${this.waitReplicas} replicas acknowledged it within ${REDIS_WAIT_TIMEOUT_MS} ms; a failover could lose it`,
        );
      }
    }
    return reply;
  }

  private decode(publicKey: string, raw: string): StoredPeer {
    const stored = decodeRecord(raw);
    if (stored === null || stored.record.publicKey !== publicKey) {
      throw new StoreCorruptError(`the value at ${this.peerKey(publicKey)} is not a valid peer record`);
    }
    return stored;
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.redis.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  /** `record` must come from validateCreate (canonical fields). */
  async create(record: PeerRecord): Promise<CreateResult> {
    try {
      const created = await this.write(
        SCRIPTS.create,
        [this.peerKey(record.publicKey), this.indexKey],
        [JSON.stringify(record), record.publicKey, this.channel, this.event('upsert', record.publicKey)],
        (reply) => reply === 1,
      );
      return created === 1 ? { ok: true, record } : { ok: false, reason: 'exists' };
    } catch (err) {
      throw storeError(err, 'create');
    }
  }

  async get(publicKey: string): Promise<PeerRecord | null> {
    return (await this.read(publicKey))?.record ?? null;
  }

  private async read(publicKey: string): Promise<StoredPeer | null> {
    let raw: string | null;
    try {
      raw = await this.redis.get(this.peerKey(publicKey));
    } catch (err) {
      throw storeError(err, 'get');
    }
    return raw === null ? null : this.decode(publicKey, raw);
  }

  /** Records in key order. `cursor` is the nextCursor of the previous page. */
  async list(opts: { limit?: number; cursor?: string | null } = {}): Promise<ListResult> {
    const limit = Math.max(1, Math.min(MAX_LIST_LIMIT, Math.trunc(opts.limit ?? DEFAULT_LIST_LIMIT)));
    let start = '-';
    if (opts.cursor !== undefined && opts.cursor !== null && opts.cursor !== '') {
      const after = decodeCursor(opts.cursor);
      if (after === null) return { ok: false, reason: 'bad_cursor' };
      start = `(${after}`;
    }
    try {
      // One more than asked tells whether another page follows.
      const keys = await this.redis.zrangebylex(this.indexKey, start, '+', 'LIMIT', 0, limit + 1);
      const page = keys.slice(0, limit);
      const values = page.length === 0 ? [] : await this.redis.mget(page.map((k) => this.peerKey(k)));
      const items: PeerRecord[] = [];
      page.forEach((key, i) => {
        const raw = values[i];
        // Deleted between the two commands: the index said it was there, it is gone now.
        if (raw !== null && raw !== undefined) items.push(this.decode(key, raw).record);
      });
      const last = page[page.length - 1];
      return { ok: true, items, nextCursor: keys.length > limit && last !== undefined ? encodeCursor(last) : null };
    } catch (err) {
      throw storeError(err, 'list');
    }
  }

  /** `patch` must come from validatePatch. */
  async update(publicKey: string, patch: PeerPatch, now: Date = new Date()): Promise<UpdateResult> {
    let raw: unknown;
    try {
      raw = await this.write(
        SCRIPTS.update,
        [this.peerKey(publicKey)],
        [JSON.stringify(patch), now.toISOString(), this.channel, this.event('upsert', publicKey)],
        (reply) => typeof reply === 'string',
      );
    } catch (err) {
      throw storeError(err, 'update');
    }
    if (raw === null || typeof raw !== 'string') return { ok: false, reason: 'not_found' };
    return { ok: true, record: this.decode(publicKey, raw).record };
  }

  /** True if the peer existed. */
  async delete(publicKey: string): Promise<boolean> {
    try {
      const n = await this.write(SCRIPTS.delete, [this.peerKey(publicKey), this.indexKey], [publicKey, this.channel, this.event('delete', publicKey)], (reply) => reply === 1);
      return n === 1;
    } catch (err) {
      throw storeError(err, 'delete');
    }
  }

  /**
   * authorize() for many keys at once, MAX_BATCH_KEYS per MGET: what a
   * reconciliation of a whole device asks. A key whose record is corrupt
   * is left out of the answer (authorize() would throw for it): the caller
   * decides nothing about it. The answers are keyed by PublicKey.id.
   * Throws StoreUnavailableError.
   */
  async authorizeMany(publicKeys: readonly PublicKey[], now: Date): Promise<Map<string, AdmissionResult>> {
    const out = new Map<string, AdmissionResult>();
    for (let i = 0; i < publicKeys.length; i += MAX_BATCH_KEYS) {
      const keys = publicKeys.slice(i, i + MAX_BATCH_KEYS);
      const spelled = keys.map(String);
      let raws: Array<string | null>;
      try {
        raws = await this.redis.mget(spelled.map((k) => this.peerKey(k)));
      } catch (err) {
        throw storeError(err, 'authorizeMany');
      }
      keys.forEach((key, j) => {
        const raw = raws[j] ?? null;
        if (raw === null) out.set(key.id, admission(null, now));
        else {
          const stored = decodeRecord(raw);
          if (stored !== null && stored.record.publicKey === spelled[j]) out.set(key.id, admission(stored, now));
        }
      });
    }
    return out;
  }

  /** The hot path: one GET. Throws StoreUnavailableError when Redis is down (the caller denies). */
  async authorize(publicKey: PublicKey, now: Date): Promise<AdmissionResult> {
    return admission(await this.read(publicKey.toString()), now);
  }

  /**
   * Replay protection that outlives the peer: keeps, per key, the greatest
   * TAI64N timestamp of an authentic initiation, beyond the peer's life on
   * any gateway (the device forgets its own with the peer). True if
   * `timestamp` is greater than the one kept, and is kept now; false if
   * not (a replay). Atomic across the fleet. Throws StoreUnavailableError.
   */
  async advanceTimestamp(publicKey: PublicKey, timestamp: Uint8Array): Promise<boolean> {
    const hex = Buffer.from(timestamp.buffer, timestamp.byteOffset, timestamp.byteLength).toString('hex');
    if (!TAI64N_HEX.test(hex)) throw new RangeError('timestamp must be 12 bytes of TAI64N');
    try {
      return (await this.run(SCRIPTS.advanceTimestamp, [this.timestampsKey], [publicKey.toString(), hex])) === 1;
    } catch (err) {
      throw storeError(err, 'advanceTimestamp');
    }
  }

  /**
   * Receive store events on a second connection (a subscribed connection
   * cannot run commands). It reconnects by itself, through the sentinels
   * with Sentinel, and subscribes again; `onReady` is called each time the
   * subscription is (again) in place. Events published while it was away
   * are lost, so a subscriber should re-check what it holds then.
   */
  async subscribe(onEvent: (event: StoreEvent) => void, onReady?: () => void): Promise<{ close(): Promise<void> }> {
    // The offline queue stays on here: SUBSCRIBE is replayed on reconnect.
    const sub = this.redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined });
    let closed = false;
    // Failures are reported by the main connection's listener.
    this.keepConnected(sub, 'events', false, () => closed);
    sub.on('ready', () => {
      // ioredis re-subscribes on its own after a reconnect, without saying
      // when it is done; ours comes after it, so once it is answered the
      // subscription is in place and a re-check misses nothing.
      sub.subscribe(this.channel).then(
        () => onReady?.(),
        () => {}, // the connection broke again: the next 'ready' tries again
      );
    });
    sub.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      const event = parseEvent(message);
      if (event !== null) onEvent(event);
    });
    try {
      await sub.subscribe(this.channel);
    } catch (err) {
      closed = true;
      sub.disconnect();
      throw storeError(err, 'subscribe');
    }
    return {
      close: async () => {
        closed = true;
        sub.disconnect();
      },
    };
  }

  /** Close the connections (pending replies are still delivered). */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([this.redis, ...(this.writer === null ? [] : [this.writer])].map(quit));
  }
}

async function quit(client: Redis): Promise<void> {
  if (client.status === 'ready') {
    try {
      await client.quit();
      return;
    } catch {
      // fall through: it went away while quitting
    }
  }
  client.disconnect();
}

/** An event from the channel, or null if it is not one of ours. */
export function parseEvent(message: string): StoreEvent | null {
  let v: unknown;
  try {
    v = JSON.parse(message);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const { op, publicKey } = v as Record<string, unknown>;
  if (op !== 'upsert' && op !== 'delete') return null;
  // Only wg's own spelling, as the store writes it.
  const key = PublicKey.parse(publicKey);
  return key !== null && key.toString() === publicKey ? { op, publicKey: key } : null;
}
