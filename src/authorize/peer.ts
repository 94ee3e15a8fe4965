/**
 * The peer record the store holds, and the checks every write goes through.
 * Pure: no I/O, no clock of its own (callers pass `now`). Input comes from
 * API clients, so validation returns a tagged result naming the field.
 */
import { formatKey, KEY_FORM, keyProblem, normalizeKey, parseKey } from '../handshake/keys.js';
import { unusableKeyProblem } from '../handshake/low-order.js';
import { formatAddress, type IpAddress } from '../net/address.js';
import { cidrContains, cidrTexts, parseCidr, type Cidr } from '../net/cidr.js';
import { isDefaultRoute, reservedRangeProblem } from '../net/reserved.js';

/** AllowedIPs per peer: far above any real client, low enough that one record stays small. */
export const MAX_ALLOWED_IPS = 256;
/** WireGuard's persistent keepalive is a 16-bit number of seconds; 0 means off. */
export const MAX_PERSISTENT_KEEPALIVE = 65535;
/** Longest ISO 8601 timestamp we accept (`2024-01-01T00:00:00.000000000+00:00` is 35). */
export const MAX_TIMESTAMP_LENGTH = 40;
/** A peer's name: a label for people (`wgjit peer ls`), in characters (code points). */
export const MAX_NAME_LENGTH = 64;

export interface PeerRecord {
  /** wg's standard base64 spelling. */
  publicKey: string;
  /** Canonical CIDRs, non-empty, no duplicates. */
  allowedIPs: string[];
  /** Write-only: never leaves the store through the API. */
  presharedKey?: string;
  /** Seconds, 1..65535; absent means off. */
  persistentKeepalive?: number;
  /** ISO 8601 UTC (`Date.toISOString()`); absent means never. */
  expiresAt?: string;
  disabled: boolean;
  /** A label for people, 1..MAX_NAME_LENGTH printable characters; absent when none. */
  name?: string;
  createdAt: string;
  updatedAt: string;
}

/** What the API returns: the record without the PSK, and whether it has one. */
export type PublicPeer = Omit<PeerRecord, 'presharedKey'> & { hasPresharedKey: boolean };

/** A validated change. `null` clears an optional field. */
export interface PeerPatch {
  allowedIPs?: string[];
  presharedKey?: string | null;
  persistentKeepalive?: number | null;
  expiresAt?: string | null;
  disabled?: boolean;
  name?: string | null;
}

/**
 * A gateway as a write sees it: the key and the addresses of its WireGuard
 * interface, which no peer record may take (src/fleet/identities.ts
 * gathers them: this gateway's own, and every gateway of the fleet list).
 */
export interface GatewaySelf {
  /** Its --gateway-id. */
  gateway: string;
  /** Its WireGuard interface's name, for the message. */
  interface: string;
  /** The interface's public key in wg's spelling; null when unknown. */
  publicKey: string | null;
  /** The interface's addresses. */
  addresses: readonly IpAddress[];
}

export type Validation<T> = { ok: true; value: T } | { ok: false; field: string; message: string };

/**
 * What the device takes for a record: its values, parsed once where the
 * record is read (record-codec.ts decodeRecord), so that nothing past the store reads text.
 */
export interface PeerGrant {
  allowedIPs: readonly Cidr[];
  /** 32 bytes, a secret; absent when the record has none. */
  presharedKey?: Uint8Array;
  /** Seconds; absent means off. */
  persistentKeepalive?: number;
  /** The record's updatedAt: which version of it the device holds. */
  version: string;
}

/** A record read from the store: its text for the API, its values for the device. */
export interface StoredPeer {
  record: PeerRecord;
  grant: PeerGrant;
}

export type AdmissionResult =
  | { allowed: true; grant: PeerGrant }
  | { allowed: false; reason: 'unknown' | 'disabled' | 'expired' };

const CREATE_FIELDS = new Set(['publicKey', 'allowedIPs', 'presharedKey', 'persistentKeepalive', 'expiresAt', 'disabled', 'name']);
const PATCH_FIELDS = new Set(['allowedIPs', 'presharedKey', 'persistentKeepalive', 'expiresAt', 'disabled', 'name']);

type Field<T> = { ok: true; value: T } | { ok: false; field: string; message: string };

