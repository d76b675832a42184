/**
 * The payment state machine (docs/states.md): statuses, the allowed transitions, and the
 * plain-language explanation of where a payment is. Pure: no I/O.
 */
import type { Failure } from '../connectors/types.ts';
import type { CardAnalytics } from '../connectors/analytics.ts';
import { formatAmount } from './money.ts';

export const PAYMENT_STATUSES = [
  'processing',
  'pending_review',
  'requires_action',
  'authorized',
  'captured',
  'settled',
  'partially_refunded',
  'refunded',
  'disputed',
  'charged_back',
  'failed',
  'canceled',
] as const;

export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

/** The money was collected: captured or anything after it (settled, refunded, disputed…). */
export const CAPTURED_STATUSES: ReadonlySet<PaymentStatus> = new Set([
  'captured',
  'settled',
  'partially_refunded',
  'refunded',
  'disputed',
  'charged_back',
]);

/**
 * An approved payment: authorized or anything after it, whatever happened next (refunds and
 * disputes included). Every report and analytics view counts approvals this way.
 */
export const APPROVED_STATUSES: ReadonlySet<PaymentStatus> = new Set(['authorized', ...CAPTURED_STATUSES]);

export const TRANSITIONS: Record<PaymentStatus, readonly PaymentStatus[]> = {
  processing: ['pending_review', 'requires_action', 'authorized', 'captured', 'failed', 'canceled'],
  pending_review: ['processing', 'canceled'],
  requires_action: ['processing', 'authorized', 'captured', 'failed', 'canceled'],
  authorized: ['captured', 'canceled'],
  captured: ['settled', 'partially_refunded', 'refunded', 'disputed'],
  settled: ['partially_refunded', 'refunded', 'disputed'],
  // Never back to `settled`: a payout that arrives (or is re-imported) after a refund is recorded as
  // `settlement` beside the status, not as a status that would hide the refund.
  partially_refunded: ['partially_refunded', 'refunded', 'disputed'],
  // A won dispute returns to what the money facts say (moneyStatus); a lost one is final.
  disputed: ['captured', 'settled', 'partially_refunded', 'refunded', 'charged_back'],
  refunded: [],
  charged_back: [],
  failed: [],
  canceled: [],
};

export const TERMINAL_STATUSES: PaymentStatus[] = PAYMENT_STATUSES.filter((s) => TRANSITIONS[s].length === 0);

export const canTransition = (from: PaymentStatus, to: PaymentStatus) => TRANSITIONS[from].includes(to);

/** Statuses from which `to` may be reached: the condition of the guarded write. */
export const allowedSources = (to: PaymentStatus): PaymentStatus[] =>
  PAYMENT_STATUSES.filter((from) => TRANSITIONS[from].includes(to));

/** Statuses from which a payment can be refunded (money captured, not disputed, not all refunded). */
export const REFUNDABLE_STATUSES: readonly PaymentStatus[] = ['captured', 'settled', 'partially_refunded'];
export const isRefundable = (s: PaymentStatus) => REFUNDABLE_STATUSES.includes(s);

/** Where a captured payment's money is, when no dispute holds it. */
export interface MoneyFacts {
  amount_captured: number;
  amount_refunded: number;
  settlement?: Settlement | null;
}

/**
 * The status the money facts give, by precedence: refunded (all) > partially_refunded > settled >
 * captured. Dispute statuses (`disputed`, `charged_back`) rank above all of these and come from the
 * dispute; everything below is kept as facts (`amount_refunded`, `settlement`) whatever the status.
 */
export function moneyStatus(f: MoneyFacts): 'captured' | 'settled' | 'partially_refunded' | 'refunded' {
  if (f.amount_captured > 0 && f.amount_refunded >= f.amount_captured) return 'refunded';
  if (f.amount_refunded > 0) return 'partially_refunded';
  if (f.settlement) return 'settled';
  return 'captured';
}

/**
 * Modifications a processor may accept without deciding them at once (Adyen answers `received`
 * and tells the outcome by notification; docs/states.md, "Pending capture and cancel"). While one
 * is pending the payment keeps its status, with `pending_modification` beside it; the outcome moves
 * the payment from `from` to `succeeded` through the transition table, or leaves it in `from`
 * (a failed capture or cancel). A unit test checks each pair against TRANSITIONS.
 */
export const MODIFICATIONS = {
  capture: { from: 'authorized', succeeded: 'captured' },
  cancel: { from: 'authorized', succeeded: 'canceled' },
} as const satisfies Record<string, { from: PaymentStatus; succeeded: PaymentStatus }>;

export type ModificationAction = keyof typeof MODIFICATIONS;

