/**
 * Local DynamoDB with streams.
 *
 * dynalite (DynamoDB on LevelDB, data in `<dataDir>/dynamodb`) answers the DynamoDB API through its
 * own request handler, called in this process (lib/local/dynalite.ts `callDynalite`; its server
 * never listens), in a worker thread of its own by default (lib/local/dynamodb-worker.ts: the
 * storage engine, lib/local/dynamodb-engine.ts, with the stream capture, journal and delivery
 * loops; PAYSTEP_DYNAMODB_WORKER=0 or the `worker: false` option keeps it on the main thread). It has no Streams, no TTL expiry (items past their `ttlAttribute` stay until deleted)
 * and no TransactWriteItems/TransactGetItems (it answers UnknownOperationException). Callers reach
 * it through a proxy — the endpoint handed to them as AWS_ENDPOINT_URL_DYNAMODB over HTTP, and
 * `handleRequest` without a socket for the SDK clients of the handlers in this process
 * (`clients.ddb()`) — that checks the caller's grants and forwards every request unchanged,
 * answering with dynalite's own status and bytes; writes to stream-enabled tables are captured to
 * produce DynamoDB Streams records (NEW_AND_OLD_IMAGES):
 *
 * - PutItem, UpdateItem, DeleteItem: the images come from the write itself. dynalite, under its own
 *   per-item lock, reads the item (old image, also what its condition check uses), computes the
 *   item it will store (new image) and writes it; just before that write it hands both images to
 *   the stream capture (lib/local/dynamodb-streams.ts; lib/local/dynalite.ts `WriteCapture`),
 *   which appends the INSERT, MODIFY or REMOVE record to the stream journal (nothing when the write changes nothing, as DynamoDB does). The
 *   record joins its shard's delivery queue once the write landed in LevelDB (and every earlier
 *   record of the shard did), before the client gets its answer. No read before or after a write,
 *   and records are numbered in the order dynalite applies the writes.
 * - BatchWriteItem touching a stream-enabled table is split into single PutItem/DeleteItem calls
 *   (so its records come in request order; dynalite would apply them in parallel), answered with
 *   an empty UnprocessedItems.
 * - Crash safety of the data: an item and its index entries are written in one LevelDB batch
 *   (lib/local/dynalite.ts; dynalite alone writes them one by one, so a crash could leave a GSI
 *   listing an item that GetItem does not find). After a stop that was not clean, the indexes are
 *   checked against the items at start (and repaired from them, for data written before).
 * - Streams (capture, crash safety, recovery): lib/local/dynamodb-streams.ts; their delivery:
 *   lib/local/dynamodb-delivery.ts; their checkpoints: lib/local/stream-checkpoints.ts; the path without sockets:
 *   lib/local/dynamodb-inprocess.ts.
 *
 * This file is the main thread's part: the proxy (HTTP endpoint and `handleRequest`), the caller's
 * grants, the batch split; the storage engine answers its requests.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32 } from 'node:zlib';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import type { TableDef } from '../topology.ts';
import type { IndexCheck, Reply } from './dynalite.ts';
import { DynamoEngine, TARGET_PREFIX, type Engine, type EngineOptions } from './dynamodb-engine.ts';
import {
  errorMessage,
  keyOf,
  LOCAL_ACCOUNT,
  LOCAL_REGION,
  type Image,
  type ShardStats,
  type StreamFailure,
  type StreamStats,
} from './dynamodb-streams.ts';
import { WorkerEngine } from './dynamodb-worker.ts';
import { createLogger, type Logger } from './log.ts';
import { dynamodbAccesses, type LocalPermissions } from './permissions.ts';
import { listenOn } from './ports.ts';
import { registerInProcess, unregisterInProcess } from './dynamodb-inprocess.ts';

export { LOCAL_ACCOUNT, LOCAL_REGION, type ShardStats, type StreamFailure, type StreamStats };
const TABLE_ARN_PREFIX = `arn:aws:dynamodb:${LOCAL_REGION}:${LOCAL_ACCOUNT}:table/`;

export interface LocalDynamoOptions {
  dataDir: string;
  /** Tables from the topology, keyed by topology name. */
  tables: Record<string, TableDef>;
  /** Physical table name of a topology table (the runtime uses `paystep-<name>`). */
  tableName: (topologyName: string) => string;
  /**
   * Invokes the stream consumer; may return a partial batch response. Throwing fails the batch.
   * Must not change the event (a retry delivers the same records): the runtime's Lambda invoker
   * hands the function a copy.
   */
  deliver: (functionName: string, event: DynamoDBStreamEvent) => Promise<unknown>;
  /** On-failure destination for records that still fail after the retries. */
  sendToFailureQueue: (queueName: string, body: string) => Promise<void>;
  /** Retry backoffs run this many times faster. Default 1. */
  timeScale?: number;
  logger?: Logger;
  /** Shards per stream (parallel delivery lanes; order is kept per item). Default 4. */
  shards?: number;
  /** Checks each calling function's grants (lib/local/permissions.ts); none when absent. */
  permissions?: LocalPermissions;
  /** Lines after which a stream journal may be compacted while running (lib/local/dynamodb-streams.ts). */
  streamJournalCompactMinLines?: number;
  /** Records of a stream shard kept in memory; the rest wait in the journal (lib/local/dynamodb-streams.ts). */
  streamResidentRecords?: number;
  /**
   * Run the storage engine (dynalite, the streams) in a worker thread (lib/local/dynamodb-worker.ts).
   * Default: on, unless PAYSTEP_DYNAMODB_WORKER=0.
   */
  worker?: boolean;
}

