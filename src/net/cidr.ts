/**
 * CIDR parsing for AllowedIPs. Pure and total: anything a caller sends comes
 * back as a tagged result with a message a person can act on, never a throw.
 *
 * One prefix has one spelling in the store (IPv4 dotted quad, IPv6 in the
 * RFC 5952 compressed lowercase form), so records compare as strings and
 * match what `wg show` prints.
 */
import { decimalAt, formatIPv4 as formatIPv4Bytes, formatIPv6 as formatIPv6Bytes, IPV4_BYTES, IPV6_BYTES, ipv4At, ipv6At, parseAddress, type IpFamily } from './address.js';

export type { IpFamily } from './address.js';

export interface Cidr {
  family: IpFamily;
  /** The network address as an unsigned integer (32 or 128 bits). */
  address: bigint;
  prefix: number;
  /** Canonical text, e.g. `10.0.0.0/24`, `fd00::/64`. */
  text: string;
}

export type CidrResult = { ok: true; cidr: Cidr } | { ok: false; message: string };

export const IPV4_BITS = 32;
export const IPV6_BITS = 128;
/** Longest text we look at: a full IPv6 address with an embedded IPv4 tail and /128 is 49 characters. */
export const MAX_CIDR_TEXT_LENGTH = 64;

function fail(message: string): { ok: false; message: string } {
  return { ok: false, message };
}

function valueOf(bytes: Uint8Array): bigint {
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  return value;
}

function bytesOf(value: bigint, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = size - 1; i >= 0; i--, value >>= 8n) out[i] = Number(value & 0xffn);
  return out;
}

export function formatIPv4(value: bigint): string {
  return formatIPv4Bytes(bytesOf(value, IPV4_BYTES));
}

/** RFC 5952 in hex groups (an IPv4-mapped address too): the spelling the store keeps. */
export function formatIPv6(value: bigint): string {
  return formatIPv6Bytes(bytesOf(value, IPV6_BYTES), 0, false);
}

function formatAddress(family: IpFamily, value: bigint): string {
  return family === 4 ? formatIPv4(value) : formatIPv6(value);
}

/**
 * Parse `addr/prefix` or a bare address (a single host: /32 or /128).
 * Host bits must be zero: `10.0.0.1/24` is almost always a typo for either
 * `10.0.0.1/32` or `10.0.0.0/24`, and silently picking one would route
 * traffic the operator did not mean.
 */
export function parseCidr(input: unknown): CidrResult {
  if (typeof input !== 'string') return fail('a CIDR must be a string like 10.0.0.1/32 or fd00::1/128');
  const text = input.trim();
  if (text === '') return fail('empty CIDR (expected something like 10.0.0.1/32)');
  if (text.length > MAX_CIDR_TEXT_LENGTH) return fail(`CIDR is too long (${text.length} characters, at most ${MAX_CIDR_TEXT_LENGTH})`);
  const slash = text.indexOf('/');
  if (slash !== text.lastIndexOf('/')) return fail(`${text} is not a CIDR (more than one '/')`);
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const parsed = parseAddress(addressText);
  if (!parsed.ok) return fail(parsed.reason === 'ipv6_zone' ? `${parsed.message} in AllowedIPs` : parsed.message);
  const { family } = parsed.address;
  const bits = family === 4 ? IPV4_BITS : IPV6_BITS;
  const value = valueOf(parsed.address.bytes);

  let prefix = bits;
  if (slash >= 0) {
    const prefixText = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return fail(`${text}: prefix length '${prefixText}' is not a number from 0 to ${bits}`);
    prefix = Number(prefixText);
    if (prefix > bits) return fail(`${text}: prefix length ${prefix} is more than ${bits} for IPv${family}`);
  }

  const hostBits = BigInt(bits - prefix);
  const network = (value >> hostBits) << hostBits;
  if (network !== value) {
    const fixed = `${formatAddress(family, network)}/${prefix}`;
    const host = `${formatAddress(family, value)}/${bits}`;
    return fail(`${text} has host bits set; did you mean ${fixed} (the network) or ${host} (one host)?`);
  }
  return { ok: true, cidr: { family, address: network, prefix, text: `${formatAddress(family, network)}/${prefix}` } };
}

const CHAR_0 = 48;
const MAX_PREFIX_DIGITS = 3;
const scratch = new Uint8Array(IPV4_BYTES);

/**
 * parseCidr's answer for an IPv4 CIDR already in canonical form (as the
 * store keeps them), without BigInt or text: the hot path of installing
 * many peers at once. null for anything else, valid or not: ask parseCidr.
 */
export function parseCanonicalIPv4Cidr(text: string): { address: number; prefix: number } | null {
  const slash = text.indexOf('/');
  if (slash < 0 || !ipv4At(text, 0, slash, scratch)) return null;
  const prefix = decimalAt(text, slash + 1, text.length, MAX_PREFIX_DIGITS);
  // Canonical: no leading zero, at most two digits.
  if (prefix < 0 || prefix > IPV4_BITS || text.length - slash - 1 > 2 || (prefix > 0 && text.charCodeAt(slash + 1) === CHAR_0)) return null;
  const address = ((scratch[0]! << 24) | (scratch[1]! << 16) | (scratch[2]! << 8) | scratch[3]!) >>> 0;
  const hostMask = prefix === 0 ? 0xffffffff : (1 << (IPV4_BITS - prefix)) - 1;
  if (prefix < IPV4_BITS && (address & hostMask) !== 0) return null;
  return { address, prefix };
}

/**
 * Whether text[from, to) is a CIDR as a device writes one: an IP address
 * (the rule of parseAddress), a slash, a prefix of 1 to 3 digits within the
 * family's bits. Read in place, for the userspace API's replies; host bits
 * and leading zeros in the prefix are the device's business.
 */
export function isCidrAt(text: string, from: number, to: number): boolean {
  const slash = text.lastIndexOf('/', to - 1);
  if (slash < from || slash >= to) return false;
  const bits = decimalAt(text, slash + 1, to, MAX_PREFIX_DIGITS);
  if (bits < 0) return false;
  if (ipv4At(text, from, slash)) return bits <= IPV4_BITS;
  return bits <= IPV6_BITS && ipv6At(text, from, slash);
}

/** The canonical spelling, or null when `input` is not a valid CIDR. */
export function canonicalCidr(input: unknown): string | null {
  const r = parseCidr(input);
  return r.ok ? r.cidr.text : null;
}