/** A capture or cancel asked of the processor and not decided yet (the payment's `pending_modification`). */
export interface PendingModification {
  action: ModificationAction;
  /**
   * `requested`: recorded before the processor call; its answer is not known yet (a retry sends the
   * same idempotency key). `pending`: the processor accepted it; its outcome is awaited.
   */
  state: 'requested' | 'pending';
  /** A capture's amount (minor units). */
  amount?: number;
  /** A cancellation's reason (`cancellation_reason` once canceled). */
  reason?: string;
  /** The processor idempotency key of this modification: the same for every retry of it. */
  idempotency_key: string;
  /** Epoch seconds. */
  requested_at: number;
  /** The processor's reference of the modification itself (Adyen's modification pspReference). */
  reference?: string;
  /**
   * Held in the incident backlog (docs/routing.md "The backlog"): the processor is in an `open`
   * incident, so it is not asked until the incident is resolved. Epoch ms.
   */
  held?: { incident_id: string; since: number };
}

/** Why the last capture or cancel did not happen (the payment stays authorized). */
export interface ModificationError {
  code: string;
  message: string;
  /** Epoch ms. */
  at: number;
}

export const isPaymentStatus = (s: unknown): s is PaymentStatus =>
  typeof s === 'string' && (PAYMENT_STATUSES as readonly string[]).includes(s);

export interface Customer {
  id?: string;
  email?: string;
  country?: string;
}

/** The processor payout that paid this payment out to the merchant (first payout wins). */
export interface Settlement {
  processor: string;
  payout_id: string;
  /** Payout date, YYYY-MM-DD. */
  date: string;
}

/** The payment's dispute, as the payment shows it (the dispute object has everything else). */
export interface PaymentDispute {
  id: string;
  status: string;
  reason: string;
  amount: number;
  currency: string;
  /** Epoch seconds, or null when the processor gives none (e.g. closed). */
  evidence_due_by: number | null;
}

/**
 * One authorization attempt on one processor (docs/routing.md "Attempts, failover and cascades").
 * A payment tries its route in order; each attempt has its own idempotency key, so no attempt is
 * ever made twice at its processor, and `next` says why the payment moved on.
 */
export interface PaymentAttempt {
  /** 1 for the route's first processor. */
  attempt: number;
  processor: string;
  /** The key sent to the processor (`<payment>:authorize:<attempt>`). */
  idempotency_key: string;
  /** ISO 8601: when the attempt's last request was sent. */
  started: string;
  latency_ms: number;
  /** What it ended in: an answer (authorized … declined) or `not_processed` (nothing reached it). */
  outcome: 'authorized' | 'captured' | 'requires_action' | 'processing' | 'declined' | 'not_processed';
  failure: { category: string; code: string; processor_code: string } | null;
  processor_reference: string | null;
  /** Why the payment moved on to another processor, when it did. */
  next?: { processor: string; reason: string; cascade: boolean };
}

export interface Payment {
  id: string;
  object: 'payment';
  merchant_id: string;
  amount: number;
  currency: string;
  status: PaymentStatus;
  amount_captured: number;
  amount_refunded: number;
  capture_method: 'automatic' | 'manual';
  payment_method: string;
  processor: string | null;
  processor_reference: string | null;
  failure: Failure | null;
  order_id: string | null;
  customer: Customer | null;
  channel: string | null;
  description: string | null;
  metadata: Record<string, string>;
  card: { brand?: string; last4?: string; country?: string } | null;
  capture_before: number | null;
  cancellation_reason: string | null;
  review: { id: string; reasons: string[]; status: 'open' | 'approved' | 'rejected' | 'expired' } | null;
  execution_arn: string | null;
  settlement?: Settlement | null;
  dispute?: PaymentDispute | null;
  /** A capture or cancel the processor has accepted but not decided (status stays `authorized`). */
  pending_modification?: PendingModification | null;
  last_capture_error?: ModificationError | null;
  last_cancel_error?: ModificationError | null;
  /**
   * Card facts kept for analytics, never shown in the API's `card`: the BIN (6–8 digits, never
   * more of the number), issuer country, issuer name, funding. docs/states.md, "Card analytics".
   */
  card_analytics?: CardAnalytics | null;
  /** Every authorization attempt, in order; `processor` is the current (last) attempt's. */
  attempts?: PaymentAttempt[];
  /** The attempt in progress (1 = the route's first processor); absent means 1. */
  authorize_attempt?: number;
  /**
   * Set before a request of attempt N goes out while the route has a next processor: a later
   * refused connection of the same attempt then no longer proves that nothing was processed.
   */
  authorize_sent?: number;
  created: number;
  updated: number;
  version: number;
}

/** Where the payment is and what to do about it, in words support can read to a customer. */
export function explain(p: Payment): string {
  return [statusSentence(p), ...factSentences(p)].join(' ');
}

