/**
 * Structured JSON logs (pino). One root logger per process, a child per
 * component. Secrets are redacted by path as a second line of defence: the
 * code never passes them to a logger in the first place.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'privateKey',
  '*.privateKey',
  'presharedKey',
  '*.presharedKey',
  '*.*.presharedKey',
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'password',
  '*.password',
  'redisPassword',
  '*.redisPassword',
  'sentinelPassword',
  '*.sentinelPassword',
];

export function createLogger(level: LevelWithSilent = 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'wgjit' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

/** What stands in a line for a value that is not logged. */
export const REDACTED = '[redacted]';

/** A query parameter's name that is kept in a logged URL: a plain word, not something that could be a value. */
const QUERY_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,31}$/;

/**
 * A request's URL as a log line shows it: the path as sent, and of the
 * query only the parameters' names; every value is REDACTED (a client may
 * put a token or a key there: `?token=…`, `?psk=…`). A parameter without
 * `=`, or with a name that is not a plain word, is redacted whole: it may
 * be the secret itself. An empty value stays empty (nothing to hide).
 * `/v1/peers?limit=10&cursor=abc` → `/v1/peers?limit=[redacted]&cursor=[redacted]`.
 */
export function redactQuery(url: string): string {
  const at = url.indexOf('?');
  if (at < 0) return url;
  const params = url
    .slice(at + 1)
    .split('&')
    .map((param) => {
      const eq = param.indexOf('=');
      if (eq < 0) return param === '' ? '' : REDACTED;
      const name = param.slice(0, eq);
      return `${QUERY_NAME.test(name) ? name : REDACTED}=${eq === param.length - 1 ? '' : REDACTED}`;
    });
  return `${url.slice(0, at)}?${params.join('&')}`;
}

/** What a request log line holds of a request (fastify's `req`): fastify's own fields, the URL through redactQuery. */
export interface LoggedRequest {
  method: string;
  url: string;
  host?: string;
  ip?: string;
  socket?: { remotePort?: number } | null;
}

/** The pino serializer of `req` for the API's request lines (incoming request, request errored). */
export function requestSerializer(req: LoggedRequest): Record<string, unknown> {
  return { method: req.method, url: redactQuery(req.url), host: req.host, remoteAddress: req.ip, remotePort: req.socket?.remotePort };
}

/** The window a LineBudget counts lines in. */
export const LINE_BUDGET_WINDOW_MS = 1_000;

/**
 * A bound on log lines per key (an outcome, a reason) and second, for lines
 * a flood or an outage can repeat at packet rate. take() says whether a
 * line may be written now and, if so, how many lines of its key were held
 * back since the last one written, for that line to report. Keys must come
 * from a small fixed set: one entry is kept per key.
 */
export class LineBudget {
  private readonly windows = new Map<string, { start: number; written: number; held: number }>();

  constructor(
    /** Lines per key per LINE_BUDGET_WINDOW_MS. */
    readonly perWindow: number,
    /** Monotonic ms. */
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!Number.isInteger(perWindow) || perWindow < 1) throw new RangeError(`perWindow must be a positive integer, got ${perWindow}`);
  }

  /** null: hold this line back (it is counted); else write it, reporting the number returned as held back. */
  take(key: string): number | null {
    const t = this.now();
    let w = this.windows.get(key);
    if (w === undefined) {
      w = { start: t, written: 0, held: 0 };
      this.windows.set(key, w);
    } else if (t - w.start >= LINE_BUDGET_WINDOW_MS) {
      w.start = t;
      w.written = 0;
    }
    if (w.written >= this.perWindow) {
      w.held++;
      return null;
    }
    w.written++;
    const held = w.held;
    w.held = 0;
    return held;
  }
}