const HOP_BY_HOP = new Set([
  'host',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'expect',
]);
function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function jsonReply(status: number, data: unknown, contentType = 'application/x-amz-json-1.0'): Reply {
  const body = Buffer.from(JSON.stringify(data));
  return {
    status,
    body,
    headers: {
      'content-type': contentType,
      'x-amz-crc32': String(crc32(body)),
      'x-amzn-requestid': randomUUID().replace(/-/g, '').toUpperCase(),
    },
  };
}

/** Requests that change data (what a crash test counts as kill points). */
const WRITE_OPS = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'TransactWriteItems']);

export class LocalDynamo {
  /**
   * Called for every write request: `before` it is applied, and once it is `applied` (stream
   * record captured) but before the caller hears of it. The crash tests kill the process from here
   * to stop it at an exact point of a request (test/integration/crash.test.ts).
   */
  writeObserver?: (phase: 'before' | 'applied', op: string) => void;

  private readonly opts: LocalDynamoOptions;
  private readonly log: Logger;
  private readonly timeScale: number;
  private readonly shardCount: number;
  /** The definitions of the stream-enabled tables, by physical name (for the batch split). */
  private readonly streamDefs = new Map<string, TableDef>();
  /** The storage engine (dynalite and the streams), while started. */
  private engine?: Engine;
  /** The endpoint this store serves to SDK clients in this process without a socket. */
  private inProcessEndpoint?: string;
  private proxy?: http.Server;
  private inFlightRequests = 0;
  private idleWaiters: (() => void)[] = [];
  private stopping = false;
  /**
   * The index check of the last start (lib/local/dynalite.ts): null when it was skipped because the
   * store had been stopped cleanly.
   */
  indexCheck: IndexCheck | null = null;

  constructor(opts: LocalDynamoOptions) {
    this.opts = opts;
    this.log = opts.logger ?? createLogger('dynamodb');
    this.timeScale = opts.timeScale ?? 1;
    if (!(this.timeScale > 0)) throw new Error(`time scale must be a positive number, got ${opts.timeScale}`);
    this.shardCount = opts.shards ?? 4;
    if (!Number.isInteger(this.shardCount) || this.shardCount < 1)
      throw new Error(`shards must be a positive integer, got ${opts.shards}`);
    for (const [name, def] of Object.entries(opts.tables))
      if (def.stream) this.streamDefs.set(opts.tableName(name), def);
  }

  /** Whether the storage engine runs in a worker thread (the default; PAYSTEP_DYNAMODB_WORKER=0: not). */
  get inWorker(): boolean {
    return this.opts.worker ?? process.env.PAYSTEP_DYNAMODB_WORKER !== '0';
  }

