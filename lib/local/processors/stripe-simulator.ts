/**
 * A local Stripe: an HTTP server speaking the part of Stripe's API that paystep uses, so the real
 * `stripe` SDK is the client (`new Stripe(key, { host: '127.0.0.1', port, protocol: 'http' })`).
 *
 * What it models (docs.stripe.com/api, /testing, /idempotency, /error-handling):
 * - PaymentIntents: create (with `confirm`), retrieve, confirm, capture (partial capture releases the
 *   rest), cancel; Charges, Refunds, PaymentMethods and BalanceTransactions as they result from them.
 *   Statuses, amounts and error bodies are Stripe's; a declined confirm answers 402 AND leaves the
 *   PaymentIntent in `requires_payment_method` with `last_payment_error`, as Stripe does.
 * - Stripe's documented test PaymentMethod ids (`pm_card_visa`, `pm_card_visa_chargeDeclinedInsufficientFunds`,
 *   `pm_card_authenticationRequired`, `pm_card_createDispute`, `pm_card_gb`, …; see TEST_PAYMENT_METHODS).
 *   As on Stripe, using one creates a new PaymentMethod (`pm_…`) from that test card.
 * - Requests: form-encoded bodies with Stripe's bracket notation, `Authorization: Bearer sk_test_…`
 *   (or Basic, as curl -u sends it), unknown parameters refused (`parameter_unknown`), `expand[]`.
 * - Idempotency (v1 semantics): the first response of a key is stored once the endpoint starts executing
 *   (including a 402 decline) and replayed for the same key and parameters with
 *   `Idempotent-Replayed: true`; other parameters or another endpoint → 400 `idempotency_error`; the same
 *   key while the first request is still executing → 409 `idempotency_error`. Keys are scoped per API key
 *   and kept 24 hours. Requests that fail parameter validation store nothing (as Stripe).
 * - Faults for failover and retry tests (`faults`, or `POST /_sim/faults`): latency, 5xx, 429,
 *   dropped connections (`downRate`) and timeouts. A 5xx or 429 fault is answered before the endpoint runs: nothing happens and nothing is
 *   stored, so a retry with the same key executes normally (Stripe's "request never reached the API").
 *   A timeout fault runs the request, stores its idempotent result, then never answers: the caller
 *   cannot know the outcome, and its retry with the same key gets the stored result, not a second charge.
 * - Events: every state change produces a Stripe-shaped `event` (`evt_…`) passed to `onEvent` (the
 *   extension point for signed webhooks) and kept for `events()`.
 * - Durability: with `dataDir`, every object, idempotency record and event is appended to
 *   `${dataDir}/processors/stripe.jsonl` before the response is sent, and reloaded (then compacted) by
 *   `start()`.
 *
 * - Payouts (finance, issue 5): `createPayout()` (or `POST /_sim/payouts/run`, `{"include_pending":true}`
 *   to pay out funds not yet available) pays the balance out, one automatic payout per currency, as
 *   Stripe's daily schedule does (every `payoutEveryMs`, default a day; `PAYSTEP_STRIPE_PAYOUT_EVERY_SECONDS`,
 *   0 turns it off). `GET /v1/payouts`, `GET /v1/payouts/:id`, `GET /v1/balance_transactions?payout=…`
 *   (with `expand[]=data.source`), and `GET /_sim/payouts/:id/itemized.csv`: the payout's itemized
 *   payout reconciliation report, as Stripe's Dashboard downloads it.
 *
 * Simulator-only routes (no auth; the server listens on 127.0.0.1): `GET|POST|DELETE /_sim/faults`,
 * `GET /_sim/stats`, `POST /_sim/payment_intents/:id/authenticate` ({"outcome":"succeed"|"fail"}),
 * `GET /_sim/3ds/:id` (the page a 3-D Secure `next_action` points at), `POST /_sim/refunds/settle`,
 * `POST /_sim/disputes/:id/close` ({"outcome":"won"|"lost"}).
 *
 * - Disputes: `pm_card_createDispute*` charges are disputed after a delay (`disputes.createDelayMs`);
 *   GET/POST /v1/disputes/:id (evidence, submit) and POST /v1/disputes/:id/close; Stripe's evidence
 *   test strings decide them (see the disputes section of the class).
 *
 * - Lists and the balance: GET /v1/refunds, /v1/disputes, /v1/payouts, /v1/balance_transactions,
 *   /v1/balance.
 * - Errors carry `Stripe-Should-Retry` (false on 4xx and on a 500 of an executed request, which is
 *   stored and replayed for its key; true on 409 and on a 500 answered before the API ran), codes
 *   from Stripe's list only; docs/simulators.md lists what is checked against Stripe's schemas.
 *
 * Not modelled: customers, SetupIntents, other lists and search,
 * other payment method types, Connect, currencies conversion, signed webhook delivery.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import Stripe from 'stripe';
import { randomBase62 } from '../../../lambdas/shared/ids.ts';
import {
  renderStripeItemizedCsv,
  type StripeItemizedRow,
} from '../../../lambdas/reconciliation/sources/stripe-csv.ts';
import { Journal } from '../journal.ts';
import { createLogger, type Logger } from '../log.ts';
import { listenOn } from '../ports.ts';

// ---------------------------------------------------------------------------------------------
// Public types

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
   * Probability (0..1) that a matching request's connection is dropped without an answer before
   * executing (Stripe unreachable: the SDK sees a connection error; nothing happened).
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

// ---------------------------------------------------------------------------------------------
// Test cards (docs.stripe.com/testing, docs.stripe.com/radar/testing)

interface Decline {
  code: string;
  decline_code: string;
  message: string;
  param?: string;
  advice_code?: string;
  /** The issuer's (ISO 8583) response code, as Stripe passes it on: `51` insufficient funds, … */
  network_decline_code?: string;
  /** Blocked by Radar (never sent to the issuer) rather than declined by the issuer. */
  blocked?: boolean;
}

type Behavior =
  | {
      kind: 'succeed';
      risk?: 'normal' | 'elevated';
      dispute?: { reason: string; inquiry: boolean };
      refund?: 'pending' | 'fail';
    }
  | { kind: 'decline'; decline: Decline }
  | { kind: 'authenticate' };

export interface TestCard {
  brand: string;
  last4: string;
  country: string;
  funding: 'credit' | 'debit' | 'prepaid';
  description: string;
  behavior: Behavior;
}

const DECLINES = {
  generic: {
    code: 'card_declined',
    decline_code: 'generic_decline',
    network_decline_code: '05',
    message: 'Your card was declined.',
    advice_code: 'try_again_later',
  },
  insufficientFunds: {
    code: 'card_declined',
    decline_code: 'insufficient_funds',
    network_decline_code: '51',
    message: 'Your card has insufficient funds.',
    advice_code: 'try_again_later',
  },
  lost: {
    code: 'card_declined',
    decline_code: 'lost_card',
    network_decline_code: '41',
    message: 'Your card was declined.',
    advice_code: 'do_not_try_again',
  },
  stolen: {
    code: 'card_declined',
    decline_code: 'stolen_card',
    network_decline_code: '43',
    message: 'Your card was declined.',
    advice_code: 'do_not_try_again',
  },
  expired: {
    code: 'expired_card',
    decline_code: 'expired_card',
    network_decline_code: '54',
    message: 'Your card has expired.',
    param: 'exp_month',
    advice_code: 'confirm_card_data',
  },
  incorrectCvc: {
    code: 'incorrect_cvc',
    decline_code: 'incorrect_cvc',
    message: "Your card's security code is incorrect.",
    param: 'cvc',
    advice_code: 'confirm_card_data',
  },
  processing: {
    code: 'processing_error',
    decline_code: 'processing_error',
    message: 'An error occurred while processing your card. Try again in a little bit.',
    advice_code: 'try_again_later',
  },
  velocity: {
    code: 'card_declined',
    decline_code: 'card_velocity_exceeded',
    network_decline_code: '61',
    message:
      'Your card was declined for making repeated attempts too frequently or exceeding its amount limit.',
    advice_code: 'try_again_later',
  },
  fraudulent: {
    code: 'card_declined',
    decline_code: 'fraudulent',
    message: 'Your card was declined.',
    blocked: true,
  },
} satisfies Record<string, Decline>;

const ok = (description: string, extra: Omit<Extract<Behavior, { kind: 'succeed' }>, 'kind'> = {}) => ({
  description,
  behavior: { kind: 'succeed' as const, ...extra },
});
const decline = (description: string, d: Decline) => ({
  description,
  behavior: { kind: 'decline' as const, decline: d },
});
const visa = (last4: string, country = 'US') => ({
  brand: 'visa',
  last4,
  country,
  funding: 'credit' as const,
});

/** Stripe's documented test PaymentMethod ids this simulator honours. */
export const TEST_PAYMENT_METHODS: Readonly<Record<string, TestCard>> = {
  // Brands
  pm_card_visa: { ...visa('4242'), ...ok('Visa, succeeds') },
  pm_card_visa_debit: { ...visa('5556'), funding: 'debit', ...ok('Visa debit, succeeds') },
  pm_card_mastercard: { ...visa('4444'), brand: 'mastercard', ...ok('Mastercard, succeeds') },
  pm_card_mastercard_debit: {
    ...visa('8210'),
    brand: 'mastercard',
    funding: 'debit',
    ...ok('Mastercard debit, succeeds'),
  },
  pm_card_mastercard_prepaid: {
    ...visa('5100'),
    brand: 'mastercard',
    funding: 'prepaid',
    ...ok('Mastercard prepaid, succeeds'),
  },
  pm_card_amex: { ...visa('8431'), brand: 'amex', ...ok('American Express, succeeds') },
  pm_card_discover: { ...visa('1117'), brand: 'discover', ...ok('Discover, succeeds') },
  pm_card_diners: { ...visa('0004'), brand: 'diners', ...ok('Diners Club, succeeds') },
  pm_card_jcb: { ...visa('0505'), brand: 'jcb', ...ok('JCB, succeeds') },
  pm_card_unionpay: { ...visa('0005'), brand: 'unionpay', ...ok('UnionPay, succeeds') },
  pm_card_bypassPending: { ...visa('0077'), ...ok('Succeeds; funds available immediately') },
  // Card countries (Visa)
  pm_card_us: { ...visa('4242', 'US'), ...ok('United States Visa, succeeds') },
  pm_card_ca: { ...visa('0000', 'CA'), ...ok('Canada Visa, succeeds') },
  pm_card_mx: { ...visa('8001', 'MX'), ...ok('Mexico Visa, succeeds') },
  pm_card_br: { ...visa('0002', 'BR'), ...ok('Brazil Visa, succeeds') },
  pm_card_gb: { ...visa('0000', 'GB'), ...ok('United Kingdom Visa, succeeds') },
  pm_card_ie: { ...visa('0005', 'IE'), ...ok('Ireland Visa, succeeds') },
  pm_card_fr: { ...visa('0003', 'FR'), ...ok('France Visa, succeeds') },
  pm_card_de: { ...visa('0016', 'DE'), ...ok('Germany Visa, succeeds') },
  pm_card_es: { ...visa('0007', 'ES'), ...ok('Spain Visa, succeeds') },
  pm_card_it: { ...visa('0008', 'IT'), ...ok('Italy Visa, succeeds') },
  pm_card_nl: { ...visa('0002', 'NL'), ...ok('Netherlands Visa, succeeds') },
  pm_card_be: { ...visa('0004', 'BE'), ...ok('Belgium Visa, succeeds') },
  pm_card_at: { ...visa('0008', 'AT'), ...ok('Austria Visa, succeeds') },
  pm_card_au: { ...visa('0006', 'AU'), ...ok('Australia Visa, succeeds') },
  pm_card_jp: { ...visa('0003', 'JP'), ...ok('Japan Visa, succeeds') },
  pm_card_sg: { ...visa('0003', 'SG'), ...ok('Singapore Visa, succeeds') },
  pm_card_in: { ...visa('0008', 'IN'), ...ok('India Visa, succeeds') },
  // Declines
  pm_card_visa_chargeDeclined: { ...visa('0002'), ...decline('Generic decline', DECLINES.generic) },
  pm_card_visa_chargeDeclinedInsufficientFunds: {
    ...visa('9995'),
    ...decline('Insufficient funds', DECLINES.insufficientFunds),
  },
  pm_card_visa_chargeDeclinedLostCard: { ...visa('9987'), ...decline('Lost card', DECLINES.lost) },
  pm_card_visa_chargeDeclinedStolenCard: { ...visa('9979'), ...decline('Stolen card', DECLINES.stolen) },
  pm_card_chargeDeclinedExpiredCard: { ...visa('0069'), ...decline('Expired card', DECLINES.expired) },
  pm_card_visa_chargeDeclinedExpiredCard: { ...visa('0069'), ...decline('Expired card', DECLINES.expired) },
  pm_card_chargeDeclinedIncorrectCvc: {
    ...visa('0127'),
    ...decline('Incorrect CVC', DECLINES.incorrectCvc),
  },
  pm_card_visa_chargeDeclinedIncorrectCvc: {
    ...visa('0127'),
    ...decline('Incorrect CVC', DECLINES.incorrectCvc),
  },
  pm_card_chargeDeclinedProcessingError: {
    ...visa('0119'),
    ...decline('Processing error', DECLINES.processing),
  },
  pm_card_visa_chargeDeclinedProcessingError: {
    ...visa('0119'),
    ...decline('Processing error', DECLINES.processing),
  },
  pm_card_visa_chargeDeclinedVelocityLimitExceeded: {
    ...visa('6975'),
    ...decline('Velocity limit exceeded', DECLINES.velocity),
  },
  pm_card_chargeCustomerFail: {
    ...visa('0341'),
    ...decline('Attaches, then charging fails', DECLINES.generic),
  },
  // Fraud prevention (Radar)
  pm_card_chargeDeclinedFraudulent: {
    ...visa('0019'),
    ...decline('Highest risk, always blocked', DECLINES.fraudulent),
  },
  pm_card_visa_chargeDeclinedFraudulent: {
    ...visa('0019'),
    ...decline('Highest risk, always blocked', DECLINES.fraudulent),
  },
  pm_card_radarBlock: { ...visa('0019'), ...decline('Always blocked by Radar', DECLINES.fraudulent) },
  pm_card_riskLevelHighest: {
    ...visa('4954'),
    ...decline('Highest risk, blocked by the default rule', DECLINES.fraudulent),
  },
  pm_card_riskLevelElevated: { ...visa('9235'), ...ok('Elevated risk, succeeds', { risk: 'elevated' }) },
  // 3-D Secure
  pm_card_authenticationRequired: {
    ...visa('3184'),
    description: 'Requires authentication (3-D Secure) on every payment',
    behavior: { kind: 'authenticate' },
  },
  // Disputes
  pm_card_createDispute: {
    ...visa('0259'),
    ...ok('Succeeds, then is disputed as fraudulent', { dispute: { reason: 'fraudulent', inquiry: false } }),
  },
  pm_card_createDisputeProductNotReceived: {
    ...visa('2685'),
    ...ok('Succeeds, then is disputed as product not received', {
      dispute: { reason: 'product_not_received', inquiry: false },
    }),
  },
  pm_card_createDisputeInquiry: {
    ...visa('1976'),
    ...ok('Succeeds, then gets an inquiry', { dispute: { reason: 'fraudulent', inquiry: true } }),
  },
  // Refunds
  pm_card_pendingRefund: {
    ...visa('7726'),
    ...ok('Succeeds; its refunds are pending, then succeed', { refund: 'pending' }),
  },
  pm_card_refundFail: {
    ...visa('5126'),
    ...ok('Succeeds; its refunds succeed, then fail (expired_or_canceled_card)', { refund: 'fail' }),
  },
};