/** The facts the status alone does not tell: refunds, the payout, the dispute. */
function factSentences(p: Payment): string[] {
  const out: string[] = [];
  const money = ['captured', 'settled', 'partially_refunded', 'refunded', 'disputed', 'charged_back'];
  if (!money.includes(p.status)) return out;
  if (p.amount_refunded > 0 && p.status !== 'partially_refunded' && p.status !== 'refunded')
    out.push(`${formatAmount(p.amount_refunded, p.currency)} of it was refunded.`);
  if (p.settlement && p.status !== 'settled')
    out.push(
      `It was paid out in ${p.settlement.processor} payout ${p.settlement.payout_id} on ${p.settlement.date}.`,
    );
  const d = p.dispute;
  if (d && p.status !== 'disputed' && p.status !== 'charged_back') {
    const amount = formatAmount(d.amount, d.currency);
    if (d.status.startsWith('warning_'))
      out.push(
        `The customer's bank opened an inquiry (${d.reason.replace(/_/g, ' ')}, dispute ${d.id}, ${d.status.replace(/_/g, ' ')}); no money has been withdrawn.`,
      );
    else if (d.status === 'won')
      out.push(`A dispute over ${amount} (${d.id}) was won; the funds were reinstated.`);
    else out.push(`Dispute ${d.id} over ${amount} is ${d.status.replace(/_/g, ' ')}.`);
  }
  if (d && (p.status === 'disputed' || p.status === 'charged_back')) {
    const due =
      d.evidence_due_by && p.status === 'disputed'
        ? ` Evidence is due by ${new Date(d.evidence_due_by * 1000).toISOString()}.`
        : '';
    out.push(`Dispute ${d.id}: ${d.reason.replace(/_/g, ' ')}, ${d.status.replace(/_/g, ' ')}.${due}`);
  }
  return out;
}

function statusSentence(p: Payment): string {
  const amount = formatAmount(p.amount, p.currency);
  const captured = formatAmount(p.amount_captured, p.currency);
  switch (p.status) {
    case 'processing':
      return `Payment of ${amount} is being processed: paystep is screening and authorizing it with the processor. No action needed; it usually completes within seconds.`;
    case 'pending_review':
      return `Payment of ${amount} is held for a manual risk review${p.review?.reasons.length ? ` (${p.review.reasons.join('; ')})` : ''}. No money has moved. An operator approves or rejects it; if nobody decides within the review window it is canceled.`;
    case 'requires_action':
      return `Payment of ${amount} is waiting for the customer to authenticate with their bank (3-D Secure). Ask the customer to complete the authentication step.`;
    case 'authorized': {
      const m = p.pending_modification;
      if (m?.held)
        return `Payment of ${amount} is authorized and its ${m.action === 'capture' ? `capture of ${formatAmount(m.amount ?? p.amount, p.currency)}` : 'cancellation'} was requested; it is held because ${p.processor ?? 'its processor'} is in incident ${m.held.incident_id}. No action needed: it is made, once, when the incident is resolved.`;
      if (m?.action === 'capture')
        return `Payment of ${amount} is authorized and a capture of ${formatAmount(m.amount ?? p.amount, p.currency)} was requested${m.state === 'pending' ? ' and accepted by the processor' : ''}; the processor has not confirmed it yet. No action needed: it is recorded as captured when the processor confirms.`;
      if (m?.action === 'cancel')
        return `Payment of ${amount} is authorized and its cancellation was requested${m.state === 'pending' ? ' and accepted by the processor' : ''}; the processor has not confirmed it yet. No action needed: the hold is released when the processor confirms.`;
      return `Payment of ${amount} is authorized: the customer's bank holds the funds. Capture it to collect the money${p.capture_before ? ` before ${new Date(p.capture_before * 1000).toISOString()}` : ''}, or cancel it to release the hold.`;
    }
    case 'captured':
      return p.amount_captured < p.amount
        ? `Payment captured for ${captured} of ${amount}; the rest of the hold was released. Funds will be paid out by the processor.`
        : `Payment of ${amount} is captured. Funds will be paid out by the processor.`;
    case 'settled':
      return p.settlement
        ? `Payment of ${captured} is settled: it was paid out in ${p.settlement.processor} payout ${p.settlement.payout_id} on ${p.settlement.date}.`
        : `Payment of ${captured} is settled: it was included in a processor payout.`;
    case 'partially_refunded':
      return `Payment of ${captured} was partially refunded (${formatAmount(p.amount_refunded, p.currency)}).`;
    case 'refunded':
      return `Payment of ${captured} was fully refunded to the customer.`;
    case 'disputed':
      return `The customer disputed this payment of ${captured} with their bank. Funds are withheld until the dispute is resolved; submit evidence before the deadline.`;
    case 'charged_back':
      return `The dispute was lost: the bank returned ${captured} to the customer.`;
    case 'canceled':
      return `Payment of ${amount} was canceled${p.cancellation_reason ? ` (${p.cancellation_reason.replace(/_/g, ' ')})` : ''}. No money was collected.`;
    case 'failed':
      return p.failure
        ? `${p.failure.explanation} ${p.failure.recommended_action}`
        : `Payment of ${amount} failed.`;
  }
}
