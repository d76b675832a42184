/**
 * The local runtime's logger: one JSON line per event (pino). Level from PAYSTEP_LOG_LEVEL
 * (default `info`; tests default to `silent` unless PAYSTEP_LOG_LEVEL is set).
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(name = 'paystep'): Logger {
  const level = process.env.PAYSTEP_LOG_LEVEL ?? (process.env.JEST_WORKER_ID ? 'silent' : 'info');
  return pino({ name, level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime });
}