// ---------------------------------------------------------------------------------------------
// Currencies

/** Currencies Stripe accepts for card payments (lowercase ISO 4217). */
const CURRENCIES = new Set(
  (
    'usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd bwp byn bzd ' +
    'cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf gtq gyd ' +
    'hkd hnl htg huf idr ils inr isk jmd jod jpy kes kgs khr kmf krw kwd kyd kzt lak lbp lkr lrd lsl mad ' +
    'mdl mga mkd mmk mnt mop mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd omr pab pen pgk php pkr pln ' +
    'pyg qar ron rsd rub rwf sar sbd scr sek sgd shp sle sos srd std szl thb tjs tnd top try ttd twd tzs ' +
    'uah ugx uyu uzs vnd vuv wst xaf xcd xof xpf yer zar zmw'
  ).split(' '),
);
const ZERO_DECIMAL = new Set('bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf'.split(' '));
const THREE_DECIMAL = new Set('bhd jod kwd omr tnd'.split(' '));
/** Stripe's minimum charge amounts (minor units) for the currencies that have a documented one. */
const MINIMUM_AMOUNT: Record<string, number> = {
  usd: 50,
  aed: 200,
  aud: 50,
  bgn: 100,
  brl: 50,
  cad: 50,
  chf: 50,
  czk: 1500,
  dkk: 250,
  eur: 50,
  gbp: 30,
  hkd: 400,
  huf: 17500,
  inr: 50,
  jpy: 50,
  mxn: 1000,
  myr: 200,
  nok: 300,
  nzd: 50,
  pln: 200,
  ron: 200,
  sek: 300,
  sgd: 50,
  thb: 1000,
};
const MAXIMUM_AMOUNT = 99_999_999;
const AUTHORIZATION_WINDOW_SECONDS = 7 * 24 * 3600;
const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;
const DOCS = 'https://stripe.com/docs/error-codes';

