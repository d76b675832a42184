/**
 * Durable state for a processor simulator: typed collections of JSON objects, journaled before the
 * caller goes on (a RecordFile, record-file.ts: one `write(2)` a record, a torn last line cut at
 * load), plus durable timers (things due later: an asynchronous outcome, a retry, a dispute stage)
 * stored in the same journal.
 *
 * Collections are resident (every object parsed in memory, as a simulator's working set: timers,
 * pending deliveries, open settlement entries) unless named in `onDisk`: those keep only an index
 * entry in memory (about 100 bytes an object) and are read from disk on demand through an LRU, so
 * that memory does not grow with history (payments, idempotency records). `all`/`entries` of an
 * on-disk collection read every object of it: for rare lookups only.
 *
 * `load()` restores the index (from the snapshot a clean `close()` leaves, or by replaying the
 * journal); the journal is compacted while running once it holds enough dead lines, so a restarted
 * simulator has every object, idempotency record, pending notification and timer it had. Without a
 * file the store is in memory only. Nothing here knows a processor.
 */
import type { Logger } from '../../log.ts';
import { RecordFile } from './record-file.ts';

interface StoreRecord {
  /** Collection. */
  t: string;
  id: string;
  /** The object (absent: deleted). */
  v?: unknown;
}

export interface DurableStoreOptions {
  /** Collections kept on disk with an index in memory (the others stay parsed in memory). */
  onDisk?: readonly string[];
  /** Journal lines after which it may be compacted while running (default 20,000). */
  compactMinLines?: number;
  /** Objects of on-disk collections kept parsed, the last used (default 2,000). */
  cacheSize?: number;
}

const keyOf = (t: string, id: string) => `${t}|${id}`;

export class DurableStore {
  private readonly file: RecordFile<StoreRecord>;
  /** Resident collections. */
  private readonly data = new Map<string, Map<string, unknown>>();
  /** On-disk collection → its tag in the index (1…). */
  private readonly diskTags = new Map<string, number>();
  private readonly compactMinLines: number;
  private compactScheduled = false;
  private loaded = false;

  /** `file`: the journal (e.g. `<dataDir>/processors/adyen.jsonl`); none: memory only. */
  constructor(file?: string, opts: DurableStoreOptions = {}) {
    (opts.onDisk ?? []).forEach((t, i) => this.diskTags.set(t, i + 1));
    this.compactMinLines = opts.compactMinLines ?? 20_000;
    this.file = new RecordFile<StoreRecord>({
      file,
      cacheSize: opts.cacheSize,
      key: (r) => keyOf(r.t, r.id),
      deleted: (r) => r.v === undefined,
      classify: (r) => ({ tag: this.diskTags.get(r.t) ?? 0 }),
    });
  }

  /** Loads the journal (once; later calls do nothing) and the resident collections. */
  load(): void {
    if (this.loaded) return;
    this.loaded = true;
    const { fullScan } = this.file.load(
      () => undefined,
      () => undefined,
    );
    for (const key of [...this.file.keysWhere((tag) => tag === 0)]) {
      const r = this.file.read(key);
      if (r && r.v !== undefined) this.collection(r.t).set(r.id, r.v);
    }
    if (fullScan || this.wantsCompaction()) this.file.compact(null);
  }

  get<T>(type: string, id: string): T | undefined {
    if (!this.diskTags.has(type)) return this.data.get(type)?.get(id) as T | undefined;
    return this.file.read(keyOf(type, id))?.v as T | undefined;
  }

  has(type: string, id: string): boolean {
    if (!this.diskTags.has(type)) return this.data.get(type)?.has(id) ?? false;
    return this.file.has(keyOf(type, id));
  }

  /** Every object of a collection, in the order first stored. */
  all<T>(type: string): T[] {
    return this.entries<T>(type).map(([, v]) => v);
  }

  /** Every [id, object] of a collection, in the order first stored. */
  entries<T>(type: string): [string, T][] {
    const tag = this.diskTags.get(type);
    if (tag === undefined) return [...(this.data.get(type)?.entries() ?? [])] as [string, T][];
    const out: [string, T][] = [];
    for (const key of [...this.file.keysWhere((t) => t === tag)]) {
      const r = this.file.read(key);
      if (r && r.v !== undefined) out.push([r.id, r.v as T]);
    }
    return out;
  }

  count(type: string): number {
    const tag = this.diskTags.get(type);
    if (tag === undefined) return this.data.get(type)?.size ?? 0;
    let n = 0;
    for (const _ of this.file.keysWhere((t) => t === tag)) n++;
    return n;
  }

  /** Stores (or replaces) an object and journals it before returning. */
  put<T>(type: string, id: string, value: T): T {
    if (!this.diskTags.has(type)) this.collection(type).set(id, value);
    this.file.append({ t: type, id, v: value });
    this.maybeCompact();
    return value;
  }

  delete(type: string, id: string): void {
    if (!this.has(type, id)) return;
    if (!this.diskTags.has(type)) this.collection(type).delete(id);
    this.file.append({ t: type, id });
    this.maybeCompact();
  }

