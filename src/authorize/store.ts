/**
 * The peer store: Redis, one packed value per peer (its record and the
 * greatest timestamp seen from it) in 4,096 groups, each with its sorted-set
 * index and events channel in one hash slot, so that one layout serves a
 * single Redis, Sentinel and Cluster. Schema and events: docs/store-schema.md.
 *
 * Every mutation is one Lua script, so the value, the index and the event
 * change together or not at all, also with many API processes writing.
 * A Redis that cannot be reached surfaces as StoreUnavailableError, quickly,
 * so the API answers 503 and the admission path counts it, instead of a
 * request waiting in a queue for a connection that may not come back.
 */
import { createHash } from 'node:crypto';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { normalizeKey, PublicKey } from '../handshake/keys.js';
import { admission, applyPatch, type AdmissionResult, type PeerPatch, type PeerRecord, type StoredPeer } from './peer.js';
import { decodeRecord, encodeRecord } from './record-codec.js';

export const DEFAULT_PREFIX = 'wgjit:';
export const DEFAULT_LIST_LIMIT = 100;
/** One page is a ZRANGEBYLEX per group it spans and a GET per record, pipelined: 1000 records is ~100 KB. */
export const MAX_LIST_LIMIT = 1000;
/** Keys read at once in authorizeMany: big enough to amortize the round trip, small enough not to stall Redis. */
export const MAX_BATCH_KEYS = 1000;

/** How long one command may wait for its reply: a WireGuard client resends its initiation after 5 s. */
export const REDIS_COMMAND_TIMEOUT_MS = 1000;
/** How long one TCP connect attempt may take before it counts as failed and is retried. */
export const REDIS_CONNECT_TIMEOUT_MS = 2000;
/**
 * How often a Cluster subscriber asks where the slots are: it sends no
 * command that a MOVED reply could redirect, so without this it would
 * never learn that a replica took over its slots, and their events
 * would stop (seen on a real Cluster: a third of the events lost after a
 * failover until this was set).
 */
export const CLUSTER_SLOTS_REFRESH_MS = 1000;
/** How long a process (the daemon, `wgjit api`) waits for the store at start before it goes on without it. */
export const STORE_WAIT_AT_START_MS = 5_000;
/** Reconnect backoff: 100 ms, 200 ms, ... capped here, forever, so an outage heals by itself. */
export const REDIS_RETRY_STEP_MS = 100;
export const REDIS_RETRY_MAX_DELAY_MS = 1000;

/** A store change, as subscribe() hands it on (published as JSON with the key in base64). */
export type StoreEvent = { op: 'upsert' | 'delete'; publicKey: PublicKey };

export type CreateResult = { ok: true; record: PeerRecord } | { ok: false; reason: 'exists' };
export type UpdateResult = { ok: true; record: PeerRecord } | { ok: false; reason: 'not_found' };
export type ListResult = { ok: true; items: PeerRecord[]; nextCursor: string | null } | { ok: false; reason: 'bad_cursor' };

/** One record of an import, as upsertMany takes it: the record to create, and the fields to change if it exists. */
export interface UpsertItem {
  /** From validateCreate: complete, stamped. */
  record: PeerRecord;
  /** From validatePatch over the same input's fields (not publicKey): what an existing record takes. */
  patch: PeerPatch;
}
/** What upsertMany did, or in a dry run would do, with one item. `exists`: mode 'create' leaves an existing record alone. */
export type UpsertOutcome = 'created' | 'updated' | 'unchanged' | 'exists';
export interface UpsertOptions {
  /** 'upsert' (default): an existing record takes the item's fields; 'create': it is left alone (`exists`). */
  mode?: 'upsert' | 'create';
  /** Decide every item as the real run would, write nothing, publish nothing. */
  dryRun?: boolean;
  /** updatedAt of the records changed. */
  now?: Date;
}

/** Redis could not be reached (or answered that it cannot serve now). The API answers 503. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A value under our prefix that is not a record we wrote (hand edits, another program). */
export class StoreCorruptError extends Error {
  override readonly name = 'StoreCorruptError';
}

/** The store holds a layout this release does not read (an earlier release's): `wgjit store migrate` first. */
export class StoreLayoutError extends Error {
  override readonly name = 'StoreLayoutError';
}

