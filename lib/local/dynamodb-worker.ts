/**
 * The local DynamoDB's storage engine in a worker thread, so that the runtime uses both cores.
 *
 * dynalite (validation, expression semantics, LevelDB) was the largest share of the runtime's one
 * event loop, the platform's throughput ceiling (docs/performance.md). `WorkerEngine` runs the
 * whole storage engine (lib/local/dynamodb-engine.ts: dynalite, the tables, the index check, and the
 * streams with their capture, journal, recovery, delivery loops and checkpoints) in a
 * `worker_threads` Worker (lib/local/dynamodb-worker-thread.ts). The main thread keeps what is the
 * caller's: the SDK request handler and the proxy (lib/local/dynamodb-inprocess.ts,
 * lib/local/dynamodb.ts), the permissions, the batch split, and the invocations of the stream
 * consumers and the failure queue, which the engine asks for.
 *
 * Nothing of the engine's logic is split between the threads: capture, journal and delivery
 * bookkeeping run together in the worker as they did in one thread, so every guarantee of
 * lib/local/dynamodb-streams.ts holds as written there. In particular a record joins delivery
 * after its write landed and before dynalite answers, and the answer crosses to the main thread
 * after that (one ordered port), so a `drain()` issued after a caller got its answer waits for its
 * record. A SIGKILL ends both threads at once, as it ended the one before.
 *
 * The messages (one MessagePort, in order):
 *
 * - main → worker: `req` (a DynamoDB request: method, url, headers, body bytes), `start` (the
 *   delivery loops), `drain`, `close`, and `ret` (the outcome of a `call`).
 * - worker → main: `opened`, `res` (status, headers, body bytes), `drained`, `closed`, `log` (the
 *   engine's log lines, written by the main thread's logger) and `call` (invoke a stream consumer,
 *   send to the failure queue).
 *
 * Bodies cross as bytes in an ArrayBuffer of their own, transferred, not cloned: the worker's answer
 * (the large side: Query and Scan results) is moved as it was encoded, unless it sits in Node's
 * shared pool for small buffers (then one copy of < 4 KB); a request body is copied once on the main
 * thread (it may be the SDK's own bytes, which a retry sends again), never cloned as well.
 *
 * `streamStats()` stays synchronous and exact: the main thread asks on a port of its own and waits
 * for the answer (`Atomics.wait`, at most STATS_TIMEOUT_MS; the worker never waits for the main
 * thread, so it always answers).
 *
 * An uncaught error in the worker ends the process, as it did in one thread (e.g. dynalite 4
 * throws a LevelDB write error out of a callback): the next start recovers as after any crash. Only
 * while the engine is being closed (a stop, or a start that failed, e.g. on a data dir whose
 * LevelDB another process holds) it fails the close instead.
 */
import type http from 'node:http';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import type { TableDef } from '../topology.ts';
import type { IndexCheck, Reply } from './dynalite.ts';
import type { Engine, EngineOptions } from './dynamodb-engine.ts';
import { errorMessage, type StreamStats } from './dynamodb-streams.ts';
import type { Logger } from './log.ts';

/** What the worker is started with (structured-cloned; the ports and flag are shared). */
export interface WorkerStart {
  dataDir: string;
  tables: Record<string, TableDef>;
  /** Physical table names by topology name (`tableName` is a function: it cannot cross). */
  physical: Record<string, string>;
  timeScale: number;
  shards: number;
  streamJournalCompactMinLines?: number;
  streamResidentRecords?: number;
  /** pino level value of the main thread's logger: lines below it are not sent. */
  logLevel: number;
  statsPort: MessagePort;
  /** Int32Array over a SharedArrayBuffer: set to the answered stats request's number. */
  statsFlag: Int32Array;
}

export interface ErrorData {
  name: string;
  message: string;
}

export type ToWorker =
  | { t: 'req'; id: number; method: string; url: string; headers: http.OutgoingHttpHeaders; body: Uint8Array }
  | { t: 'start' }
  | { t: 'drain'; id: number }
  | { t: 'close'; id: number }
  | { t: 'ret'; id: number; ok: true; value: unknown }
  | { t: 'ret'; id: number; ok: false; error: ErrorData };

export type FromWorker =
  | { t: 'opened'; indexCheck: IndexCheck | null }
  | { t: 'openFailed'; error: ErrorData }
  | { t: 'res'; id: number; status: number; headers: http.OutgoingHttpHeaders; body: Uint8Array }
  | { t: 'res'; id: number; error: ErrorData }
  | { t: 'drained'; id: number; error?: ErrorData }
  | { t: 'closed'; id: number; error?: ErrorData }
  | { t: 'log'; level: LogLevel; obj: unknown; msg: string | undefined }
  | { t: 'call'; id: number; op: 'deliver'; fn: string; event: DynamoDBStreamEvent }
  | { t: 'call'; id: number; op: 'queue'; queue: string; body: string };

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/** How long `streamStats()` waits for the worker before answering with the last stats it had. */
const STATS_TIMEOUT_MS = 5_000;