function bad(field: string, message: string): { ok: false; field: string; message: string } {
  return { ok: false, field, message: `${field}: ${message}` };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unknownField(input: Record<string, unknown>, allowed: Set<string>): string | undefined {
  for (const k in input) if (Object.hasOwn(input, k) && !allowed.has(k)) return k;
  return undefined;
}

const ofGateway = (g: GatewaySelf) => `gateway ${g.gateway}'s interface ${g.interface}`;

function checkPublicKey(v: unknown, selves: readonly GatewaySelf[]): Field<string> {
  const key = normalizeKey(v);
  if (key === null) return bad('publicKey', `not a WireGuard public key (${keyProblem(v)}); expected ${KEY_FORM}, as \`wg pubkey\` prints`);
  const unusable = unusableKeyProblem(key);
  if (unusable !== null) return bad('publicKey', `${key} ${unusable}`);
  const own = ownKeyProblem(key, selves);
  if (own !== null) return bad('publicKey', own);
  return { ok: true, value: key };
}

function ownKeyProblem(key: string, selves: readonly GatewaySelf[]): string | null {
  const self = selves.find((g) => g.publicKey === key);
  return self === undefined ? null : `${key} is the public key of ${ofGateway(self)}: a gateway cannot be its own peer`;
}

/** Why a client may not have `cidr` because of a gateway: it holds an address of one's interface. Default routes aside. */
function ownAddressProblem(cidr: Cidr, selves: readonly GatewaySelf[]): string | null {
  if (isDefaultRoute(cidr)) return null;
  for (const g of selves) {
    for (const a of g.addresses) if (cidrContains(cidr, a.bytes)) return `${cidr.text} contains ${formatAddress(a)}, an address of ${ofGateway(g)}`;
  }
  return null;
}

/**
 * Why a client may not have `cidr`: a reserved range (src/net/reserved.ts),
 * or a network holding an address of a gateway's interface. The default
 * routes are a policy of their own, left to it.
 */
function allowedIpProblem(cidr: Cidr, selves: readonly GatewaySelf[]): string | null {
  if (isDefaultRoute(cidr)) return null;
  const reserved = reservedRangeProblem(cidr);
  if (reserved !== null) return `${cidr.text} ${reserved}`;
  return ownAddressProblem(cidr, selves);
}

/**
 * The gateway rules alone, on values a write already checked: whether the
 * key (null: a PATCH, which keeps its key) or an allowed IP is a gateway's.
 * The API checks everything else first, so that bad input is a 400 even
 * when the store, which lists the fleet's gateways, is away.
 */
export function gatewayConflict(publicKey: string | null, cidrs: readonly Cidr[], selves: readonly GatewaySelf[]): { ok: false; field: string; message: string } | null {
  if (selves.length === 0) return null;
  const key = publicKey === null ? null : ownKeyProblem(publicKey, selves);
  if (key !== null) return bad('publicKey', key);
  for (let i = 0; i < cidrs.length; i++) {
    const problem = ownAddressProblem(cidrs[i]!, selves);
    if (problem !== null) return bad(`allowedIPs[${i}]`, problem);
  }
  return null;
}

/** `selves` null: the list as a record of an earlier release holds it (the migration), without today's refusals. */
function checkAllowedIPs(v: unknown, selves: readonly GatewaySelf[] | null): Field<Cidr[]> {
  if (!Array.isArray(v)) return bad('allowedIPs', 'must be a list of CIDRs like ["10.0.0.2/32"]');
  if (v.length === 0) return bad('allowedIPs', 'must hold at least one CIDR');
  if (v.length > MAX_ALLOWED_IPS) return bad('allowedIPs', `at most ${MAX_ALLOWED_IPS} CIDRs, got ${v.length}`);
  const out: Cidr[] = [];
  // A client has one or two: a set only pays for itself on long lists.
  const seen = v.length > 8 ? new Set<string>() : null;
  for (let i = 0; i < v.length; i++) {
    const r = parseCidr(v[i]);
    if (!r.ok) return bad(`allowedIPs[${i}]`, r.message);
    const { text } = r.cidr;
    if (seen === null ? out.some((c) => c.text === text) : seen.has(text)) return bad(`allowedIPs[${i}]`, `${text} is listed twice`);
    const problem = selves === null ? null : allowedIpProblem(r.cidr, selves);
    if (problem !== null) return bad(`allowedIPs[${i}]`, problem);
    seen?.add(text);
    out.push(r.cidr);
  }
  return { ok: true, value: out };
}

function checkPresharedKey(v: unknown): Field<string> {
  // The message never echoes the value: it is a secret even when malformed.
  const key = normalizeKey(v);
  if (key === null) return bad('presharedKey', `not a WireGuard key (${keyProblem(v)}); expected ${KEY_FORM}, as \`wg genpsk\` prints`);
  return { ok: true, value: key };
}

/** 0 is wg's spelling of "off"; it maps to undefined so "off" has one form. */
function checkKeepalive(v: unknown): Field<number | undefined> {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_PERSISTENT_KEEPALIVE) {
    return bad('persistentKeepalive', `must be a whole number of seconds from 0 (off) to ${MAX_PERSISTENT_KEEPALIVE}`);
  }
  return { ok: true, value: v === 0 ? undefined : v };
}

