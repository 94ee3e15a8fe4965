/**
 * The cross-platform WireGuard userspace API (wireguard-go, boringtun) as
 * pure functions: requests built from PeerConfig, replies parsed into
 * DeviceInfo. No I/O here; src/install/uapi.ts owns the socket.
 *
 * Wire format: `get=1\n\n` or `set=1\n` + `key=value` lines + `\n`; every
 * reply ends with `errno=N\n\n` (wireguard-go writes negative errnos, e.g.
 * -22 for EINVAL). Keys travel as lowercase hex.
 *
 * A set request is applied line by line and is NOT atomic: wireguard-go
 * creates a peer on its `public_key=` line and keeps it even when a later
 * line of the same request is rejected. So every value is validated here,
 * before anything is sent, and no caller-supplied text can add a line.
 */
import { isIP } from 'node:net';
import type { DeviceInfo, Endpoint, PeerConfig, PeerStatus } from './device.js';
import { formatKey, KEY_LENGTH, keyToHex, parseKey, publicKeyOf } from '../handshake/keys.js';

export const GET_REQUEST = 'get=1\n\n';
/** Reply terminator: the only blank line in any reply. */
export const REPLY_END = '\n\n';
export const MAX_PORT = 65_535;
/** The userspace API carries the keepalive interval as a 16-bit value. */
export const MAX_PERSISTENT_KEEPALIVE = 65_535;

const HEX_KEY = /^[0-9a-f]{64}$/;
const DECIMAL = /^[0-9]+$/;
const SIGNED_DECIMAL = /^-?[0-9]+$/;
const ZERO_KEY_HEX = '0'.repeat(2 * KEY_LENGTH);

// ---------------------------------------------------------------- requests

/** Why a request could not be built: a caller bug, never sent to the device. */
export class UapiRequestError extends RangeError {
  override name = 'UapiRequestError';
}

function hexOfKey(text: string, label: string): string {
  const key = parseKey(text);
  if (key === null) throw new UapiRequestError(`${label} is not a valid base64 WireGuard key`);
  return keyToHex(key);
}

function checkInteger(value: number, max: number, label: string): number {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new UapiRequestError(`${label} must be an integer in 0..${max}, got ${String(value)}`);
  }
  return value;
}

/** `a.b.c.d:port` or `[v6]:port`; rejects anything that is not an IP literal. */
export function formatEndpoint(endpoint: Endpoint): string {
  const family = isIP(endpoint.address);
  if (family === 0) throw new UapiRequestError(`endpoint address is not an IP literal: ${JSON.stringify(endpoint.address)}`);
  const port = checkInteger(endpoint.port, MAX_PORT, 'endpoint port');
  return family === 6 ? `[${endpoint.address}]:${port}` : `${endpoint.address}:${port}`;
}

/** Checks a CIDR strictly (IP literal, prefix in range) and returns it unchanged. */
export function checkCidr(cidr: string): string {
  const slash = cidr.lastIndexOf('/');
  const address = slash < 0 ? '' : cidr.slice(0, slash);
  const bits = slash < 0 ? '' : cidr.slice(slash + 1);
  const family = isIP(address);
  const max = family === 4 ? 32 : 128;
  if (family === 0 || !DECIMAL.test(bits) || bits.length > 3 || Number(bits) > max) {
    throw new UapiRequestError(`not a CIDR: ${JSON.stringify(cidr)}`);
  }
  return cidr;
}

/** The lines for one peer. Order matters: update_only must follow public_key
 *  (wireguard-go drops the just-created peer there), and replace_allowed_ips
 *  must precede the allowed_ip lines it is meant to replace with. */
export function peerLines(peer: PeerConfig): string[] {
  const lines = [`public_key=${hexOfKey(peer.publicKey, 'peer public key')}`];
  if (peer.updateOnly) lines.push('update_only=true');
  if (peer.presharedKey !== undefined) lines.push(`preshared_key=${hexOfKey(peer.presharedKey, 'preshared key')}`);
  if (peer.endpoint !== undefined) lines.push(`endpoint=${formatEndpoint(peer.endpoint)}`);
  if (peer.persistentKeepalive !== undefined) {
    const seconds = checkInteger(peer.persistentKeepalive, MAX_PERSISTENT_KEEPALIVE, 'persistent keepalive');
    lines.push(`persistent_keepalive_interval=${seconds}`);
  }
  if (peer.replaceAllowedIPs) lines.push('replace_allowed_ips=true');
  for (const cidr of peer.allowedIPs ?? []) lines.push(`allowed_ip=${checkCidr(cidr)}`);
  return lines;
}