export const errorData = (err: unknown): ErrorData =>
  err instanceof Error ? { name: err.name, message: err.message } : { name: 'Error', message: String(err) };

/** An Error that `errorMessage` (lib/local/dynamodb-delivery.ts) shows as the original did. */
export function errorOf(data: ErrorData): Error {
  const err = new Error(data.message);
  err.name = data.name;
  return err;
}

/** `bytes` in an ArrayBuffer of their own, to transfer: a copy only if they share theirs. */
export function ownBytes(bytes: Uint8Array): Uint8Array {
  const buffer = bytes.buffer;
  if (buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === buffer.byteLength)
    return bytes;
  return new Uint8Array(bytes);
}

/** A Buffer over the bytes a message brought (no copy). */
export const bufferOf = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** Posts `message`, or (something in it cannot be cloned) a JSON-safe copy of it. */
export function postSafely(port: { postMessage(m: unknown): void }, message: Record<string, unknown>): void {
  try {
    port.postMessage(message);
  } catch {
    port.postMessage(JSON.parse(JSON.stringify(message)) as unknown);
  }
}

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (err: Error) => void;
}

/** The storage engine in a worker thread, driven from the main thread. */
export class WorkerEngine implements Engine {
  indexCheck: IndexCheck | null = null;
  private readonly opts: EngineOptions;
  private readonly log: Logger;
  private worker?: Worker;
  private statsPort?: MessagePort;
  private statsFlag?: Int32Array;
  private statsAsked = 0;
  private lastStats: StreamStats[] = [];
  private nextId = 1;
  private readonly requests = new Map<number, Waiter<Reply>>();
  private readonly waits = new Map<number, Waiter<void>>();
  private opening?: Waiter<void>;
  /** Set once the worker ended or failed: every later call fails with it. */
  private dead?: Error;
  private closing = false;

  constructor(opts: EngineOptions) {
    this.opts = opts;
    this.log = opts.logger;
  }

