/** How CLI commands reach the platform's data: through the running runtime, or by starting one. */
import { readRuntimeInfo, runtimeEnvironment, startRuntime } from '../local/runtime.ts';
import { createLogger } from '../local/log.ts';
import { topology } from '../topology.ts';
import { resetClients } from '../../lambdas/shared/aws.ts';

export { readRuntimeInfo };

export function resolveDataDir(flag?: string): string {
  return flag || process.env.PAYSTEP_DATA_DIR || '.paystep';
}

export async function withRuntime<T>(dataDir: string, work: () => Promise<T>): Promise<T> {
  const info = readRuntimeInfo(dataDir);
  if (info) {
    Object.assign(process.env, runtimeEnvironment(topology, info.endpoints, info.dataDir));
    resetClients();
    return work();
  }
  if (!process.env.PAYSTEP_LOG_LEVEL) process.env.PAYSTEP_LOG_LEVEL = 'warn';
  const runtime = await startRuntime({
    dataDir,
    gateway: false,
    scheduler: false,
    logger: createLogger('paystep-cli'),
  });
  try {
    return await work();
  } finally {
    await runtime.stop();
  }
}
