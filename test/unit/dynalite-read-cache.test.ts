/**
 * The read cache in front of dynalite's LevelDB (lib/local/dynalite-read-cache.ts): a hit always
 * equals what LevelDB would answer, whatever the interleaving of reads and writes.
 */
import fc from 'fast-check';
import { cacheReads, type CallbackLevel } from '../../lib/local/dynalite-read-cache.ts';

type Cb = (err?: Error | null, value?: unknown) => void;

/**
 * A LevelDB stand-in whose operations complete when the test says so, each applied (writes) or
 * read (gets) at its completion, as LevelDB's thread pool does: the test controls every ordering.
 */
class SlowLevel {
  readonly data = new Map<string, string>();
  readonly pending: { run: () => void }[] = [];
  reads = 0;
  failNext = false;

  private later(apply: () => { err?: Error; value?: unknown }, cb?: Cb): Promise<unknown> | void {
    let settle!: (r: { err?: Error; value?: unknown }) => void;
    const done = new Promise<{ err?: Error; value?: unknown }>((r) => (settle = r));
    this.pending.push({ run: () => settle(apply()) });
    if (cb) {
      void done.then(({ err, value }) => setImmediate(() => cb(err ?? null, value)));
      return;
    }
    return done.then(({ err, value }) => {
      if (err) throw err;
      return value;
    });
  }

  private write(apply: () => void) {
    if (this.failNext) {
      this.failNext = false;
      return () => ({ err: new Error('write failed') });
    }
    return () => (apply(), {});
  }

  get(key: string, cb?: Cb) {
    return this.later(() => {
      this.reads++;
      const text = this.data.get(key);
      return { value: text === undefined ? undefined : JSON.parse(text) };
    }, cb);
  }
  put(key: string, value: unknown, cb?: Cb) {
    const text = JSON.stringify(value);
    return this.later(
      this.write(() => this.data.set(key, text)),
      cb,
    ) as Promise<void> | void;
  }
  del(key: string, cb?: Cb) {
    return this.later(
      this.write(() => this.data.delete(key)),
      cb,
    ) as Promise<void> | void;
  }
  batch(ops: { type: 'put' | 'del'; key: string; value?: unknown }[], cb?: Cb) {
    const texts = ops.map((op) => (op.type === 'put' ? JSON.stringify(op.value) : undefined));
    return this.later(
      this.write(() =>
        ops.forEach((op, i) =>
          op.type === 'put' ? this.data.set(op.key, texts[i]!) : this.data.delete(op.key),
        ),
      ),
      cb,
    ) as Promise<void> | void;
  }

  /** Completes the pending operation at `index` (in issue order). */
  complete(index = 0) {
    const [op] = this.pending.splice(index, 1);
    op!.run();
  }
  async drain() {
    while (this.pending.length) {
      this.complete();
      await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setImmediate(r));
  }
}

function setup(opts?: { maxEntries?: number }) {
  const level = new SlowLevel();
  const stats = cacheReads(level as unknown as CallbackLevel, opts);
  const db = level as unknown as CallbackLevel;
  const get = (key: string) => new Promise<unknown>((r, j) => db.get(key, (e, v) => (e ? j(e) : r(v))));
  const put = (key: string, value: unknown) =>
    new Promise<void>((r, j) => db.put(key, value, (e) => (e ? j(e) : r())));
  return { level, stats, db, get, put };
}

async function settled<T>(p: Promise<T>, level: SlowLevel): Promise<T> {
  await level.drain();
  return p;
}

test('a read after a write is answered from the cache, with a fresh copy each time', async () => {
  const { level, stats, get, put } = setup();
  await settled(put('a', { n: 1, list: [1] }), level);
  const first = (await get('a')) as { n: number; list: number[] };
  expect(first).toEqual({ n: 1, list: [1] });
  first.list.push(2);
  first.n = 99;
  expect(await get('a')).toEqual({ n: 1, list: [1] });
  expect(level.reads).toBe(0);
  expect(stats.hits).toBe(2);
});

test('a missing key is cached as missing; a delete caches the absence', async () => {
  const { level, get, put, db } = setup();
  expect(await settled(get('x'), level)).toBeUndefined();
  expect(await get('x')).toBeUndefined();
  expect(level.reads).toBe(1);
  await settled(put('x', 1), level);
  expect(await get('x')).toBe(1);
  await settled(new Promise<void>((r) => db.del('x', () => r())), level);
  expect(await get('x')).toBeUndefined();
  expect(level.reads).toBe(1);
});

test('a read that raced a write does not put its older answer in the cache', async () => {
  const { level, get, put } = setup();
  await settled(put('k', 'old'), level);
  level.data.set('k', JSON.stringify('old')); // as LevelDB holds it
  // Evict by writing through a path the cache sees as contended: two writes in flight.
  const w1 = put('k', 'v1');
  const w2 = put('k', 'v2');
  level.complete(0);
  level.complete(0);
  await Promise.all([w1, w2]);
  // Contended: nothing cached, the read goes to LevelDB.
  const r1 = get('k'); // issued: reads LevelDB
  const w3 = put('k', 'new'); // issued while the read is in flight
  level.complete(0); // the read answers the value before w3 ('v2')
  expect(await r1).toBe('v2');
  level.complete(0); // w3 lands
  await w3;
  expect(await settled(get('k'), level)).toBe('new');
});

