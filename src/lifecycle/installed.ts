/**
 * The peers wgjit has put on this gateway's device, and what it knows of
 * each. The device is the truth for handshakes and counters; this table adds
 * what only wgjit knows: when it installed the peer, and whether a handshake
 * has confirmed the install since.
 */
import type { PublicKey } from '../handshake/keys.js';
import type { Endpoint } from '../install/device.js';

export type PeerState = 'provisional' | 'confirmed';

export interface InstalledPeer {
  readonly publicKey: PublicKey;
  /** Changed only through InstalledPeers.confirm(), which keeps the count by state. */
  readonly state: PeerState;
  /** Unix ms when wgjit installed (or adopted) the peer. */
  installedAt: number;
  /** Where the initiation that installed it came from; the device's view wins once known. */
  endpoint: Endpoint | null;
  lastHandshakeAt: number | null;
  rxBytes: bigint;
  txBytes: bigint;
  /** As the install wrote them, then as the device last reported them (each sweep). Changed through InstalledPeers.setAllowedIPs(). */
  readonly allowedIPs: readonly string[];
  /** rxBytes at the previous sweep: a peer whose counter moved is in use. */
  rxAtLastSweep: bigint;
  /**
   * Unix ms of the read that first saw rxAtLastSweep (the install or the
   * adoption until the counter moves): how long the counter has been still.
   */
  rxMovedAt: number;
  /** updatedAt of the store record the device holds; null when not known (adopted after a restart). */
  recordVersion: string | null;
  /**
   * TAI64N of the initiation wgjit installed the peer for: what this
   * gateway's take of the peer in the fleet is ordered by
   * (src/fleet/holders.ts); null when adopted after a restart.
   */
  timestamp: Uint8Array | null;
}

/**
 * Told as peers confirm, change and go: the fleet's holders
 * (src/fleet/member.ts) and the routes to the peers (src/route/) follow them.
 */
export interface InstalledListener {
  confirmed?(peer: InstalledPeer): void;
  /** `before`: the allowed IPs until now. */
  allowedIPsChanged?(peer: InstalledPeer, before: readonly string[]): void;
  removed?(peer: InstalledPeer): void;
}

export class InstalledPeers {
  /** By PublicKey.id. */
  private readonly peers = new Map<string, InstalledPeer>();
  /** Kept as peers come, go and confirm, so a scrape reads it without a walk (3-9 ms at 100,000 peers). */
  private provisional = 0;

  private readonly listeners: InstalledListener[] = [];

  /** `listener` hears of every confirmation, change of allowed IPs and removal from now on. */
  listen(listener: InstalledListener): void {
    this.listeners.push(listener);
  }

  get size(): number {
    return this.peers.size;
  }

  has(publicKey: PublicKey): boolean {
    return this.peers.has(publicKey.id);
  }

  get(publicKey: PublicKey): InstalledPeer | undefined {
    return this.peers.get(publicKey.id);
  }

  add(publicKey: PublicKey, installedAt: number, endpoint: Endpoint | null, state: PeerState = 'provisional'): InstalledPeer {
    const peer: InstalledPeer = {
      publicKey,
      state,
      installedAt,
      endpoint,
      allowedIPs: [],
      lastHandshakeAt: null,
      rxBytes: 0n,
      txBytes: 0n,
      rxAtLastSweep: 0n,
      rxMovedAt: installedAt,
      recordVersion: null,
      timestamp: null,
    };
    // The same peer written again (not a removal): the listener is not told.
    const before = this.peers.get(publicKey.id);
    if (before?.state === 'provisional') this.provisional--;
    this.peers.set(publicKey.id, peer);
    if (state === 'provisional') this.provisional++;
    return peer;
  }

  /** A handshake completed: the install is confirmed. */
  confirm(publicKey: PublicKey): void {
    const peer = this.peers.get(publicKey.id);
    if (peer === undefined || peer.state === 'confirmed') return;
    (peer as { state: PeerState }).state = 'confirmed';
    this.provisional--;
    for (const l of this.listeners) l.confirmed?.(peer);
  }

  /** The peer's allowed IPs as the device now has them (CIDR text); the listener hears of a change. */
  setAllowedIPs(peer: InstalledPeer, allowedIPs: readonly string[]): void {
    const before = peer.allowedIPs;
    if (before.length === allowedIPs.length && before.every((ip, i) => ip === allowedIPs[i])) return;
    (peer as { allowedIPs: readonly string[] }).allowedIPs = allowedIPs;
    if (this.peers.get(peer.publicKey.id) === peer) for (const l of this.listeners) l.allowedIPsChanged?.(peer, before);
  }

  delete(publicKey: PublicKey): boolean {
    const peer = this.peers.get(publicKey.id);
    if (peer === undefined) return false;
    if (peer.state === 'provisional') this.provisional--;
    this.peers.delete(publicKey.id);
    for (const l of this.listeners) l.removed?.(peer);
    return true;
  }

  values(): IterableIterator<InstalledPeer> {
    return this.peers.values();
  }

  /** Peers by state, without a walk. */
  byState(): Record<PeerState, number> {
    return { provisional: this.provisional, confirmed: this.peers.size - this.provisional };
  }
}
