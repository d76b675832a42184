/**
 * The runtime under test of the checkout bench, in each `--mode`: `child` (its own process, this
 * bench's `--role server`, driven over IPC, with counters and an optional CPU profile), `plain`
 * (`node lib/local/main.ts` as shipped, no counters) or `inprocess` (in the load generator's
 * process). Also the forking of the bench's other roles and the listing of payment workflows.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Session } from 'node:inspector/promises';
import { forkRuntime, serveCommands } from '../runtime-process.ts';
import { ROOT } from '../lib.ts';
import { RUNTIME_NODE_FLAGS } from '../../lib/local/node-flags.ts';
import { sleep } from './client.ts';
import type { Mode } from './options.ts';
import { type ServerStats, installProbes } from './probes.ts';
import { type UnitCost, measureUnitCosts } from './unit-costs.ts';

interface Endpoints {
  dynamodb: string;
  stepfunctions: string;
  sqs: string;
  s3: string;
  stripe?: string;
}

export interface Target {
  url: string;
  key: string;
  pid: number;
  dataDir: string;
  endpoints: Endpoints;
  /** Counters of the runtime (undefined in mode plain). */
  stats(reset?: boolean): Promise<ServerStats | undefined>;
  /** Waits until no execution is running and streams and queues are drained. */
  settle(timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
  /** CPU profile of the runtime process between the two calls (mode child only). */
  profileStart?(): Promise<void>;
  profileStop?(file: string): Promise<string>;
  /** Cost of single DynamoDB calls on the idle runtime (modes child and inprocess). */
  unitCosts?(iterations: number): Promise<UnitCost[]>;
}

interface ServerReady {
  type: 'ready';
  url: string;
  key: string;
  endpoints: Endpoints;
  pid: number;
}

/** Starts the runtime in this process with counters and a merchant. */
async function startInstrumented(dataDir: string) {
  const { startRuntime } = await import('../../lib/local/runtime.ts');
  const { clients } = await import('../../lambdas/shared/aws.ts');
  const { createMerchant } = await import('../../lambdas/store/merchants.ts');
  const rt = await startRuntime({ dataDir, port: 0, scheduler: false, timeScale: 1 });
  const stats = installProbes(rt, clients);
  const { apiKey } = await createMerchant('Bench');
  return { rt, stats, key: apiKey };
}

/** V8's sampling profiler on this process, for the measured window only (not startup, not warmup). */
function cpuProfiler() {
  let session: Session | undefined;
  return {
    async start(): Promise<void> {
      session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 500 });
      await session.post('Profiler.start');
    },
    async stop(file: string): Promise<string> {
      if (!session) throw new Error('the profiler was not started');
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      session = undefined;
      fs.writeFileSync(file, JSON.stringify(profile));
      return file;
    },
  };
}

/** `--role server <dataDir>`: the runtime in its own process, driven over IPC. */
export async function serverRole(argv: string[]): Promise<number> {
  const dataDir = argv[0];
  if (!dataDir || !process.send) throw new Error('--role server needs a data dir and an IPC channel');
  const { rt, stats, key } = await startInstrumented(dataDir);
  const profiler = cpuProfiler();
  const ready: ServerReady = { type: 'ready', url: rt.url!, key, endpoints: rt.endpoints, pid: process.pid };
  process.send(ready);
  await serveCommands(rt, {
    stats: (reset) => stats(Boolean(reset)),
    'profile-start': () => profiler.start(),
    'profile-stop': (file) => profiler.stop(String(file)),
    'unit-costs': (n) => measureUnitCosts(rt, Number(n)),
  });
  // Exit explicitly (writes the --cpu-prof profile); handles of the SDK or Stripe clients may linger.
  process.exit(0);
}

function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, PAYSTEP_LOG_LEVEL: 'silent', PAYSTEP_SCHEDULER: 'off', ...extra };
}

/** Forks `bench/run.ts checkout <args>`, waits for its one `{ type: 'result' }` message. */
export function forkRole<T>(args: string[], env: Record<string, string>): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(ROOT, 'bench', 'run.ts'), ['checkout', ...args], {
      env: childEnv(env),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let done = false;
    child.on('message', (m: { type?: string; value?: T; error?: string }) => {
      if (m.type !== 'result') return;
      done = true;
      if (m.error) reject(new Error(m.error));
      else resolve(m.value as T);
    });
    child.on('exit', (code) => {
      if (!done) reject(new Error(`bench child exited with ${code} before answering`));
    });
  });
}

