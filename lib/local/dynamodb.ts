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
 *   `onWrite` (lib/local/dynalite.ts `WriteCapture`), which appends the INSERT, MODIFY or REMOVE
 *   record to the stream journal (nothing when the write changes nothing, as DynamoDB does). The
 *   record joins its shard's delivery queue once the write landed in LevelDB (and every earlier
 *   record of the shard did), before the client gets its answer. No read before or after a write,
 *   and records are numbered in the order dynalite applies the writes.
 * - Crash safety of the data: an item and its index entries are written in one LevelDB batch
 *   (lib/local/dynalite.ts; dynalite alone writes them one by one, so a crash could leave a GSI
 *   listing an item that GetItem does not find). After a stop that was not clean, the indexes are
 *   checked against the items at start (and repaired from them, for data written before).
 * - Crash safety of the stream (process crash, e.g. SIGKILL): every write that changed an item and
 *   is in the store after a crash has exactly one stream record, and no write that is not has one.
 *   The item is the truth. A record is journaled (marked `pre`) before its write reaches LevelDB, so
 *   a crash may leave a record of a write that never landed; only an item's last journaled record
 *   can be one (dynalite lets the item's next write in after the previous one landed), and only if
 *   it was not delivered yet (delivery waits for the landing). At start each such record stands if
 *   the item now is its new image and is void otherwise: the write changed the item, so had it not
 *   landed the item would still be the old image. A record line torn by the crash is dropped: its
 *   write was not issued yet. An item's records chain: each record's old image is the previous
 *   record's new image. Records are delivered at least once: one delivered but not yet
 *   checkpointed at the crash is delivered again, as the same record (same eventID and
 *   SequenceNumber). Journals written before the capture moved into dynalite hold `intent` lines
 *   (old image, then the write, then the record); a dangling one is still resolved at start by
 *   comparing the item with its old image. Power loss is another matter: set PAYSTEP_FSYNC=1 for
 *   the journal; LevelDB itself does not sync.
 *
 * Delivery, like a Lambda event source mapping: records are spread over `shards` by a hash of the
 * partition key (order per item is preserved); per shard a loop calls `deliver(consumer,
 * {Records})` with up to `batchSize` records in sequence order. Partial batch responses
 * (`batchItemFailures`) move the checkpoint to just before the first failed record and retry from
 * it. A thrown error fails the whole batch: it is bisected (halves retried in order) until the
 * failing record is alone; a single failing record is retried with exponential backoff (100 ms,
 * doubling, divided by `timeScale`, capped at 5 s real) and after `maxRetries` retries it is sent to
 * the failure queue (an on-failure destination pointer that also carries the records, since the
 * local stream has no 24 h retention to read them back from), and the shard moves on. Checkpoints
 * are persisted in `<dataDir>/streams/<table>.checkpoints.json` at most once a second, off the event
 * loop, and at stop (lib/local/stream-checkpoints.ts); after a restart delivery resumes
 * after the last checkpointed record (at-least-once: a batch in flight at a crash is delivered
 * again). The journal `<dataDir>/streams/<table>.jsonl` is compacted at start.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { crc32 } from 'node:zlib';
import type { AttributeValue, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import type { TableDef } from '../topology.ts';
import { checkIndexes, openDynalite, type DynaliteStore, type IndexCheck } from './dynalite.ts';
import { readJsonFile, writeFileAtomic } from './files.ts';
import { Journal } from './journal.ts';
import { CheckpointFile } from './stream-checkpoints.ts';
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

export const LOCAL_REGION = 'local';
export const LOCAL_ACCOUNT = '000000000000';
const TABLE_ARN_PREFIX = `arn:aws:dynamodb:${LOCAL_REGION}:${LOCAL_ACCOUNT}:table/`;

type Image = Record<string, AttributeValue>;

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
}

export interface ShardStats {
  shard: number;
  /** Records captured and not yet delivered (or sent to the failure queue). */
  pending: number;
  /** Sequence number of the last record done with, or null. */
  checkpoint: string | null;
  inFlight: boolean;
}

export interface StreamStats {
  table: string;
  physicalName: string;
  consumer: string;
  streamArn: string;
  lastSequenceNumber: string | null;
  shards: ShardStats[];
  /** Counters since start. */
  recordsCaptured: number;
  recordsDelivered: number;
  recordsFailed: number;
  batchesDelivered: number;
  failedInvocations: number;
}

/** The body sent to the failure queue. */
export interface StreamFailure {
  table: string;
  streamArn: string;
  shard: number;
  firstSequenceNumber: string;
  lastSequenceNumber: string;
  retries: number;
  error: string;
  timestamp: string;
  records: DynamoDBRecord[];
}

interface Entry {
  seq: number;
  record: DynamoDBRecord;
}

interface Shard {
  id: number;
  pending: Entry[];
  /**
   * Records journaled by writes still in LevelDB, in sequence order: each joins `pending` when it
   * and every record before it have landed (so a shard's pending records stay in sequence order).
   */
  landing: { entry: Entry; state: 'writing' | 'landed' | 'failed' }[];
  checkpoint: number;
  inFlight: boolean;
  wake?: () => void;
}

type Line =
  /** Written by journals before the capture moved into dynalite; still recovered. */
  | { t: 'intent'; id: string; lock: string; keys: Image; old: Image | null }
  | { t: 'done'; id: string }
  /** `pre`: journaled before its item write; it may not have landed if it is its item's last. */
  | { t: 'rec'; id?: string; lock: string; shard: number; seq: number; rec: DynamoDBRecord; pre?: 1 }
  /** The item write of record `seq` failed: the record is void. */
  | { t: 'drop'; seq: number };

interface Checkpoints {
  shards: number;
  lastSequenceNumber: string | null;
  checkpoints: Record<string, string>;
}

interface StreamTable {
  name: string;
  physical: string;
  def: TableDef;
  stream: NonNullable<TableDef['stream']>;
  arn: string;
  journal: Journal<Line>;
  checkpoints: CheckpointFile;
  shards: Shard[];
  lastSeq: number;
  stats: { captured: number; delivered: number; failed: number; batches: number; failedInvocations: number };
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
const SEQ_WIDTH = 21;
const BACKOFF_BASE_MS = 100;
const BACKOFF_CAP_MS = 5000;
/** dynalite checks that a request looks signed, not the signature. */
const INTERNAL_HEADERS = {
  'content-type': 'application/x-amz-json-1.0',
  authorization:
    'AWS4-HMAC-SHA256 Credential=local/20240101/local/dynamodb/aws4_request, SignedHeaders=host, Signature=local',
  'x-amz-date': '20240101T000000Z',
};

const pad = (seq: number) => String(seq).padStart(SEQ_WIDTH, '0');

/** FNV-1a, 32 bit. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Canonical form of an image for change detection: map keys sorted, sets order-free. */
function canonical(value: unknown, setType?: boolean): unknown {
  if (Array.isArray(value)) {
    const items = value.map((v) => canonical(v));
    return setType ? items.map((v) => JSON.stringify(v)).sort() : items;
  }
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort())
      out[k] = canonical((value as Record<string, unknown>)[k], k === 'SS' || k === 'NS' || k === 'BS');
    return out;
  }
  return value;
}

