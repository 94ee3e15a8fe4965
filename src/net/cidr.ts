/**
 * CIDR parsing for AllowedIPs. Pure and total: anything a caller sends comes
 * back as a tagged result with a message a person can act on, never a throw.
 *
 * One prefix has one spelling in the store (IPv4 dotted quad, IPv6 in the
 * RFC 5952 compressed lowercase form), so records compare as strings and
 * match what `wg show` prints.
 */
import { compressIPv6Groups } from './ipv6.js';

export type IpFamily = 4 | 6;

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

const IPV6_GROUPS = 8;
const IPV6_GROUP_MAX = 0xffff;

type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

function fail(message: string): { ok: false; message: string } {
  return { ok: false, message };
}

/** Dotted quad, four decimal octets, no leading zeros (`010` would be octal to inet_aton). */
function parseIPv4(text: string): Parsed<bigint> {
  const parts = text.split('.');
  if (parts.length !== 4) return fail(`${text} is not an IPv4 address (expected four numbers like 10.0.0.1)`);
  let value = 0n;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return fail(`${text} is not an IPv4 address (bad part '${part}')`);
    const octet = Number(part);
    if (octet > 255) return fail(`${text} is not an IPv4 address (${octet} is more than 255)`);
    value = (value << 8n) | BigInt(octet);
  }
  return { ok: true, value };
}

function parseGroups(text: string, where: string): Parsed<number[]> {
  if (text === '') return { ok: true, value: [] };
  const groups: number[] = [];
  for (const part of text.split(':')) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(part)) return fail(`${where} is not an IPv6 address (bad group '${part}')`);
    groups.push(parseInt(part, 16));
  }
  return { ok: true, value: groups };
}

/** Full or `::`-compressed IPv6, optionally ending in a dotted quad. */
function parseIPv6(text: string): Parsed<bigint> {
  if (text.includes('%')) return fail(`${text}: zone ids (%...) are not allowed in AllowedIPs`);
  let body = text;
  let tail: number[] = [];
  const lastColon = body.lastIndexOf(':');
  if (body.slice(lastColon + 1).includes('.')) {
    const v4 = parseIPv4(body.slice(lastColon + 1));
    if (!v4.ok) return fail(`${text} is not an IPv6 address (bad embedded IPv4 part)`);
    tail = [Number(v4.value >> 16n), Number(v4.value & 0xffffn)];
    // Keep a trailing ':' only when it is the second half of '::'.
    body = body.endsWith('::' + body.slice(lastColon + 1)) ? body.slice(0, lastColon + 1) : body.slice(0, lastColon);
  }
  const halves = body.split('::');
  if (halves.length > 2) return fail(`${text} is not an IPv6 address ('::' may appear only once)`);
  const head = parseGroups(halves[0]!, text);
  if (!head.ok) return head;
  let groups: number[];
  if (halves.length === 2) {
    const rest = parseGroups(halves[1]!, text);
    if (!rest.ok) return rest;
    const after = [...rest.value, ...tail];
    const missing = IPV6_GROUPS - head.value.length - after.length;
    if (missing < 1) return fail(`${text} is not an IPv6 address ('::' must stand for at least one group)`);
    groups = [...head.value, ...new Array<number>(missing).fill(0), ...after];
  } else {
    groups = [...head.value, ...tail];
    if (groups.length !== IPV6_GROUPS) return fail(`${text} is not an IPv6 address (expected 8 groups, got ${groups.length})`);
  }
  let value = 0n;
  for (const g of groups) {
    if (g > IPV6_GROUP_MAX) return fail(`${text} is not an IPv6 address`);
    value = (value << 16n) | BigInt(g);
  }
  return { ok: true, value };
}

export function formatIPv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
}

/** RFC 5952: lowercase, no leading zeros, the longest run (first on a tie) of two or more zero groups as '::'. */
export function formatIPv6(value: bigint): string {
  const groups: number[] = [];
  for (let i = IPV6_GROUPS - 1; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  return compressIPv6Groups(groups);
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
  const family: IpFamily = addressText.includes(':') ? 6 : 4;
  const bits = family === 4 ? IPV4_BITS : IPV6_BITS;
  const address = family === 4 ? parseIPv4(addressText) : parseIPv6(addressText);
  if (!address.ok) return address;

  let prefix = bits;
  if (slash >= 0) {
    const prefixText = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return fail(`${text}: prefix length '${prefixText}' is not a number from 0 to ${bits}`);
    prefix = Number(prefixText);
    if (prefix > bits) return fail(`${text}: prefix length ${prefix} is more than ${bits} for IPv${family}`);
  }

  const hostBits = BigInt(bits - prefix);
  const network = (address.value >> hostBits) << hostBits;
  if (network !== address.value) {
    const fixed = `${formatAddress(family, network)}/${prefix}`;
    const host = `${formatAddress(family, address.value)}/${bits}`;
    return fail(`${text} has host bits set; did you mean ${fixed} (the network) or ${host} (one host)?`);
  }
  return { ok: true, cidr: { family, address: network, prefix, text: `${formatAddress(family, network)}/${prefix}` } };
}

const CANONICAL_IPV4_CIDR = /^(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\/(0|[1-9][0-9]?)$/;

/**
 * parseCidr's answer for an IPv4 CIDR already in canonical form (as the
 * store keeps them), without BigInt or text: the hot path of installing
 * many peers at once. null for anything else, valid or not: ask parseCidr.
 */
export function parseCanonicalIPv4Cidr(text: string): { address: number; prefix: number } | null {
  const m = CANONICAL_IPV4_CIDR.exec(text);
  if (m === null) return null;
  const octets = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
  const prefix = Number(m[5]);
  if (prefix > IPV4_BITS || octets.some((o) => o > 255)) return null;
  const address = ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
  const hostMask = prefix === 0 ? 0xffffffff : (1 << (IPV4_BITS - prefix)) - 1;
  if (prefix < IPV4_BITS && (address & hostMask) !== 0) return null;
  return { address, prefix };
}

/** The canonical spelling, or null when `input` is not a valid CIDR. */
export function canonicalCidr(input: unknown): string | null {
  const r = parseCidr(input);
  return r.ok ? r.cidr.text : null;
}
