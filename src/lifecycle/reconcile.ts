/**
 * Reconciliation between the device and the store, pure: what to remove,
 * rewrite and adopt, given one read of the device, the store's answer for
 * every key on it, and what wgjit believes it installed. The reconciler
 * (reconciler.ts) feeds it and applies the plan; it catches what a lost
 * store event left behind, and, at start, takes over the peers an earlier
 * run left on the device.
 *
 * An authorized peer is rewritten when the device differs from its record,
 * field by field (allowed IPs, keepalive, whether it has a preshared key),
 * whatever the version wgjit believes the device holds: a change made
 * behind wgjit's back, or an address another peer's write took (a
 * device's allowed IPs are exclusive: writing one to a peer takes it from
 * the peer that had it), is repaired, not only a lost event.
 *
 * Two authorized records claiming one allowed IP cannot both have it. The
 * rule, the same every pass so the address does not flap between them: the
 * claimant that holds it on the device keeps it; when none does, the one
 * whose public key sorts first (by its bytes) gets it. The others are
 * written without it, and the plan names the conflict for a warning.
 */
import type { AdmissionResult, PeerGrant } from '../authorize/peer.js';
import type { PublicKey } from '../handshake/keys.js';
import type { PeerConfig, PeerStatus } from '../install/device.js';
import { peerConfigFromGrant } from '../install/peer-config.js';
import { parseCidr, type Cidr } from '../net/cidr.js';
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

/** One allowed IP that several authorized records on the device claim. */
export interface AddressConflict {
  /** Canonical CIDR text. */
  cidr: string;
  /** Keeps it: it holds it on the device, or, when none does, its key sorts first. */
  holder: PublicKey;
  /** Written without it. */
  others: PublicKey[];
}

export interface ReconcilePlan {
  /** On the device, but the store refuses the key: unknown, disabled or expired. */
  remove: Array<{ publicKey: PublicKey; reason: StoreRefusal }>;
  /**
   * Authorized, but the device differs from the record, or holds another
   * version of it: rewritten in place (update-only), with the record's
   * values less the addresses a conflict gives to another peer.
   */
  update: Array<{ config: PeerConfig; version: string }>;
  /** Authorized peers on the device wgjit does not know it installed (an earlier run's), with their record's version. */
  adopt: Array<{ status: PeerStatus; version: string }>;
  /** wgjit believes it installed them before the device was read, but the device no longer has them. */
  forget: PublicKey[];
  /** Allowed IPs several authorized records claim, and who keeps each (in the order first seen). */
  conflicts: AddressConflict[];
}

/** A device's spelling of a CIDR in the store's (the device may write IPv6 otherwise); as it is if it does not parse. */
function canonical(text: string): string {
  const parsed = parseCidr(text);
  return parsed.ok ? parsed.cidr.text : text;
}

/** Whether the device's allowed IPs are `wanted`, as sets. */
function sameAllowedIPs(onDevice: readonly string[], wanted: readonly Cidr[]): boolean {
  // Most peers have one, spelled as the store spells it: no set, no parse.
  if (onDevice.length === wanted.length && onDevice.every((text, i) => text === wanted[i]!.text)) return true;
  const want = new Set(wanted.map((c) => c.text));
  const have = new Set(onDevice.map(canonical));
  if (have.size !== want.size) return false;
  for (const text of have) if (!want.has(text)) return false;
  return true;
}

/**
 * Whether the device visibly differs from what it should hold. A preshared
 * key's value cannot be read back, only its presence.
 */
function drifted(status: PeerStatus, wanted: GrantValues): boolean {
  return (
    status.persistentKeepalive !== (wanted.persistentKeepalive ?? 0) ||
    status.hasPresharedKey !== (wanted.presharedKey !== undefined) ||
    !sameAllowedIPs(status.allowedIPs, wanted.allowedIPs)
  );
}

type GrantValues = Pick<PeerGrant, 'allowedIPs' | 'presharedKey' | 'persistentKeepalive'>;