function formatMoney(amount: number, currency: string): string {
  const digits = ZERO_DECIMAL.has(currency) ? 0 : THREE_DECIMAL.has(currency) ? 3 : 2;
  const major = amount / 10 ** digits;
  try {
    return new Intl.NumberFormat('en-US', {
      style: 'currency',
      currency: currency.toUpperCase(),
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    }).format(major);
  } catch {
    return `${major.toFixed(digits)} ${currency}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Errors

interface StripeErrorBody {
  type: 'api_error' | 'card_error' | 'idempotency_error' | 'invalid_request_error';
  message: string;
  code?: string;
  decline_code?: string;
  param?: string;
  doc_url?: string;
  advice_code?: string;
  network_decline_code?: string;
  charge?: string;
  payment_intent?: StripeObject;
  payment_method?: StripeObject;
  request_log_url?: string;
}

/** An error response. `stored`: whether the idempotency layer keeps it (the endpoint had started). */
class SimError extends Error {
  readonly status: number;
  readonly body: StripeErrorBody;
  readonly stored: boolean;
  constructor(status: number, body: StripeErrorBody, stored = false) {
    super(body.message);
    this.status = status;
    this.body = body;
    this.stored = stored;
  }
}

const docUrl = (code: string) => `${DOCS}/${code.replace(/_/g, '-')}`;

/** A request refused on its parameters: never stored by the idempotency layer. */
function invalid(message: string, param?: string, code?: string): SimError {
  return new SimError(400, {
    type: 'invalid_request_error',
    message,
    ...(code ? { code, doc_url: docUrl(code) } : {}),
    ...(param ? { param } : {}),
  });
}

/** A refusal decided by the endpoint (wrong state, over-refund): stored like any executed result. */
function refused(message: string, param?: string, code?: string): SimError {
  const e = invalid(message, param, code);
  return new SimError(e.status, e.body, true);
}

const noSuch = (what: string, id: string, param: string, status = 400) =>
  new SimError(status, {
    type: 'invalid_request_error',
    code: 'resource_missing',
    doc_url: docUrl('resource_missing'),
    message: `No such ${what}: '${id}'`,
    param,
  });

// ---------------------------------------------------------------------------------------------
// Form parsing (Stripe's bracket notation: a[b]=1, list[0]=x, list[]=x)

type Param = string | Params | Param[];
interface Params {
  [key: string]: Param;
}

export function parseStripeForm(body: string): Params {
  const root: Params = {};
  for (const [rawKey, value] of new URLSearchParams(body)) {
    const m = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(rawKey);
    const segments = m
      ? [m[1] as string, ...[...(m[2] ?? '').matchAll(/\[([^[\]]*)\]/g)].map((x) => x[1] as string)]
      : [rawKey];
    let node: Params = root;
    for (let i = 0; i < segments.length; i++) {
      let seg = segments[i] as string;
      if (seg === '') seg = String(Object.keys(node).length);
      if (i === segments.length - 1) {
        node[seg] = value;
      } else {
        const next = node[seg];
        if (next === undefined || typeof next === 'string' || Array.isArray(next)) node[seg] = {};
        node = node[seg] as Params;
      }
    }
  }
  return listify(root) as Params;
}

/** Objects whose keys are all 0..n-1 become arrays (`expand[0]`, `payment_method_types[]`). */
function listify(p: Param): Param {
  if (typeof p === 'string' || Array.isArray(p)) return p;
  const keys = Object.keys(p);
  for (const k of keys) p[k] = listify(p[k] as Param);
  if (keys.length > 0 && keys.every((k) => /^\d+$/.test(k))) {
    return keys.sort((a, b) => Number(a) - Number(b)).map((k) => p[k] as Param);
  }
  return p;
}

/** Typed reads of request parameters, with Stripe's validation errors. */
class Reader {
  readonly params: Params;
  constructor(params: Params) {
    this.params = params;
  }

  allow(names: readonly string[]): void {
    for (const k of Object.keys(this.params)) {
      if (!names.includes(k)) throw invalid(`Received unknown parameter: ${k}`, k, 'parameter_unknown');
    }
  }

  string(name: string): string | undefined {
    const v = this.params[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string')
      throw invalid(`Invalid string: ${JSON.stringify(v)}`, name, 'parameter_invalid_string');
    return v;
  }

  integer(name: string): number | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    if (!/^-?\d+$/.test(v)) throw invalid(`Invalid integer: ${v}`, name, 'parameter_invalid_integer');
    return Number(v);
  }

  positiveInteger(name: string): number | undefined {
    const n = this.integer(name);
    if (n !== undefined && n < 1) {
      throw invalid('This value must be greater than or equal to 1.', name, 'parameter_invalid_integer');
    }
    return n;
  }

  boolean(name: string): boolean | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    if (v !== 'true' && v !== 'false') throw invalid(`Invalid boolean: ${v}`, name);
    return v === 'true';
  }

  oneOf<T extends string>(name: string, values: readonly T[]): T | undefined {
    const v = this.string(name);
    if (v === undefined || v === '') return undefined;
    if (!values.includes(v as T)) {
      const list = values.length > 1 ? `${values.slice(0, -1).join(', ')}, or ${values.at(-1)}` : values[0];
      throw invalid(`Invalid ${name}: must be one of ${list}`, name);
    }
    return v as T;
  }

  stringList(name: string): string[] | undefined {
    const v = this.params[name];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw invalid('Invalid array', name);
    return v as string[];
  }

  object(name: string): Params | undefined {
    const v = this.params[name];
    if (v === undefined || v === '') return undefined;
    if (typeof v === 'string' || Array.isArray(v)) throw invalid('Invalid object', name);
    return v;
  }

  metadata(name = 'metadata'): Record<string, string> | undefined {
    const m = this.object(name);
    if (!m) return undefined;
    const out: Record<string, string> = {};
    const keys = Object.keys(m);
    if (keys.length > 50) throw invalid('Invalid metadata: metadata can have at most 50 keys.', name);
    for (const k of keys) {
      const v = m[k];
      if (typeof v !== 'string') throw invalid(`Invalid string: ${JSON.stringify(v)}`, `${name}[${k}]`);
      if (k.length > 40)
        throw invalid('Invalid metadata: keys can be at most 40 characters long.', `${name}[${k}]`);
      if (v.length > 500)
        throw invalid('Invalid metadata: values can be at most 500 characters long.', `${name}[${k}]`);
      out[k] = v;
    }
    return out;
  }

  expand(): string[] {
    return this.stringList('expand') ?? [];
  }
}

// ---------------------------------------------------------------------------------------------
// Faults

export class StripeFaultController {
  private state: StripeFaults = {};
  private matcher: RegExp | undefined;

  /** Merges `faults` into the current ones (counts replace counts) and returns the result. */
  set(faults: StripeFaults): StripeFaults {
    const next: StripeFaults = { ...this.state };
    for (const k of ['latencyMs', 'failNext', 'timeoutNext', 'rateLimitNext', 'failStoredNext'] as const) {
      const v = faults[k];
      if (v === undefined) continue;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
        throw new TypeError(`${k} must be a number ≥ 0`);
      next[k] = k === 'latencyMs' ? v : Math.floor(v);
    }
    for (const k of ['failRate', 'downRate', 'timeoutRate'] as const) {
      const r = faults[k];
      if (r === undefined) continue;
      if (typeof r !== 'number' || !(r >= 0 && r <= 1)) throw new TypeError(`${k} must be a number in 0..1`);
      next[k] = r;
    }
    if (faults.match !== undefined) {
      if (typeof faults.match !== 'string') throw new TypeError('match must be a regular expression string');
      this.matcher = faults.match ? new RegExp(faults.match) : undefined;
      next.match = faults.match || undefined;
    }
    for (const k of Object.keys(faults)) {
      if (
        ![
          'latencyMs',
          'failRate',
          'failNext',
          'timeoutNext',
          'rateLimitNext',
          'failStoredNext',
          'downRate',
          'timeoutRate',
          'match',
        ].includes(k)
      ) {
        throw new TypeError(`unknown fault: ${k}`);
      }
    }
    this.state = Object.fromEntries(Object.entries(next).filter(([, v]) => v !== undefined && v !== 0));
    return this.get();
  }

  reset(): void {
    this.state = {};
    this.matcher = undefined;
  }

  get(): StripeFaults {
    return { ...this.state };
  }

  /** @internal Decides the fault for one request and consumes a count. */
  take(request: string): {
    latencyMs: number;
    fault?: 'rate_limit' | 'fail' | 'fail_stored' | 'timeout' | 'down';
  } {
    if (this.matcher && !this.matcher.test(request)) return { latencyMs: 0 };
    const s = this.state;
    const latencyMs = s.latencyMs ?? 0;
    const consume = (k: 'failNext' | 'timeoutNext' | 'rateLimitNext' | 'failStoredNext') => {
      const n = s[k] ?? 0;
      if (n <= 0) return false;
      if (n === 1) delete s[k];
      else s[k] = n - 1;
      return true;
    };
    if (consume('rateLimitNext')) return { latencyMs, fault: 'rate_limit' };
    if (consume('failNext')) return { latencyMs, fault: 'fail' };
    if (consume('failStoredNext')) return { latencyMs, fault: 'fail_stored' };
    if (consume('timeoutNext')) return { latencyMs, fault: 'timeout' };
    if (s.downRate && Math.random() < s.downRate) return { latencyMs, fault: 'down' };
    if (s.failRate && Math.random() < s.failRate) return { latencyMs, fault: 'fail' };
    if (s.timeoutRate && Math.random() < s.timeoutRate) return { latencyMs, fault: 'timeout' };
    return { latencyMs };
  }
}

// ---------------------------------------------------------------------------------------------
// State and journal

type Kind =
  'payment_intent' | 'charge' | 'refund' | 'payment_method' | 'balance_transaction' | 'payout' | 'dispute';

type DisputeOutcome = 'won' | 'lost' | 'escalate';

/** Stripe's dispute evidence fields (text, or the id of an uploaded file). */
const DISPUTE_EVIDENCE_FIELDS = [
  'access_activity_log',
  'billing_address',
  'cancellation_policy',
  'cancellation_policy_disclosure',
  'cancellation_rebuttal',
  'customer_communication',
  'customer_email_address',
  'customer_name',
  'customer_purchase_ip',
  'customer_signature',
  'duplicate_charge_documentation',
  'duplicate_charge_explanation',
  'duplicate_charge_id',
  'product_description',
  'receipt',
  'refund_policy',
  'refund_policy_disclosure',
  'refund_refusal_explanation',
  'service_date',
  'service_documentation',
  'shipping_address',
  'shipping_carrier',
  'shipping_date',
  'shipping_documentation',
  'shipping_tracking_number',
  'uncategorized_file',
  'uncategorized_text',
] as const;
const DISPUTE_ANSWERABLE = ['needs_response', 'warning_needs_response'];
const DISPUTE_CLOSED = ['won', 'lost', 'warning_closed'];
/** Stripe's dispute fee (minor units), withdrawn with the disputed amount and returned on a win. */
const DISPUTE_FEE = 1500;

interface SimInfo {
  /** Test PaymentMethod id the object comes from (`pm_card_visa`, …). */
  testCard?: string;
  dispute?: { reason: string; inquiry: boolean };
  /** The `return_url` a PaymentIntent was confirmed with (where the 3-D Secure page sends the customer back). */
  returnUrl?: string;
  /** Pending asynchronous refund change: the status it moves to, and when (epoch ms). */
  transition?: { to: 'succeeded' | 'failed'; at: number };
  /** Charge of a `pm_card_createDispute*` card: when its dispute is created (epoch ms), and its id once it is. */
  disputeAt?: number;
  disputeId?: string;
  /** Dispute: the decision its evidence asked for, and when it applies (epoch ms). */
  disputeDecision?: { outcome: DisputeOutcome; at: number };
  /** Balance transaction: the payout that paid it out. */
  payout?: string;
}

interface IdempotencyRecord {
  endpoint: string;
  paramsHash: string;
  status: number;
  body: string;
  requestId: string;
  createdMs: number;
}

type JournalRecord =
  | { t: 'obj'; kind: Kind; obj: StripeObject; sim?: SimInfo }
  | { t: 'idem'; scope: string; rec: IdempotencyRecord }
  | { t: 'evt'; event: StripeEvent };

interface RequestContext {
  requestId: string;
  idempotencyKey: string | null;
  apiVersion: string;
  events: StripeEvent[];
}

interface Route {
  method: 'GET' | 'POST';
  pattern: RegExp;
  handler: (params: Reader, ctx: RequestContext, id: string) => StripeObject;
}

const DEFAULT_API_VERSION: string = Stripe.API_VERSION;

const PI_STATUSES_CANCELABLE = [
  'requires_payment_method',
  'requires_capture',
  'requires_confirmation',
  'requires_action',
  'processing',
];
const PI_STATUSES_CONFIRMABLE = ['requires_confirmation', 'requires_payment_method', 'requires_action'];

const clone = <T>(v: T): T => structuredClone(v);
const stableStringify = (v: unknown): string =>
  JSON.stringify(v, (_k, val: unknown) =>
    val && typeof val === 'object' && !Array.isArray(val)
      ? Object.fromEntries(
          Object.entries(val as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)),
        )
      : val,
  );
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// The simulator

export class StripeSimulator {
  readonly faults = new StripeFaultController();

  private readonly log: Logger;
  private readonly now: () => number;
  private readonly onEvent?: (event: StripeEvent) => void | Promise<void>;
  private readonly asyncRefundDelayMs: number;
  private readonly disputeSettings: DisputeSettings;
  private readonly payoutEveryMs: number;
  private readonly journal?: Journal<JournalRecord>;

  private readonly objects = new Map<string, StripeObject>();
  private readonly sim = new Map<string, SimInfo>();
  private readonly idempotency = new Map<string, IdempotencyRecord>();
  private readonly inFlight = new Set<string>();
  private readonly eventLog: StripeEvent[] = [];
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private counters: StripeSimulatorStats = {
    paymentIntentsCreated: 0,
    confirms: 0,
    captures: 0,
    refunds: 0,
    requests: 0,
  };

  private server?: Server;
  private baseUrl = '';
  private loaded = false;
  private readonly routes: Route[];

  constructor(options: StripeSimulatorOptions = {}) {
    this.log = options.logger ?? createLogger('stripe-simulator');
    this.now = options.now ?? Date.now;
    this.onEvent = options.onEvent;
    this.asyncRefundDelayMs = options.asyncRefundDelayMs ?? 5000;
    this.disputeSettings = {
      createDelayMs: 1000,
      decisionDelayMs: 1000,
      responseWindowSeconds: 7 * 24 * 3600,
    };
    this.configureDisputes(options.disputes);
    this.payoutEveryMs =
      options.payoutEveryMs ?? Number(process.env.PAYSTEP_STRIPE_PAYOUT_EVERY_SECONDS ?? 86_400) * 1000;
    if (options.dataDir) this.journal = new Journal(path.join(options.dataDir, 'processors', 'stripe.jsonl'));
    const PI = 'payment_intents/([^/]+)';
    this.routes = [
      {
        method: 'POST',
        pattern: /^\/v1\/payment_intents$/,
        handler: (p, c) => this.createPaymentIntent(p, c),
      },
      {
        method: 'GET',
        pattern: new RegExp(`^/v1/payment_intents/([^/]+)$`),
        handler: (p, _c, id) => this.retrieve(p, 'payment_intent', id, 'intent', 404),
      },
      {
        method: 'POST',
        pattern: new RegExp(`^/v1/${PI}/confirm$`),
        handler: (p, c, id) => this.confirmPaymentIntent(p, c, id),
      },
      {
        method: 'POST',
        pattern: new RegExp(`^/v1/${PI}/capture$`),
        handler: (p, c, id) => this.capturePaymentIntent(p, c, id),
      },
      {
        method: 'POST',
        pattern: new RegExp(`^/v1/${PI}/cancel$`),
        handler: (p, c, id) => this.cancelPaymentIntent(p, c, id),
      },
      { method: 'POST', pattern: /^\/v1\/refunds$/, handler: (p, c) => this.createRefund(p, c) },
      { method: 'GET', pattern: /^\/v1\/refunds$/, handler: (p) => this.listByPayment(p, 'refund') },
      { method: 'GET', pattern: /^\/v1\/disputes$/, handler: (p) => this.listByPayment(p, 'dispute') },
      { method: 'GET', pattern: /^\/v1\/balance$/, handler: (p) => this.balance(p) },
      {
        method: 'GET',
        pattern: /^\/v1\/refunds\/([^/]+)$/,
        handler: (p, _c, id) => this.retrieve(p, 'refund', id, 'id', 404),
      },
      {
        method: 'GET',
        pattern: /^\/v1\/charges\/([^/]+)$/,
        handler: (p, _c, id) => this.retrieve(p, 'charge', id, 'id', 404),
      },
      {
        method: 'GET',
        pattern: /^\/v1\/payment_methods\/([^/]+)$/,
        handler: (p, _c, id) => this.retrieve(p, 'payment_method', id, 'payment_method', 404),
      },
      {
        method: 'GET',
        pattern: /^\/v1\/balance_transactions\/([^/]+)$/,
        handler: (p, _c, id) => this.retrieve(p, 'balance_transaction', id, 'id', 404),
      },
      {
        method: 'GET',
        pattern: /^\/v1\/disputes\/([^/]+)$/,
        handler: (p, _c, id) => this.retrieve(p, 'dispute', id, 'dispute', 404),
      },
      {
        method: 'POST',
        pattern: /^\/v1\/disputes\/([^/]+)$/,
        handler: (p, c, id) => this.updateDispute(p, c, id),
      },
      {
        method: 'POST',
        pattern: /^\/v1\/disputes\/([^/]+)\/close$/,
        handler: (p, c, id) => this.closeDisputeEndpoint(p, c, id),
      },
      {
        method: 'GET',
        pattern: /^\/v1\/balance_transactions$/,
        handler: (p) => this.listBalanceTransactions(p),
      },
      { method: 'GET', pattern: /^\/v1\/payouts$/, handler: (p) => this.listPayouts(p) },
      {
        method: 'GET',
        pattern: /^\/v1\/payouts\/([^/]+)$/,
        handler: (p, _c, id) => this.retrieve(p, 'payout', id, 'payout', 404),
      },
    ];
  }

  // --- lifecycle -------------------------------------------------------------------------------

  /** Loads the journal (first start only), listens on 127.0.0.1:`port` and returns the base URL. */
  async start(port = 0): Promise<string> {
    if (this.server) return this.baseUrl;
    if (!this.loaded) this.load();
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.log.error({ err }, 'stripe simulator: unhandled error');
        if (!res.headersSent) this.send(res, 500, { error: this.apiError() }, {});
      });
    });
    server.keepAliveTimeout = 5000;
    await listenOn(server, port);
    this.server = server;
    this.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    for (const [id, info] of this.sim) if (info.transition) this.scheduleTransition(id, info.transition.at);
    this.resumeDisputeTimers();
    if (this.payoutEveryMs > 0) {
      const t = setInterval(() => this.createPayout(), this.payoutEveryMs);
      t.unref();
      this.timers.set('automatic-payouts', t);
    }
    this.log.info({ url: this.baseUrl }, 'stripe simulator listening');
    return this.baseUrl;
  }

  /** Stops listening, drops open connections (including requests hung by a timeout fault). */
  async stop(): Promise<void> {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    const server = this.server;
    this.server = undefined;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    }
    this.journal?.close();
  }

  get url(): string {
    return this.baseUrl;
  }

  // --- test accessors --------------------------------------------------------------------------

  stats(): StripeSimulatorStats {
    return { ...this.counters };
  }

  paymentIntent(id: string): StripeObject | undefined {
    return this.get('payment_intent', id);
  }

  charge(id: string): StripeObject | undefined {
    return this.get('charge', id);
  }

  refund(id: string): StripeObject | undefined {
    return this.get('refund', id);
  }

  /** Every object of a kind (payment_intent, refund, …) whose `field` (a dotted path) is `value`. */
  objectsWhere(object: string, field: string, value: unknown): StripeObject[] {
    const at = (o: unknown, path: string[]): unknown =>
      path.reduce<unknown>(
        (v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined),
        o,
      );
    return [...this.objects.values()]
      .filter((o) => o.object === object && at(o, field.split('.')) === value)
      .map((o) => clone(o));
  }

  /** Every event so far, oldest first. */
  events(): StripeEvent[] {
    return clone(this.eventLog);
  }

  /** Charges made with a `pm_card_createDispute*` card: where the dispute issue will create disputes. */
  disputeMarkers(): DisputeMarker[] {
    const out: DisputeMarker[] = [];
    for (const [id, info] of this.sim) {
      const ch = this.objects.get(id);
      if (info.dispute && ch?.object === 'charge') {
        out.push({ charge: id, payment_intent: ch.payment_intent as string, ...info.dispute });
      }
    }
    return out;
  }

  /**
   * Completes the 3-D Secure step of a PaymentIntent in `requires_action`, as the customer would on the
   * page `next_action` points at: `succeed` goes on to the charge, `fail` leaves it in
   * `requires_payment_method` with `payment_intent_authentication_failure`.
   */
  authenticate(paymentIntentId: string, outcome: 'succeed' | 'fail'): StripeObject {
    const ctx = this.internalContext();
    const pi = this.get('payment_intent', paymentIntentId);
    if (!pi) throw new Error(`no such payment_intent: ${paymentIntentId}`);
    if (pi.status !== 'requires_action') throw new Error(`payment_intent ${pi.id} is ${String(pi.status)}`);
    const pm = this.get('payment_method', pi.payment_method as string) as StripeObject;
    if (outcome === 'succeed') {
      this.chargeSucceeded(pi, pm, ctx);
    } else {
      Object.assign(pi, {
        status: 'requires_payment_method',
        next_action: null,
        payment_method: null,
        last_payment_error: {
          type: 'invalid_request_error',
          code: 'payment_intent_authentication_failure',
          doc_url: docUrl('payment_intent_authentication_failure'),
          message:
            'The provided PaymentMethod has failed authentication. You can provide payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent again.',
          payment_method: clone(pm),
        },
      });
      this.save('payment_intent', pi);
      this.emit(ctx, 'payment_intent.payment_failed', pi);
    }
    this.dispatch(ctx.events);
    return clone(pi);
  }

  /** Applies every scheduled asynchronous refund change now (pending → succeeded, succeeded → failed). */
  settleAsyncRefunds(): StripeObject[] {
    const changed: StripeObject[] = [];
    for (const [id, info] of [...this.sim]) {
      if (info.transition) {
        const r = this.applyTransition(id);
        if (r) changed.push(r);
      }
    }
    return changed;
  }

  // --- payouts ---------------------------------------------------------------------------------

  /**
   * Pays out the balance as an automatic payout would: every balance transaction not paid out yet
   * and available (`available_on` passed; with `includePending`, all of them), one payout per
   * currency whose total is positive (a negative balance stays for the next one). Returns them.
   */
  createPayout(opts: { includePending?: boolean; currency?: string } = {}): StripeObject[] {
    const ctx = this.internalContext();
    const now = this.seconds();
    const byCurrency = new Map<string, StripeObject[]>();
    for (const o of this.objects.values()) {
      if (o.object !== 'balance_transaction' || o.type === 'payout' || this.sim.get(o.id)?.payout) continue;
      if (!opts.includePending && (o.available_on as number) > now) continue;
      if (opts.currency && o.currency !== opts.currency) continue;
      const list = byCurrency.get(o.currency as string) ?? [];
      list.push(o);
      byCurrency.set(o.currency as string, list);
    }
    const out: StripeObject[] = [];
    for (const currency of [...byCurrency.keys()].sort()) {
      const txns = byCurrency.get(currency)!;
      const amount = txns.reduce((sum, t) => sum + (t.net as number), 0);
      if (amount <= 0) continue;
      const id = `po_${randomBase62(24)}`;
      const txn: StripeObject = {
        id: `txn_${randomBase62(24)}`,
        object: 'balance_transaction',
        amount: -amount,
        available_on: now,
        balance_type: 'payments',
        created: now,
        currency,
        description: 'STRIPE PAYOUT',
        exchange_rate: null,
        fee: 0,
        fee_details: [],
        net: -amount,
        reporting_category: 'payout',
        source: id,
        status: 'available',
        type: 'payout',
      };
      this.save('balance_transaction', txn, { payout: id });
      const payout: StripeObject = {
        id,
        object: 'payout',
        amount,
        application_fee: null,
        application_fee_amount: null,
        arrival_date: Math.floor(now / 86_400) * 86_400,
        automatic: true,
        balance_transaction: txn.id,
        created: now,
        currency,
        description: 'STRIPE PAYOUT',
        destination: 'ba_simulator',
        failure_balance_transaction: null,
        failure_code: null,
        failure_message: null,
        livemode: false,
        metadata: {},
        method: 'standard',
        original_payout: null,
        payout_method: null,
        reconciliation_status: 'completed',
        reversed_by: null,
        source_type: 'card',
        statement_descriptor: null,
        status: 'paid',
        // The ACH trace number of a paid payout (test mode: a made-up 15-digit number).
        trace_id: { status: 'supported', value: String(10 ** 14 + Math.floor(Math.random() * 9 * 10 ** 14)) },
        type: 'bank_account',
      };
      this.save('payout', payout);
      for (const t of txns) {
        t.status = 'available';
        this.save('balance_transaction', t, { payout: id });
      }
      this.emit(ctx, 'payout.created', payout);
      this.emit(ctx, 'payout.paid', payout);
      out.push(clone(payout));
    }
    this.dispatch(ctx.events);
    return out;
  }

  /** Every payout, newest first. */
  payouts(): StripeObject[] {
    return [...this.objects.values()]
      .filter((o) => o.object === 'payout')
      .reverse()
      .map(clone);
  }

  /** The payout's itemized payout reconciliation report (Stripe's CSV columns, amounts in major units). */
  payoutItemizedCsv(payoutId: string): string {
    const payout = this.get('payout', payoutId);
    if (!payout) throw new Error(`no such payout: ${payoutId}`);
    const utc = (s: unknown) =>
      typeof s === 'number' ? new Date(s * 1000).toISOString().slice(0, 19).replace('T', ' ') : null;
    const rows: StripeItemizedRow[] = [];
    for (const t of this.objects.values()) {
      if (
        t.object !== 'balance_transaction' ||
        t.type === 'payout' ||
        this.sim.get(t.id)?.payout !== payoutId
      )
        continue;
      const source = this.objects.get(t.source as string);
      const charge =
        source?.object === 'charge' ? source : this.objects.get((source?.charge as string | undefined) ?? '');
      const pi = this.objects.get((source?.payment_intent as string | undefined) ?? '');
      const card = (
        charge?.payment_method_details as { card?: { brand?: string; country?: string } } | undefined
      )?.card;
      rows.push({
        automatic_payout_id: payoutId,
        automatic_payout_effective_at: utc(payout.arrival_date),
        balance_transaction_id: t.id,
        created_utc: utc(t.created),
        available_on_utc: utc(t.available_on),
        currency: t.currency as string,
        reporting_category: t.reporting_category as string,
        source_id: (t.source as string | null) ?? null,
        description: (t.description as string | null) ?? null,
        charge_id: charge?.id ?? null,
        payment_intent_id: pi?.id ?? null,
        card_brand: card?.brand ?? null,
        card_country: card?.country ?? null,
        'payment_metadata[merchant_id]':
          (pi?.metadata as Record<string, string> | undefined)?.merchant_id ?? null,
        gross_minor: t.amount as number,
        fee_minor: t.fee as number,
        net_minor: t.net as number,
      });
    }
    return renderStripeItemizedCsv(rows);
  }

  private listOf(
    p: Reader,
    objects: StripeObject[],
    url: string,
    expandable: readonly string[],
  ): StripeObject {
    const expand = p.expand();
    const paths = expand.map((e) => (e.startsWith('data.') ? e.slice(5) : e));
    if (expand.some((e) => !e.startsWith('data.')))
      throw invalid('This property cannot be expanded.', 'expand');
    if (paths.length) this.checkExpand(paths, expandable);
    const limit = p.integer('limit') ?? 10;
    if (limit < 1 || limit > 100) throw invalid('Invalid limit: must be between 1 and 100', 'limit');
    const after = p.string('starting_after');
    const before = p.string('ending_before');
    let list = objects;
    if (after) {
      const i = list.findIndex((o) => o.id === after);
      if (i < 0) throw noSuch('object', after, 'starting_after');
      list = list.slice(i + 1);
    } else if (before) {
      const i = list.findIndex((o) => o.id === before);
      if (i < 0) throw noSuch('object', before, 'ending_before');
      list = list.slice(Math.max(0, i - limit), i);
    }
    return {
      object: 'list',
      data: list.slice(0, limit).map((o) => this.expanded(o, paths)),
      has_more: list.length > limit,
      url,
    } as unknown as StripeObject;
  }

  private createdFilter(p: Reader): (o: StripeObject) => boolean {
    const c = p.object('created');
    const eq = c ? undefined : p.integer('created');
    const bound = (k: string) => (c && typeof c[k] === 'string' ? Number(c[k]) : undefined);
    const [gt, gte, lt, lte] = ['gt', 'gte', 'lt', 'lte'].map(bound);
    return (o) => {
      const t = o.created as number;
      return (
        (eq === undefined || t === eq) &&
        (gt === undefined || t > gt) &&
        (gte === undefined || t >= gte) &&
        (lt === undefined || t < lt) &&
        (lte === undefined || t <= lte)
      );
    };
  }

  /** `GET /v1/refunds` and `GET /v1/disputes`: newest first, by `charge` or `payment_intent`. */
  private listByPayment(p: Reader, kind: 'refund' | 'dispute'): StripeObject {
    p.allow(['limit', 'starting_after', 'ending_before', 'created', 'charge', 'payment_intent', 'expand']);
    const charge = p.string('charge');
    const paymentIntent = p.string('payment_intent');
    const created = this.createdFilter(p);
    const list = [...this.objects.values()]
      .filter(
        (o) =>
          o.object === kind &&
          (!charge || o.charge === charge) &&
          (!paymentIntent || o.payment_intent === paymentIntent) &&
          created(o),
      )
      .reverse();
    return this.listOf(p, list, `/v1/${kind}s`, EXPANDABLE[kind]);
  }

  /**
   * `GET /v1/balance`: per currency, the net of the balance transactions not yet available
   * (`pending`) and of those available and not paid out (`available`; a payout's own transaction
   * takes its funds out).
   */
  private balance(p: Reader): StripeObject {
    p.allow(['expand']);
    p.expand();
    const sums = { available: new Map<string, number>(), pending: new Map<string, number>() };
    for (const o of this.objects.values()) {
      if (o.object !== 'balance_transaction') continue;
      const bucket = o.status === 'pending' ? sums.pending : sums.available;
      const currency = o.currency as string;
      bucket.set(currency, (bucket.get(currency) ?? 0) + (o.net as number));
      // A currency with funds in either bucket is listed in both, as Stripe lists it.
      for (const b of [sums.available, sums.pending]) if (!b.has(currency)) b.set(currency, 0);
    }
    const rows = (m: Map<string, number>) =>
      [...m.keys()].sort().map((currency) => ({
        amount: m.get(currency) as number,
        currency,
        source_types: { card: m.get(currency) as number },
      }));
    // A new account's balance: zero in its default currency.
    if (sums.available.size === 0) for (const b of [sums.available, sums.pending]) b.set('usd', 0);
    return {
      object: 'balance',
      available: rows(sums.available),
      livemode: false,
      pending: rows(sums.pending),
    } as unknown as StripeObject;
  }

  private listPayouts(p: Reader): StripeObject {
    p.allow(['limit', 'starting_after', 'ending_before', 'created', 'status', 'expand', 'arrival_date']);
    const status = p.string('status');
    const created = this.createdFilter(p);
    const list = [...this.objects.values()]
      .filter((o) => o.object === 'payout' && (!status || o.status === status) && created(o))
      .reverse();
    return this.listOf(p, list, '/v1/payouts', EXPANDABLE.payout);
  }

  private listBalanceTransactions(p: Reader): StripeObject {
    p.allow([
      'limit',
      'starting_after',
      'ending_before',
      'created',
      'payout',
      'type',
      'currency',
      'source',
      'expand',
    ]);
    const payout = p.string('payout');
    if (payout) this.mustGet('payout', payout, 'payout', 404);
    const type = p.string('type');
    const currency = p.string('currency');
    const source = p.string('source');
    const created = this.createdFilter(p);
    const list = [...this.objects.values()]
      .filter(
        (o) =>
          o.object === 'balance_transaction' &&
          (!payout || this.sim.get(o.id)?.payout === payout) &&
          (!type || o.type === type) &&
          (!currency || o.currency === currency) &&
          (!source || o.source === source) &&
          created(o),
      )
      .reverse();
    return this.listOf(p, list, '/v1/balance_transactions', EXPANDABLE.balance_transaction);
  }

  // --- HTTP ------------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    const body = await readBody(req);
    if (url.pathname.startsWith('/_sim/')) return this.handleSim(method, url, body, res);

    this.counters.requests++;
    const requestId = `req_${randomBase62(14)}`;
    const apiVersion = header(req, 'stripe-version') ?? DEFAULT_API_VERSION;
    const idempotencyKey = method === 'POST' ? (header(req, 'idempotency-key') ?? null) : null;
    const headers: Record<string, string> = { 'Request-Id': requestId, 'Stripe-Version': apiVersion };
    if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
    const done = (status: number, payload: unknown, extra: Record<string, string> = {}) => {
      this.send(res, status, payload, { ...headers, ...extra });
      this.log.debug(
        { method, path: url.pathname, status, ms: Date.now() - started },
        'stripe simulator request',
      );
    };
    const fail = (e: SimError) =>
      done(e.status, { error: this.withLogUrl(e.body, requestId) }, shouldRetry(e.status, false));

    // Authentication comes first, as on Stripe.
    const apiKey = this.apiKey(req);
    if (apiKey instanceof SimError) return fail(apiKey);

    const match = this.route(method, url.pathname);
    if (!match) {
      return fail(
        new SimError(404, {
          type: 'invalid_request_error',
          message: `Unrecognized request URL (${method}: ${url.pathname}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
        }),
      );
    }

    // Faults answered before the API runs: nothing happens, nothing is stored.
    const { latencyMs, fault } = this.faults.take(`${method} ${url.pathname}`);
    if (fault === 'down') {
      // Unreachable: the connection ends without an answer (the SDK sees a connection error).
      if (latencyMs) await sleep(latencyMs);
      this.log.debug({ method, path: url.pathname }, 'stripe simulator: down fault, dropping the connection');
      req.socket.destroy();
      return;
    }
    if (fault === 'rate_limit' || fault === 'fail') {
      if (latencyMs) await sleep(latencyMs);
      if (fault === 'rate_limit') {
        return fail(
          new SimError(429, {
            type: 'invalid_request_error',
            code: 'rate_limit',
            doc_url: docUrl('rate_limit'),
            message:
              'Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.',
          }),
        );
      }
      // Nothing ran and nothing is stored: a retry may succeed.
      return done(500, { error: this.apiError(requestId) }, shouldRetry(500, false));
    }

    let reader: Reader;
    try {
      const raw = method === 'GET' ? url.search.slice(1) : body;
      reader = new Reader(parseStripeForm(raw));
    } catch {
      return fail(invalid('Invalid request body.'));
    }

    // Idempotency: replay, conflict, or claim the key while the request executes.
    let scope: string | undefined;
    const endpoint = `${method} ${url.pathname}`;
    const paramsHash = sha256(stableStringify(reader.params));
    if (idempotencyKey) {
      if (idempotencyKey.length > 255) {
        return fail(invalid('Idempotency key is too long. It must be at most 255 characters.', undefined));
      }
      scope = `${sha256(apiKey).slice(0, 16)}:${idempotencyKey}`;
      const prior = this.idempotency.get(scope);
      if (prior && this.now() - prior.createdMs > IDEMPOTENCY_TTL_MS) this.idempotency.delete(scope);
      const stored = this.idempotency.get(scope);
      if (this.inFlight.has(scope)) {
        return fail(
          new SimError(409, {
            type: 'idempotency_error',
            code: 'idempotency_key_in_use',
            doc_url: docUrl('idempotency_key_in_use'),
            message: `There is currently another in-progress request using this idempotent key (that probably means you submitted twice, and the other request is still going through): ${idempotencyKey}. Please try again later.`,
          }),
        );
      }
      if (stored) {
        if (stored.endpoint !== endpoint) {
          return fail(
            new SimError(400, {
              type: 'idempotency_error',
              message: `Keys for idempotent requests can only be used for the same endpoint they were first used for ('${stored.endpoint}' vs '${endpoint}'). Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
            }),
          );
        }
        if (stored.paramsHash !== paramsHash) {
          return fail(
            new SimError(400, {
              type: 'idempotency_error',
              message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
            }),
          );
        }
        // A timeout fault leaves a replay unanswered too: the caller still cannot learn the outcome.
        if (fault === 'timeout') return;
        this.send(res, stored.status, stored.body, {
          ...headers,
          ...shouldRetry(stored.status, true),
          'Idempotent-Replayed': 'true',
          'Original-Request': stored.requestId,
        });
        this.log.debug(
          { method, path: url.pathname, status: stored.status, replayed: true },
          'stripe simulator request',
        );
        return;
      }
      this.inFlight.add(scope);
    }

    // Execute. The handler is synchronous: requests cannot interleave inside it.
    let status: number;
    let payload: unknown;
    const ctx: RequestContext = { requestId, idempotencyKey, apiVersion, events: [] };
    let store = false;
    try {
      if (latencyMs) await sleep(latencyMs);
      // An API failure once the request started executing: stored like any executed result.
      if (fault === 'fail_stored') throw new Error('simulated API failure while executing');
      try {
        payload = match.route.handler(reader, ctx, match.id);
        status = 200;
        store = true;
      } catch (err) {
        if (!(err instanceof SimError)) throw err;
        status = err.status;
        payload = { error: this.withLogUrl(err.body, requestId) };
        store = err.stored;
      }
    } catch (err) {
      if (fault !== 'fail_stored')
        this.log.error({ err, method, path: url.pathname }, 'stripe simulator: handler failed');
      status = 500;
      payload = { error: this.apiError(requestId) };
      // Stripe keeps a 500 of an endpoint that had started executing, and replays it for the key.
      store = true;
    } finally {
      if (scope) this.inFlight.delete(scope);
    }
    const text = JSON.stringify(payload, null, 2);
    if (scope && store) {
      const rec: IdempotencyRecord = {
        endpoint,
        paramsHash,
        status,
        body: text,
        requestId,
        createdMs: this.now(),
      };
      this.idempotency.set(scope, rec);
      this.append({ t: 'idem', scope, rec });
    }
    this.dispatch(ctx.events);

    if (fault === 'timeout') {
      // The effect happened and is stored; the caller never hears about it.
      this.log.debug({ method, path: url.pathname }, 'stripe simulator: timeout fault, not answering');
      return;
    }
    this.send(res, status, text, {
      ...headers,
      ...shouldRetry(status, true),
      ...(idempotencyKey ? { 'Original-Request': requestId } : {}),
    });
    this.log.debug(
      { method, path: url.pathname, status, ms: Date.now() - started },
      'stripe simulator request',
    );
  }

  private handleSim(method: string, url: URL, body: string, res: ServerResponse): void {
    const json = (status: number, payload: unknown) => this.send(res, status, payload, {});
    const parseBody = (): Record<string, unknown> => {
      if (!body.trim()) return Object.fromEntries(url.searchParams);
      if (body.trim().startsWith('{')) return JSON.parse(body) as Record<string, unknown>;
      return Object.fromEntries(new URLSearchParams(body));
    };
    try {
      const p = url.pathname;
      if (p === '/_sim/faults') {
        if (method === 'GET') return json(200, this.faults.get());
        if (method === 'DELETE') {
          this.faults.reset();
          return json(200, this.faults.get());
        }
        if (method === 'POST') {
          const b = parseBody();
          const f: Record<string, unknown> = {};
          for (const [k, v] of Object.entries(b))
            f[k] = k === 'match' || typeof v !== 'string' ? v : Number(v);
          return json(200, this.faults.set(f as StripeFaults));
        }
      }
      if (p === '/_sim/stats' && method === 'GET') return json(200, this.stats());
      if (p === '/_sim/payouts/run' && method === 'POST') {
        const b = parseBody();
        const includePending = b.include_pending === true || b.include_pending === 'true';
        const currency = typeof b.currency === 'string' ? b.currency : undefined;
        return json(200, { payouts: this.createPayout({ includePending, currency }) });
      }
      const itemized = /^\/_sim\/payouts\/([^/]+)\/itemized\.csv$/.exec(p);
      if (itemized && method === 'GET') {
        const csv = this.payoutItemizedCsv(itemized[1] as string);
        res.writeHead(200, { 'Content-Type': 'text/csv; charset=utf-8' }).end(csv);
        return;
      }
      if (p === '/_sim/refunds/settle' && method === 'POST')
        return json(200, { refunds: this.settleAsyncRefunds() });
      const disputeClose = /^\/_sim\/disputes\/([^/]+)\/close$/.exec(p);
      if (disputeClose && method === 'POST') {
        const outcome = parseBody().outcome === 'lost' ? 'lost' : 'won';
        return json(200, this.closeDispute(disputeClose[1] as string, outcome));
      }
      const auth = /^\/_sim\/payment_intents\/([^/]+)\/authenticate$/.exec(p);
      if (auth && method === 'POST') {
        const b = parseBody();
        const outcome = b.outcome === 'fail' ? 'fail' : 'succeed';
        const pi = this.authenticate(auth[1] as string, outcome);
        const returnUrl = this.sim.get(pi.id)?.returnUrl;
        if (b.redirect && returnUrl) {
          const target = new URL(returnUrl);
          target.searchParams.set('payment_intent', pi.id);
          target.searchParams.set('payment_intent_client_secret', String(pi.client_secret));
          target.searchParams.set('redirect_status', outcome === 'succeed' ? 'succeeded' : 'failed');
          res.writeHead(303, { Location: target.toString() }).end();
          return;
        }
        return json(200, pi);
      }
      const page = /^\/_sim\/3ds\/([^/]+)$/.exec(p);
      if (page && method === 'GET') {
        const id = page[1] as string;
        const pi = this.get('payment_intent', id);
        if (!pi) return json(404, { error: 'no such payment_intent' });
        const action = `/_sim/payment_intents/${encodeURIComponent(id)}/authenticate`;
        const html =
          `<!doctype html><meta charset="utf-8"><title>3-D Secure (simulated)</title>` +
          `<h1>3-D Secure authentication (Stripe simulator)</h1>` +
          `<p>PaymentIntent <code>${escapeHtml(id)}</code>: ${escapeHtml(formatMoney(pi.amount as number, pi.currency as string))}</p>` +
          `<form method="post" action="${action}"><input type="hidden" name="outcome" value="succeed"><input type="hidden" name="redirect" value="1"><button>Complete authentication</button></form>` +
          `<form method="post" action="${action}"><input type="hidden" name="outcome" value="fail"><input type="hidden" name="redirect" value="1"><button>Fail authentication</button></form>`;
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(html);
        return;
      }
      return json(404, { error: `unknown simulator route ${method} ${p}` });
    } catch (err) {
      return json(400, { error: (err as Error).message });
    }
  }

  private route(method: string, pathname: string): { route: Route; id: string } | undefined {
    for (const route of this.routes) {
      if (route.method !== method) continue;
      const m = route.pattern.exec(pathname);
      if (m) return { route, id: decodeURIComponent(m[1] ?? '') };
    }
    return undefined;
  }

  private apiKey(req: IncomingMessage): string | SimError {
    const auth = header(req, 'authorization');
    let key: string | undefined;
    if (auth?.startsWith('Bearer ')) key = auth.slice(7).trim();
    else if (auth?.startsWith('Basic '))
      key = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':')[0];
    if (!key) {
      return new SimError(401, {
        type: 'invalid_request_error',
        message:
          "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
      });
    }
    if (!/^(sk|rk)_test_[A-Za-z0-9_]+$/.test(key)) {
      const masked = `${key.slice(0, 8)}${'*'.repeat(Math.max(0, key.length - 12))}${key.slice(-4)}`;
      return new SimError(401, {
        type: 'invalid_request_error',
        message: `Invalid API Key provided: ${masked} (the Stripe simulator accepts test mode keys only: sk_test_…)`,
      });
    }
    return key;
  }

  private send(res: ServerResponse, status: number, payload: unknown, headers: Record<string, string>): void {
    const text = typeof payload === 'string' ? payload : JSON.stringify(payload, null, 2);
    res.writeHead(status, {
      'Content-Type': 'application/json',
      'Content-Length': String(Buffer.byteLength(text)),
      ...headers,
    });
    res.end(text);
  }

  private apiError(requestId?: string): StripeErrorBody {
    return this.withLogUrl(
      {
        type: 'api_error',
        message:
          "Sorry, something went wrong. We've already been notified of the problem, but if you need any help, you can reach us at https://support.stripe.com/contact.",
      },
      requestId,
    );
  }

  private withLogUrl(body: StripeErrorBody, requestId?: string): StripeErrorBody {
    return requestId
      ? { ...body, request_log_url: `https://dashboard.stripe.com/test/logs/${requestId}` }
      : body;
  }

  // --- endpoints -------------------------------------------------------------------------------

  private createPaymentIntent(p: Reader, ctx: RequestContext): StripeObject {
    p.allow([
      'amount',
      'currency',
      'confirm',
      'payment_method',
      'payment_method_types',
      'allowed_payment_method_types',
      'excluded_payment_method_types',
      'automatic_payment_methods',
      'capture_method',
      'customer',
      'description',
      'metadata',
      'return_url',
      'off_session',
      'error_on_requires_action',
      'expand',
      // accepted and ignored: they do not change what the simulator models
      'receipt_email',
      'statement_descriptor',
      'statement_descriptor_suffix',
      'setup_future_usage',
      'shipping',
      'payment_method_options',
      'transfer_group',
      'confirmation_method',
      'use_stripe_sdk',
      'radar_options',
    ]);
    const amount = p.positiveInteger('amount');
    if (amount === undefined) throw invalid('Missing required param: amount.', 'amount', 'parameter_missing');
    const currencyRaw = p.string('currency');
    if (!currencyRaw) throw invalid('Missing required param: currency.', 'currency', 'parameter_missing');
    const currency = currencyRaw.toLowerCase();
    if (!CURRENCIES.has(currency)) {
      throw invalid(
        `Invalid currency: ${currencyRaw}. Stripe currently supports these currencies: ${[...CURRENCIES].join(', ')}`,
        'currency',
      );
    }
    this.checkAmount(amount, currency, 'amount');
    const captureMethod =
      p.oneOf('capture_method', ['automatic', 'automatic_async', 'manual']) ?? 'automatic_async';
    const confirm = p.boolean('confirm') ?? false;
    const description = p.string('description') ?? null;
    const metadata = p.metadata() ?? {};
    const customer = p.string('customer') || null;
    const returnUrl = p.string('return_url');
    const offSession = p.boolean('off_session') ?? false;
    const errorOnRequiresAction = p.boolean('error_on_requires_action') ?? false;
    const expand = p.expand();

    const types = this.paymentMethodTypes(p);
    const apm = p.object('automatic_payment_methods');
    if (types && apm) {
      throw invalid(
        `You may only specify one of these parameters: automatic_payment_methods, ${types.param}.`,
        'automatic_payment_methods',
        'parameters_exclusive',
      );
    }
    let automatic: { enabled: boolean; allow_redirects: string } | null = null;
    if (apm) {
      const r = new Reader(apm);
      for (const k of Object.keys(apm)) {
        if (k !== 'enabled' && k !== 'allow_redirects') {
          throw invalid(
            `Received unknown parameter: automatic_payment_methods[${k}]`,
            `automatic_payment_methods[${k}]`,
            'parameter_unknown',
          );
        }
      }
      automatic = {
        enabled: r.boolean('enabled') ?? false,
        allow_redirects: r.oneOf('allow_redirects', ['always', 'never']) ?? 'always',
      };
    } else if (!types) {
      automatic = { enabled: true, allow_redirects: 'always' };
    }
    if (!types && automatic && !automatic.enabled) {
      throw invalid(
        'Missing required param: allowed_payment_method_types.',
        'allowed_payment_method_types',
        'parameter_missing',
      );
    }
    if (confirm) this.checkConfirmable(automatic, returnUrl);
    if (expand.length) this.checkExpand(expand, ['latest_charge', 'payment_method']);
    const pm = this.resolvePaymentMethod(p.string('payment_method'));
    if (confirm && !pm) {
      throw invalid(
        "You cannot confirm this PaymentIntent because it's missing a payment method. Update the payment method and then confirm it again.",
        'payment_method',
        'payment_intent_unexpected_state',
      );
    }

    // Validation done: from here the endpoint executes and its result is stored.
    const id = `pi_${randomBase62(24)}`;
    const pi: StripeObject = {
      id,
      object: 'payment_intent',
      allowed_payment_method_types: types?.param === 'allowed_payment_method_types' ? types.list : null,
      amount,
      amount_capturable: 0,
      amount_details: { tip: {} },
      amount_received: 0,
      application: null,
      application_fee_amount: null,
      automatic_payment_methods: automatic,
      canceled_at: null,
      cancellation_reason: null,
      capture_method: captureMethod,
      client_secret: `${id}_secret_${randomBase62(25)}`,
      confirmation_method: 'automatic',
      created: this.seconds(),
      currency,
      customer,
      customer_account: null,
      description,
      excluded_payment_method_types: null,
      last_payment_error: null,
      latest_charge: null,
      livemode: false,
      managed_payments: null,
      metadata,
      next_action: null,
      on_behalf_of: null,
      payment_method: pm ? this.materialize(pm).id : null,
      payment_method_configuration_details: null,
      payment_method_options: {
        card: {
          installments: null,
          mandate_options: null,
          network: null,
          request_three_d_secure: 'automatic',
        },
      },
      payment_method_types: ['card'],
      payment_record: null,
      processing: null,
      receipt_email: null,
      review: null,
      setup_future_usage: null,
      shipping: null,
      source: null,
      statement_descriptor: null,
      statement_descriptor_suffix: null,
      status: pm ? 'requires_confirmation' : 'requires_payment_method',
      transfer_data: null,
      transfer_group: null,
    };
    this.counters.paymentIntentsCreated++;
    this.save('payment_intent', pi);
    this.emit(ctx, 'payment_intent.created', pi);
    if (confirm) this.runConfirmation(pi, ctx, { returnUrl, offSession, errorOnRequiresAction });
    return this.expanded(pi, expand);
  }

  private confirmPaymentIntent(p: Reader, ctx: RequestContext, id: string): StripeObject {
    p.allow([
      'payment_method',
      'payment_method_types',
      'allowed_payment_method_types',
      'excluded_payment_method_types',
      'capture_method',
      'return_url',
      'off_session',
      'error_on_requires_action',
      'expand',
      'receipt_email',
      'setup_future_usage',
      'shipping',
      'payment_method_options',
      'use_stripe_sdk',
      'radar_options',
    ]);
    const pi = this.mustGet('payment_intent', id, 'intent', 404);
    const returnUrl = p.string('return_url');
    const offSession = p.boolean('off_session') ?? false;
    const errorOnRequiresAction = p.boolean('error_on_requires_action') ?? false;
    const captureMethod = p.oneOf('capture_method', ['automatic', 'automatic_async', 'manual']);
    const types = this.paymentMethodTypes(p);
    const expand = p.expand();
    if (expand.length) this.checkExpand(expand, ['latest_charge', 'payment_method']);
    const pm = this.resolvePaymentMethod(p.string('payment_method'));
    if (!PI_STATUSES_CONFIRMABLE.includes(pi.status as string)) {
      throw refused(
        `You cannot confirm this PaymentIntent because it has a status of ${String(pi.status)}. Only a PaymentIntent with one of the following statuses may be confirmed: ${PI_STATUSES_CONFIRMABLE.join(', ')}.`,
        undefined,
        'payment_intent_unexpected_state',
      );
    }
    if (!pm && !pi.payment_method) {
      throw invalid(
        "You cannot confirm this PaymentIntent because it's missing a payment method. Update the payment method and then confirm it again.",
        'payment_method',
        'payment_intent_unexpected_state',
      );
    }
    if (!types)
      this.checkConfirmable(
        pi.automatic_payment_methods as { enabled: boolean; allow_redirects: string } | null,
        returnUrl,
      );
    if (pm) pi.payment_method = this.materialize(pm).id;
    if (captureMethod) pi.capture_method = captureMethod;
    if (types?.param === 'allowed_payment_method_types') pi.allowed_payment_method_types = types.list;
    if (pi.status === 'requires_action') {
      // Confirming again while authentication is pending changes nothing.
      this.save('payment_intent', pi);
      return this.expanded(pi, expand);
    }
    this.runConfirmation(pi, ctx, { returnUrl, offSession, errorOnRequiresAction });
    return this.expanded(pi, expand);
  }

  private capturePaymentIntent(p: Reader, ctx: RequestContext, id: string): StripeObject {
    p.allow([
      'amount_to_capture',
      'expand',
      'metadata',
      'final_capture',
      'statement_descriptor',
      'statement_descriptor_suffix',
      'application_fee_amount',
    ]);
    const pi = this.mustGet('payment_intent', id, 'intent', 404);
    const requested = p.positiveInteger('amount_to_capture');
    const metadata = p.metadata();
    const expand = p.expand();
    if (expand.length) this.checkExpand(expand, ['latest_charge', 'payment_method']);
    if (pi.status !== 'requires_capture') {
      throw refused(
        `This PaymentIntent could not be captured because it has a status of ${String(pi.status)}. Only a PaymentIntent with one of the following statuses may be captured: requires_capture.`,
        undefined,
        'payment_intent_unexpected_state',
      );
    }
    const capturable = pi.amount_capturable as number;
    const amount = requested ?? capturable;
    if (amount > capturable) {
      throw refused(
        `The amount to capture (${formatMoney(amount, pi.currency as string)}) must be less than or equal to the amount capturable (${formatMoney(capturable, pi.currency as string)}).`,
        'amount_to_capture',
        'amount_too_large',
      );
    }
    const ch = this.get('charge', pi.latest_charge as string) as StripeObject;
    const txn = this.balanceTransaction(
      ch.id,
      'charge',
      amount,
      pi.currency as string,
      pi.description as string | null,
    );
    Object.assign(ch, { captured: true, amount_captured: amount, balance_transaction: txn.id });
    Object.assign(pi, {
      status: 'succeeded',
      amount_received: amount,
      amount_capturable: 0,
      ...(metadata ? { metadata: { ...(pi.metadata as object), ...metadata } } : {}),
    });
    this.counters.captures++;
    this.save('charge', ch);
    this.save('payment_intent', pi);
    this.scheduleDisputeCreation(ch);
    this.emit(ctx, 'charge.captured', ch);
    this.emit(ctx, 'payment_intent.succeeded', pi);
    return this.expanded(pi, expand);
  }

  private cancelPaymentIntent(p: Reader, ctx: RequestContext, id: string): StripeObject {
    p.allow(['cancellation_reason', 'expand']);
    const pi = this.mustGet('payment_intent', id, 'intent', 404);
    const reason = p.oneOf('cancellation_reason', [
      'duplicate',
      'fraudulent',
      'requested_by_customer',
      'abandoned',
    ]);
    const expand = p.expand();
    if (expand.length) this.checkExpand(expand, ['latest_charge', 'payment_method']);
    if (!PI_STATUSES_CANCELABLE.includes(pi.status as string)) {
      throw refused(
        `You cannot cancel this PaymentIntent because it has a status of ${String(pi.status)}. Only a PaymentIntent with one of the following statuses may be canceled: ${PI_STATUSES_CANCELABLE.join(', ')}.`,
        undefined,
        'payment_intent_unexpected_state',
      );
    }
    if (pi.status === 'requires_capture') {
      // The authorization is released: the uncaptured charge is refunded in full.
      const ch = this.get('charge', pi.latest_charge as string) as StripeObject;
      Object.assign(ch, { amount_refunded: ch.amount, refunded: true });
      this.save('charge', ch);
    }
    Object.assign(pi, {
      status: 'canceled',
      canceled_at: this.seconds(),
      cancellation_reason: reason ?? null,
      amount_capturable: 0,
      next_action: null,
    });
    this.save('payment_intent', pi);
    this.emit(ctx, 'payment_intent.canceled', pi);
    return this.expanded(pi, expand);
  }

  private createRefund(p: Reader, ctx: RequestContext): StripeObject {
    p.allow([
      'payment_intent',
      'charge',
      'amount',
      'reason',
      'metadata',
      'expand',
      'instructions_email',
      'refund_application_fee',
      'reverse_transfer',
    ]);
    const piId = p.string('payment_intent');
    const chId = p.string('charge');
    const requested = p.positiveInteger('amount');
    const reason = p.oneOf('reason', ['duplicate', 'fraudulent', 'requested_by_customer']);
    const metadata = p.metadata() ?? {};
    const expand = p.expand();
    if (expand.length) this.checkExpand(expand, ['charge', 'payment_intent', 'balance_transaction']);
    if (piId && chId)
      throw invalid('You may only specify one of these parameters: charge, payment_intent.', 'charge');
    if (!piId && !chId) {
      throw invalid(
        'One of the following params should be provided for this request: payment_intent or charge.',
        undefined,
        'parameter_missing',
      );
    }
    let ch: StripeObject | undefined;
    let pi: StripeObject | undefined;
    if (piId) {
      pi = this.get('payment_intent', piId);
      if (!pi) throw noSuch('payment_intent', piId, 'payment_intent');
      ch = pi.latest_charge ? this.get('charge', pi.latest_charge as string) : undefined;
      if (!ch || ch.status !== 'succeeded') {
        throw refused('This PaymentIntent does not have a successful charge to refund.', 'payment_intent');
      }
    } else {
      ch = this.get('charge', chId as string);
      if (!ch) throw noSuch('charge', chId as string, 'charge');
      pi = ch.payment_intent ? this.get('payment_intent', ch.payment_intent as string) : undefined;
      if (ch.status !== 'succeeded')
        throw refused(`Charge ${ch.id} has not succeeded; it cannot be refunded.`, 'charge');
    }
    const currency = ch.currency as string;
    if (ch.refunded)
      throw refused(`Charge ${ch.id} has already been refunded.`, undefined, 'charge_already_refunded');
    if (!ch.captured) {
      throw refused(
        `Charge ${ch.id} has not been captured, so it cannot be refunded. Cancel the PaymentIntent instead to release the authorization.`,
      );
    }
    const remaining = (ch.amount_captured as number) - (ch.amount_refunded as number);
    const amount = requested ?? remaining;
    if (amount > remaining) {
      throw refused(
        `Refund amount (${formatMoney(amount, currency)}) is greater than unrefunded amount on charge (${formatMoney(remaining, currency)})`,
        'amount',
      );
    }
    const info = this.sim.get(ch.id) ?? {};
    const behavior = info.testCard ? TEST_PAYMENT_METHODS[info.testCard]?.behavior : undefined;
    const asyncKind = behavior?.kind === 'succeed' ? behavior.refund : undefined;
    const id = `re_${randomBase62(24)}`;
    const txn = this.balanceTransaction(id, 'refund', -amount, currency, null);
    const refund: StripeObject = {
      id,
      object: 'refund',
      amount,
      balance_transaction: txn.id,
      charge: ch.id,
      created: this.seconds(),
      currency,
      customer: null,
      customer_account: null,
      destination_details: {
        card: { reference_status: 'pending', reference_type: 'acquirer_reference_number', type: 'refund' },
        type: 'card',
      },
      metadata,
      payment_intent: pi?.id ?? null,
      payment_method: ch.payment_method,
      ...(asyncKind === 'pending' ? { pending_reason: 'processing' } : {}),
      reason: reason ?? null,
      receipt_number: null,
      source_transfer_reversal: null,
      status: asyncKind === 'pending' ? 'pending' : 'succeeded',
      transfer_reversal: null,
    };
    const refunded = (ch.amount_refunded as number) + amount;
    Object.assign(ch, { amount_refunded: refunded, refunded: refunded >= (ch.amount_captured as number) });
    this.counters.refunds++;
    const sim: SimInfo = asyncKind
      ? {
          transition: {
            to: asyncKind === 'pending' ? 'succeeded' : 'failed',
            at: this.now() + this.asyncRefundDelayMs,
          },
        }
      : {};
    this.save('refund', refund, sim);
    this.save('charge', ch);
    this.emit(ctx, 'refund.created', refund);
    this.emit(ctx, 'charge.refunded', ch);
    if (sim.transition) this.scheduleTransition(id, sim.transition.at);
    return this.expanded(refund, expand);
  }

  private retrieve(p: Reader, kind: Kind, id: string, param: string, status: number): StripeObject {
    p.allow(['expand']);
    const expand = p.expand();
    const obj = this.mustGet(kind, id, param, status);
    if (expand.length) this.checkExpand(expand, EXPANDABLE[kind]);
    return this.expanded(obj, expand);
  }

  // --- payment flow ----------------------------------------------------------------------------

  private runConfirmation(
    pi: StripeObject,
    ctx: RequestContext,
    opts: { returnUrl?: string; offSession: boolean; errorOnRequiresAction: boolean },
  ): void {
    this.counters.confirms++;
    const pm = this.get('payment_method', pi.payment_method as string) as StripeObject;
    const testCard = this.sim.get(pm.id)?.testCard;
    const behavior: Behavior = (testCard && TEST_PAYMENT_METHODS[testCard]?.behavior) || { kind: 'succeed' };
    if (opts.returnUrl) this.sim.set(pi.id, { ...this.sim.get(pi.id), returnUrl: opts.returnUrl });

    if (behavior.kind === 'authenticate') {
      if (opts.offSession) {
        this.chargeFailed(pi, pm, ctx, {
          code: 'authentication_required',
          decline_code: 'authentication_required',
          message: 'Your card was declined. This transaction requires authentication.',
          advice_code: 'try_again_later',
        });
      }
      if (opts.errorOnRequiresAction) {
        this.paymentFailed(pi, pm, ctx, {
          code: 'authentication_required',
          decline_code: 'authentication_not_handled',
          message:
            "This payment required an authentication action to complete, but `error_on_requires_action` was set. When you're ready, you can upgrade your integration to handle actions at https://stripe.com/docs/payments/payment-intents/upgrade-to-handle-actions.",
        });
      }
      const pageUrl = `${this.baseUrl}/_sim/3ds/${pi.id}`;
      pi.status = 'requires_action';
      pi.next_action = opts.returnUrl
        ? { type: 'redirect_to_url', redirect_to_url: { return_url: opts.returnUrl, url: pageUrl } }
        : {
            type: 'use_stripe_sdk',
            use_stripe_sdk: {
              type: 'three_d_secure_redirect',
              stripe_js: pageUrl,
              source: `src_${randomBase62(24)}`,
            },
          };
      pi.last_payment_error = null;
      this.save('payment_intent', pi);
      this.emit(ctx, 'payment_intent.requires_action', pi);
      return;
    }
    if (behavior.kind === 'decline') this.chargeFailed(pi, pm, ctx, behavior.decline);
    this.chargeSucceeded(pi, pm, ctx);
  }

  private chargeSucceeded(pi: StripeObject, pm: StripeObject, ctx: RequestContext): void {
    const testCard = this.sim.get(pm.id)?.testCard;
    const behavior = testCard ? TEST_PAYMENT_METHODS[testCard]?.behavior : undefined;
    const succeed = behavior?.kind === 'succeed' ? behavior : undefined;
    const captured = pi.capture_method !== 'manual';
    const amount = pi.amount as number;
    const currency = pi.currency as string;
    const ch = this.newCharge(pi, pm, {
      status: 'succeeded',
      paid: true,
      captured,
      amount_captured: captured ? amount : 0,
      outcome: {
        advice_code: null,
        network_advice_code: null,
        network_decline_code: null,
        network_status: 'approved_by_network',
        reason: null,
        risk_level: succeed?.risk ?? 'normal',
        risk_score: succeed?.risk === 'elevated' ? 70 : 20,
        seller_message: 'Payment complete.',
        type: 'authorized',
      },
      captureBefore: captured ? undefined : this.seconds() + AUTHORIZATION_WINDOW_SECONDS,
    });
    if (captured) {
      const txn = this.balanceTransaction(ch.id, 'charge', amount, currency, pi.description as string | null);
      ch.balance_transaction = txn.id;
    }
    this.save('charge', ch, {
      testCard,
      ...(succeed?.dispute ? { dispute: succeed.dispute } : {}),
    });
    if (captured) this.scheduleDisputeCreation(ch);
    Object.assign(pi, {
      status: captured ? 'succeeded' : 'requires_capture',
      amount_received: captured ? amount : 0,
      amount_capturable: captured ? 0 : amount,
      latest_charge: ch.id,
      last_payment_error: null,
      next_action: null,
    });
    this.save('payment_intent', pi);
    this.emit(ctx, 'charge.succeeded', ch);
    this.emit(ctx, captured ? 'payment_intent.succeeded' : 'payment_intent.amount_capturable_updated', pi);
  }

  /** An issuer decline or a Radar block: a failed charge, then 402 with the PaymentIntent. */
  private chargeFailed(pi: StripeObject, pm: StripeObject, ctx: RequestContext, d: Decline): never {
    const blocked = d.blocked === true;
    const ch = this.newCharge(pi, pm, {
      status: 'failed',
      paid: false,
      captured: false,
      amount_captured: 0,
      failure_code: d.code,
      failure_message: d.message,
      outcome: {
        advice_code: d.advice_code ?? null,
        network_advice_code: null,
        network_decline_code: blocked ? null : (d.network_decline_code ?? null),
        network_status: blocked ? 'not_sent_to_network' : 'declined_by_network',
        reason: blocked ? 'highest_risk_level' : d.decline_code,
        risk_level: blocked ? 'highest' : 'normal',
        risk_score: blocked ? 95 : 20,
        seller_message: blocked
          ? 'Stripe blocked this payment as too risky.'
          : d.decline_code === 'generic_decline'
            ? 'The bank did not return any further details with this decline.'
            : `The bank returned the decline code \`${d.decline_code}\`.`,
        type: blocked ? 'blocked' : 'issuer_declined',
      },
    });
    this.save('charge', ch, { testCard: this.sim.get(pm.id)?.testCard });
    pi.latest_charge = ch.id;
    this.emit(ctx, 'charge.failed', ch);
    this.paymentFailed(pi, pm, ctx, d, ch.id);
  }

  private paymentFailed(
    pi: StripeObject,
    pm: StripeObject,
    ctx: RequestContext,
    d: Decline,
    chargeId?: string,
  ): never {
    const error: StripeErrorBody = {
      type: 'card_error',
      code: d.code,
      decline_code: d.decline_code,
      doc_url: docUrl(d.code),
      message: d.message,
      ...(d.advice_code ? { advice_code: d.advice_code } : {}),
      ...(d.network_decline_code ? { network_decline_code: d.network_decline_code } : {}),
      ...(d.param ? { param: d.param } : {}),
      ...(chargeId ? { charge: chargeId } : {}),
      payment_method: clone(pm),
    };
    Object.assign(pi, {
      status: 'requires_payment_method',
      payment_method: null,
      next_action: null,
      last_payment_error: clone(error),
    });
    this.save('payment_intent', pi);
    this.emit(ctx, 'payment_intent.payment_failed', pi);
    throw new SimError(402, { ...error, payment_intent: clone(pi) }, true);
  }

  private newCharge(
    pi: StripeObject,
    pm: StripeObject,
    o: {
      status: string;
      paid: boolean;
      captured: boolean;
      amount_captured: number;
      outcome: Record<string, unknown>;
      failure_code?: string;
      failure_message?: string;
      captureBefore?: number;
    },
  ): StripeObject {
    const card = pm.card as Record<string, unknown>;
    return {
      id: `ch_${randomBase62(24)}`,
      object: 'charge',
      amount: pi.amount,
      amount_captured: o.amount_captured,
      amount_refunded: 0,
      application: null,
      application_fee: null,
      application_fee_amount: null,
      balance_transaction: null,
      billing_details: clone(pm.billing_details),
      calculated_statement_descriptor: 'PAYSTEP',
      captured: o.captured,
      created: this.seconds(),
      currency: pi.currency,
      customer: pi.customer,
      description: pi.description,
      disputed: false,
      failure_balance_transaction: null,
      failure_code: o.failure_code ?? null,
      failure_message: o.failure_message ?? null,
      fraud_details: {},
      livemode: false,
      metadata: clone(pi.metadata),
      on_behalf_of: null,
      outcome: o.outcome,
      paid: o.paid,
      payment_intent: pi.id,
      payment_method: pm.id,
      payment_method_details: {
        card: {
          amount_authorized: o.paid ? pi.amount : null,
          authorization_code: o.paid ? String(100000 + Math.floor(Math.random() * 900000)) : null,
          brand: card.brand,
          ...(o.captureBefore ? { capture_before: o.captureBefore } : {}),
          checks: {
            address_line1_check: null,
            address_postal_code_check: null,
            cvc_check: o.failure_code === 'incorrect_cvc' ? 'fail' : 'pass',
          },
          country: card.country,
          electronic_commerce_indicator: null,
          exp_month: card.exp_month,
          exp_year: card.exp_year,
          extended_authorization: { status: 'disabled' },
          fingerprint: card.fingerprint,
          funding: card.funding,
          incremental_authorization: { status: 'unavailable' },
          installments: null,
          last4: card.last4,
          mandate: null,
          multicapture: { status: 'unavailable' },
          network: card.brand,
          network_token: { used: false },
          network_transaction_id: o.paid ? randomBase62(15) : null,
          overcapture: { maximum_amount_capturable: pi.amount, status: 'unavailable' },
          regulated_status: 'unregulated',
          three_d_secure: null,
          transaction_link_id: null,
          wallet: null,
        },
        type: 'card',
      },
      receipt_email: null,
      receipt_number: null,
      receipt_url: null,
      refunded: false,
      review: null,
      shipping: null,
      source: null,
      source_transfer: null,
      statement_descriptor: null,
      statement_descriptor_suffix: null,
      status: o.status,
      transfer_data: null,
      transfer_group: null,
    };
  }

  private balanceTransaction(
    source: string,
    type: 'charge' | 'refund' | 'refund_failure',
    amount: number,
    currency: string,
    description: string | null,
  ): StripeObject {
    // Fees approximate Stripe's standard card pricing: 2.9% + 30 minor units (charges only).
    const fee = type === 'charge' ? Math.round(amount * 0.029) + (ZERO_DECIMAL.has(currency) ? 0 : 30) : 0;
    const created = this.seconds();
    const txn: StripeObject = {
      id: `txn_${randomBase62(24)}`,
      object: 'balance_transaction',
      amount,
      available_on: created + 2 * 24 * 3600,
      balance_type: 'payments',
      created,
      currency,
      description,
      exchange_rate: null,
      fee,
      fee_details: fee
        ? [
            {
              amount: fee,
              application: null,
              currency,
              description: 'Stripe processing fees',
              type: 'stripe_fee',
            },
          ]
        : [],
      net: amount - fee,
      reporting_category: type === 'refund_failure' ? 'refund_failure' : type,
      source,
      status: 'pending',
      type,
    };
    this.save('balance_transaction', txn);
    return txn;
  }

  // --- asynchronous refunds --------------------------------------------------------------------

  private scheduleTransition(id: string, at: number): void {
    const existing = this.timers.get(id);
    if (existing) clearTimeout(existing);
    if (!this.server) return;
    const t = setTimeout(
      () => {
        this.timers.delete(id);
        this.applyTransition(id);
      },
      Math.max(0, at - this.now()),
    );
    t.unref();
    this.timers.set(id, t);
  }

  private applyTransition(id: string): StripeObject | undefined {
    const info = this.sim.get(id);
    const refund = this.get('refund', id);
    const timer = this.timers.get(id);
    if (timer) clearTimeout(timer);
    this.timers.delete(id);
    if (!info?.transition || !refund) return undefined;
    const ctx = this.internalContext();
    const ch = this.get('charge', refund.charge as string) as StripeObject;
    if (info.transition.to === 'succeeded') {
      refund.status = 'succeeded';
      delete refund.pending_reason;
    } else {
      const amount = refund.amount as number;
      const txn = this.balanceTransaction(id, 'refund_failure', amount, refund.currency as string, null);
      Object.assign(refund, {
        status: 'failed',
        failure_reason: 'expired_or_canceled_card',
        failure_balance_transaction: txn.id,
      });
      const refunded = Math.max(0, (ch.amount_refunded as number) - amount);
      Object.assign(ch, { amount_refunded: refunded, refunded: false });
      this.save('charge', ch);
    }
    this.save('refund', refund, {});
    this.emit(ctx, 'refund.updated', refund);
    this.emit(ctx, 'charge.refund.updated', refund);
    if (refund.status === 'failed') this.emit(ctx, 'refund.failed', refund);
    this.dispatch(ctx.events);
    return clone(refund);
  }

  // --- disputes --------------------------------------------------------------------------------
  //
  // A `pm_card_createDispute*` charge is disputed `createDelayMs` after it is captured: a chargeback
  // (`needs_response`, funds withdrawn with a 15.00 dispute fee: `charge.dispute.created` +
  // `charge.dispute.funds_withdrawn`) or, for `pm_card_createDisputeInquiry`, an inquiry
  // (`warning_needs_response`, nothing withdrawn). Evidence submitted with one of Stripe's test strings
  // in `uncategorized_text` (docs.stripe.com/testing#evidence) decides it `decisionDelayMs` later:
  // `winning_evidence` → won (funds and fee reinstated: `charge.dispute.funds_reinstated`), for an
  // inquiry warning_closed; `losing_evidence` → lost, for an inquiry warning_closed;
  // `escalate_inquiry_evidence` → the inquiry becomes a chargeback (`needs_response`, funds withdrawn).
  // Other evidence stays `under_review` until `closeDispute()`.

  /** The dispute settings now in force (changeable at run time, for tests and demos). */
  configureDisputes(settings: Partial<DisputeSettings> = {}): DisputeSettings {
    for (const [k, v] of Object.entries(settings)) {
      if (!(k in this.disputeSettings)) throw new TypeError(`unknown dispute setting: ${k}`);
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
        throw new TypeError(`${k} must be a number ≥ 0`);
    }
    Object.assign(this.disputeSettings, settings);
    return { ...this.disputeSettings };
  }

  dispute(id: string): StripeObject | undefined {
    const d = this.get('dispute', id);
    return d ? clone(d) : undefined;
  }

  /** Every dispute, oldest first; `charge` or `payment_intent` narrows it to one payment. */
  disputes(filter: { charge?: string; payment_intent?: string } = {}): StripeObject[] {
    return [...this.objects.values()]
      .filter(
        (o) =>
          o.object === 'dispute' &&
          (!filter.charge || o.charge === filter.charge) &&
          (!filter.payment_intent || o.payment_intent === filter.payment_intent),
      )
      .sort((a, b) => (a.created as number) - (b.created as number))
      .map(clone);
  }

  /** Creates the pending dispute of a `pm_card_createDispute*` charge now (instead of after the delay). */
  createDisputeNow(chargeId: string): StripeObject | undefined {
    const key = `dispute-create:${chargeId}`;
    const t = this.timers.get(key);
    if (t) clearTimeout(t);
    this.timers.delete(key);
    return this.createDispute(chargeId);
  }

  /**
   * The issuer's decision, as a test or the simulator console decides it: `won` or `lost` (an inquiry
   * closes as warning_closed either way). From any open status; a closed dispute throws.
   */
  closeDispute(id: string, outcome: 'won' | 'lost'): StripeObject {
    const d = this.get('dispute', id);
    if (!d) throw new Error(`no such dispute: ${id}`);
    if (DISPUTE_CLOSED.includes(d.status as string))
      throw new Error(`dispute ${id} is already ${String(d.status)}`);
    return this.decideDispute(id, outcome)!;
  }

  private scheduleDisputeTimer(key: string, at: number, fn: () => void): void {
    const existing = this.timers.get(key);
    if (existing) clearTimeout(existing);
    if (!this.server) return; // start() schedules it
    const t = setTimeout(
      () => {
        this.timers.delete(key);
        try {
          fn();
        } catch (err) {
          this.log.error({ err, key }, 'stripe simulator: dispute timer failed');
        }
      },
      Math.max(0, at - this.now()),
    );
    t.unref();
    this.timers.set(key, t);
  }

  /** Reschedules pending dispute creations and decisions (after a restart). */
  private resumeDisputeTimers(): void {
    for (const [id, info] of this.sim) {
      if (info.disputeAt !== undefined && !info.disputeId)
        this.scheduleDisputeTimer(`dispute-create:${id}`, info.disputeAt, () => this.createDispute(id));
      if (info.disputeDecision)
        this.scheduleDisputeTimer(`dispute-decision:${id}`, info.disputeDecision.at, () =>
          this.decideDispute(id),
        );
    }
  }

  /** A captured `pm_card_createDispute*` charge: its dispute comes after the configured delay. */
  private scheduleDisputeCreation(ch: StripeObject): void {
    const info = this.sim.get(ch.id);
    if (!info?.dispute || info.disputeId || info.disputeAt !== undefined) return;
    const at = this.now() + this.disputeSettings.createDelayMs;
    this.save('charge', ch, { disputeAt: at });
    this.scheduleDisputeTimer(`dispute-create:${ch.id}`, at, () => this.createDispute(ch.id));
  }

  private createDispute(chargeId: string): StripeObject | undefined {
    const ch = this.get('charge', chargeId);
    const info = this.sim.get(chargeId);
    if (!ch || !info?.dispute || info.disputeId) return undefined;
    const ctx = this.internalContext();
    const { reason, inquiry } = info.dispute;
    const created = this.seconds();
    const card = (ch.payment_method_details as { card?: { brand?: string } } | null)?.card;
    const brand = card?.brand ?? 'visa';
    const networkReasonCode = inquiry ? null : reason === 'product_not_received' ? '13.1' : '10.4';
    const dispute: StripeObject = {
      id: `dp_${randomBase62(24)}`,
      object: 'dispute',
      amount: (ch.amount_captured as number) || (ch.amount as number),
      balance_transactions: [],
      charge: ch.id,
      created,
      currency: ch.currency,
      enhanced_eligibility_types: [],
      evidence: Object.fromEntries([
        ...DISPUTE_EVIDENCE_FIELDS.map((f) => [f, null]),
        ['enhanced_evidence', {}],
      ]),
      evidence_details: {
        due_by: created + this.disputeSettings.responseWindowSeconds,
        enhanced_eligibility: {},
        has_evidence: false,
        past_due: false,
        submission_count: 0,
        submission_method: 'not_submitted',
      },
      intended_submission_method: null,
      is_charge_refundable: inquiry,
      livemode: false,
      metadata: {},
      network_reason_code: networkReasonCode,
      payment_intent: ch.payment_intent ?? null,
      payment_method_details: {
        card: {
          brand,
          case_type: inquiry ? 'inquiry' : 'chargeback',
          network: brand,
          network_reason_code: networkReasonCode,
        },
        type: 'card',
      },
      reason,
      status: inquiry ? 'warning_needs_response' : 'needs_response',
    };
    if (!inquiry) this.withdrawDisputedFunds(dispute);
    this.save('dispute', dispute, {});
    ch.disputed = true;
    this.save('charge', ch, { disputeId: dispute.id, disputeAt: undefined });
    this.emit(ctx, 'charge.dispute.created', dispute);
    if (!inquiry) this.emit(ctx, 'charge.dispute.funds_withdrawn', dispute);
    this.dispatch(ctx.events);
    return clone(dispute);
  }

  /** The chargeback's withdrawal: the disputed amount and the dispute fee leave the balance. */
  private withdrawDisputedFunds(dispute: StripeObject): void {
    const txn = this.disputeBalanceTransaction(
      dispute,
      -(dispute.amount as number),
      DISPUTE_FEE,
      'dispute',
      `Chargeback withdrawal for ${String(dispute.charge)}`,
    );
    (dispute.balance_transactions as StripeObject[]).push(txn);
    dispute.is_charge_refundable = false;
  }

  private disputeBalanceTransaction(
    dispute: StripeObject,
    amount: number,
    fee: number,
    category: 'dispute' | 'dispute_reversal',
    description: string,
  ): StripeObject {
    const created = this.seconds();
    const currency = dispute.currency as string;
    const txn: StripeObject = {
      id: `txn_${randomBase62(24)}`,
      object: 'balance_transaction',
      amount,
      available_on: created,
      balance_type: 'payments',
      created,
      currency,
      description,
      exchange_rate: null,
      fee,
      fee_details: fee
        ? [{ amount: fee, application: null, currency, description: 'Dispute fee', type: 'stripe_fee' }]
        : [],
      net: amount - fee,
      reporting_category: category,
      source: dispute.id,
      status: 'available',
      type: 'adjustment',
    };
    this.save('balance_transaction', txn);
    return txn;
  }

  /** POST /v1/disputes/:id — evidence (staged, or submitted with `submit`, the default), metadata. */
  private updateDispute(p: Reader, ctx: RequestContext, id: string): StripeObject {
    p.allow(['evidence', 'submit', 'metadata', 'expand', 'intended_submission_method']);
    const dispute = this.mustGet('dispute', id, 'dispute', 404);
    const evidence = p.object('evidence') ?? {};
    const staged: Record<string, string> = {};
    let total = 0;
    for (const [k, v] of Object.entries(evidence)) {
      if (!(DISPUTE_EVIDENCE_FIELDS as readonly string[]).includes(k))
        throw invalid(`Received unknown parameter: evidence[${k}]`, `evidence[${k}]`, 'parameter_unknown');
      if (typeof v !== 'string') throw invalid(`Invalid string: ${JSON.stringify(v)}`, `evidence[${k}]`);
      if (v.length > 20_000)
        throw invalid(`evidence[${k}] has a maximum character count of 20,000.`, `evidence[${k}]`);
      total += v.length;
      staged[k] = v;
    }
    if (total > 150_000)
      throw invalid('The combined character count of all evidence fields is limited to 150,000.', 'evidence');
    const submit = p.boolean('submit') ?? true;
    const metadata = p.metadata();
    p.oneOf('intended_submission_method', [
      'manual',
      'prefer_manual',
      'prefer_smart_disputes',
      'smart_disputes',
    ]);
    const expand = p.expand();
    if (expand.length) this.checkExpand(expand, EXPANDABLE.dispute);
    if (!DISPUTE_ANSWERABLE.includes(dispute.status as string)) {
      throw refused(
        `This dispute has a status of ${String(dispute.status)}; evidence can only be updated while it needs a response.`,
      );
    }
    const merged = { ...(dispute.evidence as Record<string, unknown>), ...staged };
    const details = dispute.evidence_details as Record<string, unknown>;
    const hasEvidence = DISPUTE_EVIDENCE_FIELDS.some(
      (f) => typeof merged[f] === 'string' && merged[f] !== '',
    );
    Object.assign(dispute, {
      evidence: merged,
      evidence_details: {
        ...details,
        has_evidence: hasEvidence,
        ...(submit
          ? {
              submission_count: (details.submission_count as number) + 1,
              submission_method: 'manual',
              past_due: this.seconds() > (details.due_by as number),
            }
          : {}),
      },
      ...(metadata ? { metadata: { ...(dispute.metadata as object), ...metadata } } : {}),
    });
    let decision: { outcome: DisputeOutcome; at: number } | undefined;
    if (submit) {
      const inquiry = dispute.status === 'warning_needs_response';
      dispute.status = inquiry ? 'warning_under_review' : 'under_review';
      const text = typeof merged.uncategorized_text === 'string' ? merged.uncategorized_text : '';
      const outcome: DisputeOutcome | undefined = text.includes('winning_evidence')
        ? 'won'
        : text.includes('losing_evidence')
          ? 'lost'
          : inquiry && text.includes('escalate_inquiry_evidence')
            ? 'escalate'
            : undefined;
      if (outcome) decision = { outcome, at: this.now() + this.disputeSettings.decisionDelayMs };
    }
    this.save('dispute', dispute, decision ? { disputeDecision: decision } : {});
    this.emit(ctx, 'charge.dispute.updated', dispute);
    if (decision) {
      const at = decision.at;
      this.scheduleDisputeTimer(`dispute-decision:${id}`, at, () => this.decideDispute(id));
    }
    return this.expanded(dispute, expand);
  }

  /** POST /v1/disputes/:id/close — accepting: a chargeback is lost, an inquiry warning_closed. */
  private closeDisputeEndpoint(p: Reader, ctx: RequestContext, id: string): StripeObject {
    p.allow(['expand']);
    const dispute = this.mustGet('dispute', id, 'dispute', 404);
    const expand = p.expand();
    if (expand.length) this.checkExpand(expand, EXPANDABLE.dispute);
    if (!DISPUTE_ANSWERABLE.includes(dispute.status as string)) {
      throw refused(
        `This dispute has a status of ${String(dispute.status)}; only a dispute that needs a response can be closed.`,
      );
    }
    dispute.status = dispute.status === 'warning_needs_response' ? 'warning_closed' : 'lost';
    this.save('dispute', dispute, { disputeDecision: undefined });
    this.emit(ctx, 'charge.dispute.closed', dispute);
    return this.expanded(dispute, expand);
  }

  /** Applies a decision: the scheduled one of the dispute, or `outcome`. */
  private decideDispute(id: string, outcome?: DisputeOutcome): StripeObject | undefined {
    const dispute = this.get('dispute', id);
    const info = this.sim.get(id);
    const decided = outcome ?? info?.disputeDecision?.outcome;
    const key = `dispute-decision:${id}`;
    const t = this.timers.get(key);
    if (t) clearTimeout(t);
    this.timers.delete(key);
    if (!dispute || !decided || DISPUTE_CLOSED.includes(dispute.status as string)) return undefined;
    const ctx = this.internalContext();
    const inquiry = (dispute.status as string).startsWith('warning_');
    if (decided === 'escalate') {
      if (!inquiry) return undefined;
      const created = this.seconds();
      const details = dispute.evidence_details as Record<string, unknown>;
      Object.assign(dispute, {
        status: 'needs_response',
        network_reason_code: '10.4',
        evidence_details: { ...details, due_by: created + this.disputeSettings.responseWindowSeconds },
        payment_method_details: {
          ...(dispute.payment_method_details as object),
          card: {
            ...(dispute.payment_method_details as { card: object }).card,
            case_type: 'chargeback',
            network_reason_code: '10.4',
          },
        },
      });
      this.withdrawDisputedFunds(dispute);
      this.save('dispute', dispute, { disputeDecision: undefined });
      this.emit(ctx, 'charge.dispute.updated', dispute);
      this.emit(ctx, 'charge.dispute.funds_withdrawn', dispute);
    } else if (inquiry) {
      dispute.status = 'warning_closed';
      this.save('dispute', dispute, { disputeDecision: undefined });
      this.emit(ctx, 'charge.dispute.closed', dispute);
    } else if (decided === 'won') {
      const txn = this.disputeBalanceTransaction(
        dispute,
        dispute.amount as number,
        -DISPUTE_FEE,
        'dispute_reversal',
        `Chargeback reversal for ${String(dispute.charge)}`,
      );
      (dispute.balance_transactions as StripeObject[]).push(txn);
      Object.assign(dispute, { status: 'won', is_charge_refundable: true });
      this.save('dispute', dispute, { disputeDecision: undefined });
      this.emit(ctx, 'charge.dispute.funds_reinstated', dispute);
      this.emit(ctx, 'charge.dispute.closed', dispute);
    } else {
      dispute.status = 'lost';
      this.save('dispute', dispute, { disputeDecision: undefined });
      this.emit(ctx, 'charge.dispute.closed', dispute);
    }
    this.dispatch(ctx.events);
    return clone(dispute);
  }

  // --- payment methods -------------------------------------------------------------------------

  /** A test id (`pm_card_visa`) or a PaymentMethod created earlier; unknown → 400 resource_missing. */
  private resolvePaymentMethod(id: string | undefined): { testCard: string } | StripeObject | undefined {
    if (!id) return undefined;
    if (Object.hasOwn(TEST_PAYMENT_METHODS, id)) return { testCard: id };
    const pm = this.get('payment_method', id);
    if (!pm) throw noSuch('PaymentMethod', id, 'payment_method');
    return pm;
  }

  /** Test ids become a new PaymentMethod of their card, as on Stripe. */
  private materialize(ref: { testCard: string } | StripeObject): StripeObject {
    if ('object' in ref) return ref;
    const card = TEST_PAYMENT_METHODS[ref.testCard] as TestCard;
    const year = new Date(this.now()).getUTCFullYear();
    const pm: StripeObject = {
      id: `pm_${randomBase62(24)}`,
      object: 'payment_method',
      allow_redisplay: 'unspecified',
      billing_details: { address: null, email: null, name: null, phone: null, tax_id: null },
      card: {
        brand: card.brand,
        checks: { address_line1_check: null, address_postal_code_check: null, cvc_check: 'unchecked' },
        country: card.country,
        display_brand: card.brand === 'amex' ? 'american_express' : card.brand,
        exp_month: 12,
        exp_year: year + 3,
        fingerprint: sha256(ref.testCard).slice(0, 16),
        funding: card.funding,
        generated_from: null,
        last4: card.last4,
        networks: { available: [card.brand], preferred: null },
        regulated_status: 'unregulated',
        three_d_secure_usage: { supported: true },
        wallet: null,
      },
      created: this.seconds(),
      customer: null,
      customer_account: null,
      livemode: false,
      metadata: {},
      type: 'card',
    };
    this.save('payment_method', pm, { testCard: ref.testCard });
    return pm;
  }

  // --- validation helpers ----------------------------------------------------------------------

  private checkAmount(amount: number, currency: string, param: string): void {
    if (THREE_DECIMAL.has(currency) && amount % 10 !== 0) {
      throw invalid(
        `Invalid ${param}: amounts in ${currency.toUpperCase()} (a three-decimal currency) must end in 0.`,
        param,
        'parameter_invalid_integer',
      );
    }
    const min = MINIMUM_AMOUNT[currency];
    if (min !== undefined && amount < min) {
      throw invalid(
        `Amount must be at least ${formatMoney(min, currency)} ${currency}`,
        param,
        'amount_too_small',
      );
    }
    if (amount > MAXIMUM_AMOUNT) {
      throw invalid(
        `Amount must be no more than ${formatMoney(MAXIMUM_AMOUNT, currency)}`,
        param,
        'amount_too_large',
      );
    }
  }

  /**
   * `allowed_payment_method_types` (current API versions) or `payment_method_types` (older ones); the
   * simulator models cards only. `excluded_payment_method_types` may not exclude card.
   */
  private paymentMethodTypes(p: Reader): { param: string; list: string[] } | undefined {
    const allowed = p.stringList('allowed_payment_method_types');
    const legacy = p.stringList('payment_method_types');
    const excluded = p.stringList('excluded_payment_method_types');
    if (allowed && legacy) {
      throw invalid(
        'You may only specify one of these parameters: allowed_payment_method_types, payment_method_types.',
        'payment_method_types',
        'parameters_exclusive',
      );
    }
    if (excluded?.includes('card')) {
      throw invalid(
        'The Stripe simulator supports card payments only; excluding card leaves no payment method type.',
        'excluded_payment_method_types',
      );
    }
    const list = allowed ?? legacy;
    if (!list) return undefined;
    const param = allowed ? 'allowed_payment_method_types' : 'payment_method_types';
    if (list.length === 0) throw invalid(`Invalid array: ${param} must not be empty`, param);
    const other = list.find((t) => t !== 'card');
    if (other) {
      throw invalid(
        `The payment method type "${other}" is not supported by the Stripe simulator (card only).`,
        param,
      );
    }
    return { param, list };
  }

  /** Confirming with automatic payment methods that may redirect needs a return_url (as on Stripe). */
  private checkConfirmable(
    automatic: { enabled: boolean; allow_redirects: string } | null,
    returnUrl?: string,
  ): void {
    if (automatic?.enabled && automatic.allow_redirects !== 'never' && !returnUrl) {
      throw invalid(
        "This PaymentIntent is configured to accept payment methods enabled in your Dashboard. Because some of these payment methods might redirect your customer off of your page, you must provide a `return_url`. If you don't want to accept redirect-based payment methods, set `automatic_payment_methods[enabled]` to `true` and `automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and Payment Intents.",
      );
    }
  }

  private checkExpand(paths: string[], allowed: readonly string[]): void {
    for (const p of paths) {
      const top = p.split('.')[0] as string;
      if (!allowed.includes(top)) throw invalid(`This property cannot be expanded (${p}).`, 'expand');
    }
  }

  /** A copy of `obj` with the `expand` paths (dotted, e.g. `latest_charge.balance_transaction`) replaced by objects. */
  private expanded(obj: StripeObject, paths: string[]): StripeObject {
    const out = clone(obj);
    for (const p of paths) {
      let node: Record<string, unknown> = out;
      for (const seg of p.split('.')) {
        const v = node[seg];
        if (typeof v === 'string') {
          const target = this.objects.get(v);
          if (!target) break;
          node[seg] = clone(target);
        }
        const next = node[seg];
        if (!next || typeof next !== 'object') break;
        node = next as Record<string, unknown>;
      }
    }
    return out;
  }

  // --- storage ---------------------------------------------------------------------------------

  private get(kind: Kind, id: string): StripeObject | undefined {
    const o = this.objects.get(id);
    return o && o.object === kind ? o : undefined;
  }

  private mustGet(kind: Kind, id: string, param: string, status: number): StripeObject {
    const o = this.get(kind, id);
    if (!o) throw noSuch(kind, id, param, status);
    return o;
  }

  private save(kind: Kind, obj: StripeObject, sim?: SimInfo): void {
    this.objects.set(obj.id, obj);
    if (sim) {
      const merged = { ...this.sim.get(obj.id), ...sim };
      if (!sim.transition) delete merged.transition;
      this.sim.set(obj.id, merged);
    }
    const info = this.sim.get(obj.id);
    this.append({ t: 'obj', kind, obj, ...(info ? { sim: info } : {}) });
  }

  private append(rec: JournalRecord): void {
    this.journal?.append(rec);
  }

  private load(): void {
    this.loaded = true;
    if (!this.journal) return;
    const cutoff = this.now() - IDEMPOTENCY_TTL_MS;
    for (const rec of this.journal.load()) {
      if (rec.t === 'obj') {
        this.objects.set(rec.obj.id, rec.obj);
        if (rec.sim) this.sim.set(rec.obj.id, rec.sim);
      } else if (rec.t === 'idem') {
        this.idempotency.set(rec.scope, rec.rec);
      } else if (rec.t === 'evt') {
        this.eventLog.push(rec.event);
      }
    }
    for (const [scope, rec] of this.idempotency) if (rec.createdMs < cutoff) this.idempotency.delete(scope);
    this.journal.rewrite(this.snapshot());
  }

  private *snapshot(): Iterable<JournalRecord> {
    for (const obj of this.objects.values()) {
      const sim = this.sim.get(obj.id);
      yield { t: 'obj', kind: obj.object as Kind, obj, ...(sim ? { sim } : {}) };
    }
    for (const [scope, rec] of this.idempotency) yield { t: 'idem', scope, rec };
    for (const event of this.eventLog) yield { t: 'evt', event };
  }

  // --- events ----------------------------------------------------------------------------------

  private internalContext(): RequestContext {
    return { requestId: '', idempotencyKey: null, apiVersion: DEFAULT_API_VERSION, events: [] };
  }

  private emit(ctx: RequestContext, type: StripeEventType, obj: StripeObject): void {
    const event: StripeEvent = {
      id: `evt_${randomBase62(24)}`,
      object: 'event',
      api_version: ctx.apiVersion,
      created: this.seconds(),
      data: { object: clone(obj) },
      livemode: false,
      pending_webhooks: 0,
      request: { id: ctx.requestId || null, idempotency_key: ctx.idempotencyKey },
      type,
    };
    this.eventLog.push(event);
    this.append({ t: 'evt', event });
    ctx.events.push(event);
  }

  private dispatch(events: StripeEvent[]): void {
    if (!this.onEvent || events.length === 0) return;
    const hook = this.onEvent;
    setImmediate(() => {
      for (const e of events) {
        Promise.resolve()
          .then(() => hook(clone(e)))
          .catch((err: unknown) =>
            this.log.warn({ err, event: e.id, type: e.type }, 'stripe simulator: onEvent failed'),
          );
      }
    });
  }

  private seconds(): number {
    return Math.floor(this.now() / 1000);
  }
}

const EXPANDABLE: Record<Kind, readonly string[]> = {
  payment_intent: ['latest_charge', 'payment_method'],
  charge: ['balance_transaction', 'payment_intent', 'payment_method', 'failure_balance_transaction'],
  refund: ['charge', 'payment_intent', 'balance_transaction', 'failure_balance_transaction'],
  payment_method: [],
  balance_transaction: ['source'],
  dispute: ['charge', 'payment_intent'],
  payout: ['balance_transaction'],
};

/**
 * `Stripe-Should-Retry`, which the SDK obeys before its own rules: `false` on errors a retry cannot
 * change (4xx, and a 5xx of a request that executed: its result is stored and would be replayed);
 * `true` on a 409 (the key's first request is still running) and on a 5xx of a request that never
 * ran. A 429 gets none (the SDK then does not retry it). Successful answers get none.
 */
function shouldRetry(status: number, executed: boolean): Record<string, string> {
  if (status < 400 || status === 429) return {};
  const retry = status === 409 || (status >= 500 && !executed);
  return { 'Stripe-Should-Retry': retry ? 'true' : 'false' };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 1 << 20) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
