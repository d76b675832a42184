/**
 * dynalite with crash-atomic item writes, and a check of its indexes against its items.
 *
 * dynalite (4.x) keeps a table's items and its secondary index entries as separate LevelDB keys
 * (`item-<table>~<key>`, `index-global~<table>~<index>~<key>`, …) in one LevelDB. Its PutItem,
 * UpdateItem and DeleteItem (actions/putItem.js, updateItem.js, deleteItem.js) first write the
 * index entries (`db.updateIndexes`: the deletes, then the puts, each its own LevelDB write) and
 * only then the item (`itemDb.put` / `itemDb.del`, another LevelDB write). A process killed between
 * those writes leaves an index that disagrees with the item: an index entry for an item that was
 * never stored (a GSI query lists it, GetItem answers nothing), an entry with attributes of a write
 * the item does not have, or an item missing from an index whose old entry was already deleted.
 *
 * Two measures, both needed only because of that:
 *
 * - Atomic writes. `updateIndexes` no longer writes: it leaves its operations with the store, and the
 *   item's own put or delete that follows (same key, under dynalite's per-item lock) writes them
 *   together with the item in one LevelDB batch. LevelDB writes a batch as one log record, applied
 *   whole or not at all after a crash, so an item and its index entries change together.
 * - A check at start, after any stop that was not clean (and for data written before this module
 *   existed): every index entry is compared with what the item it points to would put there, and
 *   the index is made to agree with the items (missing entries put, stale ones replaced, orphans
 *   deleted) in one batch. The item is the truth, as it is for the stream capture
 *   (lib/local/dynamodb.ts), which compares items, never indexes. With the atomic writes this finds
 *   nothing after a crash; it repairs data dirs written before them.
 *
 * The same place, just before the item's LevelDB write and under dynalite's per-item lock, is where
 * dynalite holds both images of the write: the item it read (the old image, which its condition
 * check used) and the item it is about to store (the new image, after the update expression). A
 * store opened with a `capture` hook hands both to it there, so the stream capture
 * (lib/local/dynamodb.ts) takes its images from the write itself, with no read before or after, in
 * the order dynalite applies the writes; the hook's returned callback hears whether the write landed.
 *
 * One gap with DynamoDB is closed the same way: dynalite 4 predates `ReturnValuesOnConditionCheckFailure`
 * (it drops the parameter). PutItem, UpdateItem and DeleteItem accept it (`ALL_OLD` or `NONE`, as
 * DynamoDB validates it), and with `ALL_OLD` a ConditionalCheckFailedException carries the item the
 * condition was checked against (`Item`), read under the same lock, as DynamoDB answers.
 *
 * One leak is closed too. dynalite's key and value streams (`createKeyStream`, `createValueStream`,
 * behind every Query, Scan and ListTables) read a LevelDB iterator and, when they end or are
 * destroyed, close it only through `iterator.return()`, which abstract-level iterators do not have:
 * every query left an iterator open. An open iterator pins the LevelDB version it read (its table
 * files, which compactions then cannot delete, and which stay memory-mapped) and its memtables, so
 * the data dir and the process's RSS grew with every query (about 0.5 MB a payment). The streams
 * here close their iterator when they end or are destroyed (`closeStreamIterators`).
 *
 * `callDynalite` runs dynalite's own HTTP request handler on an in-memory request and response, in
 * the thread dynalite runs in (lib/local/dynamodb-engine.ts): the local DynamoDB never listens on
 * dynalite's port.
 *
 * The patch depends on dynalite's internals, so it refuses any dynalite but 4.x: an upgrade must be
 * re-checked (test/unit/dynamodb-crash.test.ts kills writers at random points and checks indexes).
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type http from 'node:http';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import { cacheParses } from './dynalite-expression-cache.ts';
import { cacheReads, type CallbackLevel } from './dynalite-read-cache.ts';

const require = createRequire(import.meta.url);

type Json = Record<string, unknown>;

interface LevelOp {
  type: 'put' | 'del';
  key: string;
  value?: unknown;
}

/** The LevelDB of a dynalite store (abstract-level, with dynalite's callback wrappers). */
interface DynaliteLevel {
  close(): Promise<void>;
  batch(ops: LevelOp[], cb?: (err?: Error | null) => void): Promise<void> | void;
  get(key: string): Promise<unknown>;
  iterator(options: { gte: string; lt: string }): AsyncIterable<[string, unknown]>;
}