function setRequest(lines: string[]): string {
  return `set=1\n${lines.map((l) => `${l}\n`).join('')}\n`;
}

/** One `set` request creating or updating `peers`. Throws UapiRequestError on invalid input. */
export function serializeSetPeers(peers: readonly PeerConfig[]): string {
  return setRequest(peers.flatMap(peerLines));
}

/** One `set` request removing `publicKeys` (absent keys are ignored by the device). */
export function serializeRemovePeers(publicKeys: readonly string[]): string {
  return setRequest(publicKeys.flatMap((k) => [`public_key=${hexOfKey(k, 'peer public key')}`, 'remove=true']));
}

/** Splits `items` into consecutive slices of at most `size`. */
export function batches<T>(items: readonly T[], size: number): T[][] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`batch size must be a positive integer, got ${size}`);
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

// ----------------------------------------------------------------- replies

export type Reply = { ok: true; body: string[]; errno: number } | { ok: false; error: string };

/** Whether `text` holds a whole reply (the device writes nothing after it). */
export function isCompleteReply(text: string): boolean {
  return text.endsWith(REPLY_END);
}

/** Splits a complete reply into its key=value lines and the errno. */
export function parseReply(text: string): Reply {
  if (!isCompleteReply(text)) return { ok: false, error: 'reply does not end with a blank line' };
  const lines = text.slice(0, -REPLY_END.length).split('\n');
  const last = lines.pop() ?? '';
  if (!last.startsWith('errno=')) return { ok: false, error: `reply does not end with errno=N: ${JSON.stringify(last.slice(0, 40))}` };
  const value = last.slice('errno='.length);
  if (!SIGNED_DECIMAL.test(value)) return { ok: false, error: `bad errno value: ${JSON.stringify(value.slice(0, 20))}` };
  return { ok: true, body: lines, errno: Number(value) };
}

export type ParsedDevice = { ok: true; device: DeviceInfo } | { ok: false; error: string };

/** `1.2.3.4:5`, `[v6]:5` (a zone, if any, is dropped); null if malformed. */
export function parseEndpoint(text: string): Endpoint | null {
  const colon = text.lastIndexOf(':');
  if (colon < 0) return null;
  let address = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  if (address.startsWith('[') && address.endsWith(']')) {
    address = address.slice(1, -1);
    const zone = address.indexOf('%');
    if (zone >= 0) address = address.slice(0, zone);
    if (isIP(address) !== 6) return null;
  } else if (isIP(address) !== 4) {
    return null;
  }
  if (!DECIMAL.test(portText) || portText.length > 5 || Number(portText) > MAX_PORT) return null;
  return { address, port: Number(portText) };
}

class ParseFailure extends Error {}

function fail(message: string): never {
  throw new ParseFailure(message);
}

function keyFromHex(value: string, label: string): Uint8Array {
  if (!HEX_KEY.test(value)) fail(`${label} is not 64 lowercase hex digits`);
  return new Uint8Array(Buffer.from(value, 'hex'));
}

function uint(value: string, max: number, label: string): number {
  if (!DECIMAL.test(value) || value.length > 16 || Number(value) > max) fail(`${label} is not an integer in 0..${max}`);
  return Number(value);
}

function uint64(value: string, label: string): bigint {
  if (!DECIMAL.test(value) || value.length > 20) fail(`${label} is not an unsigned 64-bit integer`);
  const n = BigInt(value);
  if (n >= 1n << 64n) fail(`${label} is not an unsigned 64-bit integer`);
  return n;
}

interface PeerDraft {
  status: PeerStatus;
  sec: number;
  nsec: number;
}

