/**
 * A bounded memory of keys the store refused (unknown, disabled, expired),
 * so a flood of initiations from such a key — authentic ones, from a key an
 * attacker made, or from a revoked client that keeps retrying — costs one
 * store lookup per REFUSAL_TTL_MS, not one per packet.
 *
 * A store change for a key forgets it at once (the gateway follows the
 * store's events); if that event is lost, the entry still expires after
 * the TTL, shorter than a client's 5-second retry. Least recently refused
 * entries go first when it is full: an attacker cycling through keys only
 * pushes out its own.
 */
import type { PublicKey } from '../handshake/keys.js';

export const REFUSAL_CACHE_SIZE = 65_536;
export const REFUSAL_TTL_MS = 4_000;

export type Refusal = 'unknown' | 'disabled' | 'expired';

export class RefusalCache {
  /** By PublicKey.id. */
  private readonly entries = new Map<string, { reason: Refusal; until: number }>();

  constructor(
    private readonly capacity = REFUSAL_CACHE_SIZE,
    private readonly ttlMs = REFUSAL_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`capacity must be an integer >= 0, got ${capacity}`);
    if (!(ttlMs >= 0)) throw new RangeError(`ttlMs must be >= 0, got ${ttlMs}`);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The cached refusal for `key`, if any and still fresh. */
  get(key: PublicKey): Refusal | undefined {
    const entry = this.entries.get(key.id);
    if (entry === undefined) return undefined;
    if (entry.until <= this.now()) {
      this.entries.delete(key.id);
      return undefined;
    }
    return entry.reason;
  }

  set(key: PublicKey, reason: Refusal): void {
    if (this.capacity === 0) return;
    this.entries.delete(key.id); // re-inserted as the newest
    this.entries.set(key.id, { reason, until: this.now() + this.ttlMs });
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
  }

  /** Forget `key`: its record changed in the store. */
  delete(key: PublicKey): void {
    this.entries.delete(key.id);
  }
}
