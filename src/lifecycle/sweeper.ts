/**
 * Applies sweep plans: one device read per pass, removals in one batch.
 * A pass walks every installed peer (100,000 in bench/sweep.ts), so its
 * per-peer work is kept to one table lookup and field writes; removals are
 * counted and logged per pass (removal.ts), each peer only at debug.
 */
import type { WireGuardDevice, PeerStatus } from '../install/device.js';
import type { Logger } from '../telemetry/log.js';
import { deviceErrorCode, type Metrics } from '../telemetry/metrics.js';
import type { InstalledPeers } from './installed.js';
import { PeriodicPass } from './periodic.js';
import { removePeers } from './removal.js';
import { planSweep, type SweepPolicy } from './sweep.js';

export class Sweeper {
  private readonly periodic = new PeriodicPass(() => this.pass());

  constructor(
    private readonly device: WireGuardDevice,
    private readonly installed: InstalledPeers,
    private readonly policy: SweepPolicy,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    /**
     * While true, idle peers stay (a store reset in force: a client whose
     * record the store lost could not come back; src/lifecycle/store-guard.ts).
     */
    private readonly keepIdle: () => boolean = () => false,
  ) {}

  start(intervalMs: number): void {
    this.periodic.start(intervalMs);
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }

  /** One pass; concurrent calls share the pass under way. */
  sweep(): Promise<void> {
    return this.periodic.run();
  }

  private async pass(): Promise<void> {
    let peers: PeerStatus[];
    try {
      peers = await this.device.listPeers();
    } catch (err) {
      this.metrics.deviceErrors.inc({ operation: 'sweep_read', code: deviceErrorCode(err) });
      this.log.warn({ err: (err as Error).message }, 'sweep: device read failed');
      return;
    }
    // The device's counters are taken in as the plan is made, one table lookup per peer.
    const now = Date.now();
    const plan = planSweep(this.installed, peers, now, this.policy, (peer, status) => {
      peer.lastHandshakeAt = status.lastHandshakeAt;
      if (status.rxBytes !== peer.rxAtLastSweep) peer.rxMovedAt = now;
      peer.rxAtLastSweep = status.rxBytes;
      peer.rxBytes = status.rxBytes;
      peer.txBytes = status.txBytes;
      this.installed.setAllowedIPs(peer, status.allowedIPs);
      if (status.endpoint !== undefined) peer.endpoint = status.endpoint;
    });

    for (const key of plan.confirmed) this.installed.confirm(key);
    for (const key of plan.forget) this.installed.delete(key);
    if (plan.remove.length > 0 && this.keepIdle()) plan.remove = plan.remove.filter((r) => r.reason !== 'idle');
    if (plan.remove.length > 0) {
      try {
        await removePeers({ device: this.device, installed: this.installed, metrics: this.metrics }, plan.remove, this.log, 'sweep removed peers from the device');
      } catch (err) {
        this.metrics.deviceErrors.inc({ operation: 'sweep_remove', code: deviceErrorCode(err) });
        this.log.warn({ err: (err as Error).message, count: plan.remove.length }, 'sweep: removal failed');
      }
    }
  }
}
