/**
 * Removing peers from the device, the one way every path does it: the
 * sweep (idle, unconfirmed), reconciliation and store events (expired,
 * revoked, moved, replay_reset), the API (revoked, operator). One batch to the device, then the
 * table, the count by reason (wgjit_peer_removals_total, which GET
 * /v1/gateway/stats reads as removed_<reason>) and one info line per batch.
 */
import type { PublicKey } from '../handshake/keys.js';
import type { WireGuardDevice } from '../install/device.js';
import type { Logger } from '../telemetry/log.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { InstalledPeers } from './installed.js';
import type { StoreRefusal } from './reconcile.js';

export type RemovalReason = 'idle' | 'unconfirmed' | 'expired' | 'revoked' | 'operator' | 'moved' | 'replay_reset';

/** One peer to remove; logged as it is (the key in base64: PublicKey.toJSON), so it carries only what a line should say. */
export interface Removal {
  publicKey: PublicKey;
  reason: RemovalReason;
  /** What the store answered for the key, when a refusal is why (unknown, disabled, expired). */
  refusal?: StoreRefusal;
  /** The gateway that holds the peer now, when it `moved` there. */
  holder?: string;
}

export interface RemovalDeps {
  device: Pick<WireGuardDevice, 'removePeers'>;
  installed: InstalledPeers;
  metrics: Pick<Metrics, 'removals'>;
}

/**
 * Removes `removals` from the device in one batch, then from the table,
 * and counts them by reason. The batch's info line (`message`, on the
 * caller's logger) carries the count per reason and the peers left, and
 * the key and reason when one peer was removed; in a larger batch each
 * peer is logged at debug: a sweep removing 10,000 peers would spend
 * ~0.15 s of CPU on lines at info. Throws when the device refuses the
 * batch: then nothing is removed, counted or logged, and the caller says
 * what failed.
 */
export async function removePeers(deps: RemovalDeps, removals: readonly Removal[], log: Logger, message: string): Promise<void> {
  if (removals.length === 0) return;
  await deps.device.removePeers(removals.map((r) => r.publicKey));
  const alone = removals.length === 1;
  const removed = new Map<RemovalReason, number>();
  for (const removal of removals) {
    deps.installed.delete(removal.publicKey);
    removed.set(removal.reason, (removed.get(removal.reason) ?? 0) + 1);
    if (!alone) log.debug(removal, 'peer removed from the device');
  }
  for (const [reason, count] of removed) deps.metrics.removals.inc({ reason }, count);
  const batch = { removed: Object.fromEntries(removed), installed: deps.installed.size };
  log.info(alone ? { ...removals[0], ...batch } : batch, message);
}
