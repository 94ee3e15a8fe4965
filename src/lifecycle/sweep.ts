/**
 * Deciding which installed peers are confirmed, in use or idle. Pure: the
 * sweeper feeds it one read of the device and applies what it returns.
 */
import type { PublicKey } from '../handshake/keys.js';
import type { PeerStatus } from '../install/device.js';
import type { InstalledPeer } from './installed.js';
import type { RemovalReason } from './removal.js';

export interface SweepPolicy {
  /** A peer whose last handshake is older than this, and whose receive counter is still (rxStillMs), is idle. */
  idleTimeoutMs: number;
  /** A provisional peer that has not completed a handshake within this is removed. */
  provisionalGraceMs: number;
  /**
   * A receive counter is still once it has not moved for this long: a pass
   * that comes right after another (an API read, the adoption at a
   * restart) has not watched it long enough to call a peer idle.
   */
  rxStillMs: number;
}

/** Why a sweep removes a peer. */
export type SweepReason = Extract<RemovalReason, 'idle' | 'unconfirmed'>;

export interface SweepPlan {
  confirmed: PublicKey[];
  remove: Array<{ publicKey: PublicKey; reason: SweepReason }>;
  /** Installed peers the device no longer has (removed behind wgjit's back). */
  forget: PublicKey[];
}

/** The table, as far as planning from a device read needs it. */
export interface InstalledLookup {
  readonly size: number;
  get(publicKey: PublicKey): InstalledPeer | undefined;
  values(): Iterable<InstalledPeer>;
}

/**
 * The plan for one device read, walked as it comes: one lookup in the
 * table per device peer (a map of the read with a lookup per installed
 * peer was, at 100,000 peers, the larger part of a pass after the read
 * itself). `seen` is called with each installed peer the device has, once
 * its fate is decided, so the caller can take in the device's counters in
 * the same walk. Entries come in the device's order.
 */
export function planSweep(
  installed: InstalledLookup,
  device: readonly PeerStatus[],
  now: number,
  policy: SweepPolicy,
  seen: (peer: InstalledPeer, status: PeerStatus) => void = () => {},
): SweepPlan {
  const plan: SweepPlan = { confirmed: [], remove: [], forget: [] };
  let found = 0;
  for (const status of device) {
    const peer = installed.get(status.publicKey);
    if (peer === undefined) continue;
    found++;
    decide(plan, peer, status, now, policy);
    seen(peer, status);
  }
  // Peers removed behind wgjit's back are rare: only then is the read made into a set.
  if (found < installed.size) {
    const onDevice = new Set(device.map((p) => p.publicKey.id));
    for (const peer of installed.values()) if (!onDevice.has(peer.publicKey.id)) plan.forget.push(peer.publicKey);
  }
  return plan;
}

/**
 * Whether the device's read shows a handshake completed since the peer was
 * installed: the client confirmed the session here. The device's clock for
 * handshakes is wall time, as is installedAt; it reports whole seconds.
 */
export function confirms(peer: InstalledPeer, status: PeerStatus): boolean {
  return status.lastHandshakeAt !== null && status.lastHandshakeAt >= peer.installedAt - 1000;
}

/** Adds what becomes of one installed peer the device still has to `plan`. */
function decide(plan: SweepPlan, peer: InstalledPeer, status: PeerStatus, now: number, policy: SweepPolicy): void {
  const handshake = status.lastHandshakeAt;
  if (peer.state === 'provisional') {
    if (confirms(peer, status)) {
      plan.confirmed.push(peer.publicKey);
    } else if (now - peer.installedAt > policy.provisionalGraceMs) {
      plan.remove.push({ publicKey: peer.publicKey, reason: 'unconfirmed' });
    }
    return;
  }
  const rxStill = status.rxBytes === peer.rxAtLastSweep && now - peer.rxMovedAt >= policy.rxStillMs;
  const last = handshake ?? peer.installedAt;
  if (rxStill && now - last > policy.idleTimeoutMs) {
    plan.remove.push({ publicKey: peer.publicKey, reason: 'idle' });
  }
}
