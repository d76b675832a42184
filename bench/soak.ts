/**
 * Soak: does the runtime's memory and disk grow with history? (`npm run bench:soak -- --help`)
 *
 * Starts the runtime in a child process on a fresh data dir, drives automatically captured
 * payments through the HTTP API with a few clients (the checkout bench's client), and every
 * `--every` payments lets the runtime settle (workflows finished, streams and queues drained) and
 * reports the runtime's RSS (and its peak while serving), V8 heap used after a full GC, external
 * and array-buffer memory, the data dir's bytes (by service) and per payment, and what each
 * component holds (executions and history events, stream records pending, queue messages,
 * simulator objects). At the end it stops the runtime, starts it again on the same data dir and
 * reports the startup time and the RSS after the restart.
 *
 * Progress goes to stderr, the JSON result to stdout.
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { parseArgs } from 'node:util';
import { dirBytes, postJson } from './checkout.ts';
import { gitInfo, log, machineInfo, numberFlag, round } from './lib.ts';
import { forkRuntime, serveCommands } from './runtime-process.ts';

const USAGE = `usage: npm run bench:soak -- [flags]

  --payments N      payments to drive in all (default 10000)
  --every N         report every N payments (default 10000; e.g. 500 for a quick run)
  --concurrency N   clients posting payments (default 4)
  --settle-timeout S seconds to wait for the runtime to settle at each report (default 600)
  --data-dir DIR    use DIR (must not exist or be empty) instead of a temporary dir
  --keep            keep the data dir at the end
  -h, --help        this text

Reports (JSON on stdout) per checkpoint: rssMb, rssPeakMb (while serving), heapUsedMb (after a
full GC), externalMb, arrayBuffersMb, disk bytes (total, per payment, by service) and the
components' sizes; then startupMs and rssMb after a restart on the same data dir.`;

interface Options {
  payments: number;
  every: number;
  concurrency: number;
  settleTimeout: number;
  dataDir?: string;
  keep: boolean;
}

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      payments: { type: 'string', default: '10000' },
      every: { type: 'string', default: '10000' },
      concurrency: { type: 'string', default: '4' },
      'settle-timeout': { type: 'string', default: '600' },
      'data-dir': { type: 'string' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return undefined;
  const payments = numberFlag('payments', values.payments, 1, 10_000_000, true);
  const every = numberFlag('every', values.every, 1, 10_000_000, true);
  return {
    payments,
    every: Math.min(every, payments),
    concurrency: numberFlag('concurrency', values.concurrency, 1, 256, true),
    settleTimeout: numberFlag('settle-timeout', values['settle-timeout'], 1, 86_400),
    dataDir: values['data-dir'],
    keep: values.keep,
  };
}

// =============================================================================================
// The runtime's process

interface MemorySample {
  rssMb: number;
  rssPeakMb: number;
  /** The storage engine's worker thread's V8 heap (lib/local/dynamodb-worker.ts), if it has one. */
  workerHeap?: { usedMb: number; totalMb: number; mallocedMb: number };
  /** V8's own allocations outside the main heap (compiler zones and the like), and their peak. */
  v8MallocedMb?: number;
  v8PeakMallocedMb?: number;
  /** RSS by kind (Linux, /proc/self/smaps): anonymous memory, and file-backed pages by file group. */
  rssByKindMb?: Record<string, number>;
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
  arrayBuffersMb: number;
  components: Record<string, Record<string, number>>;
}

const mb = (bytes: number) => round(bytes / 2 ** 20, 1);

/**
 * Where the process's resident pages are (Linux): anonymous memory (heaps, native allocations) and
 * file-backed pages mapped from each group of files (LevelDB's table files are read through
 * mmap: their pages count in RSS, though the kernel may drop them at will). Undefined elsewhere.
 */
function rssByKind(dataDir: string): Record<string, number> | undefined {
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/smaps', 'utf8');
  } catch {
    return undefined;
  }
  const kb: Record<string, number> = {};
  let group = 'anonymous';
  for (const line of text.split('\n')) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (header) {
      const file = header[1] ?? '';
      group =
        !file || file.startsWith('[')
          ? 'anonymous'
          : file.startsWith(dataDir)
            ? `data dir: ${path.relative(dataDir, file).split(path.sep)[0]}${file.endsWith('.ldb') ? ' (.ldb)' : ''}`
            : 'other files (binary, libraries)';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) kb[group] = (kb[group] ?? 0) + Number(rss[1]);
  }
  return Object.fromEntries(Object.entries(kb).map(([k, v]) => [k, round(v / 1024, 1)]));
}

/** The RSS breakdown for a progress line: `; anonymous 300, data dir: dynamodb (.ldb) 120, …`. */
const kinds = (by: Record<string, number> | undefined) =>
  by
    ? '; ' +
      Object.entries(by)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')
    : '';

