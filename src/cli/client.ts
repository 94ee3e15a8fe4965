/** A small REST client for the CLI's `peer` and `status` commands. */
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
    let res: Response;
    try {
      res = await fetch(new URL(path, this.base), {
        method,
        headers,
        body: json,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      const detail = (err as { cause?: { code?: string; message?: string } }).cause;
      const cause = detail?.code ?? detail?.message ?? (err as Error).message;
      throw new ApiClientError(0, 'unreachable', `cannot reach the wgjit API at ${this.base} (${cause}); is \`wgjit run\` or \`wgjit api\` running? (set --api or WGJIT_API)`);
    }
    this.serverVersion = res.headers.get(VERSION_HEADER);
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: reported below */
    }
    if (!res.ok) {
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
