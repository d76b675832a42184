/**
 * Durable state for a processor simulator: typed collections of JSON objects kept in memory and
 * journaled (lib/local/journal.ts) before the caller goes on, plus durable timers (things due
 * later: an asynchronous outcome, a retry, a dispute stage) stored in the same journal.
 *
 * `load()` replays the journal, then rewrites it with only the current objects (compaction), so a
 * restarted simulator has every object, idempotency record, pending notification and timer it had.
 * Without a file the store is in memory only. Nothing here knows a processor.
 */
import type { Logger } from '../../log.ts';
import { Journal } from '../../journal.ts';

interface StoreRecord {
  /** Collection. */
  t: string;
  id: string;
  /** The object (absent: deleted). */
  v?: unknown;
}

export class DurableStore {
  private readonly journal?: Journal<StoreRecord>;
  private readonly data = new Map<string, Map<string, unknown>>();
  private loaded = false;

  /** `file`: the journal (e.g. `<dataDir>/processors/adyen.jsonl`); none: memory only. */
  constructor(file?: string) {
    if (file) this.journal = new Journal<StoreRecord>(file);
  }

  /** Replays and compacts the journal (once; later calls do nothing). */
  load(): void {
    if (this.loaded) return;
    this.loaded = true;
    if (!this.journal) return;
    for (const r of this.journal.load()) {
      if (r.v === undefined) this.collection(r.t).delete(r.id);
      else this.collection(r.t).set(r.id, r.v);
    }
    const records: StoreRecord[] = [];
    for (const [t, m] of this.data) for (const [id, v] of m) records.push({ t, id, v });
    this.journal.rewrite(records);
  }

  get<T>(type: string, id: string): T | undefined {
    return this.data.get(type)?.get(id) as T | undefined;
  }

  has(type: string, id: string): boolean {
    return this.data.get(type)?.has(id) ?? false;
  }

  /** Every object of a collection, in the order first stored. */
  all<T>(type: string): T[] {
    return [...(this.data.get(type)?.values() ?? [])] as T[];
  }

  /** Every [id, object] of a collection, in the order first stored. */
  entries<T>(type: string): [string, T][] {
    return [...(this.data.get(type)?.entries() ?? [])] as [string, T][];
  }

  count(type: string): number {
    return this.data.get(type)?.size ?? 0;
  }

  /** Stores (or replaces) an object and journals it before returning. */
  put<T>(type: string, id: string, value: T): T {
    this.collection(type).set(id, value);
    this.journal?.append({ t: type, id, v: value });
    return value;
  }

  delete(type: string, id: string): void {
    if (!this.collection(type).delete(id)) return;
    this.journal?.append({ t: type, id });
  }

  close(): void {
    this.journal?.close();
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