/** `--role server <dataDir>`: the runtime, driven over IPC. */
async function serverRole(argv: string[]): Promise<number> {
  const dataDir = argv[0];
  if (!dataDir || !process.send) throw new Error('--role server needs a data dir and an IPC channel');
  const t0 = performance.now();
  const { startRuntime } = await import('../lib/local/runtime.ts');
  const loadedMs = performance.now() - t0;
  const t1 = performance.now();
  const rt = await startRuntime({ dataDir, port: 0, scheduler: false, timeScale: 1 });
  const startMs = performance.now() - t1;
  const { createMerchant } = await import('../lambdas/store/merchants.ts');
  let peak = process.memoryUsage.rss();
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 250);
  sampler.unref();
  const sample = async (): Promise<MemorySample> => {
    const workerHeap = await rt.dynamo.workerHeap();
    const gc = (globalThis as { gc?: () => void }).gc;
    const rssBeforeGc = process.memoryUsage.rss();
    gc?.();
    const m = process.memoryUsage();
    const v8Heap = v8.getHeapStatistics();
    const out: MemorySample = {
      rssMb: mb(rssBeforeGc),
      rssPeakMb: mb(Math.max(peak, rssBeforeGc)),
      rssByKindMb: rssByKind(dataDir),
      ...(workerHeap && { workerHeap }),
      v8MallocedMb: mb(v8Heap.malloced_memory),
      v8PeakMallocedMb: mb(v8Heap.peak_malloced_memory),
      heapUsedMb: mb(m.heapUsed),
      heapTotalMb: mb(m.heapTotal),
      externalMb: mb(m.external),
      arrayBuffersMb: mb(m.arrayBuffers),
      components: {
        stepFunctions: rt.stepFunctions.memoryStats(),
        streams: {
          pending: rt.dynamo
            .streamStats()
            .reduce((n, s) => n + s.shards.reduce((k, sh) => k + sh.pending, 0), 0),
        },
        queues: rt.queues.memoryStats(),
        ...(rt.stripe ? { stripe: rt.stripe.memoryStats() } : {}),
      },
    };
    peak = process.memoryUsage.rss();
    return out;
  };
  process.send({ type: 'ready', url: rt.url, loadedMs, startMs });
  await serveCommands(rt, {
    merchant: async () => (await createMerchant('Soak')).apiKey,
    sample: () => sample(),
  });
  process.exit(0);
}

interface Server {
  url: string;
  child: ChildProcess;
  /** From fork to ready (module load + runtime start), and the runtime's start alone. */
  readyMs: number;
  startMs: number;
  call: <T>(cmd: string, arg?: unknown) => Promise<T>;
  stop: () => Promise<void>;
}

async function startServer(dataDir: string): Promise<Server> {
  const p = await forkRuntime<{ url: string; startMs: number }>(['soak', '--role', 'server', dataDir], {
    env: { ...process.env, PAYSTEP_LOG_LEVEL: 'silent', PAYSTEP_SCHEDULER: 'off' },
    execArgv: [...process.execArgv, '--expose-gc'],
    // The handlers' own log lines are not the result: stdout carries the JSON alone.
    stdout: 'ignore',
  });
  return {
    url: p.ready.url,
    child: p.child,
    readyMs: round(p.readyMs, 0),
    startMs: round(p.ready.startMs, 0),
    call: p.call,
    stop: p.stop,
  };
}

// =============================================================================================
// Driver

/** Bytes under each top-level entry of the data dir. */
function diskBy(dataDir: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of fs.readdirSync(dataDir, { withFileTypes: true })) {
    const p = path.join(dataDir, e.name);
    out[e.name] = e.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
  }
  return out;
}

