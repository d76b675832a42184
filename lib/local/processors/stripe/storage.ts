/**
 * Where the Stripe simulator keeps its objects, idempotency records and events: on disk, in
 * `<dataDir>/processors/stripe.jsonl` (a RecordFile, ../framework/record-file.ts), with only an
 * index in memory (about 100 bytes a record) and an LRU of the records last used; without a data
 * dir, in memory. Its memory does not grow with history but for that index, the simulator-only
 * state of objects that still wait for something (a refund's transition, a dispute to create or
 * decide, the dispute test cards' charges) and the latest `eventLogLimit` events' index entries.
 *
 * The file's lines are the journal records the simulator has always written (`obj`, `idem`,
 * `evt`); events now carry a sequence number (`seq`), the cursor of `eventsAfter`.
 */
import path from 'node:path';
import { RecordFile } from '../framework/record-file.ts';
import { IDEMPOTENCY_TTL_MS } from './money.ts';
import { sha256, type IdempotencyRecord, type JournalRecord, type Kind, type SimInfo } from './model.ts';
import type { StripeEvent, StripeObject } from './types.ts';

const KINDS: readonly Kind[] = [
  'payment_intent',
  'charge',
  'refund',
  'payment_method',
  'balance_transaction',
  'payout',
  'dispute',
];
const KIND_TAG = new Map<string, number>(KINDS.map((k, i) => [k, i + 1]));
/** Tag flag: a balance transaction not paid out yet (createPayout reads only these). */
const UNPAID = 0x80;
const IDEM = 20;
const EVT = 21;

/** Simulator-only state kept in memory: what an object still waits for. */
function active(info: SimInfo | undefined): boolean {
  return !!(
    info &&
    (info.transition ||
      info.dispute ||
      info.disputeDecision ||
      (info.disputeAt !== undefined && !info.disputeId))
  );
}

interface Meta {
  eventSeq: number;
  events: [number, string][];
  active: [string, SimInfo][];
}

export interface StripeStorageOptions {
  dataDir?: string;
  eventLogLimit: number;
  now: () => number;
  /** Parsed records kept in memory (default 2,000). */
  cacheSize?: number;
}

/** What the simulator's storage holds in memory, by kind (the soak bench reports it). */
export type StorageMemoryStats = {
  objects: number;
  cachedRecords: number;
  simInfo: number;
  idempotencyKeys: number;
  events: number;
  journalLines: number;
};

export class StripeStorage {
  private readonly file: RecordFile<JournalRecord>;
  private readonly opts: StripeStorageOptions;
  /** Objects waiting for something, with their simulator-only state (see `active`). */
  readonly activeSim = new Map<string, SimInfo>();
  /** SimInfo set for an object before its next save. */
  private readonly pendingSim = new Map<string, SimInfo>();
  /** The kept events, oldest first: [seq, key]. */
  private eventIndex: [number, string][] = [];
  private eventSeq = 0;

  constructor(opts: StripeStorageOptions) {
    this.opts = opts;
    this.file = new RecordFile<JournalRecord>({
      file: opts.dataDir ? path.join(opts.dataDir, 'processors', 'stripe.jsonl') : undefined,
      cacheSize: opts.cacheSize,
      key: recordKey,
      classify: (r) => {
        if (r.t === 'obj') {
          const tag = KIND_TAG.get(r.kind) ?? 0;
          const unpaid = r.kind === 'balance_transaction' && r.obj.type !== 'payout' && !r.sim?.payout;
          return { tag: unpaid ? tag | UNPAID : tag };
        }
        if (r.t === 'idem') return { tag: IDEM, aux: r.rec.createdMs };
        return { tag: EVT, aux: r.seq ?? this.eventSeq + 1 };
      },
    });
  }

  /** Loads the file; returns whether it was parsed whole (no snapshot of it). */
  load(): { fullScan: boolean } {
    const result = this.file.load(
      (r) => {
        if (r.t === 'obj') this.trackActive(r.obj.id, r.sim);
        else if (r.t === 'evt') {
          this.eventSeq = r.seq ?? this.eventSeq + 1;
          this.eventIndex.push([this.eventSeq, recordKey(r)]);
        }
      },
      (meta) => {
        const m = meta as Meta;
        this.eventSeq = m.eventSeq;
        this.eventIndex = m.events;
        for (const [id, info] of m.active) this.activeSim.set(id, info);
      },
    );
    this.trimEvents(this.opts.eventLogLimit);
    this.expireIdempotency();
    return result;
  }

  // --- objects ---------------------------------------------------------------------------------

  /** The object with this id, of any kind (the same instance until it leaves the LRU). */
  lookup(id: string): StripeObject | undefined {
    const r = this.file.read(id);
    return r?.t === 'obj' ? r.obj : undefined;
  }

  /** Every object of a kind, in the order first stored (read from disk as iterated). */
  *objectsOf(kind: Kind, opts: { unpaidOnly?: boolean } = {}): Generator<StripeObject> {
    const want = KIND_TAG.get(kind) as number;
    const keys = [
      ...this.file.keysWhere((tag) => (opts.unpaidOnly ? tag === (want | UNPAID) : (tag & ~UNPAID) === want)),
    ];
    for (const k of keys) {
      const o = this.lookup(k);
      if (o) yield o;
    }
  }