  /** What memory holds: index entries, objects parsed (resident and cached) and journal lines. */
  memoryStats(): { indexed: number; resident: number; cached: number; journalLines: number } {
    let resident = 0;
    for (const m of this.data.values()) resident += m.size;
    return { indexed: this.file.count, resident, cached: this.file.cached, journalLines: this.file.lines };
  }

  /** Writes the index snapshot (a fast next load) and closes the journal. */
  close(): void {
    this.file.close(null);
  }

  private wantsCompaction(): boolean {
    return this.file.lines >= this.compactMinLines && this.file.lines >= 1.5 * this.file.count;
  }

  private maybeCompact(): void {
    if (this.compactScheduled || !this.loaded || !this.wantsCompaction()) return;
    this.compactScheduled = true;
    setImmediate(() => {
      this.compactScheduled = false;
      if (this.wantsCompaction()) this.file.compact(null);
    });
  }

  private collection(type: string): Map<string, unknown> {
    let m = this.data.get(type);
    if (!m) {
      m = new Map();
      this.data.set(type, m);
    }
    return m;
  }
}

interface TimerRecord {
  id: string;
  kind: string;
  /** Epoch ms when due. */
  at: number;
  data: unknown;
}

export interface DurableTimersOptions {
  store: DurableStore;
  logger: Logger;
  now?: () => number;
  /** Delays given to `after` run this many times faster (default 1). */
  timeScale?: number;
}

/**
 * Timers that survive a restart: each is stored (collection `timer`) until it has run. A timer due
 * while the simulator was stopped runs at `resume()`. Handlers are registered per kind; a handler's
 * error is logged, never thrown.
 */
export class DurableTimers {
  private readonly opts: DurableTimersOptions;
  private readonly handlers = new Map<string, (data: unknown) => void | Promise<void>>();
  private readonly live = new Map<string, NodeJS.Timeout>();
  private readonly running = new Set<Promise<void>>();
  private readonly idleWaiters: (() => void)[] = [];
  private seq = 0;
  private active = false;

  constructor(opts: DurableTimersOptions) {
    this.opts = opts;
  }

  private get now(): number {
    return (this.opts.now ?? Date.now)();
  }

  on<T>(kind: string, handler: (data: T) => void | Promise<void>): void {
    this.handlers.set(kind, handler as (data: unknown) => void | Promise<void>);
  }

  /** Runs `kind` with `data` after `delayMs` of simulated time (divided by the time scale). */
  after(kind: string, delayMs: number, data: unknown): string {
    const id = `${this.now.toString(36)}-${(this.seq++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const scaled = Math.max(0, delayMs) / (this.opts.timeScale ?? 1);
    const rec: TimerRecord = { id, kind, at: this.now + scaled, data };
    this.opts.store.put('timer', id, rec);
    if (this.active) this.arm(rec);
    return id;
  }

  cancel(id: string): void {
    const t = this.live.get(id);
    if (t) clearTimeout(t);
    this.live.delete(id);
    this.opts.store.delete('timer', id);
    this.notifyIdle();
  }

  /** Stored timers of a kind (e.g. to find the one for an object). */
  list<T>(kind: string): { id: string; at: number; data: T }[] {
    return this.opts.store
      .all<TimerRecord>('timer')
      .filter((r) => r.kind === kind)
      .map((r) => ({ id: r.id, at: r.at, data: r.data as T }));
  }

  /** Arms every stored timer (call once handlers are registered and the simulator listens). */
  resume(): void {
    this.active = true;
    const recs = this.opts.store.all<TimerRecord>('timer').sort((a, b) => a.at - b.at);
    for (const rec of recs) if (!this.live.has(rec.id)) this.arm(rec);
  }

  /** Timers armed but not yet run, plus handlers running. */
  get pending(): number {
    return this.live.size + this.running.size;
  }

  /** Resolves when no timer is armed or running. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Disarms every timer (they stay stored) and waits for running handlers. */
  async stop(): Promise<void> {
    this.active = false;
    for (const t of this.live.values()) clearTimeout(t);
    this.live.clear();
    await Promise.allSettled([...this.running]);
  }

  private arm(rec: TimerRecord): void {
    const wait = Math.max(0, rec.at - this.now);
    const t = setTimeout(() => this.fire(rec), wait);
    t.unref();
    this.live.set(rec.id, t);
  }

  private fire(rec: TimerRecord): void {
    this.live.delete(rec.id);
    if (!this.active || !this.opts.store.has('timer', rec.id)) return this.notifyIdle();
    this.opts.store.delete('timer', rec.id);
    const handler = this.handlers.get(rec.kind);
    const run = (async () => {
      if (!handler) throw new Error(`no handler for timer kind ${rec.kind}`);
      await handler(rec.data);
    })()
      .catch((err: unknown) => this.opts.logger.error({ err, kind: rec.kind }, 'simulator timer failed'))
      .finally(() => {
        this.running.delete(run);
        this.notifyIdle();
      });
    this.running.add(run);
  }

  private notifyIdle(): void {
    if (this.pending !== 0) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
