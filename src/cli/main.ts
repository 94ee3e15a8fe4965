/**
 * The `wgjit` command. Wiring only: parse, validate, call, print.
 * Exit codes: 0 success, 1 the operation failed, 2 usage or configuration
 * error, 3 no such peer, 4 the peer already exists.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, SETTINGS, envName, resolveSettings, resolveToken, type SettingName } from './settings.js';
import { KEY_FORM, keyProblem, normalizeKey } from '../handshake/keys.js';
import { NoBackendError } from '../install/select.js';
import { createLogger } from '../telemetry/log.js';
import { ApiClient, ApiError, DEFAULT_API, keyPath } from './client.js';
import { ago, bytes, every, table } from './format.js';

export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3, conflict: 4 } as const;

class UsageError extends Error {}

const RUN_SETTINGS = [
  'interface', 'captureDev', 'redis', 'apiListen', 'apiTokenFile', 'apiToken', 'backend', 'xdpMode', 'idleTimeout', 'reconcileInterval', 'sourceRate', 'sourceBurst', 'dhBudget', 'replay', 'uapiDir', 'logLevel', 'config',
] as const satisfies readonly SettingName[];
const API_SETTINGS = ['redis', 'apiListen', 'apiTokenFile', 'apiToken', 'logLevel', 'config'] as const satisfies readonly SettingName[];

/** The options `peer` and `status` share: where the API is and how to authenticate. */
const CLIENT_HELP = `Options:
  --api URL              the wgjit REST API (default ${DEFAULT_API})
                         env WGJIT_API
  --api-token-file FILE  file holding the API bearer token
                         env WGJIT_API_TOKEN_FILE, or the token itself in
                         WGJIT_API_TOKEN
  --json                 print JSON for scripts instead of text
  -h, --help             this help`;

const EXIT_HELP = `Exit codes: 0 success, 1 failure (API unreachable, server error, no gateway),
2 usage or configuration error (also a 400 or 401 from the API),
3 no such peer, 4 the peer already exists.`;

const HELP: Record<string, string> = {
  main: `wgjit — on-demand WireGuard peer gateway

Usage:
  wgjit run    --interface WG_IF --capture-dev DEV[,DEV] --redis URL [options]
  wgjit api    --redis URL [--api-listen HOST:PORT] [--api-token-file FILE]
  wgjit peer   add PUBKEY --allowed-ips CIDR[,CIDR] [options]
  wgjit peer   rm PUBKEY | ls [--json] | show PUBKEY [--json]
  wgjit status [--json]
  wgjit demo

Run 'wgjit COMMAND --help' (and 'wgjit peer SUBCOMMAND --help') for the
options of a command. 'peer' and 'status' talk to the REST API at --api URL
or WGJIT_API (default ${DEFAULT_API}); the token comes from
--api-token-file FILE, WGJIT_API_TOKEN_FILE or WGJIT_API_TOKEN.

${EXIT_HELP}`,
  peer: `Usage:
  wgjit peer add PUBKEY --allowed-ips CIDR[,CIDR] [--preshared-key-file F]
                 [--keepalive N] [--expires-at ISO8601] [--disabled]
  wgjit peer rm PUBKEY
  wgjit peer ls [--json]
  wgjit peer show PUBKEY [--json]

Manages the peer store through the REST API; gateways install a stored peer
when its first handshake arrives. 'wgjit peer SUBCOMMAND --help' for more.

${CLIENT_HELP}

${EXIT_HELP}`,
  'peer add': `Usage: wgjit peer add PUBKEY --allowed-ips CIDR[,CIDR] [--preshared-key-file F]
                 [--keepalive N] [--expires-at ISO8601] [--disabled] [options]

Stores a peer (POST /v1/peers). PUBKEY is the client's public key as
'wg pubkey' prints it.

  --allowed-ips CIDR[,CIDR]  addresses routed to the peer (required),
                             e.g. 10.8.0.2/32,fd00::2/128
  --preshared-key-file FILE  file holding a preshared key ('wg genpsk');
                             stored, never shown again
  --keepalive N              persistent keepalive in seconds, 0..65535 (0: off)
  --expires-at ISO8601       refuse the peer from then on,
                             e.g. 2030-01-01T00:00:00Z
  --disabled                 store it, but refuse it until enabled

${CLIENT_HELP}

Exit code 4 when the peer already exists, 2 for bad input.`,
  'peer rm': `Usage: wgjit peer rm PUBKEY [options]

Removes a peer from the store (DELETE /v1/peers/PUBKEY); every gateway that
holds it removes it from its device.

${CLIENT_HELP}

Exit code 3 when there is no such peer.`,
  'peer ls': `Usage: wgjit peer ls [options]

Lists every stored peer (GET /v1/peers, all pages): public key, allowed IPs,
keepalive, expiry, enabled or disabled. --json prints an array of records.

${CLIENT_HELP}`,
  'peer show': `Usage: wgjit peer show PUBKEY [options]

Shows one stored peer (GET /v1/peers/PUBKEY). The preshared key is never
shown, only whether there is one.

${CLIENT_HELP}

Exit code 3 when there is no such peer.`,
  status: `Usage: wgjit status [options]

This gateway as 'wg show' prints a device: the interface (public key,
listening port, backend), then each installed peer (endpoint, allowed ips,
latest handshake, transfer, and wgjit's state: provisional until a
handshake completes, then confirmed), then wgjit's counters. Needs the API
of a gateway ('wgjit run'); a control plane ('wgjit api') has no gateway.
--json prints {gateway, peers, stats}.

${CLIENT_HELP}

${EXIT_HELP}`,
  demo: `Usage: wgjit demo

Builds a throw-away testbed in network namespaces — a gateway running
WireGuard with no peers, a private redis-server, the wgjit daemon, and three
WireGuard clients (two registered, one not) — connects each client, prints
whether it got through and how long its first handshake took, then removes
everything (also on Ctrl-C). Needs root.`,
};

