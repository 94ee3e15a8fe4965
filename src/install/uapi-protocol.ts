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
import { decimalAt, isIPv4At, isIPv6At } from '../net/address.js';
import { isCidrAt } from '../net/cidr.js';
import { appendAllowedIp, type DeviceInfo, type Endpoint, type PeerConfig, type PeerStatus } from './device.js';
import { KEY_LENGTH, keyToHex, PublicKey, publicKeyOf } from '../handshake/keys.js';

export const GET_REQUEST = 'get=1\n\n';
/** Reply terminator: the only blank line in any reply. */
export const REPLY_END = '\n\n';
export const MAX_PORT = 65_535;
/** The userspace API carries the keepalive interval as a 16-bit value. */
export const MAX_PERSISTENT_KEEPALIVE = 65_535;

const DECIMAL = /^[0-9]+$/;
const SIGNED_DECIMAL = /^-?[0-9]+$/;
const ZERO_KEY_HEX = '0'.repeat(2 * KEY_LENGTH);

// --------------------------------------------------------- text in place
//
// Replies are read where they lie in the reply text, without slicing each
// value out first (see "replies" below for why); requests share the checks.

const CHAR_PERCENT = 37;
const CHAR_OPEN_BRACKET = 91;
const CHAR_CLOSE_BRACKET = 93;
/** Most digits a field may have (as before this parser read in place); 16 may round in a double, 15 never do. */
const MAX_DIGITS = 16;
const EXACT_DIGITS = 15;

/** text[from, to) as a number if it is 1 to MAX_DIGITS decimal digits, else -1. */
export function digitsAt(text: string, from: number, to: number): number {
  return decimalAt(text, from, to, MAX_DIGITS);
}

// Addresses and CIDRs are checked in place by src/net's own variants
// (isIPv4At, isIPv6At, isCidrAt): one rule with the rest of wgjit.

// ---------------------------------------------------------------- requests

/** Why a request could not be built: a caller bug, never sent to the device. */
export class UapiRequestError extends RangeError {
  override name = 'UapiRequestError';
}

function hexOfPublicKey(key: PublicKey): string {
  if (!(key instanceof PublicKey)) throw new UapiRequestError('peer public key is not a valid PublicKey');
  return keyToHex(key.bytes);
}

function hexOfPresharedKey(key: Uint8Array): string {
  if (!(key instanceof Uint8Array) || key.length !== KEY_LENGTH) throw new UapiRequestError(`preshared key is not a valid key of ${KEY_LENGTH} bytes`);
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
  const { address } = endpoint;
  const family = typeof address !== 'string' ? 0 : isIPv4At(address, 0, address.length) ? 4 : isIPv6At(address, 0, address.length) ? 6 : 0;
  if (family === 0) throw new UapiRequestError(`endpoint address is not an IP literal: ${JSON.stringify(endpoint.address)}`);
  const port = checkInteger(endpoint.port, MAX_PORT, 'endpoint port');
  return family === 6 ? `[${endpoint.address}]:${port}` : `${endpoint.address}:${port}`;
}

/** Checks a CIDR's text strictly (IP literal, prefix in range) and returns it unchanged: no line of the request can be forged through it. */
export function checkCidr(text: unknown): string {
  if (typeof text !== 'string' || !isCidrAt(text, 0, text.length)) throw new UapiRequestError(`not a CIDR: ${JSON.stringify(text)}`);
  return text;
}

/** The lines for one peer. Order matters: update_only must follow public_key
 *  (wireguard-go drops the just-created peer there), and replace_allowed_ips
 *  must precede the allowed_ip lines it is meant to replace with. */