interface SubDb {
  put(key: string, value: unknown, cb: (err?: Error | null) => void): void;
  del(key: string, cb: (err?: Error | null) => void): void;
}

interface IndexDef {
  IndexName: string;
}

interface TableDescription {
  TableName: string;
  KeySchema: { AttributeName: string }[];
  LocalSecondaryIndexes?: IndexDef[];
  GlobalSecondaryIndexes?: IndexDef[];
}

export interface DynaliteStore {
  db: DynaliteLevel;
  getItemDb(name: string): SubDb;
}

/**
 * Called for every PutItem, UpdateItem and DeleteItem that passed its checks, just before the item
 * (and its index entries) are written, under dynalite's lock of that item: `old` is the item before
 * (null: absent), `item` the item after (null: deleted). Synchronous; a throw fails the write (it is
 * not made). The callback it returns, if any, hears the outcome of the LevelDB write (an error: the
 * write did not land) before dynalite answers.
 */
export type WriteCapture = (
  table: string,
  old: Json | null,
  item: Json | null,
) => ((err?: Error | null) => void) | undefined;

interface DynaliteDbModule {
  create(options: Json): DynaliteStore;
  checkConditional(data: Json, existingItem: Json | null | undefined): ApiError | null | undefined;
  updateIndexes(
    store: DynaliteStore,
    table: TableDescription,
    existingItem: Json | null | undefined,
    item: Json | null | undefined,
    cb: (err?: Error | null) => void,
  ): void;
  getIndexActions(
    indexes: IndexDef[],
    existingItem: Json | null | undefined,
    item: Json | null | undefined,
    table: TableDescription,
  ): { puts: { index: string; key: string; item: Json }[]; deletes: { index: string; key: string }[] };
  createKey(item: Json, table: TableDescription): string;
}

interface ApiError extends Error {
  statusCode?: number;
  body?: Json;
}

const dynaliteServer = require('dynalite') as (options: Json) => http.Server;
const dynaliteDb = require('dynalite/db') as DynaliteDbModule;
const DYNALITE_VERSION = (require('dynalite/package.json') as { version: string }).version;

/** Option naming the callback that receives the store (dynalite passes its options to db.create). */
const STORE_SINK = Symbol('paystep.dynalite.store');
/** A store's index operations (and images) waiting for their item's write, by `<table>\0<item key>`. */
const PENDING = Symbol('paystep.dynalite.pending');
/** A store's write capture hook. */
const CAPTURE = Symbol('paystep.dynalite.capture');
const WRAPPED = Symbol('paystep.dynalite.wrapped');
const INDEX_TYPES = ['Local', 'Global'] as const;

interface PendingWrite {
  ops: LevelOp[];
  old: Json | null;
  item: Json | null;
}

type AtomicStore = DynaliteStore & { [PENDING]?: Map<string, PendingWrite>; [CAPTURE]?: WriteCapture };

const itemKey = (table: string, key: string) => `item-${table}~${key}`;
const indexKey = (type: string, table: string, index: string, key: string) =>
  `index-${type.toLowerCase()}~${table}~${index}~${key}`;
const indexesOf = (table: TableDescription, type: (typeof INDEX_TYPES)[number]) =>
  (type === 'Local' ? table.LocalSecondaryIndexes : table.GlobalSecondaryIndexes) ?? [];

/** The index writes of one item change, in dynalite's order (deletes, then puts). */
function indexOps(table: TableDescription, existing: Json | null | undefined, item: Json | null | undefined) {
  const dels: LevelOp[] = [];
  const puts: LevelOp[] = [];
  for (const type of INDEX_TYPES) {
    const indexes = indexesOf(table, type);
    if (indexes.length === 0) continue;
    const actions = dynaliteDb.getIndexActions(indexes, existing, item, table);
    for (const a of actions.deletes)
      dels.push({ type: 'del', key: indexKey(type, table.TableName, a.index, a.key) });
    for (const a of actions.puts)
      puts.push({ type: 'put', key: indexKey(type, table.TableName, a.index, a.key), value: a.item });
  }
  return [...dels, ...puts];
}

