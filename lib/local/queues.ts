/**
 * Local SQS: standard queues with visibility timeouts, receive counts, redrive to a dead-letter queue
 * and in-process consumers shaped like Lambda's SQS event source mapping.
 *
 * - An SQS-compatible endpoint (AWS JSON 1.0 protocol, `X-Amz-Target: AmazonSQS.<Operation>`, what the
 *   installed `@aws-sdk/client-sqs` speaks) so handlers use the SDK unchanged. Queue URLs are
 *   `${endpoint}/000000000000/<name>`; the last path segment names the queue, whatever the host.
 * - Consumers: for a queue with a `consumer`, a poller receives up to `batchSize` messages and calls
 *   `invoke(consumer, SQSEvent)`. Success deletes the batch; `{ batchItemFailures }` deletes all but the
 *   listed messages; a thrown error deletes none (they come back after the visibility timeout).
 * - Time: visibility timeouts and delays are divided by `timeScale` (1 s at timeScale 1000 is 1 ms).
 *   Timestamps reported to clients are wall-clock.
 * - Durability: every change is appended to `${dataDir}/queues/<name>.jsonl` (send, receive count,
 *   delete, purge) before it is acknowledged; `start()` replays and compacts the log. Messages in flight
 *   when the process stopped are visible again after a restart (at-least-once, as SQS).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createLogger, type Logger } from './log.ts';
import { sqsAccesses, type LocalPermissions } from './permissions.ts';
import { listenOn } from './ports.ts';

/** Visibility of a batch handed to an event-source consumer until its invocation ends. */
const IN_FLIGHT_MS = 12 * 3600 * 1000; // SQS's longest visibility timeout; under setTimeout's limit

export const LOCAL_ACCOUNT_ID = '000000000000';
export const LOCAL_REGION = 'local';

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

export interface MessageAttributeValue {
  DataType: string;
  StringValue?: string;
  /** Base64, as on the wire. */
  BinaryValue?: string;
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

interface Message {
  id: string;
  body: string;
  md5: string;
  attrs?: Record<string, MessageAttributeValue>;
  sentAt: number;
  receiveCount: number;
  firstReceiveAt?: number;
  visibleAt: number;
  receipt?: string;
  /** ARN of the queue the message was dead-lettered from. */
  dlqSource?: string;
}

interface Queue {
  def: LocalQueueDef;
  name: string;
  arn: string;
  batchSize: number;
  messages: Map<string, Message>;
  fd: number | undefined;
  file: string;
  timer: NodeJS.Timeout | undefined;
  timerAt: number;
  waiters: Set<() => void>;
  batchesInFlight: number;
  pumpScheduled: boolean;
  /** Records in the log file, to decide when to compact it. */
  logLines: number;
  compactScheduled: boolean;
}

/** Log records, one JSON object a line. */
type LogRecord =
  | {
      op: 'send';
      id: string;
      body: string;
      md5: string;
      attrs?: Record<string, MessageAttributeValue>;
      t: number;
      v?: number;
      n?: number;
      f?: number;
      src?: string;
    }
  | { op: 'recv'; id: string; n: number; f: number }
  | { op: 'del'; id: string }
  | { op: 'purge' };

class SqsError extends Error {
  readonly type: string;
  readonly queryCode: string;
  readonly status: number;
  constructor(type: string, message: string, queryCode = type, status = 400) {
    super(message);
    this.name = 'SqsError';
    this.type = type;
    this.queryCode = queryCode;
    this.status = status;
  }
}

const queueDoesNotExist = () =>
  new SqsError(
    'QueueDoesNotExist',
    'The specified queue does not exist.',
    'AWS.SimpleQueueService.NonExistentQueue',
    400,
  );
const invalidParameter = (message: string) => new SqsError('InvalidParameterValue', message);
const missingParameter = (name: string) =>
  new SqsError('MissingParameter', `The request must contain the parameter ${name}.`);
const receiptInvalid = (handle: string) =>
  new SqsError(
    'ReceiptHandleIsInvalid',
    `The input receipt handle "${handle}" is not a valid receipt handle.`,
    'ReceiptHandleIsInvalid',
    404,
  );

const md5Hex = (data: string | Buffer) => createHash('md5').update(data).digest('hex');

/** MD5 of message attributes as SQS computes it (names sorted; length-prefixed name, type, value). */
export function md5OfMessageAttributes(attrs: Record<string, MessageAttributeValue>): string {
  const parts: Buffer[] = [];
  const lengthPrefixed = (b: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    parts.push(len, b);
  };
  for (const name of Object.keys(attrs).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))) {
    const a = attrs[name]!;
    lengthPrefixed(Buffer.from(name, 'utf8'));
    lengthPrefixed(Buffer.from(a.DataType, 'utf8'));
    if (a.BinaryValue !== undefined && a.StringValue === undefined) {
      parts.push(Buffer.from([2]));
      lengthPrefixed(Buffer.from(a.BinaryValue, 'base64'));
    } else {
      parts.push(Buffer.from([1]));
      lengthPrefixed(Buffer.from(a.StringValue ?? '', 'utf8'));
    }
  }
  return md5Hex(Buffer.concat(parts));
}

