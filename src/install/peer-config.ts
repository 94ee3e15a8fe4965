/**
 * What the device gets for a store record: always the full record, so an
 * install or a re-install leaves nothing from an earlier version behind
 * (all allowed IPs replaced, a removed preshared key or keepalive cleared).
 *
 * The grant holds the record's values as the store edge parsed them
 * (src/authorize/peer.ts): nothing here reads text. The public key is the
 * caller's: the one the record was looked up by (the store checks they
 * agree).
 */
import { KEY_LENGTH, type PublicKey } from '../handshake/keys.js';
import type { Cidr } from '../net/cidr.js';
import type { PeerConfig } from './device.js';

/** 32 zero bytes: "no preshared key" on the device. Shared: never written to. */
export const NO_PRESHARED_KEY: Uint8Array = new Uint8Array(KEY_LENGTH);

export interface GrantForDevice {
  allowedIPs: readonly Cidr[];
  /** 32 bytes, a secret. */
  presharedKey?: Uint8Array;
  persistentKeepalive?: number;
}

export function peerConfigFromGrant(publicKey: PublicKey, grant: GrantForDevice, opts: { updateOnly?: boolean } = {}): PeerConfig {
  return {
    publicKey,
    allowedIPs: grant.allowedIPs,
    replaceAllowedIPs: true,
    presharedKey: grant.presharedKey ?? NO_PRESHARED_KEY,
    persistentKeepalive: grant.persistentKeepalive ?? 0,
    ...(opts.updateOnly ? { updateOnly: true } : {}),
  };
}