function finishPeer(draft: PeerDraft): PeerStatus {
  const { status, sec, nsec } = draft;
  status.lastHandshakeAt = sec === 0 && nsec === 0 ? null : sec * 1000 + Math.floor(nsec / 1e6);
  return status;
}

/**
 * Parses a `get` reply into DeviceInfo. Unknown keys are ignored (newer
 * devices add some); known keys with malformed values, or peer keys before
 * any `public_key=`, make the whole reply invalid. A device without a
 * private key reports an all-zero privateKey and an empty publicKey.
 */
export function parseGetReply(name: string, text: string): ParsedDevice {
  const reply = parseReply(text);
  if (!reply.ok) return reply;
  if (reply.errno !== 0) return { ok: false, error: `device answered errno=${reply.errno}` };
  let privateKey: Uint8Array = new Uint8Array(KEY_LENGTH);
  let listenPort = 0;
  let fwmark = 0;
  const peers: PeerStatus[] = [];
  let peer: PeerDraft | null = null;
  try {
    for (const line of reply.body) {
      const eq = line.indexOf('=');
      if (eq <= 0) fail(`line without key=value: ${JSON.stringify(line.slice(0, 40))}`);
      const key = line.slice(0, eq);
      const value = line.slice(eq + 1);
      if (key === 'public_key') {
        if (peer) peers.push(finishPeer(peer));
        peer = {
          status: {
            publicKey: formatKey(keyFromHex(value, 'public_key')),
            allowedIPs: [],
            persistentKeepalive: 0,
            lastHandshakeAt: null,
            rxBytes: 0n,
            txBytes: 0n,
            hasPresharedKey: false,
          },
          sec: 0,
          nsec: 0,
        };
        continue;
      }
      if (peer === null) {
        switch (key) {
          case 'private_key':
            privateKey = keyFromHex(value, 'private_key');
            break;
          case 'listen_port':
            listenPort = uint(value, MAX_PORT, 'listen_port');
            break;
          case 'fwmark':
            fwmark = uint(value, 0xffff_ffff, 'fwmark');
            break;
          default:
            if (PEER_KEYS.has(key)) fail(`peer key ${key} before any public_key`);
        }
        continue;
      }
      const s = peer.status;
      switch (key) {
        case 'preshared_key':
          keyFromHex(value, 'preshared_key');
          s.hasPresharedKey = value !== ZERO_KEY_HEX;
          break;
        case 'endpoint': {
          const endpoint = parseEndpoint(value);
          if (endpoint === null) fail(`bad endpoint ${JSON.stringify(value.slice(0, 60))}`);
          s.endpoint = endpoint;
          break;
        }
        case 'allowed_ip':
          try {
            s.allowedIPs.push(checkCidr(value));
          } catch {
            fail(`bad allowed_ip ${JSON.stringify(value.slice(0, 60))}`);
          }
          break;
        case 'persistent_keepalive_interval':
          s.persistentKeepalive = uint(value, MAX_PERSISTENT_KEEPALIVE, key);
          break;
        case 'last_handshake_time_sec':
          peer.sec = uint(value, Number.MAX_SAFE_INTEGER, key);
          break;
        case 'last_handshake_time_nsec':
          peer.nsec = uint(value, 999_999_999, key);
          break;
        case 'rx_bytes':
          s.rxBytes = uint64(value, key);
          break;
        case 'tx_bytes':
          s.txBytes = uint64(value, key);
          break;
        default:
          break; // protocol_version and keys we do not know
      }
    }
  } catch (e) {
    privateKey.fill(0);
    if (e instanceof ParseFailure) return { ok: false, error: e.message };
    throw e;
  }
  if (peer) peers.push(finishPeer(peer));
  const hasKey = privateKey.some((b) => b !== 0);
  return {
    ok: true,
    device: {
      name,
      publicKey: hasKey ? formatKey(publicKeyOf(privateKey)) : '',
      privateKey,
      listenPort,
      fwmark,
      peers,
    },
  };
}

const PEER_KEYS = new Set([
  'preshared_key',
  'endpoint',
  'allowed_ip',
  'persistent_keepalive_interval',
  'last_handshake_time_sec',
  'last_handshake_time_nsec',
  'rx_bytes',
  'tx_bytes',
  'protocol_version',
]);