const HELP_WIDTH = 80;

/** A setting's default as an operator would type it: 127.0.0.1:9180, on, auto. */
function showDefault(value: unknown): string {
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  if (typeof value === 'object' && value !== null && 'host' in value && 'port' in value) {
    const { host, port } = value as { host: string; port: number };
    return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  }
  return String(value);
}

/** Words of `text` in lines of at most `width` characters (a longer word gets a line of its own). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/** One entry per setting: the flag, then what it does and its default, then its variable and form, in one aligned column. */
function settingsHelp(names: readonly SettingName[]): string {
  const flagWidth = Math.max(...names.map((n) => SETTINGS[n].flag.length)) + 2;
  const indent = 2 + flagWidth + 2;
  return names
    .map((n) => {
      const s: { flag: string; help: string; form: string; default?: unknown; required?: boolean } = SETTINGS[n];
      const tail = s.required ? ' (required)' : 'default' in s ? ` (default ${showDefault(s.default)})` : '';
      const lines = [...wrap(`${s.help}${tail}`, HELP_WIDTH - indent), ...wrap(`env ${envName(s.flag)}; ${s.form}`, HELP_WIDTH - indent)];
      return lines.map((l, i) => (i === 0 ? `  ${`--${s.flag}`.padEnd(flagWidth)}  ` : ' '.repeat(indent)) + l).join('\n');
    })
    .join('\n');
}
HELP['run'] = `Usage: wgjit run --interface WG_IF --capture-dev DEV[,DEV] --redis URL [options]

Runs the gateway daemon: captures handshake initiations with XDP on the
capture devices, verifies them, installs authorized peers into WG_IF and
replays the initiation. Flags win over WGJIT_* variables, which win over
the --config file (JSON, keys are flag names).

${settingsHelp(RUN_SETTINGS)}`;
HELP['api'] = `Usage: wgjit api --redis URL [--api-listen HOST:PORT] [--api-token-file FILE]

Serves the store routes of the REST API only (a central control plane, no
data plane).

${settingsHelp(API_SETTINGS)}`;

type Options = NonNullable<ParseArgsConfig['options']>;

function parse<O extends Options>(args: string[], options: O) {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } } as O & { help: { type: 'boolean'; short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify a positional.*$/s, ''));
  }
}

function settingOptions(names: readonly SettingName[]): Record<string, { type: 'string' }> {
  return Object.fromEntries(names.map((n) => [SETTINGS[n].flag, { type: 'string' as const }]));
}

async function cmdRun(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, settingOptions(RUN_SETTINGS));
  if (values.help) return help('run');
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const s = resolveSettings(RUN_SETTINGS, values as Record<string, string>);
  const token = resolveToken(s);
  if (token === undefined) throw new ConfigError(`no API token: set --api-token-file FILE or ${envName('api-token')}`);
  // The daemon's options carry the settings' names; the token and the logger are resolved here.
  const { apiTokenFile, apiToken, logLevel, config, ...daemon } = s;
  const log = createLogger(logLevel);
  const { startGateway } = await import('../daemon/gateway.js');
  const gw = await startGateway({ ...daemon, token, log });
  return waitForSignal(log, () => gw.stop());
}

