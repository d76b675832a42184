/**
 * `npm run bench:checkout` — checkout throughput and latency on the local runtime.
 *
 * 1. Load: a closed loop of `--concurrency` clients, each sending POST /v1/payments
 *    (pm_card_visa, automatic capture, a new Idempotency-Key every time) and the next request as
 *    soon as the answer arrives, for `--warmup` then `--duration` seconds. The full path runs:
 *    gateway → authorizer → payments-create → Step Functions (screen, route, authorize) → Stripe
 *    simulator (no latency, no faults) → DynamoDB (dynalite behind the stream-capturing proxy) →
 *    stream → stream router. After the window every workflow is waited for; "completed/s" counts
 *    the window's payments whose workflow SUCCEEDED before the window ended, so it only matches
 *    the API rate if the workflows keep up.
 * 2. Where the time goes: per payment DynamoDB calls (SDK and raw dynalite), Lambda invocations,
 *    stream records, journal lines and bytes, server CPU ms, event-loop utilisation, and the
 *    latency of each request split along its timeline events (sampled).
 * 3. Handler overhead: payments-create's own time per request in-process, with the AWS clients
 *    mocked (aws-sdk-client-mock: `send` answers at once) and, separately, with the real SDK
 *    middleware stack over a zero-latency fake transport.
 *
 * Modes (`--mode`): `child` (default, reported): the runtime runs in its own process (this file,
 * `--role server`, i.e. startRuntime plus counters) so the load generator never shares its event
 * loop; `plain`: `node lib/local/main.ts` as shipped, without counters; `inprocess`: runtime and
 * load generator in one process (what a test does; the generator's own CPU is charged to it).
 *
 * Results: a table on stdout, progress on stderr, JSON in os.tmpdir() (path printed).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';
import { Session } from 'node:inspector/promises';
import { parseArgs } from 'node:util';
import type { Runtime } from '../lib/local/runtime.ts';
import { forkRuntime, serveCommands } from './runtime-process.ts';
import {
  bar,
  cpuDelta,
  fileLines,
  fmtMs,
  gitInfo,
  log,
  machineCpuSeconds,
  machineInfo,
  processCpuSeconds,
  Progress,
  ROOT,
  round,
  summarize,
  summarizeCpuProfile,
  table,
  tmpFile,
  waitForIdleMachine,
  type LatencySummary,
  type ProfileSummary,
} from './lib.ts';

type Mode = 'child' | 'plain' | 'inprocess';

interface Options {
  concurrency: number[];
  duration: number;
  warmup: number;
  mode: Mode;
  handlerIterations: number;
  handler: boolean;
  load: boolean;
  timelineSample: number;
  cpuProf: boolean;
  unitCosts: number;
  waitIdle: number;
  settleTimeout: number;
  out?: string;
  keep: boolean;
}

const USAGE = `usage: npm run bench:checkout -- [flags]

  --concurrency N[,N…]   closed-loop clients (default 32); a list runs one window per value
  --duration S           measured window in seconds (default 20)
  --warmup S             warmup before each window in seconds (default 3)
  --mode M               child (default) | plain | inprocess  (see bench/checkout.ts)
  --handler-iterations N payments-create invocations for the handler overhead (default 5000)
  --no-handler           skip the handler overhead measurement
  --handler-only         only the handler overhead measurement
  --timeline-sample N    payments whose timeline splits the latency (default 300)
  --cpu-prof             CPU-profile the runtime process (mode child) and summarise it
  --unit-costs N         time N single DynamoDB calls of each kind on the idle runtime (default 300; 0: skip)
  --wait-idle S          before each measurement, wait up to S seconds for other processes to go quiet
                         (a shared machine distorts the figures; each window reports the load it saw)
  --settle-timeout S     after a window, wait at most S seconds for workflows, streams and queues (default 300)
  --out FILE             JSON result file (default: os.tmpdir()/paystep-bench-checkout-<time>.json)
  --keep                 keep the runtime's data dir`;

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      concurrency: { type: 'string', default: '32' },
      duration: { type: 'string', default: '20' },
      warmup: { type: 'string', default: '3' },
      mode: { type: 'string', default: 'child' },
      'handler-iterations': { type: 'string', default: '5000' },
      'no-handler': { type: 'boolean', default: false },
      'handler-only': { type: 'boolean', default: false },
      'timeline-sample': { type: 'string', default: '300' },
      'cpu-prof': { type: 'boolean', default: false },
      'unit-costs': { type: 'string', default: '300' },
      'wait-idle': { type: 'string', default: '0' },
      'settle-timeout': { type: 'string', default: '300' },
      out: { type: 'string' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return undefined;
  }
  const num = (name: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min}, got "${v}"`);
    return n;
  };
  const mode = values.mode as Mode;
  if (!['child', 'plain', 'inprocess'].includes(mode))
    throw new Error(`--mode must be child, plain or inprocess`);
  if (values['cpu-prof'] && mode !== 'child') throw new Error('--cpu-prof needs --mode child');
  return {
    concurrency: values.concurrency.split(',').map((c) => Math.floor(num('concurrency', c, 1))),
    duration: num('duration', values.duration, 1),
    warmup: num('warmup', values.warmup, 0),
    mode,
    handlerIterations: Math.floor(num('handler-iterations', values['handler-iterations'], 10)),
    handler: !values['no-handler'],
    load: !values['handler-only'],
    timelineSample: Math.floor(num('timeline-sample', values['timeline-sample'], 0)),
    cpuProf: values['cpu-prof'],
    unitCosts: Math.floor(num('unit-costs', values['unit-costs'], 0)),
    waitIdle: num('wait-idle', values['wait-idle'], 0),
    settleTimeout: num('settle-timeout', values['settle-timeout'], 1),
    out: values.out,
    keep: values.keep,
  };
}

// =============================================================================================
// Entry

export async function main(argv: string[]): Promise<number> {
  const role = argv[0] === '--role' ? argv[1] : undefined;
  if (role === 'server') return serverRole(argv.slice(2));
  if (role === 'handler') return handlerRole(argv.slice(2));

  let opts: Options | undefined;
  try {
    opts = parseOptions(argv);
  } catch (err) {
    console.error(`bench checkout: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (!opts) return 0;

  const machine = machineInfo();
  const result: Record<string, unknown> = {
    bench: 'checkout',
    at: new Date().toISOString(),
    machine,
    git: gitInfo(),
    options: opts,
  };
  const outFile = opts.out ?? tmpFile('paystep-bench-checkout', 'json');
  log(
    `machine: ${machine.cpus} × ${machine.cpuModel}${machine.hypervisor ? ` (${machine.hypervisor} VM)` : ''}, ` +
      `${machine.memoryGiB} GiB, Node ${machine.node}`,
  );

  if (opts.load) {
    const load = await runLoad(opts);
    result.mode = opts.mode;
    result.runs = load.runs;
    if (load.profiles.length) result.profiles = load.profiles;
    if (load.unitCosts) result.unitCosts = load.unitCosts;
    printLoad(load.runs, opts);
    if (load.unitCosts) printUnitCosts(load.unitCosts, load.runs);
    for (const p of load.profiles) printProfile(p);
  }
  if (opts.handler) {
    if (opts.waitIdle > 0) await waitForIdleMachine(opts.waitIdle, [process.pid]);
    log(`handler overhead: ${opts.handlerIterations} invocations of payments-create per variant…`);
    const h = await forkRole<HandlerResult>(['--role', 'handler', String(opts.handlerIterations)], {});
    result.handler = h;
    printHandler(h);
  }
  fs.writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
  console.log(`\nresults: ${outFile}`);
  return 0;
}

// =============================================================================================
// The runtime under test

interface Endpoints {
  dynamodb: string;
  stepfunctions: string;
  sqs: string;
  s3: string;
  stripe?: string;
}

interface Counter {
  count: number;
  ms: number;
}

/** Counters of the runtime process (cumulative since its start, unless said otherwise). */
interface ServerStats {
  at: number;
  cpuUs: { user: number; system: number };
  elu: { idle: number; active: number };
  /** Event-loop delay since the last `reset`, ms. */
  loopDelay: { mean: number; p50: number; p99: number; max: number };
  gc: Counter;
  /** AWS SDK calls made by handlers, by client and command (time = whole `send`, queueing included). */
  sdk: Record<string, Counter>;
  /** The same, by the Lambda function that made the call (`<function> <Client>.<Command>`). */
  sdkByFunction: Record<string, Counter>;
  /** HTTP round trips from the DynamoDB proxy to dynalite, by operation (forwarded and its own). */
  dynalite: Record<string, Counter> | null;
  lambdas: Record<string, number>;
  /** `pending`: captured and not yet delivered (or parked on the failure queue), now. */
  streams: { captured: number; delivered: number; batches: number; failed: number; pending: number };
  running: number;
  memoryMb: { rss: number; heapUsed: number };
}