  /** The simulator-only state of an object. */
  simOf(id: string): SimInfo | undefined {
    const pending = this.pendingSim.get(id);
    if (pending) return pending;
    const a = this.activeSim.get(id);
    if (a) return a;
    const r = this.file.read(id);
    return r?.t === 'obj' ? r.sim : undefined;
  }

  /** Sets an object's simulator-only state, stored with its next save. */
  setSim(id: string, info: SimInfo): void {
    this.pendingSim.set(id, info);
  }

  /** Stores (or replaces) an object with its simulator-only state (merged as `save` always did). */
  save(kind: Kind, obj: StripeObject, sim?: SimInfo): void {
    let info = this.simOf(obj.id);
    if (sim) {
      const merged = { ...info, ...sim };
      if (!sim.transition) delete merged.transition;
      info = merged;
    }
    this.pendingSim.delete(obj.id);
    this.file.append({ t: 'obj', kind, obj, ...(info ? { sim: info } : {}) });
    this.trackActive(obj.id, info);
  }

  // --- idempotency -----------------------------------------------------------------------------

  /** The stored response of a key scope younger than 24 hours (an older one is dropped). */
  idempotency(scope: string): IdempotencyRecord | undefined {
    const key = idemKey(scope);
    const created = this.file.aux(key);
    if (created === undefined) return undefined;
    if (this.opts.now() - created > IDEMPOTENCY_TTL_MS) {
      this.file.forget(key);
      return undefined;
    }
    const r = this.file.read(key);
    return r?.t === 'idem' && r.scope === scope ? r.rec : undefined;
  }

  putIdempotency(scope: string, rec: IdempotencyRecord): void {
    this.file.append({ t: 'idem', scope, rec });
  }

  // --- events ----------------------------------------------------------------------------------

  addEvent(event: StripeEvent): void {
    const seq = ++this.eventSeq;
    const rec: JournalRecord = { t: 'evt', seq, event };
    this.file.append(rec);
    this.eventIndex.push([seq, recordKey(rec)]);
    // Trimmed in steps of a tenth, so that the index is not copied for every event.
    if (this.eventIndex.length > Math.ceil(this.opts.eventLogLimit * 1.1))
      this.trimEvents(this.opts.eventLogLimit);
  }

  /** The kept events with a sequence number above `after`, oldest first, at most `limit`. */
  eventsAfter(after: number, limit = Infinity): { seq: number; event: StripeEvent }[] {
    const idx = this.eventIndex;
    let lo = 0;
    let hi = idx.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((idx[mid] as [number, string])[0] <= after) lo = mid + 1;
      else hi = mid;
    }
    const out: { seq: number; event: StripeEvent }[] = [];
    for (let i = lo; i < idx.length && out.length < limit; i++) {
      const [seq, key] = idx[i] as [number, string];
      const r = this.file.read(key);
      if (r?.t === 'evt') out.push({ seq, event: r.event });
    }
    return out;
  }

  /** The sequence number of the latest event (0: none yet). */
  get lastEventSeq(): number {
    return this.eventSeq;
  }

  // --- maintenance -----------------------------------------------------------------------------

  /** Whether the file holds enough dead lines to be worth compacting. */
  wantsCompaction(minLines: number): boolean {
    return this.file.lines >= minLines && this.file.lines >= 1.5 * this.file.count;
  }

  /** Drops expired idempotency records and old events, then rewrites the file with the rest. */
  compact(): void {
    this.expireIdempotency();
    this.trimEvents(this.opts.eventLogLimit);
    this.file.compact(this.meta());
  }

  /** Writes the index snapshot (fast next start) and closes the file. */
  close(): void {
    this.file.close(this.meta());
  }

  /** What is held in memory, by kind. */
  memoryStats(): StorageMemoryStats {
    let objects = 0;
    let idem = 0;
    for (const _ of this.file.keysWhere((tag) => tag === IDEM)) idem++;
    for (const _ of this.file.keysWhere((tag) => tag !== IDEM && tag !== EVT)) objects++;
    return {
      objects,
      cachedRecords: this.file.cached,
      simInfo: this.activeSim.size + this.pendingSim.size,
      idempotencyKeys: idem,
      events: this.eventIndex.length,
      journalLines: this.file.lines,
    };
  }

  private meta(): Meta {
    return { eventSeq: this.eventSeq, events: this.eventIndex, active: [...this.activeSim] };
  }

  private trackActive(id: string, info: SimInfo | undefined): void {
    if (active(info)) this.activeSim.set(id, info as SimInfo);
    else this.activeSim.delete(id);
  }

  private trimEvents(limit: number): void {
    if (this.eventIndex.length <= limit) return;
    const drop = this.eventIndex.length - limit;
    for (let i = 0; i < drop; i++) this.file.forget((this.eventIndex[i] as [number, string])[1]);
    this.eventIndex = this.eventIndex.slice(drop);
  }

  private expireIdempotency(): void {
    const cutoff = this.opts.now() - IDEMPOTENCY_TTL_MS;
    for (const k of [...this.file.keysWhere((tag, aux) => tag === IDEM && aux < cutoff)]) this.file.forget(k);
  }
}

function recordKey(r: JournalRecord): string {
  if (r.t === 'obj') return r.obj.id;
  if (r.t === 'idem') return idemKey(r.scope);
  return `#${r.event.id}`;
}

/** Idempotency scopes are long (API key hash and the key): memory keeps a 96-bit hash of them. */
function idemKey(scope: string): string {
  return `~${sha256(scope).slice(0, 24)}`;
}
