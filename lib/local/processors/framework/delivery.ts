/**
 * Durable, retried delivery of a simulator's outgoing messages (webhooks, notifications), with
 * the test controls every paystep simulator offers. Nothing here knows a processor: the caller
 * gives `send` (one HTTP attempt for one envelope, saying whether it was accepted) and
 * `retryDelay` (the processor's retry schedule).
 *
 * - Items enqueued in the same tick are batched into envelopes of at most `maxBatch` items. An
 *   item is journaled when it is enqueued (collection `<collection>:queued`), before the tick ends:
 *   a processor never loses a notification it owes, even when the process dies between the change
 *   it reports (stored at once) and the batching; a restart batches what was queued.
 * - An envelope is stored (DurableStore) before its first attempt and until it is accepted or
 *   given up, with its attempt count and next attempt time: pending deliveries survive a restart
 *   and resume on schedule (`resume()`).
 * - Test controls (`configure()`; the Stripe webhook sender's and Adyen's notifications' controls):
 *   `duplicate` (0..1) an envelope is also sent a second time a little later (one extra attempt);
 *   `reorderWindow` (N) envelopes are held until N wait (or `reorderHoldMs` passed), then sent in a
 *   random order; `delayMs` every first attempt waits this long (plus up to as much again);
 *   `dropRate` (0..1) an item is never sent (what a sweeper must cover).
 */
import type { Logger } from '../../log.ts';
import type { DurableStore } from './store.ts';

export interface DeliveryControls {
  duplicate: number;
  reorderWindow: number;
  reorderHoldMs: number;
  delayMs: number;
  dropRate: number;
}

export const DEFAULT_DELIVERY_CONTROLS: DeliveryControls = {
  duplicate: 0,
  reorderWindow: 0,
  reorderHoldMs: 200,
  delayMs: 0,
  dropRate: 0,
};

/** How often an envelope with nowhere to go (`no-target`) looks again, in real ms. */
export const NO_TARGET_RECHECK_MS = 500;

export interface Envelope<T> {
  id: string;
  items: T[];
  /** Attempts made so far. */
  attempts: number;
  /** Epoch ms of the envelope's creation and of its next attempt. */
  createdAt: number;
  nextAt: number;
}

export interface AttemptResult {
  accepted: boolean;
  /** HTTP status, `error` (network, timeout) or `no-target` (nowhere to send yet). */
  status: number | 'error' | 'no-target';
}

export interface DeliveryStats {
  /** Items enqueued. */
  items: number;
  /** Envelopes accepted (duplicates not counted). */
  delivered: number;
  /** Extra attempts made by `duplicate`. */
  duplicated: number;
  /** Items dropped by `dropRate`. */
  dropped: number;
  /** Attempts that failed and were scheduled again. */
  retries: number;
  /** Envelopes given up (the retry schedule ended). */
  failed: number;
}

export interface AttemptRecord {
  envelope: string;
  items: number;
  attempt: number;
  status: AttemptResult['status'];
  accepted: boolean;
  duplicate: boolean;
  at: number;
}

export interface DurableDeliveryOptions<T> {
  store: DurableStore;
  /** Store collection of pending envelopes. */
  collection: string;
  logger: Logger;
  send: (envelope: Envelope<T>) => Promise<AttemptResult>;
  /**
   * Simulated ms to wait after the `failedAttempts`-th failed attempt, `sinceCreatedMs` (simulated)
   * after the envelope was created; undefined gives the envelope up.
   */
  retryDelay: (failedAttempts: number, sinceCreatedMs: number) => number | undefined;
  /** Retry delays run this many times faster (default 1). */
  timeScale?: number;
  maxBatch?: number;
  controls?: Partial<DeliveryControls>;
  random?: () => number;
  now?: () => number;
}

