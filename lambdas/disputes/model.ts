/**
 * The dispute state machine (docs/disputes.md): statuses, the allowed transitions, how a
 * processor's status reads once paystep's own knowledge is added, which incoming change wins, and what a
 * dispute implies for its payment's status. Pure: no I/O, tested without mocks.
 */
import { createHash } from 'node:crypto';
import { moneyStatus, type MoneyFacts, type PaymentStatus } from '../domain/payment.ts';
import type { BalanceEffect } from '../connectors/disputes.ts';

export const DISPUTE_STATUSES = [
  'warning_needs_response',
  'warning_under_review',
  'warning_closed',
  'needs_response',
  'under_review',
  'won',
  'lost',
  'accepted',
] as const;

export type DisputeStatus = (typeof DISPUTE_STATUSES)[number];

/**
 * Forward-only. An inquiry (`warning_*`) may escalate into a chargeback; a chargeback never goes
 * back to an inquiry; closed statuses are terminal. `accepted` is a loss the merchant chose
 * (POST /v1/disputes/{id}/accept); the processor reports it as `lost`.
 */
export const DISPUTE_TRANSITIONS: Record<DisputeStatus, readonly DisputeStatus[]> = {
  warning_needs_response: [
    'warning_under_review',
    'warning_closed',
    'needs_response',
    'under_review',
    'won',
    'lost',
    'accepted',
  ],
  warning_under_review: ['warning_closed', 'needs_response', 'under_review', 'won', 'lost'],
  needs_response: ['under_review', 'won', 'lost', 'accepted'],
  under_review: ['won', 'lost'],
  warning_closed: [],
  won: [],
  lost: [],
  accepted: [],
};

export const isDisputeStatus = (s: unknown): s is DisputeStatus =>
  typeof s === 'string' && (DISPUTE_STATUSES as readonly string[]).includes(s);

export const canMoveDispute = (from: DisputeStatus, to: DisputeStatus) =>
  DISPUTE_TRANSITIONS[from].includes(to);

export const isClosed = (s: DisputeStatus) => DISPUTE_TRANSITIONS[s].length === 0;

/** An inquiry (retrieval request, "warning"): no funds are withdrawn while it is open. */
export const isInquiry = (s: DisputeStatus) => s.startsWith('warning_');

/** Evidence was submitted; the issuer is deciding. */
export const isResponded = (s: DisputeStatus) => s === 'under_review' || s === 'warning_under_review';

/** Statuses the merchant can still answer (evidence or accept). */
export const ANSWERABLE: readonly DisputeStatus[] = ['needs_response', 'warning_needs_response'];

/** Payment statuses that hold money a chargeback can withdraw (and a win restores). */
export const MONEY_STATUSES: readonly PaymentStatus[] = ['captured', 'settled', 'partially_refunded'];

export type { BalanceEffect, DisputeFacts } from '../connectors/disputes.ts';

/**
 * The status a processor's facts give, once paystep's own knowledge is added: a loss the merchant
 * asked for (POST /v1/disputes/{id}/accept) is `accepted`. null (a state paystep does not model)
 * → undefined: the change is ignored and logged, the dispute keeps its last known status.
 */
export function finalStatus(
  status: DisputeStatus | null,
  acceptedByMerchant: boolean,
): DisputeStatus | undefined {
  if (!status) return undefined;
  if (status === 'lost' && acceptedByMerchant) return 'accepted';
  return status;
}

/** Sums for finance: funds withdrawn and reinstated (positive minor units) and dispute fees. */
export function financeTotals(txns: readonly BalanceEffect[]) {
  let withdrawn = 0;
  let reinstated = 0;
  let fees = 0;
  let feesReturned = 0;
  for (const t of txns) {
    if (t.amount < 0) withdrawn += -t.amount;
    else reinstated += t.amount;
    if (t.fee > 0) fees += t.fee;
    else feesReturned += -t.fee;
  }
  return {
    funds_withdrawn_amount: withdrawn,
    funds_reinstated_amount: reinstated,
    dispute_fee: fees,
    dispute_fee_returned: feesReturned,
  };
}

/** Balance transactions only ever accumulate: the union by id, oldest first. */
export function mergeBalance(
  stored: readonly BalanceEffect[],
  incoming: readonly BalanceEffect[],
): BalanceEffect[] {
  const byId = new Map<string, BalanceEffect>();
  for (const t of [...stored, ...incoming]) byId.set(t.id, t);
  return [...byId.values()].sort((a, b) => a.created - b.created || a.id.localeCompare(b.id));
}

/** Identifies one delivery of one event, so a redelivery is recognised as a duplicate. */
export function eventFingerprint(eventType: string, eventCreated: number, dispute: unknown): string {
  return createHash('sha256')
    .update(`${eventType}\n${eventCreated}\n${stableJson(dispute)}`)
    .digest('base64url')
    .slice(0, 22);
}

/** JSON with sorted keys: equal values give equal strings, whatever the key order. */
export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v ?? null);
}

export interface StoredView {
  status: DisputeStatus;
  /** `created` of the newest event applied (epoch s). */
  processor_updated: number;
  applied_events: readonly string[];
  balance_ids: readonly string[];
}

export interface IncomingView {
  status: DisputeStatus;
  eventCreated: number;
  fingerprint: string;
  balance_ids: readonly string[];
}

export type Decision =
  | { kind: 'create' }
  | { kind: 'update'; statusChanged: boolean }
  /** Stale for status and fields, but it carries balance transactions paystep has not seen. */
  | { kind: 'finance_only' }
  | { kind: 'ignore'; why: 'duplicate' | 'stale' | 'regression' };

