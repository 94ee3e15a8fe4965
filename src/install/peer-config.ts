/**
 * What the device gets for a store record: always the full record, so an
 * install or a re-install leaves nothing from an earlier version behind
 * (all allowed IPs replaced, a removed preshared key or keepalive cleared).
 */
import type { PeerConfig } from './device.js';

/** Standard base64 of 32 zero bytes: "no preshared key" on the device. */
export const NO_PRESHARED_KEY = 'A'.repeat(43) + '=';

export interface StoreRecordForDevice {
  publicKey: string;
  allowedIPs: string[];
  presharedKey?: string;
  persistentKeepalive?: number;
}

export function peerConfigFromRecord(record: StoreRecordForDevice, opts: { updateOnly?: boolean } = {}): PeerConfig {
  return {
    publicKey: record.publicKey,
    allowedIPs: record.allowedIPs,
    replaceAllowedIPs: true,
    presharedKey: record.presharedKey ?? NO_PRESHARED_KEY,
    persistentKeepalive: record.persistentKeepalive ?? 0,
    ...(opts.updateOnly ? { updateOnly: true } : {}),
  };
}