export function peerLines(peer: PeerConfig): string[] {
  const lines = [`public_key=${hexOfPublicKey(peer.publicKey)}`];
  if (peer.updateOnly) lines.push('update_only=true');
  if (peer.presharedKey !== undefined) lines.push(`preshared_key=${hexOfPresharedKey(peer.presharedKey)}`);
  if (peer.endpoint !== undefined) lines.push(`endpoint=${formatEndpoint(peer.endpoint)}`);
  if (peer.persistentKeepalive !== undefined) {
    const seconds = checkInteger(peer.persistentKeepalive, MAX_PERSISTENT_KEEPALIVE, 'persistent keepalive');
    lines.push(`persistent_keepalive_interval=${seconds}`);
  }
  if (peer.replaceAllowedIPs) lines.push('replace_allowed_ips=true');
  for (const cidr of peer.allowedIPs ?? []) lines.push(`allowed_ip=${checkCidr(cidr?.text)}`);
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
export function serializeRemovePeers(publicKeys: readonly PublicKey[]): string {
  return setRequest(publicKeys.flatMap((k) => [`public_key=${hexOfPublicKey(k)}`, 'remove=true']));
}

/** Splits `items` into consecutive slices of at most `size`. */
export function batches<T>(items: readonly T[], size: number): T[][] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`batch size must be a positive integer, got ${size}`);
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

// ----------------------------------------------------------------- replies
//
// A get reply lists every peer, about 340 bytes each: over 30 MB at 100,000
// peers, read on every sweep. So it is walked in place: no array of its
// lines, numbers read straight from the text, and peer keys read from hex
// into shared chunks and made PublicKeys all at once (docs/benchmarks.md,
// "Expiry sweep").

export type Reply = { ok: true; body: string[]; errno: number } | { ok: false; error: string };

/** Whether `text` holds a whole reply (the device writes nothing after it). */
export function isCompleteReply(text: string): boolean {
  return text.endsWith(REPLY_END);
}

type Tail = { ok: true; errno: number; bodyEnd: number } | { ok: false; error: string };

/** The errno of a complete reply, and where the lines before it end (just past their last newline; 0 if none). */
function replyTail(text: string): Tail {
  if (!isCompleteReply(text)) return { ok: false, error: 'reply does not end with a blank line' };
  const lastEnd = text.length - REPLY_END.length;
  const lastStart = lastEnd === 0 ? 0 : text.lastIndexOf('\n', lastEnd - 1) + 1;
  const last = text.slice(lastStart, lastEnd);
  if (!last.startsWith('errno=')) return { ok: false, error: `reply does not end with errno=N: ${JSON.stringify(last.slice(0, 40))}` };
  const value = last.slice('errno='.length);
  if (!SIGNED_DECIMAL.test(value)) return { ok: false, error: `bad errno value: ${JSON.stringify(value.slice(0, 20))}` };
  return { ok: true, errno: Number(value), bodyEnd: lastStart };
}

/** Splits a complete reply into its key=value lines and the errno. */
export function parseReply(text: string): Reply {
  const tail = replyTail(text);
  if (!tail.ok) return tail;
  return { ok: true, body: tail.bodyEnd === 0 ? [] : text.slice(0, tail.bodyEnd - 1).split('\n'), errno: tail.errno };
}

export type ParsedDevice = { ok: true; device: DeviceInfo } | { ok: false; error: string };

/** `1.2.3.4:5`, `[v6]:5` (a zone, if any, is dropped); null if malformed. */
export function parseEndpoint(text: string): Endpoint | null {
  return endpointAt(text, 0, text.length);
}

/** parseEndpoint of text[from, to). */
function endpointAt(text: string, from: number, to: number): Endpoint | null {
  const colon = text.lastIndexOf(':', to - 1);
  if (colon < from || colon >= to || to - colon - 1 > 5) return null;
  const port = digitsAt(text, colon + 1, to);
  if (port < 0 || port > MAX_PORT) return null;
  if (isIPv4At(text, from, colon)) return { address: text.slice(from, colon), port };
  if (text.charCodeAt(from) !== CHAR_OPEN_BRACKET || text.charCodeAt(colon - 1) !== CHAR_CLOSE_BRACKET || colon - from < 2) return null;
  // A zone (%eth0), if any, is dropped; searched only inside the brackets.
  let end = from + 1;
  while (end < colon - 1 && text.charCodeAt(end) !== CHAR_PERCENT) end++;
  return isIPv6At(text, from + 1, end) ? { address: text.slice(from + 1, end), port } : null;
}

class ParseFailure extends Error {}

function fail(message: string): never {
  throw new ParseFailure(message);
}

function uintAt(text: string, from: number, to: number, max: number, label: string): number {
  const n = digitsAt(text, from, to);
  if (n < 0 || n > max) fail(`${label} is not an integer in 0..${max}`);
  return n;
}

