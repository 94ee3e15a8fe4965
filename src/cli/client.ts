/** A small REST client for the CLI's `peer` and `status` commands. */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ERROR_STATUS, type ErrorBody, type ErrorCode } from '../api/errors.js';
import { VERSION_HEADER } from '../api/version.js';

/**
 * The API's error codes (src/api/errors.ts), and the two only the client
 * reports: no answer at all, or an error answer without the API's body (a
 * proxy's, say; a code this build does not know counts as that too).
 */
export type ClientErrorCode = ErrorCode | 'unreachable' | 'http_error';

const isErrorCode = (code: unknown): code is ErrorCode => typeof code === 'string' && Object.hasOwn(ERROR_STATUS, code);

/** A request that failed: the HTTP status (0 when there was no answer), the code and the API's message. */
export class ApiClientError extends Error {
  override readonly name = 'ApiClientError';
  constructor(
    readonly status: number,
    readonly code: ClientErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export const DEFAULT_API = 'http://127.0.0.1:9180';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/**
 * One request through node:http (https for an https: URL), over the global
 * agent's kept-alive connections. Not fetch(): its streams cost an import
 * a few milliseconds of CPU per 1,000-record request, as much as the API
 * spends writing them.
 */
function send(url: URL, method: string, headers: Record<string, string>, body: string | null): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method, headers, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
      res.on('close', () => res.complete || reject(new Error('the connection closed before the answer was complete')));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body ?? undefined);
  });
}
export const REQUEST_TIMEOUT_MS = 10_000;

export class ApiClient {
  /** The release the API named in its last answer (VERSION_HEADER); null before one, or when it named none. */
  serverVersion: string | null = null;

  constructor(
    readonly base: string,
    private readonly token: string | undefined,
  ) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    return this.requestJson(method, path, body === undefined ? null : JSON.stringify(body));
  }

  /** request() with a body already spelled as JSON (or none: null). */
  async requestJson<T>(method: string, path: string, json: string | null): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.token !== undefined) headers['authorization'] = `Bearer ${this.token}`;
    if (json !== null) headers['content-type'] = 'application/json';
    let res: Answer;
    try {
      res = await send(new URL(path, this.base), method, headers, json);
    } catch (err) {
      const cause = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new ApiClientError(0, 'unreachable', `cannot reach the wgjit API at ${this.base} (${cause}); is \`wgjit run\` or \`wgjit api\` running? (set --api or WGJIT_API)`);
    }
    const version = res.headers[VERSION_HEADER];
    this.serverVersion = typeof version === 'string' ? version : null;
    if (res.status === 204) return undefined as T;
    const { text } = res;
    let parsed: unknown = undefined;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: reported below */
    }
    if (res.status < 200 || res.status > 299) {
      const e = (parsed as Partial<ErrorBody> | undefined)?.error;
      throw new ApiClientError(res.status, isErrorCode(e?.code) ? e.code : 'http_error', e?.message ?? `HTTP ${res.status}`);
    }
    return parsed as T;
  }

  /** Every item of a paged list route, following nextCursor. */
  async all<Page extends { items: unknown[]; nextCursor: string | null }>(path: string): Promise<Page['items']> {
    const items: Page['items'] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
      const page: Page = await this.request('GET', `${path}?limit=1000${q}`);
      items.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor !== null);
    return items;
  }
}

/** Path segment for a key: base64url needs no escaping. */
export const keyPath = (publicKey: string): string => encodeURIComponent(publicKey);
