/** Powertools Logger shared by handlers: JSON, correlation ids added per invocation, no card data. */
import { Logger } from '@aws-lambda-powertools/logger';
import type { LogLevel } from '@aws-lambda-powertools/logger/types';
import { config } from './config.ts';

export const logger = new Logger({ serviceName: config.serviceName() });

const LEVELS = new Set(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL', 'SILENT']);

/**
 * Applies POWERTOOLS_LOG_LEVEL as it is now. The logger reads it when this module is first
 * imported, which in a local runtime's process is before the runtime sets the handlers'
 * environment (lib/local/runtime.ts): without this, `npm start` and the benchmarks logged the
 * handlers' INFO lines whatever PAYSTEP_LOG_LEVEL said. In Lambda the level is set before import.
 */
export function applyLogLevel(): void {
  const level = (process.env.POWERTOOLS_LOG_LEVEL ?? '').toUpperCase();
  if (LEVELS.has(level)) logger.setLogLevel(level as LogLevel);
}
