/**
 * A bounded cache of dynalite's LevelDB reads by key, kept exact by its writes.
 *
 * Every DynamoDB request dynalite serves reads its table's description from LevelDB (`getTable`),
 * and every item write and GetItem reads the item: in the checkout bench's profile of the storage
 * engine's thread, `get` was 22 % of it (an implicit LevelDB snapshot and a queued native read per
 * call, then a promise and a `setImmediate`), for keys most of which had just been written or read:
 * a payment's items are read by the next workflow step within milliseconds of their write.
 *
 * The cache sits on the store's LevelDB (`store.db`), under dynalite's sub-databases: every read
 * (`get`) and every write (`put`, `del`, `batch`: dynalite's and lib/local/dynalite.ts's atomic
 * item-and-index batches) of the store goes through it. Its rules keep a hit equal to what LevelDB
 * would answer:
 *
 * - a write drops the key at once (before it lands) and, when it lands with no other write of that
 *   key in flight meanwhile, caches what it wrote (a delete caches the absence); a failed write
 *   caches nothing;
 * - a read that misses caches what LevelDB answered only when no write of that key was issued while
 *   it ran (else the answer may be older than the write);
 * - a hit answers a fresh copy (the text parsed again: callers mutate what they read) and, like
 *   LevelDB's read, never synchronously.
 *
 * Scans and queries read LevelDB's iterators, not `get`, and are not cached. At most `maxEntries`
 * keys are held (least recently used leaves first); values over `maxValueBytes` are not cached.
 */

/** What the cache needs of dynalite's LevelDB (abstract-level with dynalite's callback wrappers). */
export interface CallbackLevel {
  get(key: string, cb?: (err: Error | null, value?: unknown) => void): Promise<unknown> | void;
  put(key: string, value: unknown, cb?: (err?: Error | null) => void): Promise<void> | void;
  del(key: string, cb?: (err?: Error | null) => void): Promise<void> | void;
  batch(
    ops: { type: 'put' | 'del'; key: string; value?: unknown }[],
    cb?: (err?: Error | null) => void,
  ): Promise<void> | void;
}

export interface ReadCacheStats {
  entries: number;
  hits: number;
  misses: number;
}

/** Cached absence (a key LevelDB does not hold). */
const ABSENT = '\u0000absent';
const CACHED = Symbol('paystep.dynalite.readCache');

type WriteCallback = (err?: Error | null) => void;
type GetCallback = (err: Error | null, value?: unknown) => void;
type Cached = CallbackLevel & { [CACHED]?: ReadCacheStats };

/**
 * Puts the cache in front of `db`'s reads (once; a second call changes nothing) and returns its
 * counters.
 */
