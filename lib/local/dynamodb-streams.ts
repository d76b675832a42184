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
 * Delivery, like a Lambda event source mapping: lib/local/dynamodb-delivery.ts. The journal
 * `<dataDir>/streams/<table>.jsonl` is compacted at start, and while the runtime runs once it has
 * JOURNAL_COMPACT_MIN_LINES lines and 4 times as many as records not yet done with: the rewrite
 * keeps those records (still `pre` while their write has not landed) and a `seq` line with the
 * last sequence number (a checkpoint write in flight may still land an older one), after writing
 * the checkpoints, so that sequence numbers never go back. Records done with are not delivered
 * again after a crash that follows, as a checkpoint would have them.
 *
 * A backlog (writes faster than the consumer, e.g. a bulk import) does not stay in memory: each
 * shard holds its next `RESIDENT_RECORDS` records, and the positions of the later ones' journal
 * lines (`SpillQueue`), read back as delivery reaches them; a compaction moves the lines and their
 * positions together, and a start keeps the same bound.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { AttributeValue, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import type { TableDef } from '../topology.ts';
import { readJsonFile } from './files.ts';
import { Journal, type LinePosition } from './journal.ts';
import type { Logger } from './log.ts';
import { CheckpointFile } from './stream-checkpoints.ts';
import {
  errorMessage,
  SpillQueue,
  StreamDelivery,
  type DeliveryTable,
  type Shard,
  type StreamFailure,
} from './dynamodb-delivery.ts';

export { errorMessage, type StreamFailure };

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
  /** Lines after which a journal may be compacted while running (default JOURNAL_COMPACT_MIN_LINES). */
  journalCompactMinLines?: number;
  /** Records of a shard kept in memory (default RESIDENT_RECORDS); the rest wait in the journal. */
  residentRecords?: number;
}