export function validateDeliveryControls(
  input: unknown,
  base: DeliveryControls = DEFAULT_DELIVERY_CONTROLS,
): DeliveryControls {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw new TypeError('controls must be an object');
  const next = { ...base };
  for (const [k, v] of Object.entries(input)) {
    if (!(k in DEFAULT_DELIVERY_CONTROLS))
      throw new TypeError(`unknown control ${k} (${Object.keys(DEFAULT_DELIVERY_CONTROLS).join(', ')})`);
    if (v === undefined) continue;
    if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v))
      throw new TypeError(`control ${k} must be a non-negative number`);
    if ((k === 'duplicate' || k === 'dropRate') && v > 1)
      throw new TypeError(`control ${k} must be at most 1`);
    next[k as keyof DeliveryControls] = v;
  }
  return next;
}

export class DurableDelivery<T> {
  private readonly opts: DurableDeliveryOptions<T>;
  private controls: DeliveryControls;
  private readonly random: () => number;
  /** Items enqueued and journaled (under `queued`), not yet in an envelope. */
  private buffer: { id: string; item: T }[] = [];
  private flushScheduled = false;
  private held: Envelope<T>[] = [];
  private holdTimer?: NodeJS.Timeout;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<void>>();
  private extra = 0;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly log: AttemptRecord[] = [];
  private active = false;
  private seq = 0;
  private counters: DeliveryStats = {
    items: 0,
    delivered: 0,
    duplicated: 0,
    dropped: 0,
    retries: 0,
    failed: 0,
  };

  constructor(opts: DurableDeliveryOptions<T>) {
    this.opts = opts;
    this.random = opts.random ?? Math.random;
    this.controls = validateDeliveryControls(opts.controls ?? {});
  }

  private get queued(): string {
    return `${this.opts.collection}:queued`;
  }

  private get now(): number {
    return (this.opts.now ?? Date.now)();
  }

  configure(c: Partial<DeliveryControls>): DeliveryControls {
    this.controls = validateDeliveryControls(c, this.controls);
    if (this.held.length && this.held.length >= this.controls.reorderWindow) this.release();
    return this.settings;
  }

  reset(): DeliveryControls {
    return this.configure(DEFAULT_DELIVERY_CONTROLS);
  }

  get settings(): DeliveryControls {
    return { ...this.controls };
  }

  stats(): DeliveryStats {
    return { ...this.counters };
  }

  /** The latest attempts (at most 1000), oldest first. */
  attempts(): AttemptRecord[] {
    return [...this.log];
  }

  /** Envelopes stored and not yet accepted. */
  pendingEnvelopes(): Envelope<T>[] {
    return this.opts.store.all<Envelope<T>>(this.opts.collection);
  }

