/**
 * The files `wgjit peer import` reads: wg config `[Peer]` blocks, `wg show
 * IF dump` lines, and JSON lines (one record a line, as POST /v1/peers takes
 * it). Pure: text in, records with their line numbers out, or every bad
 * line with what is wrong. The file is hostile input: lines are bounded,
 * messages are one line of bounded printable text, and no message echoes a
 * value that may be a secret (nothing key-like, whatever field it stands
 * in; nothing of a JSON line that did not parse): the line number says
 * where.
 *
 * Each value is checked by the parser the API uses (keys: handshake/keys.ts,
 * CIDRs: net/cidr.ts), and each record by validateCreate
 * (authorize/peer.ts), so the file is refused here for what the API would
 * refuse, with the line to fix.
 */
import type { Static } from 'typebox';
import type { PeerCreateBody } from '../api/schemas.js';
import { MAX_PERSISTENT_KEEPALIVE, validateCreate, type GatewaySelf } from '../authorize/peer.js';
import { keyProblem, normalizeKey } from '../handshake/keys.js';
import { parseCidr } from '../net/cidr.js';

export const IMPORT_FORMATS = ['wg', 'dump', 'jsonl'] as const;
export type ImportFormat = (typeof IMPORT_FORMATS)[number];

/**
 * Longest line read: a record with MAX_ALLOWED_IPS (256) IPv6 CIDRs on one
 * line is ~17 KB; a longer line is refused, not parsed.
 */
export const MAX_LINE_LENGTH = 32 * 1024;
/**
 * Longest file read: about 1.5 million typical records (a file is read
 * whole and every line checked before anything is written, so it is held
 * in memory: about 600 MB for a million records). Larger imports are split
 * into several files.
 */
export const MAX_IMPORT_BYTES = 256 * 1024 * 1024;
/** Bad lines kept with their message; beyond, only counted. */
export const MAX_LINE_ERRORS = 100;
/** Longest piece of the file quoted in a message (a key name, a section name). */
const MAX_QUOTED = 40;
/** Longest message: one line a terminal shows whole. */
const MAX_MESSAGE = 300;
/** How much of the file sniffing reads for its first line with content. */
const SNIFF_BYTES = 64 * 1024;

export type PeerInput = Static<typeof PeerCreateBody>;

/**
 * A record of the file, checked. Only its JSON is kept, not the parsed
 * object: a million records held as objects until the last is sent cost
 * the import more in garbage collection than the parsing itself.
 */
export interface ImportRecord {
  /** 1-based: the record's line (a wg config's `[Peer]` line). */
  line: number;
  /** wg's spelling of its key (the file may give base64url). */
  publicKey: string;
  /** The record as POST /v1/peers takes it: a JSON line as the file has it, else its fields spelled out. */
  json: string;
}

export interface LineError {
  line: number;
  message: string;
}

export type ParsedFile =
  | { ok: true; format: ImportFormat; records: ImportRecord[] }
  /** `errors` holds the first MAX_LINE_ERRORS, in line order; `count` all of them. Line 0: the file as a whole. */
  | { ok: false; format: ImportFormat | null; errors: LineError[]; count: number };

/**
 * `text` as one printable line of at most `max` characters: control
 * characters (C0, DEL, C1, line and paragraph separators, bidi controls)
 * shown as \u escapes, so a file cannot draw on the terminal or split a
 * message into lines.
 */
export function printable(text: string, max = MAX_MESSAGE): string {
  // eslint-disable-next-line no-control-regex
  const shown = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return shown.length > max ? `${shown.slice(0, max - 1)}…` : shown;
}

/**
 * A run of base64 this long is no word of a message, nor part of a CIDR:
 * it is a key, or a piece of one. The file may hold preshared keys (and a
 * dump's interface line, the private key) in any field a mistake shifts
 * them to, so no message shows such a run; the line number says where.
 */
const KEYLIKE_RUN = /[A-Za-z0-9+/_-]{20,}={0,2}/g;
const unkeyed = (message: string) => message.replace(KEYLIKE_RUN, '(not shown)');

/** A message about the file's content from elsewhere (the API's reason for a refusal), shown as ours are. */
export const shownMessage = (message: string) => printable(unkeyed(message));

/** A piece of the file in a message: quoted, printable, short. */
const quoted = (text: string) => `'${printable(text, MAX_QUOTED)}'`;

/**
 * Collects what a parser found: records, each checked as POST /v1/peers
 * checks it (validateCreate at `now`) as it comes, no key twice; and bad
 * lines (bounded).
 */