test('a read answered before a write lands, but issued after it, never caches the older value', async () => {
  const { level, get, put } = setup();
  level.data.set('k', JSON.stringify('old'));
  const w = put('k', 'new'); // issued, not landed
  const r = get('k'); // misses (the write dropped the key) and reads LevelDB before the write lands
  level.complete(1); // the read completes first: 'old'
  expect(await r).toBe('old');
  level.complete(0); // the write lands
  await w;
  expect(await settled(get('k'), level)).toBe('new');
});

test('a failed write caches nothing: the next read asks LevelDB', async () => {
  const { level, get, put } = setup();
  await settled(put('k', 'a'), level);
  level.failNext = true;
  await expect(settled(put('k', 'b'), level)).rejects.toThrow('write failed');
  const reads = level.reads;
  expect(await settled(get('k'), level)).toBe('a');
  expect(level.reads).toBe(reads + 1);
});

test('at most maxEntries keys are held, least recently used leaving first', async () => {
  const { level, stats, get, put } = setup({ maxEntries: 2 });
  await settled(put('a', 1), level);
  await settled(put('b', 2), level);
  await get('a'); // a is now the most recent
  await settled(put('c', 3), level); // b leaves
  expect(stats.entries).toBe(2);
  const reads = level.reads;
  expect(await get('a')).toBe(1);
  expect(await get('c')).toBe(3);
  expect(level.reads).toBe(reads);
  expect(await settled(get('b'), level)).toBe(2);
  expect(level.reads).toBe(reads + 1);
});

test('promise-style calls (no callback) are cached the same way', async () => {
  const { level, db } = setup();
  const w = db.put('p', { v: 1 }) as Promise<void>;
  await level.drain();
  await w;
  await expect(db.get('p') as Promise<unknown>).resolves.toEqual({ v: 1 });
  expect(level.reads).toBe(0);
});

test('any interleaving: every read answers a value LevelDB held while it ran, and the cache ends equal to LevelDB', async () => {
  type Op = { kind: 'get' | 'put' | 'del' | 'batch'; key: number; value: number; fail: boolean };
  const op = fc.record({
    kind: fc.constantFrom<'get' | 'put' | 'del' | 'batch'>('get', 'get', 'put', 'del', 'batch'),
    key: fc.integer({ min: 0, max: 2 }),
    value: fc.integer({ min: 0, max: 1000 }),
    fail: fc.boolean().map((b) => b && Math.random() < 0.2),
  });
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(op, fc.nat()), { minLength: 1, maxLength: 30 }),
      async (steps: [Op, number][]) => {
        const { level, db } = setup({ maxEntries: 2 });
        const keyOf = (k: number) => `k${k}`;
        /** Every value each key held in LevelDB, in order (undefined: absent). */
        const history = new Map<string, (string | undefined)[]>();
        const record = () => {
          for (const k of [0, 1, 2]) {
            const key = keyOf(k);
            const list = history.get(key) ?? [undefined];
            const now = level.data.get(key);
            if (list[list.length - 1] !== now) list.push(now);
            history.set(key, list);
          }
        };
        record();
        const checks: Promise<void>[] = [];
        for (const [o, pick] of steps) {
          const key = keyOf(o.key);
          if (o.kind === 'get') {
            const from = history.get(key)!.length - 1;
            checks.push(
              new Promise<void>((resolve, reject) =>
                db.get(key, (err, value) => {
                  if (err) return reject(err);
                  const seen = history.get(key)!.slice(from);
                  const text = value === undefined ? undefined : JSON.stringify(value);
                  if (!seen.includes(text))
                    return reject(
                      new Error(`read of ${key} answered ${text}; LevelDB held ${seen.join(', ')}`),
                    );
                  resolve();
                }),
              ),
            );
          } else {
            level.failNext = o.fail;
            const done = () => undefined;
            if (o.kind === 'put') db.put(key, o.value, done);
            else if (o.kind === 'del') db.del(key, done);
            else
              db.batch(
                [
                  { type: 'put', key, value: o.value },
                  { type: 'del', key: keyOf((o.key + 1) % 3) },
                ],
                done,
              );
            level.failNext = false;
          }
          // Complete some pending operation, in any order.
          if (level.pending.length && pick % 3 !== 0) {
            level.complete(pick % level.pending.length);
            record();
            await new Promise((r) => setImmediate(r));
          }
        }
        while (level.pending.length) {
          level.complete(level.pending.length - 1);
          record();
          await new Promise((r) => setImmediate(r));
        }
        await new Promise((r) => setImmediate(r));
        await Promise.all(checks);
        for (const k of [0, 1, 2]) {
          const key = keyOf(k);
          const p = new Promise<unknown>((r) => db.get(key, (_e, v) => r(v)));
          await level.drain();
          const text = level.data.get(key);
          expect(await p).toEqual(text === undefined ? undefined : JSON.parse(text));
        }
      },
    ),
    { numRuns: 300 },
  );
});
