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