async function cmdApi(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, settingOptions(API_SETTINGS));
  if (values.help) return help('api');
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const s = resolveSettings(API_SETTINGS, values as Record<string, string>);
  const token = resolveToken(s);
  if (token === undefined) throw new ConfigError(`no API token: set --api-token-file FILE or ${envName('api-token')}`);
  const log = createLogger(s.logLevel);
  const { PeerStore } = await import('../authorize/store.js');
  const { buildApp } = await import('../api/app.js');
  const { createMetrics } = await import('../telemetry/metrics.js');
  const store = PeerStore.connect(s.redis);
  // Process metrics (CPU, memory, event loop; process_*, nodejs_*); the data-plane series stay empty here.
  const { registry } = createMetrics({ processMetrics: true });
  const app = await buildApp({ store, token, logger: log.child({ component: 'api' }), registry });
  await app.listen({ host: s.apiListen.host, port: s.apiListen.port });
  // The bound address: with port 0 the system picked one.
  const bound = app.server.address() as AddressInfo;
  log.info({ listen: bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}` }, 'API listening (store routes only)');
  return waitForSignal(log, async () => {
    await app.close();
    await store.close();
  });
}

function waitForSignal(log: ReturnType<typeof createLogger>, stop: () => Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => {
      log.info({ signal: sig }, 'stopping');
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      stop().then(
        () => resolve(EXIT.ok),
        (err) => {
          log.error({ err: (err as Error).message }, 'shutdown failed');
          resolve(EXIT.failed);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

const CLIENT_OPTIONS = { api: { type: 'string' }, 'api-token-file': { type: 'string' }, json: { type: 'boolean' } } as const;

/**
 * The API client from --api / WGJIT_API and the token from --api-token-file,
 * WGJIT_API_TOKEN_FILE or WGJIT_API_TOKEN (a file named on the command line
 * wins, then the environment's file, then the environment's token).
 */
function client(values: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): ApiClient {
  const base = (values['api'] as string | undefined) ?? env[envName('api')] ?? DEFAULT_API;
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new UsageError(`--api ${JSON.stringify(base)} is not a URL (expected e.g. ${DEFAULT_API})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--api ${JSON.stringify(base)} must be an http:// or https:// URL, e.g. ${DEFAULT_API}`);
  const token = resolveToken({
    apiTokenFile: (values['api-token-file'] as string | undefined) ?? (env[envName('api-token-file')] || undefined),
    apiToken: env[envName('api-token')] || undefined,
  });
  if (token === undefined) {
    throw new UsageError(`no API token: set --api-token-file FILE, ${envName('api-token-file')} or ${envName('api-token')} (the token the API was started with)`);
  }
  return new ApiClient(base, token);
}

interface PeerView {
  publicKey: string;
  allowedIPs: string[];
  persistentKeepalive?: number;
  expiresAt?: string;
  disabled: boolean;
  hasPresharedKey?: boolean;
  createdAt?: string;
  updatedAt?: string;
}

function requireKey(text: string | undefined): string {
  if (text === undefined) throw new UsageError(`missing PUBKEY (${KEY_FORM}, as \`wg pubkey\` prints)`);
  const key = normalizeKey(text);
  if (key === null) throw new UsageError(`"${text}" is not a WireGuard public key (${keyProblem(text)}); expected ${KEY_FORM}, as \`wg pubkey\` prints`);
  return key;
}

/** Every item of a paged list route, following nextCursor. */
async function allPages<T>(api: ApiClient, path: string): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  do {
    const q: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
    const page: { items: T[]; nextCursor: string | null } = await api.request('GET', `${path}?limit=1000${q}`);
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor !== null);
  return items;
}

const PEER_COMMANDS = ['add', 'rm', 'ls', 'show'];

