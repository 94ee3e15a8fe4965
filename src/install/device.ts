/**
 * The WireGuard device facade every backend implements: the userspace API
 * (wireguard-go, boringtun) and kernel generic netlink. Modelled on
 * wireguard-tools' get device / set device: optional fields are optional, not
 * sentinels, and large peer sets are split into several messages by the
 * backend, never by the caller.
 *
 * Keys cross this interface as 32-byte values, as wireguard-tools keeps
 * them in its structs: a PublicKey, and a preshared key as bytes; allowed
 * IPs to set as parsed CIDRs. The backends only write and read bytes (hex
 * on the userspace API, raw in netlink); base64 is for the API, the logs
 * and the CLI.
 */
import type { PublicKey } from '../handshake/keys.js';
import type { Cidr } from '../net/cidr.js';

export interface Endpoint {
  address: string; // IPv4 dotted quad or IPv6 text, no brackets
  port: number;
}

/** What to set on one peer. Only the fields present are changed. */
export interface PeerConfig {
  publicKey: PublicKey;
  /** 32 bytes, a secret; all zeros clears the peer's preshared key (NO_PRESHARED_KEY). */
  presharedKey?: Uint8Array;
  endpoint?: Endpoint;
  persistentKeepalive?: number; // seconds, 0 turns it off
  allowedIPs?: readonly Cidr[];
  /** Replace the peer's allowed IPs with `allowedIPs` instead of adding to them. */
  replaceAllowedIPs?: boolean;
  /** Change the peer only if it exists; never create it. */
  updateOnly?: boolean;
}

/** A peer as the device reports it. */
export interface PeerStatus {
  publicKey: PublicKey;
  endpoint?: Endpoint;
  /** CIDR text as the device reports them: what the API shows. */
  allowedIPs: string[];
  persistentKeepalive: number; // 0 when off
  /** Unix milliseconds of the latest completed handshake; null if none. */
  lastHandshakeAt: number | null;
  rxBytes: bigint;
  txBytes: bigint;
  hasPresharedKey: boolean;
}

/**
 * Adds an allowed IP to a peer being read from the device. Most peers have
 * one: an array made with its first element holds just that, where a push
 * onto an empty one reserves room for 16 (about 130 bytes more per peer,
 * on every device read).
 */
export function appendAllowedIp(peer: PeerStatus, cidr: string): void {
  if (peer.allowedIPs.length === 0) peer.allowedIPs = [cidr];
  else peer.allowedIPs.push(cidr);
}

export interface DeviceInfo {
  name: string;
  /** The public key of the interface's private key; null when the device has none. */
  publicKey: PublicKey | null;
  /** The interface's private key. A secret: never log it, wipe it when done. */
  privateKey: Uint8Array;
  listenPort: number;
  fwmark: number;
  peers: PeerStatus[];
}

export interface WireGuardDevice {
  readonly kind: 'uapi' | 'netlink';
  readonly name: string;
  /** The whole device, peers included. */
  getDevice(): Promise<DeviceInfo>;
  /** Create or update peers, in as many messages as the backend needs. */
  setPeers(peers: readonly PeerConfig[]): Promise<void>;
  /** Remove peers by public key; keys that are not present are ignored. */
  removePeers(publicKeys: readonly PublicKey[]): Promise<void>;
  /** The peers only (a device read without the key material). */
  listPeers(): Promise<PeerStatus[]>;
  close(): Promise<void>;
}

/** A failure talking to the device, with a stable code for logs and metrics. */
export class DeviceError extends Error {
  constructor(
    readonly code: 'no_device' | 'not_permitted' | 'protocol' | 'io' | 'rejected',
    message: string,
    readonly errno?: number,
  ) {
    super(message);
    this.name = 'DeviceError';
  }
}