export interface PeerStoreOptions {
  /** Namespace for every key and the event channel. Default 'wgjit:'. */
  prefix?: string;
  /** Where connection problems are reported (ioredis 'error' events). */
  log?: Logger;
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

// Lua scripts. Each touches the keys of one peer's group, so of one hash
// slot (a Cluster runs it on one node); the group's channel is in the same
// slot, as SPUBLISH from a script requires there. Values are bytes: the
// first TS_BYTES are the greatest timestamp kept for the key (zeros: none),
// the rest the packed record (record-codec.ts); a value of TS_BYTES alone is
// a tombstone, the timestamp of a peer that no longer exists.

/** KEYS: peer, group index. ARGV: record, publicKey, channel, event. 1 if created, 0 if the peer exists. */
const CREATE_LUA = `
local v = redis.call('GET', KEYS[1])
if v and #v > 12 then return 0 end
if not v or #v ~= 12 then v = string.rep('\0', 12) end
redis.call('SET', KEYS[1], v .. ARGV[1])
redis.call('ZADD', KEYS[2], 0, ARGV[2])
redis.call('SPUBLISH', ARGV[3], ARGV[4])
return 1`;

/**
 * KEYS: peer. ARGV: the record as read, the new record, channel, event.
 * Compare and set: 1 if written, 0 if the peer does not exist, -1 if the
 * record changed since it was read (the caller reads again).
 */
const UPDATE_LUA = `
local v = redis.call('GET', KEYS[1])
if not v or #v <= 12 then return 0 end
if string.sub(v, 13) ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[1], string.sub(v, 1, 12) .. ARGV[2])
redis.call('SPUBLISH', ARGV[3], ARGV[4])
return 1`;

/** KEYS: peer, group index. ARGV: publicKey, channel, event. 1 if it existed. The timestamp stays, as a tombstone. */
const DELETE_LUA = `
redis.call('ZREM', KEYS[2], ARGV[1])
local v = redis.call('GET', KEYS[1])
if not v or #v <= 12 then return 0 end
local ts = string.sub(v, 1, 12)
if ts == string.rep('\0', 12) then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ts) end
redis.call('SPUBLISH', ARGV[2], ARGV[3])
return 1`;

/**
 * KEYS: peer. ARGV: timestamp (12 bytes of TAI64N, where byte order is time
 * order; compared byte by byte, as Lua's string order follows the locale).
 * 1 if it was greater than the one kept (and is kept now), 0 if not.
 */
const ADVANCE_TIMESTAMP_LUA = `
local kept = redis.call('GETRANGE', KEYS[1], 0, 11)
local ts = ARGV[1]
if #kept == 12 then
  local newer = false
  for i = 1, 12 do
    local a, b = string.byte(ts, i), string.byte(kept, i)
    if a ~= b then newer = a > b; break end
  end
  if not newer then return 0 end
  redis.call('SETRANGE', KEYS[1], 0, ts)
else
  redis.call('SET', KEYS[1], ts)
end
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

/** Replies that mean "Redis is there but cannot serve now": as good as down for a caller. */
const UNAVAILABLE_REPLIES = /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|READONLY|NOREPLICAS)\b/;

function isReplyError(err: unknown): err is Error {
  return err instanceof Error && err.name === 'ReplyError';
}

/** Anything from ioredis that is not a reply from a healthy server means the store is unavailable. */
function storeError(err: unknown, what: string): Error {
  if (err instanceof StoreUnavailableError || err instanceof StoreCorruptError) return err;
  if (isReplyError(err) && !UNAVAILABLE_REPLIES.test(err.message)) return err;
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

/** Bytes of the greatest timestamp at the head of every peer value. */
const TS_BYTES = 12;
/** Characters of a key that name its group: 64² = 4,096 groups, each an index, a channel and a hash slot. */
export const GROUP_CHARS = 2;
/** wg's base64 alphabet in byte order, the order keys list in. */
const ALPHABET = [...'+/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'];
/** Every group, in key order. */
export const GROUPS: readonly string[] = ALPHABET.flatMap((a) => ALPHABET.map((b) => a + b));
const GROUP_NUMBER = new Map(GROUPS.map((g, i) => [g, i]));
/** Groups a listing asks at once at most; it starts with one and doubles while pages come up short. */
const MAX_GROUPS_PER_ROUND = 256;
/** A compare-and-set update that keeps losing to other writers gives up after this many reads (503). */
export const MAX_UPDATE_ATTEMPTS = 8;

/**
 * The Redis key of a peer's value. `{<group>}` is the hash tag that puts a
 * peer's keys, its group's index and its group's channel in one slot.
 */
export function peerKeyName(prefix: string, publicKey: string): string {
  return `${prefix}{${publicKey.slice(0, GROUP_CHARS)}}:peer:${publicKey}`;
}

/** The sorted set listing a group's keys (score 0: ordered by the key's bytes). */
export function indexKeyName(prefix: string, group: string): string {
  return `${prefix}{${group}}:peers`;
}

export class PeerStore {
  readonly prefix: string;

  constructor(
    readonly redis: Redis | Cluster,
    opts: PeerStoreOptions = {},
  ) {
    this.prefix = opts.prefix ?? DEFAULT_PREFIX;
  }

  /**
   * A store with its own client, connecting in the background. Commands
   * fail with StoreUnavailableError until it is connected; see whenReady().
   * `url`: redis://[user:pass@]host:port[/db], rediss://… (TLS), or a UNIX socket path.
   */
  static connect(url: string, opts: PeerStoreOptions & { redis?: RedisOptions } = {}): PeerStore {
    const options: RedisOptions = { ...REDIS_OPTIONS, ...opts.redis };
    let redis: Redis;
    if (url.startsWith('/')) redis = new Redis({ ...options, path: url });
    else {
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        throw new TypeError(`invalid Redis URL '${url}': expected redis://HOST:PORT, rediss://HOST:PORT or a socket path`);
      }
      if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
        throw new TypeError(`invalid Redis URL '${url}': the scheme must be redis:// or rediss://`);
      }
      redis = new Redis(url, options);
    }
    const log = opts.log?.child({ component: 'store' });
    // Without a listener ioredis prints every reconnect failure to stderr.
    let lastError = '';
    redis.on('error', (err: Error) => {
      if (err.message === lastError) return; // once per distinct failure, not once per retry
      lastError = err.message;
      log?.warn({ err: err.message }, 'peer store connection error');
    });
    redis.on('ready', () => {
      if (lastError !== '') log?.info('peer store connection restored');
      lastError = '';
    });
    return new PeerStore(redis, { prefix: opts.prefix });
  }

  /** Resolves true once connected, false if not within `timeoutMs`. */
  async whenReady(timeoutMs = 5000): Promise<boolean> {
    if (this.redis.status === 'ready') return true;
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.redis.off('ready', onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.redis.on('ready', onReady);
    });
  }

  private peerKey(publicKey: string): string {
    return peerKeyName(this.prefix, publicKey);
  }

  private indexKey(group: string): string {
    return indexKeyName(this.prefix, group);
  }

  /** The events channel of the group `publicKey` (or a group name) belongs to. */
  channel(publicKeyOrGroup: string): string {
    return `${this.prefix}{${publicKeyOrGroup.slice(0, GROUP_CHARS)}}:events`;
  }

  private event(op: StoreEvent['op'], publicKey: string): string {
    return JSON.stringify({ op, publicKey });
  }

  /** EVALSHA, loading the script on NOSCRIPT (after a Redis restart or on a fresh server). */
  private async run(s: Script, keys: string[], args: Array<string | Buffer>): Promise<unknown> {
    try {
      return await this.redis.evalsha(s.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (isReplyError(err) && err.message.startsWith('NOSCRIPT')) return this.redis.eval(s.lua, keys.length, ...keys, ...args);
      throw err;
    }
  }

  /** The record in a peer value; null for no value or a tombstone. */
  private decode(publicKey: string, value: Buffer | null): StoredPeer | null {
    if (value === null || value.length === TS_BYTES) return null;
    const stored = value.length < TS_BYTES ? null : decodeRecord(publicKey, value.subarray(TS_BYTES));
    if (stored === null) throw new StoreCorruptError(`the value at ${this.peerKey(publicKey)} is not a valid peer record`);
    return stored;
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.redis.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  /**
   * The single-node layout of earlier releases (one JSON string per peer, one
   * global index and timestamp hash), if this store still holds it: what an
   * operator must migrate (`wgjit store migrate`) before this release can
   * serve those peers. Null when there is none.
   */
  async legacyLayout(): Promise<string | null> {
    try {
      const found = await Promise.all([`${this.prefix}peers`, `${this.prefix}timestamps`].map(async (k) => ((await this.redis.exists(k)) === 1 ? k : null)));
      const keys = found.filter((k) => k !== null);
      return keys.length === 0 ? null : `the store holds the layout of an earlier wgjit (${keys.join(', ')}); run \`wgjit store migrate\` with the same --redis first`;
    } catch (err) {
      throw storeError(err, 'legacyLayout');
    }
  }

  /** Throws StoreLayoutError when the store still holds an earlier release's layout (legacyLayout()). */
  async refuseLegacyLayout(): Promise<void> {
    const legacy = await this.legacyLayout();
    if (legacy !== null) throw new StoreLayoutError(legacy);
  }

  /** `record` must come from validateCreate (canonical fields). */
  async create(record: PeerRecord): Promise<CreateResult> {
    const { publicKey } = record;
    const value = encodeRecord(record);
    try {
      const created = await this.run(
        SCRIPTS.create,
        [this.peerKey(publicKey), this.indexKey(publicKey.slice(0, GROUP_CHARS))],
        [value, publicKey, this.channel(publicKey), this.event('upsert', publicKey)],
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
    return this.decode(publicKey, await this.readValue(publicKey));
  }

  private async readValue(publicKey: string): Promise<Buffer | null> {
    try {
      return await this.redis.getBuffer(this.peerKey(publicKey));
    } catch (err) {
      throw storeError(err, 'get');
    }
  }

  /**
   * Records in key order. `cursor` is the nextCursor of the previous page.
   * The index is one sorted set per group; a page walks the groups in key
   * order from the cursor's, asking one group, then two, four, … at once
   * (each group's answer is already in order), so a full store pays one
   * round trip a page and a nearly empty one a dozen.
   */
  async list(opts: { limit?: number; cursor?: string | null } = {}): Promise<ListResult> {
    const limit = Math.max(1, Math.min(MAX_LIST_LIMIT, Math.trunc(opts.limit ?? DEFAULT_LIST_LIMIT)));
    let after: string | null = null;
    if (opts.cursor !== undefined && opts.cursor !== null && opts.cursor !== '') {
      after = decodeCursor(opts.cursor);
      if (after === null) return { ok: false, reason: 'bad_cursor' };
    }
    try {
      // One more than asked tells whether another page follows.
      const keys: string[] = [];
      let group = after === null ? 0 : GROUP_NUMBER.get(after.slice(0, GROUP_CHARS))!;
      for (let round = 1; keys.length <= limit && group < GROUPS.length; round = Math.min(round * 2, MAX_GROUPS_PER_ROUND)) {
        const want = limit + 1 - keys.length;
        const asked = GROUPS.slice(group, group + round);
        const answers = await Promise.all(
          asked.map((g) => this.redis.zrangebylex(this.indexKey(g), after !== null && after.startsWith(g) ? `(${after}` : '-', '+', 'LIMIT', 0, want)),
        );
        for (const answer of answers) keys.push(...answer.slice(0, limit + 1 - keys.length));
        group += asked.length;
      }
      const page = keys.slice(0, limit);
      const values = await Promise.all(page.map((k) => this.redis.getBuffer(this.peerKey(k))));
      const items: PeerRecord[] = [];
      page.forEach((key, i) => {
        // Deleted between the two reads: the index said it was there, it is gone now.
        const stored = this.decode(key, values[i] ?? null);
        if (stored !== null) items.push(stored.record);
      });
      const last = page[page.length - 1];
      return { ok: true, items, nextCursor: keys.length > limit && last !== undefined ? encodeCursor(last) : null };
    } catch (err) {
      throw storeError(err, 'list');
    }
  }

  /**
   * `patch` must come from validatePatch. Read, patch, and write back only
   * if nobody wrote in between (compare and set in one script); on a race,
   * read again, at most MAX_UPDATE_ATTEMPTS times.
   */
  async update(publicKey: string, patch: PeerPatch, now: Date = new Date()): Promise<UpdateResult> {
    for (let attempt = 0; attempt < MAX_UPDATE_ATTEMPTS; attempt++) {
      const value = await this.readValue(publicKey);
      const stored = this.decode(publicKey, value);
      if (stored === null) return { ok: false, reason: 'not_found' };
      const record = applyPatch(stored.record, patch, now);
      const next = encodeRecord(record);
      let written: unknown;
      try {
        written = await this.run(SCRIPTS.update, [this.peerKey(publicKey)], [value!.subarray(TS_BYTES), next, this.channel(publicKey), this.event('upsert', publicKey)]);
      } catch (err) {
        throw storeError(err, 'update');
      }
      if (written === 1) return { ok: true, record };
      if (written === 0) return { ok: false, reason: 'not_found' };
    }
    throw new StoreUnavailableError(`peer store busy: the record of ${publicKey} changed under ${MAX_UPDATE_ATTEMPTS} attempts to update it`);
  }

  /** True if the peer existed. */
  async delete(publicKey: string): Promise<boolean> {
    try {
      const n = await this.run(
        SCRIPTS.delete,
        [this.peerKey(publicKey), this.indexKey(publicKey.slice(0, GROUP_CHARS))],
        [publicKey, this.channel(publicKey), this.event('delete', publicKey)],
      );
      return n === 1;
    } catch (err) {
      throw storeError(err, 'delete');
    }
  }

  /**
   * An import: each item created, or (mode 'upsert') its fields written
   * over an existing record, with the scripts of create and update (each
   * item's write and event atomic; an update a compare-and-set that reads
   * again when another writer came between), all items at once, pipelined.
   * A record whose fields the patch would not change is left alone
   * (`unchanged`: no write, no event). Items must come validated, with
   * distinct keys. Outcomes in item order. Not atomic across items: a
   * Redis lost midway (StoreUnavailableError) may leave some written;
   * running the same import again finishes it.
   */
  async upsertMany(items: readonly UpsertItem[], opts: UpsertOptions = {}): Promise<UpsertOutcome[]> {
    const now = opts.now ?? new Date();
    return Promise.all(items.map((item) => this.upsertOne(item, opts.mode ?? 'upsert', opts.dryRun ?? false, now)));
  }

  private async upsertOne({ record, patch }: UpsertItem, mode: 'upsert' | 'create', dryRun: boolean, now: Date): Promise<UpsertOutcome> {
    const { publicKey } = record;
    for (let attempt = 0; attempt < MAX_UPDATE_ATTEMPTS; attempt++) {
      const value = await this.readValue(publicKey);
      const stored = this.decode(publicKey, value);
      if (stored === null) {
        if (dryRun) return 'created';
        if ((await this.create(record)).ok) return 'created';
        continue; // created by another writer meanwhile: update it instead
      }
      if (mode === 'create') return 'exists';
      const next = applyPatch(stored.record, patch, now);
      if (encodeRecord({ ...next, updatedAt: stored.record.updatedAt }).equals(value!.subarray(TS_BYTES))) return 'unchanged';
      if (dryRun) return 'updated';
      let written: unknown;
      try {
        written = await this.run(SCRIPTS.update, [this.peerKey(publicKey)], [value!.subarray(TS_BYTES), encodeRecord(next), this.channel(publicKey), this.event('upsert', publicKey)]);
      } catch (err) {
        throw storeError(err, 'upsertMany');
      }
      if (written === 1) return 'updated';
    }
    throw new StoreUnavailableError(`peer store busy: the record of ${publicKey} changed under ${MAX_UPDATE_ATTEMPTS} attempts to import it`);
  }

  /**
   * authorize() for many keys at once: what a reconciliation of a whole
   * device asks. One GET per key, MAX_BATCH_KEYS in flight, pipelined (the
   * keys are in as many slots as there are keys, so no MGET could take
   * them on a Cluster). A key whose record is corrupt is left out of the
   * answer (authorize() would throw for it): the caller decides nothing
   * about it. The answers are keyed by PublicKey.id.
   * Throws StoreUnavailableError.
   */
  async authorizeMany(publicKeys: readonly PublicKey[], now: Date): Promise<Map<string, AdmissionResult>> {
    const out = new Map<string, AdmissionResult>();
    for (let i = 0; i < publicKeys.length; i += MAX_BATCH_KEYS) {
      const keys = publicKeys.slice(i, i + MAX_BATCH_KEYS);
      const spelled = keys.map(String);
      let values: Array<Buffer | null>;
      try {
        values = await Promise.all(spelled.map((k) => this.redis.getBuffer(this.peerKey(k))));
      } catch (err) {
        throw storeError(err, 'authorizeMany');
      }
      keys.forEach((key, j) => {
        const value = values[j] ?? null;
        if (value === null || value.length === TS_BYTES) out.set(key.id, admission(null, now));
        else if (value.length > TS_BYTES) {
          const stored = decodeRecord(spelled[j]!, value.subarray(TS_BYTES));
          if (stored !== null) out.set(key.id, admission(stored, now));
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
   * any gateway (the device forgets its own with the peer) and beyond its
   * record's (a tombstone). True if `timestamp` is greater than the one
   * kept, and is kept now; false if not (a replay). Atomic across the
   * fleet. Throws StoreUnavailableError.
   */
  async advanceTimestamp(publicKey: PublicKey, timestamp: Uint8Array): Promise<boolean> {
    if (timestamp.byteLength !== TS_BYTES) throw new RangeError('timestamp must be 12 bytes of TAI64N');
    const ts = Buffer.from(timestamp.buffer, timestamp.byteOffset, timestamp.byteLength);
    try {
      return (await this.run(SCRIPTS.advanceTimestamp, [this.peerKey(publicKey.toString())], [ts])) === 1;
    } catch (err) {
      throw storeError(err, 'advanceTimestamp');
    }
  }

  /**
   * Receive store events on a second connection (a subscribed connection
   * cannot run commands): every group's channel, by sharded pub/sub
   * (SSUBSCRIBE; on a Cluster each node delivers its own slots' events). It
   * re-subscribes by itself after a reconnect; events published while it
   * was away are lost, so a subscriber should re-check what it holds after
   * 'ready'.
   */
  async subscribe(onEvent: (event: StoreEvent) => void, onReady?: () => void): Promise<{ close(): Promise<void> }> {
    // The offline queue stays on here: SSUBSCRIBE is replayed on reconnect.
    const subscriberOptions = { enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined };
    const sub =
      this.redis instanceof Cluster
        ? // A subscriber per node, each for its own slots' channels, moved with them on a failover.
          this.redis.duplicate(undefined, { shardedSubscribers: true, enableOfflineQueue: true, slotsRefreshInterval: CLUSTER_SLOTS_REFRESH_MS, redisOptions: { ...this.redis.options.redisOptions, ...subscriberOptions } })
        : this.redis.duplicate(subscriberOptions);
    sub.on('error', () => {}); // reported by the main connection's listener
    if (onReady) sub.on('ready', onReady);
    const channels = GROUPS.map((g) => this.channel(g));
    const known = new Set(channels);
    sub.on('smessage', (channel: string, message: string) => {
      if (!known.has(channel)) return;
      const event = parseEvent(message);
      if (event !== null && this.channel(event.publicKey.toString()) === channel) onEvent(event);
    });
    // A Cluster takes one slot per SSUBSCRIBE; a single Redis takes them all at once.
    const subscribeAll = async () => {
      if (sub instanceof Cluster) await Promise.all(channels.map((c) => sub.ssubscribe(c)));
      else await sub.ssubscribe(...channels);
    };
    if (sub instanceof Cluster) {
      // After a failover ioredis gives the promoted node a subscriber but
      // subscribes it to almost none of its slots' channels (seen with
      // ioredis 5.11 on a real Cluster: 1 of ~1,350): subscribe them all
      // again, and tell the caller, whose events may have been lost meanwhile.
      sub.on('subscribersReady', () => {
        subscribeAll().then(
          () => onReady?.(),
          () => {}, // the next topology change tries again; the reconciliation covers the gap
        );
      });
    }
    try {
      await subscribeAll();
    } catch (err) {
      sub.disconnect();
      throw storeError(err, 'subscribe');
    }
    return {
      close: async () => {
        sub.disconnect();
      },
    };
  }

  /** Close the connection (pending replies are still delivered). */
  async close(): Promise<void> {
    if (this.redis.status === 'ready') {
      try {
        await this.redis.quit();
        return;
      } catch {
        // fall through: it went away while quitting
      }
    }
    this.redis.disconnect();
  }
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
