/**
 * Local SQS: standard queues with visibility timeouts, receive counts, redrive to a dead-letter queue
 * and in-process consumers shaped like Lambda's SQS event source mapping. This module holds the
 * queues' semantics (send, receive, redrive, delete, visibility), their wake-up timers and the
 * consumer loops; the endpoint, the log and the wire format are their own modules:
 *
 * - An SQS-compatible endpoint (AWS JSON 1.0 protocol, `X-Amz-Target: AmazonSQS.<Operation>`, what the
 *   installed `@aws-sdk/client-sqs` speaks) so handlers use the SDK unchanged (lib/local/queues-api.ts).
 *   Queue URLs are `${endpoint}/000000000000/<name>`; the last path segment names the queue, whatever
 *   the host. SQS's errors, digests and validation are in lib/local/queues-wire.ts.
 * - Consumers: for a queue with a `consumer`, a poller receives up to `batchSize` messages and calls
 *   `invoke(consumer, SQSEvent)`. Success deletes the batch; `{ batchItemFailures }` deletes all but the
 *   listed messages; a thrown error deletes none (they come back after the visibility timeout).
 * - Time: visibility timeouts and delays are divided by `timeScale` (1 s at timeScale 1000 is 1 ms).
 *   Timestamps reported to clients are wall-clock.
 * - Durability: every change is appended to `${dataDir}/queues/<name>.jsonl` (send, receive count,
 *   delete, purge) before it is acknowledged; `start()` replays and compacts the log
 *   (lib/local/queues-journal.ts). Messages in flight when the process stopped are visible again after
 *   a restart (at-least-once, as SQS).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createLogger, type Logger } from './log.ts';
import type { LocalPermissions } from './permissions.ts';
import { listenOn } from './ports.ts';
import { SqsApi } from './queues-api.ts';
import { appendToQueueLog, loadQueueLog, sendRecord, type QueueLog } from './queues-journal.ts';
import {
  LOCAL_ACCOUNT_ID,
  LOCAL_REGION,
  SqsError,
  intParam,
  md5Hex,
  missingParameter,
  receiptInvalid,
  sqsEventRecord,
  validateAttributes,
  validateBody,
  type Message,
  type MessageAttributeValue,
} from './queues-wire.ts';

export {
  LOCAL_ACCOUNT_ID,
  LOCAL_REGION,
  md5OfMessageAttributes,
  type MessageAttributeValue,
} from './queues-wire.ts';

/** Visibility of a batch handed to an event-source consumer until its invocation ends. */
const IN_FLIGHT_MS = 12 * 3600 * 1000; // SQS's longest visibility timeout; under setTimeout's limit

export interface LocalQueueDef {
  name: string;
  /** Function invoked with batches of messages (Lambda SQS event source mapping). */
  consumer?: string;
  /** Messages per consumer batch (default 10). */
  batchSize?: number;
  visibilityTimeoutSeconds: number;
  /** Receives after which the next receive moves the message to `dlq` instead (needs `dlq`). */
  maxReceiveCount: number;
  /** Name of the dead-letter queue (another entry of `queues`). */
  dlq?: string;
}

export interface LocalQueuesOptions {
  dataDir: string;
  queues: LocalQueueDef[];
  invoke: (functionName: string, event: unknown) => Promise<unknown>;
  /** Divides visibility timeouts and delays: real ms = seconds * 1000 / timeScale (default 1). */
  timeScale?: number;
  logger?: Logger;
  /** Safety re-check of consumer queues, in ms (default 1000); consumers are also woken on every change. */
  pollIntervalMs?: number;
  /** Consumer batches in flight at once per queue (default 2). */
  consumerConcurrency?: number;
  /** Checks each calling function's grants (lib/local/permissions.ts); none when absent. */
  permissions?: LocalPermissions;
}

export interface QueueStats {
  name: string;
  /** Messages that a receive would return now. */
  visible: number;
  /** Received and not yet deleted, visibility timeout running. */
  inFlight: number;
  /** Sent with a delay that has not elapsed. */
  delayed: number;
  total: number;
  /** Consumer batches being processed. */
  batchesInFlight: number;
}

export interface SendLocalOptions {
  delaySeconds?: number;
  messageAttributes?: Record<string, MessageAttributeValue>;
}

