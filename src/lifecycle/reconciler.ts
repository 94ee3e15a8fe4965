/**
 * Applies reconciliation plans (reconcile.ts): one device read and one
 * batched store lookup per pass, removals and rewrites in one batch each.
 * Runs at start (taking over what an earlier run left on the device),
 * every RECONCILE_INTERVAL_MS, whenever the store's event channel comes
 * back (events sent while it was away are lost), and after a store change
 * took allowed IPs from a peer (recheck(): another peer may be entitled to
 * them, see StoreSync's onNarrowed).
 *
 * Rewrites repair drift field by field, whatever caused it; two records
 * claiming one address leave it with the peer that holds it on the device
 * (reconcile.ts), and each such conflict is warned about once, when first
 * seen, not every pass. The installed table takes in the allowed IPs the
 * device reports, so the API shows what the device has.
 */
import type { PeerStore } from '../authorize/store.js';
import type { PublicKey } from '../handshake/keys.js';
import type { PeerStatus, WireGuardDevice } from '../install/device.js';
import { cidrTexts } from '../net/cidr.js';
import type { Logger } from '../telemetry/log.js';
import { deviceErrorCode, type Metrics } from '../telemetry/metrics.js';
import type { InstalledPeers } from './installed.js';
import { PeriodicPass } from './periodic.js';
import { planReconcile, removalReason, type AddressConflict } from './reconcile.js';
import { removePeers } from './removal.js';
import { RECONCILE_INTERVAL_MS } from './timings.js';

export interface ReconcileReport {
  removed: number;
  updated: number;
  adopted: number;
  forgotten: number;
  /** Removed because another gateway holds them (src/fleet/member.ts). */
  moved: number;
  /** Confirmed peers nobody held, taken by this gateway. */
  taken: number;
  /** Unknown to the store, but kept: the store lost its data (src/lifecycle/store-guard.ts). */
  kept: number;
}

export interface ReconcilerDeps {
  device: WireGuardDevice;
  store: Pick<PeerStore, 'authorizeMany'>;
  installed: InstalledPeers;
  /** Asked before peers the store answers "unknown" for are removed: not while the store is known to have lost its data. */
  guard?: { mayRemoveUnknown(keys: readonly PublicKey[]): Promise<boolean> };
  /** The fleet's holders, checked after the device: what a lost `held` event left behind. */
  fleet?: { reconcile(): Promise<{ moved: number; taken: number }> };
  /** The peers' routes (--route-table), made to match the table after the device and the holders. */
  routes?: { reconcile(): Promise<unknown> };
  log: Logger;
  metrics: Metrics;
  /** Wall clock, unix ms. */
  now?: () => number;
}

export class Reconciler {
  private readonly periodic = new PeriodicPass(() => this.pass());
  private readonly now: () => number;
  /** The conflicts the last pass found (reconcile.ts), so each is warned about once: CIDR and the claimants' keys. */
  private conflictsSeen = new Set<string>();

  constructor(private readonly deps: ReconcilerDeps) {
    this.now = deps.now ?? Date.now;
  }

  start(intervalMs = RECONCILE_INTERVAL_MS): void {
    this.periodic.start(intervalMs);
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }

  /** One pass; concurrent calls share the pass under way. Null when the device or the store could not be read. */
  reconcile(): Promise<ReconcileReport | null> {
    return this.periodic.run();
  }

  /**
   * A pass that reads the device after this call: the one under way, if
   * it began earlier, is followed by one more, which every call meanwhile
   * shares.
   */
  recheck(): Promise<ReconcileReport | null> {
    return this.periodic.runAfter();
  }