// Date, 'T', time with optional fraction, and an explicit zone: a timestamp
// without a zone would mean different instants on different machines.
const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-](\d{2}):(\d{2}))$/;
/** A date at the start of a text: said "not a date" when it is one that does not exist, whatever follows. */
const DATE_PART = /^(\d{4})-(\d{2})-(\d{2})(?![\d])/;

/**
 * Why year-month-day is not a day of the calendar, or null. Checked by the
 * round trip: Date rolls 2030-02-30 over to 2030-03-02 without a word.
 */
function calendarProblem(year: number, month: number, day: number): string | null {
  if (month < 1 || month > 12) return `month ${month} is not 1 to 12`;
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  if (day < 1 || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day) {
    const last = new Date(0);
    last.setUTCFullYear(year, month, 0);
    return `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')} has ${last.getUTCDate()} days`;
  }
  return null;
}

/** A date alone, `2030-01-31`: the start of that day in UTC. */
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

function checkExpiresAt(input: unknown): Field<string> {
  if (typeof input !== 'string' || input.length > MAX_TIMESTAMP_LENGTH) return bad('expiresAt', 'must be an ISO 8601 time with a zone, like 2030-01-31T12:00:00Z, or a date (midnight UTC)');
  const v = DATE_ONLY.test(input) ? `${input}T00:00:00Z` : input;
  const date = DATE_PART.exec(v);
  if (date !== null) {
    const problem = calendarProblem(Number(date[1]), Number(date[2]), Number(date[3]));
    if (problem !== null) return bad('expiresAt', `${date[0]} is not a date (${problem})`);
  }
  const m = ISO_8601.exec(v);
  if (m === null) return bad('expiresAt', 'must be an ISO 8601 time with a zone, like 2030-01-31T12:00:00Z, or a date (midnight UTC)');
  const [hour, minute, second, zoneHour, zoneMinute] = [m[4], m[5], m[6] ?? '0', m[9] ?? '0', m[10] ?? '0'].map(Number) as [number, number, number, number, number];
  if (hour > 23 || minute > 59 || second > 59) return bad('expiresAt', `${m[4]}:${m[5]}${m[6] === undefined ? '' : `:${m[6]}`} is not a time of day`);
  if (zoneHour > 23 || zoneMinute > 59) return bad('expiresAt', `${m[8]} is not a time zone offset`);
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) return bad('expiresAt', `${v} is not a real date`);
  return { ok: true, value: new Date(ms).toISOString() };
}

/**
 * Control and format characters, line and paragraph separators, lone
 * surrogates, private-use and unassigned code points: what would break a
 * table row or a log line, or not survive the UTF-8 of the record.
 */
const NOT_PRINTABLE = /[\p{C}\p{Zl}\p{Zp}]/u;

/** Why `v` is not a peer name, or null. Exported for the CLI, which checks --name before sending it. */
export function nameProblem(v: unknown): string | null {
  if (typeof v !== 'string') return `must be a text of 1 to ${MAX_NAME_LENGTH} printable characters`;
  if (v.length === 0) return 'must not be empty (null removes the name)';
  // Counted in code points, as a person counts characters; a string of more UTF-16 units than twice the limit is over it anyway.
  const length = v.length > 2 * MAX_NAME_LENGTH ? v.length : [...v].length;
  if (length > MAX_NAME_LENGTH) return `at most ${MAX_NAME_LENGTH} characters, got ${length}`;
  const bad = NOT_PRINTABLE.exec(v);
  if (bad !== null) return `character ${[...v.slice(0, bad.index)].length + 1} (U+${bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}) is not printable`;
  return null;
}

