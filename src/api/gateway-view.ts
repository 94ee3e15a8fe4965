/**
 * What the API needs from the data plane of this process. The daemon
 * (`wgjit run`) implements it; `wgjit api` has none, and the gateway routes
 * answer 404 no_gateway.
 */
import type { PublicKey } from '../handshake/keys.js';

export interface InstalledPeerView {
  publicKey: string;
  /** `ip:port` or `[ip]:port` of the client, null before WireGuard saw one. */
  endpoint: string | null;
  /** CIDRs the device routes to the peer, as it reports them. */
  allowedIPs: string[];
  /** provisional: installed on an initiation; confirmed: a handshake completed. */
  state: 'provisional' | 'confirmed';
  installedAt: string;
  lastHandshakeAt: string | null;
  rxBytes: number;
  txBytes: number;
}

/** This gateway's WireGuard interface, as the daemon found it at start. Never the private key. */
export interface GatewayInfo {
  interface: string;
  publicKey: string;
  listenPort: number;
  backend: 'netlink' | 'uapi';
  /** Peers wgjit holds on the device now. */
  installedPeers: number;
}

export interface GatewayView {
  /**
   * Every installed peer, in no particular order (the API sorts and pages).
   * `fresh`: read the device first (a sweep); the first page asks for it,
   * the pages after it read the table as it stands, so a walk of 100,000
   * peers reads the device once, not once a page.
   */
  listPeers(opts: { fresh: boolean }): Promise<InstalledPeerView[]>;
  info(): GatewayInfo;
  /**
   * Remove from the device now; false when it was not installed. `revoked`:
   * its record left the store (DELETE /v1/peers), `operator`: only this
   * gateway lets it go (DELETE /v1/gateway/peers).
   */
  removePeer(publicKey: PublicKey, reason: 'revoked' | 'operator'): Promise<boolean>;
  /**
   * Flat counters: initiations_seen, initiations_verified, rejected_<reason>,
   * installs, replays, removed_<reason>, ringbuf_drops, ... (the daemon's
   * are read from its Prometheus counters: src/telemetry/stats.ts).
   */
  stats(): Record<string, number> | Promise<Record<string, number>>;
  /** `warnings`: what an operator should know that does not make the gateway unready. */
  ready(): Promise<{ ready: boolean; checks: Record<string, boolean>; warnings?: string[] }>;
}
