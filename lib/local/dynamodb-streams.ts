/**
 * DynamoDB Streams for the local DynamoDB (lib/local/dynamodb.ts): capture, journal, recovery and
 * delivery of the records (NEW_AND_OLD_IMAGES) of stream-enabled tables.
 *
 * - PutItem, UpdateItem, DeleteItem: the images come from the write itself. dynalite, under its own
 *   per-item lock, reads the item (old image, also what its condition check uses), computes the
 *   item it will store (new image) and writes it; just before that write it hands both images to
 *   `LocalStreams.onWrite` (lib/local/dynalite.ts `WriteCapture`), which appends the INSERT,
 *   MODIFY or REMOVE record to the stream journal (nothing when the write changes nothing, as DynamoDB does). The
 *   record joins its shard's delivery queue once the write landed in LevelDB (and every earlier
 *   record of the shard did), before the client gets its answer. No read before or after a write,
 *   and records are numbered in the order dynalite applies the writes.
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
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { AttributeValue, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import type { TableDef } from '../topology.ts';
import { readJsonFile } from './files.ts';
import { Journal } from './journal.ts';
import type { Logger } from './log.ts';
import { CheckpointFile } from './stream-checkpoints.ts';

export const LOCAL_REGION = 'local';
export const LOCAL_ACCOUNT = '000000000000';

export type Image = Record<string, AttributeValue>;

export interface LocalStreamsOptions {
  dataDir: string;
  /** Physical table name of a topology table. */
  tableName: (topologyName: string) => string;
  /** Invokes the stream consumer; may return a partial batch response. Throwing fails the batch. */
  deliver: (functionName: string, event: DynamoDBStreamEvent) => Promise<unknown>;
  /** On-failure destination for records that still fail after the retries. */
  sendToFailureQueue: (queueName: string, body: string) => Promise<void>;
  /** Retry backoffs run this many times faster. */
  timeScale: number;
  /** Shards per stream. */
  shards: number;
  logger: Logger;
  /** A consistent read of an item (recovery at start). */
  getItem: (table: string, key: Image) => Promise<Image | null>;
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

const SEQ_WIDTH = 21;
const BACKOFF_BASE_MS = 100;
const BACKOFF_CAP_MS = 5000;

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

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/** Primary key of an item or key object, in key-schema order; undefined if malformed. */
export function keyOf(def: TableDef, item: unknown): Image | undefined {
  if (!item || typeof item !== 'object') return undefined;
  const keys: Image = {};
  for (const k of [def.partitionKey, def.sortKey]) {
    if (!k) continue;
    const v = (item as Record<string, unknown>)[k.name] as Record<string, unknown> | undefined;
    if (!v || typeof v !== 'object' || typeof v[k.type] !== 'string') return undefined;
    keys[k.name] = { [k.type]: v[k.type] } as AttributeValue;
  }
  return keys;
}

export class LocalStreams {
  private readonly opts: LocalStreamsOptions;
  private readonly log: Logger;
  private readonly timeScale: number;
  private readonly shardCount: number;
  private readonly streams = new Map<string, StreamTable>(); // by physical name
  private readonly sleepers = new Set<() => void>();
  private drainWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private stopping = false;

  constructor(opts: LocalStreamsOptions) {
    this.opts = opts;
    this.log = opts.logger;
    this.timeScale = opts.timeScale;
    this.shardCount = opts.shards;
  }

  /** The stream table of a physical table name, if it has a stream. */
  has(physical: string): boolean {
    return this.streams.has(physical);
  }

  /** The definition of a stream-enabled table, by physical name. */
  def(physical: string): TableDef | undefined {
    return this.streams.get(physical)?.def;
  }

  get size(): number {
    return this.streams.size;
  }

  /** Starts the delivery loops (after every stream is open and the store serves). */
  startDelivery(): void {
    for (const t of this.streams.values()) for (const s of t.shards) void this.runShard(t, s);
  }

  /**
   * Stops delivery (deliveries in flight are not awaited: their records are not checkpointed and
   * are delivered again after a restart), writes the checkpoints and closes the journals.
   */
  async stop(): Promise<void> {
    this.stopping = true;
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
    this.streams.clear();
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
  // Journal and recovery

  /** Opens the stream of a table: recovers its journal and checkpoints (before delivery starts). */
  async open(name: string, def: TableDef): Promise<void> {
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
        const now = await this.opts.getItem(physical, keys);
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
      dangling.push({ intent, now: await this.opts.getItem(physical, intent.keys) });

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
  onWrite(table: string, old: Image | null, now: Image | null) {
    const t = this.streams.get(table);
    if (!t || sameImage(old, now)) return undefined;
    const keys = keyOf(t.def, now ?? old);
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
