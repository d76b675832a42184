/**
 * How CLI commands reach the platform's data: through the running runtime, or by starting one.
 *
 * stdout carries a command's result only (`paystep … | jq` works): the in-process runtime logs to
 * stderr, at `warn` unless PAYSTEP_LOG_LEVEL says otherwise, and so do the handlers it runs.
 */
import { pino, type Logger } from 'pino';
import { readRuntimeInfo, runtimeEnvironment, startRuntime } from '../local/runtime.ts';
import { topology } from '../topology.ts';
import { resetClients } from '../../lambdas/shared/aws.ts';
import { logger as handlerLogger } from '../../lambdas/shared/logger.ts';

export { readRuntimeInfo };

export function resolveDataDir(flag?: string): string {
  return flag || process.env.PAYSTEP_DATA_DIR || '.paystep';
}

/**
 * The in-process runtime's logger: JSON lines on stderr, through process.stderr (written at once to
 * a file or pipe; a reader that left costs lines, never the command: see main()).
 */
export function cliLogger(): Logger {
  const level = process.env.PAYSTEP_LOG_LEVEL || 'warn';
  return pino(
    { name: 'paystep-cli', level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime },
    { write: (line: string) => void process.stderr.write(line) },
  );
}

/**
 * The handlers' Powertools logger was created when its module was imported, before the runtime's
 * environment was set: give it the level the runtime chose (POWERTOOLS_LOG_LEVEL).
 */
function alignHandlerLogLevel(): void {
  const level = process.env.POWERTOOLS_LOG_LEVEL;
  if (level) handlerLogger.setLogLevel(level as Parameters<typeof handlerLogger.setLogLevel>[0]);
}

/**
 * Runs `work` against the data dir's runtime. `settle`: when this call started the runtime, wait
 * before stopping it until its streams, queues and executions are done with what `work` started
 * (a running runtime does that work by itself).
 */
export async function withRuntime<T>(
  dataDir: string,
  work: () => Promise<T>,
  opts: { settle?: boolean } = {},
): Promise<T> {
  const info = readRuntimeInfo(dataDir);
  if (info) {
    Object.assign(process.env, runtimeEnvironment(topology, info.endpoints, info.dataDir));
    resetClients();
    alignHandlerLogLevel();
    return work();
  }
  if (!process.env.PAYSTEP_LOG_LEVEL) process.env.PAYSTEP_LOG_LEVEL = 'warn';
  const runtime = await startRuntime({
    dataDir,
    gateway: false,
    scheduler: false,
    logger: cliLogger(),
  });
  // Clients made from now on reach this runtime's DynamoDB in-process, without a socket.
  resetClients();
  alignHandlerLogLevel();
  try {
    const result = await work();
    if (opts.settle) await runtime.settle(120_000);
    return result;
  } finally {
    await runtime.stop();
  }
}
