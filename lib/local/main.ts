/**
 * `npm start`: runs the whole platform on this machine.
 *
 * Configuration (environment): PORT (3000), PAYSTEP_HOST (127.0.0.1), PAYSTEP_DATA_DIR (.paystep),
 * PAYSTEP_TIME_SCALE (1), PAYSTEP_LOG_LEVEL (info), PAYSTEP_SCHEDULER (on; "off" disables).
 */
import fs from 'node:fs';
import { RuntimeStartError, startRuntime } from './runtime.ts';
import { createLogger } from './log.ts';

const log = createLogger('paystep');

/** Writes synchronously: console.error to a pipe may be lost when the process exits right after. */
function fail(message: string, code: number): never {
  fs.writeSync(2, `paystep: ${message}\n`);
  process.exit(code);
}

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) {
    fail(`${name} must be a non-negative number, got "${raw}"`, 2);
  }
  return n;
}

// One process hosts every service: a stray rejection in one handler must not stop the platform.
process.on('unhandledRejection', (reason) =>
  log.error({ err: reason instanceof Error ? reason.message : String(reason) }, 'unhandled rejection'),
);

const port = envNumber('PORT', 3000);
const timeScale = envNumber('PAYSTEP_TIME_SCALE', 1) || 1;
const dataDir = process.env.PAYSTEP_DATA_DIR || '.paystep';

try {
  const runtime = await startRuntime({
    dataDir,
    port,
    host: process.env.PAYSTEP_HOST || '127.0.0.1',
    timeScale,
    scheduler: process.env.PAYSTEP_SCHEDULER !== 'off',
    logger: log,
  });
  log.info(
    { url: runtime.url, dataDir: runtime.options.dataDir, timeScale },
    `paystep is running at ${runtime.url}`,
  );
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    const force = setTimeout(() => {
      log.error('shutdown took longer than 10 s; exiting');
      process.exit(1);
    }, 10_000);
    force.unref();
    await runtime.stop();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
} catch (err) {
  if (err instanceof RuntimeStartError) fail(err.message, 1);
  fail(`could not start: ${(err as Error).message}`, 1);
}