// Characters SQS allows in a message body.
// eslint-disable-next-line no-control-regex
const INVALID_BODY_CHARS = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
const MAX_MESSAGE_BYTES = 1024 * 1024;
/** A log is compacted while running once it has this many records and mostly dead ones. */
const COMPACT_MIN_LINES = 1000;
const BATCH_ID = /^[A-Za-z0-9_-]{1,80}$/;
const SYSTEM_ATTRIBUTES = [
  'ApproximateReceiveCount',
  'ApproximateFirstReceiveTimestamp',
  'SentTimestamp',
  'SenderId',
  'DeadLetterQueueSourceArn',
];

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
    for (const q of this.queues.values()) this.load(q);
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => this.fail(res, err));
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

  // ---------------------------------------------------------------- persistence

  private load(q: Queue): void {
    q.messages.clear();
    if (fs.existsSync(q.file)) {
      const text = fs.readFileSync(q.file, 'utf8');
      let bad = 0;
      for (const line of text.split('\n')) {
        if (!line) continue;
        let r: LogRecord;
        try {
          r = JSON.parse(line) as LogRecord;
        } catch {
          bad++; // a torn last line after a crash
          continue;
        }
        if (r.op === 'send') {
          q.messages.set(r.id, {
            id: r.id,
            body: r.body,
            md5: r.md5,
            ...(r.attrs ? { attrs: r.attrs } : {}),
            sentAt: r.t,
            receiveCount: r.n ?? 0,
            ...(r.f !== undefined ? { firstReceiveAt: r.f } : {}),
            visibleAt: r.v ?? r.t,
            ...(r.src ? { dlqSource: r.src } : {}),
          });
        } else if (r.op === 'recv') {
          const m = q.messages.get(r.id);
          if (m) {
            m.receiveCount = Math.max(m.receiveCount, r.n);
            m.firstReceiveAt ??= r.f;
          }
        } else if (r.op === 'del') {
          q.messages.delete(r.id);
        } else if (r.op === 'purge') {
          q.messages.clear();
        }
      }
      if (bad) this.log.warn({ queue: q.name, lines: bad }, 'skipped unreadable queue log lines');
    }
    this.compact(q);
    if (q.messages.size > 0) this.log.info({ queue: q.name, messages: q.messages.size }, 'queue restored');
  }

  /** Rewrites the log as one send record per live message (written aside, fsynced, renamed over). */
  private compact(q: Queue): void {
    const tmp = `${q.file}.${process.pid}.tmp`;
    const lines = [...q.messages.values()].map((m) => JSON.stringify(this.sendRecord(m)) + '\n').join('');
    fs.writeFileSync(tmp, lines);
    const tfd = fs.openSync(tmp, 'r+');
    fs.fsyncSync(tfd);
    fs.closeSync(tfd);
    if (q.fd !== undefined) fs.closeSync(q.fd);
    q.fd = undefined;
    fs.renameSync(tmp, q.file);
    q.fd = fs.openSync(q.file, 'a');
    q.logLines = q.messages.size;
  }

  private sendRecord(m: Message): LogRecord {
    return {
      op: 'send',
      id: m.id,
      body: m.body,
      md5: m.md5,
      ...(m.attrs ? { attrs: m.attrs } : {}),
      t: m.sentAt,
      ...(m.visibleAt > m.sentAt && m.receiveCount === 0 ? { v: m.visibleAt } : {}),
      ...(m.receiveCount ? { n: m.receiveCount } : {}),
      ...(m.firstReceiveAt !== undefined ? { f: m.firstReceiveAt } : {}),
      ...(m.dlqSource ? { src: m.dlqSource } : {}),
    };
  }

  private append(q: Queue, record: LogRecord): void {
    if (q.fd === undefined) throw new Error(`Queue "${q.name}" is not open`);
    fs.writeSync(q.fd, JSON.stringify(record) + '\n');
    q.logLines++;
    // Compacted later, never here: an operation appends before it updates the messages in memory.
    if (!q.compactScheduled && q.logLines > COMPACT_MIN_LINES && q.logLines > 2 * q.messages.size + 100) {
      q.compactScheduled = true;
      setImmediate(() => {
        q.compactScheduled = false;
        if (q.fd !== undefined) this.compact(q);
      });
    }
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
    this.append(q, this.sendRecord(m));
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
      this.append(q, { op: 'recv', id: m.id, n: m.receiveCount, f: m.firstReceiveAt });
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
    this.append(dlq, this.sendRecord(moved));
    dlq.messages.set(moved.id, moved);
    this.append(q, { op: 'del', id: m.id });
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
    this.append(q, { op: 'del', id });
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
    this.append(q, { op: 'purge' });
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

  private waitForMessages(q: Queue, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        q.waiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      q.waiters.add(done);
      signal.addEventListener('abort', done);
    });
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
    const records = batch.map((m) => ({ m, receipt: m.receipt!, record: this.toRecord(q, m) }));
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

  private toRecord(q: Queue, m: Message) {
    const messageAttributes: Record<string, unknown> = {};
    for (const [name, a] of Object.entries(m.attrs ?? {})) {
      messageAttributes[name] = {
        ...(a.StringValue !== undefined ? { stringValue: a.StringValue } : {}),
        ...(a.BinaryValue !== undefined ? { binaryValue: a.BinaryValue } : {}),
        stringListValues: [],
        binaryListValues: [],
        dataType: a.DataType,
      };
    }
    return {
      messageId: m.id,
      receiptHandle: m.receipt!,
      body: m.body,
      attributes: {
        ApproximateReceiveCount: String(m.receiveCount),
        SentTimestamp: String(m.sentAt),
        SenderId: LOCAL_ACCOUNT_ID,
        ApproximateFirstReceiveTimestamp: String(m.firstReceiveAt ?? m.sentAt),
        ...(m.dlqSource ? { DeadLetterQueueSourceArn: m.dlqSource } : {}),
      },
      messageAttributes,
      md5OfBody: m.md5,
      ...(m.attrs ? { md5OfMessageAttributes: md5OfMessageAttributes(m.attrs) } : {}),
      eventSource: 'aws:sqs',
      eventSourceARN: q.arn,
      awsRegion: LOCAL_REGION,
    };
  }

  // ---------------------------------------------------------------- HTTP (AWS JSON 1.0)

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = String(req.headers['x-amz-target'] ?? '');
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > 16 * MAX_MESSAGE_BYTES) throw invalidParameter('Request too large.');
      chunks.push(c);
    }
    if (req.method !== 'POST' || !target.startsWith('AmazonSQS.')) {
      throw new SqsError(
        'UnsupportedOperation',
        'Only the AWS JSON 1.0 protocol (X-Amz-Target) is supported.',
      );
    }
    let input: Record<string, unknown>;
    try {
      const text = Buffer.concat(chunks).toString('utf8');
      input = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
      if (!input || typeof input !== 'object' || Array.isArray(input)) throw new Error('not an object');
    } catch {
      throw new SqsError('SerializationException', 'The request body is not valid JSON.');
    }
    const op = target.slice('AmazonSQS.'.length);
    this.log.debug({ op }, 'sqs request');
    const denial = this.permissions?.check(req, () =>
      sqsAccesses(op, input, (name) => `arn:aws:sqs:${LOCAL_REGION}:${LOCAL_ACCOUNT_ID}:${name}`),
    );
    if (denial) throw new SqsError('AccessDeniedException', denial, 'AccessDenied', 403);
    const ac = new AbortController();
    res.on('close', () => ac.abort());
    const output = await this.dispatch(op, input, ac.signal);
    const body = Buffer.from(JSON.stringify(output), 'utf8');
    res.writeHead(200, {
      'content-type': 'application/x-amz-json-1.0',
      'content-length': body.length,
      'x-amzn-requestid': randomUUID(),
    });
    res.end(body);
  }

  private fail(res: ServerResponse, err: unknown): void {
    const e =
      err instanceof SqsError
        ? err
        : new SqsError('InternalError', 'We encountered an internal error.', 'InternalError', 500);
    if (!(err instanceof SqsError)) this.log.error({ err }, 'sqs request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = Buffer.from(
      JSON.stringify({ __type: `com.amazonaws.sqs#${e.type}`, message: e.message }),
      'utf8',
    );
    res.writeHead(e.status, {
      'content-type': 'application/x-amz-json-1.0',
      'content-length': body.length,
      'x-amzn-requestid': randomUUID(),
      'x-amzn-query-error': `${e.queryCode};${e.status >= 500 ? 'Receiver' : 'Sender'}`,
    });
    res.end(body);
  }

  private queueFromUrl(url: unknown): Queue {
    if (typeof url !== 'string' || !url) throw missingParameter('QueueUrl');
    let name: string | undefined;
    try {
      name = new URL(url).pathname.split('/').filter(Boolean).pop();
    } catch {
      throw queueDoesNotExist();
    }
    const q = name ? this.queues.get(decodeURIComponent(name)) : undefined;
    if (!q) throw queueDoesNotExist();
    return q;
  }

  private async dispatch(op: string, input: Record<string, unknown>, signal: AbortSignal): Promise<unknown> {
    // While stopping, sends and deletes are still accepted (batches in flight finish); receives get nothing.
    switch (op) {
      case 'GetQueueUrl': {
        const name = input.QueueName;
        if (typeof name !== 'string' || !name) throw missingParameter('QueueName');
        if (!this.queues.has(name)) throw queueDoesNotExist();
        return { QueueUrl: this.queueUrl(name) };
      }
      case 'ListQueues': {
        const prefix = typeof input.QueueNamePrefix === 'string' ? input.QueueNamePrefix : '';
        return {
          QueueUrls: [...this.queues.keys()].filter((n) => n.startsWith(prefix)).map((n) => this.queueUrl(n)),
        };
      }
      case 'SendMessage': {
        const q = this.queueFromUrl(input.QueueUrl);
        const m = this.sendFromInput(q, input);
        return {
          MessageId: m.id,
          MD5OfMessageBody: m.md5,
          ...(m.attrs ? { MD5OfMessageAttributes: md5OfMessageAttributes(m.attrs) } : {}),
        };
      }
      case 'SendMessageBatch': {
        const q = this.queueFromUrl(input.QueueUrl);
        const entries = batchEntries(input.Entries);
        const size = entries.reduce((n, e) => n + Buffer.byteLength(String(e.MessageBody ?? ''), 'utf8'), 0);
        if (size > MAX_MESSAGE_BYTES) {
          throw new SqsError(
            'BatchRequestTooLong',
            'Batch requests cannot be longer than 1048576 bytes.',
            'AWS.SimpleQueueService.BatchRequestTooLong',
          );
        }
        const Successful: unknown[] = [];
        const Failed: unknown[] = [];
        for (const e of entries) {
          try {
            const m = this.sendFromInput(q, e);
            Successful.push({
              Id: e.Id,
              MessageId: m.id,
              MD5OfMessageBody: m.md5,
              ...(m.attrs ? { MD5OfMessageAttributes: md5OfMessageAttributes(m.attrs) } : {}),
            });
          } catch (err) {
            if (!(err instanceof SqsError)) throw err;
            Failed.push({ Id: e.Id, SenderFault: true, Code: err.type, Message: err.message });
          }
        }
        return { Successful, Failed };
      }
      case 'ReceiveMessage':
        return this.receiveFromInput(input, signal);
      case 'DeleteMessage': {
        const q = this.queueFromUrl(input.QueueUrl);
        this.deleteByReceipt(q, input.ReceiptHandle);
        return {};
      }
      case 'DeleteMessageBatch': {
        const q = this.queueFromUrl(input.QueueUrl);
        const Successful: unknown[] = [];
        const Failed: unknown[] = [];
        for (const e of batchEntries(input.Entries)) {
          try {
            this.deleteByReceipt(q, e.ReceiptHandle);
            Successful.push({ Id: e.Id });
          } catch (err) {
            if (!(err instanceof SqsError)) throw err;
            Failed.push({ Id: e.Id, SenderFault: true, Code: err.type, Message: err.message });
          }
        }
        return { Successful, Failed };
      }
      case 'ChangeMessageVisibility': {
        const q = this.queueFromUrl(input.QueueUrl);
        this.changeVisibility(q, input.ReceiptHandle, input.VisibilityTimeout);
        return {};
      }
      case 'ChangeMessageVisibilityBatch': {
        const q = this.queueFromUrl(input.QueueUrl);
        const Successful: unknown[] = [];
        const Failed: unknown[] = [];
        for (const e of batchEntries(input.Entries)) {
          try {
            this.changeVisibility(q, e.ReceiptHandle, e.VisibilityTimeout);
            Successful.push({ Id: e.Id });
          } catch (err) {
            if (!(err instanceof SqsError)) throw err;
            Failed.push({ Id: e.Id, SenderFault: true, Code: err.type, Message: err.message });
          }
        }
        return { Successful, Failed };
      }
      case 'GetQueueAttributes':
        return { Attributes: this.attributes(this.queueFromUrl(input.QueueUrl), input.AttributeNames) };
      case 'PurgeQueue':
        this.purge(this.queueFromUrl(input.QueueUrl));
        return {};
      default:
        throw new SqsError('UnsupportedOperation', `Operation ${op} is not supported by the local queues.`);
    }
  }

  private sendFromInput(q: Queue, input: Record<string, unknown>): Message {
    const body = input.MessageBody;
    if (typeof body !== 'string' || body === '') throw missingParameter('MessageBody');
    const delay = intParam(input.DelaySeconds, 'DelaySeconds', 0, 900) ?? 0;
    const attrs = input.MessageAttributes as Record<string, MessageAttributeValue> | undefined;
    return this.send(q, body, delay, attrs && typeof attrs === 'object' ? attrs : undefined);
  }

  private async receiveFromInput(input: Record<string, unknown>, signal: AbortSignal): Promise<unknown> {
    const q = this.queueFromUrl(input.QueueUrl);
    const max = intParam(input.MaxNumberOfMessages, 'MaxNumberOfMessages', 1, 10) ?? 1;
    const visibility =
      intParam(input.VisibilityTimeout, 'VisibilityTimeout', 0, 43200) ?? q.def.visibilityTimeoutSeconds;
    const wait = intParam(input.WaitTimeSeconds, 'WaitTimeSeconds', 0, 20) ?? 0;
    const systemNames = [
      ...stringList(input.AttributeNames),
      ...stringList(input.MessageSystemAttributeNames),
    ];
    const attrNames = stringList(input.MessageAttributeNames);
    const deadline = Date.now() + wait * 1000;
    let messages: Message[] = [];
    for (;;) {
      if (this.stopping || signal.aborted) break;
      messages = this.receive(q, max, this.ms(visibility));
      const left = deadline - Date.now();
      if (messages.length > 0 || left <= 0) break;
      await this.waitForMessages(q, left, signal);
    }
    if (signal.aborted && messages.length > 0) {
      // The caller went away: make what it would have received visible again at once.
      for (const m of messages) m.visibleAt = Date.now();
      this.wake(q);
      return { Messages: [] };
    }
    return {
      Messages: messages.map((m) => {
        const system = selectSystemAttributes(m, systemNames);
        const attrs = selectMessageAttributes(m.attrs, attrNames);
        return {
          MessageId: m.id,
          ReceiptHandle: m.receipt,
          MD5OfBody: m.md5,
          Body: m.body,
          ...(system ? { Attributes: system } : {}),
          ...(attrs
            ? { MessageAttributes: attrs, MD5OfMessageAttributes: md5OfMessageAttributes(attrs) }
            : {}),
        };
      }),
    };
  }

  private attributes(q: Queue, names: unknown): Record<string, string> {
    const stats = this.stats(q.name);
    const all: Record<string, string> = {
      ApproximateNumberOfMessages: String(stats.visible),
      ApproximateNumberOfMessagesNotVisible: String(stats.inFlight),
      ApproximateNumberOfMessagesDelayed: String(stats.delayed),
      VisibilityTimeout: String(q.def.visibilityTimeoutSeconds),
      QueueArn: q.arn,
      DelaySeconds: '0',
      ReceiveMessageWaitTimeSeconds: '0',
      MaximumMessageSize: String(MAX_MESSAGE_BYTES),
      MessageRetentionPeriod: '345600',
      ...(q.def.dlq
        ? {
            RedrivePolicy: JSON.stringify({
              deadLetterTargetArn: this.queues.get(q.def.dlq)!.arn,
              maxReceiveCount: q.def.maxReceiveCount,
            }),
          }
        : {}),
    };
    const wanted = stringList(names);
    if (wanted.includes('All')) return all;
    const out: Record<string, string> = {};
    for (const n of wanted) {
      if (all[n] !== undefined) out[n] = all[n];
      else if (!KNOWN_QUEUE_ATTRIBUTES.has(n))
        throw new SqsError('InvalidAttributeName', `Unknown Attribute ${n}.`);
    }
    return out;
  }
}

