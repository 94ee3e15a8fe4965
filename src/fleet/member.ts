/**
 * This gateway's part in the fleet's holders (holders.ts): it takes a peer
 * when its client confirms a session here, lets go of it when the peer is
 * removed for any reason, and removes a peer another gateway took with a
 * session no older than the one it installed it for (`moved`): at once on
 * the `held` event, or at the next reconciliation if the event was lost.
 * A provisional install, which no handshake has confirmed, takes nothing.
 */
import type { StoreEvent } from '../authorize/store.js';
import type { PublicKey } from '../handshake/keys.js';
import type { InstalledPeer, InstalledPeers } from '../lifecycle/installed.js';
import type { Removal } from '../lifecycle/removal.js';
import type { Logger } from '../telemetry/log.js';
import type { Metrics } from '../telemetry/metrics.js';
import { compareTimestamps, NO_TIMESTAMP, type Holder, type Holders } from './holders.js';

/**
 * Whether `holder` has the peer rather than `gateway`: another gateway,
 * which took it with a session no older than the one `gateway` installed
 * it for. An adopted peer (no timestamp) yields to any other holder.
 */
export function movedAway(peer: Pick<InstalledPeer, 'timestamp'>, holder: Pick<Holder, 'gateway' | 'timestamp'>, gateway: string): boolean {
  return holder.gateway !== gateway && compareTimestamps(holder.timestamp, peer.timestamp ?? NO_TIMESTAMP) >= 0;
}

export interface FleetMemberDeps {
  gatewayId: string;
  holders: Pick<Holders, 'take' | 'release' | 'of' | 'ofMany'>;
  installed: InstalledPeers;
  /** Removes peers from this gateway's device (src/lifecycle/removal.ts), counted and logged there. */
  remove(removals: Removal[]): Promise<void>;
  log: Logger;
  metrics: Pick<Metrics, 'holds'>;
  /** Wall clock, unix ms. */
  now?: () => number;
}

export interface MemberReport {
  moved: number;
  taken: number;
}

export class FleetMember {
  private readonly now: () => number;

  constructor(private readonly deps: FleetMemberDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** The client confirmed the session here: take the peer. */
  confirmed(peer: InstalledPeer): void {
    void this.take(peer.publicKey, peer.timestamp);
  }

  /** The peer left this gateway (any reason): let go of it if this gateway holds it. */
  removed(peer: InstalledPeer): void {
    this.deps.holders.release(peer.publicKey, this.deps.gatewayId).catch((err: unknown) => {
      // It stays named until another gateway takes the peer.
      this.deps.log.debug({ publicKey: peer.publicKey, err: (err as Error).message }, 'could not release the peer in the store');
    });
  }

  /**
   * A store event: another gateway took a peer. Acted on only once the
   * store confirms it (one read of the holder, only for a peer installed
   * here): Redis delivers pub/sub to every client of the server whatever
   * database it uses, so the event may be another fleet's, sharing the
   * server on another database number.
   */
  held(event: Extract<StoreEvent, { op: 'held' }>): void {
    const peer = this.deps.installed.get(event.publicKey);
    if (peer === undefined || !movedAway(peer, event, this.deps.gatewayId)) return;
    void this.deps.holders.of(event.publicKey.toString()).then(
      (holder) => {
        if (holder !== null && movedAway(peer, holder, this.deps.gatewayId)) return this.moveAway([{ publicKey: peer.publicKey, holder: holder.gateway }]);
      },
      (err: unknown) => this.deps.log.debug({ publicKey: peer.publicKey, err: (err as Error).message }, 'could not read the holder of a peer taken elsewhere; the next reconciliation looks again'),
    );
  }

  /**
   * What a lost event left behind: removes the peers another gateway holds
   * (moved), and takes the confirmed ones nobody holds (an adopted peer's
   * take is weak: it has no timestamp). One read of the holders of every
   * installed peer. Throws StoreUnavailableError.
   */
  async reconcile(): Promise<MemberReport> {
    const { installed, holders, gatewayId } = this.deps;
    const peers = [...installed.values()];
    const held = await holders.ofMany(peers.map((p) => p.publicKey));
    const moved: Array<{ publicKey: PublicKey; holder: string }> = [];
    const unheld: InstalledPeer[] = [];
    for (const peer of peers) {
      const holder = held.get(peer.publicKey.id);
      if (holder === undefined) {
        if (peer.state === 'confirmed') unheld.push(peer);
      } else if (movedAway(peer, holder, gatewayId)) {
        moved.push({ publicKey: peer.publicKey, holder: holder.gateway });
      }
    }
    await this.moveAway(moved);
    const taken = await Promise.all(unheld.map((p) => this.take(p.publicKey, p.timestamp)));
    return { moved: moved.length, taken: taken.filter((t) => t).length };
  }

  /** True if this gateway took the peer now. */
  private async take(key: PublicKey, timestamp: Uint8Array | null): Promise<boolean> {
    const { holders, gatewayId, metrics, log } = this.deps;
    let outcome;
    try {
      outcome = await holders.take(key, gatewayId, timestamp, new Date(this.now()));
    } catch (err) {
      metrics.holds.inc({ result: 'failed' });
      log.warn({ publicKey: key, err: (err as Error).message }, 'could not take the peer in the store; the next reconciliation tries again');
      return false;
    }
    metrics.holds.inc({ result: outcome.result });
    if (outcome.result === 'taken') log.debug({ publicKey: key }, 'peer held by this gateway');
    if (outcome.result !== 'refused') return outcome.result === 'taken';
    // Another gateway took it with a newer session: the client is there now.
    const peer = this.deps.installed.get(key);
    if (peer !== undefined && movedAway(peer, outcome.holder, gatewayId)) await this.moveAway([{ publicKey: key, holder: outcome.holder.gateway }]);
    return false;
  }

  private async moveAway(moved: ReadonlyArray<{ publicKey: PublicKey; holder: string }>): Promise<void> {
    // Only what is still here: an event and a reconciliation may name one peer twice.
    const removals = moved.filter((m) => this.deps.installed.has(m.publicKey)).map((m) => ({ publicKey: m.publicKey, reason: 'moved' as const, holder: m.holder }));
    if (removals.length === 0) return;
    try {
      await this.deps.remove(removals);
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message, count: removals.length }, 'removing peers moved to another gateway failed; the next reconciliation tries again');
    }
  }
}
