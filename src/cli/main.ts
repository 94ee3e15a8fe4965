/**
 * The `wgjit` command. Wiring only: parse, validate, call, print.
 * Exit codes: 0 success, 1 the operation failed, 2 usage or configuration
 * error, 3 no such peer, 4 the peer already exists.
 */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, SETTINGS, envName, resolveSettings, resolveToken, type SettingName } from '../config.js';
import { normalizeKey } from '../handshake/keys.js';
import { createLogger } from '../telemetry/log.js';
import { ApiClient, ApiError, DEFAULT_API, keyPath } from './client.js';
import { bytes, relativeTime, table } from './format.js';

export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3, conflict: 4 } as const;

class UsageError extends Error {}

const RUN_SETTINGS = [
  'interface', 'captureDev', 'redis', 'apiListen', 'apiTokenFile', 'apiToken', 'backend', 'xdpMode', 'idleTimeout', 'reconcileInterval', 'sourceRate', 'sourceBurst', 'dhBudget', 'replay', 'uapiDir', 'logLevel', 'config',
] as const satisfies readonly SettingName[];
const API_SETTINGS = ['redis', 'apiListen', 'apiTokenFile', 'apiToken', 'logLevel', 'config'] as const satisfies readonly SettingName[];

const HELP: Record<string, string> = {
  main: `wgjit — on-demand WireGuard peer gateway

Usage:
  wgjit run    --interface WG_IF --capture-dev DEV[,DEV] --redis URL [options]
  wgjit api    --redis URL [--api-listen HOST:PORT] [--api-token-file FILE]
  wgjit peer   add PUBKEY --allowed-ips CIDR[,CIDR] [options]
  wgjit peer   rm PUBKEY | ls [--json] | show PUBKEY [--json]
  wgjit status [--json]
  wgjit demo

Run 'wgjit COMMAND --help' for the options of a command.
'peer' and 'status' talk to the REST API at --api URL or WGJIT_API
(default ${DEFAULT_API}), token from --api-token-file or WGJIT_API_TOKEN.

Exit codes: 0 success, 1 failure, 2 usage or configuration error,
3 no such peer, 4 peer already exists.`,
  peer: `Usage:
  wgjit peer add PUBKEY --allowed-ips CIDR[,CIDR] [--preshared-key-file F]
                 [--keepalive N] [--expires-at ISO8601] [--disabled]
  wgjit peer rm PUBKEY
  wgjit peer ls [--json]
  wgjit peer show PUBKEY [--json]

Manages the peer store through the REST API (--api URL, WGJIT_API;
token: --api-token-file FILE or WGJIT_API_TOKEN).`,
  status: `Usage: wgjit status [--json]

This gateway's installed peers (like 'wg show') and wgjit's counters,
read from the REST API (--api URL, WGJIT_API).`,
  demo: `Usage: wgjit demo

Builds a throw-away testbed in network namespaces — a gateway running
WireGuard with no peers, a private redis-server, the wgjit daemon, and three
WireGuard clients (two registered, one not) — connects each client, prints
whether it got through and how long its first handshake took, then removes
everything (also on Ctrl-C). Needs root.`,
};