function uint64At(text: string, from: number, to: number, label: string): bigint {
  if (to - from <= EXACT_DIGITS) {
    const n = digitsAt(text, from, to);
    if (n < 0) fail(`${label} is not an unsigned 64-bit integer`);
    // 0n is one shared value; BigInt(0) makes a new one each time.
    return n === 0 ? 0n : BigInt(n);
  }
  const value = text.slice(from, to);
  if (!DECIMAL.test(value) || value.length > 20) fail(`${label} is not an unsigned 64-bit integer`);
  const n = BigInt(value);
  if (n >= 1n << 64n) fail(`${label} is not an unsigned 64-bit integer`);
  return n;
}

/** Values of the lowercase hex digits (what the device writes), -1 for every other character below 128. */
const HEX_DIGIT = (() => {
  const table = new Int8Array(128).fill(-1);
  for (const [i, c] of [...'0123456789abcdef'].entries()) table[c.charCodeAt(0)] = i;
  return table;
})();

/**
 * Whether text[from, to) is a key as 64 lowercase hex digits; if so, and
 * `out` is given, its 32 bytes are written to out[at, at + 32).
 */
export function hexKeyAt(text: string, from: number, to: number, out: Uint8Array | null = null, at = 0): boolean {
  if (to - from !== 2 * KEY_LENGTH) return false;
  for (let i = 0; i < KEY_LENGTH; i++) {
    const hi = text.charCodeAt(from + 2 * i);
    const lo = text.charCodeAt(from + 2 * i + 1);
    // Past the table's end a typed array answers undefined, which would read as 0.
    if (hi >= HEX_DIGIT.length || lo >= HEX_DIGIT.length) return false;
    const byte = (HEX_DIGIT[hi]! << 4) | HEX_DIGIT[lo]!;
    if (byte < 0) return false;
    if (out !== null) out[at + i] = byte;
  }
  return true;
}

/** Where a peer's key is decoded before it joins the reader (public keys: no secret to wipe). */
const peerKey = new Uint8Array(KEY_LENGTH);
/** A peer's key until the reply has been read. */
const UNREAD = PublicKey.fromBytes(new Uint8Array(KEY_LENGTH));

/** The keys a get reply may carry that wgjit reads, or checks are not misplaced. */
const DEVICE_FIELDS = ['private_key', 'listen_port', 'fwmark'] as const;
const PEER_FIELDS = [
  'public_key',
  'preshared_key',
  'endpoint',
  'allowed_ip',
  'persistent_keepalive_interval',
  'last_handshake_time_sec',
  'last_handshake_time_nsec',
  'rx_bytes',
  'tx_bytes',
  'protocol_version',
] as const;
type Field = (typeof DEVICE_FIELDS)[number] | (typeof PEER_FIELDS)[number];

/** The known keys by length: most lengths have one, none more than three. */
const FIELDS_BY_LENGTH: ReadonlyArray<readonly Field[] | undefined> = (() => {
  const table: Field[][] = [];
  for (const f of [...DEVICE_FIELDS, ...PEER_FIELDS]) (table[f.length] ??= []).push(f);
  return table;
})();

/**
 * The known key spelled at text[from, to), or null. Compared in place, so
 * the ten lines of each peer make no key strings.
 */
export function fieldAt(text: string, from: number, to: number): Field | null {
  for (const f of FIELDS_BY_LENGTH[to - from] ?? []) if (text.startsWith(f, from)) return f;
  return null;
}

/** The peer with its handshake time, which comes as two lines (seconds, nanoseconds), put together. */
function finishPeer(status: PeerStatus, sec: number, nsec: number): PeerStatus {
  status.lastHandshakeAt = sec === 0 && nsec === 0 ? null : sec * 1000 + Math.floor(nsec / 1e6);
  return status;
}

/**
 * Parses a `get` reply into DeviceInfo. Unknown keys are ignored (newer
 * devices add some); known keys with malformed values, or peer keys before
 * any `public_key=`, make the whole reply invalid. A device without a
 * private key reports an all-zero privateKey and a null publicKey.
 */
