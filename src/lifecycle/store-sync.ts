/**
 * Follows the store's change events for the peers this gateway holds: a
 * peer deleted, disabled or expired in the store is removed from the device;
 * a changed one is rewritten in place (update-only, so a refresh never
 * re-creates a peer removed meanwhile). Events for peers not installed here
 * cost nothing. A lost event is caught by the reconciler (reconciler.ts),
 * at once when the channel comes back and every RECONCILE_INTERVAL_MS
 * anyway; this is the fast path.
 *
 * A device's allowed IPs are exclusive: writing a changed record moves
 * its addresses to the peer even from another peer that had them, and
 * taking one out of it later does not give it back. So a change that
 * leaves a peer with fewer allowed IPs than the device had for it calls
 * onNarrowed, and the daemon runs a reconciliation right after
 * (Reconciler.recheck()), which gives the freed addresses back to the peers
 * whose records claim them. Narrowing a record is rare; the pass costs
 * one device read and one batched store lookup, and passes asked for
 * while one runs share one.
 */
import type { PeerStore, StoreEvent } from '../authorize/store.js';
import type { PublicKey } from '../handshake/keys.js';
import type { WireGuardDevice } from '../install/device.js';
import { cidrTexts } from '../net/cidr.js';
import { peerConfigFromGrant } from '../install/peer-config.js';
import type { Logger } from '../telemetry/log.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { InstalledPeers } from './installed.js';
import { removalReason } from './reconcile.js';
import { removePeers } from './removal.js';
import { SUBSCRIBE_RETRY_MS } from './timings.js';

export interface StoreSyncDeps {
  store: Pick<PeerStore, 'subscribe' | 'authorize'>;
  device: WireGuardDevice;
  installed: InstalledPeers;
  log: Logger;
  metrics: Pick<Metrics, 'removals' | 'updates'>;
  /** Every change of a record, for any key, installed here or not. */
  onChange?: (publicKey: PublicKey) => void;
  /** A gateway took a peer (src/fleet/member.ts decides whether it moved away from here). */
  onHeld?: (event: Extract<StoreEvent, { op: 'held' }>) => void;
  /**
   * An operator cleared a key's replay state: forget its timestamps here
   * too. The peer, if installed, is removed as well (the device keeps its
   * own greatest timestamp while it holds the peer).
   */
  onResetReplay?: (publicKey: PublicKey) => void;
  /** The event channel is (again) connected: events sent while it was away are lost, check what is held. */
  onConnected?: () => void;
  /** A change was written that took allowed IPs from the peer: another peer on the device may be entitled to them. */
  onNarrowed?: (publicKey: PublicKey) => void;
}

export class StoreSync {
  private subscription: { close(): Promise<void> } | null = null;
  private retry: NodeJS.Timeout | null = null;
  private closed = false;
  /** Changes applied one at a time per key (by PublicKey.id), in event order. */
  private readonly chains = new Map<string, Promise<void>>();

  constructor(private readonly deps: StoreSyncDeps) {}

  async start(): Promise<void> {
    try {
      this.subscription = await this.deps.store.subscribe(
        (event) => this.onEvent(event),
        () => this.deps.onConnected?.(),
      );
      this.deps.log.info('following store events');
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, `cannot subscribe to store events; retrying every ${SUBSCRIBE_RETRY_MS} ms`);
      if (!this.closed) {
        this.retry = setTimeout(() => void this.start(), SUBSCRIBE_RETRY_MS);
        this.retry.unref();
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry !== null) clearTimeout(this.retry);
    await this.subscription?.close();
    await Promise.all(this.chains.values());
  }

  private onEvent(event: StoreEvent): void {
    if (event.op === 'held') {
      this.deps.onHeld?.(event);
      return;
    }
    const key = event.publicKey;
    this.deps.onChange?.(key);
    if (event.op === 'reset-replay') this.deps.onResetReplay?.(key);
    if (!this.deps.installed.has(key)) return;
    const next = (this.chains.get(key.id) ?? Promise.resolve()).then(() => (event.op === 'reset-replay' ? this.forgetReplay(key) : this.apply(key)));
    this.chains.set(key.id, next);
    void next.finally(() => {
      if (this.chains.get(key.id) === next) this.chains.delete(key.id);
    });
  }

  /** The device forgets the key's greatest timestamp with the peer: the client's next initiation installs it again. */
  private async forgetReplay(key: PublicKey): Promise<void> {
    if (!this.deps.installed.has(key)) return;
    try {
      await removePeers(this.deps, [{ publicKey: key, reason: 'replay_reset' }], this.deps.log, 'replay state reset by an operator: peer removed from the device, its next initiation installs it again');
    } catch (err) {
      this.deps.log.warn({ publicKey: key, err: (err as Error).message }, 'removing a peer whose replay state was reset failed');
    }
  }

  private async apply(key: PublicKey): Promise<void> {
    const { store, device, installed, log } = this.deps;
    if (!installed.has(key)) return;
    try {
      const admission = await store.authorize(key, new Date());
      if (!admission.allowed) {
        // `expired`: the record's expiresAt passed; `revoked`: deleted or disabled.
        const reason = removalReason(admission.reason);
        await removePeers(this.deps, [{ publicKey: key, reason, refusal: admission.reason }], log, `peer ${reason} in the store: removed from the device`);
        return;
      }
      await device.setPeers([peerConfigFromGrant(key, admission.grant, { updateOnly: true })]);
      const peer = installed.get(key);
      const written = cidrTexts(admission.grant.allowedIPs);
      let narrowed = false;
      if (peer !== undefined) {
        peer.recordVersion = admission.grant.version;
        narrowed = peer.allowedIPs.some((ip) => !written.includes(ip));
        installed.setAllowedIPs(peer, written);
      }
      this.deps.metrics.updates.inc();
      log.info({ publicKey: key }, 'peer changed in the store: device updated');
      if (narrowed) this.deps.onNarrowed?.(key);
    } catch (err) {
      log.warn({ publicKey: key, err: (err as Error).message }, 'applying a store change failed');
    }
  }
}
