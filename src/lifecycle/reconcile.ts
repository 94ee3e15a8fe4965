/**
 * Reconciliation between the device and the store, pure: what to remove,
 * rewrite and adopt, given one read of the device, the store's answer for
 * every key on it, and what wgjit believes it installed. The reconciler
 * (reconciler.ts) feeds it and applies the plan; it catches what a lost
 * store event left behind, and, at start, takes over the peers an earlier
 * run left on the device.
 */
import type { AdmissionResult, PeerGrant } from '../authorize/peer.js';
import type { PublicKey } from '../handshake/keys.js';
import type { PeerConfig, PeerStatus } from '../install/device.js';
import { peerConfigFromGrant } from '../install/peer-config.js';
import type { InstalledPeer } from './installed.js';

/** Why the store refuses a key it was asked about. */
export type StoreRefusal = Extract<AdmissionResult, { allowed: false }>['reason'];

/**
 * The removal reason for a peer the store now refuses: `expired` when its
 * record's expiresAt passed, `revoked` when it was deleted or disabled.
 */
export function removalReason(refusal: StoreRefusal): 'expired' | 'revoked' {
  return refusal === 'expired' ? 'expired' : 'revoked';
}

export interface ReconcilePlan {
  /** On the device, but the store refuses the key: unknown, disabled or expired. */
  remove: Array<{ publicKey: PublicKey; reason: StoreRefusal }>;
  /** Authorized, but the device holds another version of the record: rewritten in place. */
  update: Array<{ config: PeerConfig; version: string }>;
  /** Authorized peers on the device wgjit does not know it installed (an earlier run's), with their record's version. */
  adopt: Array<{ status: PeerStatus; version: string }>;
  /** wgjit believes it installed them before the device was read, but the device no longer has them. */
  forget: PublicKey[];
}

/**
 * Whether the device visibly differs from the record. A preshared key's
 * value cannot be read back, only its presence: a record with one counts
 * as different, so it is written (only peers whose version is unknown get
 * here).
 */
function differs(status: PeerStatus, grant: PeerGrant): boolean {
  if (grant.presharedKey !== undefined || status.hasPresharedKey) return true;
  if (status.persistentKeepalive !== (grant.persistentKeepalive ?? 0)) return true;
  if (status.allowedIPs.length !== grant.allowedIPs.length) return true;
  const onDevice = new Set(status.allowedIPs);
  return grant.allowedIPs.some((ip) => !onDevice.has(ip.text));
}

/**
 * `readAt`: when the device read began (unix ms); a peer installed since
 * may be missing from the read without being gone. `admissions` is keyed
 * by PublicKey.id, as authorizeMany answers.
 */
export function planReconcile(
  device: readonly PeerStatus[],
  admissions: ReadonlyMap<string, AdmissionResult>,
  installed: { get(key: PublicKey): InstalledPeer | undefined; values(): Iterable<InstalledPeer> },
  readAt: number,
): ReconcilePlan {
  const plan: ReconcilePlan = { remove: [], update: [], adopt: [], forget: [] };
  const onDevice = new Set<string>();
  for (const status of device) {
    onDevice.add(status.publicKey.id);
    const verdict = admissions.get(status.publicKey.id);
    if (verdict === undefined) continue; // the store could not say (corrupt record): leave it be
    if (!verdict.allowed) {
      plan.remove.push({ publicKey: status.publicKey, reason: verdict.reason });
      continue;
    }
    const mine = installed.get(status.publicKey);
    const { grant } = verdict;
    if (mine === undefined) plan.adopt.push({ status, version: grant.version });
    const known = mine?.recordVersion ?? null;
    const stale = known === null ? differs(status, grant) : known !== grant.version;
    if (stale) plan.update.push({ config: peerConfigFromGrant(status.publicKey, grant, { updateOnly: true }), version: grant.version });
  }
  for (const peer of installed.values()) {
    if (!onDevice.has(peer.publicKey.id) && peer.installedAt < readAt) plan.forget.push(peer.publicKey);
  }
  return plan;
}
