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
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { normalizeKey, PublicKey } from '../handshake/keys.js';
import type { Cidr } from '../net/cidr.js';
import { admission, applyPatch, type AdmissionResult, type PeerPatch, type PeerRecord, type StoredPeer } from './peer.js';
import { decodeRecord, encodeRecord } from './record-codec.js';
import { isGatewayId } from '../fleet/gateway-id.js';
import { StoreHealth, type StoreTransition } from './store-health.js';
import { DEFAULT_WAIT_REPLICAS, describeRedisTarget, MAX_WAIT_REPLICAS, parseRedisUrl, spellEndpoint, type RedisTarget } from './redis-url.js';

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
/**
 * How often the store client PINGs its commands connection while it is up:
 * a server that keeps the connection open but stopped answering (paused,
 * swapping, loading) raises no connection event, and an idle process
 * would otherwise have no recent round trip to show
 * (`wgjit_store_last_success_timestamp_seconds`). One PING a second per
 * process costs Redis nothing.
 */
export const STORE_HEARTBEAT_MS = 1000;
/** How long a process (the daemon, `wgjit api`) waits for the store at start before it goes on without it. */
export const STORE_WAIT_AT_START_MS = 5_000;
/** Reconnect backoff: 100 ms, 200 ms, ... capped here, forever, so an outage heals by itself. */
export const REDIS_RETRY_STEP_MS = 100;
export const REDIS_RETRY_MAX_DELAY_MS = 1000;
/**
 * How long a write waits for --redis-wait-replicas replicas to acknowledge
 * it (WAIT's timeout). Below REDIS_COMMAND_TIMEOUT_MS, so a WAIT that runs
 * out answers "too few" rather than timing out on the client.
 */
export const REDIS_WAIT_TIMEOUT_MS = 500;
/**
 * How long the greatest timestamp of a deleted key is kept (its
 * tombstone), so that tombstones do not pile up without bound. Replays stay
 * refused after it goes: an initiation stamped further behind the
 * gateway's clock than this is refused before the store is asked
 * (`stale_timestamp`, src/pipeline.ts), and any capture made while the key
 * existed is at least this old once its tombstone is gone.
 */
export const TIMESTAMP_RETENTION_MS = 30 * 24 * 3600_000;
/**
 * How long after an admission another gateway may admit the very same
 * initiation (a twin: ADVANCE_TIMESTAMP_LUA). A client resends after 5 s
 * with a newer timestamp, so a copy that won the race to another gateway
 * delays the genuine client at most this long, never locks it out.
 */
export const TWIN_WINDOW_MS = 5_000;

/**
 * A store change, as subscribe() hands it on (published as JSON with the
 * key in base64): a record created, changed or deleted, a peer taken by
 * a gateway (src/fleet/holders.ts), with the timestamp it was taken with,
 * or a key's replay state cleared by an operator (resetReplay()).
 */
export type StoreEvent =
  | { op: 'upsert' | 'delete'; publicKey: PublicKey }
  | { op: 'held'; publicKey: PublicKey; gateway: string; timestamp: Uint8Array }
  | { op: 'reset-replay'; publicKey: PublicKey };

export type CreateResult = { ok: true; record: PeerRecord } | { ok: false; reason: 'exists' };
export type UpdateResult = { ok: true; record: PeerRecord } | { ok: false; reason: 'not_found' };
export type ListResult = { ok: true; items: PeerRecord[]; nextCursor: string | null } | { ok: false; reason: 'bad_cursor' };

