/** Powertools Logger shared by handlers: JSON, correlation ids added per invocation, no card data. */
import { Logger } from '@aws-lambda-powertools/logger';
import type { LogLevel } from '@aws-lambda-powertools/logger/types';
import { config } from './config.ts';

const LEVELS: Record<string, LogLevel> = {
  trace: 'TRACE',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARN',
  error: 'ERROR',
  fatal: 'CRITICAL',
  silent: 'SILENT',
};

/** The handlers' Powertools level for a PAYSTEP_LOG_LEVEL (the local runtime's pino names). */
export function powertoolsLevel(level: string): LogLevel {
  return LEVELS[level.toLowerCase()] ?? 'WARN';
}

/**
 * The level the logger starts with. In Lambda (and wherever POWERTOOLS_LOG_LEVEL is set) Powertools
 * reads it. In a local process this module is often imported before the runtime sets the
 * handlers' environment (lib/local/runtime.ts), and Powertools goes back to the level it started
 * with at every invocation (`injectLambdaContext` refreshes its log sampling), so a later
 * `setLogLevel` would not last: start with the runtime's level, from PAYSTEP_LOG_LEVEL (WARN when
 * unset, as the runtime sets it).
 */
function initialLevel(): LogLevel | undefined {
  if (config.logLevel() || config.lambdaFunctionName()) return undefined;
  return powertoolsLevel(config.localLogLevel() ?? 'warn');
}

export const logger = new Logger({ serviceName: config.serviceName(), logLevel: initialLevel() });

/** Applies POWERTOOLS_LOG_LEVEL as it is now (the runtime calls it once it has set it). */
export function applyLogLevel(): void {
  const level = config.logLevel();
  if (Object.values(LEVELS).includes(level as LogLevel)) logger.setLogLevel(level as LogLevel);
}
