/** The Stripe simulator's public types (lib/local/processors/stripe/simulator.ts). */
import type { Logger } from '../../log.ts';

export type StripeEventType =
  | 'payment_intent.created'
  | 'payment_intent.requires_action'
  | 'payment_intent.amount_capturable_updated'
  | 'payment_intent.succeeded'
  | 'payment_intent.payment_failed'
  | 'payment_intent.canceled'
  | 'charge.succeeded'
  | 'charge.failed'
  | 'charge.captured'
  | 'charge.refunded'
  | 'charge.refund.updated'
  | 'refund.created'
  | 'refund.updated'
  | 'refund.failed'
  | 'charge.dispute.created'
  | 'charge.dispute.updated'
  | 'charge.dispute.closed'
  | 'charge.dispute.funds_withdrawn'
  | 'charge.dispute.funds_reinstated'
  | 'payout.created'
  | 'payout.paid';

/** A Stripe `event` object, as a webhook endpoint would receive it. */
export interface StripeEvent {
  id: string;
  object: 'event';
  api_version: string;
  created: number;
  data: { object: StripeObject };
  livemode: false;
  pending_webhooks: number;
  request: { id: string | null; idempotency_key: string | null };
  type: StripeEventType;
}

export interface StripeSimulatorOptions {
  /** Persist objects, idempotency records and events under `${dataDir}/processors/stripe.jsonl`. */
  dataDir?: string;
  /** Events kept for `events()` and in the journal, the latest ones (default EVENT_LOG_LIMIT). */
  eventLogLimit?: number;
  /** Journal lines after which it may be compacted while running (default JOURNAL_COMPACT_MIN_LINES). */
  journalCompactMinLines?: number;
  /** Records (objects, idempotency records, events) kept parsed in memory, the last used (default 2,000). */
  objectCacheSize?: number;
  logger?: Logger;
  /** Clock in epoch ms (default Date.now): `created` fields, idempotency key expiry, refund timers. */
  now?: () => number;
  /**
   * Called with every event, after the response that caused it was sent (or after a simulator-side
   * change). The extension point for webhook delivery. Errors are logged, never thrown back.
   */
  onEvent?: (event: StripeEvent) => void | Promise<void>;
  /**
   * Delay before an asynchronous refund changes state (`pm_card_pendingRefund`: pending → succeeded;
   * `pm_card_refundFail`: succeeded → failed). Default 5000 ms; `settleAsyncRefunds()` forces it.
   */
  asyncRefundDelayMs?: number;
  /** Dispute timing (see DisputeSettings); also changeable later with `configureDisputes()`. */
  disputes?: Partial<DisputeSettings>;
  /** Automatic payouts every N ms (default: daily, or PAYSTEP_STRIPE_PAYOUT_EVERY_SECONDS; 0: never). */
  payoutEveryMs?: number;
}

export interface DisputeSettings {
  /** Delay between a `pm_card_createDispute*` charge being captured and its dispute (default 1000 ms). */
  createDelayMs: number;
  /** Delay before evidence with a test string (`winning_evidence`, …) decides the dispute (default 1000 ms). */
  decisionDelayMs: number;
  /** `evidence_details.due_by` = dispute created + this (default 7 days). */
  responseWindowSeconds: number;
}

export interface StripeFaults {
  /** Added processing time for every matching /v1 request, in ms. */
  latencyMs?: number;
  /** Probability (0..1) that a matching request fails with 500 `api_error` before executing. */
  failRate?: number;
  /** The next N matching requests fail with 500 `api_error` before executing. */
  failNext?: number;
  /** The next N matching requests execute (and store their idempotent result) but are never answered. */
  timeoutNext?: number;
  /**
   * The next N matching requests fail with 500 `api_error` once the API has started executing them
   * (before any effect): the 500 is their idempotent result, replayed for the same key, and
   * answered with `Stripe-Should-Retry: false`, as Stripe does.
   */
  failStoredNext?: number;
  /** The next N matching requests are refused with 429 `rate_limit` before executing. */
  rateLimitNext?: number;
  /**
   * The next N payment confirmations are declined as processing errors (`processing_error`, a soft
   * decline Stripe says to try again later), whatever the card: an acquirer-side failure.
   */
  declineNext?: number;
  /**
   * Probability (0..1) that a matching request's connection is dropped without an answer before
   * executing (Stripe unreachable: the SDK sees a connection error; nothing happened). At 1
   * without `match`, the simulator's API door refuses connections instead (`refusesConnections`).
   */
  downRate?: number;
  /** Probability (0..1) that a matching request executes (idempotent result stored) but is never answered. */
  timeoutRate?: number;
  /** Only requests whose `METHOD /path` matches this regular expression are affected (default: all). */
  match?: string;
}

export interface StripeSimulatorStats {
  paymentIntentsCreated: number;
  /** Confirmation attempts executed (create with confirm=true, and /confirm). */
  confirms: number;
  /** Successful captures. */
  captures: number;
  /** Refunds created. */
  refunds: number;
  /** Requests to /v1, faulted and replayed ones included. */
  requests: number;
}

/** A Stripe-shaped JSON object (`object` says which). */
export type StripeObject = { id: string; object: string } & Record<string, unknown>;

/** Dispute marker left on a charge by `pm_card_createDispute*`: the later dispute issue creates it. */
export interface DisputeMarker {
  charge: string;
  payment_intent: string;
  reason: string;
  /** `pm_card_createDisputeInquiry`: an inquiry (warning_needs_response) rather than a chargeback. */
  inquiry: boolean;
}