class Collector {
  readonly records: ImportRecord[] = [];
  readonly errors: LineError[] = [];
  count = 0;
  private readonly lineOf = new Map<string, number>();

  constructor(
    private readonly now: Date,
    private readonly selves: readonly GatewaySelf[],
  ) {}

  /** A record at `line`; `json`: its text when the file spells it as JSON. */
  add(line: number, body: PeerInput, json?: string): void {
    const checked = validateCreate(body, this.now, this.selves);
    if (!checked.ok) return this.bad(line, checked.message);
    const { publicKey } = checked.value;
    const first = this.lineOf.get(publicKey);
    if (first !== undefined) return this.bad(line, `this public key is already given at line ${first}`);
    this.lineOf.set(publicKey, line);
    this.records.push({ line, publicKey, json: json ?? JSON.stringify(body) });
  }

  bad(line: number, message: string): void {
    this.count++;
    if (this.errors.length < MAX_LINE_ERRORS) this.errors.push({ line, message: shownMessage(message) });
  }
}

/** The lines of a file: '\n' or '\r\n' ends a line; a byte order mark at the start is dropped. */
function linesOf(text: string): string[] {
  const lines = (text.startsWith('\ufeff') ? text.slice(1) : text).split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

function tooLong(line: string, n: number, into: Collector): boolean {
  if (line.length <= MAX_LINE_LENGTH) return false;
  into.bad(n, `line is ${line.length} characters long, at most ${MAX_LINE_LENGTH}`);
  return true;
}

/** A key field: wg's spelling, or why not (never the text: it may be a preshared key). */
function keyField(text: string, what: string): { ok: true; key: string } | { ok: false; message: string } {
  const key = normalizeKey(text);
  return key === null ? { ok: false, message: `${what}: not a WireGuard key (${keyProblem(text)})` } : { ok: true, key };
}

/** A comma-separated list of CIDRs, in canonical spelling; `what` names the field. */
function cidrList(text: string, what: string, into: string[]): string | null {
  for (const part of text.split(',')) {
    if (part === '') continue;
    const r = parseCidr(part);
    if (!r.ok) return `${what}: ${r.message}`;
    if (into.includes(r.cidr.text)) return `${what}: ${r.cidr.text} is listed twice for this peer`;
    into.push(r.cidr.text);
  }
  return null;
}

/** A keepalive as wg spells it: seconds, or `off`. 0 (off) is left out of the record: an import never turns it off. */
function keepalive(text: string): number | null {
  if (text.toLowerCase() === 'off') return 0;
  if (!/^[0-9]{1,5}$/.test(text)) return null;
  const n = Number(text);
  return n <= MAX_PERSISTENT_KEEPALIVE ? n : null;
}

const KEEPALIVE_FORM = `whole seconds from 0 to ${MAX_PERSISTENT_KEEPALIVE}, or off`;

// ---------------------------------------------------------------- wg config

interface PeerBlock {
  line: number;
  publicKey?: string;
  presharedKey?: string;
  persistentKeepalive?: number;
  allowedIPs: string[];
  /** A line of it was bad (already reported): the block yields no record and no block-level message. */
  broken: boolean;
  seen: Set<string>;
}

/** The [Peer] keys of wg(8), lowercased: wg compares keys without case. */
const PEER_KEYS = new Set(['publickey', 'presharedkey', 'allowedips', 'endpoint', 'persistentkeepalive']);

function endBlock(block: PeerBlock | null, into: Collector): void {
  if (block === null || block.broken) return;
  if (block.publicKey === undefined) return into.bad(block.line, '[Peer] without PublicKey');
  if (block.allowedIPs.length === 0) return into.bad(block.line, '[Peer] without AllowedIPs; wgjit needs at least one CIDR');
  const body: PeerInput = { publicKey: block.publicKey, allowedIPs: block.allowedIPs };
  if (block.presharedKey !== undefined) body.presharedKey = block.presharedKey;
  if (block.persistentKeepalive) body.persistentKeepalive = block.persistentKeepalive;
  into.add(block.line, body);
}

/**
 * A wg config (wg(8) CONFIGURATION FILE FORMAT, and wg-quick's): as wg's
 * own reader does, a `#` starts a comment, whitespace anywhere is dropped,
 * keys and section names are compared without case. [Interface] sections
 * (with wg-quick's keys) are skipped; in [Peer], Endpoint is ignored (a
 * gateway learns its clients' endpoints) and AllowedIPs lines add up.
 */
function parseWg(lines: string[], into: Collector): void {
  let section: 'interface' | 'peer' | 'other' | null = null;
  let block: PeerBlock | null = null;
  lines.forEach((raw, i) => {
    const n = i + 1;
    if (tooLong(raw, n, into)) {
      if (block) block.broken = true;
      return;
    }
    const hash = raw.indexOf('#');
    const line = (hash < 0 ? raw : raw.slice(0, hash)).replace(/[ \t\n\v\f\r]/g, '');
    if (line === '') return;
    if (line.startsWith('[')) {
      endBlock(block, into);
      block = null;
      const name = line.toLowerCase();
      if (name === '[interface]') section = 'interface';
      else if (name === '[peer]') {
        section = 'peer';
        block = { line: n, allowedIPs: [], broken: false, seen: new Set() };
      } else {
        section = 'other';
        into.bad(n, `unknown section ${quoted(line)}; a wg config has [Interface] and [Peer]`);
      }
      return;
    }
    if (section === null) return into.bad(n, 'a line before any section; a wg config starts with [Interface] or [Peer]');
    if (section !== 'peer' || block === null) return;
    const eq = line.indexOf('=');
    if (eq <= 0) {
      block.broken = true;
      return into.bad(n, 'expected Key = Value');
    }
    const key = line.slice(0, eq).toLowerCase();
    const value = line.slice(eq + 1);
    const fail = (message: string) => {
      block!.broken = true;
      into.bad(n, message);
    };
    if (!PEER_KEYS.has(key)) return fail(`unknown key ${quoted(line.slice(0, eq))} in [Peer] (wg knows PublicKey, PresharedKey, AllowedIPs, Endpoint, PersistentKeepalive)`);
    if (key !== 'allowedips' && key !== 'endpoint') {
      if (block.seen.has(key)) return fail(`${line.slice(0, eq)} given twice in this [Peer]`);
      block.seen.add(key);
    }
    switch (key) {
      case 'publickey': {
        const k = keyField(value, 'PublicKey');
        if (!k.ok) return fail(k.message);
        block.publicKey = k.key;
        return;
      }
      case 'presharedkey': {
        const k = keyField(value, 'PresharedKey');
        if (!k.ok) return fail(k.message);
        block.presharedKey = k.key;
        return;
      }
      case 'allowedips': {
        const problem = cidrList(value, 'AllowedIPs', block.allowedIPs);
        if (problem !== null) return fail(problem);
        return;
      }
      case 'persistentkeepalive': {
        const ka = keepalive(value);
        if (ka === null) return fail(`PersistentKeepalive: must be ${KEEPALIVE_FORM}`);
        block.persistentKeepalive = ka;
        return;
      }
      default:
        return; // Endpoint
    }
  });
  endBlock(block, into);
}

// ------------------------------------------------------------------- dump

/** Fields of `wg show IF dump`: the interface line, then one line per peer. `wg show all dump` puts the interface name first. */
const DUMP_INTERFACE_FIELDS = 4;
const DUMP_PEER_FIELDS = 8;

/**
 * `wg show IF dump`: tab-separated; the first line is the interface's
 * (private key, public key, port, fwmark: skipped, never echoed), then per
 * peer public key, preshared key or (none), endpoint, allowed ips or
 * (none), latest handshake, rx, tx, persistent keepalive or off.
 */
function parseDump(lines: string[], into: Collector): void {
  let first = true;
  lines.forEach((raw, i) => {
    const n = i + 1;
    if (raw.trim() === '') return;
    if (tooLong(raw, n, into)) return;
    const fields = raw.split('\t');
    const wasFirst = first;
    first = false;
    if (wasFirst && fields.length === DUMP_INTERFACE_FIELDS) return;
    if (fields.length === DUMP_PEER_FIELDS + 1 || fields.length === DUMP_INTERFACE_FIELDS + 1) {
      return into.bad(n, `${fields.length} fields: this looks like \`wg show all dump\` (the interface name first); import one interface's \`wg show IF dump\``);
    }
    if (fields.length !== DUMP_PEER_FIELDS) {
      return into.bad(n, `${fields.length} tab-separated fields; a peer line of \`wg show IF dump\` has ${DUMP_PEER_FIELDS} (the interface line, first, has ${DUMP_INTERFACE_FIELDS})`);
    }
    const [pub, psk, , ips, handshake, rx, tx, ka] = fields as [string, string, string, string, string, string, string, string];
    const publicKey = keyField(pub, 'public key (field 1)');
    if (!publicKey.ok) return into.bad(n, publicKey.message);
    const body: PeerInput = { publicKey: publicKey.key, allowedIPs: [] };
    if (psk !== '(none)') {
      const k = keyField(psk, 'preshared key (field 2)');
      if (!k.ok) return into.bad(n, k.message);
      body.presharedKey = k.key;
    }
    if (ips === '(none)') return into.bad(n, 'no allowed IPs ((none)); wgjit needs at least one CIDR');
    const problem = cidrList(ips, 'allowed ips (field 4)', body.allowedIPs);
    if (problem !== null) return into.bad(n, problem);
    const counter = [handshake, rx, tx].findIndex((f) => !/^[0-9]{1,20}$/.test(f));
    if (counter >= 0) return into.bad(n, `field ${counter + 5} (${['latest handshake', 'received bytes', 'sent bytes'][counter]}) is not a number`);
    const seconds = keepalive(ka);
    if (seconds === null) return into.bad(n, `persistent keepalive (field 8): must be ${KEEPALIVE_FORM}`);
    if (seconds > 0) body.persistentKeepalive = seconds;
    into.add(n, body);
  });
}

// ------------------------------------------------------------- JSON lines

/** Where JSON.parse stopped, from its message; its message itself quotes the text, which may hold a secret. */
function jsonProblem(err: unknown): string {
  const at = /at position (\d+)/.exec(err instanceof Error ? err.message : '');
  return at ? `not valid JSON (at character ${Number(at[1]) + 1})` : 'not valid JSON';
}

/** One JSON object a line, the fields of POST /v1/peers; blank lines are skipped. */
function parseJsonLines(lines: string[], into: Collector): void {
  lines.forEach((raw, i) => {
    const n = i + 1;
    if (raw.trim() === '') return;
    if (tooLong(raw, n, into)) return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      return into.bad(n, jsonProblem(err));
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return into.bad(n, 'not a JSON object; one record a line, like {"publicKey": "…", "allowedIPs": ["10.8.0.2/32"]}');
    }
    into.add(n, value as PeerInput, raw);
  });
}