export interface ShardStats {
  shard: number;
  /** Records captured and not yet delivered (or sent to the failure queue). */
  pending: number;
  /** Of those, the ones in memory (the others wait in the journal: `RESIDENT_RECORDS`). */
  inMemory: number;
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

type Line =
  /** Written by journals before the capture moved into dynalite; still recovered. */
  | { t: 'intent'; id: string; lock: string; keys: Image; old: Image | null }
  | { t: 'done'; id: string }
  /** `pre`: journaled before its item write; it may not have landed if it is its item's last. */
  | RecLine
  /** The item write of record `seq` failed: the record is void. */
  | { t: 'drop'; seq: number }
  /** The last sequence number given when the journal was compacted while running. */
  | { t: 'seq'; seq: number };

type RecLine = {
  t: 'rec';
  id?: string;
  lock: string;
  shard: number;
  seq: number;
  rec: DynamoDBRecord;
  pre?: 1;
};

/** A record found undelivered at start; its line is read again from the journal if not kept. */
interface KeptRecord {
  seq: number;
  shard: number;
  lock: string;
  pre: boolean;
  index: number;
  at: LinePosition;
  line?: RecLine;
}

interface Checkpoints {
  shards: number;
  lastSequenceNumber: string | null;
  checkpoints: Record<string, string>;
}

interface StreamTable extends DeliveryTable {
  name: string;
  def: TableDef;
  journal: Journal<Line>;
  checkpoints: CheckpointFile;
  lastSeq: number;
  /** Lines in the journal file, to decide when to compact it. */
  journalLines: number;
  compactScheduled: boolean;
}

/** A stream journal is compacted while running once it has this many lines (and 4 times its live ones). */
export const JOURNAL_COMPACT_MIN_LINES = 5_000;

/**
 * Records of a shard held in memory for delivery. The records after them (a backlog, e.g. a bulk
 * import faster than the consumer) wait in the journal, where they are anyway, as the positions of
 * their lines (16 bytes a record instead of its two images), and are read back as delivery reaches
 * them: memory does not grow with the backlog.
 */
export const RESIDENT_RECORDS = 500;

const SEQ_WIDTH = 21;

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
  private readonly resident: number;
  private readonly streams = new Map<string, StreamTable>(); // by physical name
  private readonly delivery: StreamDelivery;
  private drainWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];

  constructor(opts: LocalStreamsOptions) {
    this.opts = opts;
    this.log = opts.logger;
    this.timeScale = opts.timeScale;
    this.shardCount = opts.shards;
    this.resident = Math.max(1, opts.residentRecords ?? RESIDENT_RECORDS);
    this.delivery = new StreamDelivery({
      deliver: opts.deliver,
      sendToFailureQueue: opts.sendToFailureQueue,
      timeScale: opts.timeScale,
      logger: opts.logger,
      onIdle: () => this.checkDrained(),
    });
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
    for (const t of this.streams.values()) for (const s of t.shards) this.delivery.run(t, s);
  }

  /**
   * Stops delivery (deliveries in flight are not awaited: their records are not checkpointed and
   * are delivered again after a restart), writes the checkpoints and closes the journals.
   */
  async stop(): Promise<void> {
    this.delivery.stop();
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
        pending: s.pending.length + s.spilled.length,
        inMemory: s.pending.length,
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

    const cps = new Map<number, number>();
    let lastSeq = saved?.lastSequenceNumber ? Number(saved.lastSequenceNumber) : 0;
    for (const [k, v] of Object.entries(saved?.checkpoints ?? {})) {
      cps.set(Number(k), Number(v));
      lastSeq = Math.max(lastSeq, Number(v));
    }
    const cp = (shard: number) => cps.get(shard) ?? 0;

    // Records not yet delivered, and write intents without an outcome. The journal is read line by
    // line; of a long backlog only the first records of each shard are kept in memory (a shard's
    // lines are in sequence order in the journal), the others by position.
    const kept: KeptRecord[] = [];
    const keptPerShard = new Map<number, number>();
    const intents = new Map<string, { line: Extract<Line, { t: 'intent' }>; index: number }>();
    const lastIndexOfLock = new Map<string, number>();
    const dropped = new Set<number>();
    journal.each((line, at, i) => {
      if (line.t === 'intent') {
        intents.set(line.id, { line, index: i });
        lastIndexOfLock.set(line.lock, i);
      } else if (line.t === 'done') intents.delete(line.id);
      else if (line.t === 'drop') dropped.add(line.seq);
      else if (line.t === 'seq') lastSeq = Math.max(lastSeq, line.seq);
      else {
        if (line.id) intents.delete(line.id);
        lastIndexOfLock.set(line.lock, i);
        lastSeq = Math.max(lastSeq, line.seq);
        if (line.seq <= cp(line.shard)) return;
        const n = keptPerShard.get(line.shard) ?? 0;
        keptPerShard.set(line.shard, n + 1);
        kept.push({
          seq: line.seq,
          shard: line.shard,
          lock: line.lock,
          pre: line.pre === 1,
          index: i,
          at,
          ...(n < this.resident ? { line } : {}),
        });
      }
    });
    const lineOf = (k: KeptRecord, at = k.at) => k.line ?? (journal.readAt(at) as RecLine);
    // A record journaled before its write (`pre`) that is the last line of its item may be of a
    // write the crash stopped before LevelDB had it: it stands if the item is its new image (the
    // write changed the item, so before it the item was not), and is void otherwise. Earlier records
    // of an item landed: dynalite's item lock let the next write in after them.
    let unlanded = 0;
    const stands: KeptRecord[] = [];
    for (const k of kept) {
      if (dropped.has(k.seq)) continue;
      if (k.pre && lastIndexOfLock.get(k.lock) === k.index) {
        const rec = lineOf(k).rec;
        const now = await this.opts.getItem(physical, rec.dynamodb?.Keys as Image);
        if (!sameImage(now, (rec.dynamodb?.NewImage as Image | undefined) ?? null)) {
          unlanded++;
          continue;
        }
      }
      stands.push(k);
    }
    stands.sort((a, b) => a.seq - b.seq);

    // Keep the shard layout of undelivered records, or an item's records could be reordered.
    let shardCount = this.shardCount;
    if (saved && saved.shards !== shardCount && stands.length > 0) {
      this.log.warn(
        { table: physical, configured: shardCount, kept: saved.shards },
        'undelivered stream records use another shard count; keeping it until restart with an empty stream',
      );
      shardCount = saved.shards;
    }
    for (const k of stands) shardCount = Math.max(shardCount, k.shard + 1);

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
        spilled: new SpillQueue(),
        landing: [],
        checkpoint: cp(id),
        inFlight: false,
      })),
      lastSeq,
      journalLines: 0,
      compactScheduled: false,
      stats: { captured: 0, delivered: 0, failed: 0, batches: 0, failedInvocations: 0 },
      refill: (s) => this.refill(t, s),
    };
    t.checkpoints = new CheckpointFile(
      checkpointFile,
      () => this.checkpointContent(t),
      (err) =>
        this.log.error({ table: t.physical, err: errorMessage(err) }, 'cannot write stream checkpoints'),
    );

    // Dangling intents: a crash came between forwarding a write and recording its outcome, so
    // compare the item with the intent's old image (unless a later write of the item followed).
    const dangling: { intent: Extract<Line, { t: 'intent' }>; now: Image | null }[] = [];
    for (const { line, index } of intents.values())
      if (lastIndexOfLock.get(line.lock) === index)
        dangling.push({ intent: line, now: await this.opts.getItem(physical, line.keys) });

    // Compact: undelivered records and dangling intents survive (so that a crash right after the
    // rewrite still finds the intents); then record what the dangling intents changed. (Intents
    // come only from journals written before the capture moved into dynalite.) The records not
    // kept in memory are read from the old file as the new one is written.
    const positions: LinePosition[] = [];
    journal.rewrite(
      (function* () {
        for (const k of stands) yield lineOf(k);
        for (const d of dangling) yield d.intent;
      })(),
      (i, at) => {
        if (i < stands.length) positions.push(at);
      },
    );
    stands.forEach((k, i) => {
      const at = positions[i] as LinePosition;
      const s = t.shards[k.shard] as Shard;
      if (s.spilled.length === 0 && s.pending.length < this.resident)
        s.pending.push({ seq: k.seq, record: lineOf(k, at).rec });
      else s.spilled.push(at);
    });
    t.journalLines = stands.length + dangling.length;
    let recovered = 0;
    for (const { intent, now } of dangling)
      if (this.capture(t, intent.lock, intent.keys, intent.old, now)) recovered++;
    this.streams.set(physical, t);
    t.checkpoints.writeNow();
    const pending = t.shards.reduce((n, s) => n + s.pending.length + s.spilled.length, 0);
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

  private append(t: StreamTable, line: Line): LinePosition {
    const at = t.journal.append(line);
    t.journalLines++;
    if (
      t.compactScheduled ||
      t.journalLines < (this.opts.journalCompactMinLines ?? JOURNAL_COMPACT_MIN_LINES)
    )
      return at;
    let live = 0;
    for (const s of t.shards) live += s.pending.length + s.spilled.length + s.landing.length;
    if (t.journalLines < 4 * live + 1) return at;
    t.compactScheduled = true;
    setImmediate(() => {
      t.compactScheduled = false;
      if (!this.streams.has(t.physical)) return; // stopped
      try {
        this.compact(t);
      } catch (err) {
        this.log.error({ table: t.physical, err: errorMessage(err) }, 'cannot compact the stream journal');
      }
    });
    return at;
  }

  /**
   * Rewrites the journal with the records not done with (delivered records are checkpointed):
   * pending ones (in memory or waiting in the journal), and those whose write is still landing
   * (kept `pre`, as they were journaled). A shard's lines stay in sequence order. The positions of
   * the records waiting in the journal, and of the landing ones, change to their new lines once the
   * new file is in place.
   */
  private compact(t: StreamTable): void {
    t.checkpoints.writeNow();
    const lockOf = (entry: { record: DynamoDBRecord }) =>
      `${t.physical}\u0000${JSON.stringify(entry.record.dynamodb?.Keys ?? null)}`;
    const spills = t.shards.map(() => new SpillQueue());
    const landed: [Shard['landing'][number], LinePosition][] = [];
    let onLine: ((at: LinePosition) => void) | undefined;
    let count = 0;
    const journal = t.journal;
    function* lines(): Generator<Line> {
      onLine = undefined;
      yield { t: 'seq', seq: t.lastSeq };
      for (const s of t.shards) {
        onLine = undefined;
        for (const e of s.pending) {
          count++;
          yield { t: 'rec', lock: lockOf(e), shard: s.id, seq: e.seq, rec: e.record };
        }
        const spill = spills[s.id] as SpillQueue;
        onLine = (at) => spill.push(at);
        for (const at of s.spilled.positions()) {
          count++;
          yield journal.readAt(at);
        }
        for (const slot of s.landing)
          if (slot.state !== 'failed') {
            onLine = (at) => landed.push([slot, at]);
            count++;
            yield {
              t: 'rec',
              lock: lockOf(slot.entry),
              shard: s.id,
              seq: slot.entry.seq,
              rec: slot.entry.record,
              pre: 1,
            };
          }
      }
    }
    journal.rewrite(lines(), (_, at) => onLine?.(at));
    for (const s of t.shards) s.spilled = spills[s.id] as SpillQueue;
    for (const [slot, at] of landed) slot.at = at;
    t.journalLines = 1 + count;
  }

  /** Reads the next records of a shard that wait in the journal into memory. */
  private refill(t: StreamTable, s: Shard): void {
    const positions = s.spilled.front(this.resident - s.pending.length);
    const entries = positions.map((at) => {
      const line = t.journal.readAt(at) as RecLine;
      return { seq: line.seq, record: line.rec };
    });
    s.pending.push(...entries);
    s.spilled.shift(positions.length);
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
      if (id) this.append(t, { t: 'done', id });
      return false;
    }
    const { seq, shard, record } = this.newRecord(t, keys, old, now);
    const at = this.append(t, { t: 'rec', ...(id ? { id } : {}), lock, shard, seq, rec: record });
    const s = t.shards[shard] as Shard;
    this.enqueue(s, { seq, record }, at);
    t.stats.captured++;
    s.wake?.();
    return true;
  }

  /** Queues a record for delivery: in memory, or in the journal behind a backlog. */
  private enqueue(s: Shard, entry: Shard['pending'][number], at: LinePosition): void {
    if (s.spilled.length === 0 && s.pending.length < this.resident) s.pending.push(entry);
    else s.spilled.push(at);
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
    const at = this.append(t, { t: 'rec', lock, shard, seq, rec: record, pre: 1 });
    const s = t.shards[shard] as Shard;
    const slot: Shard['landing'][number] = { entry: { seq, record }, at, state: 'writing' };
    s.landing.push(slot);
    return (err?: Error | null) => {
      if (err) {
        slot.state = 'failed';
        try {
          this.append(t, { t: 'drop', seq });
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
      this.enqueue(s, slot.entry, slot.at);
      t.stats.captured++;
      moved = true;
    }
    if (moved) s.wake?.();
    else this.checkDrained();
  }

  private checkDrained(): void {
    if (this.drainWaiters.length === 0) return;
    for (const t of this.streams.values())
      for (const s of t.shards)
        if (s.pending.length > 0 || s.spilled.length > 0 || s.landing.length > 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w.resolve();
  }
}