  /**
   * Opens the storage engine (dynalite, missing tables, the index check, stream recovery), listens,
   * then starts stream delivery; returns the endpoint.
   */
  async start(port = 0): Promise<string> {
    if (this.engine) throw new Error('LocalDynamo already started');
    this.stopping = false;
    const options: EngineOptions = {
      dataDir: this.opts.dataDir,
      tables: this.opts.tables,
      tableName: this.opts.tableName,
      deliver: this.opts.deliver,
      sendToFailureQueue: this.opts.sendToFailureQueue,
      timeScale: this.timeScale,
      shards: this.shardCount,
      logger: this.log,
      streamJournalCompactMinLines: this.opts.streamJournalCompactMinLines,
      streamResidentRecords: this.opts.streamResidentRecords,
    };
    const engine = this.inWorker ? new WorkerEngine(options) : new DynamoEngine(options);
    await engine.open();
    this.engine = engine;
    this.indexCheck = engine.indexCheck;

    const proxy = http.createServer((req, res) => void this.handle(req, res));
    proxy.keepAliveTimeout = 5000;
    this.proxy = proxy;
    await listenOn(proxy, port);
    engine.startDelivery();
    const endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    this.opts.permissions?.serve(endpoint);
    this.inProcessEndpoint = endpoint;
    registerInProcess(endpoint, this);
    this.log.info(
      { endpoint, streams: [...this.streamDefs.keys()], worker: this.inWorker },
      'local dynamodb listening',
    );
    return endpoint;
  }

