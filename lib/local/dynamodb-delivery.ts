/**
 * Delivery of a local DynamoDB stream's records to its consumer (lib/local/dynamodb-streams.ts
 * captures them).
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
 * again). The journal `<dataDir>/streams/<table>.jsonl` is compacted at start. Sequence numbers
 * are one counter per table (so increasing within each shard too); each event carries its shard as
 * `shardId` (`shardId-<n>`), as Lambda's tumbling-window events do.
 */
import type { DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import type { TableDef } from '../topology.ts';
import type { LinePosition } from './journal.ts';
import type { Logger } from './log.ts';

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

export interface Entry {
  seq: number;
  record: DynamoDBRecord;
}

/**
 * A shard's records beyond those kept in memory, in sequence order: the positions of their lines in
 * the stream journal (lib/local/dynamodb-streams.ts reads them back as delivery reaches them).
 */
export class SpillQueue {
  private offsets: number[] = [];
  private lengths: number[] = [];
  private head = 0;

  get length(): number {
    return this.offsets.length - this.head;
  }

  push(at: LinePosition): void {
    this.offsets.push(at.offset);
    this.lengths.push(at.length);
  }

  /** Up to `n` positions from the front (still queued: `shift` removes them). */
  front(n: number): LinePosition[] {
    const out: LinePosition[] = [];
    for (let i = this.head; out.length < n && i < this.offsets.length; i++)
      out.push({ offset: this.offsets[i]!, length: this.lengths[i]! });
    return out;
  }

  /** Removes `n` positions from the front. */
  shift(n: number): void {
    this.head = Math.min(this.offsets.length, this.head + n);
    if (this.head > 4096 && this.head * 2 > this.offsets.length) {
      this.offsets = this.offsets.slice(this.head);
      this.lengths = this.lengths.slice(this.head);
      this.head = 0;
    }
  }

  /** Every position, front first. */
  *positions(): Generator<LinePosition> {
    for (let i = this.head; i < this.offsets.length; i++)
      yield { offset: this.offsets[i]!, length: this.lengths[i]! };
  }
}

export interface Shard {
  id: number;
  /** Records in memory, in sequence order; delivery takes its batches from the front. */
  pending: Entry[];
  /** Records after `pending`, not in memory (lib/local/dynamodb-streams.ts `RESIDENT_RECORDS`). */
  spilled: SpillQueue;
  /**
   * Records journaled by writes still in LevelDB, in sequence order: each joins `pending` when it
   * and every record before it have landed (so a shard's pending records stay in sequence order).
   */
  landing: { entry: Entry; at: LinePosition; state: 'writing' | 'landed' | 'failed' }[];
  checkpoint: number;
  inFlight: boolean;
  wake?: () => void;
}

/** What delivery needs of a stream (lib/local/dynamodb-streams.ts `StreamTable`). */
export interface DeliveryTable {
  physical: string;
  arn: string;
  stream: NonNullable<TableDef['stream']>;
  shards: Shard[];
  checkpoints: { schedule(): void };
  /** Moves spilled records of the shard back into `pending` (read from the journal). */
  refill(s: Shard): void;
  stats: { captured: number; delivered: number; failed: number; batches: number; failedInvocations: number };
}

export interface StreamDeliveryOptions {
  /**
   * Invokes the stream consumer; may return a partial batch response. Throwing fails the batch.
   * Must not change the event: its records are the delivery's own (see `invoke`).
   */
  deliver: (functionName: string, event: DynamoDBStreamEvent) => Promise<unknown>;
  /** On-failure destination for records that still fail after the retries. */
  sendToFailureQueue: (queueName: string, body: string) => Promise<void>;
  /** Retry backoffs run this many times faster. */
  timeScale: number;
  logger: Logger;
  /** After each batch a shard is done with (to resolve waits for an empty stream). */
  onIdle: () => void;
}

const BACKOFF_BASE_MS = 100;
const BACKOFF_CAP_MS = 5000;

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/** The per-shard delivery loops of the streams of one store. */
export class StreamDelivery {
  private readonly opts: StreamDeliveryOptions;
  private readonly log: Logger;
  private readonly timeScale: number;
  private readonly sleepers = new Set<() => void>();
  private stopping = false;

  constructor(opts: StreamDeliveryOptions) {
    this.opts = opts;
    this.log = opts.logger;
    this.timeScale = opts.timeScale;
  }

  /** Starts the delivery loop of a shard. */
  run(t: DeliveryTable, s: Shard): void {
    void this.runShard(t, s);
  }

  /** Stops every loop: backoffs end, nothing more is checkpointed (the caller wakes idle shards). */
  stop(): void {
    this.stopping = true;
    for (const wake of this.sleepers) wake();
    this.sleepers.clear();
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

  private async runShard(t: DeliveryTable, s: Shard): Promise<void> {
    while (!this.stopping) {
      if (s.pending.length === 0 && s.spilled.length === 0) {
        await new Promise<void>((resolve) => (s.wake = resolve));
        s.wake = undefined;
        continue;
      }
      s.inFlight = true;
      try {
        if (s.pending.length < 2 * Math.max(1, t.stream.batchSize) && s.spilled.length > 0) t.refill(s);
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
      this.opts.onIdle();
    }
  }

  /** The records up to and including `seq` are done with: checkpoint them. */
  private advance(t: DeliveryTable, s: Shard, seq: number): void {
    while (s.pending.length > 0 && (s.pending[0] as Entry).seq <= seq) s.pending.shift();
    s.checkpoint = Math.max(s.checkpoint, seq);
    if (!this.stopping) t.checkpoints.schedule();
  }

  /** Delivers `range` (a prefix of the shard's pending records) until every record is done. */
  private async processRange(t: DeliveryTable, s: Shard, range: Entry[]): Promise<void> {
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
    t: DeliveryTable,
    s: Shard,
    batch: Entry[],
  ): Promise<{ ok: true } | { ok: false; failedIndex?: number; error: string }> {
    const first = batch[0]?.record.dynamodb?.SequenceNumber;
    const last = batch[batch.length - 1]?.record.dynamodb?.SequenceNumber;
    // The records themselves, not a copy: `deliver` must not change them (a retry sends them
    // again). The runtime's Lambda invoker hands each invocation its own copy (lib/local/lambda.ts),
    // and from the engine's worker thread the event crosses to the main thread as a copy anyway;
    // a copy here as well was 4 % of the worker's time. `shardId` as in Lambda's tumbling-window
    // events (the stream router keeps its rollups per shard with it).
    const event: DynamoDBStreamEvent & { shardId: string } = {
      Records: batch.map((e) => e.record),
      shardId: `shardId-${s.id}`,
    };
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
  private async sendFailure(t: DeliveryTable, s: Shard, records: Entry[], retries: number, error: string) {
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