/** A queue: its definition, its messages and log (QueueLog), and its wake-up and consumer state. */
export interface Queue extends QueueLog {
  def: LocalQueueDef;
  arn: string;
  batchSize: number;
  timer: NodeJS.Timeout | undefined;
  timerAt: number;
  waiters: Set<() => void>;
  batchesInFlight: number;
  pumpScheduled: boolean;
}

export class LocalQueues {
  private readonly dataDir: string;
  private readonly dir: string;
  private readonly queues = new Map<string, Queue>();
  private readonly invoke: LocalQueuesOptions['invoke'];
  private readonly timeScale: number;
  private readonly log: Logger;
  private readonly pollIntervalMs: number;
  private readonly concurrency: number;
  private readonly permissions?: LocalPermissions;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly changeListeners = new Set<() => void>();
  private server: Server | undefined;
  private url: string | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private started = false;
  private stopping = false;
  private readonly api: SqsApi;

  constructor(options: LocalQueuesOptions) {
    this.dataDir = options.dataDir;
    this.dir = path.join(options.dataDir, 'queues');
    this.invoke = options.invoke;
    this.timeScale = options.timeScale ?? 1;
    if (!(this.timeScale > 0)) throw new Error('timeScale must be > 0');
    this.log = options.logger ?? createLogger('queues');
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.concurrency = Math.max(1, options.consumerConcurrency ?? 2);
    this.permissions = options.permissions;
    for (const def of options.queues) {
      if (!/^[A-Za-z0-9_-]{1,80}$/.test(def.name)) throw new Error(`Invalid queue name "${def.name}"`);
      if (this.queues.has(def.name)) throw new Error(`Queue "${def.name}" declared twice`);
      this.queues.set(def.name, {
        def,
        name: def.name,
        arn: `arn:aws:sqs:${LOCAL_REGION}:${LOCAL_ACCOUNT_ID}:${def.name}`,
        batchSize: Math.min(10_000, Math.max(1, def.batchSize ?? 10)),
        messages: new Map(),
        fd: undefined,
        file: path.join(this.dir, `${def.name}.jsonl`),
        timer: undefined,
        timerAt: Infinity,
        waiters: new Set(),
        batchesInFlight: 0,
        pumpScheduled: false,
        logLines: 0,
        compactScheduled: false,
      });
    }
    for (const def of options.queues) {
      if (def.dlq && !this.queues.has(def.dlq))
        throw new Error(`Queue "${def.name}" names unknown DLQ "${def.dlq}"`);
      if (def.dlq === def.name) throw new Error(`Queue "${def.name}" cannot be its own DLQ`);
    }
    this.api = new SqsApi(
      {
        queues: this.queues,
        stopping: () => this.stopping,
        queueUrl: (name) => this.queueUrl(name),
        stats: (name) => this.stats(name),
        send: (q, body, delaySeconds, attrs) => this.send(q, body, delaySeconds, attrs),
        receive: (q, max, visibilityMs) => this.receive(q, max, visibilityMs),
        deleteByReceipt: (q, handle) => this.deleteByReceipt(q, handle),
        changeVisibility: (q, handle, seconds) => this.changeVisibility(q, handle, seconds),
        purge: (q) => this.purge(q),
        wake: (q) => this.wake(q),
        ms: (seconds) => this.ms(seconds),
      },
      this.log,
      this.permissions,
    );
  }

  /** The endpoint URL once started (`http://127.0.0.1:PORT`). */
  get endpoint(): string | undefined {
    return this.url;
  }

  /** URL of a queue, as handlers see it in their environment (`${endpoint}/000000000000/<name>`). */
  queueUrl(name: string): string {
    if (!this.url) throw new Error('LocalQueues not started');
    this.queue(name);
    return `${this.url}/${LOCAL_ACCOUNT_ID}/${name}`;
  }

  async start(port = 0): Promise<string> {
    if (this.started) throw new Error('LocalQueues already started');
    fs.mkdirSync(this.dir, { recursive: true });
    for (const q of this.queues.values()) loadQueueLog(q, this.log);
    const server = createServer((req, res) => {
      this.api.handle(req, res).catch((err: unknown) => this.api.fail(res, err));
    });
    server.keepAliveTimeout = 5000;
    await listenOn(server, port);
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    this.permissions?.serve(this.url);
    this.started = true;
    this.stopping = false;
    this.ticker = setInterval(() => {
      for (const q of this.queues.values()) if (q.def.consumer) this.schedulePump(q);
    }, this.pollIntervalMs);
    this.ticker.unref();
    for (const q of this.queues.values()) {
      this.rearm(q);
      if (q.def.consumer) this.schedulePump(q);
    }
    this.log.info(
      {
        endpoint: this.url,
        dataDir: this.dataDir,
        queues: [...this.queues.keys()],
        timeScale: this.timeScale,
      },
      'queues started',
    );
    return this.url;
  }