async function cmdPeer(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    ...CLIENT_OPTIONS,
    'allowed-ips': { type: 'string' },
    'preshared-key-file': { type: 'string' },
    keepalive: { type: 'string' },
    'expires-at': { type: 'string' },
    disabled: { type: 'boolean' },
  });
  const [sub, arg, extra] = positionals;
  if (values.help) return help(sub !== undefined && PEER_COMMANDS.includes(sub) ? `peer ${sub}` : 'peer');
  if (sub === undefined) return help('peer', EXIT.usage);
  if (!PEER_COMMANDS.includes(sub)) throw new UsageError(`unknown peer command "${sub}" (add, rm, ls, show; see wgjit peer --help)`);
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
  if (sub !== 'add') {
    const stray = ['allowed-ips', 'preshared-key-file', 'keepalive', 'expires-at', 'disabled'].find((o) => values[o as keyof typeof values] !== undefined);
    if (stray !== undefined) throw new UsageError(`--${stray} is an option of 'peer add', not 'peer ${sub}'`);
  }
  switch (sub) {
    case 'add': {
      const publicKey = requireKey(arg);
      if (values['allowed-ips'] === undefined) throw new UsageError('peer add needs --allowed-ips CIDR[,CIDR], e.g. 10.8.0.2/32');
      const body: Record<string, unknown> = {
        publicKey,
        allowedIPs: values['allowed-ips'].split(',').map((s) => s.trim()).filter(Boolean),
      };
      if (values['preshared-key-file'] !== undefined) {
        try {
          body['presharedKey'] = readFileSync(values['preshared-key-file'], 'utf8').trim();
        } catch (err) {
          throw new UsageError(`cannot read --preshared-key-file ${values['preshared-key-file']}: ${(err as NodeJS.ErrnoException).code}`);
        }
      }
      if (values.keepalive !== undefined) {
        if (!/^\d+$/.test(values.keepalive)) throw new UsageError(`--keepalive "${values.keepalive}" must be whole seconds, 0..65535`);
        body['persistentKeepalive'] = Number(values.keepalive);
      }
      if (values['expires-at'] !== undefined) body['expiresAt'] = values['expires-at'];
      if (values.disabled) body['disabled'] = true;
      const created = await client(values).request<PeerView>('POST', '/v1/peers', body);
      print(values.json, created, () => `added ${created.publicKey} (${created.allowedIPs.join(', ')})`);
      return EXIT.ok;
    }
    case 'rm': {
      const publicKey = requireKey(arg);
      await client(values).request('DELETE', `/v1/peers/${keyPath(publicKey)}`);
      print(values.json, { removed: publicKey }, () => `removed ${publicKey}`);
      return EXIT.ok;
    }
    case 'show': {
      const publicKey = requireKey(arg);
      const p = await client(values).request<PeerView>('GET', `/v1/peers/${keyPath(publicKey)}`);
      print(values.json, p, () =>
        [
          `peer: ${p.publicKey}`,
          `  allowed ips: ${p.allowedIPs.join(', ')}`,
          `  preshared key: ${p.hasPresharedKey ? '(hidden)' : '(none)'}`,
          `  persistent keepalive: ${p.persistentKeepalive ? every(p.persistentKeepalive) : 'off'}`,
          `  expires: ${p.expiresAt ?? 'never'}`,
          `  disabled: ${p.disabled ? 'yes' : 'no'}`,
        ].join('\n'),
      );
      return EXIT.ok;
    }
    default: {
      if (arg !== undefined) throw new UsageError(`unexpected argument "${arg}"`);
      const items = await allPages<PeerView>(client(values), '/v1/peers');
      print(values.json, items, () =>
        table(
          ['PUBLIC KEY', 'ALLOWED IPS', 'KEEPALIVE', 'EXPIRES', 'STATE'],
          items.map((p) => [p.publicKey, p.allowedIPs.join(','), p.persistentKeepalive ? `${p.persistentKeepalive}s` : '-', p.expiresAt ?? '-', p.disabled ? 'disabled' : 'enabled']),
        ),
      );
      return EXIT.ok;
    }
  }
}

interface GatewayInfo {
  interface: string;
  publicKey: string;
  listenPort: number;
  backend: string;
  installedPeers: number;
}

interface GatewayPeer {
  publicKey: string;
  endpoint: string | null;
  allowedIPs: string[];
  state: string;
  installedAt: string;
  lastHandshakeAt: string | null;
  rxBytes: number;
  txBytes: number;
}

/** wg's order: the latest handshake first, peers without one last. */
function byLatestHandshake(a: GatewayPeer, b: GatewayPeer): number {
  const ta = a.lastHandshakeAt === null ? -Infinity : Date.parse(a.lastHandshakeAt);
  const tb = b.lastHandshakeAt === null ? -Infinity : Date.parse(b.lastHandshakeAt);
  return ta === tb ? 0 : ta < tb ? 1 : -1;
}

