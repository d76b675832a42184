/**
 * Delivers the Stripe simulator's events to paystep as Stripe does: a POST of the event JSON to the
 * webhook endpoint (`/webhooks/stripe` of the local gateway) with `Stripe-Signature: t=…,v1=…`
 * computed by the `stripe` SDK under the endpoint's signing secret, retried with exponential
 * backoff while the endpoint does not answer 2xx (docs.stripe.com/webhooks#retries).
 *
 * Test controls (programmatic `configure()`, or PAYSTEP_SIM_WEBHOOK_* at start):
 * - `duplicate` (0..1): probability that an event is delivered twice (the second a little later);
 * - `reorderWindow` (N): events are held until N are waiting (or `reorderHoldMs` passed), then
 *   delivered in a random order;
 * - `delayMs`: every delivery waits this long first (plus a random jitter of up to as much again);
 * - `dropRate` (0..1): probability that an event is never delivered (what the sweeper must cover).
 *
 * Deliveries are not journaled: events pending when the runtime stops are not delivered later
 * (paystep's poll fallbacks and the sweeper cover lost webhooks, as they must for Stripe too).
 */
import Stripe from 'stripe';
import type { Logger } from '../log.ts';
import type { StripeEvent } from './stripe-simulator.ts';

export interface WebhookControls {
  duplicate: number;
  reorderWindow: number;
  reorderHoldMs: number;
  delayMs: number;
  dropRate: number;
}

export interface StripeWebhookSenderOptions extends Partial<WebhookControls> {
  /** The endpoint URL, or null while it is not available (deliveries wait and retry). */
  url: () => string | null;
  /** The signing secret (a comma-separated list signs with the first, Stripe's newest). */
  secret: () => string;
  logger: Logger;
  /** Retry backoff runs this many times faster (the runtime's time scale). */
  timeScale?: number;
  /** Attempts per delivery before it is given up (default 10). */
  maxAttempts?: number;
  /** Random source in [0, 1) (tests). */
  random?: () => number;
}

export interface WebhookSenderStats {
  /** Events received from the simulator. */
  events: number;
  /** Deliveries answered 2xx (duplicates included). */
  delivered: number;
  /** Extra deliveries made by `duplicate`. */
  duplicated: number;
  /** Events dropped by `dropRate`. */
  dropped: number;
  /** Attempts that failed and were retried. */
  retries: number;
  /** Deliveries given up after `maxAttempts`. */
  failed: number;
}

export interface DeliveryRecord {
  event: string;
  type: string;
  attempt: number;
  status: number | 'error';
  at: number;
}

const DEFAULTS: WebhookControls = {
  duplicate: 0,
  reorderWindow: 0,
  reorderHoldMs: 200,
  delayMs: 0,
  dropRate: 0,
};

function fraction(name: string, v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!(n >= 0 && n <= 1)) throw new Error(`${name} must be a number between 0 and 1, got ${v}`);
  return n;
}

