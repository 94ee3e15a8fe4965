/**
 * What a gateway does when the store forgets (src/authorize/epoch.ts: how
 * that is recognized):
 *
 * - While a reset is in force (recorded in the store, not yet confirmed
 *   by an operator), no peer is removed for being unknown to the store
 *   (the reconciler asks mayRemoveUnknown() first) nor for being idle
 *   (the sweeper asks `reset`): its client could not come back while its
 *   record is missing. Peers whose record says
 *   otherwise (deleted through the API, disabled, expired) still go; the
 *   installed ones keep passing traffic; admissions go on from the records
 *   the store still has, or has again.
 * - The gateway writes back the greatest timestamps it knows (the store's
 *   went with its data), so a captured initiation older than one a gateway
 *   saw stays refused, also after this gateway restarts.
 * - It says so: one error line when it learns of the reset, wgjit_store_reset
 *   at 1, a warning in /readyz; and one line when an operator confirms it
 *   (`wgjit store confirm-reset`), after which a reconciliation removes
 *   what the store does not know.
 *
 * Every STORE_WATCH_INTERVAL_MS it reads the reset record (one GET), so a
 * reset another gateway recognized, or its confirmation, is acted on here
 * within that. When the store comes back after an outage (its own look
 * failed, or the store client saw it: storeChanged()), it checks every
 * group's epoch and writes back the timestamps kept shortly before the
 * outage: a failover to a replica that had not caught up loses the latest
 * writes without losing the epoch.
 */
import { GROUPS, GROUP_CHARS } from '../authorize/store.js';
import { judgeEpochs, newEpochId, type ResetMarker, type StoreEpoch } from '../authorize/epoch.js';
import type { PublicKey } from '../handshake/keys.js';
import type { Logger } from '../telemetry/log.js';
import type { Metrics } from '../telemetry/metrics.js';

export const STORE_WATCH_INTERVAL_MS = 1_000;
/**
 * After an outage, timestamps kept this long before it are written back:
 * what a replica that had not caught up may have missed (replication lags
 * by milliseconds to seconds; a minute is generous).
 */
export const REPLICATION_LAG_BOUND_MS = 60_000;
/** Timestamps written back per round trip batch. */
const WRITE_BACK_BATCH = 1_000;

export interface StoreGuardDeps {
  epoch: Pick<StoreEpoch, 'read' | 'fill' | 'reset' | 'recordReset' | 'holdsRecords'>;
  gatewayId: string;
  /** Whether peers were admitted from this store before: the device holds peers. */
  evidence(): boolean;
  /** The greatest timestamp known per key, kept since `sinceMs` (unix ms; 0: all). */
  timestamps(sinceMs: number): Iterable<[PublicKey, Uint8Array]>;
  /** Keeps a timestamp in the store if greater (src/authorize/store.ts advanceTimestamp). */
  advanceTimestamp(publicKey: PublicKey, timestamp: Uint8Array): Promise<boolean>;
  /** The reset was confirmed: removals of peers unknown to the store may go ahead (a reconciliation). */
  onConfirmed?(): void;
  log: Logger;
  metrics: Pick<Metrics, 'storeReset' | 'timestampsWrittenBack'>;
  /** Wall clock, unix ms. */
  now?(): number;
}

export class StoreGuard {
  /** The store's epoch id as this gateway knows it; null before the first read. */
  private known: string | null = null;
  private inForce: ResetMarker | null = null;
  /** Unix ms of the first failed read of the current outage; null while the store answers. */
  private downSince: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private watching: Promise<void> | null = null;
  /** The write-back under way after a reset, if any. */
  private writing: Promise<void> = Promise.resolve();
  private readonly now: () => number;

