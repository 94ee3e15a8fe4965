/**
 * A peer record as the store keeps it: packed bytes, not JSON. At ten
 * million peers every byte of a record is ten megabytes of Redis memory,
 * and the JSON spelling of one IPv4 and one IPv6 host took 424 bytes where
 * this takes 38 (bench/store-scale.ts; docs/store-schema.md). The API's
 * JSON does not change: records are spelled out where they leave the store.
 *
 * Version 1, all integers big-endian:
 *
 *   0      1  format version (1)
 *   1      1  flags: 1 disabled, 2 preshared key, 4 persistent keepalive, 8 expiry,
 *              16 name
 *   2      7  createdAt, ms since the epoch, signed 56-bit (any year a Date holds)
 *   9      7  updatedAt, the same (the record's version)
 *   …      2  persistentKeepalive, seconds, 1..65535   (flag 4)
 *   …      7  expiresAt, as createdAt                   (flag 8)
 *   …     32  presharedKey                             (flag 2)
 *   …      1  the name's length in UTF-8 bytes, less one (flag 16)
 *   …  1-256  name, UTF-8 (at most MAX_NAME_LENGTH code points of 4 bytes)
 *   …         allowed IPs to the end, each: a byte, the prefix for IPv4
 *             (0..32) or 33 + the prefix for IPv6 (33..161), then the
 *             network part in ceil(prefix / 8) bytes (host bits are zero,
 *             so the rest is not kept)
 *
 * The public key is not in the value: it is in the Redis key.
 * The name came after the first release of this format, as a flag of its
 * own: a record without one is written byte for byte as before, so the
 * records of that release decode unchanged (a release without the flag
 * refuses a record that has a name, as it refuses any flag it does not know).
 * Decoding is strict, as the JSON reader was: the store is shared, and a
 * value that is not exactly a record we wrote never reaches the device.
 */
import { formatKey } from '../handshake/keys.js';
import { cidrFromBytes, parseCidr, type Cidr } from '../net/cidr.js';
import { MAX_ALLOWED_IPS, MAX_NAME_LENGTH, MAX_PERSISTENT_KEEPALIVE, nameProblem, type PeerGrant, type PeerRecord, type StoredPeer } from './peer.js';

export const RECORD_FORMAT_VERSION = 1;
const FLAG_DISABLED = 1;
const FLAG_PSK = 2;
const FLAG_KEEPALIVE = 4;
const FLAG_EXPIRY = 8;
const FLAG_NAME = 16;
const KNOWN_FLAGS = FLAG_DISABLED | FLAG_PSK | FLAG_KEEPALIVE | FLAG_EXPIRY | FLAG_NAME;
const TIME_BYTES = 7;
/** A time's high byte counts units of 2^48 ms, signed; the low six bytes the rest. */
const TIME_LOW = 2 ** 48;
const KEY_BYTES = 32;
const HEADER_BYTES = 2 + 2 * TIME_BYTES;
const IPV6_PREFIX_BASE = 33;
/** A name's UTF-8: every code point may take 4 bytes. Its length byte holds the length less one, so 256 fits. */
const MAX_NAME_BYTES = MAX_NAME_LENGTH * 4;
/** The largest record: every optional field and MAX_ALLOWED_IPS IPv6 /128s. */
export const MAX_RECORD_BYTES = HEADER_BYTES + 2 + TIME_BYTES + KEY_BYTES + 1 + MAX_NAME_BYTES + MAX_ALLOWED_IPS * 17;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** `ms` at `at`, as 7 bytes: the high byte signed, the low six unsigned. */
function writeTime(out: Buffer, ms: number, at: number): number {
  const high = Math.floor(ms / TIME_LOW);
  out.writeInt8(high, at);
  return out.writeUIntBE(ms - high * TIME_LOW, at + 1, TIME_BYTES - 1);
}

function msOf(iso: string): number {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new RangeError(`not a time: ${iso}`);
  return ms;
}

function parsedCidrs(texts: readonly string[]): Cidr[] {
  return texts.map((text) => {
    const r = parseCidr(text);
    if (!r.ok) throw new RangeError(r.message);
    return r.cidr;
  });
}

/**
 * Packs a record that came through validateCreate or applyPatch (canonical
 * fields). `cidrs`: its allowedIPs already parsed, in order (checkCreate
 * gives them), which spares parsing them again.
 */
