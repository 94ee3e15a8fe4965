/**
 * The `--redis` value: the one parser for every form the CLI documents
 * (interface.md), into a target the store connects to.
 *
 *   redis://[user:pass@]host[:port][/db]         one server (rediss://: TLS)
 *   /path/to/redis.sock                           one server on a UNIX socket
 *   redis+sentinel://[user:pass@]host[:port][,host[:port]…]/MASTER_NAME[/db]
 *                                                 the primary Sentinel names (rediss+sentinel://: TLS)
 *   redis+cluster://[user:pass@]host[:port][,host[:port]…]
 *                                                 a Cluster (rediss+cluster://: TLS)
 *
 * A password may hold `@` and `/` unescaped (the last `@` ends it) or be
 * percent-encoded. Errors say which part is wrong and never repeat the
 * value: it may hold a password.
 */

export const DEFAULT_REDIS_PORT = 6379;
export const DEFAULT_SENTINEL_PORT = 26379;
/** Redis's own limit is its `databases` setting (16 by default); this only bounds the number. */
const MAX_DB = 2_147_483_647;
/** What a Sentinel master name may be here: Sentinel itself takes any word without spaces. */
const MASTER_NAME = /^[A-Za-z0-9._:-]{1,128}$/;
/** What a scheme looks like (RFC 3986, section 3.1), short: an error may name such a text. */
const SCHEME_SHAPE = /^[A-Za-z][A-Za-z0-9+.-]{0,19}$/;

/**
 * Replicas an API write waits for (--redis-wait-replicas, WAIT) by default:
 * none, Redis's own asynchronous replication (docs/operations.md, "Redis
 * Sentinel"). Here rather than in store.ts so that the settings need not
 * load the Redis client.
 */
export const DEFAULT_WAIT_REPLICAS = 0;
export const MAX_WAIT_REPLICAS = 16;

export interface RedisEndpoint {
  host: string;
  port: number;
}

/** Credentials from the URL; `password` undefined when the URL gives none. */
interface Credentials {
  username?: string;
  password?: string;
}

export type RedisTarget =
  | ({ kind: 'single'; tls: boolean; endpoint: RedisEndpoint; db: number } & Credentials)
  | ({ kind: 'socket'; path: string } & Credentials)
  | ({ kind: 'sentinel'; tls: boolean; sentinels: RedisEndpoint[]; masterName: string; db: number } & Credentials)
  | ({ kind: 'cluster'; tls: boolean; nodes: RedisEndpoint[] } & Credentials);

/** Every form, for errors and help pages (no word longer than a help column). */
export const REDIS_URL_FORMS =
  'redis://[user:pass@]host:port[/db], a UNIX socket path, ' +
  'redis+sentinel://[user:pass@]HOSTS/MASTER_NAME[/db] or redis+cluster://[user:pass@]HOSTS ' +
  'where HOSTS is host:port[,host:port…]; rediss://, rediss+sentinel:// and rediss+cluster:// for TLS';


export class RedisUrlError extends Error {
  override readonly name = 'RedisUrlError';
}

const SCHEMES: Record<string, { kind: 'single' | 'sentinel' | 'cluster'; tls: boolean }> = {
  'redis:': { kind: 'single', tls: false },
  'rediss:': { kind: 'single', tls: true },
  'redis+sentinel:': { kind: 'sentinel', tls: false },
  'rediss+sentinel:': { kind: 'sentinel', tls: true },
  'redis+cluster:': { kind: 'cluster', tls: false },
  'rediss+cluster:': { kind: 'cluster', tls: true },
};

function fail(message: string): never {
  throw new RedisUrlError(message);
}

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return fail(`the ${what} has a bad percent-escape`);
  }
}

function credentials(userinfo: string | undefined): Credentials {
  if (userinfo === undefined) return {};
  const colon = userinfo.indexOf(':');
  // `user@` alone: a user (ioredis's reading too); its password may come from a file.
  if (colon < 0) return userinfo === '' ? {} : { username: decode(userinfo, 'user') };
  const username = decode(userinfo.slice(0, colon), 'user');
  const password = decode(userinfo.slice(colon + 1), 'password');
  return { ...(username !== '' && { username }), ...(password !== '' && { password }) };
}

/** `host[:port]`, `[v6]` or `[v6]:port`; `which` names it in errors ("host", "host 2"). */
function endpoint(text: string, defaultPort: number, which: string): RedisEndpoint {
  if (text === '') fail(`${which} is empty`);
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+))(?::(.*))?$/.exec(text);
  if (!m) fail(`${which} is not HOST[:PORT] (an IPv6 address goes in brackets: [::1]:6379)`);
  const host = (m[1] ?? m[2])!;
  if (m[2] !== undefined && !/^[A-Za-z0-9._-]+$/.test(host)) fail(`${which} is not a host name or address`);
  if (m[3] === undefined) return { host, port: defaultPort };
  if (!/^\d{1,5}$/.test(m[3])) fail(`the port of ${which} is not a number`);
  const port = Number(m[3]);
  if (port < 1 || port > 65535) fail(`the port of ${which} is out of range 1..65535`);
  return { host, port };
}

