/**
 * CIDRs for AllowedIPs. Parsed once where text comes in (the API, a store
 * record, a device's reply); inside, a CIDR is its family, network-order
 * bytes and prefix, with its canonical text kept beside them for the store
 * and the API. Pure and total: a bad CIDR comes back as a tagged result
 * with a message a person can act on, never a throw.
 *
 * One prefix has one spelling in the store (IPv4 dotted quad, IPv6 in the
 * RFC 5952 compressed lowercase form), so records compare as strings and
 * match what `wg show` prints.
 */
import { CHAR_0, decimalAt, formatIPv4, formatIPv6, ipv4At, ipv6At, parseAddress, type IpFamily } from './address.js';

export interface Cidr {
  readonly family: IpFamily;
  /** The network address, network order: 4 or 16 bytes, host bits zero. */
  readonly bytes: Uint8Array;
  readonly prefix: number;
  /** Canonical text, e.g. `10.0.0.0/24`, `fd00::/64`. */
  readonly text: string;
}

export type CidrResult = { ok: true; cidr: Cidr } | { ok: false; message: string };

const IPV4_BITS = 32;
const IPV6_BITS = 128;
/** Longest text we look at: a full IPv6 address with an embedded IPv4 tail and /128 is 49 characters. */
export const MAX_CIDR_TEXT_LENGTH = 64;
const MAX_PREFIX_DIGITS = 3;

function fail(message: string): { ok: false; message: string } {
  return { ok: false, message };
}

/** The mask of the host bits of byte `i` under `prefix`: 0 for a byte wholly in the network part. */
function hostMask(i: number, prefix: number): number {
  const networkBits = Math.min(Math.max(prefix - i * 8, 0), 8);
  return 0xff >> networkBits;
}

/** Whether every bit of `bytes` past `prefix` is zero. */
export function hostBitsZero(bytes: Uint8Array, prefix: number): boolean {
  for (let i = prefix >> 3; i < bytes.length; i++) if ((bytes[i]! & hostMask(i, prefix)) !== 0) return false;
  return true;
}

function networkOf(bytes: Uint8Array, prefix: number): Uint8Array {
  return bytes.map((b, i) => b & ~hostMask(i, prefix));
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
  const end = slash < 0 ? text.length : slash;
  // Read in place: an import checks a million of these, and each object made here is garbage to collect.
  const family: IpFamily = text.lastIndexOf(':', end) >= 0 ? 6 : 4;
  const bytes = new Uint8Array(family === 4 ? 4 : 16);
  if (!(family === 4 ? ipv4At(text, 0, end, bytes) : ipv6At(text, 0, end, bytes))) {
    // Parsed again for the reason, on this path only.
    const parsed = parseAddress(text.slice(0, end));
    return fail(parsed.ok ? `${text} is not a CIDR` : parsed.reason === 'ipv6_zone' ? `${parsed.message} in AllowedIPs` : parsed.message);
  }
  const bits = family === 4 ? IPV4_BITS : IPV6_BITS;

  let prefix = bits;
  if (slash >= 0) {
    prefix = decimalAt(text, slash + 1, text.length, MAX_PREFIX_DIGITS);
    // One spelling per number: no leading zeros.
    if (prefix < 0 || (text.charCodeAt(slash + 1) === CHAR_0 && text.length > slash + 2)) {
      return fail(`${text}: prefix length '${text.slice(slash + 1)}' is not a number from 0 to ${bits}`);
    }
    if (prefix > bits) return fail(`${text}: prefix length ${prefix} is more than ${bits} for IPv${family}`);
  }

  if (!hostBitsZero(bytes, prefix)) {
    const fixed = `${formatCidrAddress(family, networkOf(bytes, prefix))}/${prefix}`;
    const host = `${formatCidrAddress(family, bytes)}/${bits}`;
    return fail(`${text} has host bits set; did you mean ${fixed} (the network) or ${host} (one host)?`);
  }
  // A dotted quad ipv4At takes is already its one spelling (no leading zeros), and so is the prefix: the text is canonical.
  const canonical = family === 4 ? (slash < 0 ? `${text}/${prefix}` : text) : `${formatCidrAddress(family, bytes)}/${prefix}`;
  return { ok: true, cidr: { family, bytes, prefix, text: canonical } };
}

/**
 * A CIDR from its values (a stored record's bytes): null when the prefix is
 * out of range for the family or a host bit is set.
 */
export function cidrFromBytes(family: IpFamily, bytes: Uint8Array, prefix: number): Cidr | null {
  const bits = family === 4 ? IPV4_BITS : IPV6_BITS;
  if (bytes.length * 8 !== bits || !Number.isInteger(prefix) || prefix < 0 || prefix > bits || !hostBitsZero(bytes, prefix)) return null;
  return { family, bytes, prefix, text: `${formatCidrAddress(family, bytes)}/${prefix}` };
}

/** The canonical spellings, for a record or a report. */
export function cidrTexts(cidrs: readonly Cidr[]): string[] {
  return cidrs.map((c) => c.text);
}

/** RFC 5952 in hex groups for IPv6 (an IPv4-mapped address too): the spelling the store keeps. */
function formatCidrAddress(family: IpFamily, bytes: Uint8Array): string {
  return family === 4 ? formatIPv4(bytes) : formatIPv6(bytes, 0, false);
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

/** Whether the first `bits` bits of `a` and `b` (same length) are equal. */
function samePrefix(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  const whole = bits >> 3;
  for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false;
  const rest = bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (a[whole]! & mask) === (b[whole]! & mask);
}

/** Whether the address `bytes` (4 or 16, network order) lies in `cidr`; an address of the other family never does. */
export function cidrContains(cidr: Cidr, bytes: Uint8Array): boolean {
  return cidr.bytes.length === bytes.length && samePrefix(cidr.bytes, bytes, cidr.prefix);
}

/** Whether two CIDRs share an address: of one family, one contains the other. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && samePrefix(a.bytes, b.bytes, Math.min(a.prefix, b.prefix));
}