function checkName(v: unknown): Field<string> {
  const problem = nameProblem(v);
  return problem === null ? { ok: true, value: v as string } : bad('name', problem);
}

function checkDisabled(v: unknown): Field<boolean> {
  if (typeof v !== 'boolean') return bad('disabled', 'must be true or false');
  return { ok: true, value: v };
}

/** now.toISOString() of the last `now` asked: a batch stamps all its records with one (and the call costs a microsecond). */
let lastStamp = { ms: NaN, iso: '' };
function stampOf(now: Date): string {
  const ms = now.getTime();
  if (ms !== lastStamp.ms) lastStamp = { ms, iso: now.toISOString() };
  return lastStamp.iso;
}

/** A record validateCreate made, and its allowedIPs parsed (the record's bytes take them: record-codec.ts). */
export interface CheckedRecord {
  record: PeerRecord;
  cidrs: Cidr[];
}

/**
 * A create request → a complete record stamped with `now`. `selves`: the
 * gateways whose interface key and addresses no record may take.
 */
export function validateCreate(input: unknown, now: Date, selves: readonly GatewaySelf[] = []): Validation<PeerRecord> {
  const checked = checkCreate(input, now, selves);
  return checked.ok ? { ok: true, value: checked.value.record } : checked;
}

/** validateCreate, with the CIDRs it parsed. */
export function checkCreate(input: unknown, now: Date, selves: readonly GatewaySelf[] = []): Validation<CheckedRecord> {
  if (!isPlainObject(input)) return bad('body', 'must be a JSON object');
  const extra = unknownField(input, CREATE_FIELDS);
  if (extra !== undefined) return bad(extra, 'unknown field');
  const publicKey = checkPublicKey(input.publicKey, selves);
  if (!publicKey.ok) return publicKey;
  if (input.allowedIPs === undefined) return bad('allowedIPs', 'is required');
  const allowedIPs = checkAllowedIPs(input.allowedIPs, selves);
  if (!allowedIPs.ok) return allowedIPs;

  const stamp = stampOf(now);
  const record: PeerRecord = { publicKey: publicKey.value, allowedIPs: cidrTexts(allowedIPs.value), disabled: false, createdAt: stamp, updatedAt: stamp };
  if (input.presharedKey !== undefined) {
    const psk = checkPresharedKey(input.presharedKey);
    if (!psk.ok) return psk;
    record.presharedKey = psk.value;
  }
  if (input.persistentKeepalive !== undefined) {
    const ka = checkKeepalive(input.persistentKeepalive);
    if (!ka.ok) return ka;
    if (ka.value !== undefined) record.persistentKeepalive = ka.value;
  }
  if (input.expiresAt !== undefined) {
    const exp = checkExpiresAt(input.expiresAt);
    if (!exp.ok) return exp;
    record.expiresAt = exp.value;
  }
  if (input.disabled !== undefined) {
    const dis = checkDisabled(input.disabled);
    if (!dis.ok) return dis;
    record.disabled = dis.value;
  }
  if (input.name !== undefined) {
    const name = checkName(input.name);
    if (!name.ok) return name;
    record.name = name.value;
  }
  return { ok: true, value: { record, cidrs: allowedIPs.value } };
}