export function encodeRecord(record: PeerRecord, cidrs: readonly Cidr[] = parsedCidrs(record.allowedIPs)): Buffer {
  let size = HEADER_BYTES;
  let flags = 0;
  if (record.disabled) flags |= FLAG_DISABLED;
  if (record.persistentKeepalive !== undefined) (flags |= FLAG_KEEPALIVE), (size += 2);
  if (record.expiresAt !== undefined) (flags |= FLAG_EXPIRY), (size += TIME_BYTES);
  if (record.presharedKey !== undefined) (flags |= FLAG_PSK), (size += KEY_BYTES);
  const nameBytes = record.name === undefined ? 0 : Buffer.byteLength(record.name, 'utf8');
  if (record.name !== undefined) {
    if (nameBytes < 1 || nameBytes > MAX_NAME_BYTES) throw new RangeError(`name must be 1 to ${MAX_NAME_BYTES} bytes of UTF-8`);
    (flags |= FLAG_NAME), (size += 1 + nameBytes);
  }
  for (const c of cidrs) size += 1 + ((c.prefix + 7) >> 3);

  // Every byte is written below: from Node's pool, not zeroed.
  const out = Buffer.allocUnsafe(size);
  out[0] = RECORD_FORMAT_VERSION;
  out[1] = flags;
  const created = msOf(record.createdAt);
  writeTime(out, created, 2);
  let at = writeTime(out, record.updatedAt === record.createdAt ? created : msOf(record.updatedAt), 2 + TIME_BYTES);
  if (record.persistentKeepalive !== undefined) at = out.writeUInt16BE(record.persistentKeepalive, at);
  if (record.expiresAt !== undefined) at = writeTime(out, msOf(record.expiresAt), at);
  if (record.presharedKey !== undefined) {
    if (out.write(record.presharedKey, at, KEY_BYTES, 'base64') !== KEY_BYTES) throw new RangeError('presharedKey must be 32 bytes');
    at += KEY_BYTES;
  }
  if (record.name !== undefined) {
    out[at++] = nameBytes - 1;
    at += out.write(record.name, at, nameBytes, 'utf8');
  }
  for (const c of cidrs) {
    out[at++] = c.family === 4 ? c.prefix : IPV6_PREFIX_BASE + c.prefix;
    for (let i = 0, n = (c.prefix + 7) >> 3; i < n; i++) out[at++] = c.bytes[i]!;
  }
  return out;
}

/** A time field back to the record's spelling; null when out of Date's range. */
function isoAt(buf: Buffer, at: number): string | null {
  const d = new Date(buf.readInt8(at) * TIME_LOW + buf.readUIntBE(at + 1, TIME_BYTES - 1));
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/**
 * The record under `publicKey` (wg's spelling, from the Redis key), its text
 * for the API and its values for the device; null when `value` is not
 * exactly a record this codec wrote.
 */
export function decodeRecord(publicKey: string, value: Uint8Array): StoredPeer | null {
  const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (buf.length < HEADER_BYTES || buf.length > MAX_RECORD_BYTES || buf[0] !== RECORD_FORMAT_VERSION) return null;
  const flags = buf[1]!;
  if ((flags & ~KNOWN_FLAGS) !== 0) return null;
  const createdAt = isoAt(buf, 2);
  const updatedAt = isoAt(buf, 2 + TIME_BYTES);
  if (createdAt === null || updatedAt === null) return null;
  let at = HEADER_BYTES;
  const record: PeerRecord = { publicKey, allowedIPs: [], disabled: (flags & FLAG_DISABLED) !== 0, createdAt, updatedAt };
  const grant: PeerGrant = { allowedIPs: [], version: updatedAt };

  if ((flags & FLAG_KEEPALIVE) !== 0) {
    if (at + 2 > buf.length) return null;
    const ka = buf.readUInt16BE(at);
    at += 2;
    if (ka === 0 || ka > MAX_PERSISTENT_KEEPALIVE) return null;
    record.persistentKeepalive = grant.persistentKeepalive = ka;
  }
  if ((flags & FLAG_EXPIRY) !== 0) {
    if (at + TIME_BYTES > buf.length) return null;
    const expiresAt = isoAt(buf, at);
    at += TIME_BYTES;
    if (expiresAt === null) return null;
    record.expiresAt = expiresAt;
  }
  if ((flags & FLAG_PSK) !== 0) {
    if (at + KEY_BYTES > buf.length) return null;
    const psk = new Uint8Array(buf.subarray(at, at + KEY_BYTES));
    at += KEY_BYTES;
    record.presharedKey = formatKey(psk);
    grant.presharedKey = psk;
  }
  if ((flags & FLAG_NAME) !== 0) {
    if (at + 1 > buf.length) return null;
    const n = buf[at++]! + 1;
    if (at + n > buf.length) return null;
    let name: string;
    try {
      name = utf8.decode(buf.subarray(at, at + n));
    } catch {
      return null;
    }
    at += n;
    if (nameProblem(name) !== null) return null;
    record.name = name;
  }

  const cidrs: Cidr[] = [];
  const texts: string[] = [];
  const seen = new Set<string>();
  while (at < buf.length) {
    const tag = buf[at++]!;
    const family = tag < IPV6_PREFIX_BASE ? 4 : 6;
    const prefix = family === 4 ? tag : tag - IPV6_PREFIX_BASE;
    const n = (prefix + 7) >> 3;
    if (prefix > (family === 4 ? 32 : 128) || at + n > buf.length) return null;
    const bytes = new Uint8Array(family === 4 ? 4 : 16);
    bytes.set(buf.subarray(at, at + n));
    at += n;
    const cidr = cidrFromBytes(family, bytes, prefix);
    if (cidr === null || seen.has(cidr.text)) return null;
    seen.add(cidr.text);
    cidrs.push(cidr);
    texts.push(cidr.text);
  }
  if (cidrs.length === 0 || cidrs.length > MAX_ALLOWED_IPS) return null;
  record.allowedIPs = texts;
  grant.allowedIPs = cidrs;
  return { record, grant };
}