let installed = false;

function install(): void {
  if (installed) return;
  if (!/^4\./.test(DYNALITE_VERSION))
    throw new Error(
      `dynalite ${DYNALITE_VERSION}: lib/local/dynalite.ts makes item and index writes atomic by patching ` +
        'dynalite 4.x internals; check them against this version (see test/unit/dynamodb-crash.test.ts)',
    );
  for (const fn of ['create', 'updateIndexes', 'getIndexActions', 'createKey', 'checkConditional'] as const)
    if (typeof dynaliteDb[fn] !== 'function')
      throw new Error(`dynalite ${DYNALITE_VERSION} has no db.${fn}: lib/local/dynalite.ts needs it`);
  installed = true;

  // Expressions parsed once per shape (lib/local/dynalite-expression-cache.ts).
  for (const kind of ['condition', 'update', 'projection'])
    cacheParses(kind, require(`dynalite/db/${kind}Parser`) as Parameters<typeof cacheParses>[1]);

  // ReturnValuesOnConditionCheckFailure: validated as DynamoDB does, and the old item on a failure.
  for (const action of ['putItem', 'updateItem', 'deleteItem']) {
    const validation = require(`dynalite/validations/${action}`) as { types?: Json };
    if (!validation.types) throw new Error(`dynalite ${DYNALITE_VERSION} has no validations/${action} types`);
    validation.types.ReturnValuesOnConditionCheckFailure = { type: 'String', enum: ['ALL_OLD', 'NONE'] };
  }
  const checkConditional = dynaliteDb.checkConditional;
  dynaliteDb.checkConditional = function (data, existingItem) {
    const err = checkConditional.call(this, data, existingItem);
    if (err?.body && existingItem && data.ReturnValuesOnConditionCheckFailure === 'ALL_OLD')
      err.body.Item = existingItem;
    return err;
  };

  const create = dynaliteDb.create;
  dynaliteDb.create = function (options: Json) {
    const store = create.call(this, options) as AtomicStore;
    const sink = (options as { [STORE_SINK]?: (s: DynaliteStore) => void })[STORE_SINK];
    if (sink) {
      makeAtomic(store);
      sink(store);
    }
    return store;
  };

  const updateIndexes = dynaliteDb.updateIndexes;
  dynaliteDb.updateIndexes = function (store, table, existingItem, item, cb) {
    const pending = (store as AtomicStore)[PENDING];
    // Stores not opened through openDynalite keep dynalite's own behaviour.
    if (!pending) return updateIndexes.call(this, store, table, existingItem, item, cb);
    const subject = item ?? existingItem;
    if (subject) {
      const ops = indexOps(table, existingItem, item);
      // Called under dynalite's lock of this item; the item's put or del comes next.
      if (ops.length || (store as AtomicStore)[CAPTURE])
        pending.set(`${table.TableName}\u0000${dynaliteDb.createKey(subject, table)}`, {
          ops,
          old: existingItem ?? null,
          item: item ?? null,
        });
    }
    cb();
  };
}

/** The item's put or delete writes the index operations left by `updateIndexes` in the same batch. */
function makeAtomic(store: AtomicStore): void {
  const pending = new Map<string, PendingWrite>();
  store[PENDING] = pending;
  const getItemDb = store.getItemDb.bind(store);
  store.getItemDb = (name: string) => {
    const sub = getItemDb(name) as SubDb & { [WRAPPED]?: true };
    if (sub[WRAPPED]) return sub;
    const put = sub.put.bind(sub);
    const del = sub.del.bind(sub);
    const take = (key: string) => {
      const id = `${name}\u0000${key}`;
      const write = pending.get(id);
      if (write) pending.delete(id);
      return write;
    };
    /** The capture hook's outcome callback chained before dynalite's; undefined: the hook threw. */
    const captured = (write: PendingWrite | undefined, cb: (err?: Error | null) => void) => {
      const capture = store[CAPTURE];
      if (!write || !capture) return cb;
      let landed: ReturnType<WriteCapture>;
      try {
        landed = capture(name, write.old, write.item);
      } catch (err) {
        cb(err as Error);
        return undefined;
      }
      return landed
        ? (err?: Error | null) => {
            landed(err);
            cb(err);
          }
        : cb;
    };
    sub.put = (key, value, cb) => {
      const write = take(key);
      const done = captured(write, cb);
      if (!done) return;
      if (!write?.ops.length) return put(key, value, done);
      void store.db.batch([...write.ops, { type: 'put', key: itemKey(name, key), value }], done);
    };
    sub.del = (key, cb) => {
      const write = take(key);
      const done = captured(write, cb);
      if (!done) return;
      if (!write?.ops.length) return del(key, done);
      void store.db.batch([...write.ops, { type: 'del', key: itemKey(name, key) }], done);
    };
    sub[WRAPPED] = true;
    return sub;
  };
}

