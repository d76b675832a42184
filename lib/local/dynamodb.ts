/**
 * Local DynamoDB with streams.
 *
 * dynalite (DynamoDB on LevelDB, data in `<dataDir>/dynamodb`) answers the DynamoDB API through its
 * own request handler, called in this process (lib/local/dynamodb-inprocess.ts; its server never
 * listens). It has no Streams, no TTL expiry (items past their `ttlAttribute` stay until deleted)
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
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import type { TableDef } from '../topology.ts';
import { checkIndexes, openDynalite, type DynaliteStore, type IndexCheck } from './dynalite.ts';
import { writeFileAtomic } from './files.ts';
import {
  errorMessage,
  keyOf,
  LOCAL_ACCOUNT,
  LOCAL_REGION,
  LocalStreams,
  type Image,
  type ShardStats,
  type StreamFailure,
  type StreamStats,
} from './dynamodb-streams.ts';
import { createLogger, type Logger } from './log.ts';
import { dynamodbAccesses, type LocalPermissions } from './permissions.ts';
import { listenOn } from './ports.ts';
import {
  callDynalite,
  registerInProcess,
  requestListenerOf,
  unregisterInProcess,
  type Reply,
} from './dynamodb-inprocess.ts';

export { LOCAL_ACCOUNT, LOCAL_REGION, type ShardStats, type StreamFailure, type StreamStats };
const TABLE_ARN_PREFIX = `arn:aws:dynamodb:${LOCAL_REGION}:${LOCAL_ACCOUNT}:table/`;

export interface LocalDynamoOptions {
  dataDir: string;
  /** Tables from the topology, keyed by topology name. */
  tables: Record<string, TableDef>;
  /** Physical table name of a topology table (the runtime uses `paystep-<name>`). */
  tableName: (topologyName: string) => string;
  /** Invokes the stream consumer; may return a partial batch response. Throwing fails the batch. */
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
}

class DynamoCallError extends Error {
  readonly status: number;
  readonly type: string;
  constructor(op: string, status: number, body: string) {
    let type = 'Unknown';
    try {
      type = String((JSON.parse(body) as { __type?: string }).__type ?? type);
    } catch {
      // not JSON
    }
    super(`dynalite ${op} failed with ${status}: ${type}`);
    this.name = 'DynamoCallError';
    this.status = status;
    this.type = type;
  }
}