export function cacheReads(
  db: CallbackLevel,
  opts: { maxEntries?: number; maxValueBytes?: number } = {},
): ReadCacheStats {
  const target = db as Cached;
  if (target[CACHED]) return target[CACHED];
  const maxEntries = opts.maxEntries ?? 4000;
  const maxValueBytes = opts.maxValueBytes ?? 16 * 1024;
  const stats: ReadCacheStats = { entries: 0, hits: 0, misses: 0 };
  target[CACHED] = stats;

  /** key → JSON text of the value, or ABSENT; in least-recently-used order. */
  const cache = new Map<string, string>();
  /** key → writes issued and not landed yet. */
  const writing = new Map<string, number>();
  /** Keys written by another write while one was in flight: the landing order is not known. */
  const contended = new Set<string>();
  /** key → reads in flight that missed; each turns stale when a write of the key is issued. */
  const reading = new Map<string, { stale: boolean }[]>();

  let disabled = false;
  const remember = (key: string, text: string) => {
    if (disabled || text.length > maxValueBytes) return;
    cache.delete(key);
    cache.set(key, text);
    if (cache.size > maxEntries) cache.delete(cache.keys().next().value as string);
    stats.entries = cache.size;
  };
  const forget = (key: string) => {
    cache.delete(key);
    stats.entries = cache.size;
  };

  /** A write of these keys is issued: returns what to do when it lands. */
  const issued = (writes: { key: string; text: string | undefined }[]) => {
    for (const { key } of writes) {
      forget(key);
      const n = writing.get(key) ?? 0;
      if (n > 0) contended.add(key);
      writing.set(key, n + 1);
      for (const r of reading.get(key) ?? []) r.stale = true;
    }
    return (err?: Error | null) => {
      for (const { key, text } of writes) {
        const n = (writing.get(key) ?? 1) - 1;
        if (n > 0) {
          writing.set(key, n);
          continue;
        }
        writing.delete(key);
        if (contended.delete(key)) continue;
        if (!err && text !== undefined) remember(key, text);
      }
    };
  };

  const get = db.get.bind(db);
  const put = db.put.bind(db);
  const del = db.del.bind(db);
  const batch = db.batch.bind(db);
  const textOf = (value: unknown) => (value === undefined ? ABSENT : JSON.stringify(value));
  const valueOf = (text: string) => (text === ABSENT ? undefined : (JSON.parse(text) as unknown));

  db.get = ((key: string, ...rest: unknown[]) => {
    const cb = typeof rest[rest.length - 1] === 'function' ? (rest.pop() as GetCallback) : undefined;
    // A read with options (an encoding, a snapshot) is LevelDB's alone.
    if (rest.length > 0 && rest[0] !== undefined) return get(key, ...(rest as []), ...(cb ? [cb] : []));
    const text = cache.get(key);
    if (text !== undefined) {
      stats.hits++;
      cache.delete(key);
      cache.set(key, text);
      const value = valueOf(text);
      if (!cb) return Promise.resolve(value);
      setImmediate(cb, null, value);
      return;
    }
    stats.misses++;
    const token = { stale: (writing.get(key) ?? 0) > 0 };
    const list = reading.get(key);
    if (list) list.push(token);
    else reading.set(key, [token]);
    const settle = (err: Error | null, value?: unknown) => {
      const left = reading.get(key)?.filter((r) => r !== token);
      if (left?.length) reading.set(key, left);
      else reading.delete(key);
      if (!err && !token.stale) remember(key, textOf(value));
    };
    if (!cb)
      return (get(key) as Promise<unknown>).then(
        (value) => {
          settle(null, value);
          return value;
        },
        (err: Error) => {
          settle(err);
          throw err;
        },
      );
    get(key, (err, value) => {
      settle(err, value);
      cb(err, value);
    });
  }) as CallbackLevel['get'];

  const withLanding = <R>(
    landed: (err?: Error | null) => void,
    run: (cb?: (err?: Error | null) => void) => Promise<R> | void,
    cb?: (err?: Error | null) => void,
  ) => {
    if (!cb)
      return (run() as Promise<R>).then(
        (r) => {
          landed(null);
          return r;
        },
        (err: Error) => {
          landed(err);
          throw err;
        },
      );
    run((err) => {
      landed(err);
      cb(err);
    });
  };

  /** Splits a call's arguments into its options (passed on as they are) and its callback. */
  const split = (rest: unknown[]) => {
    const cb = typeof rest[rest.length - 1] === 'function' ? (rest.pop() as WriteCallback) : undefined;
    return { options: rest as [], cb };
  };
  db.put = ((key: string, value: unknown, ...rest: unknown[]) => {
    const { options, cb } = split(rest);
    return withLanding(
      issued([{ key, text: textOf(value) }]),
      (c) => put(key, value, ...options, ...(c ? [c] : [])),
      cb,
    );
  }) as CallbackLevel['put'];
  db.del = ((key: string, ...rest: unknown[]) => {
    const { options, cb } = split(rest);
    return withLanding(issued([{ key, text: ABSENT }]), (c) => del(key, ...options, ...(c ? [c] : [])), cb);
  }) as CallbackLevel['del'];
  db.batch = ((ops: Parameters<CallbackLevel['batch']>[0], ...rest: unknown[]) => {
    // A chained batch (no operations given) writes keys the cache cannot see: it stops caching.
    if (!Array.isArray(ops)) {
      disabled = true;
      cache.clear();
      stats.entries = 0;
      return (batch as (...a: unknown[]) => unknown)(ops, ...rest);
    }
    const { options, cb } = split(rest);
    return withLanding(
      issued(ops.map((op) => ({ key: op.key, text: op.type === 'del' ? ABSENT : textOf(op.value) }))),
      (c) => batch(ops, ...options, ...(c ? [c] : [])),
      cb,
    );
  }) as CallbackLevel['batch'];
  return stats;
}
