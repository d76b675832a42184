/**
 * The worker thread of the local DynamoDB (started by lib/local/dynamodb-worker.ts `WorkerEngine`):
 * runs the storage engine (lib/local/dynamodb-engine.ts) and answers the main thread's messages.
 * The stream consumers and the failure queue are the main thread's: the engine's `deliver` and
 * `sendToFailureQueue` ask it (`call`) and wait for its `ret`; its log lines go to the main
 * thread's logger.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { DynamoEngine } from './dynamodb-engine.ts';
import {
  bufferOf,
  errorData,
  errorOf,
  ownBytes,
  postSafely,
  type FromWorker,
  type LogLevel,
  type ToWorker,
  type WorkerStart,
} from './dynamodb-worker.ts';
import type { Logger } from './log.ts';

if (!parentPort) throw new Error('lib/local/dynamodb-worker-thread.ts runs in a worker thread only');
const port: MessagePort = parentPort;
const start = workerData as WorkerStart;

const post = (message: FromWorker, transfer?: ArrayBuffer[]) => port.postMessage(message, transfer);

const LEVELS: Record<LogLevel, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

/** A pino-shaped logger whose lines the main thread's logger writes (levels below its own: none). */
function forwardingLogger(bindings: Record<string, unknown> = {}): Logger {
  const log: Record<string, unknown> = {
    level: Object.entries(LEVELS).find(([, v]) => v === start.logLevel)?.[0] ?? 'silent',
    levelVal: start.logLevel,
    isLevelEnabled: (level: LogLevel) => (LEVELS[level] ?? Infinity) >= start.logLevel,
    child: (more: Record<string, unknown>) => forwardingLogger({ ...bindings, ...more }),
  };
  for (const [level, value] of Object.entries(LEVELS) as [LogLevel, number][])
    log[level] =
      value < start.logLevel
        ? () => undefined
        : (obj: unknown, msg?: string) => {
            const fields =
              typeof obj === 'object' && obj !== null ? { ...bindings, ...obj } : { ...bindings };
            const text = typeof obj === 'string' ? obj : msg;
            postSafely(port, { t: 'log', level, obj: fields, msg: text } satisfies FromWorker);
          };
  return log as unknown as Logger;
}

// Calls to the main thread (stream consumers, the failure queue), by id.
let nextCall = 1;
const calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
function callMain(
  message:
    { op: 'deliver'; fn: string; event: DynamoDBStreamEvent } | { op: 'queue'; queue: string; body: string },
): Promise<unknown> {
  const id = nextCall++;
  return new Promise((resolve, reject) => {
    calls.set(id, { resolve, reject });
    postSafely(port, { t: 'call', id, ...message } as FromWorker & Record<string, unknown>);
  });
}

const engine = new DynamoEngine({
  dataDir: start.dataDir,
  tables: start.tables,
  tableName: (name) => {
    const physical = start.physical[name];
    if (physical === undefined) throw new Error(`no physical name for table ${name}`);
    return physical;
  },
  deliver: (fn, event) => callMain({ op: 'deliver', fn, event }),
  sendToFailureQueue: async (queue, body) => {
    await callMain({ op: 'queue', queue, body });
  },
  timeScale: start.timeScale,
  shards: start.shards,
  logger: forwardingLogger(),
  streamJournalCompactMinLines: start.streamJournalCompactMinLines,
  streamResidentRecords: start.streamResidentRecords,
});

// Stream stats, answered at once on their own port (the main thread waits for them).
start.statsPort.on('message', (n: number) => {
  start.statsPort.postMessage({ n, stats: engine.streamStats() });
  Atomics.store(start.statsFlag, 0, n);
  Atomics.notify(start.statsFlag, 0);
});

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'req':
      engine.request(m.method, m.url, m.headers, bufferOf(m.body)).then(
        (reply) => {
          const body = ownBytes(reply.body);
          post({ t: 'res', id: m.id, status: reply.status, headers: reply.headers, body }, [
            body.buffer as ArrayBuffer,
          ]);
        },
        (err: unknown) => post({ t: 'res', id: m.id, error: errorData(err) }),
      );
      return;
    case 'ret': {
      const call = calls.get(m.id);
      if (!call) return;
      calls.delete(m.id);
      if (m.ok) call.resolve(m.value);
      else call.reject(errorOf(m.error));
      return;
    }
    case 'start':
      engine.startDelivery();
      return;
    case 'drain':
      engine.drain().then(
        () => post({ t: 'drained', id: m.id }),
        (err: unknown) => post({ t: 'drained', id: m.id, error: errorData(err) }),
      );
      return;
    case 'close':
      engine.close().then(
        () => {
          start.statsPort.close();
          post({ t: 'closed', id: m.id });
        },
        (err: unknown) => post({ t: 'closed', id: m.id, error: errorData(err) }),
      );
      return;
  }
});

engine.open().then(
  () => post({ t: 'opened', indexCheck: engine.indexCheck }),
  (err: unknown) => post({ t: 'openFailed', error: errorData(err) }),
);