  private async pass(): Promise<ReconcileReport | null> {
    const { device, store, installed, log, metrics } = this.deps;
    const readAt = this.now();
    let peers: PeerStatus[];
    try {
      peers = await device.listPeers();
    } catch (err) {
      metrics.deviceErrors.inc({ operation: 'reconcile_read', code: deviceErrorCode(err) });
      log.warn({ err: (err as Error).message }, 'reconciliation: device read failed');
      return null;
    }
    // The table takes in what the device has (an address another peer's write took shows at once), before anything else can change it.
    for (const status of peers) {
      const peer = installed.get(status.publicKey);
      if (peer !== undefined) installed.setAllowedIPs(peer, status.allowedIPs);
    }
    let admissions;
    try {
      admissions = await store.authorizeMany(
        peers.map((p) => p.publicKey),
        new Date(this.now()),
      );
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'reconciliation: peer store unavailable, nothing changed');
      return null;
    }
    const plan = planReconcile(peers, admissions, installed, readAt);
    const report: ReconcileReport = { removed: 0, updated: 0, adopted: plan.adopt.length, forgotten: plan.forget.length, moved: 0, taken: 0, kept: 0 };
    const unknown = plan.remove.filter((r) => r.reason === 'unknown').map((r) => r.publicKey);
    if (unknown.length > 0 && this.deps.guard !== undefined && !(await this.deps.guard.mayRemoveUnknown(unknown))) {
      plan.remove = plan.remove.filter((r) => r.reason !== 'unknown');
      report.kept = unknown.length;
    }

    for (const key of plan.forget) installed.delete(key);
    for (const { status, version } of plan.adopt) {
      const peer = installed.add(status.publicKey, this.now(), status.endpoint ?? null, status.lastHandshakeAt === null ? 'provisional' : 'confirmed');
      peer.lastHandshakeAt = status.lastHandshakeAt;
      peer.rxBytes = peer.rxAtLastSweep = status.rxBytes;
      peer.txBytes = status.txBytes;
      installed.setAllowedIPs(peer, status.allowedIPs);
      peer.recordVersion = version;
    }
    if (plan.remove.length > 0) {
      try {
        const removals = plan.remove.map(({ publicKey, reason: refusal }) => ({ publicKey, reason: removalReason(refusal), refusal }));
        await removePeers(this.deps, removals, log, 'reconciliation: peer refused by the store, removed from the device');
        report.removed = plan.remove.length;
      } catch (err) {
        metrics.deviceErrors.inc({ operation: 'reconcile_remove', code: deviceErrorCode(err) });
        log.warn({ err: (err as Error).message, count: plan.remove.length }, 'reconciliation: removal failed');
      }
    }
    this.warnConflicts(plan.conflicts);
    if (plan.update.length > 0) {
      try {
        await device.setPeers(plan.update.map((u) => u.config));
        for (const { config, version } of plan.update) {
          const peer = installed.get(config.publicKey);
          if (peer === undefined) continue;
          peer.recordVersion = version;
          if (config.allowedIPs !== undefined) installed.setAllowedIPs(peer, cidrTexts(config.allowedIPs));
        }
        report.updated = plan.update.length;
        metrics.updates.inc(report.updated);
      } catch (err) {
        metrics.deviceErrors.inc({ operation: 'reconcile_update', code: deviceErrorCode(err) });
        log.warn({ err: (err as Error).message, count: plan.update.length }, 'reconciliation: rewrite failed');
      }
    }
    if (this.deps.fleet !== undefined) {
      try {
        Object.assign(report, await this.deps.fleet.reconcile());
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'reconciliation: the fleet\'s holders could not be read');
      }
    }
    if (this.deps.routes !== undefined) {
      try {
        await this.deps.routes.reconcile();
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'reconciliation: the route table could not be read');
      }
    }
    if (report.removed + report.updated + report.adopted + report.forgotten + report.moved + report.taken + report.kept > 0) log.info({ ...report, devicePeers: peers.length }, 'reconciled the device with the store');
    metrics.lastReconciliation.set(this.now() / 1000);
    return report;
  }

  /** One warning per conflict, when a pass first finds it; one that ends and comes back is warned about again. */
  private warnConflicts(conflicts: readonly AddressConflict[]): void {
    const seen = new Set<string>();
    for (const { cidr, holder, others } of conflicts) {
      // Named by the address and its claimants: the same conflict with its holder changed (a store change rewrote the other) is not news.
      const id = [cidr, ...[holder, ...others].map((k) => k.id).sort()].join(' ');
      seen.add(id);
      if (this.conflictsSeen.has(id)) continue;
      this.deps.log.warn(
        { cidr, keeps: holder.toString(), without: others.map(String) },
        'reconciliation: several authorized records claim one allowed IP; the peer holding it on the device keeps it, the others are written without it (fix the records)',
      );
    }
    this.conflictsSeen = seen;
  }
}