/** Posts `count` payments with `concurrency` clients; answers other than 201 are counted. */
async function drive(
  url: string,
  key: string,
  agent: http.Agent,
  count: number,
  concurrency: number,
  errors: Record<string, number>,
  onDone: () => void,
): Promise<void> {
  const base = new URL(url);
  const body = JSON.stringify({ amount: 1050, currency: 'usd', payment_method: 'pm_card_visa' });
  let issued = 0;
  const worker = async () => {
    while (issued < count) {
      issued++;
      try {
        const res = await postJson(
          agent,
          base,
          '/v1/payments',
          {
            authorization: `Bearer ${key}`,
            'content-type': 'application/json',
            'idempotency-key': randomUUID(),
          },
          body,
        );
        if (res.status !== 201) errors[String(res.status)] = (errors[String(res.status)] ?? 0) + 1;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        errors[code] = (errors[code] ?? 0) + 1;
      }
      onDone();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

interface Checkpoint extends MemorySample {
  payments: number;
  elapsedS: number;
  paymentsPerSecond: number;
  diskBytes: number;
  diskBytesPerPayment: number;
  diskBy: Record<string, number>;
  errors: Record<string, number>;
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--role' && argv[1] === 'server') return serverRole(argv.slice(2));
  let opts: Options | undefined;
  try {
    opts = parseOptions(argv);
  } catch (err) {
    console.error(`bench soak: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (!opts) {
    console.log(USAGE);
    return 0;
  }
  let dataDir: string;
  if (opts.dataDir) {
    dataDir = path.resolve(opts.dataDir);
    if (fs.existsSync(dataDir) && fs.readdirSync(dataDir).length > 0) {
      console.error(`bench soak: --data-dir ${dataDir} is not empty`);
      return 2;
    }
    fs.mkdirSync(dataDir, { recursive: true });
  } else dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-soak-'));

  const result: Record<string, unknown> = {
    bench: 'soak',
    at: new Date().toISOString(),
    machine: machineInfo(),
    loadAverage: os.loadavg().map((l) => round(l, 2)),
    git: gitInfo(),
    options: { ...opts, dataDir },
  };
  log(
    `soak: ${opts.payments} payments, report every ${opts.every}, ${opts.concurrency} clients, data ${dataDir}`,
  );
  let server = await startServer(dataDir);
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.concurrency });
  const checkpoints: Checkpoint[] = [];
  try {
    const key = await server.call<string>('merchant');
    await server.call('settle', opts.settleTimeout * 1000);
    const first = await server.call<MemorySample>('sample');
    result.initial = { ...first, diskBytes: dirBytes(dataDir), diskBy: diskBy(dataDir) };
    log(`started in ${server.readyMs} ms: RSS ${first.rssMb} MB, heap ${first.heapUsedMb} MB`);
    const t0 = performance.now();
    let done = 0;
    let lastLog = 0;
    while (done < opts.payments) {
      const batch = Math.min(opts.every - (done % opts.every), opts.payments - done);
      const errors: Record<string, number> = {};
      const tb = performance.now();
      await drive(server.url, key, agent, batch, opts.concurrency, errors, () => {
        done++;
        if (performance.now() - lastLog > 5000) {
          lastLog = performance.now();
          process.stderr.write(`  ${done}/${opts.payments} payments\n`);
        }
      });
      const batchS = (performance.now() - tb) / 1000;
      await server.call('settle', opts.settleTimeout * 1000);
      const s = await server.call<MemorySample>('sample');
      const disk = dirBytes(dataDir);
      const cp: Checkpoint = {
        payments: done,
        elapsedS: round((performance.now() - t0) / 1000, 1),
        paymentsPerSecond: round(batch / batchS, 1),
        ...s,
        diskBytes: disk,
        diskBytesPerPayment: Math.round(disk / done),
        diskBy: diskBy(dataDir),
        errors,
      };
      checkpoints.push(cp);
      log(
        `${done} payments: RSS ${cp.rssMb} MB (peak ${cp.rssPeakMb}${kinds(cp.rssByKindMb)}), heap ${cp.heapUsedMb} MB` +
          (cp.workerHeap ? ` (engine worker ${cp.workerHeap.usedMb} of ${cp.workerHeap.totalMb} MB)` : '') +
          `, V8 malloced ${cp.v8MallocedMb} MB (peak ${cp.v8PeakMallocedMb})` +
          (cp.workerHeap ? ` + worker ${cp.workerHeap.mallocedMb} MB` : '') +
          `, ` +
          `disk ${mb(disk)} MB (${round(cp.diskBytesPerPayment / 1024, 1)} KB/payment), ` +
          `${cp.paymentsPerSecond} payments/s, errors ${JSON.stringify(errors)}`,
      );
    }
    result.checkpoints = checkpoints;
    agent.destroy();
    log('restarting the runtime on the same data dir…');
    await server.stop();
    server = await startServer(dataDir);
    await server.call('settle', opts.settleTimeout * 1000);
    const after = await server.call<MemorySample>('sample');
    result.restart = {
      startMs: server.startMs,
      processReadyMs: server.readyMs,
      ...after,
      diskBytes: dirBytes(dataDir),
      diskBy: diskBy(dataDir),
    };
    log(
      `restarted: runtime start ${server.startMs} ms (process ready ${server.readyMs} ms), RSS ${after.rssMb} MB, heap ${after.heapUsedMb} MB`,
    );
  } finally {
    agent.destroy();
    await server.stop().catch(() => undefined);
    if (!opts.keep) fs.rmSync(dataDir, { recursive: true, force: true });
    else log(`data kept in ${dataDir}`);
  }
  console.log(JSON.stringify(result, null, 2));
  return 0;
}
