/**
 * What the API needs from the data plane of this process. The daemon
 * (`wgjit run`) implements it; `wgjit api` has none, and the gateway routes
 * answer 404 no_gateway.
 */

export interface InstalledPeerView {
  publicKey: string;
  /** `ip:port` or `[ip]:port` of the client, null before WireGuard saw one. */
  endpoint: string | null;
  /** provisional: installed on an initiation; confirmed: a handshake completed. */
  state: 'provisional' | 'confirmed';
  installedAt: string;
  lastHandshakeAt: string | null;
  rxBytes: number;
  txBytes: number;
}

export interface GatewayView {
  listPeers(): Promise<InstalledPeerView[]>;
  /**
   * Remove from the device now; false when it was not installed. `revoked`:
   * its record left the store (DELETE /v1/peers), `operator`: only this
   * gateway lets it go (DELETE /v1/gateway/peers).
   */
  removePeer(publicKey: string, reason: 'revoked' | 'operator'): Promise<boolean>;
  /** Flat counters: initiations_seen, verified, rejected_<reason>, installs, replays, expiries, ringbuf_drops, ... */
  stats(): Record<string, number>;
  ready(): Promise<{ ready: boolean; checks: Record<string, boolean> }>;
}