export function parseGetReply(name: string, text: string): ParsedDevice {
  const tail = replyTail(text);
  if (!tail.ok) return tail;
  if (tail.errno !== 0) return { ok: false, error: `device answered errno=${tail.errno}` };
  const privateKey = new Uint8Array(KEY_LENGTH);
  let listenPort = 0;
  let fwmark = 0;
  const peers: PeerStatus[] = [];
  const keys = PublicKey.reader();
  let peer: PeerStatus | null = null;
  let sec = 0;
  let nsec = 0;
  try {
    // Every line before the errno line ends with a newline before bodyEnd.
    for (let pos = 0; pos < tail.bodyEnd; ) {
      const end = text.indexOf('\n', pos);
      const eq = text.indexOf('=', pos);
      if (eq <= pos || eq > end) fail(`line without key=value: ${JSON.stringify(text.slice(pos, Math.min(end, pos + 40)))}`);
      const key = fieldAt(text, pos, eq);
      const from = eq + 1;
      pos = end + 1;
      if (key === 'public_key') {
        if (peer !== null) peers.push(finishPeer(peer, sec, nsec));
        // Its PublicKey is made at the end, with every other peer's.
        if (!hexKeyAt(text, from, end, peerKey)) fail('public_key is not 64 lowercase hex digits');
        keys.add(peerKey);
        peer = { publicKey: UNREAD, allowedIPs: [], persistentKeepalive: 0, lastHandshakeAt: null, rxBytes: 0n, txBytes: 0n, hasPresharedKey: false };
        sec = 0;
        nsec = 0;
        continue;
      }
      if (peer === null) {
        switch (key) {
          case 'private_key':
            if (!hexKeyAt(text, from, end, privateKey)) fail('private_key is not 64 lowercase hex digits');
            break;
          case 'listen_port':
            listenPort = uintAt(text, from, end, MAX_PORT, 'listen_port');
            break;
          case 'fwmark':
            fwmark = uintAt(text, from, end, 0xffff_ffff, 'fwmark');
            break;
          default:
            if (key !== null) fail(`peer key ${key} before any public_key`);
        }
        continue;
      }
      switch (key) {
        case 'preshared_key':
          // Checked, never decoded: it is a secret, and only its presence is
          // reported. Most peers have none: all zeros, compared first.
          peer.hasPresharedKey = end - from !== ZERO_KEY_HEX.length || !text.startsWith(ZERO_KEY_HEX, from);
          if (peer.hasPresharedKey && !hexKeyAt(text, from, end)) fail('preshared_key is not 64 lowercase hex digits');
          break;
        case 'endpoint': {
          const endpoint = endpointAt(text, from, end);
          if (endpoint === null) fail(`bad endpoint ${JSON.stringify(text.slice(from, Math.min(end, from + 60)))}`);
          peer.endpoint = endpoint;
          break;
        }
        case 'allowed_ip':
          if (!isCidrAt(text, from, end)) fail(`bad allowed_ip ${JSON.stringify(text.slice(from, Math.min(end, from + 60)))}`);
          appendAllowedIp(peer, text.slice(from, end));
          break;
        case 'persistent_keepalive_interval':
          peer.persistentKeepalive = uintAt(text, from, end, MAX_PERSISTENT_KEEPALIVE, key);
          break;
        case 'last_handshake_time_sec':
          sec = uintAt(text, from, end, Number.MAX_SAFE_INTEGER, key);
          break;
        case 'last_handshake_time_nsec':
          nsec = uintAt(text, from, end, 999_999_999, key);
          break;
        case 'rx_bytes':
          peer.rxBytes = uint64At(text, from, end, key);
          break;
        case 'tx_bytes':
          peer.txBytes = uint64At(text, from, end, key);
          break;
        default:
          break; // protocol_version, device keys among a peer's, and keys we do not know
      }
    }
  } catch (e) {
    privateKey.fill(0);
    if (e instanceof ParseFailure) return { ok: false, error: e.message };
    throw e;
  }
  if (peer !== null) peers.push(finishPeer(peer, sec, nsec));
  // One peer per public_key line, in order.
  for (const [i, key] of keys.keys().entries()) peers[i]!.publicKey = key;
  const hasKey = privateKey.some((b) => b !== 0);
  return {
    ok: true,
    device: {
      name,
      publicKey: hasKey ? PublicKey.fromBytes(publicKeyOf(privateKey)) : null,
      privateKey,
      listenPort,
      fwmark,
      peers,
    },
  };
}
