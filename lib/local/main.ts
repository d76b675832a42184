/**
 * `npm start`: runs the whole platform on this machine.
 *
 * Configuration (environment): PORT (3000), PAYSTEP_HOST (127.0.0.1), PAYSTEP_DATA_DIR (.paystep),
 * PAYSTEP_TIME_SCALE (1), PAYSTEP_LOG_LEVEL (info), PAYSTEP_SCHEDULER (on; "off" disables),
 * PAYSTEP_SHUTDOWN_GRACE_MS (10000).
 *
 * Shutdown (SIGTERM, SIGINT): stops taking requests, lets the services stop, exits 0. It never
 * takes longer than the grace period, and a second signal ends it at once: both exits are
 * unconditional (no logging, no exit handlers). Logging never blocks (lib/local/log.ts).
 */
import fs from 'node:fs';
import { RuntimeStartError, startRuntime } from './runtime.ts';
import { createLogger, guardStdio, logOutputStats } from './log.ts';

// First: nothing in this process may block on, or crash because of, a slow or vanished log reader.
guardStdio();
const log = createLogger('paystep');

/** Writes synchronously: console.error to a pipe may be lost when the process exits right after. */
function fail(message: string, code: number): never {
  try {
    fs.writeSync(2, `paystep: ${message}\n`);
  } catch {
    /* nobody is reading: exit anyway */
  }
  process.exit(code);
}

/**
 * Ends the process now, whatever it is doing: no 'exit' listeners (they may flush or wait), no
 * logging. process.reallyExit is what process.exit calls after the listeners; SIGKILL if absent.
 */
function forceExit(code: number): never {
  const reallyExit = (process as unknown as { reallyExit?: (code: number) => void }).reallyExit;
  try {
    reallyExit?.call(process, code);
  } catch {
    /* fall through to the last resort */
  }
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
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
const graceMs = envNumber('PAYSTEP_SHUTDOWN_GRACE_MS', 10_000);
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
  const shutdown = async (signal: NodeJS.Signals) => {
    // A second signal while stopping: the operator wants it gone now (128 + signal number).
    if (stopping) forceExit(signal === 'SIGINT' ? 130 : 143);
    stopping = true;
    // Armed before anything else, and kept referenced: the process ends by the deadline whatever
    // the services do. Exit 1: the data is safe (journals), but the stop was not clean.
    setTimeout(() => forceExit(1), graceMs);
    log.info({ signal, graceMs }, 'stopping');
    try {
      await runtime.stop();
    } catch (err) {
      log.error({ err: (err as Error).message }, 'error while stopping');
    }
    const dropped = logOutputStats().stdout.dropped;
    log.info(dropped ? { droppedLogLines: dropped } : {}, 'stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
} catch (err) {
  if (err instanceof RuntimeStartError) fail(err.message, 1);
  fail(`could not start: ${(err as Error).message}`, 1);
}