interface Target {
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

/** Counters installed in the runtime's process: SDK middleware, dynalite round trips, loop, GC. */
function installProbes(rt: Runtime, clients: Record<string, unknown>) {
  const sdk: Record<string, Counter> = {};
  /** AWS calls by the function that made them: `<function> <Client>.<Command>`. */
  const byFunction: Record<string, Counter> = {};
  const current = new AsyncLocalStorage<string>();
  const lambdas = rt.lambdas as unknown as { invoke: (fn: string, event: unknown) => Promise<unknown> };
  const invoke = lambdas.invoke.bind(rt.lambdas);
  lambdas.invoke = (fn, event) => {
    let name = fn;
    try {
      name = rt.lambdas.resolve(fn);
    } catch {
      // unknown: the invoker reports it
    }
    return current.run(name, () => invoke(fn, event));
  };
  const add = (map: Record<string, Counter>, k: string, ms: number) => {
    const c = (map[k] ??= { count: 0, ms: 0 });
    c.count++;
    c.ms += ms;
  };
  type Stack = {
    middlewareStack: {
      add(mw: unknown, opts: { step: string; priority: string; name: string; override?: boolean }): void;
    };
  };
  const instances = ['ddb', 'sfn', 'sqs', 's3']
    .map((k) => clients[k])
    .filter((f): f is () => unknown => typeof f === 'function')
    .map((f) => f() as Stack);
  for (const client of instances) {
    client.middlewareStack.add(
      (next: (a: unknown) => Promise<unknown>, context: { clientName?: string; commandName?: string }) =>
        async (args: unknown) => {
          const t = performance.now();
          try {
            return await next(args);
          } finally {
            const name = `${(context.clientName ?? '?').replace(/Client$/, '')}.${(context.commandName ?? '?').replace(/Command$/, '')}`;
            const ms = performance.now() - t;
            add(sdk, name, ms);
            add(byFunction, `${current.getStore() ?? '(runtime)'} ${name}`, ms);
          }
        },
      { step: 'initialize', priority: 'high', name: 'paystepBenchTiming', override: true },
    );
  }
  // The proxy's round trips to dynalite (a private method: counted only if it is still there).
  let dynalite: Record<string, Counter> | null = null;
  const d = rt.dynamo as unknown as {
    request?: (m: string, u: string, h: Record<string, unknown>, b: Buffer) => Promise<unknown>;
  };
  if (typeof d.request === 'function') {
    dynalite = {};
    const orig = d.request.bind(rt.dynamo);
    const counters = dynalite;
    d.request = (m, u, h, b) => {
      const t = performance.now();
      const op = String(h['x-amz-target'] ?? '').split('.')[1] ?? '?';
      return orig(m, u, h, b).finally(() => add(counters, op, performance.now() - t));
    };
  }
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  const gc: Counter = { count: 0, ms: 0 };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gc.count++;
      gc.ms += e.duration;
    }
  }).observe({ entryTypes: ['gc'] });

  return (reset = false): ServerStats => {
    const elu = performance.eventLoopUtilization();
    const cpu = process.cpuUsage();
    const streams = rt.dynamo.streamStats();
    const mem = process.memoryUsage();
    const s: ServerStats = {
      at: Date.now(),
      cpuUs: { user: cpu.user, system: cpu.system },
      elu: { idle: elu.idle, active: elu.active },
      loopDelay: {
        mean: round(delay.mean / 1e6, 2),
        p50: round(delay.percentile(50) / 1e6, 2),
        p99: round(delay.percentile(99) / 1e6, 2),
        max: round(delay.max / 1e6, 2),
      },
      gc: { ...gc },
      sdk: structuredClone(sdk),
      sdkByFunction: structuredClone(byFunction),
      dynalite: dynalite ? structuredClone(dynalite) : null,
      lambdas: rt.lambdas.stats(),
      streams: {
        captured: streams.reduce((n, x) => n + x.recordsCaptured, 0),
        delivered: streams.reduce((n, x) => n + x.recordsDelivered, 0),
        batches: streams.reduce((n, x) => n + x.batchesDelivered, 0),
        failed: streams.reduce((n, x) => n + x.recordsFailed, 0),
        pending: streams.reduce((n, x) => n + x.shards.reduce((m, sh) => m + sh.pending, 0), 0),
      },
      running: rt.stepFunctions.runningCount(),
      memoryMb: { rss: round(mem.rss / 2 ** 20, 0), heapUsed: round(mem.heapUsed / 2 ** 20, 0) },
    };
    if (reset) delay.reset();
    return s;
  };
}

interface UnitCost {
  op: string;
  iterations: number;
  /** Wall time per call, sequential calls on an otherwise idle runtime, ms. */
  wallMs: LatencySummary;
  /** Process CPU per call (every thread: main loop, LevelDB, libuv), stream delivery included, ms. */
  cpuMs: number;
}

/**
 * What one DynamoDB call costs the runtime, measured on the idle runtime with the handlers' own
 * client: SDK (marshalling, signing, HTTP) → proxy (for a write: lock, old image, journal, forward,
 * new image, stream record) → dynalite → stream delivery to the stream router.
 */
