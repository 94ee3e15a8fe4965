/** `wgjit peer add|set|rm|ls|show|import|reset-replay`: the peer store, through the REST API. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Static } from 'typebox';
import type { PeerCreateBody, PeerDetail, PeerList, PeerPatchBody, PeerView, ReplayReset } from '../../api/schemas.js';
import { MAX_PERSISTENT_KEEPALIVE, nameProblem } from '../../authorize/peer.js';
import { KEY_FORM, keyProblem, normalizeKey } from '../../handshake/keys.js';
import { ApiClientError, keyPath } from '../client.js';
import { client, CLIENT_OPTIONS, EXIT, parse, print, UsageError } from '../command.js';
import { ago, every, table } from '../format.js';
import { help } from '../help.js';
import { fileProblem } from '../settings.js';
import { expiryOf, inFlagTerms } from '../peer-flags.js';
import { nearest } from '../suggest.js';

type Peer = Static<typeof PeerView>;

function requireKey(text: string | undefined): string {
  if (text === undefined) throw new UsageError(`missing PUBKEY (${KEY_FORM}, as \`wg pubkey\` prints)`);
  const key = normalizeKey(text);
  if (key === null) throw new UsageError(`"${text}" is not a WireGuard public key (${keyProblem(text)}); expected ${KEY_FORM}, as \`wg pubkey\` prints`);
  return key;
}

const STRING = { type: 'string' } as const;
const FLAG = { type: 'boolean' } as const;

/** Each subcommand's own options, beside CLIENT_OPTIONS. */
const OPTIONS = {
  add: { 'allowed-ips': STRING, 'preshared-key-file': STRING, keepalive: STRING, 'expires-at': STRING, disabled: FLAG, name: STRING },
  set: {
    'allowed-ips': STRING,
    'preshared-key-file': STRING,
    'no-preshared-key': FLAG,
    keepalive: STRING,
    'expires-at': STRING,
    'no-expiry': FLAG,
    disable: FLAG,
    enable: FLAG,
    name: STRING,
  },
  rm: {},
  ls: {},
  show: {},
  import: { format: STRING, 'dry-run': FLAG },
  'reset-replay': {},
} as const;
type Sub = keyof typeof OPTIONS;
const PEER_COMMANDS = Object.keys(OPTIONS) as Sub[];
const isSub = (s: string | undefined): s is Sub => s !== undefined && Object.hasOwn(OPTIONS, s);

/** `set`'s pairs that contradict each other. */
const EXCLUSIVE: Array<[string, string]> = [
  ['preshared-key-file', 'no-preshared-key'],
  ['expires-at', 'no-expiry'],
  ['disable', 'enable'],
];

/** For `peer ls --allowed-ips`: the subcommands that have the flag, when `sub` does not. */
function ownersOf(sub: Sub): (flag: string) => string | null {
  return (flag) => {
    const owners = PEER_COMMANDS.filter((s) => s !== sub && Object.hasOwn(OPTIONS[s], flag));
    if (owners.length === 0) return null;
    return `--${flag} is an option of ${owners.map((o) => `'peer ${o}'`).join(' and ')}, not 'peer ${sub}'; see wgjit peer ${sub} --help`;
  };
}

/** The words that are not options or options' values; the first is the subcommand. */
function wordsOf(argv: string[]): string[] {
  const options = Object.fromEntries(PEER_COMMANDS.flatMap((s) => Object.entries(OPTIONS[s])).concat(Object.entries(CLIENT_OPTIONS)));
  return parseArgs({ args: argv, options, allowPositionals: true, strict: false }).positionals;
}