const sameImage = (a: Image | null, b: Image | null) =>
  a === null || b === null
    ? a === b
    : JSON.stringify(a) === JSON.stringify(b) || isDeepStrictEqual(canonical(a), canonical(b));

function errorMessage(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

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
  private readonly streams = new Map<string, StreamTable>(); // by physical name
  private readonly sleepers = new Set<() => void>();
  private drainWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
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
  }

  /** Starts dynalite, creates missing tables, recovers the streams and listens; returns the endpoint. */
  async start(port = 0): Promise<string> {
    if (this.db) throw new Error('LocalDynamo already started');
    this.stopping = false;
    const dbDir = path.join(this.opts.dataDir, 'dynamodb');
    mkdirSync(dbDir, { recursive: true });
    const { server: db, store } = openDynalite({
      path: dbDir,
      createTableMs: 0,
      deleteTableMs: 0,
      updateTableMs: 0,
      capture: (table, old, item) => this.onWrite(table, old as Image | null, item as Image | null),
    });
    // dynalite's server never listens: its request handler is called in this process.
    this.db = db;
    this.store = store;
    this.dynalite = requestListenerOf(db);

    for (const [name, def] of Object.entries(this.opts.tables)) await this.ensureTable(name, def);
    await this.checkIndexesAfterCrash(store);
    for (const [name, def] of Object.entries(this.opts.tables))
      if (def.stream) await this.openStream(name, def);

    const proxy = http.createServer((req, res) => void this.handle(req, res));
    proxy.keepAliveTimeout = 5000;
    this.proxy = proxy;
    await listenOn(proxy, port);
    for (const t of this.streams.values()) for (const s of t.shards) void this.runShard(t, s);
    const endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    this.opts.permissions?.serve(endpoint);
    this.inProcessEndpoint = endpoint;
    registerInProcess(endpoint, this);
    this.log.info({ endpoint, streams: [...this.streams.keys()] }, 'local dynamodb listening');
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
    for (const wake of this.sleepers) wake();
    this.sleepers.clear();
    for (const t of this.streams.values()) {
      for (const s of t.shards) s.wake?.();
      await t.checkpoints.close();
      t.journal.close();
    }
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w.reject(new Error('LocalDynamo stopped before the streams drained'));
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
    this.streams.clear();
  }

  /** False once stopping: in-process SDK clients then fail as on a closed port. */
  accepting(): boolean {
    return this.db !== undefined && !this.stopping;
  }

  /** Resolves when every captured record has been delivered or sent to the failure queue. */
  drain(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.drainWaiters.push({ resolve, reject });
      this.checkDrained();
    });
  }

  streamStats(): StreamStats[] {
    return [...this.streams.values()].map((t) => ({
      table: t.name,
      physicalName: t.physical,
      consumer: t.stream.consumer,
      streamArn: t.arn,
      lastSequenceNumber: t.lastSeq > 0 ? pad(t.lastSeq) : null,
      shards: t.shards.map((s) => ({
        shard: s.id,
        pending: s.pending.length,
        checkpoint: s.checkpoint > 0 ? pad(s.checkpoint) : null,
        inFlight: s.inFlight,
      })),
      recordsCaptured: t.stats.captured,
      recordsDelivered: t.stats.delivered,
      recordsFailed: t.stats.failed,
      batchesDelivered: t.stats.batches,
      failedInvocations: t.stats.failedInvocations,
    }));
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
  // Stream journal and recovery

  private async openStream(name: string, def: TableDef): Promise<void> {
    const stream = def.stream;
    if (!stream) return;
    const physical = this.opts.tableName(name);
    const dir = path.join(this.opts.dataDir, 'streams');
    mkdirSync(dir, { recursive: true });
    const journal = new Journal<Line>(path.join(dir, `${name}.jsonl`));
    const checkpointFile = path.join(dir, `${name}.checkpoints.json`);
    const saved = readJsonFile<Checkpoints | null>(checkpointFile, null);
    const lines = journal.load();

    const cps = new Map<number, number>();
    let lastSeq = saved?.lastSequenceNumber ? Number(saved.lastSequenceNumber) : 0;
    for (const [k, v] of Object.entries(saved?.checkpoints ?? {})) {
      cps.set(Number(k), Number(v));
      lastSeq = Math.max(lastSeq, Number(v));
    }
    const cp = (shard: number) => cps.get(shard) ?? 0;

    // Records not yet delivered, and write intents without an outcome.
    let kept: Extract<Line, { t: 'rec' }>[] = [];
    const intents = new Map<string, Extract<Line, { t: 'intent' }>>();
    const lastIndexOfLock = new Map<string, number>();
    const dropped = new Set<number>();
    lines.forEach((line, i) => {
      if (line.t === 'intent') {
        intents.set(line.id, line);
        lastIndexOfLock.set(line.lock, i);
      } else if (line.t === 'done') intents.delete(line.id);
      else if (line.t === 'drop') dropped.add(line.seq);
      else {
        if (line.id) intents.delete(line.id);
        lastIndexOfLock.set(line.lock, i);
        lastSeq = Math.max(lastSeq, line.seq);
        if (line.seq > cp(line.shard)) kept.push(line);
      }
    });
    // A record journaled before its write (`pre`) that is the last line of its item may be of a
    // write the crash stopped before LevelDB had it: it stands if the item is its new image (the
    // write changed the item, so before it the item was not), and is void otherwise. Earlier records
    // of an item landed: dynalite's item lock let the next write in only after them.
    let unlanded = 0;
    const stands = new Set<Extract<Line, { t: 'rec' }>>();
    for (const line of kept) {
      if (dropped.has(line.seq)) continue;
      const last = lines[lastIndexOfLock.get(line.lock) ?? -1];
      if (line.pre && last === line) {
        const keys = line.rec.dynamodb?.Keys as Image;
        const now = await this.getItem(physical, keys);
        if (!sameImage(now, (line.rec.dynamodb?.NewImage as Image | undefined) ?? null)) {
          unlanded++;
          continue;
        }
      }
      stands.add(line);
    }
    kept = kept.filter((line) => stands.has(line)).sort((a, b) => a.seq - b.seq);

    // Keep the shard layout of undelivered records, or an item's records could be reordered.
    let shardCount = this.shardCount;
    if (saved && saved.shards !== shardCount && kept.length > 0) {
      this.log.warn(
        { table: physical, configured: shardCount, kept: saved.shards },
        'undelivered stream records use another shard count; keeping it until restart with an empty stream',
      );
      shardCount = saved.shards;
    }
    for (const rec of kept) shardCount = Math.max(shardCount, rec.shard + 1);

    const t: StreamTable = {
      name,
      physical,
      def,
      stream,
      arn: `arn:aws:dynamodb:${LOCAL_REGION}:${LOCAL_ACCOUNT}:table/${physical}/stream/local`,
      journal,
      checkpoints: undefined as unknown as CheckpointFile,
      shards: Array.from({ length: shardCount }, (_, id) => ({
        id,
        pending: [],
        landing: [],
        checkpoint: cp(id),
        inFlight: false,
      })),
      lastSeq,
      stats: { captured: 0, delivered: 0, failed: 0, batches: 0, failedInvocations: 0 },
    };
    t.checkpoints = new CheckpointFile(
      checkpointFile,
      () => this.checkpointContent(t),
      (err) =>
        this.log.error({ table: t.physical, err: errorMessage(err) }, 'cannot write stream checkpoints'),
    );
    for (const rec of kept) t.shards[rec.shard]?.pending.push({ seq: rec.seq, record: rec.rec });

    // Dangling intents: a crash came between forwarding a write and recording its outcome, so
    // compare the item with the intent's old image (unless a later write of the item followed).
    lines.forEach((line, i) => {
      if (line.t === 'intent' && intents.has(line.id) && lastIndexOfLock.get(line.lock) !== i)
        intents.delete(line.id);
    });
    const dangling: { intent: Extract<Line, { t: 'intent' }>; now: Image | null }[] = [];
    for (const intent of intents.values())
      dangling.push({ intent, now: await this.getItem(physical, intent.keys) });

    // Compact: undelivered records and dangling intents survive (so that a crash right after the
    // rewrite still finds the intents); then record what the dangling intents changed. (Intents
    // come only from journals written before the capture moved into dynalite.)
    journal.rewrite([...kept, ...dangling.map((d) => d.intent)]);
    let recovered = 0;
    for (const { intent, now } of dangling)
      if (this.capture(t, intent.lock, intent.keys, intent.old, now)) recovered++;
    this.streams.set(physical, t);
    t.checkpoints.writeNow();
    const pending = t.shards.reduce((n, s) => n + s.pending.length, 0);
    this.log.info(
      {
        table: physical,
        shards: shardCount,
        pending,
        recovered,
        unlanded,
        lastSequenceNumber: lastSeq ? pad(lastSeq) : null,
      },
      'stream opened',
    );
  }

  private checkpointContent(t: StreamTable): string {
    const data: Checkpoints = {
      shards: t.shards.length,
      lastSequenceNumber: t.lastSeq > 0 ? pad(t.lastSeq) : null,
      checkpoints: Object.fromEntries(
        t.shards.filter((s) => s.checkpoint > 0).map((s) => [s.id, pad(s.checkpoint)]),
      ),
    };
    return JSON.stringify(data, null, 2) + '\n';
  }

  /** A new stream record of a change of one item: its sequence number and shard. */
  private newRecord(t: StreamTable, keys: Image, old: Image | null, now: Image | null) {
    const seq = ++t.lastSeq;
    const pkName = t.def.partitionKey.name;
    const shard = hash(JSON.stringify(keys[pkName] ?? null)) % t.shards.length;
    const dynamodb: DynamoDBRecord['dynamodb'] = {
      ApproximateCreationDateTime: Math.floor(Date.now() / 1000),
      Keys: keys,
      ...(now ? { NewImage: now } : {}),
      ...(old ? { OldImage: old } : {}),
      SequenceNumber: pad(seq),
      SizeBytes: 0,
      StreamViewType: 'NEW_AND_OLD_IMAGES',
    };
    dynamodb.SizeBytes = Buffer.byteLength(JSON.stringify({ k: keys, n: now, o: old }));
    const record: DynamoDBRecord = {
      eventID: randomUUID().replace(/-/g, ''),
      eventName: old === null ? 'INSERT' : now === null ? 'REMOVE' : 'MODIFY',
      eventVersion: '1.1',
      eventSource: 'aws:dynamodb',
      awsRegion: LOCAL_REGION,
      dynamodb,
      eventSourceARN: t.arn,
    };
    return { seq, shard, record };
  }

  /**
   * Appends a stream record for a change of one item found at start (nothing if it did not
   * change) and queues it on its shard. Synchronous: the journal write and the sequence number
   * happen together.
   */
  private capture(
    t: StreamTable,
    lock: string,
    keys: Image,
    old: Image | null,
    now: Image | null,
    id?: string,
  ) {
    if (sameImage(old, now)) {
      if (id) t.journal.append({ t: 'done', id });
      return false;
    }
    const { seq, shard, record } = this.newRecord(t, keys, old, now);
    t.journal.append({ t: 'rec', ...(id ? { id } : {}), lock, shard, seq, rec: record });
    const s = t.shards[shard] as Shard;
    s.pending.push({ seq, record });
    t.stats.captured++;
    s.wake?.();
    return true;
  }

  /**
   * dynalite is about to write an item (lib/local/dynalite.ts `WriteCapture`), under its lock of
   * that item, with both images of the write: if the table has a stream and the item changes, the
   * record is journaled now (before the write, `pre`) and queued for delivery once the write
   * landed. A throw (the journal cannot be written) fails the write. (dynalite 4 throws a LevelDB
   * write error out of its callback, which ends the process: the start then voids the record, as
   * after any crash; the `drop` line is for a failure that does not.)
   */
  private onWrite(table: string, old: Image | null, now: Image | null) {
    const t = this.streams.get(table);
    if (!t || sameImage(old, now)) return undefined;
    const keys = this.keyOf(t, now ?? old);
    if (!keys) return undefined; // dynalite validated the key: cannot happen
    const lock = `${t.physical}\u0000${JSON.stringify(keys)}`;
    const { seq, shard, record } = this.newRecord(t, keys, old, now);
    t.journal.append({ t: 'rec', lock, shard, seq, rec: record, pre: 1 });
    const s = t.shards[shard] as Shard;
    const slot: Shard['landing'][number] = { entry: { seq, record }, state: 'writing' };
    s.landing.push(slot);
    return (err?: Error | null) => {
      if (err) {
        slot.state = 'failed';
        try {
          t.journal.append({ t: 'drop', seq });
        } catch (journalErr) {
          // Not recorded: the start finds the item is not the record's new image and drops it.
          this.log.error({ table, err: errorMessage(journalErr) }, 'cannot journal a failed write');
        }
      } else slot.state = 'landed';
      this.land(t, s);
    };
  }

  /** Moves the landed prefix of a shard's records to its pending ones. */
  private land(t: StreamTable, s: Shard): void {
    let moved = false;
    while (s.landing.length > 0 && (s.landing[0] as Shard['landing'][number]).state !== 'writing') {
      const slot = s.landing.shift() as Shard['landing'][number];
      if (slot.state !== 'landed') continue;
      s.pending.push(slot.entry);
      t.stats.captured++;
      moved = true;
    }
    if (moved) s.wake?.();
    else this.checkDrained();
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

  /** Primary key of an item or key object, in key-schema order; undefined if malformed. */
  private keyOf(t: StreamTable, item: unknown): Image | undefined {
    if (!item || typeof item !== 'object') return undefined;
    const keys: Image = {};
    for (const k of [t.def.partitionKey, t.def.sortKey]) {
      if (!k) continue;
      const v = (item as Record<string, unknown>)[k.name] as Record<string, unknown> | undefined;
      if (!v || typeof v !== 'object' || typeof v[k.type] !== 'string') return undefined;
      keys[k.name] = { [k.type]: v[k.type] } as AttributeValue;
    }
    return keys;
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
      const t = this.streams.get(table);
      for (const r of requests as Record<string, { Item?: unknown; Key?: unknown } | undefined>[]) {
        if (!r || typeof r !== 'object') return undefined;
        const put = r.PutRequest;
        const del = r.DeleteRequest;
        if ((put ? 1 : 0) + (del ? 1 : 0) !== 1) return undefined;
        const payload = put ? { TableName: table, Item: put.Item } : { TableName: table, Key: del?.Key };
        const op: Op = { table, op: put ? 'PutItem' : 'DeleteItem', payload };
        if (t) {
          op.keys = this.keyOf(t, put ? put.Item : del?.Key);
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

  // ---------------------------------------------------------------------------------------------
  // Delivery

  private checkDrained(): void {
    if (this.drainWaiters.length === 0) return;
    for (const t of this.streams.values())
      for (const s of t.shards) if (s.pending.length > 0 || s.landing.length > 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w.resolve();
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }

  private backoff(retry: number): Promise<void> {
    return this.sleep(
      Math.min((BACKOFF_BASE_MS * 2 ** Math.max(0, retry - 1)) / this.timeScale, BACKOFF_CAP_MS),
    );
  }

  private async runShard(t: StreamTable, s: Shard): Promise<void> {
    while (!this.stopping) {
      if (s.pending.length === 0) {
        await new Promise<void>((resolve) => (s.wake = resolve));
        s.wake = undefined;
        continue;
      }
      s.inFlight = true;
      try {
        await this.processRange(t, s, s.pending.slice(0, Math.max(1, t.stream.batchSize)));
      } catch (err) {
        this.log.error(
          { table: t.physical, shard: s.id, err: errorMessage(err) },
          'stream delivery loop error',
        );
        await this.sleep(BACKOFF_CAP_MS);
      } finally {
        s.inFlight = false;
      }
      this.checkDrained();
    }
  }

  /** The records up to and including `seq` are done with: checkpoint them. */
  private advance(t: StreamTable, s: Shard, seq: number): void {
    while (s.pending.length > 0 && (s.pending[0] as Entry).seq <= seq) s.pending.shift();
    s.checkpoint = Math.max(s.checkpoint, seq);
    if (!this.stopping) t.checkpoints.schedule();
  }

  /** Delivers `range` (a prefix of the shard's pending records) until every record is done. */
  private async processRange(t: StreamTable, s: Shard, range: Entry[]): Promise<void> {
    let current = range;
    let retries = 0;
    while (current.length > 0) {
      if (this.stopping) return;
      const outcome = await this.invoke(t, s, current);
      if (this.stopping) return; // not checkpointed: delivered again after a restart
      const last = current[current.length - 1] as Entry;
      if (outcome.ok) {
        t.stats.delivered += current.length;
        t.stats.batches++;
        this.advance(t, s, last.seq);
        return;
      }
      t.stats.failedInvocations++;
      if (outcome.failedIndex !== undefined) {
        // Partial batch response: everything before the first failure is done.
        if (outcome.failedIndex > 0) {
          t.stats.delivered += outcome.failedIndex;
          this.advance(t, s, (current[outcome.failedIndex - 1] as Entry).seq);
          current = current.slice(outcome.failedIndex);
          retries = 0;
        }
      } else if (current.length > 1) {
        // Whole batch failed: bisect until the failing record is alone.
        this.log.warn(
          { table: t.physical, shard: s.id, records: current.length, err: outcome.error },
          'stream batch failed, bisecting',
        );
        await this.backoff(1);
        const mid = Math.ceil(current.length / 2);
        await this.processRange(t, s, current.slice(0, mid));
        if (this.stopping) return;
        await this.processRange(t, s, current.slice(mid));
        return;
      }
      retries++;
      if (retries > t.stream.maxRetries) {
        const failed = current[0] as Entry;
        if (!(await this.sendFailure(t, s, [failed], retries - 1, outcome.error))) return;
        this.advance(t, s, failed.seq);
        current = current.slice(1);
        retries = 0;
        continue;
      }
      this.log.warn(
        {
          table: t.physical,
          shard: s.id,
          records: current.length,
          firstSequenceNumber: current[0]?.record.dynamodb?.SequenceNumber,
          retry: retries,
          err: outcome.error,
        },
        'stream batch failed, retrying',
      );
      await this.backoff(retries);
    }
  }

  private async invoke(
    t: StreamTable,
    s: Shard,
    batch: Entry[],
  ): Promise<{ ok: true } | { ok: false; failedIndex?: number; error: string }> {
    const first = batch[0]?.record.dynamodb?.SequenceNumber;
    const last = batch[batch.length - 1]?.record.dynamodb?.SequenceNumber;
    // A copy per invocation: a consumer mutating its event cannot alter a retry.
    const event: DynamoDBStreamEvent = structuredClone({ Records: batch.map((e) => e.record) });
    let result: unknown;
    try {
      result = await this.opts.deliver(t.stream.consumer, event);
    } catch (err) {
      return { ok: false, error: errorMessage(err) };
    }
    const failures = (result as { batchItemFailures?: unknown } | null | undefined)?.batchItemFailures;
    if (!Array.isArray(failures) || failures.length === 0) {
      this.log.debug(
        {
          table: t.physical,
          shard: s.id,
          records: batch.length,
          firstSequenceNumber: first,
          lastSequenceNumber: last,
        },
        'stream batch delivered',
      );
      return { ok: true };
    }
    let min = Infinity;
    for (const f of failures) {
      const id = (f as { itemIdentifier?: unknown } | null)?.itemIdentifier;
      const index =
        typeof id === 'string' ? batch.findIndex((e) => e.record.dynamodb?.SequenceNumber === id) : -1;
      // As in Lambda, an identifier that names no record of the batch fails the whole batch.
      if (index < 0) return { ok: false, error: 'batchItemFailures names no record of the batch' };
      min = Math.min(min, index);
    }
    return { ok: false, failedIndex: min, error: 'consumer reported batch item failures' };
  }

  /** Sends records to the failure queue, retrying until it accepts them; false if stopped first. */
  private async sendFailure(t: StreamTable, s: Shard, records: Entry[], retries: number, error: string) {
    const firstSequenceNumber = records[0]?.record.dynamodb?.SequenceNumber ?? '';
    const lastSequenceNumber = records[records.length - 1]?.record.dynamodb?.SequenceNumber ?? '';
    const failure: StreamFailure = {
      table: t.physical,
      streamArn: t.arn,
      shard: s.id,
      firstSequenceNumber,
      lastSequenceNumber,
      retries,
      error,
      timestamp: new Date().toISOString(),
      records: records.map((e) => e.record),
    };
    const body = JSON.stringify(failure);
    for (let attempt = 1; !this.stopping; attempt++) {
      try {
        await this.opts.sendToFailureQueue(t.stream.failureQueue, body);
        t.stats.failed += records.length;
        this.log.warn(
          {
            table: t.physical,
            shard: s.id,
            firstSequenceNumber,
            lastSequenceNumber,
            queue: t.stream.failureQueue,
            error,
          },
          'stream records sent to the failure queue after retries',
        );
        return true;
      } catch (err) {
        this.log.error(
          { table: t.physical, shard: s.id, queue: t.stream.failureQueue, err: errorMessage(err) },
          'cannot send to the stream failure queue, retrying',
        );
        await this.backoff(attempt);
      }
    }
    return false;
  }
}
