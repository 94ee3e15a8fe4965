/**
 * The gateway's short memory of verified initiations, per key, in the
 * order WireGuard itself checks the peers it holds:
 *
 * 1. An initiation whose timestamp is not greater than the greatest seen
 *    here is a replay, refused without a store round trip. Only the key's
 *    owner can make an initiation that verifies, so every timestamp seen
 *    here was once genuine; the store's own check (advanceTimestamp) stays
 *    the authority across restarts and gateways.
 * 2. Otherwise at most one initiation per key per MIN_INITIATION_INTERVAL_MS
 *    is considered: a burst of resends costs one store round trip.
 *
 * 3. The greatest timestamp the store accepted for the key (keep()): what
 *    this gateway writes back when the store forgot its own (a reset, a
 *    failover to a replica that had not caught up: src/lifecycle/store-guard.ts).
 *
 * A replay does not take the key's slot, so nobody who captured an
 * initiation can hold its owner back by sending it again and again.
 * The store lookup the pipeline starts before the timestamp is known
 * (lookAhead) is only for keys not seen lately: an initiation of a key
 * seen lately is as likely a resend or a replay, and its lookup waits for
 * the timestamp check, so replays cannot turn into a store lookup each.
 * Bounded: the least recently touched key goes first.
 */
import type { PublicKey } from '../handshake/keys.js';
import { compareTai64n } from '../handshake/tai64n.js';

export const MIN_INITIATION_INTERVAL_MS = 20;
export const RECENT_KEYS_SIZE = 65_536;

export type Consideration = 'considered' | 'replayed' | 'too_soon';

interface Seen {
  /** When an initiation of the key was last considered (-Infinity: never). */
  consideredAt: number;
  /** The greatest timestamp considered, null before the first. */
  timestamp: Uint8Array | null;
  /** When a store lookup was last started ahead of the timestamp check. */
  lookAheadAt: number;
  readonly key: PublicKey;
  /** The greatest timestamp the store accepted for the key (keep()), null before the first. */
  kept: Uint8Array | null;
  /** When it was kept (unix ms). */
  keptAt: number;
}

export class RecentKeys {
  /** By PublicKey.id. */
  private readonly seen = new Map<string, Seen>();

  constructor(
    private readonly capacity = RECENT_KEYS_SIZE,
    private readonly intervalMs = MIN_INITIATION_INTERVAL_MS,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  }

  /**
   * Whether a store lookup for `key` may start before its initiation's
   * timestamp is checked: only for a key with no initiation considered here
   * lately, and at most once per interval. Records the lookup when true.
   */
  lookAhead(key: PublicKey): boolean {
    const now = this.now();
    const entry = this.seen.get(key.id);
    if (entry === undefined) {
      this.remember(key, { consideredAt: -Infinity, timestamp: null, lookAheadAt: now, key, kept: null, keptAt: -Infinity });
      return true;
    }
    if (entry.timestamp !== null || now - entry.lookAheadAt < this.intervalMs) return false;
    entry.lookAheadAt = now;
    this.remember(key, entry);
    return true;
  }

  /** Judges a verified initiation of `key`; records it when 'considered'. */
  consider(key: PublicKey, timestamp: Uint8Array): Consideration {
    const now = this.now();
    const entry = this.seen.get(key.id);
    if (entry?.timestamp != null && compareTai64n(timestamp, entry.timestamp) <= 0) return 'replayed';
    if (entry !== undefined && now - entry.consideredAt < this.intervalMs) return 'too_soon';
    this.remember(key, { consideredAt: now, timestamp: Uint8Array.from(timestamp), lookAheadAt: entry?.lookAheadAt ?? -Infinity, key, kept: entry?.kept ?? null, keptAt: entry?.keptAt ?? -Infinity });
    return 'considered';
  }

  /** The store accepted `timestamp` for `key` (an authorized key's): kept for a write-back. */
  keep(key: PublicKey, timestamp: Uint8Array): void {
    const entry = this.seen.get(key.id);
    if (entry === undefined) {
      this.remember(key, { consideredAt: -Infinity, timestamp: Uint8Array.from(timestamp), lookAheadAt: -Infinity, key, kept: Uint8Array.from(timestamp), keptAt: this.now() });
    } else if (entry.kept === null || compareTai64n(timestamp, entry.kept) > 0) {
      entry.kept = Uint8Array.from(timestamp);
      entry.keptAt = this.now();
    }
  }

  /** The greatest timestamp keep() was given per key, of the keys kept since `sinceMs` (unix ms). */
  *keptTimestamps(sinceMs = -Infinity): Generator<[PublicKey, Uint8Array]> {
    for (const entry of this.seen.values()) if (entry.kept !== null && entry.keptAt >= sinceMs) yield [entry.key, entry.kept];
  }

  /** An operator cleared the key's replay state (`wgjit peer reset-replay`): all of it goes. */
  forget(key: PublicKey): void {
    this.seen.delete(key.id);
  }

  private remember(key: PublicKey, entry: Seen): void {
    this.seen.delete(key.id);
    this.seen.set(key.id, entry);
    if (this.seen.size > this.capacity) this.seen.delete(this.seen.keys().next().value as string);
  }

  get size(): number {
    return this.seen.size;
  }
}
