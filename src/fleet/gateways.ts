/**
 * The fleet's gateways in the store: each running gateway beats every
 * HEARTBEAT_INTERVAL_MS, which keeps its alive marker for HEARTBEAT_TTL_MS
 * (three beats) and its entry current. A gateway that stops cleanly takes
 * its marker away; one that dies lets it lapse. The entry stays (with its
 * last beat) for GATEWAY_FORGET_MS, so `GET /v1/gateways` shows a gateway
 * that went away as gone rather than not at all.
 *
 * The marker holds the beating process's instance id: a second process
 * with the same gateway id finds it held by another instance and waits
 * out one TTL. If the marker lapses meanwhile, the first was a run of its
 * own that died without cleaning up; if it is renewed, the id is alive
 * elsewhere and the second refuses to start (GatewayIdInUseError).
 *
 * Keys (one hash tag, one slot, also on a Cluster): `wgjit:{fleet}:gateways`
 * (hash: id → the entry as JSON), `wgjit:{fleet}:alive:<id>` (the
 * instance, with a Redis expiry). Schema: docs/store-schema.md.
 */
import { script, storeError, type PeerStore } from '../authorize/store.js';

export const HEARTBEAT_INTERVAL_MS = 1_000;
/** A gateway whose beats stop is gone after this: three beats. */
export const HEARTBEAT_TTL_MS = 3 * HEARTBEAT_INTERVAL_MS;
/** A gone gateway's entry is listed this long after its last beat, then dropped. */
export const GATEWAY_FORGET_MS = 24 * 3600_000;

/** What a gateway says of itself at each beat. */
export interface GatewayBeat {
  id: string;
  /** This process's run: random, so a restart is a new instance. */
  instance: string;
  host: string;
  pid: number;
  version: string;
  /** The WireGuard interface's public key, base64. */
  publicKey: string;
  /** The WireGuard interface's name; absent in the beats of earlier releases. */
  interface?: string;
  /** The WireGuard interface's addresses (`10.0.0.1`, `fd00::1`), which no peer may take; absent in the beats of earlier releases. */
  addresses?: string[];
  startedAt: string;
  heartbeatAt: string;
  installedPeers: number;
}

/** An entry as `GET /v1/gateways` lists it. */
export interface GatewayEntry extends GatewayBeat {
  alive: boolean;
}

/**
 * KEYS: the id's alive marker, the entries. ARGV: id, instance, entry, TTL
 * ms. 1 after a beat; {instance, entry} of the other instance that holds
 * the marker (nothing written).
 */
const BEAT_LUA = `
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[2] then return {held, redis.call('HGET', KEYS[2], ARGV[1]) or ''} end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[4])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1`;

/** KEYS: the alive marker. ARGV: instance. Takes the marker away if this instance holds it. */
const LEAVE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0`;

const SCRIPTS = { beat: script(BEAT_LUA), leave: script(LEAVE_LUA) };

export type BeatResult = { ok: true } | { ok: false; other: { instance: string; entry: GatewayBeat | null } };

function parseEntry(json: string): GatewayBeat | null {
  try {
    const v = JSON.parse(json) as GatewayBeat;
    return typeof v === 'object' && v !== null && typeof v.id === 'string' && typeof v.heartbeatAt === 'string' ? v : null;
  } catch {
    return null;
  }
}

export class Gateways {
  constructor(private readonly store: PeerStore) {}

  private get entriesKey(): string {
    return `${this.store.prefix}{fleet}:gateways`;
  }

  private aliveKey(id: string): string {
    return `${this.store.prefix}{fleet}:alive:${id}`;
  }

  /** One beat. Throws StoreUnavailableError. */
  async beat(entry: GatewayBeat): Promise<BeatResult> {
    let reply: unknown;
    try {
      reply = await this.store.run(SCRIPTS.beat, [this.aliveKey(entry.id), this.entriesKey], [entry.id, entry.instance, JSON.stringify(entry), String(HEARTBEAT_TTL_MS)]);
    } catch (err) {
      throw storeError(err, 'heartbeat');
    }
    if (reply === 1) return { ok: true };
    const [instance, other] = reply as [Buffer, Buffer];
    return { ok: false, other: { instance: instance.toString(), entry: parseEntry(other.toString()) } };
  }

  /** Takes this instance's alive marker away (a clean stop). Throws StoreUnavailableError. */
  async leave(id: string, instance: string): Promise<void> {
    try {
      await this.store.run(SCRIPTS.leave, [this.aliveKey(id)], [instance]);
    } catch (err) {
      throw storeError(err, 'leave');
    }
  }

  /**
   * Every gateway that beat within GATEWAY_FORGET_MS, alive ones first,
   * then by id; older entries are dropped on the way. Throws
   * StoreUnavailableError.
   */
  async list(now = Date.now()): Promise<GatewayEntry[]> {
    try {
      const all = await this.store.commands.hgetall(this.entriesKey);
      const entries: GatewayBeat[] = [];
      const forget: string[] = [];
      for (const [id, json] of Object.entries(all)) {
        const entry = parseEntry(json);
        if (entry === null || now - Date.parse(entry.heartbeatAt) > GATEWAY_FORGET_MS) forget.push(id);
        else entries.push(entry);
      }
      if (forget.length > 0) await this.store.commands.hdel(this.entriesKey, ...forget);
      const alive = await this.aliveOf(entries.map((e) => e.id));
      return entries
        .map((e) => ({ ...e, alive: alive.has(e.id) }))
        .sort((a, b) => Number(b.alive) - Number(a.alive) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    } catch (err) {
      throw storeError(err, 'gateways');
    }
  }

  /** Which of `ids` are alive now. Throws StoreUnavailableError. */
  async aliveOf(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    try {
      const markers = await this.store.commands.mget(...ids.map((id) => this.aliveKey(id)));
      return new Set(ids.filter((_, i) => markers[i] !== null));
    } catch (err) {
      throw storeError(err, 'gateways');
    }
  }
}