  /**
   * Stops accepting requests, lets requests in progress finish, persists checkpoints and closes
   * dynalite. Deliveries still in flight are not awaited; their records are not checkpointed and
   * are delivered again after a restart.
   */
  async stop(): Promise<void> {
    const engine = this.engine;
    if (!engine) return;
    this.stopping = true;
    if (this.inProcessEndpoint) unregisterInProcess(this.inProcessEndpoint, this);
    this.inProcessEndpoint = undefined;
    const proxy = this.proxy;
    if (proxy) {
      const closed = new Promise<void>((resolve) => proxy.close(() => resolve()));
      proxy.closeIdleConnections();
      if (this.inFlightRequests > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      proxy.closeAllConnections();
      await closed;
    }
    // Stops delivery, writes the checkpoints, closes LevelDB after the operations in progress and
    // marks the stop clean (the next start need not check the indexes).
    await engine.close();
    this.engine = undefined;
    this.proxy = undefined;
  }

  /** Resolves when every captured record has been delivered or sent to the failure queue. */
  drain(): Promise<void> {
    return this.engine?.drain() ?? Promise.resolve();
  }

  /** The storage engine's worker heap (undefined when the engine runs on the main thread). */
  workerHeap(): Promise<{ usedMb: number; totalMb: number; mallocedMb: number } | undefined> {
    return this.engine?.workerHeap?.() ?? Promise.resolve(undefined);
  }

  streamStats(): StreamStats[] {
    return this.engine?.streamStats() ?? [];
  }

  /** False once stopping: in-process SDK clients then fail as on a closed port. */
  accepting(): boolean {
    return this.engine !== undefined && !this.stopping;
  }

  /** One request to dynalite, through the storage engine (no socket). */
  private request(
    method: string,
    url: string,
    headers: http.OutgoingHttpHeaders,
    body: Buffer,
  ): Promise<Reply> {
    if (!this.engine) return Promise.reject(new Error('local dynamodb is stopped'));
    return this.engine.request(method, url, headers, body);
  }

  // ---------------------------------------------------------------------------------------------
  // Proxy

  /** The proxy's HTTP server: the endpoint of callers in other processes (or with their own client). */
  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let reply: Reply;
    try {
      const body = await readBody(req);
      const headers: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(req.headers))
        if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
      reply = await this.handleRequest({
        method: req.method ?? 'POST',
        url: req.url ?? '/',
        headers,
        body,
        caller: this.opts.permissions?.callerOf(req),
      });
    } catch (err) {
      reply = this.proxyError(err);
    }
    if (!res.headersSent) res.writeHead(reply.status, reply.headers);
    res.end(reply.body);
  }

  private proxyError(err: unknown): Reply {
    this.log.error({ err: errorMessage(err) }, 'dynamodb proxy request failed');
    return jsonReply(500, {
      __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError',
      message: 'local proxy error',
    });
  }

  /**
   * One DynamoDB API request, from the HTTP server or from an SDK client in this process
   * (lib/local/dynamodb-inprocess.ts): the caller's grants, the batch split, then dynalite.
   * `headers` have lower-case names; `caller` is the calling function, if any.
   */
  async handleRequest(r: {
    method: string;
    url: string;
    headers: http.OutgoingHttpHeaders;
    body: Buffer;
    caller: string | undefined;
  }): Promise<Reply> {
    this.inFlightRequests++;
    try {
      const { headers, body } = r;
      const target = String(headers['x-amz-target'] ?? '');
      const op = target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : '';
      const write = WRITE_OPS.has(op);
      if (write) this.writeObserver?.('before', op);
      let parsed: Record<string, unknown> | null | undefined;
      const input = () => {
        if (parsed === undefined) {
          try {
            const value: unknown = JSON.parse(body.toString('utf8'));
            parsed = value && typeof value === 'object' ? (value as Record<string, unknown>) : null;
          } catch {
            parsed = null; // dynalite answers the SerializationException
          }
        }
        return parsed;
      };
      let reply: Reply | undefined;
      // The caller's grants (lib/local/permissions.ts), checked as IAM does, before anything runs. A
      // caller that is no function of this runtime's topology is not checked.
      const permissions = this.opts.permissions;
      const fn = r.caller && permissions?.topology.functions[r.caller] ? r.caller : undefined;
      const denial =
        fn &&
        permissions?.denied(
          { function: fn },
          dynamodbAccesses(op, input() ?? {}, (table) => `${TABLE_ARN_PREFIX}${table}`),
        );
      if (denial) {
        reply = jsonReply(400, {
          __type: 'com.amazon.coral.service#AccessDeniedException',
          Message: denial,
        });
      } else if (r.method === 'POST' && op === 'BatchWriteItem' && this.streamDefs.size > 0) {
        const captured = input();
        if (captured) reply = await this.captured(op, captured, headers);
      }
      try {
        reply ??= await this.request(r.method, r.url, headers, body);
      } catch (err) {
        reply = this.proxyError(err);
      }
      if (write && reply.status === 200) this.writeObserver?.('applied', op);
      return reply;
    } finally {
      this.inFlightRequests--;
      if (this.inFlightRequests === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    }
  }

  /** A write that may touch a stream-enabled table; undefined = forward unchanged. */
  private async captured(
    op: string,
    input: Record<string, unknown>,
    headers: http.OutgoingHttpHeaders,
  ): Promise<Reply | undefined> {
    // Single writes are captured inside dynalite (onWrite); a batch is split so that its records
    // come in request order.
    if (op === 'BatchWriteItem') return this.batchWrite(input, headers);
    return undefined;
  }

  /**
   * BatchWriteItem touching a stream-enabled table: applied as single writes in order. Requests
   * that are not well formed, or that DynamoDB would reject as a whole (more than 25 requests,
   * duplicate keys), are forwarded unchanged so the client gets dynalite's error. A single write
   * failing for another reason (e.g. item too large) is answered with its error, the writes
   * before it having been applied (DynamoDB validates the whole batch first).
   */
  private async batchWrite(
    input: Record<string, unknown>,
    headers: http.OutgoingHttpHeaders,
  ): Promise<Reply | undefined> {
    const items = input.RequestItems;
    if (!items || typeof items !== 'object') return undefined;
    const entries = Object.entries(items as Record<string, unknown>);
    if (!entries.some(([table]) => this.streamDefs.has(table))) return undefined;
    type Op = { table: string; op: 'PutItem' | 'DeleteItem'; payload: Record<string, unknown>; keys?: Image };
    const ops: Op[] = [];
    const seen = new Set<string>();
    for (const [table, requests] of entries) {
      if (!Array.isArray(requests)) return undefined;
      const def = this.streamDefs.get(table);
      for (const r of requests as Record<string, { Item?: unknown; Key?: unknown } | undefined>[]) {
        if (!r || typeof r !== 'object') return undefined;
        const put = r.PutRequest;
        const del = r.DeleteRequest;
        if ((put ? 1 : 0) + (del ? 1 : 0) !== 1) return undefined;
        const payload = put ? { TableName: table, Item: put.Item } : { TableName: table, Key: del?.Key };
        const op: Op = { table, op: put ? 'PutItem' : 'DeleteItem', payload };
        if (def) {
          op.keys = keyOf(def, put ? put.Item : del?.Key);
          if (!op.keys) return undefined;
          const lock = `${table}\u0000${JSON.stringify(op.keys)}`;
          if (seen.has(lock)) return undefined;
          seen.add(lock);
        }
        ops.push(op);
      }
    }
    if (ops.length === 0 || ops.length > 25) return undefined;
    const contentType = String(headers['content-type'] ?? 'application/x-amz-json-1.0');
    const subHeaders = (op: string) => ({ ...headers, 'x-amz-target': TARGET_PREFIX + op });
    for (const o of ops) {
      const payload = Buffer.from(JSON.stringify(o.payload));
      const reply = await this.request('POST', '/', subHeaders(o.op), payload);
      if (reply.status !== 200) return reply;
    }
    return jsonReply(200, { UnprocessedItems: {} }, contentType);
  }
}