function settingsHelp(names: readonly SettingName[]): string {
  return names
    .map((n) => {
      const s = SETTINGS[n];
      const dflt = 'default' in s ? ` (default ${JSON.stringify(s.default)})` : '';
      return `  --${s.flag.padEnd(16)} ${s.help}${dflt}\n  ${''.padEnd(18)} env ${envName(s.flag)}; ${s.form}`;
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
  const log = createLogger(s.logLevel);
  const { startGateway } = await import('../daemon/gateway.js');
  const gw = await startGateway({
    interface: s.interface!,
    captureDevs: s.captureDev!,
    redis: s.redis!,
    api: s.apiListen!,
    token,
    backend: s.backend!,
    xdpMode: s.xdpMode!,
    idleTimeoutS: s.idleTimeout!,
    reconcileIntervalS: s.reconcileInterval!,
    sourceRate: s.sourceRate!,
    sourceBurst: s.sourceBurst!,
    dhPerSecond: s.dhBudget!,
    replay: s.replay!,
    uapiDir: s.uapiDir!,
    log,
  });
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
  const store = PeerStore.connect(s.redis!);
  const app = await buildApp({ store, token, logger: log.child({ component: 'api' }) });
  await app.listen({ host: s.apiListen!.host, port: s.apiListen!.port });
  log.info({ listen: `${s.apiListen!.host}:${s.apiListen!.port}` }, 'API listening (store routes only)');
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

function client(values: Record<string, unknown>): ApiClient {
  const base = (values['api'] as string | undefined) ?? process.env[envName('api')] ?? DEFAULT_API;
  try {
    new URL(base);
  } catch {
    throw new UsageError(`--api ${JSON.stringify(base)} is not a URL (expected e.g. ${DEFAULT_API})`);
  }
  const token = resolveToken({ apiTokenFile: values['api-token-file'] as string | undefined, apiToken: process.env[envName('api-token')] });
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
  if (text === undefined) throw new UsageError('missing PUBKEY (base64 of 32 bytes, as `wg pubkey` prints)');
  const key = normalizeKey(text);
  if (key === null) throw new UsageError(`"${text}" is not a WireGuard public key (44 characters of base64, as \`wg pubkey\` prints)`);
  return key;
}

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
  if (values.help || sub === undefined) return help('peer', sub === undefined && !values.help ? EXIT.usage : EXIT.ok);
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
  const api = client(values);
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
      const created = await api.request<PeerView>('POST', '/v1/peers', body);
      print(values.json, created, () => `added ${created.publicKey} (${created.allowedIPs.join(', ')})`);
      return EXIT.ok;
    }
    case 'rm': {
      const publicKey = requireKey(arg);
      await api.request('DELETE', `/v1/peers/${keyPath(publicKey)}`);
      print(values.json, { removed: publicKey }, () => `removed ${publicKey}`);
      return EXIT.ok;
    }
    case 'show': {
      const publicKey = requireKey(arg);
      const p = await api.request<PeerView>('GET', `/v1/peers/${keyPath(publicKey)}`);
      print(values.json, p, () =>
        [
          `peer: ${p.publicKey}`,
          `  allowed ips: ${p.allowedIPs.join(', ')}`,
          `  preshared key: ${p.hasPresharedKey ? '(hidden)' : '(none)'}`,
          `  persistent keepalive: ${p.persistentKeepalive ? `every ${p.persistentKeepalive} seconds` : 'off'}`,
          `  expires: ${p.expiresAt ?? 'never'}`,
          `  disabled: ${p.disabled ? 'yes' : 'no'}`,
        ].join('\n'),
      );
      return EXIT.ok;
    }
    case 'ls': {
      if (arg !== undefined) throw new UsageError(`unexpected argument "${arg}"`);
      const items: PeerView[] = [];
      let cursor: string | null = null;
      do {
        const q: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
        const page: { items: PeerView[]; nextCursor: string | null } = await api.request('GET', `/v1/peers?limit=1000${q}`);
        items.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor !== null);
      print(values.json, items, () =>
        table(
          ['PUBLIC KEY', 'ALLOWED IPS', 'KEEPALIVE', 'EXPIRES', 'STATE'],
          items.map((p) => [p.publicKey, p.allowedIPs.join(','), p.persistentKeepalive ? `${p.persistentKeepalive}s` : '-', p.expiresAt ?? '-', p.disabled ? 'disabled' : 'enabled']),
        ),
      );
      return EXIT.ok;
    }
    default:
      throw new UsageError(`unknown peer command "${sub}" (add, rm, ls, show)`);
  }
}

interface GatewayPeer {
  publicKey: string;
  endpoint: string | null;
  state: string;
  installedAt: string;
  lastHandshakeAt: string | null;
  rxBytes: number;
  txBytes: number;
}

async function cmdStatus(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, CLIENT_OPTIONS);
  if (values.help) return help('status');
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const api = client(values);
  const [peers, stats] = await Promise.all([
    api.request<{ items: GatewayPeer[] } | GatewayPeer[]>('GET', '/v1/gateway/peers'),
    api.request<Record<string, number>>('GET', '/v1/gateway/stats'),
  ]);
  const items = Array.isArray(peers) ? peers : peers.items;
  print(values.json, { peers: items, stats }, () => {
    const blocks = items.map((p) =>
      [
        `peer: ${p.publicKey}`,
        `  state: ${p.state} (installed ${relativeTime(p.installedAt)})`,
        `  endpoint: ${p.endpoint ?? '(none)'}`,
        `  latest handshake: ${relativeTime(p.lastHandshakeAt)}`,
        `  transfer: ${bytes(p.rxBytes)} received, ${bytes(p.txBytes)} sent`,
      ].join('\n'),
    );
    const counters = table(['COUNTER', 'VALUE'], Object.entries(stats).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, String(v)]));
    return [`${items.length} installed peer${items.length === 1 ? '' : 's'}`, ...blocks, '', counters].join('\n\n').replace(/\n{3,}/g, '\n\n');
  });
  return EXIT.ok;
}

function print(json: boolean | undefined, data: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${human()}\n`);
}

function help(topic: string, code: number = EXIT.ok): number {
  (code === EXIT.ok ? process.stdout : process.stderr).write(`${HELP[topic]}\n`);
  return code;
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
    if (err instanceof ConfigError) {
      process.stderr.write(`wgjit: ${err.message}\n`);
      return EXIT.usage;
    }
    if (err instanceof ApiError) {
      process.stderr.write(`wgjit: ${err.message}${err.status ? ` (${err.code})` : ''}\n`);
      return err.status === 404 ? EXIT.notFound : err.status === 409 ? EXIT.conflict : err.status === 400 || err.status === 401 ? EXIT.usage : EXIT.failed;
    }
    process.stderr.write(`wgjit: ${(err as Error).message}\n`);
    return EXIT.failed;
  }
}