const KNOWN_QUEUE_ATTRIBUTES = new Set([
  'ApproximateNumberOfMessages',
  'ApproximateNumberOfMessagesNotVisible',
  'ApproximateNumberOfMessagesDelayed',
  'VisibilityTimeout',
  'QueueArn',
  'DelaySeconds',
  'ReceiveMessageWaitTimeSeconds',
  'MaximumMessageSize',
  'MessageRetentionPeriod',
  'RedrivePolicy',
  'Policy',
  'CreatedTimestamp',
  'LastModifiedTimestamp',
  'KmsMasterKeyId',
  'KmsDataKeyReusePeriodSeconds',
  'SqsManagedSseEnabled',
  'RedriveAllowPolicy',
  'FifoQueue',
  'ContentBasedDeduplication',
  'DeduplicationScope',
  'FifoThroughputLimit',
]);

function validateBody(body: string): void {
  if (body === '') throw missingParameter('MessageBody');
  if (Buffer.byteLength(body, 'utf8') > MAX_MESSAGE_BYTES) {
    throw invalidParameter(
      `One or more parameters are invalid. Reason: Message must be shorter than ${MAX_MESSAGE_BYTES} bytes.`,
    );
  }
  if (INVALID_BODY_CHARS.test(body)) {
    throw new SqsError('InvalidMessageContents', 'Invalid characters found in the message body.');
  }
}

