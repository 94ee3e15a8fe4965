/**
 * What the device gets for a store record: always the full record, so an
 * install or a re-install leaves nothing from an earlier version behind
 * (all allowed IPs replaced, a removed preshared key or keepalive cleared).
 *
 * The record is the store's text; this is where its preshared key becomes
 * the bytes the device takes, once. The public key is the caller's: the
 * one the record was looked up by (the store checks they agree).
 */
import { KEY_LENGTH, parseKey, type PublicKey } from '../handshake/keys.js';
import type { PeerConfig } from './device.js';

/** 32 zero bytes: "no preshared key" on the device. Shared: never written to. */
export const NO_PRESHARED_KEY: Uint8Array = new Uint8Array(KEY_LENGTH);

export interface StoreRecordForDevice {
  allowedIPs: string[];
  /** Standard base64, as the store keeps it. */
  presharedKey?: string;
  persistentKeepalive?: number;
}

/** Throws RangeError for a record whose preshared key is not a key (the store never hands one out). */
export function peerConfigFromRecord(publicKey: PublicKey, record: StoreRecordForDevice, opts: { updateOnly?: boolean } = {}): PeerConfig {
  return {
    publicKey,
    allowedIPs: record.allowedIPs,
    replaceAllowedIPs: true,
    presharedKey: record.presharedKey === undefined ? NO_PRESHARED_KEY : presharedKeyBytes(record.presharedKey),
    persistentKeepalive: record.persistentKeepalive ?? 0,
    ...(opts.updateOnly ? { updateOnly: true } : {}),
  };
}

function presharedKeyBytes(text: string): Uint8Array {
  const key = parseKey(text);
  if (key === null) throw new RangeError('the record\'s preshared key is not a WireGuard key');
  return key;
}