  /** Stops pollers, waits for consumer batches in flight, closes the endpoint and the logs. */
  async stop(): Promise<void> {
    if (!this.started || this.stopping) return;
    this.stopping = true;
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
    for (const q of this.queues.values()) {
      if (q.timer) clearTimeout(q.timer);
      q.timer = undefined;
      q.timerAt = Infinity;
      this.wake(q);
    }
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    const server = this.server;
    this.server = undefined;
    if (server) {
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), 2000);
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
    }
    for (const q of this.queues.values()) {
      if (q.fd !== undefined) {
        fs.fsyncSync(q.fd);
        fs.closeSync(q.fd);
      }
      q.fd = undefined;
    }
    this.url = undefined;
    this.started = false;
    this.changed();
    this.log.info('queues stopped');
  }

  /** Sends a message from inside the runtime (no HTTP). Returns the message id. */
  sendLocal(queue: string, body: string, options: SendLocalOptions = {}): string {
    this.assertRunning();
    const q = this.queue(queue);
    return this.send(q, body, options.delaySeconds ?? 0, options.messageAttributes).id;
  }

  /** Messages held in memory and log lines on disk, over every queue (the soak bench reports it). */
  memoryStats(): { queues: number; messages: number; logLines: number } {
    let messages = 0;
    let logLines = 0;
    for (const q of this.queues.values()) {
      messages += q.messages.size;
      logLines += q.logLines;
    }
    return { queues: this.queues.size, messages, logLines };
  }

  stats(queue: string): QueueStats {
    const q = this.queue(queue);
    const now = Date.now();
    let visible = 0;
    let inFlight = 0;
    let delayed = 0;
    for (const m of q.messages.values()) {
      if (m.visibleAt <= now) visible++;
      else if (m.receiveCount > 0) inFlight++;
      else delayed++;
    }
    return {
      name: q.name,
      visible,
      inFlight,
      delayed,
      total: q.messages.size,
      batchesInFlight: q.batchesInFlight,
    };
  }

  /**
   * Resolves when every queue with a consumer is empty and no consumer batch is in flight. Messages
   * waiting for a visibility timeout count as not empty. Rejects after `timeoutMs` if given, or if the
   * queues are stopped with work left.
   */
  async drain(options: { timeoutMs?: number } = {}): Promise<void> {
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    for (;;) {
      if (this.idle()) return;
      if (!this.started) throw new Error('LocalQueues is not running: cannot drain');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('LocalQueues.drain timed out');
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          this.changeListeners.delete(done);
          resolve();
        };
        const t = setTimeout(done, Math.min(left, 250));
        this.changeListeners.add(done);
      });
    }
  }

  private idle(): boolean {
    for (const q of this.queues.values()) {
      if (q.def.consumer && (q.messages.size > 0 || q.batchesInFlight > 0)) return false;
    }
    return true;
  }

  private changed(): void {
    for (const l of [...this.changeListeners]) l();
  }

  private queue(name: string): Queue {
    const q = this.queues.get(name);
    if (!q) throw new Error(`Unknown queue "${name}"`);
    return q;
  }

  private assertRunning(): void {
    if (!this.started) throw new Error('LocalQueues is not running');
  }

  private ms(seconds: number): number {
    return (seconds * 1000) / this.timeScale;
  }

  // ---------------------------------------------------------------- queue semantics

  private send(
    q: Queue,
    body: string,
    delaySeconds: number,
    attrs?: Record<string, MessageAttributeValue>,
  ): Message {
    validateBody(body);
    const hasAttrs = attrs && Object.keys(attrs).length > 0;
    if (hasAttrs) validateAttributes(attrs);
    const now = Date.now();
    const m: Message = {
      id: randomUUID(),
      body,
      md5: md5Hex(Buffer.from(body, 'utf8')),
      ...(hasAttrs ? { attrs } : {}),
      sentAt: now,
      receiveCount: 0,
      visibleAt: now + this.ms(delaySeconds),
    };
    appendToQueueLog(q, sendRecord(m));
    q.messages.set(m.id, m);
    this.log.debug({ queue: q.name, messageId: m.id }, 'message sent');
    if (m.visibleAt > now) this.armAt(q, m.visibleAt);
    else this.wake(q);
    this.changed();
    return m;
  }

  /** Takes up to `max` visible messages, redriving those over maxReceiveCount to the DLQ. */
  private receive(q: Queue, max: number, visibilityMs: number): Message[] {
    const now = Date.now();
    const out: Message[] = [];
    const dlq = q.def.dlq ? this.queues.get(q.def.dlq) : undefined;
    for (const m of q.messages.values()) {
      if (out.length >= max) break;
      if (m.visibleAt > now) continue;
      if (dlq && m.receiveCount + 1 > q.def.maxReceiveCount) {
        this.moveToDlq(q, dlq, m, now);
        continue;
      }
      m.receiveCount++;
      m.firstReceiveAt ??= now;
      m.visibleAt = now + visibilityMs;
      m.receipt = Buffer.from(`${q.name}\n${m.id}\n${randomBytes(12).toString('hex')}`, 'utf8').toString(
        'base64url',
      );
      appendToQueueLog(q, { op: 'recv', id: m.id, n: m.receiveCount, f: m.firstReceiveAt });
      out.push(m);
    }
    if (out.length > 0 && visibilityMs < IN_FLIGHT_MS) this.armAt(q, now + visibilityMs);
    return out;
  }

  private moveToDlq(q: Queue, dlq: Queue, m: Message, now: number): void {
    const moved: Message = {
      id: m.id,
      body: m.body,
      md5: m.md5,
      ...(m.attrs ? { attrs: m.attrs } : {}),
      sentAt: m.sentAt,
      receiveCount: 0,
      visibleAt: now,
      dlqSource: q.arn,
    };
    // Written to the DLQ before it leaves the source: a crash in between duplicates, never loses.
    appendToQueueLog(dlq, sendRecord(moved));
    dlq.messages.set(moved.id, moved);
    appendToQueueLog(q, { op: 'del', id: m.id });
    q.messages.delete(m.id);
    this.log.warn(
      { queue: q.name, dlq: dlq.name, messageId: m.id, receiveCount: m.receiveCount },
      'message moved to dead-letter queue',
    );
    this.wake(dlq);
    this.changed();
  }

  private parseReceipt(q: Queue, handle: unknown): string {
    if (typeof handle !== 'string' || !handle) throw missingParameter('ReceiptHandle');
    const parts = Buffer.from(handle, 'base64url').toString('utf8').split('\n');
    if (parts.length !== 3 || parts[0] !== q.name || !parts[1]) throw receiptInvalid(handle);
    return parts[1];
  }

  /** Deletes the message if `handle` is its latest receipt; an older or spent handle is a no-op (as SQS). */
  private deleteByReceipt(q: Queue, handle: unknown): void {
    const id = this.parseReceipt(q, handle);
    const m = q.messages.get(id);
    if (!m || m.receipt !== handle) return;
    appendToQueueLog(q, { op: 'del', id });
    q.messages.delete(id);
    this.changed();
  }

  private changeVisibility(q: Queue, handle: unknown, seconds: unknown): void {
    const id = this.parseReceipt(q, handle);
    const timeout = intParam(seconds, 'VisibilityTimeout', 0, 43200, true)!;
    const m = q.messages.get(id);
    if (!m || m.receipt !== handle) throw receiptInvalid(String(handle));
    const now = Date.now();
    if (m.visibleAt <= now) {
      throw new SqsError(
        'MessageNotInflight',
        'The message referred to is not in flight.',
        'AWS.SimpleQueueService.MessageNotInflight',
      );
    }
    m.visibleAt = now + this.ms(timeout);
    if (m.visibleAt <= now) this.wake(q);
    else this.armAt(q, m.visibleAt);
  }

  private purge(q: Queue): void {
    appendToQueueLog(q, { op: 'purge' });
    q.messages.clear();
    this.changed();
  }

  // ---------------------------------------------------------------- wake-ups

  /** Ensures a timer fires when the earliest hidden message becomes visible. */
  private armAt(q: Queue, at: number): void {
    if (this.stopping || !this.started || at >= q.timerAt) return;
    if (q.timer) clearTimeout(q.timer);
    q.timerAt = at;
    q.timer = setTimeout(() => this.onTimer(q), Math.max(0, at - Date.now()));
    q.timer.unref();
  }

  private onTimer(q: Queue): void {
    q.timer = undefined;
    q.timerAt = Infinity;
    this.rearm(q);
    this.wake(q);
    this.changed();
  }

  private rearm(q: Queue): void {
    const now = Date.now();
    let next = Infinity;
    for (const m of q.messages.values()) if (m.visibleAt > now && m.visibleAt < next) next = m.visibleAt;
    if (next < Infinity) this.armAt(q, next);
  }

  /** Wakes long polls and the consumer of a queue. */
  private wake(q: Queue): void {
    for (const w of [...q.waiters]) w();
    if (q.def.consumer) this.schedulePump(q);
  }

  // ---------------------------------------------------------------- consumers

  private schedulePump(q: Queue): void {
    if (q.pumpScheduled || this.stopping || !this.started) return;
    q.pumpScheduled = true;
    // Deferred so that messages sent in the same tick are delivered together.
    setImmediate(() => {
      q.pumpScheduled = false;
      this.pump(q);
    });
  }

  private pump(q: Queue): void {
    const consumer = q.def.consumer;
    if (!consumer || this.stopping || !this.started) return;
    while (q.batchesInFlight < this.concurrency) {
      // Invisible while its invocation runs: in AWS the visibility timeout is set well above the
      // consumer's timeout, so a running invocation never sees its messages delivered again. Time
      // scaling shrinks the timeout but not the handler's real run time, so locally the timeout
      // starts when the invocation ends (runBatch), not when the batch is received.
      const batch = this.receive(q, q.batchSize, IN_FLIGHT_MS);
      if (batch.length === 0) break;
      q.batchesInFlight++;
      const run: Promise<void> = this.runBatch(q, consumer, batch).finally(() => {
        q.batchesInFlight--;
        this.inFlight.delete(run);
        this.schedulePump(q);
        this.changed();
      });
      this.inFlight.add(run);
    }
  }

  private async runBatch(q: Queue, consumer: string, batch: Message[]): Promise<void> {
    const receipts = batch.map((m) => m.receipt!);
    try {
      await this.invokeBatch(q, consumer, batch);
    } finally {
      // What was not deleted (failed) becomes visible again after the visibility timeout.
      const at = Date.now() + this.ms(q.def.visibilityTimeoutSeconds);
      let armed = false;
      batch.forEach((m, i) => {
        if (q.messages.get(m.id) === m && m.receipt === receipts[i] && m.visibleAt > at) {
          m.visibleAt = at;
          armed = true;
        }
      });
      if (armed) this.armAt(q, at);
    }
  }

  private async invokeBatch(q: Queue, consumer: string, batch: Message[]): Promise<void> {
    const records = batch.map((m) => ({ m, receipt: m.receipt!, record: sqsEventRecord(q.arn, m) }));
    const event = { Records: records.map((r) => r.record) };
    let result: unknown;
    try {
      result = await Promise.resolve().then(() => this.invoke(consumer, event));
    } catch (err) {
      this.log.warn(
        { queue: q.name, consumer, messages: batch.length, err: errorSummary(err) },
        'consumer failed: batch will be retried after the visibility timeout',
      );
      return;
    }
    let failed = new Set<string>();
    const failures = (result as { batchItemFailures?: unknown } | null | undefined)?.batchItemFailures;
    if (Array.isArray(failures)) {
      const ids = new Set(records.map((r) => r.m.id));
      const listed = failures.map((f) => (f as { itemIdentifier?: unknown } | null)?.itemIdentifier);
      if (listed.every((id): id is string => typeof id === 'string' && ids.has(id))) {
        failed = new Set(listed);
      } else {
        // Lambda treats a response naming unknown or empty identifiers as a failure of the whole batch.
        this.log.warn({ queue: q.name, consumer }, 'invalid batchItemFailures: whole batch will be retried');
        return;
      }
      if (failed.size > 0) {
        this.log.info({ queue: q.name, consumer, failed: [...failed] }, 'partial batch failure');
      }
    }
    if (q.fd === undefined) return;
    for (const r of records) if (!failed.has(r.m.id)) this.deleteByReceipt(q, r.receipt);
  }
}

function errorSummary(err: unknown): { name?: string; message: string } {
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { message: String(err) };
}
