/**
 * An IP address as its network-order bytes, from the ring record to the
 * replay; text only where a person reads or writes one. The one parser and
 * the one formatter of IP addresses: the CIDR parser, the userspace API's
 * reply reader and the capture records all use these.
 *
 * The parsers read text[from, to) where it lies, so a reply can be checked
 * without slicing each value out; a failure is a reason, never a throw.
 */

export type IpFamily = 4 | 6;

export const IPV4_BYTES = 4;
export const IPV6_BYTES = 16;
const IPV6_GROUPS = 8;

/** An IPv4 (4 bytes) or IPv6 (16 bytes) address. */
export interface IpAddress {
  readonly family: IpFamily;
  /** Network order; IPV4_BYTES or IPV6_BYTES long. */
  readonly bytes: Uint8Array;
}

/** An address and a port: a datagram's source or destination. */
export interface IpEndpoint {
  address: IpAddress;
  port: number;
}

export function bytesForFamily(family: IpFamily): number {
  return family === 4 ? IPV4_BYTES : IPV6_BYTES;
}

// ------------------------------------------------------------------ parse

/** Why a text is not an address, for the messages of parseAddress and parseCidr. */
export type AddressFailure =
  | { reason: 'ipv4_parts' }
  | { reason: 'ipv4_bad_part'; part: string }
  | { reason: 'ipv4_octet'; octet: number }
  | { reason: 'ipv6_zone' }
  | { reason: 'ipv6_embedded_ipv4' }
  | { reason: 'ipv6_double_colon_twice' }
  | { reason: 'ipv6_bad_group'; group: string }
  | { reason: 'ipv6_double_colon_empty' }
  | { reason: 'ipv6_groups'; count: number };

/** Receives the reason of a failed parse; only written on failure. */
export interface FailureSink {
  failure?: AddressFailure;
}

export const CHAR_0 = 48;
const CHAR_9 = 57;
const CHAR_DOT = 46;
const CHAR_COLON = 58;
const CHAR_PERCENT = 37;
const CHAR_LOWER_A = 97;
const CHAR_LOWER_F = 102;
const CHAR_UPPER_A = 65;
const CHAR_UPPER_F = 70;

/** text[from, to) as a number if it is 1 to `maxDigits` decimal digits, else -1. Read in place. */
export function decimalAt(text: string, from: number, to: number, maxDigits: number): number {
  if (to <= from || to - from > maxDigits) return -1;
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = text.charCodeAt(i) - CHAR_0;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

function failed(sink: FailureSink | undefined, failure: AddressFailure): false {
  if (sink !== undefined) sink.failure = failure;
  return false;
}

/**
 * Whether text[from, to) is a dotted quad: four decimal octets of 0 to 255,
 * no leading zeros (`010` would be octal to inet_aton), as node:net's isIPv4
 * takes it. Writes the 4 bytes to out[at] when given (garbage on failure).
 */
export function ipv4At(text: string, from: number, to: number, out: Uint8Array | null = null, at = 0, sink?: FailureSink): boolean {
  let octets = 0;
  let digits = 0;
  let value = 0;
  let leadingZero = false;
  // The end counts as one more dot, closing the last octet.
  for (let i = from; i <= to; i++) {
    const c = i < to ? text.charCodeAt(i) : CHAR_DOT;
    if (c === CHAR_DOT) {
      if (digits === 0 || value > 255 || (leadingZero && digits > 1) || octets === IPV4_BYTES) return ipv4Failed(text, from, to, sink);
      if (out !== null) out[at + octets] = value;
      octets++;
      digits = 0;
      value = 0;
      continue;
    }
    const d = c - CHAR_0;
    if (d < 0 || d > 9 || ++digits > 3) return ipv4Failed(text, from, to, sink);
    if (digits === 1) leadingZero = d === 0;
    value = value * 10 + d;
  }
  return octets === IPV4_BYTES || ipv4Failed(text, from, to, sink);
}

/** Why ipv4At refused text[from, to), for the messages: the count of parts first, then the first bad part. */
function ipv4Failed(text: string, from: number, to: number, sink: FailureSink | undefined): false {
  if (sink === undefined) return false;
  const parts = text.slice(from, to).split('.');
  if (parts.length !== IPV4_BYTES) return failed(sink, { reason: 'ipv4_parts' });
  for (const part of parts) {
    let digitsOnly = part.length >= 1 && part.length <= 3 && !(part.length > 1 && part.charCodeAt(0) === CHAR_0);
    for (let i = 0; digitsOnly && i < part.length; i++) digitsOnly = part.charCodeAt(i) >= CHAR_0 && part.charCodeAt(i) <= CHAR_9;
    if (!digitsOnly) return failed(sink, { reason: 'ipv4_bad_part', part });
    if (Number(part) > 255) return failed(sink, { reason: 'ipv4_octet', octet: Number(part) });
  }
  return failed(sink, { reason: 'ipv4_parts' });
}

/** The value of the hex group text[from, to) (1 to 4 digits), or -1. */
function groupAt(text: string, from: number, to: number): number {
  if (to <= from || to - from > 4) return -1;
  let value = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    let d: number;
    if (c >= CHAR_0 && c <= CHAR_9) d = c - CHAR_0;
    else if (c >= CHAR_LOWER_A && c <= CHAR_LOWER_F) d = c - CHAR_LOWER_A + 10;
    else if (c >= CHAR_UPPER_A && c <= CHAR_UPPER_F) d = c - CHAR_UPPER_A + 10;
    else return -1;
    value = (value << 4) | d;
  }
  return value;
}

