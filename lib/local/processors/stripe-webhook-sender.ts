/**
 * Delivers the Stripe simulator's events to paystep as Stripe does: a POST of the event JSON to the
 * webhook endpoint (`/webhooks/stripe` of the local gateway) with `Stripe-Signature: t=…,v1=…`
 * computed by the `stripe` SDK under the endpoint's signing secret, retried with exponential
 * backoff while the endpoint does not answer 2xx (docs.stripe.com/webhooks#retries).
 *
 * The delivery itself — one event per request, the retry schedule, the test controls — is the
 * simulator framework's (framework/delivery.ts `DurableDelivery`, as the Adyen simulator's
 * notifications); this file adds only what is Stripe's: the signed request and the schedule
 * (1 s, 2 s, 4 s … for `maxAttempts` attempts, scaled by the runtime's time scale).
 *
 * Test controls (programmatic `configure()`, or PAYSTEP_SIM_WEBHOOK_* at start):
 * - `duplicate` (0..1): probability that an event is delivered twice (the second a little later);
 * - `reorderWindow` (N): events are held until N are waiting (or `reorderHoldMs` passed), then
 *   delivered in a random order;
 * - `delayMs`: every delivery waits this long first (plus a random jitter of up to as much again);
 * - `dropRate` (0..1): probability that an event is never delivered (what the sweeper must cover).
 *
 * Until the endpoint's URL is known (the gateway not started yet) deliveries wait without counting
 * an attempt. Deliveries are not journaled: events pending when the runtime stops are not
 * delivered later (paystep's poll fallbacks and the sweeper cover lost webhooks, as they must for
 * Stripe too).
 */
import Stripe from 'stripe';
import type { Logger } from '../log.ts';
import type { StripeEvent } from './stripe-simulator.ts';
import {
  DEFAULT_DELIVERY_CONTROLS,
  DurableDelivery,
  type AttemptResult,
  type DeliveryControls,
  type Envelope,
} from './framework/delivery.ts';
import { DurableStore } from './framework/store.ts';

/** The framework's delivery controls (framework/delivery.ts), under the name the runtime and tests use. */
export type WebhookControls = DeliveryControls;

export interface StripeWebhookSenderOptions extends Partial<WebhookControls> {
  /** The endpoint URL, or null while it is not available (deliveries wait). */
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
  /** Events delivered (answered 2xx; a duplicate delivery is not counted again). */
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

/** Stripe's schedule: 1 s, 2 s, 4 s … after each failed attempt, until `maxAttempts` attempts. */
export function stripeRetryDelay(maxAttempts: number) {
  return (failedAttempts: number): number | undefined =>
    failedAttempts >= maxAttempts ? undefined : 1000 * 2 ** (failedAttempts - 1);
}

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
  private readonly opts: StripeWebhookSenderOptions;
  private readonly delivery: DurableDelivery<StripeEvent>;
  /** The event of each envelope attempted lately (for `deliveries()`), oldest first. */
  private readonly sent = new Map<string, { event: string; type: string }>();
  private stopped = false;

  constructor(opts: StripeWebhookSenderOptions) {
    this.opts = opts;
    const controls: Partial<WebhookControls> = {};
    for (const k of Object.keys(DEFAULT_DELIVERY_CONTROLS) as (keyof WebhookControls)[])
      if (opts[k] !== undefined) controls[k] = opts[k];
    this.delivery = new DurableDelivery<StripeEvent>({
      store: new DurableStore(), // in memory: see the module comment
      collection: 'stripe-webhooks',
      logger: opts.logger,
      send: (env) => this.post(env),
      retryDelay: stripeRetryDelay(opts.maxAttempts ?? 10),
      timeScale: opts.timeScale,
      maxBatch: 1, // Stripe sends one event per request
      controls,
      random: opts.random,
    });
    this.delivery.resume();
  }

  /** Changes the test controls; returns them all. */
  configure(c: Partial<WebhookControls>): WebhookControls {
    return this.delivery.configure(c);
  }

  /** Back to plain delivery: no duplicates, reordering, delay or drops. */
  reset(): WebhookControls {
    return this.delivery.reset();
  }

  get settings(): WebhookControls {
    return this.delivery.settings;
  }

  stats(): WebhookSenderStats {
    const { items, ...rest } = this.delivery.stats();
    return { events: items, ...rest };
  }

  /** The latest deliveries (at most 1000), oldest first. */
  deliveries(): DeliveryRecord[] {
    return this.delivery.attempts().map((a) => ({
      event: this.sent.get(a.envelope)?.event ?? '',
      type: this.sent.get(a.envelope)?.type ?? '',
      attempt: Math.max(1, a.attempt),
      status: a.status === 'no-target' ? 'error' : a.status,
      at: a.at,
    }));
  }

  /** The simulator's `onEvent`. */
  send(event: StripeEvent): void {
    if (this.stopped) return;
    this.delivery.enqueue(event);
  }

  /** Delivers events held for reordering now. */
  flush(): void {
    this.delivery.releaseHeld();
  }

  /** Resolves when nothing is held, delayed, in flight or waiting for a retry. */
  idle(): Promise<void> {
    return this.delivery.idle();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.delivery.stop();
  }

  // ----------------------------------------------------------------------------------------------

  private async post(env: Envelope<StripeEvent>): Promise<AttemptResult> {
    const event = env.items[0]!;
    const url = this.opts.url();
    if (!url) return { accepted: false, status: 'no-target' };
    this.sent.delete(env.id);
    this.sent.set(env.id, { event: event.id, type: event.type });
    if (this.sent.size > 2000) this.sent.delete(this.sent.keys().next().value!);
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
      return { accepted: res.status >= 200 && res.status < 300, status: res.status };
    } catch {
      return { accepted: false, status: 'error' };
    }
  }
}
