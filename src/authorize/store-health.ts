/**
 * Whether the peer store is up, judged as one thing: however many
 * connections a PeerStore holds and however many reconnect attempts ioredis
 * makes, an outage is one transition down and one back up, so that it is
 * logged once each way and `wgjit_store_up` follows the same state.
 *
 * What counts (PeerStore feeds these in; docs/operations.md says the same):
 * - a success: the commands connection became ready (its ready check is a
 *   round trip: INFO, with Sentinel the primary's role, with a Cluster the
 *   slot map and CLUSTER INFO), or the heartbeat's PING was answered (with
 *   a Cluster, by every primary its slot map names);
 * - a failure: the commands connection (or the Cluster client) reported
 *   why it cannot connect, or a heartbeat PING on a connection that is up
 *   got no answer in time or an answer that means "cannot serve now" (with
 *   a Cluster: from any primary, or a primary has no connection).
 * A connection that closes and is back before any failure was reported (a
 * server killing idle clients, a quick reconnect) is no outage. The other
 * connections (API writes with --redis-wait-replicas, the events
 * subscriber) follow the same server and are not judged separately.
 *
 * Pure: no I/O, clocks given.
 */

/** A change of the store's state, to be logged once. `first`: the process had never reached the store before. */
export type StoreTransition =
  | { to: 'down'; reason: string; first: boolean }
  | { to: 'up'; first: boolean; /** How long it was down (monotonic ms); null when it had not been down. */ downMs: number | null };

export interface StoreHealthClock {
  /** Monotonic ms, for how long an outage lasted. */
  monotonic(): number;
  /** Wall-clock ms since the epoch, for the time of the last success. */
  wall(): number;
}

const SYSTEM_CLOCK: StoreHealthClock = { monotonic: () => performance.now(), wall: () => Date.now() };

export class StoreHealth {
  private state: 'unknown' | 'up' | 'down' = 'unknown';
  private everUp = false;
  private downSince: number | null = null;
  private lastSuccess: number | null = null;

  constructor(private readonly clock: StoreHealthClock = SYSTEM_CLOCK) {}

  /** A round trip succeeded. The transition up when the store was down or not yet known; else null. */
  succeeded(): StoreTransition | null {
    this.lastSuccess = this.clock.wall();
    if (this.state === 'up') return null;
    const change: StoreTransition = { to: 'up', first: !this.everUp, downMs: this.downSince === null ? null : this.clock.monotonic() - this.downSince };
    this.state = 'up';
    this.everUp = true;
    this.downSince = null;
    return change;
  }

  /** The store could not be reached, or did not serve. The transition down when it was up or not yet known; else null (still down). */
  failed(reason: string): StoreTransition | null {
    if (this.state === 'down') return null;
    this.state = 'down';
    this.downSince = this.clock.monotonic();
    return { to: 'down', reason, first: !this.everUp };
  }

  /** True while up; false while down and before the first success. */
  get up(): boolean {
    return this.state === 'up';
  }

  /** Wall-clock ms of the last success; null before the first. */
  get lastSuccessMs(): number | null {
    return this.lastSuccess;
  }
}