async function measureUnitCosts(rt: Runtime, iterations: number): Promise<UnitCost[]> {
  const { clients } = await import('../lambdas/shared/aws.ts');
  const { GetCommand, PutCommand, UpdateCommand } = await import('@aws-sdk/lib-dynamodb');
  const { config } = await import('../lambdas/shared/config.ts');
  const TableName = config.tableName('main');
  const ddb = clients.ddb();
  const pk = `BENCH#${randomUUID()}`;
  await ddb.send(
    new PutCommand({
      TableName,
      Item: {
        pk,
        sk: 'PAYMENT',
        kind: 'bench',
        status: 'processing',
        amount: 1050,
        metadata: {},
        version: 1,
      },
    }),
  );
  await rt.settle(30_000);
  let seq = 0;
  const ops: [string, () => Promise<unknown>][] = [
    [
      'GetItem (consistent, like getPayment)',
      () => ddb.send(new GetCommand({ TableName, Key: { pk, sk: 'PAYMENT' }, ConsistentRead: true })),
    ],
    [
      'PutItem of a new item (like addEvent)',
      () =>
        ddb.send(
          new PutCommand({
            TableName,
            Item: {
              pk,
              sk: `EVENT#${String(++seq).padStart(8, '0')}`,
              kind: 'bench_event',
              at: new Date().toISOString(),
              type: 'workflow',
            },
          }),
        ),
    ],
    [
      'UpdateItem with condition (like transition)',
      () =>
        ddb.send(
          new UpdateCommand({
            TableName,
            Key: { pk, sk: 'PAYMENT' },
            UpdateExpression: 'SET #s = :s, updated = :u ADD version :one',
            ConditionExpression: 'attribute_exists(pk)',
            ExpressionAttributeNames: { '#s': 'status' },
            ExpressionAttributeValues: { ':s': 'processing', ':u': ++seq, ':one': 1 },
          }),
        ),
    ],
  ];
  // The proxy's own round trip to dynalite (old and new images of every write), if still reachable.
  const direct = rt.dynamo as unknown as { call?: (op: string, input: unknown) => Promise<unknown> };
  if (typeof direct.call === 'function') {
    const call = direct.call.bind(rt.dynamo);
    ops.push([
      'proxy → dynalite GetItem (no SDK; each write does 2)',
      () =>
        call('GetItem', { TableName, Key: { pk: { S: pk }, sk: { S: 'PAYMENT' } }, ConsistentRead: true }),
    ]);
  }
  const record = {
    eventID: '1',
    eventName: 'INSERT',
    eventVersion: '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion: 'local',
    dynamodb: {
      Keys: { pk: { S: pk }, sk: { S: 'EVENT#1' } },
      NewImage: {
        pk: { S: pk },
        sk: { S: 'EVENT#1' },
        kind: { S: 'payment_event' },
        type: { S: 'workflow' },
      },
      SequenceNumber: '1',
      SizeBytes: 100,
      StreamViewType: 'NEW_AND_OLD_IMAGES',
    },
    eventSourceARN: 'arn:aws:dynamodb:local:000000000000:table/paystep-main/stream/local',
  };
  ops.push([
    'stream-router invocation (1 record; every write makes one)',
    () => rt.lambdas.invoke('stream-router', { Records: [record] }),
  ]);
  const out: UnitCost[] = [];
  for (const [op, fn] of ops) {
    for (let i = 0; i < 50; i++) await fn();
    await rt.settle(30_000);
    const lat = new Float64Array(iterations);
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < iterations; i++) {
      const t = performance.now();
      await fn();
      lat[i] = performance.now() - t;
    }
    await rt.settle(30_000); // the stream records' delivery is part of a write's cost
    const cpu = process.cpuUsage(cpu0);
    out.push({
      op,
      iterations,
      wallMs: roundSummary3(summarize(lat)),
      cpuMs: round((cpu.user + cpu.system) / 1000 / iterations, 3),
    });
  }
  return out;
}