/** A PATCH body → the fields to change; `null` clears presharedKey, persistentKeepalive, expiresAt or name. `selves` as validateCreate's. */
export function validatePatch(input: unknown, selves: readonly GatewaySelf[] = []): Validation<PeerPatch> {
  if (!isPlainObject(input)) return bad('body', 'must be a JSON object');
  if ('publicKey' in input) return bad('publicKey', 'cannot be changed; delete the peer and create it again');
  const extra = unknownField(input, PATCH_FIELDS);
  if (extra !== undefined) return bad(extra, 'unknown field');
  if (Object.keys(input).length === 0) return bad('body', `nothing to change; give at least one of ${[...PATCH_FIELDS].join(', ')}`);

  const patch: PeerPatch = {};
  if (input.allowedIPs !== undefined) {
    const r = checkAllowedIPs(input.allowedIPs, selves);
    if (!r.ok) return r;
    patch.allowedIPs = cidrTexts(r.value);
  }
  if (input.presharedKey !== undefined) {
    if (input.presharedKey === null) patch.presharedKey = null;
    else {
      const r = checkPresharedKey(input.presharedKey);
      if (!r.ok) return r;
      patch.presharedKey = r.value;
    }
  }
  if (input.persistentKeepalive !== undefined) {
    if (input.persistentKeepalive === null) patch.persistentKeepalive = null;
    else {
      const r = checkKeepalive(input.persistentKeepalive);
      if (!r.ok) return r;
      patch.persistentKeepalive = r.value ?? null;
    }
  }
  if (input.expiresAt !== undefined) {
    if (input.expiresAt === null) patch.expiresAt = null;
    else {
      const r = checkExpiresAt(input.expiresAt);
      if (!r.ok) return r;
      patch.expiresAt = r.value;
    }
  }
  if (input.disabled !== undefined) {
    const r = checkDisabled(input.disabled);
    if (!r.ok) return r;
    patch.disabled = r.value;
  }
  if (input.name !== undefined) {
    if (input.name === null) patch.name = null;
    else {
      const r = checkName(input.name);
      if (!r.ok) return r;
      patch.name = r.value;
    }
  }
  return { ok: true, value: patch };
}

/** The record after `patch`, as the store's update script computes it. */
export function applyPatch(record: PeerRecord, patch: PeerPatch, now: Date): PeerRecord {
  const next: PeerRecord = { ...record, allowedIPs: [...record.allowedIPs], updatedAt: now.toISOString() };
  for (const [k, v] of Object.entries(patch) as Array<[keyof PeerPatch, unknown]>) {
    if (v === null) delete next[k];
    else (next as unknown as Record<string, unknown>)[k] = v;
  }
  return next;
}

export function publicView(record: PeerRecord): PublicPeer {
  const { presharedKey, ...rest } = record;
  return { ...rest, allowedIPs: [...rest.allowedIPs], hasPresharedKey: presharedKey !== undefined };
}

/** May this record connect at `now`? Expiry is inclusive: at expiresAt the peer is already out. */
export function admission(peer: StoredPeer | null, now: Date): AdmissionResult {
  if (peer === null) return { allowed: false, reason: 'unknown' };
  const { record } = peer;
  if (record.disabled) return { allowed: false, reason: 'disabled' };
  if (record.expiresAt !== undefined && Date.parse(record.expiresAt) <= now.getTime()) return { allowed: false, reason: 'expired' };
  return { allowed: true, grant: peer.grant };
}

/**
 * A record in the JSON of the single-node layout of earlier releases, read
 * only by the migration to today's layout (migrate.ts), checked field by
 * field as those releases did. Null when it is not a record they wrote.
 */
export function decodeLegacyRecord(text: string): StoredPeer | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isPlainObject(v)) return null;
  const publicKey = normalizeKey(v.publicKey);
  if (publicKey === null || publicKey !== v.publicKey) return null;
  const ips = checkAllowedIPs(v.allowedIPs, null);
  if (!ips.ok) return null;
  if (typeof v.disabled !== 'boolean' || typeof v.createdAt !== 'string' || typeof v.updatedAt !== 'string') return null;
  const record: PeerRecord = { publicKey, allowedIPs: cidrTexts(ips.value), disabled: v.disabled, createdAt: v.createdAt, updatedAt: v.updatedAt };
  const grant: PeerGrant = { allowedIPs: ips.value, version: v.updatedAt };
  if (v.presharedKey !== undefined) {
    const psk = parseKey(v.presharedKey);
    if (psk === null) return null;
    record.presharedKey = formatKey(psk);
    grant.presharedKey = psk;
  }
  if (v.persistentKeepalive !== undefined) {
    const ka = checkKeepalive(v.persistentKeepalive);
    if (!ka.ok) return null;
    if (ka.value !== undefined) record.persistentKeepalive = grant.persistentKeepalive = ka.value;
  }
  if (v.expiresAt !== undefined) {
    const exp = checkExpiresAt(v.expiresAt);
    if (!exp.ok) return null;
    record.expiresAt = exp.value;
  }
  return { record, grant };
}