  open(): Promise<void> {
    if (this.worker) return Promise.reject(new Error('dynamodb worker already open'));
    const channel = new MessageChannel();
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const physical: Record<string, string> = {};
    for (const name of Object.keys(this.opts.tables)) physical[name] = this.opts.tableName(name);
    const start: WorkerStart = {
      dataDir: this.opts.dataDir,
      tables: this.opts.tables,
      physical,
      timeScale: this.opts.timeScale,
      shards: this.opts.shards,
      streamJournalCompactMinLines: this.opts.streamJournalCompactMinLines,
      streamResidentRecords: this.opts.streamResidentRecords,
      logLevel: (this.log as { levelVal?: number }).levelVal ?? 30,
      statsPort: channel.port2,
      statsFlag: flag,
    };
    const worker = new Worker(new URL('./dynamodb-worker-thread.ts', import.meta.url), {
      workerData: start,
      transferList: [channel.port2],
    });
    this.worker = worker;
    this.statsPort = channel.port1;
    this.statsPort.unref();
    this.statsFlag = flag;
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (err) => this.onError(err));
    worker.on('exit', (code) => this.onExit(code));
    return new Promise<void>((resolve, reject) => (this.opening = { resolve, reject }));
  }

  startDelivery(): void {
    this.post({ t: 'start' });
  }

  request(method: string, url: string, headers: http.OutgoingHttpHeaders, body: Buffer): Promise<Reply> {
    if (this.dead || !this.worker) return Promise.reject(this.dead ?? new Error('local dynamodb is stopped'));
    const id = this.nextId++;
    // One copy of the request (the caller's bytes may be reused, e.g. by an SDK retry), then moved.
    const bytes = new Uint8Array(body);
    return new Promise<Reply>((resolve, reject) => {
      this.requests.set(id, { resolve, reject });
      this.worker?.postMessage({ t: 'req', id, method, url, headers, body: bytes } satisfies ToWorker, [
        bytes.buffer,
      ]);
    });
  }

  drain(): Promise<void> {
    if (!this.worker) return Promise.resolve();
    return this.wait((id) => ({ t: 'drain', id }));
  }

  async workerHeap(): Promise<{ usedMb: number; totalMb: number; mallocedMb: number } | undefined> {
    if (!this.worker || this.dead) return undefined;
    const h = await this.worker.getHeapStatistics();
    const mb = (n: number) => Math.round((n / 2 ** 20) * 10) / 10;
    return {
      usedMb: mb(h.used_heap_size),
      totalMb: mb(h.total_heap_size),
      mallocedMb: mb(h.malloced_memory),
    };
  }

  streamStats(): StreamStats[] {
    const port = this.statsPort;
    const flag = this.statsFlag;
    if (!port || !flag || this.dead) return this.worker ? this.lastStats : [];
    const n = ++this.statsAsked;
    port.postMessage(n);
    const deadline = Date.now() + STATS_TIMEOUT_MS;
    for (;;) {
      // Answers to earlier asks that timed out come first: skip them.
      for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
        const answer = m.message as { n: number; stats: StreamStats[] };
        if (answer.n === n) return (this.lastStats = answer.stats);
      }
      const left = deadline - Date.now();
      if (left <= 0) break;
      // The worker posts its answer, then sets the flag to its number: wait while it is another.
      const seen = Atomics.load(flag, 0);
      if (seen !== n) Atomics.wait(flag, 0, seen, left);
    }
    this.log.warn({ waitedMs: STATS_TIMEOUT_MS }, 'dynamodb worker did not answer for stream stats');
    return this.lastStats;
  }

  async close(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.closing = true;
    try {
      if (!this.dead) await this.wait((id) => ({ t: 'close', id }));
    } finally {
      this.lastStats = [];
      this.statsPort?.close();
      this.statsPort = undefined;
      await worker.terminate();
      this.worker = undefined;
    }
  }

  private post(message: ToWorker): void {
    this.worker?.postMessage(message);
  }

  private wait(message: (id: number) => ToWorker): Promise<void> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.waits.set(id, { resolve, reject });
      this.post(message(id));
    });
  }

  private onMessage(m: FromWorker): void {
    switch (m.t) {
      case 'res': {
        const waiter = this.requests.get(m.id);
        if (!waiter) return;
        this.requests.delete(m.id);
        if ('error' in m) waiter.reject(errorOf(m.error));
        else waiter.resolve({ status: m.status, headers: m.headers, body: bufferOf(m.body) });
        return;
      }
      case 'call':
        void this.answer(m);
        return;
      case 'log':
        this.writeLog(m.level, m.obj, m.msg);
        return;
      case 'drained':
      case 'closed': {
        const waiter = this.waits.get(m.id);
        if (!waiter) return;
        this.waits.delete(m.id);
        if (m.error) waiter.reject(errorOf(m.error));
        else waiter.resolve();
        return;
      }
      case 'opened':
        this.indexCheck = m.indexCheck;
        this.opening?.resolve();
        this.opening = undefined;
        return;
      case 'openFailed': {
        const opening = this.opening;
        this.opening = undefined;
        void this.close()
          .catch(() => undefined)
          .finally(() => opening?.reject(errorOf(m.error)));
        return;
      }
    }
  }

  /** A stream consumer's invocation or a failure-queue send the engine asked for. */
  private async answer(m: Extract<FromWorker, { t: 'call' }>): Promise<void> {
    let reply: ToWorker;
    try {
      const value =
        m.op === 'deliver'
          ? await this.opts.deliver(m.fn, m.event)
          : await this.opts.sendToFailureQueue(m.queue, m.body);
      reply = { t: 'ret', id: m.id, ok: true, value };
    } catch (err) {
      reply = { t: 'ret', id: m.id, ok: false, error: errorData(err) };
    }
    // The engine may have stopped meanwhile (deliveries in flight are not awaited).
    if (this.worker && !this.dead) postSafely(this.worker, reply);
  }

  private writeLog(level: LogLevel, obj: unknown, msg: string | undefined): void {
    const log = this.log as unknown as Record<LogLevel, (o: unknown, m?: string) => void>;
    log[level]?.call(this.log, obj ?? {}, msg);
  }

  private fail(err: Error): void {
    this.dead ??= err;
    for (const w of this.requests.values()) w.reject(err);
    this.requests.clear();
    for (const w of this.waits.values()) w.reject(err);
    this.waits.clear();
  }

  private onError(err: Error): void {
    const opening = this.opening;
    this.opening = undefined;
    this.fail(err);
    if (opening) return opening.reject(err);
    if (this.closing) {
      // The engine was being closed (a stop, or a start that failed): nothing is left to lose, and
      // the stop is not marked clean, so the next start checks as after a crash.
      this.log.error({ err: errorMessage(err) }, 'dynamodb worker failed while closing');
      return;
    }
    this.log.fatal({ err: errorMessage(err) }, 'dynamodb worker failed');
    // As in one thread: an uncaught error of the storage engine ends the process.
    process.nextTick(() => {
      throw err;
    });
  }

  private onExit(code: number): void {
    const err = new Error(`local dynamodb worker exited (code ${code})`);
    const opening = this.opening;
    this.opening = undefined;
    this.fail(err);
    opening?.reject(err);
    if (!this.closing) this.log.error({ code }, 'dynamodb worker exited');
  }
}
