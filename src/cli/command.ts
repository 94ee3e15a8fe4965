/** What the commands share: exit codes, argument parsing, output, and the API client of `peer` and `status`. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ApiClient, DEFAULT_API } from './client.js';
import { envName, resolveToken } from './settings.js';
import { nearest } from './suggest.js';

export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3, conflict: 4 } as const;

/** A mistake in the command line: printed as one line, exit code 2. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Where an unknown option may belong instead: `peer ls --allowed-ips` is an
 * option of another command, which is a better hint than a near spelling.
 * Returns the whole message, or null.
 */
export type Elsewhere = (flag: string) => string | null;

/**
 * The line for an option `topic`'s command does not have: the nearest of
 * its own flags when one is close, and where its help is.
 */
export function unknownOptionMessage(typed: string, flags: readonly string[], topic: string, elsewhere?: Elsewhere): string {
  const other = typed.startsWith('--') ? elsewhere?.(typed.slice(2)) : null;
  if (other != null) return other;
  const near = typed.startsWith('--') ? nearest(typed.slice(2), flags) : null;
  return `unknown option ${typed}${near === null ? '' : ` (did you mean --${near}?)`}; see wgjit ${topic} --help`;
}

/** Parses `args` for the command whose help page is `topic` ('peer add'); a mistake is a UsageError naming the flag. */
export function parse<O extends Options>(args: string[], options: O, topic = 'COMMAND', elsewhere?: Elsewhere) {
  const all = { ...options, help: { type: 'boolean', short: 'h' } } as O & { help: { type: 'boolean'; short: 'h' } };
  try {
    return parseArgs({ args, options: all, allowPositionals: true, strict: true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const unknown = e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /^Unknown option '([^']+)'/.exec(e.message) : null;
    if (unknown !== null) throw new UsageError(unknownOptionMessage(unknown[1]!.replace(/=.*$/s, ''), Object.keys(all), topic, elsewhere));
    throw new UsageError(e.message.replace(/\. To specify a positional.*$/s, ''));
  }
}

export function print(json: boolean | undefined, data: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${human()}\n`);
}

export const CLIENT_OPTIONS = { api: { type: 'string' }, 'api-token-file': { type: 'string' }, json: { type: 'boolean' } } as const;

/**
 * The API client from --api / WGJIT_API and the token from --api-token-file,
 * WGJIT_API_TOKEN_FILE or WGJIT_API_TOKEN (a file named on the command line
 * wins, then the environment's file, then the environment's token).
 */
export function client(values: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): ApiClient {
  const given = (values['api'] as string | undefined) ?? env[envName('api')] ?? DEFAULT_API;
  // HOST:PORT without a scheme, as --api-listen takes it: plain HTTP.
  const base = given.includes('://') ? given : `http://${given}`;
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new UsageError(`--api ${JSON.stringify(given)} is not a URL (expected e.g. ${DEFAULT_API}, or HOST:PORT)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--api ${JSON.stringify(given)} must be an http:// or https:// URL, e.g. ${DEFAULT_API}`);
  const token = resolveToken({
    apiTokenFile: (values['api-token-file'] as string | undefined) ?? (env[envName('api-token-file')] || undefined),
    apiToken: env[envName('api-token')] || undefined,
  });
  if (token === undefined) {
    throw new UsageError(`no API token: set --api-token-file FILE, ${envName('api-token-file')} or ${envName('api-token')} (the token the API was started with)`);
  }
  return new ApiClient(base, token);
}