export async function startTarget(mode: Mode, dataDir: string): Promise<Target> {
  if (mode === 'inprocess') {
    process.env.PAYSTEP_LOG_LEVEL = 'silent';
    const { rt, stats, key } = await startInstrumented(dataDir);
    return {
      url: rt.url!,
      key,
      pid: process.pid,
      dataDir,
      endpoints: rt.endpoints,
      stats: async (reset) => stats(reset),
      settle: (ms) => rt.settle(ms),
      unitCosts: (n) => measureUnitCosts(rt, n),
      stop: () => rt.stop(),
    };
  }
  if (mode === 'child') {
    const { ready, call, stop } = await forkRuntime<ServerReady>(['checkout', '--role', 'server', dataDir], {
      env: childEnv({}),
    });
    return {
      url: ready.url,
      key: ready.key,
      pid: ready.pid,
      dataDir,
      endpoints: ready.endpoints,
      stats: (reset) => call<ServerStats>('stats', reset),
      settle: (ms) => call<void>('settle', ms),
      profileStart: () => call<void>('profile-start'),
      unitCosts: (n) => call<UnitCost[]>('unit-costs', n),
      profileStop: (file) => call<string>('profile-stop', file),
      stop,
    };
  }
  // plain: the runtime exactly as `npm start` runs it.
  const child: ChildProcess = spawn(
    process.execPath,
    [...RUNTIME_NODE_FLAGS, path.join(ROOT, 'lib', 'local', 'main.ts')],
    {
      env: childEnv({ PORT: '0', PAYSTEP_DATA_DIR: dataDir }),
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const { readRuntimeInfo } = await import('../../lib/local/runtime.ts');
  const deadline = Date.now() + 60_000;
  let info = readRuntimeInfo(dataDir);
  while (!info?.url) {
    if (child.exitCode !== null) throw new Error(`lib/local/main.ts exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error('lib/local/main.ts did not start within 60 s');
    await sleep(50);
    info = readRuntimeInfo(dataDir);
  }
  const { withRuntime } = await import('../../lib/cli/context.ts');
  const { createMerchant } = await import('../../lambdas/store/merchants.ts');
  const { apiKey } = await withRuntime(dataDir, () => createMerchant('Bench'));
  const endpoints = info.endpoints;
  return {
    url: info.url!,
    key: apiKey,
    pid: child.pid!,
    dataDir,
    endpoints,
    stats: async () => undefined,
    settle: async (ms) => {
      const end = Date.now() + ms;
      while ((await listExecutions(endpoints, 'RUNNING')).length > 0) {
        if (Date.now() > end) throw new Error('workflows did not finish in time');
        await sleep(100);
      }
    },
    stop: async () => {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

interface ExecutionInfo {
  name: string;
  status: string;
  start: number;
  stop?: number;
}

export async function listExecutions(endpoints: Endpoints, status?: string): Promise<ExecutionInfo[]> {
  const { SFNClient, ListExecutionsCommand } = await import('@aws-sdk/client-sfn');
  const { physicalName } = await import('../../lib/local/runtime.ts');
  const sfn = new SFNClient({
    region: 'local',
    endpoint: endpoints.stepfunctions,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const out: ExecutionInfo[] = [];
  try {
    let nextToken: string | undefined;
    do {
      const page = await sfn.send(
        new ListExecutionsCommand({
          stateMachineArn: `arn:aws:states:local:000000000000:stateMachine:${physicalName('payment')}`,
          statusFilter: status as 'RUNNING' | undefined,
          maxResults: 1000,
          nextToken,
        }),
      );
      for (const e of page.executions ?? [])
        out.push({
          name: e.name!,
          status: e.status!,
          start: e.startDate!.getTime(),
          stop: e.stopDate?.getTime(),
        });
      nextToken = page.nextToken;
    } while (nextToken);
  } finally {
    sfn.destroy();
  }
  return out;
}
