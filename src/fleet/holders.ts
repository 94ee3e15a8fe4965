/**
 * Which gateway of the fleet holds each peer. A gateway takes a peer when
 * the client confirms a session there (its device reports a handshake
 * completed after the install: only the real client can do that), never at
 * install, so an initiation copied to another gateway cannot move a peer
 * away from its client. Takes are ordered by the timestamp of the
 * initiation each gateway admitted, so a gateway with an older session can
 * never take a peer back from one with a newer. The gateway that lost the
 * peer learns it from the `held` event the take publishes (or at its next
 * reconciliation) and removes it (`moved`).
 *
 * One hash per group, `wgjit:{<group>}:holders` (field: the public key), in
 * the slot of the group's peers, so a take checks the record and publishes
 * on the group's channel in one script. Schema: docs/store-schema.md.
 */
import type { PublicKey } from '../handshake/keys.js';
import { GROUP_CHARS, holdersKeyName, LUA_COMPARE, MAX_BATCH_KEYS, peerKeyName, script, storeError, type PeerStore } from '../authorize/store.js';

/** Bytes of an entry before the gateway id: the timestamp (12) and `since` (8, unix ms). */
const TS_BYTES = 12;
const HEAD_BYTES = TS_BYTES + 8;
/** The timestamp of a take that has none (a peer adopted after a restart): older than any real one. */
export const NO_TIMESTAMP = new Uint8Array(TS_BYTES);

export interface Holder {
  gateway: string;
  /** When it took the peer (the gateway's clock). */
  since: Date;
  /** TAI64N of the initiation it admitted the peer with; NO_TIMESTAMP for a weak take. */
  timestamp: Uint8Array;
}

/**
 * What a take did: `taken` (the caller holds the peer now; the event went
 * out), `kept` (it held it already), `refused` with the holder that stays
 * (another gateway, with a newer timestamp; or any, for a weak take), or
 * `gone` (no record: a deleted peer has no holder).
 */
export type TakeResult = { result: 'taken' | 'kept' | 'gone' } | { result: 'refused'; holder: Holder };

/**
 * KEYS: the peer's value, the group's holders. ARGV: publicKey, entry,
 * channel, event, weak ('1': only if nobody holds it, and no event).
 * 1 taken, 2 the caller held it (its timestamp raised if newer), 0 no
 * record, else the entry that stays.
 */
const TAKE_LUA = `${LUA_COMPARE}
if redis.call('STRLEN', KEYS[1]) <= 12 then return 0 end
local entry, weak = ARGV[2], ARGV[5] == '1'
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if cur then
  local order = compare(string.sub(entry, 1, 12), string.sub(cur, 1, 12))
  if string.sub(cur, 21) == string.sub(entry, 21) then
    if order > 0 and not weak then redis.call('HSET', KEYS[2], ARGV[1], string.sub(entry, 1, 12) .. string.sub(cur, 13)) end
    return 2
  end
  if weak or order < 0 then return cur end
end
redis.call('HSET', KEYS[2], ARGV[1], entry)
if not weak then redis.call('SPUBLISH', ARGV[3], ARGV[4]) end
return 1`;