export async function cmdPeer(argv: string[]): Promise<number> {
  const [sub, ...words] = wordsOf(argv);
  if (sub === 'help') {
    // `wgjit peer help [SUBCOMMAND]`, as `wgjit peer [SUBCOMMAND] --help`.
    if (words.length === 0) return help('peer');
    if (words.length === 1 && isSub(words[0])) return help(`peer ${words[0]}`);
    throw new UsageError(`no help for "peer ${words.join(' ')}" (${PEER_COMMANDS.join(', ')}; see wgjit peer --help)`);
  }
  if (!isSub(sub)) {
    const { values } = parse(argv, CLIENT_OPTIONS, 'peer');
    if (values.help) return help('peer');
    if (sub === undefined) return help('peer', EXIT.usage);
    const near = nearest(sub, PEER_COMMANDS);
    throw new UsageError(`unknown peer command "${sub}"${near === null ? '' : ` (did you mean ${near}?)`}; the peer commands: ${PEER_COMMANDS.join(', ')}; see wgjit peer --help`);
  }
  const { values, positionals } = parse(argv, { ...CLIENT_OPTIONS, ...OPTIONS[sub] }, `peer ${sub}`, ownersOf(sub));
  if (values.help) return help(`peer ${sub}`);
  const [, arg, extra] = positionals;
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
  const v = values as Record<string, string | boolean | undefined>;
  const json = v['json'] === true;
  switch (sub) {
    case 'import': {
      if (arg === undefined) throw new UsageError('peer import needs FILE, or - for stdin (a wg config, `wg show IF dump` output or JSON lines)');
      // Loaded here: it takes the batch limits from the API's schemas, whose TypeBox provider costs the other commands most of a second.
      const { cmdPeerImport, importFormat } = await import('./peer-import.js');
      return cmdPeerImport({ source: arg, format: importFormat(v['format'] as string | undefined), dryRun: v['dry-run'] === true, json }, () => client(values));
    }
    case 'add': {
      const publicKey = requireKey(arg);
      if (v['allowed-ips'] === undefined) throw new UsageError('peer add needs --allowed-ips CIDR[,CIDR], e.g. 10.8.0.2/32');
      const body: Static<typeof PeerCreateBody> = { publicKey, allowedIPs: cidrsOf(v['allowed-ips'] as string) };
      if (v['preshared-key-file'] !== undefined) body.presharedKey = readPresharedKey(v['preshared-key-file'] as string);
      if (v['keepalive'] !== undefined) body.persistentKeepalive = keepaliveOf(v['keepalive'] as string);
      if (v['expires-at'] !== undefined) body.expiresAt = expiresAtOf(v['expires-at'] as string);
      if (v['disabled'] === true) body.disabled = true;
      if (v['name'] !== undefined) body.name = nameOf(v['name'] as string, 'add')!;
      const created = await inFlagErrors(() => client(values).request<Peer>('POST', '/v1/peers', body));
      print(json, created, () => `added ${created.publicKey}${created.name === undefined ? '' : ` "${created.name}"`} (${created.allowedIPs.join(', ')})`);
      return EXIT.ok;
    }
    case 'set': {
      const publicKey = requireKey(arg);
      const body = patchOf(v);
      const updated = await inFlagErrors(() => client(values).request<Peer>('PATCH', `/v1/peers/${keyPath(publicKey)}`, body));
      print(json, updated, () => showText(updated, false));
      return EXIT.ok;
    }
    case 'rm': {
      const publicKey = requireKey(arg);
      await client(values).request('DELETE', `/v1/peers/${keyPath(publicKey)}`);
      print(json, { removed: publicKey }, () => `removed ${publicKey}`);
      return EXIT.ok;
    }
    case 'reset-replay': {
      const publicKey = requireKey(arg);
      const r = await client(values).request<Static<typeof ReplayReset>>('POST', `/v1/peers/${keyPath(publicKey)}/reset-replay`);
      print(json, r, () => `forgot the greatest timestamp of ${publicKey} on every gateway${r.storeHadTimestamp ? '' : ' (the store kept none)'}: its next initiation is admitted`);
      return EXIT.ok;
    }
    case 'show': {
      const publicKey = requireKey(arg);
      const p = await client(values).request<Static<typeof PeerDetail>>('GET', `/v1/peers/${keyPath(publicKey)}`);
      print(json, p, () => showText(p, true));
      return EXIT.ok;
    }
    case 'ls': {
      if (arg !== undefined) throw new UsageError(`unexpected argument "${arg}"`);
      const items = await client(values).all<Static<typeof PeerList>>('/v1/peers');
      const now = Date.now();
      print(json, items, () =>
        table(
          ['PUBLIC KEY', 'NAME', 'ALLOWED IPS', 'KEEPALIVE', 'EXPIRES', 'STATE'],
          items.map((p) => [p.publicKey, p.name ?? '-', p.allowedIPs.join(','), p.persistentKeepalive ? `${p.persistentKeepalive}s` : '-', p.expiresAt ?? '-', stateOf(p, now)]),
        ),
      );
      return EXIT.ok;
    }
  }
}

