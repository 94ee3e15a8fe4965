/**
 * The store's epoch: how a gateway tells a store that forgot (restarted
 * empty without persistence, flushed, a wrong database number, a replica
 * promoted before it caught up, a Cluster shard lost) from one whose peers
 * were deleted on purpose. Without it, a reconciliation right after such a
 * loss removes every installed peer as "unknown to the store": on a fleet,
 * every gateway disconnects every client at once.
 *
 * Every group (GROUPS) holds an epoch marker, `wgjit:{g}:epoch`: one random
 * id, the same in every group, written once, by the first gateway that
 * finds the store empty and nothing on its own device. Nothing else ever
 * writes or deletes it, so a group whose marker is gone, or holds another
 * id than the one the store had, lost its data. A store with records but
 * no marker at all predates the markers (an upgrade, `wgjit store
 * migrate`): it is given one. On a Cluster each shard
 * holds its own groups' markers, so the loss of one shard shows as exactly
 * its groups.
 *
 * A loss once recognized is written down (`wgjit:{fleet}:reset`, JSON), so
 * that every gateway, also one started afterwards that never knew the old
 * id, keeps its peers until an operator confirms the reset (`wgjit store
 * confirm-reset`, which deletes it). Schema: docs/store-schema.md.
 */
import { randomBytes } from 'node:crypto';
import { Cluster, type Redis } from 'ioredis';
import { GROUPS, indexKeyName, storeError, type PeerStore } from './store.js';

/** An epoch id: 16 hex digits. */
const EPOCH_ID = /^[0-9a-f]{16}$/;

/** The written record of a reset (`wgjit:{fleet}:reset`). */
export interface ResetMarker {
  /** When it was recognized (ISO 8601). */
  since: string;
  /** The gateway that recognized it. */
  detectedBy: string;
  /** Groups whose epoch marker was missing or another than the store's. */
  lostGroups: number;
  /** The epoch the store has now (the lost groups were given it). */
  epoch: string;
}

/** What a read of every group's marker says (judgeEpochs). */
export type EpochJudgement =
  /** No marker anywhere, and nothing says the store ever had any: a new store, to be given an epoch. */
  | { kind: 'new' }
  | { kind: 'intact'; epoch: string }
  /** `lost` groups have no marker or another id than `epoch`, the store's. */
  | { kind: 'lost'; epoch: string; lost: number };

export function newEpochId(): string {
  return randomBytes(8).toString('hex');
}

/**
 * Pure. `values`: each group's marker (null: none). `known`: the epoch this
 * process saw before, null if none. `evidence`: something says peers were
 * admitted from this store before (the device holds peers), so a store
 * with no marker at all forgot rather than is new. The store's epoch is
 * the one known, else the one most groups hold.
 */
export function judgeEpochs(values: readonly (string | null)[], known: string | null, evidence: boolean): EpochJudgement {
  const counts = new Map<string, number>();
  for (const v of values) if (v !== null) counts.set(v, (counts.get(v) ?? 0) + 1);
  if (counts.size === 0) return known === null && !evidence ? { kind: 'new' } : { kind: 'lost', epoch: known ?? newEpochId(), lost: values.length };
  let epoch = known;
  if (epoch === null) {
    let most = 0;
    for (const [v, n] of counts) if (n > most) [epoch, most] = [v, n];
  }
  const lost = values.length - (counts.get(epoch!) ?? 0);
  return lost === 0 ? { kind: 'intact', epoch: epoch! } : { kind: 'lost', epoch: epoch!, lost };
}

export function epochKeyName(prefix: string, group: string): string {
  return `${prefix}{${group}}:epoch`;
}

export function resetKeyName(prefix: string): string {
  return `${prefix}{fleet}:reset`;
}