/** KEYS: the group's holders. ARGV: publicKey, gateway. 1 if the gateway held it and no longer does. */
const RELEASE_LUA = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and string.sub(cur, 21) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0`;

const SCRIPTS = { take: script(TAKE_LUA), release: script(RELEASE_LUA) };

export function encodeHolder(holder: Holder): Buffer {
  const id = Buffer.from(holder.gateway, 'utf8');
  const out = Buffer.allocUnsafe(HEAD_BYTES + id.length);
  out.set(holder.timestamp, 0);
  out.writeBigUInt64BE(BigInt(Math.max(0, holder.since.getTime())), TS_BYTES);
  id.copy(out, HEAD_BYTES);
  return out;
}

/** Null for bytes that are not an entry (another program's, a hand edit): such an entry names nobody. */
export function decodeHolder(bytes: Buffer): Holder | null {
  if (bytes.length <= HEAD_BYTES) return null;
  return {
    timestamp: new Uint8Array(bytes.subarray(0, TS_BYTES)),
    since: new Date(Number(bytes.readBigUInt64BE(TS_BYTES))),
    gateway: bytes.toString('utf8', HEAD_BYTES),
  };
}

/** Byte order of two timestamps: what TAKE_LUA compares. */
export function compareTimestamps(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

export class Holders {
  constructor(private readonly store: PeerStore) {}

  private key(publicKey: string): string {
    return holdersKeyName(this.store.prefix, publicKey.slice(0, GROUP_CHARS));
  }

  /**
   * `gateway` takes the peer, with the timestamp of the initiation it
   * admitted it with. A weak take (no timestamp: a peer adopted after a
   * restart, confirmed, that nobody holds) only fills an empty place and
   * tells nobody. Throws StoreUnavailableError.
   */
  async take(publicKey: PublicKey, gateway: string, timestamp: Uint8Array | null, since: Date): Promise<TakeResult> {
    const key = publicKey.toString();
    const weak = timestamp === null;
    const entry = encodeHolder({ gateway, since, timestamp: timestamp ?? NO_TIMESTAMP });
    const event = `{"op":"held","publicKeys":["${key}"],"gateway":"${gateway}","timestamp":"${Buffer.from(timestamp ?? NO_TIMESTAMP).toString('hex')}"}`;
    let reply: unknown;
    try {
      reply = await this.store.run(SCRIPTS.take, [peerKeyName(this.store.prefix, key), this.key(key)], [key, entry, this.store.channel(key), event, weak ? '1' : '0']);
    } catch (err) {
      throw storeError(err, 'take');
    }
    if (reply === 1) return { result: 'taken' };
    if (reply === 2) return { result: 'kept' };
    if (reply === 0) return { result: 'gone' };
    const holder = Buffer.isBuffer(reply) ? decodeHolder(reply) : null;
    // An entry that is not ours to read: take it as nobody's (the next take replaces it).
    return holder === null ? { result: 'gone' } : { result: 'refused', holder };
  }

  /** Lets go of the peer if `gateway` holds it; true if it did. Throws StoreUnavailableError. */
  async release(publicKey: PublicKey, gateway: string): Promise<boolean> {
    const key = publicKey.toString();
    try {
      return (await this.store.run(SCRIPTS.release, [this.key(key)], [key, gateway])) === 1;
    } catch (err) {
      throw storeError(err, 'release');
    }
  }

  /** The peer's holder, or null. Throws StoreUnavailableError. */
  async of(publicKey: string): Promise<Holder | null> {
    try {
      const bytes = await this.store.commands.hgetBuffer(this.key(publicKey), publicKey);
      return bytes === null ? null : decodeHolder(bytes);
    } catch (err) {
      throw storeError(err, 'holder');
    }
  }

  /**
   * The holders of many peers, by PublicKey.id (peers nobody holds are
   * absent): one HMGET per group, MAX_BATCH_KEYS keys at a time, pipelined.
   * Throws StoreUnavailableError.
   */
  async ofMany(publicKeys: readonly PublicKey[]): Promise<Map<string, Holder>> {
    const out = new Map<string, Holder>();
    for (let i = 0; i < publicKeys.length; i += MAX_BATCH_KEYS) {
      const byGroup = new Map<string, PublicKey[]>();
      for (const key of publicKeys.slice(i, i + MAX_BATCH_KEYS)) {
        const group = key.toString().slice(0, GROUP_CHARS);
        const keys = byGroup.get(group);
        if (keys === undefined) byGroup.set(group, [key]);
        else keys.push(key);
      }
      try {
        await Promise.all(
          [...byGroup.values()].map(async (keys) => {
            const fields = keys.map(String);
            const values = await this.store.commands.hmgetBuffer(this.key(fields[0]!), ...fields);
            values.forEach((bytes, j) => {
              const holder = bytes === null ? null : decodeHolder(bytes);
              if (holder !== null) out.set(keys[j]!.id, holder);
            });
          }),
        );
      } catch (err) {
        throw storeError(err, 'holders');
      }
    }
    return out;
  }
}