function validateAttributes(attrs: Record<string, MessageAttributeValue>): void {
  const names = Object.keys(attrs);
  if (names.length > 10)
    throw invalidParameter(
      'Number of message attributes [' + names.length + '] exceeds the allowed maximum [10].',
    );
  for (const name of names) {
    const a = attrs[name];
    if (!a || typeof a.DataType !== 'string' || !/^(String|Number|Binary)(\..+)?$/.test(a.DataType)) {
      throw invalidParameter(`The message attribute '${name}' has an invalid message attribute type.`);
    }
    const binary = a.DataType.startsWith('Binary');
    if (binary ? typeof a.BinaryValue !== 'string' : typeof a.StringValue !== 'string') {
      throw invalidParameter(
        `The message attribute '${name}' must contain a non-empty message attribute value.`,
      );
    }
  }
}

function intParam(
  value: unknown,
  name: string,
  min: number,
  max: number,
  required = false,
): number | undefined {
  if (value === undefined || value === null) {
    if (required) throw missingParameter(name);
    return undefined;
  }
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw invalidParameter(
      `Value ${String(value)} for parameter ${name} is invalid. Reason: must be between ${min} and ${max}.`,
    );
  }
  return n;
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function batchEntries(value: unknown): Record<string, unknown>[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new SqsError(
      'EmptyBatchRequest',
      'There should be at least one SendMessageBatchRequestEntry in the request.',
      'AWS.SimpleQueueService.EmptyBatchRequest',
    );
  }
  if (value.length > 10) {
    throw new SqsError(
      'TooManyEntriesInBatchRequest',
      `Maximum number of entries per request are 10. You have sent ${value.length}.`,
      'AWS.SimpleQueueService.TooManyEntriesInBatchRequest',
    );
  }
  const seen = new Set<string>();
  for (const e of value as Record<string, unknown>[]) {
    const id = e?.Id;
    if (typeof id !== 'string' || !BATCH_ID.test(id)) {
      throw new SqsError(
        'InvalidBatchEntryId',
        'A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.',
        'AWS.SimpleQueueService.InvalidBatchEntryId',
      );
    }
    if (seen.has(id)) {
      throw new SqsError(
        'BatchEntryIdsNotDistinct',
        `Id ${id} repeated.`,
        'AWS.SimpleQueueService.BatchEntryIdsNotDistinct',
      );
    }
    seen.add(id);
  }
  return value as Record<string, unknown>[];
}

