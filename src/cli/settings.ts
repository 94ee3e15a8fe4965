/**
 * Settings for `wgjit run` and `wgjit api`: flags win over WGJIT_* environment
 * variables, which win over a JSON config file, which wins over defaults.
 * Every setting is validated at start; an error names the setting, where it
 * came from, what is wrong and the accepted form. It shows the value with any
 * credentials masked (maskSecrets), and never the value of a setting that
 * may hold a secret (--api-token, --redis): a value that fails to parse may
 * still hold a password, and stderr ends up in logs.
 *
 * The stages own their defaults and limits and export them; this module only
 * composes them into flags, and no stage imports it back. A setting's name is
 * its flag in camelCase, and the daemon's options (GatewayOptions) use the
 * same names, so resolved settings pass on without renaming.
 */
import { DEFAULT_SOURCE_BURST, DEFAULT_SOURCE_RATE, MAX_SOURCE_BURST, MAX_SOURCE_RATE, MIN_SOURCE_BURST, type XdpMode } from '../capture/addon.js';
import { BACKEND_CHOICES } from '../install/select.js';
import { DEFAULT_SOCKET_DIR } from '../install/uapi.js';
import { DEFAULT_DH_PER_SECOND } from '../intake/intake.js';
import { IDLE_TIMEOUT_MS, RECONCILE_INTERVAL_MS } from '../lifecycle/timings.js';
import { DEFAULT_WAIT_REPLICAS, MAX_WAIT_REPLICAS, parseRedisUrl, REDIS_URL_FORMS } from '../authorize/redis-url.js';
import { readFileSync } from 'node:fs';
import { IFNAME_RULE, isValidIfname } from '../net/ifname.js';
import { GATEWAY_ID_RULE, isGatewayId } from '../fleet/gateway-id.js';
import { parseRouteTable } from '../route/routes.js';
import { MIN_TOKEN_BYTES, tokenProblem } from '../api/token.js';

export type Source = 'flag' | 'environment' | 'config file' | 'default';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

interface SettingSpec<T> {
  /** Flag name without dashes; the environment variable is WGJIT_ + upper snake case. */
  flag: string;
  help: string;
  parse: (raw: string) => T;
  default?: T;
  required?: boolean;
  /** Accepted form, shown in errors. */
  form: string;
  /**
   * The value is, or may hold, a secret: errors never show it, not even
   * masked; the parser's message says which part is wrong.
   */
  secret?: boolean;
}

/**
 * The store's timestamp retention in seconds (TIMESTAMP_RETENTION_MS of
 * src/authorize/store.ts, which is not imported here: it loads ioredis):
 * the bound --max-timestamp-age may tighten.
 */
export const MAX_TIMESTAMP_AGE_S = 30 * 24 * 3600;

export const envName = (flag: string): string => `WGJIT_${flag.replace(/-/g, '_').toUpperCase()}`;