  enqueue(item: T): void {
    this.counters.items++;
    if (this.controls.dropRate > 0 && this.random() < this.controls.dropRate) {
      this.counters.dropped++;
      return;
    }
    const id = `${this.now.toString(36)}-q${(this.seq++).toString(36)}`;
    this.opts.store.put(this.queued, id, item);
    this.buffer.push({ id, item });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Starts (or restarts) sending: stored envelopes are attempted when due. */
  resume(): void {
    this.active = true;
    // Queued before a restart, never batched: batch them now.
    const buffered = new Set(this.buffer.map((b) => b.id));
    for (const [id, item] of this.opts.store.entries<T>(this.queued))
      if (!buffered.has(id)) this.buffer.push({ id, item });
    for (const env of this.pendingEnvelopes()) {
      if (this.timers.has(env.id) || this.held.includes(env)) continue;
      this.schedule(env, Math.max(0, env.nextAt - this.now));
    }
    if (this.buffer.length) this.flush();
  }

  /** Sends envelopes held for reordering now. */
  releaseHeld(): void {
    this.release();
  }

  /** Resolves when nothing is buffered, held, stored as pending or in flight. */
  idle(): Promise<void> {
    if (this.busy() === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops sending (pending envelopes stay stored) and waits for attempts in flight. */
  async stop(): Promise<void> {
    this.active = false;
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    this.held = [];
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.inFlight]);
  }

  // ----------------------------------------------------------------------------------------------

  private busy(): number {
    return this.buffer.length + this.opts.store.count(this.opts.collection) + this.extra + this.inFlight.size;
  }

  private notifyIdle(): void {
    if (this.busy() !== 0) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private flush(): void {
    this.flushScheduled = false;
    const max = Math.max(1, this.opts.maxBatch ?? 10);
    const queued = this.buffer.splice(0);
    for (let i = 0; i < queued.length; i += max) {
      const now = this.now;
      const batch = queued.slice(i, i + max);
      const env: Envelope<T> = {
        id: `${now.toString(36)}-${(this.seq++).toString(36)}`,
        items: batch.map((b) => b.item),
        attempts: 0,
        createdAt: now,
        nextAt: now,
      };
      this.opts.store.put(this.opts.collection, env.id, env); // stored, then no longer queued
      for (const b of batch) this.opts.store.delete(this.queued, b.id);
      if (!this.active) continue;
      if (this.controls.reorderWindow > 1) {
        this.held.push(env);
        if (this.held.length >= this.controls.reorderWindow) this.release();
        else if (!this.holdTimer) {
          this.holdTimer = setTimeout(() => this.release(), this.controls.reorderHoldMs);
          this.holdTimer.unref();
        }
      } else this.first(env);
    }
    this.notifyIdle();
  }

  private release(): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    const batch = this.held.splice(0);
    for (let i = batch.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [batch[i], batch[j]] = [batch[j]!, batch[i]!];
    }
    for (const env of batch) this.first(env);
  }

  private first(env: Envelope<T>): void {
    const base = this.controls.delayMs;
    const wait = base > 0 ? base + this.random() * base : 0;
    this.schedule(env, wait);
    if (this.controls.duplicate > 0 && this.random() < this.controls.duplicate) {
      this.counters.duplicated++;
      this.extra++;
      const t = setTimeout(
        () => {
          this.extra--;
          this.attempt(env, true);
        },
        wait + 1 + this.random() * Math.max(20, base),
      );
      t.unref();
    }
  }

  private schedule(env: Envelope<T>, ms: number): void {
    if (!this.active) return;
    const t = setTimeout(() => {
      this.timers.delete(env.id);
      this.attempt(env, false);
    }, ms);
    t.unref();
    this.timers.set(env.id, t);
  }

  private attempt(env: Envelope<T>, duplicate: boolean): void {
    if (!this.active) return this.notifyIdle();
    const run = this.post(env, duplicate).finally(() => {
      this.inFlight.delete(run);
      this.notifyIdle();
    });
    this.inFlight.add(run);
  }

  private async post(env: Envelope<T>, duplicate: boolean): Promise<void> {
    let result: AttemptResult;
    try {
      result = await this.opts.send(env);
    } catch (err) {
      this.opts.logger.warn({ err }, 'delivery attempt failed');
      result = { accepted: false, status: 'error' };
    }
    if (result.status === 'no-target' && !duplicate) {
      // Nowhere to send yet (the receiver's URL is not known): not an attempt; look again soon.
      if (this.active && this.opts.store.has(this.opts.collection, env.id))
        this.schedule(env, NO_TARGET_RECHECK_MS);
      return;
    }
    const attempt = duplicate ? env.attempts : env.attempts + 1;
    this.log.push({
      envelope: env.id,
      items: env.items.length,
      attempt,
      status: result.status,
      accepted: result.accepted,
      duplicate,
      at: this.now,
    });
    if (this.log.length > 1000) this.log.shift();
    if (duplicate || !this.active) return;
    if (!this.opts.store.has(this.opts.collection, env.id)) return;
    if (result.accepted) {
      this.counters.delivered++;
      this.opts.store.delete(this.opts.collection, env.id);
      return;
    }
    const delay = this.opts.retryDelay(attempt, (this.now - env.createdAt) * (this.opts.timeScale ?? 1));
    if (delay === undefined) {
      this.counters.failed++;
      this.opts.store.delete(this.opts.collection, env.id);
      this.opts.logger.warn({ envelope: env.id, attempts: attempt }, 'delivery given up');
      return;
    }
    this.counters.retries++;
    const scaled = delay / (this.opts.timeScale ?? 1);
    const next: Envelope<T> = { ...env, attempts: attempt, nextAt: this.now + scaled };
    this.opts.store.put(this.opts.collection, env.id, next);
    this.schedule(next, scaled);
  }
}
