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

/**
 * One item of an import. KEYS: peer, index. ARGV: record json (for a new
 * peer), patch json (for an existing one: JSON null clears a field),
 * publicKey, updatedAt, channel, event, mode ('upsert' | 'create'), dry
 * ('1': decide, write nothing). Returns created, updated, unchanged (the
 * patch changes nothing: no write, no event) or exists (mode 'create').
 */
const UPSERT_LUA = `
local function same(a, b)
  if type(a) ~= 'table' or type(b) ~= 'table' then return a == b end
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end
local dry = ARGV[8] == '1'
local raw = redis.call('GET', KEYS[1])
if not raw then
  if dry then return 'created' end
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('ZADD', KEYS[2], 0, ARGV[3])
  redis.call('PUBLISH', ARGV[5], ARGV[6])
  return 'created'
end
if ARGV[7] == 'create' then return 'exists' end
local record = cjson.decode(raw)
local changed = false
for k, v in pairs(cjson.decode(ARGV[2])) do
  if v == cjson.null then
    if record[k] ~= nil then record[k] = nil; changed = true end
  elseif not same(record[k], v) then
    record[k] = v; changed = true
  end
end
if not changed then return 'unchanged' end
if dry then return 'updated' end
record['updatedAt'] = ARGV[4]
redis.call('SET', KEYS[1], cjson.encode(record))
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 'updated'`;

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
  upsert: script(UPSERT_LUA),
};
const UPSERT_OUTCOMES: ReadonlySet<unknown> = new Set<UpsertOutcome>(['created', 'updated', 'unchanged', 'exists']);
const TAI64N_HEX = /^[0-9a-f]{24}$/;

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

export class PeerStore {
  readonly prefix: string;
  readonly channel: string;
  private readonly indexKey: string;
  private readonly timestampsKey: string;

  constructor(
    readonly redis: Redis,
    opts: PeerStoreOptions = {},
  ) {
    this.prefix = opts.prefix ?? DEFAULT_PREFIX;
    this.channel = `${this.prefix}events`;
    this.indexKey = `${this.prefix}peers`;
    this.timestampsKey = `${this.prefix}timestamps`;
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
    return new PeerStore(redis, opts);
  }

  /** Resolves true once connected, false if `timeoutMs` passes first. Never rejects. */
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
    return `${this.prefix}peer:${publicKey}`;
  }

  private event(op: StoreEvent['op'], publicKey: string): string {
    return JSON.stringify({ op, publicKey });
  }

  /** EVALSHA, loading the script on NOSCRIPT (after a Redis restart or on a fresh server). */
  private async run(s: Script, keys: string[], args: string[]): Promise<unknown> {
    try {
      return await this.redis.evalsha(s.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (isReplyError(err) && err.message.startsWith('NOSCRIPT')) return this.redis.eval(s.lua, keys.length, ...keys, ...args);
      throw err;
    }
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
      const created = await this.run(
        SCRIPTS.create,
        [this.peerKey(record.publicKey), this.indexKey],
        [JSON.stringify(record), record.publicKey, this.channel, this.event('upsert', record.publicKey)],
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
      raw = await this.run(
        SCRIPTS.update,
        [this.peerKey(publicKey)],
        [JSON.stringify(patch), now.toISOString(), this.channel, this.event('upsert', publicKey)],
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
      const n = await this.run(SCRIPTS.delete, [this.peerKey(publicKey), this.indexKey], [publicKey, this.channel, this.event('delete', publicKey)]);
      return n === 1;
    } catch (err) {
      throw storeError(err, 'delete');
    }
  }

  /**
   * An import: each item created, or (mode 'upsert') its fields written
   * over an existing record, one script per item so each item's read,
   * decision, write and event are atomic, all sent at once (one pipelined
   * write: autopipelining). Items must come validated, with distinct keys.
   * Outcomes in item order. Not atomic across items: a Redis lost midway
   * (StoreUnavailableError) may leave some written; running the same
   * import again finishes it. Throws StoreUnavailableError.
   */
  async upsertMany(items: readonly UpsertItem[], opts: UpsertOptions = {}): Promise<UpsertOutcome[]> {
    const updatedAt = (opts.now ?? new Date()).toISOString();
    const mode = opts.mode ?? 'upsert';
    const dry = opts.dryRun ? '1' : '0';
    let replies: unknown[];
    try {
      replies = await Promise.all(
        items.map(({ record, patch }) =>
          this.run(
            SCRIPTS.upsert,
            [this.peerKey(record.publicKey), this.indexKey],
            [JSON.stringify(record), JSON.stringify(patch), record.publicKey, updatedAt, this.channel, this.event('upsert', record.publicKey), mode, dry],
          ),
        ),
      );
    } catch (err) {
      throw storeError(err, 'upsertMany');
    }
    return replies.map((r) => {
      if (!UPSERT_OUTCOMES.has(r)) throw new StoreCorruptError(`the import script answered ${String(r)}`);
      return r as UpsertOutcome;
    });
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
   * cannot run commands). It re-subscribes by itself after a reconnect;
   * events published while it was away are lost, so a subscriber should
   * re-check what it holds after 'ready'.
   */
  async subscribe(onEvent: (event: StoreEvent) => void, onReady?: () => void): Promise<{ close(): Promise<void> }> {
    // The offline queue stays on here: SUBSCRIBE is replayed on reconnect.
    const sub = this.redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined });
    sub.on('error', () => {}); // reported by the main connection's listener
    if (onReady) sub.on('ready', onReady);
    sub.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      const event = parseEvent(message);
      if (event !== null) onEvent(event);
    });
    try {
      await sub.subscribe(this.channel);
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