function endpoints(authority: string, defaultPort: number): RedisEndpoint[] {
  const parts = authority.split(',');
  return parts.map((p, i) => endpoint(p, defaultPort, parts.length === 1 ? 'the host' : `host ${i + 1}`));
}

function db(text: string): number {
  if (!/^\d{1,10}$/.test(text) || Number(text) > MAX_DB) fail('the database (after the last /) is not a number');
  return Number(text);
}

export function parseRedisUrl(raw: string): RedisTarget {
  if (raw.startsWith('/')) {
    if (/[?#]/.test(raw)) fail('a socket path takes no query (?…) or fragment (#…)');
    return { kind: 'socket', path: raw };
  }
  const sep = raw.indexOf('://');
  if (sep < 0) fail('not a Redis URL (SCHEME://…) or a socket path (/…)');
  const schemeText = raw.slice(0, sep);
  const scheme = SCHEMES[`${schemeText.toLowerCase()}:`];
  if (scheme === undefined) {
    // Named only when it has a scheme's shape: text before :// that does not may be anything, a password too.
    const named = SCHEME_SHAPE.test(schemeText) ? `the scheme "${schemeText}"` : 'the text before ://';
    fail(`${named} is not a Redis scheme`);
  }
  let rest = raw.slice(sep + 3);
  // The last @ ends the credentials, so a password may hold @ and / unescaped.
  const at = rest.lastIndexOf('@');
  const userinfo = at >= 0 ? rest.slice(0, at) : undefined;
  rest = at >= 0 ? rest.slice(at + 1) : rest;
  if (/[?#]/.test(rest)) fail('query parameters (?…) and fragments (#…) are not supported');
  const slash = rest.indexOf('/');
  const authority = slash >= 0 ? rest.slice(0, slash) : rest;
  const path = slash >= 0 ? rest.slice(slash + 1) : '';
  const creds = credentials(userinfo);

  switch (scheme.kind) {
    case 'single': {
      if (authority.includes(',')) fail('redis:// takes one host; for several, use redis+sentinel:// or redis+cluster://');
      const [ep] = endpoints(authority, DEFAULT_REDIS_PORT);
      if (path.includes('/')) fail('the path must be a database number alone (/0)');
      return { kind: 'single', tls: scheme.tls, endpoint: ep!, db: path === '' ? 0 : db(path), ...creds };
    }
    case 'sentinel': {
      const sentinels = endpoints(authority, DEFAULT_SENTINEL_PORT);
      const [name, dbText, ...extra] = path.split('/');
      if (name === undefined || name === '') fail('the Sentinel master name is missing: redis+sentinel://HOST:PORT[,HOST:PORT…]/MASTER_NAME[/db]');
      const masterName = decode(name, 'master name');
      if (!MASTER_NAME.test(masterName)) fail('the Sentinel master name may hold only letters, digits and . _ : - (at most 128)');
      if (extra.length > 0) fail('too many path parts: /MASTER_NAME[/db]');
      return { kind: 'sentinel', tls: scheme.tls, sentinels, masterName, db: dbText === undefined || dbText === '' ? 0 : db(dbText), ...creds };
    }
    case 'cluster': {
      const nodes = endpoints(authority, DEFAULT_REDIS_PORT);
      if (path !== '') fail('a Cluster URL takes no path (a Cluster has only database 0)');
      return { kind: 'cluster', tls: scheme.tls, nodes, ...creds };
    }
  }
}

/** `host:port`, `[v6]:port`. */
export const spellEndpoint = (e: RedisEndpoint): string => (e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`);

/** The target for a log line: where, never who or with what password. */
export function describeRedisTarget(t: RedisTarget): string {
  switch (t.kind) {
    case 'single':
      return `${t.tls ? 'rediss' : 'redis'}://${spellEndpoint(t.endpoint)}/${t.db}`;
    case 'socket':
      return t.path;
    case 'sentinel':
      return `${t.tls ? 'rediss' : 'redis'}+sentinel://${t.sentinels.map(spellEndpoint).join(',')}/${t.masterName}/${t.db}`;
    case 'cluster':
      return `${t.tls ? 'rediss' : 'redis'}+cluster://${t.nodes.map(spellEndpoint).join(',')}`;
  }
}
