/**
 * Applies sweep plans: one device read per pass, removals in one batch.
 */
import type { WireGuardDevice, PeerStatus } from '../install/device.js';
import type { Logger } from '../telemetry/log.js';
import { deviceErrorCode, type Metrics } from '../telemetry/metrics.js';
import type { InstalledPeers } from './installed.js';
import { PeriodicPass } from './periodic.js';
import { planSweep, type SweepPolicy } from './sweep.js';

export class Sweeper {
  private readonly periodic = new PeriodicPass(() => this.pass());

  constructor(
    private readonly device: WireGuardDevice,
    private readonly installed: InstalledPeers,
    private readonly policy: SweepPolicy,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly onRemoved: (reason: string, count: number) => void = () => {},
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
    const byKey = new Map(peers.map((p) => [p.publicKey, p]));
    const now = Date.now();
    const plan = planSweep(this.installed.values(), byKey, now, this.policy);

    for (const key of plan.confirmed) {
      const peer = this.installed.get(key);
      if (peer !== undefined) peer.state = 'confirmed';
    }
    for (const key of plan.forget) this.installed.delete(key);
    if (plan.remove.length > 0) {
      try {
        await this.device.removePeers(plan.remove.map((r) => r.publicKey));
        for (const { publicKey, reason } of plan.remove) {
          this.installed.delete(publicKey);
          this.metrics.expiries.inc({ reason });
          this.onRemoved(reason, 1);
          this.log.info({ publicKey, reason }, 'peer removed from the device');
        }
      } catch (err) {
        this.metrics.deviceErrors.inc({ operation: 'sweep_remove', code: deviceErrorCode(err) });
        this.log.warn({ err: (err as Error).message, count: plan.remove.length }, 'sweep: removal failed');
      }
    }
    for (const peer of this.installed.values()) {
      const status = byKey.get(peer.publicKey);
      if (status === undefined) continue;
      peer.lastHandshakeAt = status.lastHandshakeAt;
      peer.rxAtLastSweep = status.rxBytes;
      peer.rxBytes = status.rxBytes;
      peer.txBytes = status.txBytes;
      if (status.endpoint !== undefined) peer.endpoint = status.endpoint;
    }
    this.metrics.installedPeers.set({ state: 'provisional' }, this.installed.count('provisional'));
    this.metrics.installedPeers.set({ state: 'confirmed' }, this.installed.count('confirmed'));
  }
}