/** One record of an import, as upsertMany takes it: the record to create, and the fields to change if it exists. */
export interface UpsertItem {
  /** From validateCreate: complete, stamped. */
  record: PeerRecord;
  /** The record's allowedIPs parsed, in order (checkCreate gives them); parsed again when absent. */
  cidrs?: readonly Cidr[];
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

/** The store holds a layout this release does not read (an earlier release's): `wgjit store migrate` first. */
export class StoreLayoutError extends Error {
  override readonly name = 'StoreLayoutError';
}

export interface PeerStoreOptions {
  /** Namespace for every key and the event channel. Default 'wgjit:'. */
  prefix?: string;
  /**
   * Where the store's loss and recovery are reported: one warning when it
   * becomes unreachable (with why), one line when it is back (with how
   * long it was down); StoreHealth says what counts.
   */
  log?: Logger;
  /**
   * Replicas that must acknowledge an API write (create, update, delete;
   * WAIT on a connection of its own) before it is answered. Default 0: no
   * wait. The admission path never waits.
   */
  waitReplicas?: number;
  /** How long a deleted key's timestamp is kept (its tombstone). Default TIMESTAMP_RETENTION_MS. */
  timestampRetentionMs?: number;
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
    case 'cluster':
      // Per node; the Cluster client's own options are in clusterOptionsFor.
      return { ...REDIS_OPTIONS, ...auth, ...(target.tls && { tls: {} }) };
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

/**
 * The Cluster client's options for a parsed redis+cluster:// target: each
 * node connection as redisOptionsFor says (fail fast, no offline queue),
 * and the client itself retrying its discovery forever, with the same cap.
 */
export function clusterOptionsFor(target: Extract<RedisTarget, { kind: 'cluster' }>, password?: string): ClusterOptions {
  // Reconnects are the Cluster client's: a node connection that retried on its own would hold a dead node's slots.
  const { retryStrategy: _, ...redisOptions } = redisOptionsFor(target, password);
  return {
    redisOptions,
    // Default true. Fail at once while no node is reachable, as a single server does.
    enableOfflineQueue: false,
    // Default false; as REDIS_OPTIONS says for a single server.
    enableAutoPipelining: true,
    // Default min(100 + times * 2, 2000): the same shape as ours, with our cap; never null (null ends the client).
    clusterRetryStrategy: (times: number) => Math.min(times * REDIS_RETRY_STEP_MS, REDIS_RETRY_MAX_DELAY_MS),
    // Default none: the slot map is re-read only on a MOVED reply; also re-read it on a timer (CLUSTER_SLOTS_REFRESH_MS).
    slotsRefreshInterval: CLUSTER_SLOTS_REFRESH_MS,
  };
}

/** Why --redis-wait-replicas does not go with a Cluster. */
export const CLUSTER_NO_WAIT = '--redis-wait-replicas does not work with a Cluster (WAIT counts the replicas of one node, and a Cluster client spreads commands over nodes): set min-replicas-to-write on the nodes instead (docs/operations.md)';

/** ioredis's message for a command on a connection that failed or never came up: it keeps neither where nor why. */
const CONNECTION_CLOSED = 'Connection is closed.';
const UNREACHABLE = 'connection refused, unreachable or closed';

/** Slots of a Redis Cluster. */
export const CLUSTER_SLOT_COUNT = 16_384;

/**
 * What one sentinel did wrong, from ioredis's 'sentinelError' message, in
 * words (ioredis's own "Connection is closed." says neither where nor why);
 * null for a message of another shape.
 */
export function sentinelFailure(message: string, masterName: string): { sentinel: string; problem: string } | null {
  const failed = /^failed to connect to sentinel (\S+) because (.*)$/s.exec(message);
  if (failed !== null) {
    const [, sentinel, reason] = failed as unknown as [string, string, string];
    if (reason === CONNECTION_CLOSED) return { sentinel, problem: `could not be reached (${UNREACHABLE})` };
    if (reason.startsWith('Command timed out')) return { sentinel, problem: `accepted the connection but did not answer within ${REDIS_COMMAND_TIMEOUT_MS} ms` };
    return { sentinel, problem: `answered ${reason}` };
  }
  const invalid = /^connected to sentinel (\S+) successfully, but got an invalid reply: (.*)$/s.exec(message);
  if (invalid !== null) {
    const [, sentinel, reply] = invalid as unknown as [string, string, string];
    return { sentinel, problem: reply === 'null' ? `does not monitor a master named "${masterName}"` : `gave no address (${reply})` };
  }
  return null;
}

/**
 * Why a Cluster whose nodes answer is not ready, from the slot map they
 * gave, with what to do about it.
 */
export function clusterNotFormed(slots: readonly unknown[], nodes: readonly string[]): string {
  let assigned = 0;
  for (let slot = 0; slot < CLUSTER_SLOT_COUNT; slot++) if (slots[slot] !== undefined) assigned++;
  const asked = `asked ${nodes.join(', ')}`;
  if (assigned === 0) {
    return `the Cluster is not formed: no hash slot is assigned (${asked}); create it with redis-cli --cluster create HOST:PORT HOST:PORT … [--cluster-replicas N]`;
  }
  if (assigned < CLUSTER_SLOT_COUNT) {
    return `the Cluster is not formed: ${assigned} of ${CLUSTER_SLOT_COUNT} hash slots are assigned (${asked}); assign the rest with redis-cli --cluster fix HOST:PORT`;
  }
  return `the Cluster's state is not ok (CLUSTER INFO says cluster_state:fail; ${asked}): it is still forming or a shard has no primary; see redis-cli --cluster check HOST:PORT`;
}

/**
 * The primaries of a Cluster as its slot map names them, each with its
 * connection (null when it has none now). From the slot map, not the
 * client's pool: the pool drops a node whose connection ended, while its
 * slots stay unserved until a replica is promoted.
 */
function clusterPrimaries(cluster: Cluster): Array<{ name: string; client: Redis | null }> {
  const names = new Set<string>();
  for (const owners of cluster.slots) if (owners?.[0] !== undefined) names.add(owners[0]);
  const connected = new Map(cluster.nodes('all').map((n) => [`${n.options.host}:${n.options.port}`, n]));
  return [...names].map((name) => ({ name: `Cluster node ${name}`, client: connected.get(name) ?? null }));
}

/** Why a heartbeat PING failed, after the server's or the Cluster node's name. */
function pingFailure(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (message.startsWith('Command timed out')) return `kept its connection open but did not answer a PING within ${REDIS_COMMAND_TIMEOUT_MS} ms`;
  if (message === CONNECTION_CLOSED) return `could not be reached (${UNREACHABLE})`;
  return `answered a PING with ${message}`;
}

/** Same text for the same failure, whatever the retry delay or attempt number in it. */
const failureShape = (message: string): string => message.replace(/\d+ms\b/g, 'Nms');


// Lua scripts. Each touches the keys of one peer's group, so of one hash
// slot (a Cluster runs it on one node); the group's channel is in the same
// slot, as SPUBLISH from a script requires there. Values are bytes: the
// first TS_BYTES are the greatest timestamp kept for the key (zeros: none),
// the rest the packed record (record-codec.ts); a value of TS_BYTES alone is
// a tombstone, the timestamp of a peer that no longer exists.

/**
 * Creates peers of one group. KEYS: each peer's value (its name ends with
 * the public key: peerKeyName), then the group's index. ARGV: the group's
 * channel, then each peer's record. For each peer in order: 1 if created,
 * or its value if it exists. A tombstone's timestamp goes into the new
 * value (and its expiry goes: SET clears it). The peers created go into
 * the index in one ZADD and into one event.
 */
const CREATE_LUA = `
local index = KEYS[#KEYS]
local zero = string.rep('\0', 12)
local out, made = {}, {}
for i = 1, #KEYS - 1 do
  local key, record = KEYS[i], ARGV[i + 1]
  local created = redis.call('SET', key, zero .. record, 'NX')
  if not created then
    local v = redis.call('GET', key)
    if v and #v > 12 then
      out[i] = v
    else
      if not v or #v ~= 12 then v = zero end
      created = redis.call('SET', key, v .. record)
    end
  end
  if created then
    made[#made + 1] = string.sub(key, -44)
    out[i] = 1
  end
end
if #made > 0 then
  local members = {}
  for j = 1, #made do
    members[2 * j - 1] = 0
    members[2 * j] = made[j]
  end
  redis.call('ZADD', index, unpack(members))
  redis.call('SPUBLISH', ARGV[1], '{"op":"upsert","publicKeys":["' .. table.concat(made, '","') .. '"]}')
end
return out`;

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

/**
 * KEYS: peer, group index, group holders (src/fleet/holders.ts). ARGV:
 * publicKey, channel, event, retention ms. 1 if it existed. The timestamp
 * stays, as a tombstone, for the retention; the peer's holder goes with it.
 */
const DELETE_LUA = `
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
local v = redis.call('GET', KEYS[1])
if not v or #v <= 12 then return 0 end
local ts = string.sub(v, 1, 12)
if ts == string.rep('\0', 12) then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ts, 'PX', ARGV[4]) end
redis.call('SPUBLISH', ARGV[2], ARGV[3])
return 1`;

/**
 * KEYS: peer, its twin marker. ARGV: channel, event. Forgets the key's
 * greatest timestamp: a record's becomes zeros (none), a tombstone goes,
 * the twin marker goes. Published whatever the store held: gateways keep
 * the timestamp in memory too. 1 if the store held one.
 */
const RESET_REPLAY_LUA = `
local v = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[2])
local held = 0
if v and string.sub(v, 1, 12) ~= string.rep('\0', 12) then held = 1 end
if v and #v <= 12 then redis.call('DEL', KEYS[1]) elseif v then redis.call('SETRANGE', KEYS[1], 0, string.rep('\0', 12)) end
redis.call('SPUBLISH', ARGV[1], ARGV[2])
return held`;

/**
 * Byte order of two strings of equal length: Lua's own string order follows
 * the locale. -1, 0 or 1. Shared by the scripts that order TAI64N timestamps.
 */
export const LUA_COMPARE = `
local function compare(a, b)
  for i = 1, #a do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y and 1 or -1 end
  end
  return 0
end`;

/**
 * KEYS: peer, its twin marker. ARGV: timestamp (12 bytes of TAI64N, where
 * byte order is time order), retention ms, the admitting gateway's id (empty
 * when the caller only keeps the timestamp of a peer it holds), twin window
 * ms. 1 if it was greater than the one kept (and is kept now), 0 if not.
 * A key with no value gets a tombstone, for the retention; a tombstone
 * keeps its expiry. An admission also leaves a twin marker (the timestamp
 * and the gateways that admitted it, space-separated, for the window): another gateway admitting the very
 * same initiation within the window gets 2 (a twin) instead of 0, once.
 * That is the initiation an on-path observer copied to a second gateway
 * before it reached the first: refusing it at the gateway that got it
 * second would lock out the genuine client, and the copy can install no
 * more than a provisional peer, which no handshake will confirm.
 */
const ADVANCE_TIMESTAMP_LUA = `${LUA_COMPARE}
local kept = redis.call('GETRANGE', KEYS[1], 0, 11)
local ts, gateway = ARGV[1], ARGV[3]
if #kept == 12 then
  local order = compare(ts, kept)
  if order == 0 and gateway ~= '' then
    local twin = redis.call('GET', KEYS[2])
    if not twin or string.sub(twin, 1, 12) ~= ts then return 0 end
    for seen in string.gmatch(string.sub(twin, 13), '%S+') do
      if seen == gateway then return 0 end
    end
    redis.call('APPEND', KEYS[2], ' ' .. gateway)
    return 2
  end
  if order <= 0 then return 0 end
  redis.call('SETRANGE', KEYS[1], 0, ts)
else
  redis.call('SET', KEYS[1], ts, 'PX', ARGV[2])
end
if gateway ~= '' then redis.call('SET', KEYS[2], ts .. ' ' .. gateway, 'PX', ARGV[4]) end
return 1`;

export interface Script {
  lua: string;
  sha: string;
}

export function script(lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

const SCRIPTS = {
  create: script(CREATE_LUA),
  update: script(UPDATE_LUA),
  delete: script(DELETE_LUA),
  advanceTimestamp: script(ADVANCE_TIMESTAMP_LUA),
  resetReplay: script(RESET_REPLAY_LUA),
};

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
export function storeError(err: unknown, what: string): Error {
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

/** Bytes of the greatest timestamp at the head of every peer value. */
const TS_BYTES = 12;
/** Characters of a key that name its group: 64² = 4,096 groups, each an index, a channel and a hash slot. */
export const GROUP_CHARS = 2;
/** wg's base64 alphabet in byte order, the order keys list in. */
const ALPHABET = [...'+/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'];
/** Every group, in key order. */
export const GROUPS: readonly string[] = ALPHABET.flatMap((a) => ALPHABET.map((b) => a + b));
/** Each character's place in ALPHABET, by its code. */
const RANK = new Int8Array(128).fill(-1);
ALPHABET.forEach((c, i) => (RANK[c.charCodeAt(0)] = i));
/** The place in GROUPS of the group of a key in wg's spelling. */
export function groupNumber(publicKey: string): number {
  return RANK[publicKey.charCodeAt(0)]! * ALPHABET.length + RANK[publicKey.charCodeAt(1)]!;
}
/** Groups a listing asks at once at most; it starts with one and doubles while pages come up short. */
const MAX_GROUPS_PER_ROUND = 256;
/** A compare-and-set update that keeps losing to other writers gives up after this many reads (503). */
export const MAX_UPDATE_ATTEMPTS = 8;
/** Records one create script takes (of one group): Redis runs nothing else meanwhile, 5 to 10 µs a record. */
export const MAX_CREATES_PER_SCRIPT = 128;

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

/** A peer's twin marker (ADVANCE_TIMESTAMP_LUA): lives TWIN_WINDOW_MS after an admission. */
export function twinKeyName(prefix: string, publicKey: string): string {
  return `${prefix}{${publicKey.slice(0, GROUP_CHARS)}}:twin:${publicKey}`;
}

/** The hash of a group's holders: which gateway holds each peer (src/fleet/holders.ts). */
export function holdersKeyName(prefix: string, group: string): string {
  return `${prefix}{${group}}:holders`;
}

export class PeerStore {
  readonly prefix: string;
  private readonly waitReplicas: number;
  private readonly retention: string;
  /** API writes and their WAIT, when waitReplicas > 0: a WAIT that blocks must not hold the admission path's lookups. */
  private readonly writer: Redis | null;
  private readonly log: Logger | undefined;
  private closing = false;
  /** The latest connection failure (problem()), and its shape: what was logged last. */
  private lastProblem: string | null = null;
  private lastShape = '';
  /** Up or down, as one thing over all connections: logged once per change, read by the metrics (health()). */
  private readonly state = new StoreHealth();
  private readonly changeListeners: Array<(change: StoreTransition) => void> = [];
  private readonly heartbeat: NodeJS.Timeout;
  private heartbeatInFlight = false;

  constructor(
    readonly redis: Redis | Cluster,
    opts: PeerStoreOptions = {},
  ) {
    this.prefix = opts.prefix ?? DEFAULT_PREFIX;
    this.waitReplicas = opts.waitReplicas ?? DEFAULT_WAIT_REPLICAS;
    this.retention = String(opts.timestampRetentionMs ?? TIMESTAMP_RETENTION_MS);
    if (!Number.isInteger(this.waitReplicas) || this.waitReplicas < 0 || this.waitReplicas > MAX_WAIT_REPLICAS) {
      throw new RangeError(`waitReplicas must be an integer 0..${MAX_WAIT_REPLICAS}`);
    }
    // WAIT counts the replicas of the node the connection is on; a Cluster client spreads commands over nodes.
    if (redis instanceof Cluster && this.waitReplicas > 0) throw new RangeError(CLUSTER_NO_WAIT);
    this.log = opts.log;
    if (redis instanceof Redis) this.keepConnected(redis, 'commands', true);
    this.writer = this.waitReplicas > 0 && redis instanceof Redis ? redis.duplicate() : null;
    if (this.writer !== null) this.keepConnected(this.writer, 'writes', false);
    this.heartbeat = setInterval(() => void this.beat(), STORE_HEARTBEAT_MS);
    this.heartbeat.unref();
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
    if (target.kind === 'cluster' && (opts.waitReplicas ?? DEFAULT_WAIT_REPLICAS) > 0) throw new TypeError(CLUSTER_NO_WAIT);
    const redis =
      target.kind === 'cluster'
        ? new Cluster(
            target.nodes.map((n) => ({ host: n.host, port: n.port })),
            { ...clusterOptionsFor(target, opts.password), ...(opts.redis !== undefined && { redisOptions: { ...clusterOptionsFor(target, opts.password).redisOptions, ...opts.redis } }) },
          )
        : new Redis({ ...redisOptionsFor(target, opts.password), ...opts.redis });
    const log = opts.log?.child({ component: 'store' });
    const store = new PeerStore(redis, { ...opts, ...(log !== undefined && { log }) });
    if (redis instanceof Cluster && target.kind === 'cluster') store.watchCluster(redis, target.nodes.map(spellEndpoint));
    log?.info({ redis: describeRedisTarget(target), waitReplicas: store.waitReplicas }, 'peer store connecting');
    return store;
  }

  /**
   * Listens to a connection of ours: reports its failures and its ready
   * checks (the commands connection's, `report`: they decide whether the
   * store is up; without an error listener ioredis prints each failure to
   * stderr), and connects it again if it ended without close():
   * retryStrategy never gives up, but ioredis ends a client whose connector
   * was disconnected while it was asking a sentinel, and such a client would
   * fail every command until a restart.
   */
  private keepConnected(client: Redis, role: 'commands' | 'writes' | 'events', report: boolean, closed: () => boolean = () => this.closing): void {
    // What each sentinel said in the current round of asking them (ioredis's own summary keeps only the last).
    const sentinels = new Map<string, string>();
    client.on('sentinelError', (err: Error) => {
      const said = sentinelFailure(err.message, client.options.name ?? '');
      if (said !== null) sentinels.set(said.sentinel, said.problem);
    });
    client.on('error', (err: Error) => {
      let problem = err.message;
      if (err.message.startsWith('All sentinels are unreachable')) {
        const round = [...sentinels].map(([sentinel, said]) => `${sentinel} ${said}`);
        sentinels.clear();
        // ioredis says this also when it merely ran through its list of
        // sentinels after answers from them: then no sentinel failed.
        if (round.length === 0 && !err.message.includes('Last error')) return;
        if (round.length > 0) problem = `no sentinel named a primary for master "${client.options.name}": ${round.join('; ')}`;
      }
      if (report) this.reportProblem(problem);
    });
    client.on('ready', () => {
      sentinels.clear();
      // The address the connection reached: with Sentinel, the primary it named.
      const primary = client.stream?.remoteAddress === undefined ? undefined : `${client.stream.remoteAddress}:${client.stream.remotePort}`;
      if (report) this.reportConnected(primary);
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

  /**
   * A failure of the store (a connection's, or the heartbeat's): kept for
   * problem(); the store going down is logged once, with why; a different
   * reason during the same outage only at debug (not once per retry).
   */
  private reportProblem(problem: string): void {
    const shape = failureShape(problem);
    this.lastProblem = problem;
    const change = this.state.failed(problem);
    if (change !== null) this.logChange(change);
    else if (shape !== this.lastShape) this.log?.debug({ err: problem }, 'peer store still unreachable');
    this.lastShape = shape;
  }

  /** A round trip succeeded (a connection's ready check, the heartbeat): the store coming back is logged once. */
  private reportConnected(primary: string | undefined): void {
    this.lastShape = '';
    this.lastProblem = null;
    const change = this.state.succeeded();
    if (change !== null) this.logChange(change, primary);
  }

  /** `listener` hears every change of the store's state from now on (after its log line). */
  onChange(listener: (change: StoreTransition) => void): void {
    this.changeListeners.push(listener);
  }

  private logChange(change: StoreTransition, primary?: string): void {
    for (const l of this.changeListeners) queueMicrotask(() => l(change));
    if (change.to === 'down') {
      this.log?.warn({ err: change.reason }, 'peer store unreachable');
      return;
    }
    const downSeconds = change.downMs === null ? undefined : Math.round(change.downMs) / 1000;
    this.log?.info({ primary, downSeconds }, change.first ? 'peer store connected' : 'peer store reachable again');
  }

  /**
   * The heartbeat (STORE_HEARTBEAT_MS): a PING on the commands connection
   * while it is up; with a Cluster, on every primary's, since a shard
   * without a primary leaves part of the keys unserved. Its failures count
   * only while the client still says it is up (no answer in time, LOADING,
   * MASTERDOWN, a Cluster node lost, …): a connection that broke reports
   * its own failure, with the real reason.
   */
  private async beat(): Promise<void> {
    const client = this.redis;
    if (this.closing || this.heartbeatInFlight || client.status !== 'ready') return;
    this.heartbeatInFlight = true;
    try {
      const targets = client instanceof Cluster ? clusterPrimaries(client) : [{ name: 'the server', client }];
      const answers = await Promise.allSettled(targets.map((t) => (t.client === null ? Promise.reject(new Error(CONNECTION_CLOSED)) : t.client.ping())));
      if (this.closing || client.status !== 'ready') return;
      const failures = answers.flatMap((answer, i) => (answer.status === 'fulfilled' ? [] : [`${targets[i]!.name} ${pingFailure(answer.reason)}`]));
      if (failures.length === 0) this.reportConnected(undefined);
      else this.reportProblem(failures.join('; '));
    } finally {
      this.heartbeatInFlight = false;
    }
  }

  /** Up or down as logged, and the wall-clock ms of the last successful round trip (null before the first): for the metrics. */
  health(): { up: boolean; lastSuccessMs: number | null } {
    return { up: this.state.up, lastSuccessMs: this.state.lastSuccessMs };
  }

  /**
   * Why the store is not connected, in words: the latest connection
   * failure (which sentinels did not answer and how, a Cluster that is not
   * formed, …); null once connected, or before any failure.
   */
  problem(): string | null {
    return this.lastProblem;
  }

  /**
   * Reports a Cluster client's failures, as keepConnected does a single
   * one's. ioredis retries a Cluster whose nodes answer but that is not
   * formed (slots unassigned, cluster_state not ok) without an error event:
   * the slot map it read says why.
   */
  private watchCluster(cluster: Cluster, nodes: string[]): void {
    let refreshed = false;
    cluster.on('error', (err: Error & { lastNodeError?: Error }) => {
      const last = err.lastNodeError?.message;
      this.reportProblem(
        err.message.startsWith('Failed to refresh slots cache')
          ? `no Cluster node answered (${nodes.join(', ')})${last === undefined ? '' : last === CONNECTION_CLOSED ? `: ${UNREACHABLE}` : `: ${last}`}`
          : err.message,
      );
    });
    cluster.on('refresh', () => {
      // Only a refresh while connecting: a ready client refreshes its map every CLUSTER_SLOTS_REFRESH_MS.
      if (cluster.status !== 'ready') refreshed = true;
    });
    // A refresh then a close without 'ready': ioredis's ready check (CLUSTER INFO) found cluster_state not ok.
    cluster.on('close', () => {
      if (!refreshed || this.closing) return;
      refreshed = false;
      this.reportProblem(clusterNotFormed(cluster.slots, nodes));
    });
    cluster.on('ready', () => {
      refreshed = false;
      this.reportConnected(undefined);
    });
  }

  /**
   * The client commands go to. A Cluster client that is not ready fails
   * them here: with no slot map (a Cluster not formed) ioredis would hold
   * them until there is one, and the caller (an admission, an API request,
   * /readyz) would wait for ever instead of failing at once.
   */
  get commands(): Redis | Cluster {
    if (this.redis instanceof Cluster && this.redis.status !== 'ready') {
      throw new StoreUnavailableError(`peer store unavailable: ${this.lastProblem ?? 'the Cluster client is not connected yet'}`);
    }
    return this.redis;
  }

  /**
   * A process's start (the daemon, `wgjit api`): waits `timeoutMs` for the
   * store. One that answers in time is refused if it still holds an
   * earlier release's layout (StoreLayoutError); one that does not is
   * logged, with why, and the process goes on without it: commands fail
   * (503, /readyz not ready) while the client keeps reconnecting.
   */
  async readyAtStart(timeoutMs = STORE_WAIT_AT_START_MS): Promise<boolean> {
    if (await this.whenReady(timeoutMs)) {
      await this.refuseLegacyLayout();
      return true;
    }
    this.log?.warn(
      { err: this.lastProblem ?? 'no answer yet' },
      `peer store not reachable within ${timeoutMs / 1000} s: going on without it (API 503, /readyz not ready) and retrying`,
    );
    return false;
  }

  /** Resolves true once connected (every connection of the store), false if `timeoutMs` passes first. Never rejects. */
  async whenReady(timeoutMs = 5000): Promise<boolean> {
    const clients = [this.redis, ...(this.writer === null ? [] : [this.writer])];
    const waits: Array<() => void> = [];
    const ready = (client: Redis | Cluster) =>
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
    return peerKeyName(this.prefix, publicKey);
  }

  private indexKey(group: string): string {
    return indexKeyName(this.prefix, group);
  }

  /** The events channel of the group `publicKey` (or a group name) belongs to. */
  channel(publicKeyOrGroup: string): string {
    return `${this.prefix}{${publicKeyOrGroup.slice(0, GROUP_CHARS)}}:events`;
  }

  /** The JSON of docs/store-schema.md, spelled out (a key is base64: nothing to escape); CREATE_LUA spells its own. */
  private event(op: StoreEvent['op'], publicKey: string): string {
    return `{"op":"${op}","publicKeys":["${publicKey}"]}`;
  }

  /**
   * EVALSHA, loading the script on NOSCRIPT (after a Redis restart or on a
   * fresh server). Bulk replies as bytes. Also for the store's companions
   * on the same connection (src/fleet).
   */
  async run(s: Script, keys: string[], args: Array<string | Buffer>, client: Redis | Cluster = this.commands): Promise<unknown> {
    // ioredis has a Buffer form of every command but types none of these
    // two; not callBuffer(), which auto-pipelining sends without its name.
    const c = client as unknown as Record<'evalshaBuffer' | 'evalBuffer', (...a: Array<string | number | Buffer>) => Promise<unknown>>;
    try {
      return await c.evalshaBuffer(s.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (isReplyError(err) && err.message.startsWith('NOSCRIPT')) return c.evalBuffer(s.lua, keys.length, ...keys, ...args);
      throw err;
    }
  }

  /**
   * An API write: the script on the writer connection, then, when it
   * changed something, replicated() (WAIT).
   */
  private async write(s: Script, keys: string[], args: Array<string | Buffer>, changed: (reply: unknown) => boolean): Promise<unknown> {
    const reply = await this.run(s, keys, args, this.writer ?? this.commands);
    if (changed(reply)) await this.replicated();
    return reply;
  }

  /**
   * With waitReplicas > 0, WAIT on the writer connection for that many
   * replicas to hold every write it sent so far. Fewer in time:
   * StoreUnreplicatedError (the writes are on the primary, and a failover
   * could lose them).
   */
  private async replicated(): Promise<void> {
    if (this.waitReplicas === 0) return;
    const acked = await (this.writer ?? this.commands).wait(this.waitReplicas, REDIS_WAIT_TIMEOUT_MS);
    if (acked < this.waitReplicas) {
      this.log?.warn({ acked, waitReplicas: this.waitReplicas }, 'peer store write not acknowledged by enough replicas in time: answered 503');
      throw new StoreUnreplicatedError(
        `peer store write reached the primary but ${acked} of ${this.waitReplicas} replicas acknowledged it within ${REDIS_WAIT_TIMEOUT_MS} ms; a failover could lose it`,
      );
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
      return (await this.commands.ping()) === 'PONG';
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
      const found = await Promise.all([`${this.prefix}peers`, `${this.prefix}timestamps`].map(async (k) => ((await this.commands.exists(k)) === 1 ? k : null)));
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
    try {
      const [created] = await this.createMany([{ record }]);
      if (created === 1) await this.replicated();
      return created === 1 ? { ok: true, record } : { ok: false, reason: 'exists' };
    } catch (err) {
      throw storeError(err, 'create');
    }
  }

  /**
   * The create script for many records at once, on the writer connection:
   * one call per group (one slot) and at most MAX_CREATES_PER_SCRIPT
   * records, all calls pipelined. For each record in order: 1 if created,
   * or the value of the peer that exists. No WAIT (the caller's).
   */
  private async createMany(records: ReadonlyArray<Pick<UpsertItem, 'record' | 'cidrs'>>): Promise<Array<1 | Buffer>> {
    const byGroup = new Map<string, number[]>();
    records.forEach(({ record }, i) => {
      const group = record.publicKey.slice(0, GROUP_CHARS);
      const at = byGroup.get(group);
      if (at === undefined) byGroup.set(group, [i]);
      else at.push(i);
    });
    const out = new Array<1 | Buffer>(records.length);
    const calls: Promise<void>[] = [];
    for (const [group, all] of byGroup) {
      for (let from = 0; from < all.length; from += MAX_CREATES_PER_SCRIPT) {
        const at = all.slice(from, from + MAX_CREATES_PER_SCRIPT);
        const keys = at.map((i) => this.peerKey(records[i]!.record.publicKey));
        keys.push(this.indexKey(group));
        const args: Array<string | Buffer> = [this.channel(group)];
        for (const i of at) args.push(encodeRecord(records[i]!.record, records[i]!.cidrs));
        calls.push(
          this.run(SCRIPTS.create, keys, args, this.writer ?? this.commands).then((reply) => {
            (reply as Array<1 | Buffer>).forEach((r, j) => (out[at[j]!] = r));
          }),
        );
      }
    }
    await Promise.all(calls);
    return out;
  }

  async get(publicKey: string): Promise<PeerRecord | null> {
    return (await this.read(publicKey))?.record ?? null;
  }

  private async read(publicKey: string): Promise<StoredPeer | null> {
    return this.decode(publicKey, await this.readValue(publicKey));
  }

  private async readValue(publicKey: string): Promise<Buffer | null> {
    try {
      return await this.commands.getBuffer(this.peerKey(publicKey));
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
      let group = after === null ? 0 : groupNumber(after);
      for (let round = 1; keys.length <= limit && group < GROUPS.length; round = Math.min(round * 2, MAX_GROUPS_PER_ROUND)) {
        const want = limit + 1 - keys.length;
        const asked = GROUPS.slice(group, group + round);
        const answers = await Promise.all(
          asked.map((g) => this.commands.zrangebylex(this.indexKey(g), after !== null && after.startsWith(g) ? `(${after}` : '-', '+', 'LIMIT', 0, want)),
        );
        for (const answer of answers) keys.push(...answer.slice(0, limit + 1 - keys.length));
        group += asked.length;
      }
      const page = keys.slice(0, limit);
      const values = await Promise.all(page.map((k) => this.commands.getBuffer(this.peerKey(k))));
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
        written = await this.write(SCRIPTS.update, [this.peerKey(publicKey)], [value!.subarray(TS_BYTES), next, this.channel(publicKey), this.event('upsert', publicKey)], (reply) => reply === 1);
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
      const n = await this.write(
        SCRIPTS.delete,
        [this.peerKey(publicKey), this.indexKey(publicKey.slice(0, GROUP_CHARS)), holdersKeyName(this.prefix, publicKey.slice(0, GROUP_CHARS))],
        [publicKey, this.channel(publicKey), this.event('delete', publicKey), this.retention],
        (reply) => reply === 1,
      );
      return n === 1;
    } catch (err) {
      throw storeError(err, 'delete');
    }
  }

  /**
   * An import: each item created, or (mode 'upsert') its fields written
   * over an existing record, all items at once, pipelined. New records go
   * through the create script, one call per group (createMany: the more
   * items of one group in a batch, the fewer calls; `wgjit peer import`
   * sends its records in group order), which answers the value of a peer
   * that exists; each of those is then updated with update's
   * compare-and-set (each write and its event atomic; another writer in
   * between: read again). A record whose fields the patch would not change
   * is left alone (`unchanged`: no write, no event). One WAIT for the whole
   * batch (waitReplicas). Items must come validated, with distinct keys.
   * Outcomes in item order. Not atomic across items: a Redis lost midway
   * (StoreUnavailableError) may leave some written; running the same import
   * again finishes it.
   */
  async upsertMany(items: readonly UpsertItem[], opts: UpsertOptions = {}): Promise<UpsertOutcome[]> {
    const now = opts.now ?? new Date();
    const mode = opts.mode ?? 'upsert';
    try {
      const client = this.writer ?? this.commands;
      if (opts.dryRun) {
        const values = await Promise.all(items.map((item) => client.getBuffer(this.peerKey(item.record.publicKey))));
        return items.map((item, i) => {
          const existing = this.decode(item.record.publicKey, values[i] ?? null);
          return existing === null ? 'created' : mode === 'create' ? 'exists' : this.patched(item, existing, values[i]!, now) === null ? 'unchanged' : 'updated';
        });
      }
      // Every record's create at once; the peers that exist answer their values, and take the patch.
      const created = await this.createMany(items);
      const outcomes = new Array<UpsertOutcome>(items.length).fill('created');
      const existing: Promise<void>[] = [];
      created.forEach((c, i) => {
        if (c !== 1) existing.push(this.patchExisting(items[i]!, mode, c, now).then((o) => void (outcomes[i] = o)));
      });
      await Promise.all(existing);
      if (outcomes.some((o) => o === 'created' || o === 'updated')) await this.replicated();
      return outcomes;
    } catch (err) {
      throw storeError(err, 'upsertMany');
    }
  }

  /** The record `item`'s patch makes of the existing one; null when that changes nothing. */
  private patched({ patch }: UpsertItem, existing: StoredPeer, value: Buffer, now: Date): PeerRecord | null {
    const next = applyPatch(existing.record, patch, now);
    return encodeRecord({ ...next, updatedAt: existing.record.updatedAt }).equals(value.subarray(TS_BYTES)) ? null : next;
  }

  /** upsertMany for a peer found existing (`value`): its patch written with update's compare-and-set, again on a race. */
  private async patchExisting(item: UpsertItem, mode: 'upsert' | 'create', found: Buffer, now: Date): Promise<UpsertOutcome> {
    let value: Buffer | null = found;
    const { publicKey } = item.record;
    const client = this.writer ?? this.commands;
    for (let attempt = 0; attempt < MAX_UPDATE_ATTEMPTS; attempt++) {
      const existing = this.decode(publicKey, value);
      if (existing === null) {
        // Deleted since: create it after all.
        const [created] = await this.createMany([item]);
        if (created === 1) return 'created';
        value = created as Buffer;
        continue;
      }
      if (mode === 'create') return 'exists';
      const next = this.patched(item, existing, value!, now);
      if (next === null) return 'unchanged';
      const written = await this.run(SCRIPTS.update, [this.peerKey(publicKey)], [value!.subarray(TS_BYTES), encodeRecord(next), this.channel(publicKey), this.event('upsert', publicKey)], client);
      if (written === 1) return 'updated';
      // Deleted (0) or changed (-1) since it was read: read it again.
      value = await client.getBuffer(this.peerKey(publicKey));
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
        values = await Promise.all(spelled.map((k) => this.commands.getBuffer(this.peerKey(k))));
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
   * record's (a tombstone, for the retention: TIMESTAMP_RETENTION_MS). True
   * if `timestamp` is greater than the one kept, and is kept now; false if
   * not (a replay). `admittedBy`: the id of the gateway admitting the
   * initiation (absent when it only keeps the timestamp of a peer it
   * holds); another gateway admitting the same initiation within
   * TWIN_WINDOW_MS gets true too, once (ADVANCE_TIMESTAMP_LUA says why).
   * Atomic across the fleet. Throws StoreUnavailableError.
   */
  async advanceTimestamp(publicKey: PublicKey, timestamp: Uint8Array, admittedBy = ''): Promise<boolean> {
    if (timestamp.byteLength !== TS_BYTES) throw new RangeError('timestamp must be 12 bytes of TAI64N');
    const ts = Buffer.from(timestamp.buffer, timestamp.byteOffset, timestamp.byteLength);
    const key = publicKey.toString();
    try {
      const kept = await this.run(SCRIPTS.advanceTimestamp, [this.peerKey(key), twinKeyName(this.prefix, key)], [ts, this.retention, admittedBy, String(TWIN_WINDOW_MS)]);
      return kept === 1 || kept === 2;
    } catch (err) {
      throw storeError(err, 'advanceTimestamp');
    }
  }

  /**
   * An operator's way out of a lockout (a timestamp kept from an initiation
   * stamped ahead of time): forgets the key's greatest timestamp in the
   * store and tells every gateway to forget it too (the `reset-replay`
   * event: src/lifecycle/store-sync.ts). True if the store held one.
   * Throws StoreUnavailableError.
   */
  async resetReplay(publicKey: string): Promise<boolean> {
    try {
      const held = await this.write(SCRIPTS.resetReplay, [this.peerKey(publicKey), twinKeyName(this.prefix, publicKey)], [this.channel(publicKey), this.event('reset-replay', publicKey)], () => true);
      return held === 1;
    } catch (err) {
      throw storeError(err, 'resetReplay');
    }
  }

  /**
   * Receive store events on a second connection (a subscribed connection
   * cannot run commands): every group's channel, by sharded pub/sub
   * (SSUBSCRIBE; on a Cluster each node delivers its own slots' events). It
   * reconnects by itself (through the sentinels with Sentinel, to the
   * promoted node on a Cluster) and subscribes again; `onReady` is called
   * each time the subscription is (again) in place. Events published while
   * it was away are lost, so a subscriber should re-check what it holds then.
   */
  async subscribe(onEvent: (event: StoreEvent) => void, onReady?: () => void): Promise<{ close(): Promise<void> }> {
    // The offline queue stays on here: SSUBSCRIBE is replayed on reconnect.
    const subscriberOptions = { enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined };
    // Not while the store is away: SSUBSCRIBE would wait in the offline
    // queue until it is back (for ever with a Cluster that is not formed),
    // and the caller would hang instead of trying again later (StoreSync).
    if (!(await this.whenReady(REDIS_CONNECT_TIMEOUT_MS))) {
      throw new StoreUnavailableError(`peer store unavailable (subscribe): ${this.lastProblem ?? 'not connected yet'}`);
    }
    const channels = GROUPS.map((g) => this.channel(g));
    const sub =
      this.redis instanceof Cluster
        ? // A subscriber per node, each for its own slots' channels, moved with them on a failover.
          this.redis.duplicate(undefined, { shardedSubscribers: true, enableOfflineQueue: true, slotsRefreshInterval: CLUSTER_SLOTS_REFRESH_MS, redisOptions: { ...this.redis.options.redisOptions, ...subscriberOptions } })
        : this.redis.duplicate(subscriberOptions);
    let closed = false;
    if (sub instanceof Cluster) {
      sub.on('error', () => {}); // reported by the main connection's listener
      if (onReady) sub.on('ready', onReady);
    } else {
      // Failures are reported by the main connection's listener.
      this.keepConnected(sub, 'events', false, () => closed);
      sub.on('ready', () => {
        // ioredis re-subscribes on its own after a reconnect, without saying
        // when it is done; ours comes after it, so once it is answered the
        // subscription is in place and a re-check misses nothing.
        sub.ssubscribe(...channels).then(
          () => onReady?.(),
          () => {}, // the connection broke again: the next 'ready' tries again
        );
      });
    }
    const known = new Set(channels);
    sub.on('smessage', (channel: string, message: string) => {
      if (!known.has(channel)) return;
      for (const event of parseEvents(message)) if (this.channel(event.publicKey.toString()) === channel) onEvent(event);
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
    clearInterval(this.heartbeat);
    await Promise.all([this.redis, ...(this.writer === null ? [] : [this.writer])].map(quit));
  }
}

async function quit(client: Redis | Cluster): Promise<void> {
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

/**
 * The changes one message of the channel names (one per key), none if it
 * is not one of ours. `publicKeys` is what this release publishes; the
 * `publicKey` of one key is what earlier releases did, still read so that
 * gateways can be upgraded before the writers. A `held` message names the
 * gateway (GATEWAY_ID_RULE) and the timestamp (24 hex digits) it took its
 * one key with.
 */
export function parseEvents(message: string): StoreEvent[] {
  let v: unknown;
  try {
    v = JSON.parse(message);
  } catch {
    return [];
  }
  if (typeof v !== 'object' || v === null) return [];
  const { op, publicKey, publicKeys, gateway, timestamp } = v as Record<string, unknown>;
  if (op !== 'upsert' && op !== 'delete' && op !== 'held' && op !== 'reset-replay') return [];
  const spelled = Array.isArray(publicKeys) ? (publicKeys as unknown[]) : publicKey !== undefined ? [publicKey] : [];
  let held: { gateway: string; timestamp: Uint8Array } | null = null;
  if (op === 'held') {
    if (typeof gateway !== 'string' || !isGatewayId(gateway) || typeof timestamp !== 'string' || !/^[0-9a-f]{24}$/.test(timestamp) || spelled.length !== 1) return [];
    held = { gateway, timestamp: Buffer.from(timestamp, 'hex') };
  }
  const events: StoreEvent[] = [];
  for (const text of spelled.slice(0, MAX_CREATES_PER_SCRIPT)) {
    // Only wg's own spelling, as the store writes it.
    const key = PublicKey.parse(text);
    if (key === null || key.toString() !== text) continue;
    events.push(held === null ? { op: op as 'upsert' | 'delete' | 'reset-replay', publicKey: key } : { op: 'held', publicKey: key, ...held });
  }
  return events;
}