function selectSystemAttributes(m: Message, names: string[]): Record<string, string> | undefined {
  if (names.length === 0) return undefined;
  const all: Record<string, string> = {
    ApproximateReceiveCount: String(m.receiveCount),
    ApproximateFirstReceiveTimestamp: String(m.firstReceiveAt ?? m.sentAt),
    SentTimestamp: String(m.sentAt),
    SenderId: LOCAL_ACCOUNT_ID,
    ...(m.dlqSource ? { DeadLetterQueueSourceArn: m.dlqSource } : {}),
  };
  const wantAll = names.includes('All');
  const out: Record<string, string> = {};
  for (const n of SYSTEM_ATTRIBUTES)
    if ((wantAll || names.includes(n)) && all[n] !== undefined) out[n] = all[n];
  return Object.keys(out).length > 0 ? out : undefined;
}

function selectMessageAttributes(
  attrs: Record<string, MessageAttributeValue> | undefined,
  names: string[],
): Record<string, MessageAttributeValue> | undefined {
  if (!attrs || names.length === 0) return undefined;
  const out: Record<string, MessageAttributeValue> = {};
  for (const [name, value] of Object.entries(attrs)) {
    const wanted = names.some(
      (n) => n === 'All' || n === '.*' || n === name || (n.endsWith('.*') && name.startsWith(n.slice(0, -1))),
    );
    if (wanted) out[name] = value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function errorSummary(err: unknown): { name?: string; message: string } {
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { message: String(err) };
}
