/**
 * Deciding which installed peers are confirmed, in use or idle. Pure: the
 * sweeper feeds it one read of the device and applies what it returns.
 */
import type { PeerStatus } from '../install/device.js';
import type { InstalledPeer } from './installed.js';

export interface SweepPolicy {
  /** A peer whose last handshake is older than this, and whose receive counter is still, is idle. */
  idleTimeoutMs: number;
  /** A provisional peer that has not completed a handshake within this is removed. */
  provisionalGraceMs: number;
}

export type RemovalReason = 'idle' | 'unconfirmed' | 'vanished';

export interface SweepPlan {
  confirmed: string[];
  remove: Array<{ publicKey: string; reason: RemovalReason }>;
  /** Installed peers the device no longer has (removed behind wgjit's back). */
  forget: string[];
}

export function planSweep(
  installed: Iterable<InstalledPeer>,
  device: ReadonlyMap<string, PeerStatus>,
  now: number,
  policy: SweepPolicy,
): SweepPlan {
  const plan: SweepPlan = { confirmed: [], remove: [], forget: [] };
  for (const peer of installed) {
    const status = device.get(peer.publicKey);
    if (status === undefined) {
      plan.forget.push(peer.publicKey);
      continue;
    }
    const handshake = status.lastHandshakeAt;
    if (peer.state === 'provisional') {
      // The device's clock for handshakes is wall time, as is installedAt.
      if (handshake !== null && handshake >= peer.installedAt - 1000) {
        plan.confirmed.push(peer.publicKey);
      } else if (now - peer.installedAt > policy.provisionalGraceMs) {
        plan.remove.push({ publicKey: peer.publicKey, reason: 'unconfirmed' });
      }
      continue;
    }
    const rxMoved = status.rxBytes !== peer.rxAtLastSweep;
    const last = handshake ?? peer.installedAt;
    if (!rxMoved && now - last > policy.idleTimeoutMs) {
      plan.remove.push({ publicKey: peer.publicKey, reason: 'idle' });
    }
  }
  return plan;
}