interface LevelIterator {
  next(): Promise<unknown>;
  close(): Promise<void>;
}

interface StreamingLevel {
  keys(options?: Json): LevelIterator;
  values(options?: Json): LevelIterator;
  createKeyStream?: (options?: Json) => Readable;
  createValueStream?: (options?: Json) => Readable;
}

/** dynalite's key and value streams, closing their LevelDB iterator when they end or are destroyed. */
export function closeStreamIterators(db: StreamingLevel): void {
  if (typeof db.keys !== 'function' || typeof db.values !== 'function' || !db.createValueStream)
    throw new Error('dynalite store: the LevelDB has no keys()/values()/createValueStream to patch');
  const stream = (iterator: LevelIterator) => {
    let closing: Promise<void> | undefined;
    const close = () => (closing ??= iterator.close().catch(() => undefined));
    return new Readable({
      objectMode: true,
      read() {
        iterator.next().then(
          (value) => {
            if (value !== undefined) return void this.push(value);
            void close();
            this.push(null);
          },
          (err: Error) => this.destroy(err),
        );
      },
      destroy(err, callback) {
        void close().then(() => callback(err));
      },
    });
  };
  db.createKeyStream = (options) => stream(db.keys(options));
  db.createValueStream = (options) => stream(db.values(options));
}

/**
 * Starts dynalite on `path` with atomic item writes (and `capture` called for each item write); the
 * store is for `checkIndexes`.
 */
export function openDynalite(options: {
  path: string;
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
  capture?: WriteCapture;
}): { server: http.Server; store: DynaliteStore } {
  install();
  const { capture, ...dynaliteOptions } = options;
  let store: AtomicStore | undefined;
  const server = dynaliteServer({
    ...dynaliteOptions,
    [STORE_SINK]: (s: DynaliteStore) => {
      store = s;
      closeStreamIterators(s.db as unknown as StreamingLevel);
      cacheReads(s.db as unknown as CallbackLevel);
      if (capture) store[CAPTURE] = capture;
    },
  });
  if (!store) throw new Error('dynalite did not create its store through db.create');
  return { server, store };
}

export interface IndexCheck {
  tables: number;
  items: number;
  indexEntries: number;
  /** Entries put (missing or stale) and deleted (orphans) to make the indexes agree with the items. */
  repaired: number;
  /** Up to 20 of the repairs, e.g. `paystep-main gsi1: orphan entry of item {"pk":…}`. */
  examples: string[];
}

const digest = (value: unknown) =>
  createHash('sha1')
    .update(JSON.stringify(canonicalJson(value)))
    .digest('hex');

function canonicalJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonicalJson);
  if (value && typeof value === 'object') {
    const out: Json = {};
    for (const k of Object.keys(value).sort()) out[k] = canonicalJson((value as Json)[k]);
    return out;
  }
  return value;
}

/**
 * Makes every secondary index agree with the items (the item is the truth), in one batch. Run
 * before the store serves requests: it reads the whole store (memory: one hash per index entry).
 */
