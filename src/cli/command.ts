/** What the commands share: exit codes, argument parsing, output, and the API client of `peer` and `status`. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ApiClient, DEFAULT_API } from './client.js';
import { envName, resolveToken } from './settings.js';

export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3, conflict: 4 } as const;

/** A mistake in the command line: printed as one line, exit code 2. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

export function parse<O extends Options>(args: string[], options: O) {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } } as O & { help: { type: 'boolean'; short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify a positional.*$/s, ''));
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