function count(name: string, v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${v}`);
  return n;
}

/** Controls from PAYSTEP_SIM_WEBHOOK_{DUPLICATE,REORDER_WINDOW,REORDER_HOLD_MS,DELAY_MS,DROP_RATE}. */
export function webhookControlsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<WebhookControls> {
  const out: Partial<WebhookControls> = {
    duplicate: fraction('PAYSTEP_SIM_WEBHOOK_DUPLICATE', env.PAYSTEP_SIM_WEBHOOK_DUPLICATE),
    reorderWindow: count('PAYSTEP_SIM_WEBHOOK_REORDER_WINDOW', env.PAYSTEP_SIM_WEBHOOK_REORDER_WINDOW),
    reorderHoldMs: count('PAYSTEP_SIM_WEBHOOK_REORDER_HOLD_MS', env.PAYSTEP_SIM_WEBHOOK_REORDER_HOLD_MS),
    delayMs: count('PAYSTEP_SIM_WEBHOOK_DELAY_MS', env.PAYSTEP_SIM_WEBHOOK_DELAY_MS),
    dropRate: fraction('PAYSTEP_SIM_WEBHOOK_DROP_RATE', env.PAYSTEP_SIM_WEBHOOK_DROP_RATE),
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined));
}

/** Signs a payload as Stripe does: `t=<unix seconds>,v1=<HMAC-SHA256 of "t.payload">`. */
export function signStripePayload(payload: string, secret: string, timestampSeconds?: number): string {
  return Stripe.webhooks.generateTestHeaderString({
    payload,
    secret,
    ...(timestampSeconds !== undefined ? { timestamp: timestampSeconds } : {}),
  });
}

export class StripeWebhookSender {
  private controls: WebhookControls;
  private readonly opts: StripeWebhookSenderOptions;
  private readonly random: () => number;
  private readonly held: StripeEvent[] = [];
  private holdTimer?: NodeJS.Timeout;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly running = new Set<Promise<void>>();
  private readonly idleWaiters: (() => void)[] = [];
  private pending = 0;
  private stopped = false;
  private readonly log: DeliveryRecord[] = [];
  private counters: WebhookSenderStats = {
    events: 0,
    delivered: 0,
    duplicated: 0,
    dropped: 0,
    retries: 0,
    failed: 0,
  };

  constructor(opts: StripeWebhookSenderOptions) {
    this.opts = opts;
    this.random = opts.random ?? Math.random;
    this.controls = { ...DEFAULTS };
    this.configure(opts);
  }

  /** Changes the test controls; returns them all. */
  configure(c: Partial<WebhookControls>): WebhookControls {
    const next = { ...this.controls };
    for (const k of Object.keys(DEFAULTS) as (keyof WebhookControls)[]) {
      const v = c[k];
      if (v === undefined) continue;
      if (typeof v !== 'number' || !(v >= 0))
        throw new Error(`webhook control ${k} must be a non-negative number`);
      if ((k === 'duplicate' || k === 'dropRate') && v > 1)
        throw new Error(`webhook control ${k} must be at most 1`);
      next[k] = v;
    }
    this.controls = next;
    if (this.held.length && this.held.length >= this.controls.reorderWindow) this.release();
    return { ...this.controls };
  }

  /** Back to plain delivery: no duplicates, reordering, delay or drops. */
  reset(): WebhookControls {
    return this.configure(DEFAULTS);
  }

  get settings(): WebhookControls {
    return { ...this.controls };
  }

  stats(): WebhookSenderStats {
    return { ...this.counters };
  }

  /** The latest deliveries (at most 1000), oldest first. */
  deliveries(): DeliveryRecord[] {
    return [...this.log];
  }

  /** The simulator's `onEvent`. */
  send(event: StripeEvent): void {
    if (this.stopped) return;
    this.counters.events++;
    if (this.controls.dropRate > 0 && this.random() < this.controls.dropRate) {
      this.counters.dropped++;
      return;
    }
    this.pending++;
    if (this.controls.reorderWindow > 1) {
      this.held.push(event);
      if (this.held.length >= this.controls.reorderWindow) this.release();
      else if (!this.holdTimer) {
        this.holdTimer = setTimeout(() => this.release(), this.controls.reorderHoldMs);
        this.holdTimer.unref();
      }
      return;
    }
    this.schedule(event);
  }

  /** Delivers events held for reordering now. */
  flush(): void {
    this.release();
  }

  /** Resolves when nothing is held, delayed, in flight or waiting for a retry. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.held.length = 0;
    await Promise.allSettled([...this.running]);
    this.pending = 0;
    this.notifyIdle();
  }

  // ----------------------------------------------------------------------------------------------

  private release(): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    const batch = this.held.splice(0);
    for (let i = batch.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [batch[i], batch[j]] = [batch[j]!, batch[i]!];
    }
    for (const e of batch) this.schedule(e);
  }

  private schedule(event: StripeEvent): void {
    const copies = this.controls.duplicate > 0 && this.random() < this.controls.duplicate ? 2 : 1;
    if (copies === 2) {
      this.counters.duplicated++;
      this.pending++;
    }
    for (let c = 0; c < copies; c++) {
      const base = this.controls.delayMs;
      const wait = base > 0 ? base + this.random() * base : 0;
      this.later(
        () => this.attempt(event, 1),
        c === 0 ? wait : wait + 1 + this.random() * Math.max(20, base),
      );
    }
  }

  private later(fn: () => void, ms: number): void {
    if (this.stopped) return;
    if (ms <= 0) {
      setImmediate(fn);
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  private attempt(event: StripeEvent, attempt: number): void {
    if (this.stopped) return;
    const run = this.post(event, attempt).finally(() => this.running.delete(run));
    this.running.add(run);
  }

  private async post(event: StripeEvent, attempt: number): Promise<void> {
    const url = this.opts.url();
    let status: number | 'error' = 'error';
    if (url) {
      // Stripe sends the event pretty-printed; the signature covers these exact bytes.
      const payload = JSON.stringify(event, null, 2);
      const secret = this.opts.secret().split(',')[0]!.trim();
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json; charset=utf-8',
            'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
            'stripe-signature': signStripePayload(payload, secret),
          },
          body: payload,
          signal: AbortSignal.timeout(15_000),
        });
        await res.arrayBuffer().catch(() => undefined);
        status = res.status;
      } catch {
        status = 'error';
      }
    }
    if (this.stopped) return;
    this.log.push({ event: event.id, type: event.type, attempt, status, at: Date.now() });
    if (this.log.length > 1000) this.log.shift();
    if (typeof status === 'number' && status >= 200 && status < 300) {
      this.counters.delivered++;
      this.done();
      return;
    }
    const max = this.opts.maxAttempts ?? 10;
    if (attempt >= max) {
      this.counters.failed++;
      this.opts.logger.warn({ event: event.id, type: event.type, status }, 'stripe webhook given up');
      this.done();
      return;
    }
    this.counters.retries++;
    // Stripe: exponential backoff. Here 1 s, 2 s, 4 s … (scaled by the runtime's time scale).
    const delay = (1000 * 2 ** (attempt - 1)) / (this.opts.timeScale ?? 1);
    this.later(() => this.attempt(event, attempt + 1), delay);
  }

  private done(): void {
    this.pending = Math.max(0, this.pending - 1);
    this.notifyIdle();
  }

  private notifyIdle(): void {
    if (this.pending !== 0) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