/** Starts the runtime in this process with counters and a merchant. */
async function startInstrumented(dataDir: string) {
  const { startRuntime } = await import('../lib/local/runtime.ts');
  const { clients } = await import('../lambdas/shared/aws.ts');
  const { createMerchant } = await import('../lambdas/store/merchants.ts');
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
async function serverRole(argv: string[]): Promise<number> {
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
function forkRole<T>(args: string[], env: Record<string, string>): Promise<T> {
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

async function startTarget(mode: Mode, dataDir: string): Promise<Target> {
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
  const child: ChildProcess = spawn(process.execPath, [path.join(ROOT, 'lib', 'local', 'main.ts')], {
    env: childEnv({ PORT: '0', PAYSTEP_DATA_DIR: dataDir }),
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const { readRuntimeInfo } = await import('../lib/local/runtime.ts');
  const deadline = Date.now() + 60_000;
  let info = readRuntimeInfo(dataDir);
  while (!info?.url) {
    if (child.exitCode !== null) throw new Error(`lib/local/main.ts exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error('lib/local/main.ts did not start within 60 s');
    await sleep(50);
    info = readRuntimeInfo(dataDir);
  }
  const { withRuntime } = await import('../lib/cli/context.ts');
  const { createMerchant } = await import('../lambdas/store/merchants.ts');
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

async function listExecutions(endpoints: Endpoints, status?: string): Promise<ExecutionInfo[]> {
  const { SFNClient, ListExecutionsCommand } = await import('@aws-sdk/client-sfn');
  const { physicalName } = await import('../lib/local/runtime.ts');
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

// =============================================================================================
// Load generator

interface Sample {
  /** Wall-clock start and end, epoch ms with fractions. */
  start: number;
  end: number;
  status: number;
  paymentStatus?: string;
  id?: string;
  error?: string;
}

interface RunResult {
  concurrency: number;
  durationS: number;
  requests: number;
  /** Requests answered within the window, per second. */
  requestsPerSecond: number;
  latencyMs: LatencySummary;
  httpStatus: Record<string, number>;
  paymentStatus: Record<string, number>;
  errors: Record<string, number>;
  workflows: {
    payments: number;
    succeeded: number;
    failed: number;
    running: number;
    succeededInWindow: number;
    /** SUCCEEDED workflows of the window's payments that ended within the window, per second. */
    completedPerSecond: number;
    /** How long after the window the last workflow ended, ms. */
    lastEndAfterWindowMs: number;
    durationMs: LatencySummary;
  };
  /**
   * The table stream: records captured and not yet delivered when the window ended (a backlog
   * that grows means the stream consumers do not keep up), and records parked on the failure queue.
   */
  stream?: {
    backlogAtWindowEnd: number;
    deliveredInWindow: number;
    recordsPerPayment: number;
    failedInWindow: number;
  };
  /**
   * Payments/s whose whole work kept up: the workflow rate, capped by the rate at which the table
   * stream delivered the records payments produce (stream records delivered in the window ÷
   * records per payment ÷ window). Below `completedPerSecond` when the stream falls behind.
   */
  sustainedPerSecond?: number;
  /** How long after the window the runtime had nothing left to do (null: not within --settle-timeout). */
  settledAfterWindowMs: number | null;
  /** Request latency split along timeline events (sampled payments), ms. */
  phases?: { phase: string; p50: number; p90: number; p99: number; mean: number }[];
  processorLatencyMs?: LatencySummary;
  perPayment?: Record<string, number>;
  /** AWS calls per payment by calling function and command. */
  awsCallsByFunction?: Record<string, number>;
  server?: {
    cpuSeconds: { user: number; system: number; total: number } | undefined;
    cpuMsPerPayment: number | undefined;
    /** CPU of the event-loop thread alone (everything but LevelDB's and libuv's threads). */
    mainThreadCpuMsPerPayment: number | undefined;
    /**
     * Payments/s the event loop could carry with a core to itself (1000 / main-thread CPU ms per
     * payment): the ceiling of the single-threaded runtime, and robust to other load on the machine.
     */
    capacityPerSecond: number | undefined;
    eventLoopUtilization?: number;
    loopDelayMs?: ServerStats['loopDelay'];
    gcMsPerPayment?: number;
    sdkMeanMs?: Record<string, number>;
    dynaliteMeanMs?: Record<string, number>;
    memoryMb?: ServerStats['memoryMb'];
  };
  loadGeneratorCpuSeconds: number;
  /**
   * Cores busy on the whole machine during the window, and how many of them were neither the
   * runtime nor the load generator (other processes on a shared machine distort the figures).
   */
  machineLoad?: { busyCores: number; runtimeCores: number; generatorCores: number; otherCores: number };
}

function machineLoad(
  before: { busy: number; total: number } | undefined,
  after: { busy: number; total: number } | undefined,
  rtBefore: { user: number; system: number } | undefined,
  rtAfter: { user: number; system: number } | undefined,
  gen: NodeJS.CpuUsage,
  opts: Options,
): RunResult['machineLoad'] {
  if (!before || !after) return undefined;
  const secs = opts.duration;
  const busy = (after.busy - before.busy) / secs;
  // In mode inprocess one process is both: its CPU is reported as the runtime's.
  const own = (gen.user + gen.system) / 1e6 / secs;
  const runtime = opts.mode === 'inprocess' ? own : (cpuDelta(rtBefore, rtAfter)?.total ?? 0) / secs;
  const generator = opts.mode === 'inprocess' ? 0 : own;
  return {
    busyCores: round(busy, 2),
    runtimeCores: round(runtime, 2),
    generatorCores: round(generator, 2),
    otherCores: round(Math.max(0, busy - runtime - generator), 2),
  };
}

export function postJson(
  agent: http.Agent,
  base: URL,
  reqPath: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        method: body === undefined ? 'GET' : 'POST',
        path: reqPath,
        agent,
        headers: body === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(body) },
        timeout: 60_000,
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (data += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('client timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(body);
  });
}

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `concurrency` clients until `until` (epoch ms); every answer goes to `sink`. */
async function closedLoop(
  target: Target,
  agent: http.Agent,
  concurrency: number,
  until: number,
  sink: (s: Sample) => void,
): Promise<void> {
  const base = new URL(target.url);
  const body = JSON.stringify({ amount: 1050, currency: 'usd', payment_method: 'pm_card_visa' });
  const worker = async () => {
    while (now() < until) {
      const start = now();
      try {
        const res = await postJson(
          agent,
          base,
          '/v1/payments',
          {
            authorization: `Bearer ${target.key}`,
            'content-type': 'application/json',
            'idempotency-key': randomUUID(),
          },
          body,
        );
        const s: Sample = { start, end: now(), status: res.status };
        try {
          const j = JSON.parse(res.body) as { id?: string; status?: string; error?: { code?: string } };
          if (res.status === 201) {
            s.paymentStatus = j.status;
            s.id = j.id;
          } else s.error = `${res.status} ${j.error?.code ?? ''}`.trim();
        } catch {
          s.error = `${res.status} unparsable body`;
        }
        sink(s);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        sink({ start, end: now(), status: 0, error: e.code ?? e.message });
        await sleep(10);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

async function runLoad(
  opts: Options,
): Promise<{ runs: RunResult[]; profiles: ProfileSummary[]; unitCosts?: UnitCost[] }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-bench-data-'));
  log(`starting the runtime (mode ${opts.mode}, data ${dataDir})…`);
  const target = await startTarget(opts.mode, dataDir);
  // Zero processor latency, no faults (the default; said explicitly).
  if (target.endpoints.stripe) await fetch(`${target.endpoints.stripe}/_sim/faults`, { method: 'DELETE' });
  const runs: RunResult[] = [];
  const profiles: ProfileSummary[] = [];
  let unitCosts: UnitCost[] | undefined;
  try {
    for (const c of opts.concurrency) {
      const { run, profile } = await runWindow(target, c, opts);
      runs.push(run);
      if (profile) profiles.push(profile);
    }
    if (target.unitCosts && opts.unitCosts > 0) {
      if (opts.waitIdle > 0) await waitForIdleMachine(opts.waitIdle, [process.pid, target.pid]);
      log('measuring single DynamoDB calls on the idle runtime…');
      unitCosts = await target.unitCosts(opts.unitCosts);
    }
  } finally {
    log('stopping the runtime…');
    await target.stop();
    if (!opts.keep) fs.rmSync(dataDir, { recursive: true, force: true });
    else log(`data kept in ${dataDir}`);
  }
  return { runs, profiles, unitCosts };
}

function journals(dataDir: string): Record<string, { lines: number; bytes: number }> {
  const out: Record<string, { lines: number; bytes: number }> = {};
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.jsonl')) out[path.relative(dataDir, p)] = fileLines(p);
    }
  };
  walk(dataDir);
  return out;
}

export function dirBytes(dir: string): number {
  let n = 0;
  try {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      n += e.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
    }
  } catch {
    // missing
  }
  return n;
}

async function runWindow(
  target: Target,
  concurrency: number,
  opts: Options,
): Promise<{ run: RunResult; profile?: ProfileSummary }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
  const progress = new Progress();
  try {
    // Warmup: JIT, caches (authorizer, Stripe adapter, secrets), dynalite, sockets.
    if (opts.warmup > 0) {
      let n = 0;
      const t0 = now();
      const until = t0 + opts.warmup * 1000;
      const timer = setInterval(
        () => progress.update(`c=${concurrency} warmup ${bar((now() - t0) / (until - t0))} ${n} requests`),
        1000,
      );
      await closedLoop(target, agent, concurrency, until, () => n++);
      clearInterval(timer);
      progress.done();
    }
    await target.settle(120_000);
    if (opts.waitIdle > 0) {
      progress.update(`c=${concurrency} waiting up to ${opts.waitIdle} s for other processes to go quiet…`);
      const other = await waitForIdleMachine(opts.waitIdle, [process.pid, target.pid]);
      progress.update(`c=${concurrency} other processes use ${other ?? '?'} cores`);
      progress.done();
    }

    const before = await target.stats(true);
    const journalsBefore = journals(target.dataDir);
    const dynamoBytesBefore = dirBytes(path.join(target.dataDir, 'dynamodb'));
    const stripeBefore = await stripeStats(target);
    const cpuBefore = processCpuSeconds(target.pid);
    const mainBefore = processCpuSeconds(target.pid, target.pid);
    const machineBefore = machineCpuSeconds();
    const genCpuBefore = process.cpuUsage();
    const profiling = opts.cpuProf && target.profileStart && target.profileStop;
    if (profiling) await target.profileStart!();

    const samples: Sample[] = [];
    const start = now();
    const end = start + opts.duration * 1000;
    let lastCount = 0;
    let errors = 0;
    const timer = setInterval(() => {
      const inWindow = samples.filter((s) => s.end <= end);
      const recent = inWindow.slice(lastCount);
      lastCount = inWindow.length;
      const lat = summarize(recent.map((s) => s.end - s.start));
      progress.update(
        `c=${concurrency} ${bar((now() - start) / (end - start))} ${Math.min(opts.duration, Math.round((now() - start) / 1000))}/${opts.duration} s  ` +
          `${recent.length} req/s  p50 ${fmtMs(lat.p50)}  p99 ${fmtMs(lat.p99)}  errors ${errors}`,
      );
    }, 1000);
    await closedLoop(target, agent, concurrency, end, (s) => {
      if (s.error) errors++;
      samples.push(s);
    });
    clearInterval(timer);
    progress.done();
    const genCpu = process.cpuUsage(genCpuBefore);
    const machineEnd = machineCpuSeconds();
    const cpuWindowEnd = processCpuSeconds(target.pid);
    const atWindowEnd = await target.stats();

    progress.update(`c=${concurrency} waiting for the workflows, streams and queues to finish…`);
    const settleStart = now();
    let settledMs: number | null = null;
    try {
      await Promise.race([
        target.settle(opts.settleTimeout * 1000),
        sleep(opts.settleTimeout * 1000 + 1000).then(() => {
          throw new Error('timeout');
        }),
      ]);
      settledMs = round(now() - settleStart, 0);
    } catch (err) {
      log(
        `\nc=${concurrency}: the runtime did not settle within ${opts.settleTimeout} s (${(err as Error).message})`,
      );
    }
    progress.done();
    let profile: ProfileSummary | undefined;
    if (profiling) {
      const file = await target.profileStop!(tmpFile(`paystep-bench-checkout-c${concurrency}`, 'cpuprofile'));
      profile = { ...summarizeCpuProfile(file), label: `concurrency ${concurrency}, window + settle` };
    }
    const after = await target.stats();
    const cpuAfter = processCpuSeconds(target.pid);
    const mainAfter = processCpuSeconds(target.pid, target.pid);
    const journalsAfter = journals(target.dataDir);
    const dynamoBytesAfter = dirBytes(path.join(target.dataDir, 'dynamodb'));
    const stripeAfter = await stripeStats(target);

    const answered = samples.filter((s) => s.end <= end);
    const count = (f: (s: Sample) => string | undefined) => {
      const m: Record<string, number> = {};
      for (const s of samples) {
        const k = f(s);
        if (k !== undefined) m[k] = (m[k] ?? 0) + 1;
      }
      return m;
    };
    const payments = samples.filter((s) => s.id);
    const ids = new Set(payments.map((s) => s.id!));
    const execs = (await listExecutions(target.endpoints)).filter((e) => ids.has(e.name));
    const succeeded = execs.filter((e) => e.status === 'SUCCEEDED');
    const inWindow = succeeded.filter((e) => e.stop !== undefined && e.stop <= end);
    const lastStop = Math.max(...execs.map((e) => e.stop ?? 0));

    const n = payments.length;
    const per = (v: number) => round(v / n, 2);
    const perPayment: Record<string, number> = {};
    const byFunction: Record<string, number> = {};
    const cpu = cpuDelta(cpuBefore, cpuAfter);
    const mainCpu = cpuDelta(mainBefore, mainAfter);
    if (before && after) {
      for (const [k, v] of Object.entries(after.sdk)) {
        const d = v.count - (before.sdk[k]?.count ?? 0);
        if (d) perPayment[`sdk ${k}`] = per(d);
      }
      if (after.dynalite && before.dynalite)
        for (const [k, v] of Object.entries(after.dynalite)) {
          const d = v.count - (before.dynalite[k]?.count ?? 0);
          if (d) perPayment[`dynalite ${k}`] = per(d);
        }
      for (const [k, v] of Object.entries(after.lambdas)) {
        const d = v - (before.lambdas[k] ?? 0);
        if (d) perPayment[`lambda ${k}`] = per(d);
      }
      for (const [k, v] of Object.entries(after.sdkByFunction ?? {})) {
        const d = v.count - (before.sdkByFunction?.[k]?.count ?? 0);
        if (d) byFunction[k] = per(d);
      }
      perPayment['stream records'] = per(after.streams.captured - before.streams.captured);
      perPayment['stream records parked on the failure queue'] = per(
        after.streams.failed - before.streams.failed,
      );
      perPayment['stream batches'] = per(after.streams.batches - before.streams.batches);
    }
    for (const [k, v] of Object.entries(journalsAfter)) {
      const b = journalsBefore[k] ?? { lines: 0, bytes: 0 };
      if (v.lines - b.lines) {
        perPayment[`journal lines ${k}`] = per(v.lines - b.lines);
        perPayment[`journal bytes ${k}`] = per(v.bytes - b.bytes);
      }
    }
    perPayment['dynalite bytes on disk (growth)'] = per(dynamoBytesAfter - dynamoBytesBefore);
    if (stripeBefore && stripeAfter)
      perPayment['stripe requests'] = per(stripeAfter.requests - stripeBefore.requests);

    const meanMs = (
      a: Record<string, Counter> | null | undefined,
      b: Record<string, Counter> | null | undefined,
    ) => {
      if (!a || !b) return undefined;
      const out: Record<string, number> = {};
      for (const [k, v] of Object.entries(a)) {
        const c = v.count - (b[k]?.count ?? 0);
        if (c > 0) out[k] = round((v.ms - (b[k]?.ms ?? 0)) / c, 2);
      }
      return out;
    };

    const result: RunResult = {
      concurrency,
      durationS: opts.duration,
      requests: answered.length,
      requestsPerSecond: round(answered.length / opts.duration, 1),
      latencyMs: roundSummary(summarize(samples.map((s) => s.end - s.start))),
      httpStatus: count((s) => String(s.status)),
      paymentStatus: count((s) => s.paymentStatus),
      errors: count((s) => s.error),
      workflows: {
        payments: n,
        succeeded: succeeded.length,
        failed: execs.filter((e) => e.status !== 'SUCCEEDED' && e.status !== 'RUNNING').length,
        running: execs.filter((e) => e.status === 'RUNNING').length,
        succeededInWindow: inWindow.length,
        completedPerSecond: round(inWindow.length / opts.duration, 1),
        lastEndAfterWindowMs: round(Math.max(0, lastStop - end), 0),
        durationMs: roundSummary(summarize(execs.filter((e) => e.stop).map((e) => e.stop! - e.start))),
      },
      stream:
        atWindowEnd && before && after
          ? {
              backlogAtWindowEnd: atWindowEnd.streams.pending,
              deliveredInWindow: atWindowEnd.streams.delivered - before.streams.delivered,
              recordsPerPayment: per(after.streams.captured - before.streams.captured),
              failedInWindow: after.streams.failed - before.streams.failed,
            }
          : undefined,
      settledAfterWindowMs: settledMs,
      sustainedPerSecond: undefined,
      perPayment,
      awsCallsByFunction: byFunction,
      server: {
        cpuSeconds: cpu,
        cpuMsPerPayment: cpu ? round((cpu.total * 1000) / n, 2) : undefined,
        mainThreadCpuMsPerPayment: mainCpu ? round((mainCpu.total * 1000) / n, 2) : undefined,
        capacityPerSecond: mainCpu && opts.mode !== 'inprocess' ? round(n / mainCpu.total, 1) : undefined,
        eventLoopUtilization:
          before && atWindowEnd
            ? round(
                (atWindowEnd.elu.active - before.elu.active) /
                  (atWindowEnd.elu.active - before.elu.active + atWindowEnd.elu.idle - before.elu.idle),
                3,
              )
            : undefined,
        loopDelayMs: atWindowEnd?.loopDelay,
        gcMsPerPayment: before && after ? round((after.gc.ms - before.gc.ms) / n, 2) : undefined,
        sdkMeanMs: meanMs(atWindowEnd?.sdk, before?.sdk),
        dynaliteMeanMs: meanMs(atWindowEnd?.dynalite, before?.dynalite),
        memoryMb: after?.memoryMb,
      },
      loadGeneratorCpuSeconds: round((genCpu.user + genCpu.system) / 1e6, 2),
      machineLoad: machineLoad(machineBefore, machineEnd, cpuBefore, cpuWindowEnd, genCpu, opts),
    };
    if (result.stream && result.stream.recordsPerPayment > 0)
      result.sustainedPerSecond = round(
        Math.min(
          result.workflows.completedPerSecond,
          result.stream.deliveredInWindow / result.stream.recordsPerPayment / opts.duration,
        ),
        1,
      );
    if (opts.timelineSample > 0 && payments.length) {
      const split = await splitLatency(target, agent, payments, opts.timelineSample);
      result.phases = split.phases;
      result.processorLatencyMs = split.processor;
    }
    return { run: result, profile };
  } finally {
    agent.destroy();
  }
}

function roundSummary(s: LatencySummary): LatencySummary {
  const out = { ...s };
  for (const k of Object.keys(out) as (keyof LatencySummary)[]) if (k !== 'count') out[k] = round(out[k], 2);
  return out;
}

async function stripeStats(target: Target): Promise<{ requests: number } | undefined> {
  if (!target.endpoints.stripe) return undefined;
  try {
    const r = await fetch(`${target.endpoints.stripe}/_sim/stats`);
    return (await r.json()) as { requests: number };
  } catch {
    return undefined;
  }
}

/**
 * Splits the latency of sampled requests along their timeline events (the `at` of each event is
 * taken just before the DynamoDB write that carries it; entries written together share a phase):
 *   request sent → `created` (payment put) → `started` + `risk` (screen step's write) → `routed`
 *   (route step's write) → `attempt` + captured (authorize step's write) → answer.
 */
async function splitLatency(
  target: Target,
  agent: http.Agent,
  payments: Sample[],
  sampleSize: number,
): Promise<{ phases: RunResult['phases']; processor: LatencySummary }> {
  const step = Math.max(1, Math.floor(payments.length / sampleSize));
  const picked = payments.filter((_, i) => i % step === 0).slice(0, sampleSize);
  const base = new URL(target.url);
  const names = [
    'gateway + authorizer + idempotency claim + payment put',
    'StartExecution + execution start + screen step',
    'route step',
    'authorize: read + Stripe call + captured transition',
    'captured → response (wait + idempotency complete + HTTP)',
  ];
  const phases: number[][] = names.map(() => []);
  const processor: number[] = [];
  type Ev = { at: string; type: string; event?: string; status?: string; latency_ms?: number };
  let i = 0;
  const worker = async () => {
    while (i < picked.length) {
      const s = picked[i++]!;
      const r = await postJson(agent, base, `/v1/payments/${s.id}/timeline`, {
        authorization: `Bearer ${target.key}`,
      });
      if (r.status !== 200) continue;
      const events = (JSON.parse(r.body) as { events: Ev[] }).events;
      const at = (f: (e: Ev) => boolean) => {
        const e = events.find(f);
        return e ? Date.parse(e.at) : undefined;
      };
      const marks = [
        s.start,
        at((e) => e.type === 'created'),
        at((e) => e.type === 'risk'),
        at((e) => e.type === 'workflow' && e.event === 'routed'),
        at((e) => e.type === 'status_changed' && e.status === 'captured'),
        s.end,
      ];
      if (marks.some((m) => m === undefined)) continue;
      for (let k = 0; k < names.length; k++) phases[k]!.push(marks[k + 1]! - marks[k]!);
      const attempt = events.find((e) => e.type === 'attempt');
      if (typeof attempt?.latency_ms === 'number') processor.push(attempt.latency_ms);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return {
    phases: names.map((phase, k) => {
      const s = summarize(phases[k]!);
      return {
        phase,
        p50: round(s.p50, 1),
        p90: round(s.p90, 1),
        p99: round(s.p99, 1),
        mean: round(s.mean, 1),
      };
    }),
    processor: roundSummary(summarize(processor)),
  };
}

// =============================================================================================
// Handler overhead

interface HandlerVariant {
  variant: string;
  iterations: number;
  latencyMs: LatencySummary;
  sdkCallsPerRequest: number;
  cpuUsPerRequest: number;
  /** Cores used by other processes meanwhile (a shared machine makes the tail pessimistic). */
  otherCores?: number;
}
interface HandlerResult {
  variants: HandlerVariant[];
}

/** `--role handler <iterations>`: payments-create in this process with the AWS clients faked. */
async function handlerRole(argv: string[]): Promise<number> {
  const iterations = Number(argv[0] ?? 5000);
  let message: { type: 'result'; value?: HandlerResult; error?: string };
  try {
    message = { type: 'result', value: await measureHandler(iterations) };
  } catch (err) {
    message = { type: 'result', error: (err as Error).stack ?? String(err) };
  }
  // Exit once the answer is sent: nothing else should keep this process (or its parent) alive.
  await new Promise<void>((resolve) => process.send!(message, () => resolve()));
  process.exit(0);
}

async function measureHandler(iterations: number): Promise<HandlerResult> {
  const { envVarFor } = await import('../lib/topology.ts');
  const { physicalName } = await import('../lib/local/runtime.ts');
  const smArn = `arn:aws:states:local:000000000000:stateMachine:${physicalName('payment')}`;
  Object.assign(process.env, {
    AWS_REGION: 'local',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9',
    AWS_ENDPOINT_URL_SFN: 'http://127.0.0.1:9',
    POWERTOOLS_SERVICE_NAME: 'paystep',
    POWERTOOLS_LOG_LEVEL: 'WARN', // as the local runtime runs handlers
    [envVarFor.table('main')]: physicalName('main'),
    [envVarFor.stateMachine('payment')]: smArn,
    // No wait: the one read the handler makes answers `captured` (the mocked GetItem below), as a
    // wait woken by the captured transition would; with 8000 the wait's first poll (500 ms) would
    // be measured instead of the handler.
    PAYSTEP_SYNC_WAIT_MS: '0',
  });
  const { mockClient } = await import('aws-sdk-client-mock');
  const { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } =
    await import('@aws-sdk/lib-dynamodb');
  const { SFNClient, StartExecutionCommand } = await import('@aws-sdk/client-sfn');
  const { marshall } = await import('@aws-sdk/util-dynamodb');
  const { clients, resetClients } = await import('../lambdas/shared/aws.ts');
  const { handler } = await import('../lambdas/payments/create.ts');

  const nowS = Math.floor(Date.now() / 1000);
  const item = {
    pk: 'PAYMENT#pay_bench',
    sk: 'PAYMENT',
    kind: 'payment',
    id: 'pay_bench',
    object: 'payment',
    merchant_id: 'mch_bench',
    amount: 1050,
    currency: 'usd',
    status: 'captured',
    amount_captured: 1050,
    amount_refunded: 0,
    capture_method: 'automatic',
    payment_method: 'pm_card_visa',
    processor: 'stripe',
    processor_reference: 'pi_bench',
    failure: null,
    order_id: null,
    customer: null,
    channel: null,
    description: null,
    metadata: {},
    card: { brand: 'visa', last4: '4242', country: 'US' },
    capture_before: null,
    cancellation_reason: null,
    review: null,
    execution_arn: `${smArn.replace(':stateMachine:', ':execution:')}:pay_bench`,
    created: nowS,
    updated: nowS,
    version: 3,
    created_ms: nowS * 1000,
    gsi1pk: 'MERCHANT#mch_bench#PAYMENTS',
    gsi1sk: `${nowS * 1000}#pay_bench`,
  };
  const body = JSON.stringify({ amount: 1050, currency: 'usd', payment_method: 'pm_card_visa' });
  const event = () => ({
    resource: '/v1/payments',
    path: '/v1/payments',
    httpMethod: 'POST',
    headers: {
      Authorization: 'Bearer sk_test_bench',
      'Content-Type': 'application/json',
      'Idempotency-Key': randomUUID(),
    },
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      stage: 'v1',
      requestId: randomUUID(),
      resourcePath: '/v1/payments',
      httpMethod: 'POST',
      authorizer: { principalId: 'mch_bench', merchantId: 'mch_bench' },
    },
    body,
    isBase64Encoded: false,
  });
  const context = {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'paystep-payments-create',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:local:000000000000:function:paystep-payments-create',
    memoryLimitInMB: '512',
    awsRequestId: 'bench',
    logGroupName: '/aws/lambda/paystep-payments-create',
    logStreamName: 'local',
    getRemainingTimeInMillis: () => 15_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
  const invoke = handler as unknown as (
    e: unknown,
    c: unknown,
  ) => Promise<{ statusCode: number; body: string }>;

  const measure = async (variant: string, calls: () => number): Promise<HandlerVariant> => {
    const check = await invoke(event(), context);
    if (check.statusCode !== 201 || !check.body.includes('"captured"'))
      throw new Error(`${variant}: unexpected answer ${check.statusCode} ${check.body.slice(0, 300)}`);
    for (let i = 0; i < Math.min(1000, iterations); i++) await invoke(event(), context); // warm up
    const callsBefore = calls();
    const lat = new Float64Array(iterations);
    const cpu0 = process.cpuUsage();
    const m0 = machineCpuSeconds();
    const w0 = performance.now();
    for (let i = 0; i < iterations; i++) {
      const e = event(); // building the event is the gateway's work, not the handler's
      const t = process.hrtime.bigint();
      await invoke(e, context);
      lat[i] = Number(process.hrtime.bigint() - t) / 1e6;
    }
    const cpu = process.cpuUsage(cpu0);
    const m1 = machineCpuSeconds();
    const wall = (performance.now() - w0) / 1000;
    return {
      variant,
      iterations,
      otherCores:
        m0 && m1
          ? round(Math.max(0, (m1.busy - m0.busy - (cpu.user + cpu.system) / 1e6) / wall), 2)
          : undefined,
      latencyMs: roundSummary3(summarize(lat)),
      sdkCallsPerRequest: round((calls() - callsBefore) / iterations, 2),
      cpuUsPerRequest: round((cpu.user + cpu.system) / iterations, 1),
    };
  };

  // 1. `send` mocked: only the handler's own code (middy, parsing, validation, idempotency and
  //    payment logic, presentation) and the Document client's command objects.
  resetClients();
  const ddbMock = mockClient(DynamoDBDocumentClient);
  const sfnMock = mockClient(SFNClient);
  ddbMock.on(GetCommand).resolves({ Item: item });
  ddbMock.on(PutCommand).resolves({});
  ddbMock.on(UpdateCommand).resolves({});
  sfnMock.on(StartExecutionCommand).resolves({ executionArn: item.execution_arn, startDate: new Date() });
  const mocked = await measure(
    'handler only (SDK send mocked)',
    () => ddbMock.calls().length + sfnMock.calls().length,
  );
  ddbMock.restore();
  sfnMock.restore();

  // 2. The real SDK clients (marshalling, middleware, SigV4 signing, JSON (de)serialisation) over a
  //    transport that answers at once: what each AWS call costs in CPU before any network.
  resetClients();
  let transportCalls = 0;
  const getItemBody = Buffer.from(JSON.stringify({ Item: marshall(item, { removeUndefinedValues: true }) }));
  const startBody = Buffer.from(JSON.stringify({ executionArn: item.execution_arn, startDate: nowS }));
  const empty = Buffer.from('{}');
  const transport = {
    handle: async (request: { headers: Record<string, string> }) => {
      transportCalls++;
      const target = request.headers['x-amz-target'] ?? '';
      const b = target.endsWith('.GetItem')
        ? getItemBody
        : target.endsWith('.StartExecution')
          ? startBody
          : empty;
      return {
        response: {
          statusCode: 200,
          reason: 'OK',
          headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'bench' },
          body: new Uint8Array(b),
        },
      };
    },
    updateHttpClientConfig: () => undefined,
    httpHandlerConfigs: () => ({}),
    destroy: () => undefined,
  };
  (clients.ddb() as unknown as { config: { requestHandler: unknown } }).config.requestHandler = transport;
  (clients.sfn() as unknown as { config: { requestHandler: unknown } }).config.requestHandler = transport;
  const sdk = await measure('handler + AWS SDK clients (zero-latency transport)', () => transportCalls);
  return { variants: [mocked, sdk] };
}

function roundSummary3(s: LatencySummary): LatencySummary {
  const out = { ...s };
  for (const k of Object.keys(out) as (keyof LatencySummary)[]) if (k !== 'count') out[k] = round(out[k], 3);
  return out;
}

// =============================================================================================
// Report

const GOAL = { paymentsPerSecond: 200, p99Ms: 250, handlerP99Ms: 5 };

function printLoad(runs: RunResult[], opts: Options): void {
  console.log(
    `\nCheckout through the local runtime (mode ${opts.mode}, ${opts.duration} s windows after ${opts.warmup} s warmup)\n`,
  );
  console.log(
    table([
      [
        'concurrency',
        'req/s',
        'completed/s',
        'sustained/s',
        'p50',
        'p90',
        'p99',
        'max',
        'captured',
        'processing',
        'errors',
        'wf p50',
        'wf p99',
        'CPU ms/pay',
        'ceiling/s',
        'other load',
      ],
      ...runs.map((r) => [
        r.concurrency,
        r.requestsPerSecond,
        r.workflows.completedPerSecond,
        r.sustainedPerSecond ?? '-',
        fmtMs(r.latencyMs.p50),
        fmtMs(r.latencyMs.p90),
        fmtMs(r.latencyMs.p99),
        fmtMs(r.latencyMs.max),
        r.paymentStatus.captured ?? 0,
        r.paymentStatus.processing ?? 0,
        Object.values(r.errors).reduce((a, b) => a + b, 0),
        fmtMs(r.workflows.durationMs.p50),
        fmtMs(r.workflows.durationMs.p99),
        r.server?.cpuMsPerPayment ?? '-',
        r.server?.capacityPerSecond ?? '-',
        r.machineLoad ? `${r.machineLoad.otherCores} cores` : '-',
      ]),
    ]),
  );
  for (const r of runs) {
    console.log(`\n— concurrency ${r.concurrency}`);
    const errs = Object.entries(r.errors);
    if (errs.length) console.log(`errors: ${errs.map(([k, v]) => `${k} × ${v}`).join(', ')}`);
    console.log(
      `workflows: ${r.workflows.succeeded}/${r.workflows.payments} SUCCEEDED (${r.workflows.succeededInWindow} within the window), ` +
        `${r.workflows.failed} failed, ${r.workflows.running} still running; last ended ${r.workflows.lastEndAfterWindowMs} ms after the window`,
    );
    if (r.stream)
      console.log(
        `table stream: ${r.stream.recordsPerPayment} records per payment, ${r.stream.deliveredInWindow} delivered in the window, ` +
          `${r.stream.backlogAtWindowEnd} not yet delivered when it ended, ` +
          `${r.stream.failedInWindow} parked on the failure queue; runtime idle ` +
          (r.settledAfterWindowMs === null
            ? `not within ${opts.settleTimeout} s`
            : `${r.settledAfterWindowMs} ms`) +
          ' after the window',
      );
    const s = r.server;
    if (s)
      console.log(
        `runtime process: ${s.cpuSeconds?.total ?? '?'} CPU s (${s.cpuSeconds?.user ?? '?'} user, ${s.cpuSeconds?.system ?? '?'} sys) = ` +
          `${s.cpuMsPerPayment ?? '?'} CPU ms per payment (event-loop thread ${s.mainThreadCpuMsPerPayment ?? '?'} ms: ` +
          `ceiling ${s.capacityPerSecond ?? '?'} payments/s on a core of its own)` +
          (s.eventLoopUtilization !== undefined ? `; event loop utilisation ${s.eventLoopUtilization}` : '') +
          (s.loopDelayMs ? `, loop delay p50 ${s.loopDelayMs.p50} ms p99 ${s.loopDelayMs.p99} ms` : '') +
          (s.gcMsPerPayment !== undefined ? `; GC ${s.gcMsPerPayment} ms per payment` : '') +
          `; load generator ${r.loadGeneratorCpuSeconds} CPU s`,
      );
    if (r.machineLoad)
      console.log(
        `machine during the window: ${r.machineLoad.busyCores} cores busy = runtime ${r.machineLoad.runtimeCores} + ` +
          `load generator ${r.machineLoad.generatorCores} + other processes ${r.machineLoad.otherCores}` +
          (r.machineLoad.otherCores > 0.2 ? '  ← the machine was shared: figures are pessimistic' : ''),
      );
    if (r.phases) {
      console.log('\nlatency split (sampled payments, ms):');
      console.log(
        table([
          ['phase', 'p50', 'p90', 'p99', 'mean'],
          ...r.phases.map((p) => [p.phase, p.p50, p.p90, p.p99, p.mean]),
        ]),
      );
      if (r.processorLatencyMs)
        console.log(
          `processor call (attempt latency_ms): p50 ${r.processorLatencyMs.p50} ms, p99 ${r.processorLatencyMs.p99} ms`,
        );
    }
    if (r.awsCallsByFunction && Object.keys(r.awsCallsByFunction).length) {
      const fns = new Map<string, { calls: number; detail: string[] }>();
      for (const [k, v] of Object.entries(r.awsCallsByFunction).sort((a, b) => b[1] - a[1])) {
        const [fn, cmd] = k.split(' ');
        const f = fns.get(fn!) ?? { calls: 0, detail: [] };
        f.calls += v;
        f.detail.push(`${cmd} ${v}`);
        fns.set(fn!, f);
      }
      console.log('\nAWS calls per payment, by function:');
      console.log(
        table([
          ['function', 'invocations', 'AWS calls', 'of which'],
          ...[...fns]
            .sort((a, b) => b[1].calls - a[1].calls)
            .map(([fn, f]) => [
              fn,
              r.perPayment?.[`lambda ${fn}`] ?? '',
              round(f.calls, 2),
              f.detail.join(', '),
            ]),
        ]),
      );
    }
    if (r.perPayment) {
      console.log('\nper payment:');
      console.log(
        table([
          ['what', 'per payment', 'mean ms'],
          ...Object.entries(r.perPayment).map(([k, v]) => {
            const name = k.replace(/^(sdk|dynalite) /, '');
            const mean = k.startsWith('sdk ')
              ? r.server?.sdkMeanMs?.[name]
              : k.startsWith('dynalite ')
                ? r.server?.dynaliteMeanMs?.[name]
                : undefined;
            return [k, v, mean ?? ''];
          }),
        ]),
      );
    }
  }
  const rate = (r: RunResult) => r.sustainedPerSecond ?? r.workflows.completedPerSecond;
  const best = runs.reduce((a, b) => (rate(b) > rate(a) ? b : a));
  console.log(
    `\ngoal: ≥ ${GOAL.paymentsPerSecond} payments/s with p99 < ${GOAL.p99Ms} ms — best: ${rate(best)} sustained payments/s ` +
      `(${round((100 * rate(best)) / GOAL.paymentsPerSecond, 0)} % of goal) at concurrency ${best.concurrency}, ` +
      `p99 ${fmtMs(best.latencyMs.p99)}`,
  );
}

function printUnitCosts(costs: UnitCost[], runs: RunResult[]): void {
  console.log(
    '\nOne DynamoDB call on the idle runtime (sequential; CPU of the whole runtime process, stream delivery included)\n',
  );
  console.log(
    table([
      ['call', 'wall p50', 'wall p99', 'CPU ms/call'],
      ...costs.map((c) => [c.op, fmtMs(c.wallMs.p50), fmtMs(c.wallMs.p99), c.cpuMs]),
    ]),
  );
  const [get, put, update] = costs;
  for (const r of runs) {
    const pp = r.perPayment ?? {};
    if (!get || !put || !update || r.server?.cpuMsPerPayment === undefined) continue;
    const gets = pp['sdk DynamoDB.GetItem'] ?? 0;
    const puts = pp['sdk DynamoDB.PutItem'] ?? 0;
    const updates = pp['sdk DynamoDB.UpdateItem'] ?? 0;
    const explained = gets * get.cpuMs + puts * put.cpuMs + updates * update.cpuMs;
    console.log(
      `c=${r.concurrency}: ${gets} GetItem + ${puts} PutItem + ${updates} UpdateItem per payment ≈ ${round(explained, 1)} CPU ms ` +
        `of the ${r.server.cpuMsPerPayment} CPU ms a payment costs (${round((100 * explained) / r.server.cpuMsPerPayment, 0)} %)`,
    );
  }
}

function printProfile(p: ProfileSummary): void {
  console.log(
    `\nCPU profile of the runtime process, ${p.label ?? ''} (${p.file}, ${p.totalMs} ms of samples, idle excluded)\n`,
  );
  console.log(
    table([
      ['component (self time)', 'ms', '%'],
      ...p.components.slice(0, 20).map((c) => [c.component, c.ms, c.share]),
    ]),
  );
  console.log('');
  console.log(
    table([
      ['component (inclusive)', 'ms', '%'],
      ...p.inclusive.slice(0, 25).map((c) => [c.component, c.ms, c.share]),
    ]),
  );
  console.log('');
  console.log(
    table([
      ['function (self time)', 'where', 'ms', '%'],
      ...p.functions.map((f) => [f.fn, f.where, f.ms, f.share]),
    ]),
  );
  console.log('');
  console.log(
    table([
      ['function (inclusive, project and packages)', 'where', 'ms', '%'],
      ...p.inclusiveFunctions.map((f) => [f.fn, f.where, f.ms, f.share]),
    ]),
  );
}

function printHandler(h: HandlerResult): void {
  console.log('\npayments-create in-process (sequential invocations)\n');
  console.log(
    table([
      ['variant', 'p50', 'p90', 'p99', 'max', 'CPU µs/req', 'AWS calls/req', 'other load'],
      ...h.variants.map((v) => [
        v.variant,
        fmtMs(v.latencyMs.p50),
        fmtMs(v.latencyMs.p90),
        fmtMs(v.latencyMs.p99),
        fmtMs(v.latencyMs.max),
        v.cpuUsPerRequest,
        v.sdkCallsPerRequest,
        v.otherCores !== undefined ? `${v.otherCores} cores` : '-',
      ]),
    ]),
  );
  const own = h.variants[0];
  if (own)
    console.log(
      `goal: handler overhead p99 < ${GOAL.handlerP99Ms} ms — ${fmtMs(own.latencyMs.p99)} (${own.latencyMs.p99 < GOAL.handlerP99Ms ? 'met' : 'not met'})`,
    );
}