  constructor(private readonly deps: StoreGuardDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** The reset in force, null when there is none. */
  get reset(): ResetMarker | null {
    return this.inForce;
  }

  /** At start, before the first reconciliation: reads every group's epoch. A store that is away is checked when it comes back. */
  async start(intervalMs = STORE_WATCH_INTERVAL_MS): Promise<void> {
    await this.watch();
    this.timer = setInterval(() => void this.watch(), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.watching;
    await this.writing;
  }

  /**
   * The store client's view (PeerStore.onChange): an outage it saw is one
   * the next look handles as such, however short; its end is looked at at once.
   */
  storeChanged(up: boolean): void {
    if (!up) this.downSince ??= this.now();
    else if (this.downSince !== null) void this.watch();
  }

  /** One look at the store; concurrent calls share it. Never throws. */
  watch(): Promise<void> {
    this.watching ??= this.look().finally(() => {
      this.watching = null;
    });
    return this.watching;
  }

  private async look(): Promise<void> {
    let marker: ResetMarker | null;
    try {
      marker = await this.deps.epoch.reset();
    } catch {
      this.downSince ??= this.now();
      return;
    }
    try {
      await this.follow(marker);
      const outage = this.downSince;
      if (this.known === null || outage !== null) await this.checkAll();
      if (outage !== null) {
        this.downSince = null;
        if (this.inForce === null) await this.writeBack(outage - REPLICATION_LAG_BOUND_MS, 'the store is back after an outage');
      }
    } catch (err) {
      this.downSince ??= this.now();
      this.deps.log.debug({ err: (err as Error).message }, 'store epoch check failed; trying again');
    }
  }

  /**
   * Whether peers the store answers "unknown" for may be removed now: not
   * while a reset is in force, nor when one of their groups lost its epoch
   * (which records the reset). False when the store cannot say.
   */
  async mayRemoveUnknown(keys: readonly PublicKey[]): Promise<boolean> {
    if (keys.length === 0) return true;
    if (this.inForce !== null) return false;
    try {
      await this.follow(await this.deps.epoch.reset());
      if (this.known === null) await this.checkAll();
      if (this.inForce !== null || this.known === null) return false;
      const groups = [...new Set(keys.map((k) => k.toString().slice(0, GROUP_CHARS)))];
      const values = await this.deps.epoch.read(groups);
      if (judgeEpochs(values, this.known, true).kind === 'intact') return true;
      // A group lost its epoch: every group is checked, so that all the lost ones are counted and given it again at once.
      await this.checkAll();
      return false;
    } catch (err) {
      this.deps.log.debug({ err: (err as Error).message }, 'store epoch check failed: no removal of peers unknown to the store this time');
      return false;
    }
  }

  /** Every group's epoch: a new store is given one; a lost group records a reset. */
  private async checkAll(): Promise<void> {
    const { epoch, log } = this.deps;
    const values = await epoch.read();
    // No marker anywhere and none known: a reset if the device says the store was used, unless its records are
    // there (a store from before the markers).
    const unmarked = this.known === null && values.every((v) => v === null);
    const judged = judgeEpochs(values, this.known, unmarked && this.deps.evidence() && !(await epoch.holdsRecords()));
    if (judged.kind === 'intact') {
      this.known = judged.epoch;
      return;
    }
    if (judged.kind === 'lost') {
      await this.declare(
        GROUPS.filter((_, i) => values[i] !== judged.epoch),
        judged.epoch,
      );
      return;
    }
    // A new store: the first gateway's id goes into the first group, then
    // every gateway fills the others with whatever id won that group.
    await epoch.fill([GROUPS[0]!], newEpochId());
    const [winner] = await epoch.read([GROUPS[0]!]);
    if (winner === null || winner === undefined) return; // deleted meanwhile: the next look tries again
    await epoch.fill(GROUPS, winner);
    this.known = winner;
    log.info({ epoch: winner }, 'peer store epoch written (a new store)');
  }

  /** Groups that lost their epoch get the store's again, and the reset is recorded (once, by whoever is first). */
  private async declare(lostGroups: readonly string[], storeEpoch: string): Promise<void> {
    const { epoch } = this.deps;
    // Missing ones get it, foreign ones too: each loss is recorded once.
    await epoch.fill(lostGroups, storeEpoch, true);
    const recorded = await epoch.recordReset({ since: new Date(this.now()).toISOString(), detectedBy: this.deps.gatewayId, lostGroups: lostGroups.length, epoch: storeEpoch });
    await this.follow(recorded);
  }

  /** Acts on the reset record as read: a new one is taken in force, a gone one was confirmed. */
  private async follow(marker: ResetMarker | null): Promise<void> {
    const { log, metrics } = this.deps;
    if (marker !== null && this.inForce === null) {
      this.inForce = marker;
      this.known = marker.epoch;
      metrics.storeReset.set(1);
      log.error(
        { since: marker.since, detectedBy: marker.detectedBy, lostGroups: marker.lostGroups },
        `the peer store lost its data (${marker.lostGroups} of ${GROUPS.length} groups): installed peers are kept, none is removed for being unknown to the store until an operator runs \`wgjit store confirm-reset\` (docs/operations.md)`,
      );
      // Not awaited: a reconciliation waiting on this must not wait for every write.
      this.writing = this.writeBack(0, 'the store was reset');
    } else if (marker === null && this.inForce !== null) {
      log.warn({ since: this.inForce.since }, 'store reset confirmed by an operator: peers unknown to the store are removed again');
      this.inForce = null;
      metrics.storeReset.set(0);
      this.deps.onConfirmed?.();
    }
  }

  /** Writes back the timestamps kept since `sinceMs`, in batches. Never throws: the next outage's check tries again. */
  private async writeBack(sinceMs: number, why: string): Promise<void> {
    let batch: Array<Promise<boolean>> = [];
    let written = 0;
    let offered = 0;
    const flush = async () => {
      written += (await Promise.all(batch)).filter(Boolean).length;
      batch = [];
    };
    try {
      for (const [key, ts] of this.deps.timestamps(sinceMs)) {
        offered++;
        batch.push(this.deps.advanceTimestamp(key, ts));
        if (batch.length >= WRITE_BACK_BATCH) await flush();
      }
      await flush();
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message, written }, 'writing timestamps back to the store failed');
    }
    this.deps.metrics.timestampsWrittenBack.inc(written);
    if (offered > 0) this.deps.log.info({ offered, written }, `greatest timestamps written back to the store (${why})`);
  }
}