/** The device and its peers as `wg show` prints them, each peer with wgjit's state; then the counters. */
export function statusText(gateway: GatewayInfo, peers: GatewayPeer[], stats: Record<string, number>, now = Date.now()): string {
  const blocks = [
    [`interface: ${gateway.interface}`, `  public key: ${gateway.publicKey}`, `  listening port: ${gateway.listenPort}`, `  backend: ${gateway.backend}`].join('\n'),
    ...[...peers].sort(byLatestHandshake).map((p) =>
      [
        `peer: ${p.publicKey}`,
        ...(p.endpoint === null ? [] : [`  endpoint: ${p.endpoint}`]),
        `  allowed ips: ${p.allowedIPs.length > 0 ? p.allowedIPs.join(', ') : '(none)'}`,
        ...(p.lastHandshakeAt === null ? [] : [`  latest handshake: ${ago(p.lastHandshakeAt, now)}`]),
        ...(p.rxBytes === 0 && p.txBytes === 0 ? [] : [`  transfer: ${bytes(p.rxBytes)} received, ${bytes(p.txBytes)} sent`]),
        `  wgjit state: ${p.state}, installed ${ago(p.installedAt, now)}`,
      ].join('\n'),
    ),
    table(['COUNTER', 'VALUE'], Object.entries(stats).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, String(v)])),
  ];
  return blocks.join('\n\n');
}

async function cmdStatus(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, CLIENT_OPTIONS);
  if (values.help) return help('status');
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const api = client(values);
  let gateway: GatewayInfo;
  try {
    gateway = await api.request<GatewayInfo>('GET', '/v1/gateway');
  } catch (err) {
    if (err instanceof ApiError && err.code === 'no_gateway') {
      throw new Error(`the API at ${api.base} has no gateway (it is a control plane, \`wgjit api\`); point --api or WGJIT_API at the API of a \`wgjit run\``);
    }
    throw err;
  }
  const [peers, stats] = await Promise.all([allPages<GatewayPeer>(api, '/v1/gateway/peers'), api.request<Record<string, number>>('GET', '/v1/gateway/stats')]);
  print(values.json, { gateway, peers, stats }, () => statusText(gateway, peers, stats));
  return EXIT.ok;
}

function print(json: boolean | undefined, data: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${human()}\n`);
}

function help(topic: string, code: number = EXIT.ok): number {
  (code === EXIT.ok ? process.stdout : process.stderr).write(`${HELP[topic]}\n`);
  return code;
}

/** The exit code for an error from the API (docs/operations.md, "CLI"). */
function exitFor(err: ApiError): number {
  if (err.code === 'not_found') return EXIT.notFound;
  if (err.status === 409) return EXIT.conflict;
  if (err.status === 400 || err.status === 401) return EXIT.usage;
  return EXIT.failed;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'run':
        return await cmdRun(rest);
      case 'api':
        return await cmdApi(rest);
      case 'peer':
        return await cmdPeer(rest);
      case 'status':
        return await cmdStatus(rest);
      case 'demo': {
        const { values } = parse(rest, {});
        if (values.help) return help('demo');
        const { runDemo } = await import('../demo/demo.js');
        return await runDemo();
      }
      case undefined:
        return help('main', EXIT.usage);
      case '--help':
      case '-h':
      case 'help':
        return help('main');
      case '--version':
        process.stdout.write(`${JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version}\n`);
        return EXIT.ok;
      default:
        throw new UsageError(`unknown command "${cmd}" (run, api, peer, status, demo; see wgjit --help)`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`wgjit: ${err.message}\n`);
      return EXIT.usage;
    }
    // A setting, or a --backend that does not fit the interface: the operator's to fix.
    if (err instanceof ConfigError || err instanceof NoBackendError) {
      process.stderr.write(`wgjit: ${err.message}\n`);
      return EXIT.usage;
    }
    if (err instanceof ApiError) {
      const hint = err.status === 401 ? '; check --api-token-file, WGJIT_API_TOKEN_FILE or WGJIT_API_TOKEN' : '';
      process.stderr.write(`wgjit: ${err.message}${err.status ? ` (${err.code})` : ''}${hint}\n`);
      return exitFor(err);
    }
    process.stderr.write(`wgjit: ${(err as Error).message}\n`);
    return EXIT.failed;
  }
}