export async function checkIndexes(store: DynaliteStore): Promise<IndexCheck> {
  const db = store.db;
  const range = (prefix: string) => db.iterator({ gte: prefix, lt: `${prefix}\xff` });
  const result: IndexCheck = { tables: 0, items: 0, indexEntries: 0, repaired: 0, examples: [] };
  const ops: LevelOp[] = [];
  const note = (text: string) => {
    result.repaired++;
    if (result.examples.length < 20) result.examples.push(text);
  };
  const keyText = (item: unknown, table: TableDescription) =>
    JSON.stringify(
      Object.fromEntries(
        table.KeySchema.map(({ AttributeName: a }) => {
          const v = (item as Record<string, Json | undefined>)[a];
          return [a, v ? Object.values(v)[0] : null];
        }),
      ),
    );

  const tables: TableDescription[] = [];
  for await (const [, t] of range('table~')) tables.push(t as TableDescription);
  for (const table of tables) {
    result.tables++;
    if (INDEX_TYPES.every((type) => indexesOf(table, type).length === 0)) continue;
    // Expected entries, from the items: index key → hash of the entry and the item's key.
    const expected = new Map<string, { hash: string; item: string }>();
    for await (const [key, item] of range(itemKey(table.TableName, ''))) {
      result.items++;
      for (const op of indexOps(table, null, item as Json))
        expected.set(op.key, { hash: digest(op.value), item: key });
    }
    const stale = new Map<string, string>();
    for (const type of INDEX_TYPES) {
      for (const index of indexesOf(table, type)) {
        for await (const [key, entry] of range(indexKey(type, table.TableName, index.IndexName, ''))) {
          result.indexEntries++;
          const want = expected.get(key);
          if (!want) {
            ops.push({ type: 'del', key });
            note(`${table.TableName} ${index.IndexName}: orphan entry of item ${keyText(entry, table)}`);
            continue;
          }
          expected.delete(key);
          if (want.hash !== digest(entry)) stale.set(key, want.item);
        }
      }
    }
    const missing = [...expected].map(([key, want]) => [key, want.item] as const);
    for (const [key, itemAt] of [...stale, ...missing]) {
      const item = (await db.get(itemAt)) as Json | undefined;
      const op = item ? indexOps(table, null, item).find((o) => o.key === key) : undefined;
      if (!op) continue;
      ops.push(op);
      const what = stale.has(key) ? 'stale entry' : 'missing entry';
      note(`${table.TableName} ${key.split('~')[2]}: ${what} of item ${keyText(item, table)}`);
    }
  }
  if (ops.length) await db.batch(ops);
  return result;
}

// ---------------------------------------------------------------------------------------------
// dynalite's request handler without a socket

export interface Reply {
  status: number;
  headers: http.OutgoingHttpHeaders;
  body: Buffer;
}

type RequestListener = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** The request listener of dynalite's HTTP server (bound to its store). */
export function requestListenerOf(server: http.Server): RequestListener {
  const listener = server.listeners('request')[0] as RequestListener | undefined;
  if (typeof listener !== 'function') throw new Error('dynalite server has no request listener');
  return listener;
}

/**
 * One request through dynalite's HTTP handler without a socket. dynalite reads `method`, `url`,
 * `headers` and the body events of the request, and answers through `statusCode`, `setHeader` and
 * `end` (index.js `httpHandler`, `sendData`).
 */
export function callDynalite(
  listener: RequestListener,
  method: string,
  url: string,
  headers: http.OutgoingHttpHeaders,
  body: Buffer,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = new EventEmitter() as EventEmitter & {
      method: string;
      url: string;
      headers: Record<string, string>;
    };
    req.method = method;
    req.url = url;
    req.headers = {};
    for (const [k, v] of Object.entries(headers))
      if (v !== undefined) req.headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
    const out: http.OutgoingHttpHeaders = {};
    const res = {
      statusCode: 200,
      contentType: undefined as string | undefined,
      headersSent: false,
      setHeader(name: string, value: string | number) {
        const key = name.toLowerCase();
        if (key !== 'content-length' && key !== 'transfer-encoding') out[key] = String(value);
        return res;
      },
      end(data?: string | Buffer) {
        res.headersSent = true;
        resolve({
          status: res.statusCode,
          headers: out,
          body:
            data === undefined ? Buffer.alloc(0) : Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8'),
        });
      },
    };
    try {
      listener(req as unknown as http.IncomingMessage, res as unknown as http.ServerResponse);
      if (body.length > 0) req.emit('data', body);
      req.emit('end');
    } catch (err) {
      reject(err instanceof Error ? err : new Error(String(err)));
    }
  });
}
