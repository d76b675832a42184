/**
 * Counters the checkout bench installs in the runtime's process: AWS SDK calls by client and command
 * and by the Lambda function that made them (an AsyncLocalStorage around each invocation), the
 * DynamoDB proxy's round trips to dynalite, Lambda invocations, stream records, event-loop delay and
 * utilisation, GC, CPU and memory. The window (bench/checkout/window.ts) turns their deltas into
 * per-payment figures.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';
import type { Runtime } from '../../lib/local/runtime.ts';
import { round } from '../lib.ts';

export interface Counter {
  count: number;
  ms: number;
}

/** Counters of the runtime process (cumulative since its start, unless said otherwise). */
export interface ServerStats {
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

/** Counters installed in the runtime's process: SDK middleware, dynalite round trips, loop, GC. */
export function installProbes(rt: Runtime, clients: Record<string, unknown>) {
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