/**
 * Which incoming change wins. A newer status (an allowed transition) always applies; the same
 * status applies when the event is not older than the newest applied one; an older event or a
 * backwards move never overwrites a newer state. Balance transactions are merged regardless of
 * order (they only accumulate).
 */
export function decide(stored: StoredView | undefined, incoming: IncomingView): Decision {
  if (!stored) return { kind: 'create' };
  if (stored.applied_events.includes(incoming.fingerprint)) return { kind: 'ignore', why: 'duplicate' };
  const newBalance = incoming.balance_ids.some((id) => !stored.balance_ids.includes(id));
  if (incoming.status === stored.status) {
    if (incoming.eventCreated >= stored.processor_updated) return { kind: 'update', statusChanged: false };
    return newBalance ? { kind: 'finance_only' } : { kind: 'ignore', why: 'stale' };
  }
  if (canMoveDispute(stored.status, incoming.status)) return { kind: 'update', statusChanged: true };
  return newBalance ? { kind: 'finance_only' } : { kind: 'ignore', why: 'regression' };
}

export interface PaymentStep {
  to: PaymentStatus;
  from: PaymentStatus;
  /** Remember this money status on the dispute before moving to `disputed` (a win restores it). */
  remember?: PaymentStatus;
}

/**
 * The next status write that brings the payment in line with its dispute, or undefined when it
 * already is (or cannot be: a refunded or failed payment is left as it is).
 * - open chargeback → `disputed` (from a money status, remembered);
 * - won → back to the status the payment's money facts give (docs/states.md, precedence: a refund
 *   or payout recorded while the dispute was open counts); without the facts, the remembered one;
 * - lost / accepted → `charged_back` (through `disputed` if the payment never got there);
 * - inquiries move no money: the payment keeps its status.
 */
export function paymentStep(
  dispute: { status: DisputeStatus; payment_status_before?: PaymentStatus | null },
  paymentStatus: PaymentStatus,
  facts?: MoneyFacts,
): PaymentStep | undefined {
  const s = dispute.status;
  const inMoney = MONEY_STATUSES.includes(paymentStatus);
  if (s === 'needs_response' || s === 'under_review' || s === 'lost' || s === 'accepted') {
    if (inMoney) return { to: 'disputed', from: paymentStatus, remember: paymentStatus };
    if (paymentStatus === 'disputed' && (s === 'lost' || s === 'accepted'))
      return { to: 'charged_back', from: 'disputed' };
    return undefined;
  }
  if (s === 'won' && paymentStatus === 'disputed') {
    if (facts) return { to: moneyStatus(facts), from: 'disputed' };
    const back = dispute.payment_status_before;
    return { to: back && MONEY_STATUSES.includes(back) ? back : 'captured', from: 'disputed' };
  }
  return undefined;
}

/** How long before the evidence deadline the merchant is reminded. */
export const REMINDER_LEAD_SECONDS = 3 * 24 * 3600;

/** When to remind: `lead` before the deadline, never before the dispute was recorded. */
export function remindAt(
  evidenceDueBy: number | null,
  recorded: number,
  lead = REMINDER_LEAD_SECONDS,
): number {
  if (!evidenceDueBy) return recorded;
  return Math.max(recorded, evidenceDueBy - lead);
}

/** What the dispute workflow routes on (every task and every resume returns it). */
export interface DisputeSummary {
  dispute_id: string;
  status: DisputeStatus;
  phase: 'open' | 'closed';
  kind: 'inquiry' | 'chargeback';
  responded: boolean;
  /** Counts status changes; a waiting step that saw an older value re-checks. */
  seq: number;
  /** ISO 8601, for the Wait state's TimestampPath. */
  remind_at: string;
}

export function summarize(d: {
  id: string;
  status: DisputeStatus;
  status_seq: number;
  remind_at: number;
}): DisputeSummary {
  return {
    dispute_id: d.id,
    status: d.status,
    phase: isClosed(d.status) ? 'closed' : 'open',
    kind: isInquiry(d.status) ? 'inquiry' : 'chargeback',
    responded: isResponded(d.status),
    seq: d.status_seq,
    remind_at: new Date(d.remind_at * 1000).toISOString(),
  };
}

/** Where the dispute is and what to do, in words support can read to a merchant. */
export function explainDispute(
  d: {
    status: DisputeStatus;
    evidence_due_by: number | null;
    reason: string;
  },
  /** How the deadline (epoch seconds) reads: ISO 8601 for the API; the console writes it for people. */
  formatDue: (seconds: number) => string = (s) => new Date(s * 1000).toISOString(),
): string {
  const due = d.evidence_due_by ? ` by ${formatDue(d.evidence_due_by)}` : '';
  const reason = d.reason.replace(/_/g, ' ');
  switch (d.status) {
    case 'warning_needs_response':
      return `The cardholder's bank asked about this payment (inquiry: ${reason}). No funds were withdrawn. Answer with evidence${due} to stop it from becoming a chargeback.`;
    case 'warning_under_review':
      return 'Evidence was sent for the inquiry; the bank is reviewing it. No funds were withdrawn.';
    case 'warning_closed':
      return 'The inquiry was closed without a chargeback.';
    case 'needs_response':
      return `The cardholder disputed this payment (${reason}); the amount was withdrawn. Submit evidence${due} or accept the dispute.`;
    case 'under_review':
      return 'Evidence was submitted; the bank is deciding. This usually takes up to 75 days.';
    case 'won':
      return 'The dispute was decided in the merchant’s favour: the withdrawn funds were reinstated.';
    case 'lost':
      return 'The dispute was lost: the withdrawn funds went back to the cardholder.';
    case 'accepted':
      return 'The merchant accepted the dispute: the withdrawn funds went back to the cardholder.';
  }
}