/**
 * Checks the colon-separated groups of text[from, to) (empty: none) and
 * returns how many there are, or -1; writes them from out[at] when given.
 */
function groupsAt(text: string, from: number, to: number, out: Uint8Array | null, at: number, sink: FailureSink | undefined): number {
  if (from === to) return 0;
  let count = 0;
  for (let start = from; ; ) {
    let end = start;
    while (end < to && text.charCodeAt(end) !== CHAR_COLON) end++;
    const value = groupAt(text, start, end);
    if (value < 0) {
      failed(sink, { reason: 'ipv6_bad_group', group: text.slice(start, end) });
      return -1;
    }
    if (out !== null && count < IPV6_GROUPS) {
      out[at + 2 * count] = value >> 8;
      out[at + 2 * count + 1] = value & 0xff;
    }
    count++;
    if (end === to) return count;
    start = end + 1;
  }
}

/**
 * Whether text[from, to) is an IPv6 address: eight hex groups, or fewer
 * around one `::` standing for at least one zero group, optionally ending in
 * a dotted quad; no zone id. What node:net's isIPv6 takes, less zones.
 * Writes the 16 bytes to out[at] when given.
 */
export function ipv6At(text: string, from: number, to: number, out: Uint8Array | null = null, at = 0, sink?: FailureSink): boolean {
  let lastColon = -1;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === CHAR_PERCENT) return failed(sink, { reason: 'ipv6_zone' });
    if (c === CHAR_COLON) lastColon = i;
  }
  if (lastColon < 0) return failed(sink, { reason: 'ipv6_groups', count: 0 });
  let bodyEnd = to;
  let tailGroups = 0;
  let hasDot = false;
  for (let i = lastColon + 1; i < to && !hasDot; i++) hasDot = text.charCodeAt(i) === CHAR_DOT;
  if (hasDot) {
    // An embedded dotted quad (::ffff:192.0.2.1) fills the last two groups.
    if (!ipv4At(text, lastColon + 1, to, out, at + IPV6_BYTES - IPV4_BYTES)) return failed(sink, { reason: 'ipv6_embedded_ipv4' });
    tailGroups = 2;
    // Keep a trailing ':' only when it is the second half of '::'.
    bodyEnd = lastColon > from && text.charCodeAt(lastColon - 1) === CHAR_COLON ? lastColon + 1 : lastColon;
  }
  let gap = -1;
  for (let i = from; i + 1 < bodyEnd; i++) {
    if (text.charCodeAt(i) !== CHAR_COLON || text.charCodeAt(i + 1) !== CHAR_COLON) continue;
    if (gap >= 0) return failed(sink, { reason: 'ipv6_double_colon_twice' });
    gap = i;
    i++; // '::' pairs do not overlap: ':::' is '::' then ':'
  }
  if (gap < 0) {
    const count = groupsAt(text, from, bodyEnd, out, at, sink);
    if (count < 0) return false;
    if (count + tailGroups !== IPV6_GROUPS) return failed(sink, { reason: 'ipv6_groups', count: count + tailGroups });
    return true;
  }
  const head = groupsAt(text, from, gap, null, 0, sink);
  if (head < 0) return false;
  const rest = groupsAt(text, gap + 2, bodyEnd, null, 0, sink);
  if (rest < 0) return false;
  const missing = IPV6_GROUPS - head - rest - tailGroups;
  if (missing < 1) return failed(sink, { reason: 'ipv6_double_colon_empty' });
  if (out !== null) {
    groupsAt(text, from, gap, out, at, undefined);
    out.fill(0, at + 2 * head, at + 2 * (head + missing));
    groupsAt(text, gap + 2, bodyEnd, out, at + 2 * (head + missing), undefined);
  }
  return true;
}