/**
 * Whether to rewrite a peer. `known`: the record version wgjit believes the
 * device holds, null when it does not know (adopted after a restart): then
 * a record with a preshared key is written once, since its value cannot be
 * compared, and after that the version is known. With the version known
 * and unchanged, a matching presence of the key is taken as the same key:
 * rewriting every preshared-key peer every pass would cost a write per peer
 * at 100,000 peers.
 */
function needsWrite(status: PeerStatus, wanted: GrantValues, known: string | null, version: string): boolean {
  if (drifted(status, wanted)) return true;
  return known === null ? wanted.presharedKey !== undefined : known !== version;
}

/**
 * The allowed IPs each authorized peer goes without (by PublicKey.id), as
 * the conflict rule decides; the conflicts go to `out`. `grants` holds the
 * authorized peers' records by position in `device`.
 */
function settleConflicts(device: readonly PeerStatus[], grants: ReadonlyArray<PeerGrant | undefined>, out: AddressConflict[]): Map<string, Set<string>> {
  const without = new Map<string, Set<string>>();
  // The first claimant of each CIDR; the contested ones with all their claimants. Positions in `device`.
  const first = new Map<string, number>();
  const contested = new Map<string, number[]>();
  grants.forEach((grant, i) => {
    if (grant === undefined) return;
    for (const { text } of grant.allowedIPs) {
      const f = first.get(text);
      if (f === undefined) first.set(text, i);
      else if (f !== i) {
        const claimants = contested.get(text) ?? [f];
        if (claimants[claimants.length - 1] !== i) claimants.push(i);
        contested.set(text, claimants);
      }
    }
  });
  for (const [cidr, claimants] of contested) {
    const holds = (i: number) => device[i]!.allowedIPs.some((t) => t === cidr || canonical(t) === cidr);
    const keeper = claimants.find(holds) ?? claimants.reduce((a, b) => (device[b]!.publicKey.id < device[a]!.publicKey.id ? b : a));
    const others = claimants.filter((i) => i !== keeper);
    for (const i of others) {
      const id = device[i]!.publicKey.id;
      let set = without.get(id);
      if (set === undefined) without.set(id, (set = new Set()));
      set.add(cidr);
    }
    out.push({ cidr, holder: device[keeper]!.publicKey, others: others.map((i) => device[i]!.publicKey) });
  }
  return without;
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
  const plan: ReconcilePlan = { remove: [], update: [], adopt: [], forget: [], conflicts: [] };
  const onDevice = new Set<string>();
  // The authorized peers' records, by position in `device`.
  const grants = new Array<PeerGrant | undefined>(device.length);
  device.forEach((status, i) => {
    onDevice.add(status.publicKey.id);
    const verdict = admissions.get(status.publicKey.id);
    if (verdict === undefined) return; // the store could not say (corrupt record): leave it be
    if (!verdict.allowed) plan.remove.push({ publicKey: status.publicKey, reason: verdict.reason });
    else grants[i] = verdict.grant;
  });
  const without = settleConflicts(device, grants, plan.conflicts);
  device.forEach((status, i) => {
    const grant = grants[i];
    if (grant === undefined) return;
    const mine = installed.get(status.publicKey);
    if (mine === undefined) plan.adopt.push({ status, version: grant.version });
    const lost = without.get(status.publicKey.id);
    const wanted = lost === undefined ? grant : { ...grant, allowedIPs: grant.allowedIPs.filter((c) => !lost.has(c.text)) };
    if (needsWrite(status, wanted, mine?.recordVersion ?? null, grant.version)) {
      plan.update.push({ config: peerConfigFromGrant(status.publicKey, wanted, { updateOnly: true }), version: grant.version });
    }
  });
  for (const peer of installed.values()) {
    if (!onDevice.has(peer.publicKey.id) && peer.installedAt < readAt) plan.forget.push(peer.publicKey);
  }
  return plan;
}
