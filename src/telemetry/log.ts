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