/** Query parameters whose name says they carry a secret (`?password=`, `?token=`, ...). */
const SECRET_PARAM = /([?&][^=&#]*(?:pass|pwd|token|secret|key|auth)[^=&#]*=)[^&#]*/gi;

/**
 * A setting's value as an error may show it: the password of any
 * `user:password@` (`redis://u:***@host`; a user alone may be a token:
 * `redis://***@host`) and secret-looking query parameters masked. Works on
 * values that do not parse as URLs, which are the ones errors show.
 */
export function maskSecrets(raw: string): string {
  let out = raw.replace(SECRET_PARAM, '$1***');
  const at = out.lastIndexOf('@');
  if (at >= 0) {
    const scheme = out.indexOf('://');
    const start = scheme >= 0 && scheme < at ? scheme + 3 : 0;
    const userinfo = out.slice(start, at);
    const colon = userinfo.indexOf(':');
    out = `${out.slice(0, start)}${colon >= 0 ? `${userinfo.slice(0, colon)}:***` : '***'}${out.slice(at)}`;
  }
  return out;
}

function integer(min: number, max: number) {
  return (raw: string): number => {
    if (!/^\d+$/.test(raw)) throw new Error('not a whole number');
    const n = Number(raw);
    if (n < min || n > max) throw new Error(`out of range ${min}..${max}`);
    return n;
  };
}

function oneOf<T extends string>(...values: T[]) {
  return (raw: string): T => {
    if (!(values as string[]).includes(raw)) throw new Error('not one of the accepted values');
    return raw as T;
  };
}

/**
 * HOST:PORT, [IPV6]:PORT, or :PORT for every address: `::`, which on Linux
 * takes IPv4 too (dual-stack, unless net.ipv6.bindv6only is set); on a host
 * without IPv6 write 0.0.0.0:PORT.
 */
export const ALL_ADDRESSES = '::';

function hostPort(raw: string): { host: string; port: number } {
  const any = /^:(\d{1,5})$/.exec(raw);
  if (any) raw = `[${ALL_ADDRESSES}]:${any[1]}`;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(raw);
  if (!m) throw new Error('not HOST:PORT');
  const port = Number(m[3]);
  if (port < 0 || port > 65535) throw new Error('port out of range');
  return { host: (m[1] ?? m[2])!, port };
}

/** Checked here (src/authorize/redis-url.ts), parsed again where the store connects. */
function redisUrl(raw: string): string {
  parseRedisUrl(raw);
  return raw;
}

const ifname = (raw: string): string => {
  if (!isValidIfname(raw)) throw new Error(`not an interface name (${IFNAME_RULE})`);
  return raw;
};

const ifnames = (raw: string): string[] => {
  const names = raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new Error('empty list');
  return names.map(ifname);
};

const gatewayId = (raw: string): string => {
  if (!isGatewayId(raw)) throw new Error(`not a gateway id (${GATEWAY_ID_RULE})`);
  return raw;
};

/** A token a server may start with (src/api/auth.ts); the message never shows it. */
const apiToken = (raw: string): string => {
  const problem = tokenProblem(raw);
  if (problem !== null) throw new Error(problem);
  return raw;
};

const text = (raw: string): string => {
  if (raw.length === 0) throw new Error('empty');
  return raw;
};

const onOff = (raw: string): boolean => {
  if (['on', 'true', '1', 'yes'].includes(raw)) return true;
  if (['off', 'false', '0', 'no'].includes(raw)) return false;
  throw new Error('not on or off');
};

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Every setting of `wgjit run`; `wgjit api` uses the store and API subset. */
export const SETTINGS = {
  interface: { flag: 'interface', help: 'WireGuard interface to install peers into', parse: ifname, required: true, form: 'an interface name, e.g. wg0' },
  gatewayId: { flag: 'gateway-id', help: "this gateway's name in the fleet (default: the host name); two running gateways never share one", parse: gatewayId, form: 'a name, e.g. gw-fra-1' },
  routeTable: { flag: 'route-table', help: "route each installed peer's allowed IPs through the interface in this table, protocol 249 (wgjit), for a routing daemon to announce", parse: parseRouteTable, default: null, form: 'off, main or a table number, e.g. 100' },
  captureDev: { flag: 'capture-dev', help: 'devices to attach the XDP capture to', parse: ifnames, required: true, form: 'DEV[,DEV], e.g. eth0' },
  // Secret: a URL may hold a password, and one that does not parse cannot be masked with certainty (a password pasted alone).
  redis: { flag: 'redis', help: 'peer store', parse: redisUrl, required: true, form: REDIS_URL_FORMS, secret: true },
  redisPasswordFile: { flag: 'redis-password-file', help: 'file holding the Redis password (for the sentinels too), instead of one in the URL', parse: text, form: 'a file path' },
  redisWaitReplicas: { flag: 'redis-wait-replicas', help: 'replicas that must acknowledge each API write (Redis WAIT) before it is answered; 0: no wait', parse: integer(0, MAX_WAIT_REPLICAS), default: DEFAULT_WAIT_REPLICAS, form: `an integer, 0..${MAX_WAIT_REPLICAS}` },
  apiListen: { flag: 'api-listen', help: 'REST API and metrics address', parse: hostPort, default: { host: '127.0.0.1', port: 9180 }, form: 'HOST:PORT, e.g. 127.0.0.1:9180, or :PORT for every address, IPv6 and IPv4' },
  metricsListen: { flag: 'metrics-listen', help: 'a second address serving only /metrics, /healthz and /readyz, without a token (no /v1 route), for scrapers and probes; off by default', parse: hostPort, form: 'HOST:PORT, e.g. 0.0.0.0:9181, or :PORT for every address' },
  apiTokenFile: { flag: 'api-token-file', help: 'file holding the API bearer token', parse: text, form: 'a file path' },
  apiToken: { flag: 'api-token', help: 'API bearer token (prefer the file or WGJIT_API_TOKEN)', parse: apiToken, form: `at least ${MIN_TOKEN_BYTES} bytes, no whitespace`, secret: true },
  backend: { flag: 'backend', help: 'device backend', parse: oneOf(...BACKEND_CHOICES), default: 'auto', form: 'auto, uapi or netlink' },
  xdpMode: { flag: 'xdp-mode', help: 'XDP attach mode', parse: oneOf<XdpMode>('auto', 'native', 'generic'), default: 'auto', form: 'auto, native or generic' },
  idleTimeout: { flag: 'idle-timeout', help: 'seconds without a handshake before a peer is removed', parse: integer(10, 86_400), default: IDLE_TIMEOUT_MS / 1000, form: 'seconds, 10..86400' },
  reconcileInterval: { flag: 'reconcile-interval', help: 'seconds between reconciliations of the device with the store (what a lost store event left behind)', parse: integer(5, 3_600), default: RECONCILE_INTERVAL_MS / 1000, form: 'seconds, 5..3600' },
  maxTimestampAge: {
    flag: 'max-timestamp-age',
    help: 'refuse initiations stamped more than this many seconds before the gateway\'s clock, so a captured one cannot be replayed later even after the store lost its timestamps; 0 (default) leaves the bound at the store\'s retention (30 days): WireGuard clients need not keep accurate clocks',
    parse: integer(0, MAX_TIMESTAMP_AGE_S),
    default: 0,
    form: `seconds, 0..${MAX_TIMESTAMP_AGE_S}`,
  },
  sourceRate: { flag: 'source-rate', help: 'initiations per second captured per source address (IPv4 /32, IPv6 /64) in XDP; more still pass to the device; 0 turns the limit off', parse: integer(0, MAX_SOURCE_RATE), default: DEFAULT_SOURCE_RATE, form: `an integer, 0..${MAX_SOURCE_RATE}` },
  sourceBurst: { flag: 'source-burst', help: 'initiations a source may send at once before its rate applies', parse: integer(MIN_SOURCE_BURST, MAX_SOURCE_BURST), default: DEFAULT_SOURCE_BURST, form: `an integer, ${MIN_SOURCE_BURST}..${MAX_SOURCE_BURST}` },
  dhBudget: { flag: 'dh-budget', help: 'Diffie-Hellman operations per second spent verifying initiations (2 each); beyond it they queue, then drop', parse: integer(2, 10_000_000), default: DEFAULT_DH_PER_SECOND, form: 'an integer, 2..10000000' },
  replay: { flag: 'replay', help: 're-inject the captured initiation after install', parse: onOff, default: true, form: 'on or off' },
  uapiDir: { flag: 'uapi-dir', help: 'directory of userspace WireGuard sockets', parse: text, default: DEFAULT_SOCKET_DIR, form: 'a directory path' },
  logLevel: { flag: 'log-level', help: 'log level', parse: oneOf(...LOG_LEVELS), default: 'info', form: LOG_LEVELS.join(', ') },
  config: { flag: 'config', help: 'JSON config file (keys are flag names)', parse: text, form: 'a file path' },
} satisfies Record<string, SettingSpec<unknown>>;

type Specs = typeof SETTINGS;
export type SettingName = keyof Specs;

/** The settings of `wgjit run`, in the order of its help page. */
export const RUN_SETTINGS = [
  'interface', 'captureDev', 'gatewayId', 'routeTable', 'redis', 'redisPasswordFile', 'redisWaitReplicas', 'apiListen', 'metricsListen', 'apiTokenFile', 'apiToken', 'backend', 'xdpMode', 'idleTimeout', 'reconcileInterval', 'maxTimestampAge', 'sourceRate', 'sourceBurst', 'dhBudget', 'replay', 'uapiDir', 'logLevel', 'config',
] as const satisfies readonly SettingName[];
/** The settings of `wgjit api`: the store and the API. */
export const API_SETTINGS = ['redis', 'redisPasswordFile', 'redisWaitReplicas', 'apiListen', 'metricsListen', 'apiTokenFile', 'apiToken', 'logLevel', 'config'] as const satisfies readonly SettingName[];
/** The settings of `wgjit store`: the store alone. */
export const STORE_SETTINGS = ['redis', 'redisPasswordFile', 'config'] as const satisfies readonly SettingName[];

type ValueOf<K extends SettingName> = ReturnType<Specs[K]['parse']>;

/** A required setting, or one with a default, always has a value once resolved. */
export type Settings<K extends SettingName> = { [P in K]: Specs[P] extends { required: true } | { default: unknown } ? ValueOf<P> : ValueOf<P> | undefined };

/**
 * Resolve the named settings from flags (already split into name → raw
 * string), the environment and the config file.
 */
export function resolveSettings<K extends SettingName>(
  names: readonly K[],
  flags: Record<string, string | undefined>,
  env: NodeJS.ProcessEnv = process.env,
): Settings<K> {
  const configPath = flags['config'] ?? env[envName('config')];
  const file = configPath === undefined ? {} : readConfigFile(configPath);
  for (const key of Object.keys(file)) {
    if (!names.some((n) => SETTINGS[n].flag === key)) {
      throw new ConfigError(`config file ${configPath}: unknown setting "${key}" (known: ${names.map((n) => SETTINGS[n].flag).join(', ')})`);
    }
  }
  const out = {} as Settings<K>;
  for (const name of names) {
    const spec: SettingSpec<unknown> = SETTINGS[name];
    const candidates: Array<[Source, unknown]> = [
      ['flag', flags[spec.flag]],
      ['environment', env[envName(spec.flag)]],
      ['config file', file[spec.flag]],
    ];
    const found = candidates.find(([, v]) => v !== undefined);
    if (found === undefined) {
      if (spec.required) {
        throw new ConfigError(`missing --${spec.flag} (or ${envName(spec.flag)}): ${spec.help}; expected ${spec.form}`);
      }
      out[name] = spec.default as Settings<K>[K];
      continue;
    }
    const [source, raw] = found;
    const where = source === 'flag' ? `--${spec.flag}` : source === 'environment' ? envName(spec.flag) : `"${spec.flag}" in ${configPath}`;
    const rawText = Array.isArray(raw) ? raw.join(',') : String(raw);
    try {
      out[name] = spec.parse(rawText) as Settings<K>[K];
    } catch (err) {
      const problem = (err as Error).message;
      if (spec.secret === true) throw new ConfigError(`${where} is invalid: ${problem}; expected ${spec.form}`);
      throw new ConfigError(`${where}: ${JSON.stringify(maskSecrets(rawText))} is invalid (${problem}); expected ${spec.form}`);
    }
  }
  return out;
}

/** The settings' flags as node:util parseArgs options (every value a string; resolveSettings parses it). */
export function settingOptions(names: readonly SettingName[]): Record<string, { type: 'string' }> {
  return Object.fromEntries(names.map((n) => [SETTINGS[n].flag, { type: 'string' as const }]));
}

function readConfigFile(path: string): Record<string, unknown> {
  let body: string;
  try {
    body = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${fileProblem(err)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    // V8's message may quote the text around the error, and the file may hold a password: only where.
    const at = /at position \d+(?: \(line \d+ column \d+\))?/.exec((err as Error).message)?.[0];
    throw new ConfigError(`config file ${path} is not valid JSON${at === undefined ? '' : ` (${at})`}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${path} must hold a JSON object whose keys are flag names`);
  }
  return parsed as Record<string, unknown>;
}

/** The API token from --api-token-file, else --api-token / WGJIT_API_TOKEN. */
/** A file that could not be read, as a person says it: "no such file", not ENOENT. */
export function fileProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const words: Record<string, string> = {
    ENOENT: 'no such file',
    EACCES: 'permission denied',
    EISDIR: 'it is a directory',
    ENOTDIR: 'a part of the path is not a directory',
    ELOOP: 'too many symbolic links',
  };
  return (code !== undefined ? words[code] : undefined) ?? code ?? (err as Error).message;
}

export function resolveToken(settings: { apiTokenFile?: string | undefined; apiToken?: string | undefined }): string | undefined {
  if (settings.apiTokenFile !== undefined) {
    let token: string;
    try {
      token = readFileSync(settings.apiTokenFile, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(`cannot read --api-token-file ${settings.apiTokenFile}: ${fileProblem(err)}`);
    }
    if (token.length === 0) throw new ConfigError(`--api-token-file ${settings.apiTokenFile} is empty`);
    return token;
  }
  return settings.apiToken;
}

/**
 * The token `wgjit run` and `wgjit api` serve with: resolveToken's, held to
 * the token rule (src/api/auth.ts). --api-token and WGJIT_API_TOKEN met it
 * as they were resolved; a file's token is checked here. Throws
 * ConfigError naming the file or the setting, never showing the token.
 */
export function resolveServerToken(settings: { apiTokenFile?: string | undefined; apiToken?: string | undefined }): string {
  const token = resolveToken(settings);
  if (token === undefined) throw new ConfigError(`no API token: set --api-token-file FILE or ${envName('api-token')}`);
  if (settings.apiTokenFile === undefined) return token;
  const problem = tokenProblem(token);
  if (problem !== null) throw new ConfigError(`--api-token-file ${settings.apiTokenFile}: ${problem}`);
  return token;
}

/**
 * The Redis password from --redis-password-file (one trailing newline
 * stripped), or undefined without the setting. An unreadable or empty file,
 * or a password also in the URL, is an error; neither message shows it.
 */
export function resolveRedisPassword(settings: { redis: string; redisPasswordFile?: string | undefined }): string | undefined {
  const file = settings.redisPasswordFile;
  if (file === undefined) return undefined;
  let body: string;
  try {
    body = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read --redis-password-file ${file}: ${fileProblem(err)}`);
  }
  const password = body.replace(/\r?\n$/, '');
  if (password.length === 0) throw new ConfigError(`--redis-password-file ${file} is empty`);
  if (/[\r\n]/.test(password)) throw new ConfigError(`--redis-password-file ${file} holds more than one line; put the password alone on the first`);
  if (parseRedisUrl(settings.redis).password !== undefined) {
    throw new ConfigError(`the Redis password is given twice, in --redis and in --redis-password-file ${file}: remove it from the URL`);
  }
  return password;
}