const TARGET_PREFIX = 'DynamoDB_20120810.';
const HOP_BY_HOP = new Set([
  'host',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'expect',
]);
/** dynalite checks that a request looks signed, not the signature. */
const INTERNAL_HEADERS = {
  'content-type': 'application/x-amz-json-1.0',
  authorization:
    'AWS4-HMAC-SHA256 Credential=local/20240101/local/dynamodb/aws4_request, SignedHeaders=host, Signature=local',
  'x-amz-date': '20240101T000000Z',
};

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
  /** The streams of the stream-enabled tables, while started. */
  private streams: LocalStreams;
  private db?: http.Server;
  private store?: DynaliteStore;
  private dynalite?: ReturnType<typeof requestListenerOf>;
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
    this.streams = this.newStreams();
  }

  private newStreams(): LocalStreams {
    return new LocalStreams({
      dataDir: this.opts.dataDir,
      tableName: this.opts.tableName,
      deliver: this.opts.deliver,
      sendToFailureQueue: this.opts.sendToFailureQueue,
      timeScale: this.timeScale,
      shards: this.shardCount,
      logger: this.log,
      getItem: (table, key) => this.getItem(table, key),
      journalCompactMinLines: this.opts.streamJournalCompactMinLines,
      residentRecords: this.opts.streamResidentRecords,
    });
  }

  /** Starts dynalite, creates missing tables, recovers the streams and listens; returns the endpoint. */
  async start(port = 0): Promise<string> {
    if (this.db) throw new Error('LocalDynamo already started');
    this.stopping = false;
    const streams = this.newStreams();
    this.streams = streams;
    const dbDir = path.join(this.opts.dataDir, 'dynamodb');
    mkdirSync(dbDir, { recursive: true });
    const { server: db, store } = openDynalite({
      path: dbDir,
      createTableMs: 0,
      deleteTableMs: 0,
      updateTableMs: 0,
      capture: (table, old, item) => streams.onWrite(table, old as Image | null, item as Image | null),
    });
    // dynalite's server never listens: its request handler is called in this process.
    this.db = db;
    this.store = store;
    this.dynalite = requestListenerOf(db);

    for (const [name, def] of Object.entries(this.opts.tables)) await this.ensureTable(name, def);
    await this.checkIndexesAfterCrash(store);
    for (const [name, def] of Object.entries(this.opts.tables)) if (def.stream) await streams.open(name, def);

    const proxy = http.createServer((req, res) => void this.handle(req, res));
    proxy.keepAliveTimeout = 5000;
    this.proxy = proxy;
    await listenOn(proxy, port);
    streams.startDelivery();
    const endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    this.opts.permissions?.serve(endpoint);
    this.inProcessEndpoint = endpoint;
    registerInProcess(endpoint, this);
    this.log.info(
      { endpoint, streams: streams.streamStats().map((s) => s.physicalName) },
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
    if (!this.db) return;
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
    await this.streams.stop();
    // What dynalite's server.close does once its server stopped: close LevelDB after the
    // operations in progress.
    const level = this.store?.db as unknown as { close(cb: (err?: Error | null) => void): void };
    await new Promise<void>((resolve, reject) => level.close((err) => (err ? reject(err) : resolve())));
    // Every write is in and LevelDB is closed: the next start need not check the indexes.
    writeFileAtomic(this.cleanMarker(), `${new Date().toISOString()}\n`);
    this.db = undefined;
    this.store = undefined;
    this.dynalite = undefined;
    this.proxy = undefined;
  }

  /** Resolves when every captured record has been delivered or sent to the failure queue. */
  drain(): Promise<void> {
    return this.streams.drain();
  }

  streamStats(): StreamStats[] {
    return this.streams.streamStats();
  }

  /** False once stopping: in-process SDK clients then fail as on a closed port. */
  accepting(): boolean {
    return this.db !== undefined && !this.stopping;
  }

  // ---------------------------------------------------------------------------------------------
  // dynalite

  /** One request to dynalite, through its request handler in this process (no socket). */
  private request(
    method: string,
    url: string,
    headers: http.OutgoingHttpHeaders,
    body: Buffer,
  ): Promise<Reply> {
    if (!this.dynalite) return Promise.reject(new Error('local dynamodb is stopped'));
    return callDynalite(this.dynalite, method, url, headers, body);
  }

  /** A call of our own to dynalite; throws on an error answer. */
  private async call<T>(op: string, input: unknown): Promise<T> {
    const reply = await this.request(
      'POST',
      '/',
      { ...INTERNAL_HEADERS, 'x-amz-target': TARGET_PREFIX + op },
      Buffer.from(JSON.stringify(input)),
    );
    const text = reply.body.toString('utf8');
    if (reply.status !== 200) throw new DynamoCallError(op, reply.status, text);
    return JSON.parse(text) as T;
  }

  private async getItem(table: string, key: Image): Promise<Image | null> {
    const out = await this.call<{ Item?: Image }>('GetItem', {
      TableName: table,
      Key: key,
      ConsistentRead: true,
    });
    return out.Item ?? null;
  }

  private async ensureTable(name: string, def: TableDef): Promise<void> {
    const physical = this.opts.tableName(name);
    type Desc = { Table: { TableStatus: string; GlobalSecondaryIndexes?: { IndexName: string }[] } };
    let desc: Desc | undefined;
    try {
      desc = await this.call<Desc>('DescribeTable', { TableName: physical });
    } catch (err) {
      if (!(err instanceof DynamoCallError && err.type.endsWith('ResourceNotFoundException'))) throw err;
    }
    if (!desc) {
      const attrs = new Map<string, string>();
      const keySchema = (pk: { name: string; type: string }, sk?: { name: string; type: string }) => {
        attrs.set(pk.name, pk.type);
        if (sk) attrs.set(sk.name, sk.type);
        return [
          { AttributeName: pk.name, KeyType: 'HASH' },
          ...(sk ? [{ AttributeName: sk.name, KeyType: 'RANGE' }] : []),
        ];
      };
      const input: Record<string, unknown> = {
        TableName: physical,
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: keySchema(def.partitionKey, def.sortKey),
      };
      if (def.globalIndexes?.length)
        input.GlobalSecondaryIndexes = def.globalIndexes.map((g) => ({
          IndexName: g.name,
          KeySchema: keySchema(g.partitionKey, g.sortKey),
          Projection: { ProjectionType: 'ALL' },
        }));
      input.AttributeDefinitions = [...attrs].map(([AttributeName, AttributeType]) => ({
        AttributeName,
        AttributeType,
      }));
      await this.call('CreateTable', input);
      this.log.info({ table: physical }, 'created table');
    } else {
      const have = new Set((desc.Table.GlobalSecondaryIndexes ?? []).map((g) => g.IndexName));
      const missing = (def.globalIndexes ?? []).filter((g) => !have.has(g.name)).map((g) => g.name);
      if (missing.length)
        this.log.warn({ table: physical, missing }, 'existing table lacks indexes of the topology');
    }
    for (let i = 0; desc?.Table.TableStatus !== 'ACTIVE'; i++) {
      if (i > 200) throw new Error(`table ${physical} did not become ACTIVE`);
      if (i > 0) await new Promise((r) => setTimeout(r, 10));
      desc = await this.call<Desc>('DescribeTable', { TableName: physical });
    }
  }

  /** Present only from a clean stop to the next start. */
  private cleanMarker(): string {
    return path.join(this.opts.dataDir, 'dynamodb.clean');
  }

  /**
   * Unless the last stop was clean, makes the indexes agree with the items before anything reads
   * them. Item and index writes are atomic (lib/local/dynalite.ts), so this repairs only data
   * written before they were; it is the check that they were.
   */
  private async checkIndexesAfterCrash(store: DynaliteStore): Promise<void> {
    const marker = this.cleanMarker();
    this.indexCheck = null;
    if (existsSync(marker)) {
      rmSync(marker);
      return;
    }
    const check = await checkIndexes(store);
    this.indexCheck = check;
    if (check.repaired > 0)
      this.log.warn(
        { repaired: check.repaired, examples: check.examples },
        'index entries disagreed with their items (a write interrupted before writes were atomic); repaired from the items',
      );
    else
      this.log.info(
        { tables: check.tables, items: check.items, indexEntries: check.indexEntries },
        'indexes checked after an unclean stop: consistent',
      );
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
      } else if (r.method === 'POST' && op === 'BatchWriteItem' && this.streams.size > 0) {
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
    if (!entries.some(([table]) => this.streams.has(table))) return undefined;
    type Op = { table: string; op: 'PutItem' | 'DeleteItem'; payload: Record<string, unknown>; keys?: Image };
    const ops: Op[] = [];
    const seen = new Set<string>();
    for (const [table, requests] of entries) {
      if (!Array.isArray(requests)) return undefined;
      const def = this.streams.def(table);
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