/** Whether text[from, to) is an IPv4 address (ipv4At without writing). */
export function isIPv4At(text: string, from: number, to: number): boolean {
  return ipv4At(text, from, to);
}

/** Whether text[from, to) is an IPv6 address (ipv6At without writing). */
export function isIPv6At(text: string, from: number, to: number): boolean {
  return ipv6At(text, from, to);
}

/** The message a person reads for a failed parse of `text`. */
export function failureMessage(text: string, failure: AddressFailure): string {
  switch (failure.reason) {
    case 'ipv4_parts':
      return `${text} is not an IPv4 address (expected four numbers like 10.0.0.1)`;
    case 'ipv4_bad_part':
      return `${text} is not an IPv4 address (bad part '${failure.part}')`;
    case 'ipv4_octet':
      return `${text} is not an IPv4 address (${failure.octet} is more than 255)`;
    case 'ipv6_zone':
      return `${text}: zone ids (%...) are not allowed`;
    case 'ipv6_embedded_ipv4':
      return `${text} is not an IPv6 address (bad embedded IPv4 part)`;
    case 'ipv6_double_colon_twice':
      return `${text} is not an IPv6 address ('::' may appear only once)`;
    case 'ipv6_bad_group':
      return `${text} is not an IPv6 address (bad group '${failure.group}')`;
    case 'ipv6_double_colon_empty':
      return `${text} is not an IPv6 address ('::' must stand for at least one group)`;
    case 'ipv6_groups':
      return `${text} is not an IPv6 address (expected 8 groups, got ${failure.count})`;
  }
}

export type AddressResult = { ok: true; address: IpAddress } | { ok: false; message: string; reason: AddressFailure['reason'] };

/** An address in text (IPv6 if it has a ':'), or why it is not one. */
export function parseAddress(text: string): AddressResult {
  const family: IpFamily = text.includes(':') ? 6 : 4;
  const bytes = new Uint8Array(bytesForFamily(family));
  const sink: FailureSink = {};
  const ok = family === 4 ? ipv4At(text, 0, text.length, bytes, 0, sink) : ipv6At(text, 0, text.length, bytes, 0, sink);
  return ok ? { ok: true, address: { family, bytes } } : { ok: false, message: failureMessage(text, sink.failure!), reason: sink.failure!.reason };
}

// ----------------------------------------------------------------- format

/** Dotted quad of the 4 bytes at bytes[at]. */
export function formatIPv4(bytes: Uint8Array, at = 0): string {
  return `${bytes[at]}.${bytes[at + 1]}.${bytes[at + 2]}.${bytes[at + 3]}`;
}

/**
 * RFC 5952 text of the 16 bytes at bytes[at]: lowercase, no leading zeros,
 * the longest run (first on a tie) of two or more zero groups as "::".
 * `dottedMapped`: an IPv4-mapped address as ::ffff:a.b.c.d, the spelling
 * Node's sockets report (how a client's address is logged); CIDRs keep hex
 * groups, the spelling the store holds.
 */
export function formatIPv6(bytes: Uint8Array, at = 0, dottedMapped = true): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < IPV6_GROUPS; ) {
    if (bytes[at + 2 * i] !== 0 || bytes[at + 2 * i + 1] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < IPV6_GROUPS && bytes[at + 2 * j] === 0 && bytes[at + 2 * j + 1] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (dottedMapped && bestStart === 0 && bestLength === 5 && bytes[at + 10] === 0xff && bytes[at + 11] === 0xff) {
    return `::ffff:${formatIPv4(bytes, at + 12)}`;
  }
  const group = (i: number) => ((bytes[at + 2 * i]! << 8) | bytes[at + 2 * i + 1]!).toString(16);
  let text = '';
  for (let i = 0; i < IPV6_GROUPS; i++) {
    if (i === bestStart) {
      text += '::';
      i += bestLength - 1;
      continue;
    }
    if (text !== '' && !text.endsWith(':')) text += ':';
    text += group(i);
  }
  return text;
}

/** The address as a person reads it: dotted quad or RFC 5952. */
export function formatAddress(address: IpAddress): string {
  return address.family === 4 ? formatIPv4(address.bytes) : formatIPv6(address.bytes);
}