/** Parses a reset marker as written; null for anything else. */
export function parseResetMarker(text: string | null): ResetMarker | null {
  if (text === null) return null;
  try {
    const v = JSON.parse(text) as Partial<ResetMarker>;
    if (typeof v.since !== 'string' || typeof v.detectedBy !== 'string' || typeof v.lostGroups !== 'number' || typeof v.epoch !== 'string' || !EPOCH_ID.test(v.epoch)) return null;
    return { since: v.since, detectedBy: v.detectedBy, lostGroups: v.lostGroups, epoch: v.epoch };
  } catch {
    return null;
  }
}

/** The epoch markers and the reset record in the store. Every method throws StoreUnavailableError. */
export class StoreEpoch {
  constructor(private readonly store: Pick<PeerStore, 'prefix' | 'commands'>) {}

  private get redis(): Redis | Cluster {
    return this.store.commands;
  }

  /** The markers of `groups` (all of them by default), in that order. */
  async read(groups: readonly string[] = GROUPS): Promise<Array<string | null>> {
    try {
      const redis = this.redis;
      const keys = groups.map((g) => epochKeyName(this.store.prefix, g));
      // One MGET on a single Redis; a Cluster takes no cross-slot MGET (each group is its own slot).
      const values = redis instanceof Cluster ? await Promise.all(keys.map((k) => redis.get(k))) : keys.length === 0 ? [] : await redis.mget(keys);
      return values.map((v) => (v !== null && EPOCH_ID.test(v) ? v : null));
    } catch (err) {
      throw storeError(err, 'epoch read');
    }
  }

  /** Whether any group holds a record (its index exists): a store with records but no marker predates the markers. */
  async holdsRecords(): Promise<boolean> {
    try {
      const redis = this.redis;
      const keys = GROUPS.map((g) => indexKeyName(this.store.prefix, g));
      // One EXISTS of every index on a single Redis; a Cluster takes no cross-slot EXISTS.
      if (!(redis instanceof Cluster)) return (await redis.exists(...keys)) > 0;
      return (await Promise.all(keys.map((k) => redis.exists(k)))).some((n) => n > 0);
    } catch (err) {
      throw storeError(err, 'epoch read');
    }
  }

  /** Gives each of `groups` that has no marker `epoch`; with `overwrite`, also those with another. */
  async fill(groups: readonly string[], epoch: string, overwrite = false): Promise<void> {
    try {
      const redis = this.redis;
      const keys = groups.map((g) => epochKeyName(this.store.prefix, g));
      if (redis instanceof Cluster) {
        await Promise.all(keys.map((k) => (overwrite ? redis.set(k, epoch) : redis.set(k, epoch, 'NX'))));
        return;
      }
      // One round trip on a single Redis.
      const batch = redis.pipeline();
      for (const k of keys) {
        if (overwrite) batch.set(k, epoch);
        else batch.set(k, epoch, 'NX');
      }
      const results = await batch.exec();
      const failed = results?.find(([e]) => e !== null);
      if (failed !== undefined) throw failed[0];
    } catch (err) {
      throw storeError(err, 'epoch write');
    }
  }

  /** The reset in force, null when there is none. */
  async reset(): Promise<ResetMarker | null> {
    try {
      return parseResetMarker(await this.redis.get(resetKeyName(this.store.prefix)));
    } catch (err) {
      throw storeError(err, 'reset read');
    }
  }

  /** Writes `marker` down unless a reset is recorded already; the one in force either way. */
  async recordReset(marker: ResetMarker): Promise<ResetMarker> {
    try {
      const key = resetKeyName(this.store.prefix);
      if ((await this.redis.set(key, JSON.stringify(marker), 'NX')) === 'OK') return marker;
      return parseResetMarker(await this.redis.get(key)) ?? marker;
    } catch (err) {
      throw storeError(err, 'reset write');
    }
  }

  /** An operator's confirmation: the reset record goes. What it said, null if there was none. */
  async confirmReset(): Promise<ResetMarker | null> {
    try {
      return parseResetMarker(await this.redis.getdel(resetKeyName(this.store.prefix)));
    } catch (err) {
      throw storeError(err, 'reset confirm');
    }
  }
}