// --------------------------------------------------------------- the file

/**
 * The format of a file, from its first line with content (comment lines, as
 * a wg config may start with, skipped); null when it fits none.
 */
export function sniffFormat(text: string): ImportFormat | null {
  const head = linesOf(text.slice(0, SNIFF_BYTES));
  const raw = head.find((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  if (raw === undefined) return null;
  const line = raw.trim();
  if (line.startsWith('{')) return 'jsonl';
  if (/^\[\s*(interface|peer)\s*\]/i.test(line)) return 'wg';
  const fields = raw.split('\t').length;
  return [DUMP_INTERFACE_FIELDS, DUMP_PEER_FIELDS, DUMP_INTERFACE_FIELDS + 1, DUMP_PEER_FIELDS + 1].includes(fields) ? 'dump' : null;
}

const PARSERS: Record<ImportFormat, (lines: string[], into: Collector) => void> = { wg: parseWg, dump: parseDump, jsonl: parseJsonLines };

/**
 * Every record of `text` with its line, each checked as POST /v1/peers
 * checks it (validateCreate at `now`, against the fleet's gateways
 * `selves` when given), no key twice; or every bad line.
 */
export function parsePeerFile(text: string, format: ImportFormat | 'auto', now: Date = new Date(), selves: readonly GatewaySelf[] = []): ParsedFile {
  if (text.trim() === '' || text === '\ufeff') return { ok: false, format: format === 'auto' ? null : format, errors: [{ line: 0, message: 'no peer records (the file is empty)' }], count: 1 };
  const chosen = format === 'auto' ? sniffFormat(text) : format;
  if (chosen === null) {
    const message = 'cannot tell the format from the first line with content (not [Interface] or [Peer], a JSON object, or a tab-separated `wg show IF dump` line); give --format wg, dump or jsonl';
    return { ok: false, format: null, errors: [{ line: 0, message }], count: 1 };
  }
  const into = new Collector(now, selves);
  PARSERS[chosen](linesOf(text), into);
  if (into.count > 0) {
    const errors = [...into.errors].sort((a, b) => a.line - b.line);
    return { ok: false, format: chosen, errors, count: into.count };
  }
  if (into.records.length === 0) return { ok: false, format: chosen, errors: [{ line: 0, message: `no peer records (read as ${chosen})` }], count: 1 };
  return { ok: true, format: chosen, records: into.records };
}