/** disabled, expired (its expiresAt has come: gateways refuse it) or enabled. */
export function stateOf(p: Pick<Peer, 'disabled' | 'expiresAt'>, now = Date.now()): 'disabled' | 'expired' | 'enabled' {
  if (p.disabled) return 'disabled';
  if (p.expiresAt !== undefined && Date.parse(p.expiresAt) <= now) return 'expired';
  return 'enabled';
}

/** `peer show`'s text, which `peer set` prints too (without `held by`: a PATCH does not answer it). */
function showText(p: Peer & { holder?: Static<typeof PeerDetail>['holder'] }, heldBy: boolean): string {
  const lines = [
    `peer: ${p.publicKey}`,
    `  name: ${p.name ?? '(none)'}`,
    `  allowed ips: ${p.allowedIPs.join(', ')}`,
    `  preshared key: ${p.hasPresharedKey ? '(hidden)' : '(none)'}`,
    `  persistent keepalive: ${p.persistentKeepalive ? every(p.persistentKeepalive) : 'off'}`,
    `  expires: ${p.expiresAt ?? 'never'}`,
    `  state: ${stateOf(p)}`,
  ];
  // An API of an earlier release answers GET without it.
  if (heldBy) lines.push(`  held by: ${p.holder ? `${p.holder.gateway} (taken ${ago(p.holder.since)})` : p.holder === null ? '(no gateway)' : '(not known)'}`);
  return lines.join('\n');
}

function cidrsOf(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter(Boolean);
}

function readPresharedKey(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new UsageError(`cannot read --preshared-key-file ${file}: ${fileProblem(err)}`);
  }
}

/** --keepalive, checked here with the API's words (peer.ts checkKeepalive). */
function keepaliveOf(text: string): number {
  const n = /^\d{1,6}$/.test(text) ? Number(text) : NaN;
  if (!(n <= MAX_PERSISTENT_KEEPALIVE)) throw new UsageError(`--keepalive: must be a whole number of seconds from 0 (off) to ${MAX_PERSISTENT_KEEPALIVE}, got "${text}"`);
  return n;
}

/** --expires-at as sent (a date alone: midnight UTC), with a warning when that time has already come. */
function expiresAtOf(text: string): string {
  const { value, past } = expiryOf(text, new Date());
  if (past) process.stderr.write(`wgjit: warning: --expires-at ${text} is in the past: the peer is refused from now on\n`);
  return value;
}

/** --name, checked here with the API's words; `set` takes '' as "remove the name". */
function nameOf(text: string, sub: 'add' | 'set'): string | null {
  if (text === '' && sub === 'set') return null;
  const problem = nameProblem(text);
  if (problem !== null) throw new UsageError(`--name: ${problem.replace(' (null removes the name)', sub === 'set' ? '' : '; leave --name out for none')}`);
  return text;
}

/** `peer set`'s flags → the PATCH body; null clears. */
function patchOf(v: Record<string, string | boolean | undefined>): Static<typeof PeerPatchBody> {
  for (const [a, b] of EXCLUSIVE) {
    if (v[a] !== undefined && v[b] !== undefined) throw new UsageError(`--${a} and --${b} contradict each other: give one of them`);
  }
  const body: Static<typeof PeerPatchBody> = {};
  if (v['allowed-ips'] !== undefined) body.allowedIPs = cidrsOf(v['allowed-ips'] as string);
  if (v['preshared-key-file'] !== undefined) body.presharedKey = readPresharedKey(v['preshared-key-file'] as string);
  if (v['no-preshared-key'] === true) body.presharedKey = null;
  if (v['keepalive'] !== undefined) body.persistentKeepalive = keepaliveOf(v['keepalive'] as string);
  if (v['expires-at'] !== undefined) body.expiresAt = expiresAtOf(v['expires-at'] as string);
  if (v['no-expiry'] === true) body.expiresAt = null;
  if (v['disable'] === true) body.disabled = true;
  if (v['enable'] === true) body.disabled = false;
  if (v['name'] !== undefined) body.name = nameOf(v['name'] as string, 'set');
  if (Object.keys(body).length === 0) {
    throw new UsageError('peer set needs a change: --allowed-ips, --preshared-key-file, --no-preshared-key, --keepalive, --expires-at, --no-expiry, --disable, --enable or --name; see wgjit peer set --help');
  }
  return body;
}

/** A 400 of the API names the record's field; the operator typed a flag. */
async function inFlagErrors<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof ApiClientError && err.status === 400) throw new ApiClientError(err.status, err.code, inFlagTerms(err.message));
    throw err;
  }
}
