/**
 * The local DynamoDB's storage engine: dynalite on LevelDB (validation, expression semantics,
 * condition checks, items and indexes), the tables of the topology, the index check after an
 * unclean stop, and the streams of the stream-enabled tables (capture inside dynalite's write path,
 * journal, recovery, delivery loops and checkpoints: lib/local/dynamodb-streams.ts).
 *
 * One engine is opened per LocalDynamo start (lib/local/dynamodb.ts), in the thread it runs in: a
 * worker thread by default (lib/local/dynamodb-worker.ts: `WorkerEngine` on the main thread drives
 * an engine in lib/local/dynamodb-worker-thread.ts), or the main thread itself
 * (PAYSTEP_DYNAMODB_WORKER=0). Either way everything here runs in one thread, so the stream
 * guarantees of lib/local/dynamodb-streams.ts hold as they are written there; only the consumers'
 * invocations (`deliver`) and the failure queue (`sendToFailureQueue`) are the caller's.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import type { TableDef } from '../topology.ts';
import {
  callDynalite,
  checkIndexes,
  openDynalite,
  requestListenerOf,
  type DynaliteStore,
  type IndexCheck,
  type Reply,
} from './dynalite.ts';
import { LocalStreams, type Image, type StreamStats } from './dynamodb-streams.ts';
import { writeFileAtomic } from './files.ts';
import type { Logger } from './log.ts';

export const TARGET_PREFIX = 'DynamoDB_20120810.';

/** dynalite checks that a request looks signed, not the signature. */
const INTERNAL_HEADERS = {
  'content-type': 'application/x-amz-json-1.0',
  authorization:
    'AWS4-HMAC-SHA256 Credential=local/20240101/local/dynamodb/aws4_request, SignedHeaders=host, Signature=local',
  'x-amz-date': '20240101T000000Z',
};

export interface EngineOptions {
  dataDir: string;
  /** Tables from the topology, keyed by topology name. */
  tables: Record<string, TableDef>;
  /** Physical table name of a topology table. */
  tableName: (topologyName: string) => string;
  /** Invokes the stream consumer; may return a partial batch response. Throwing fails the batch. */
  deliver: (functionName: string, event: DynamoDBStreamEvent) => Promise<unknown>;
  /** On-failure destination for records that still fail after the retries. */
  sendToFailureQueue: (queueName: string, body: string) => Promise<void>;
  timeScale: number;
  shards: number;
  logger: Logger;
  streamJournalCompactMinLines?: number;
  streamResidentRecords?: number;
}

/** What LocalDynamo needs of its storage engine, in this thread or in a worker. */
export interface Engine {
  /**
   * The index check of the open (lib/local/dynalite.ts): null when it was skipped because the store
   * had been stopped cleanly.
   */
  readonly indexCheck: IndexCheck | null;
  /** Opens dynalite, creates missing tables, checks the indexes, recovers the streams. */
  open(): Promise<void>;
  /** Starts the stream delivery loops (once the endpoint serves). */
  startDelivery(): void;
  /** One DynamoDB API request to dynalite: its status, headers and body. */
  request(method: string, url: string, headers: http.OutgoingHttpHeaders, body: Buffer): Promise<Reply>;
  /** Resolves when every captured record has been delivered or sent to the failure queue. */
  drain(): Promise<void>;
  streamStats(): StreamStats[];
  /** The V8 heap of the thread the engine runs in, when that is a worker of its own (else undefined). */
  workerHeap?(): Promise<{ usedMb: number; totalMb: number; mallocedMb: number } | undefined>;
  /** Stops delivery, writes the checkpoints, closes LevelDB after the operations in progress. */
  close(): Promise<void>;
}

export class DynamoCallError extends Error {
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

/** dynalite and the streams, in the thread that calls it. */
export class DynamoEngine implements Engine {
  indexCheck: IndexCheck | null = null;
  private readonly opts: EngineOptions;
  private readonly log: Logger;
  private readonly streams: LocalStreams;
  private store?: DynaliteStore;
  private dynalite?: ReturnType<typeof requestListenerOf>;

  constructor(opts: EngineOptions) {
    this.opts = opts;
    this.log = opts.logger;
    this.streams = new LocalStreams({
      dataDir: opts.dataDir,
      tableName: opts.tableName,
      deliver: opts.deliver,
      sendToFailureQueue: opts.sendToFailureQueue,
      timeScale: opts.timeScale,
      shards: opts.shards,
      logger: opts.logger,
      getItem: (table, key) => this.getItem(table, key),
      journalCompactMinLines: opts.streamJournalCompactMinLines,
      residentRecords: opts.streamResidentRecords,
    });
  }

  async open(): Promise<void> {
    if (this.store) throw new Error('dynamodb engine already open');
    const streams = this.streams;
    const dbDir = path.join(this.opts.dataDir, 'dynamodb');
    mkdirSync(dbDir, { recursive: true });
    const { server, store } = openDynalite({
      path: dbDir,
      createTableMs: 0,
      deleteTableMs: 0,
      updateTableMs: 0,
      capture: (table, old, item) => streams.onWrite(table, old as Image | null, item as Image | null),
    });
    // dynalite's server never listens: its request handler is called in this thread.
    this.store = store;
    this.dynalite = requestListenerOf(server);
    for (const [name, def] of Object.entries(this.opts.tables)) await this.ensureTable(name, def);
    await this.checkIndexesAfterCrash(store);
    for (const [name, def] of Object.entries(this.opts.tables)) if (def.stream) await streams.open(name, def);
  }

  startDelivery(): void {
    this.streams.startDelivery();
  }

  request(method: string, url: string, headers: http.OutgoingHttpHeaders, body: Buffer): Promise<Reply> {
    if (!this.dynalite) return Promise.reject(new Error('local dynamodb is stopped'));
    return callDynalite(this.dynalite, method, url, headers, body);
  }

  drain(): Promise<void> {
    return this.streams.drain();
  }

  streamStats(): StreamStats[] {
    return this.streams.streamStats();
  }

  /**
   * Stops delivery (deliveries in flight are not awaited: their records are not checkpointed and
   * are delivered again after a restart), writes the checkpoints, then closes LevelDB after the
   * operations in progress and marks the stop clean. The caller has stopped sending requests.
   */
  async close(): Promise<void> {
    const store = this.store;
    if (!store) return;
    this.dynalite = undefined;
    await this.streams.stop();
    // What dynalite's server.close does once its server stopped.
    const level = store.db as unknown as { close(cb: (err?: Error | null) => void): void };
    await new Promise<void>((resolve, reject) => level.close((err) => (err ? reject(err) : resolve())));
    this.store = undefined;
    // Every write is in and LevelDB is closed: the next start need not check the indexes.
    writeFileAtomic(this.cleanMarker(), `${new Date().toISOString()}\n`);
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
}
