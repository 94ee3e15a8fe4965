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

/** Whether the device lists `wanted` as the record does, in its order and spelling: most peers, one address each. */
function sameInOrder(onDevice: readonly string[], wanted: readonly Cidr[]): boolean {
  if (onDevice.length !== wanted.length) return false;
  for (let i = 0; i < wanted.length; i++) if (onDevice[i] !== wanted[i]!.text) return false;
  return true;
}

/** Whether the device's allowed IPs are `wanted`, as sets. */
function sameAllowedIPs(onDevice: readonly string[], wanted: readonly Cidr[]): boolean {
  // No set, no parse for most peers.
  if (sameInOrder(onDevice, wanted)) return true;
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

/** An authorized peer on the device whose allowed IPs there are not its record's, as listed. */
interface Uneven {
  status: PeerStatus;
  grant: PeerGrant;
  /** The record version wgjit believes the device holds. */
  known: string | null;
}

/**
 * The allowed IPs each uneven peer goes without (by PublicKey.id), as the
 * conflict rule decides; the conflicts go to `out`.
 *
 * The device holds each address once, so only an address a record claims
 * and its peer lacks on the device can be contested: its claimants are the
 * peers that lack it and, if its record claims it too, the peer holding
 * it, which keeps it. So only peers that lack an address can lose one, and
 * a pass where none does (the steady state) builds no map of addresses.
 */
function settleConflicts(device: readonly PeerStatus[], uneven: readonly Uneven[], admissions: ReadonlyMap<string, AdmissionResult>, out: AddressConflict[]): Map<string, Set<string>> {
  const without = new Map<string, Set<string>>();
  // CIDR text → the peers whose record claims it and whose device lacks it.
  const lacking = new Map<string, PublicKey[]>();
  for (const { status, grant } of uneven) {
    const have = new Set(status.allowedIPs.map(canonical));
    for (const { text } of grant.allowedIPs) {
      if (have.has(text)) continue;
      const peers = lacking.get(text);
      if (peers === undefined) lacking.set(text, [status.publicKey]);
      else if (peers[peers.length - 1] !== status.publicKey) peers.push(status.publicKey);
    }
  }
  if (lacking.size === 0) return without;
  const holder = new Map<string, PublicKey>();
  for (const status of device) {
    for (const text of status.allowedIPs) {
      // Only an IPv6 text can be spelled otherwise than the store spells it (an IPv4-mapped one, as Go writes it).
      const cidr = lacking.has(text) || !text.includes(':') ? text : canonical(text);
      if (lacking.has(cidr)) holder.set(cidr, status.publicKey);
    }
  }
  for (const [cidr, lack] of lacking) {
    const h = holder.get(cidr);
    const verdict = h === undefined ? undefined : admissions.get(h.id);
    const held = verdict?.allowed === true && verdict.grant.allowedIPs.some((c) => c.text === cidr);
    if (lack.length + (held ? 1 : 0) < 2) continue;
    const keeper = held ? h! : lack.reduce((a, b) => (b.id < a.id ? b : a));
    const others = lack.filter((k) => k !== keeper);
    for (const k of others) {
      let set = without.get(k.id);
      if (set === undefined) without.set(k.id, (set = new Set()));
      set.add(cidr);
    }
    out.push({ cidr, holder: keeper, others });
  }
  return without;
}

/**
 * `readAt`: when the device read began (unix ms); a peer installed since
 * may be missing from the read without being gone. `admissions` is keyed
 * by PublicKey.id, as authorizeMany answers. Rewrites come first for the
 * peers whose allowed IPs are as listed, then for the others.
 */
export function planReconcile(
  device: readonly PeerStatus[],
  admissions: ReadonlyMap<string, AdmissionResult>,
  installed: { get(key: PublicKey): InstalledPeer | undefined; values(): Iterable<InstalledPeer> },
  readAt: number,
): ReconcilePlan {
  const plan: ReconcilePlan = { remove: [], update: [], adopt: [], forget: [], conflicts: [] };
  const onDevice = new Set<string>();
  const uneven: Uneven[] = [];
  const decide = (status: PeerStatus, grant: PeerGrant, wanted: GrantValues, known: string | null) => {
    if (needsWrite(status, wanted, known, grant.version)) {
      plan.update.push({ config: peerConfigFromGrant(status.publicKey, wanted, { updateOnly: true }), version: grant.version });
    }
  };
  for (const status of device) {
    onDevice.add(status.publicKey.id);
    const verdict = admissions.get(status.publicKey.id);
    if (verdict === undefined) continue; // the store could not say (corrupt record): leave it be
    if (!verdict.allowed) {
      plan.remove.push({ publicKey: status.publicKey, reason: verdict.reason });
      continue;
    }
    const { grant } = verdict;
    const mine = installed.get(status.publicKey);
    if (mine === undefined) plan.adopt.push({ status, version: grant.version });
    const known = mine?.recordVersion ?? null;
    // A peer with its record's allowed IPs is no party to a conflict it could lose: decided at once.
    if (sameInOrder(status.allowedIPs, grant.allowedIPs)) decide(status, grant, grant, known);
    else uneven.push({ status, grant, known });
  }
  const without = settleConflicts(device, uneven, admissions, plan.conflicts);
  for (const { status, grant, known } of uneven) {
    const lost = without.get(status.publicKey.id);
    decide(status, grant, lost === undefined ? grant : { ...grant, allowedIPs: grant.allowedIPs.filter((c) => !lost.has(c.text)) }, known);
  }
  for (const peer of installed.values()) {
    if (!onDevice.has(peer.publicKey.id) && peer.installedAt < readAt) plan.forget.push(peer.publicKey);
  }
  return plan;
}
