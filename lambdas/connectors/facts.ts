/**
 * Processor-neutral facts: what a processor's incoming webhook says, in paystep's words, once it has
 * been verified. A connector turns its processor's wire format (Adyen's `NotificationRequestItem`s,
 * Stripe's events) into these; the rest of paystep (webhook appliers, the sweeper, `retrieve` of a
 * processor that has no read API) only ever sees facts, never a processor's event names.
 *
 * Three kinds, each about one processor object:
 * - `payment`: the payment itself (authorised, refused, captured, capture failed, canceled, …);
 * - `refund`: one refund of a payment (succeeded, failed, reversed);
 * - `dispute`: one dispute of a payment, from the first notice to the final outcome.
 *
 * Rules every connector follows:
 * - Amounts are paystep's integer minor units and lowercase ISO 4217 (a connector converts its
 *   processor's minor units when they differ, e.g. Adyen's CLP has 2 decimals, paystep's 0).
 * - `id` is stable for the same fact: a processor's retry of the same notification has the same id,
 *   so "stored once" is a conditional put on it.
 * - `at` is when the processor says the event happened (ISO 8601), not when it reached paystep.
 *   Facts arrive in any order; `paymentState` folds them by meaning, not by arrival.
 * - `raw_event` keeps the processor's own name (e.g. `CAPTURE_FAILED`) for timelines and support.
 *
 * docs/connectors.md describes these types for connector authors. Both connectors produce them:
 * lambdas/connectors/adyen/notifications.ts and lambdas/connectors/stripe/webhooks.ts.
 */
import type { CardDetails, Failure, RetrieveResult } from '../connectors/types.ts';
import type { DisputeFacts } from './disputes.ts';

export interface FactAmount {
  /** paystep minor units. */
  value: number;
  /** Lowercase ISO 4217. */
  currency: string;
}

interface FactBase {
  /** The connector's name, e.g. `adyen`. */
  processor: string;
  /** Stable id of this fact (the same notification delivered twice has the same id). */
  id: string;
  /** When the processor says it happened (ISO 8601). */
  at: string;
  /** What the processor calls the event (Adyen `eventCode`, Stripe event `type`). */
  raw_event: string;
  /** Whether the event reports a success (a refused authorisation, a failed capture: false). */
  success: boolean;
  amount: FactAmount | null;
  /** The processor's reason text, when it gives one (a refusal reason, a failure reason). */
  reason?: string;
  /** Whether the processor sent it from its live environment. */
  live: boolean;
}

export const PAYMENT_EVENTS = [
  'authorised',
  'refused',
  'pending',
  'action_required',
  'captured',
  'capture_failed',
  'canceled',
  'cancel_failed',
  'expired',
  'authorisation_adjusted',
] as const;
export type PaymentEvent = (typeof PAYMENT_EVENTS)[number];

export interface PaymentFact extends FactBase {
  kind: 'payment';
  /** The payment's processor reference (what paystep stores as `processor_reference`). */
  reference: string;
  /** The reference paystep gave the processor: the paystep payment id. */
  merchantReference: string | null;
  event: PaymentEvent;
  /** The processor's reference of the modification (a capture's or a cancellation's own id), if any. */
  modificationReference?: string;
  /**
   * The processor's own status word for the payment at the time, when the event carries one
   * (Stripe: the PaymentIntent's `status`), for timelines; otherwise `raw_event` names it.
   */
  processorStatus?: string;
  /** Why an authorisation was refused, in paystep's taxonomy. */
  failure?: Failure;
  card?: CardDetails;
}

/** `canceled`: the processor canceled the refund before it was sent (Stripe); never a success. */
export const REFUND_EVENTS = ['succeeded', 'failed', 'canceled', 'reversed'] as const;
export type RefundEvent = (typeof REFUND_EVENTS)[number];

export interface RefundFact extends FactBase {
  kind: 'refund';
  /** The refund's own processor reference (what paystep stores on the refund). */
  reference: string;
  /** The refunded payment's processor reference. */
  paymentReference: string;
  /** The reference paystep gave the processor for the refund (the paystep refund id), if echoed. */
  merchantReference: string | null;
  event: RefundEvent;
}

export const DISPUTE_EVENTS = [
  'request_for_information',
  'notification_of_chargeback',
  'chargeback',
  'chargeback_reversed',
  'second_chargeback',
  'prearbitration_won',
  'prearbitration_lost',
  'defense_period_ended',
  'information_supplied',
  'notification_of_fraud',
] as const;
export type DisputeEvent = (typeof DISPUTE_EVENTS)[number];

/** Whether money moves with the event: funds withdrawn, returned, or none (an inquiry, a notice). */
export type DisputeMoney = 'withdrawn' | 'returned' | 'none';

export interface DisputeFact extends FactBase {
  kind: 'dispute';
  /** The dispute's processor reference (all events of one dispute share it). */
  reference: string;
  /** The disputed payment's processor reference. */
  paymentReference: string;
  merchantReference: string | null;
  event: DisputeEvent;
  money: DisputeMoney;
  /** The card scheme's reason code (e.g. Visa `10.4`), if given. */
  reasonCode?: string;
  /** The processor's own dispute status at the time (Adyen `disputeStatus`: Undefended, Lost, Won…). */
  processorStatus?: string;
  /** Until when evidence can be submitted (ISO 8601), if given. */
  evidenceDueBy?: string;
  /** Whether the processor says the dispute can be defended. */
  defendable?: boolean;
  /**
   * The whole dispute as this event saw it, in paystep's terms, when the processor's event carries
   * the dispute object (Stripe's `charge.dispute.*` `data.object`, read by the connector's
   * `factsFromStripe`). The applier then applies the dispute as of this event (ordered by `at`: a
   * stale event changes nothing). Absent (Adyen: a notification is one event, not the dispute): the
   * applier asks the dispute connector's `retrieve` for the dispute's state.
   */
  dispute?: DisputeFacts;
}

export type ConnectorFact = PaymentFact | RefundFact | DisputeFact;

// --- Folding facts into a state ---------------------------------------------------------------

/** What paystep knows of a payment apart from the facts (the facts may not carry it all). */
export interface PaymentContext {
  /** Minor units requested. */
  amount: number;
  currency: string;
  captureMethod: 'automatic' | 'manual';
}

/**
 * A payment's state at the processor from its facts, whatever order they arrived in: the answer
 * of `retrieve` for a processor without a read API. Precedence by meaning: a successful capture
 * beats a cancellation (a processor refuses to cancel a captured payment), a refusal is final
 * unless an authorisation succeeded (a later successful attempt under the same reference).
 * Returns undefined when no fact says anything about the payment itself.
 */
export function paymentState(
  reference: string,
  facts: readonly ConnectorFact[],
  ctx: PaymentContext,
): RetrieveResult | undefined {
  const mine = facts.filter((f) => f.kind === 'payment' && f.reference === reference) as PaymentFact[];
  const refunds = facts.filter(
    (f) => f.kind === 'refund' && f.paymentReference === reference,
  ) as RefundFact[];
  const ok = (e: PaymentEvent) => mine.filter((f) => f.event === e && f.success);
  const authorised = ok('authorised');
  const refused = mine.filter((f) => f.event === 'refused' || (f.event === 'authorised' && !f.success));
  const captures = ok('captured');
  const cancels = ok('canceled').concat(ok('expired'));
  const pending = ok('pending');
  if (!mine.length && !refunds.length) return undefined;

  const base = {
    processorReference: reference,
    amount: ctx.amount,
    currency: ctx.currency,
    amountRefunded: refundedAmount(refunds),
  };
  if (captures.length) {
    return {
      ...base,
      status: 'captured',
      amountCaptured: captures.reduce((s, f) => s + (f.amount?.value ?? ctx.amount), 0),
      rawStatus: captures[captures.length - 1]!.raw_event,
    };
  }
  if (authorised.length || refunds.length) {
    const a = authorised[authorised.length - 1];
    const value = a?.amount?.value ?? ctx.amount;
    if (cancels.length)
      return { ...base, status: 'canceled', amountCaptured: 0, rawStatus: cancels[0]!.raw_event };
    if (ctx.captureMethod === 'automatic' || refunds.length)
      return { ...base, status: 'captured', amountCaptured: value, rawStatus: a?.raw_event ?? 'refunded' };
    return { ...base, status: 'authorized', amountCaptured: 0, rawStatus: a!.raw_event };
  }
  if (refused.length) {
    const r = refused[refused.length - 1]!;
    return {
      ...base,
      status: 'requires_payment_method',
      amountCaptured: 0,
      rawStatus: r.raw_event,
      ...(r.failure ? { failure: r.failure } : {}),
    };
  }
  if (cancels.length)
    return { ...base, status: 'canceled', amountCaptured: 0, rawStatus: cancels[0]!.raw_event };
  if (pending.length)
    return { ...base, status: 'processing', amountCaptured: 0, rawStatus: pending[0]!.raw_event };
  return undefined;
}

/** Succeeded refunds minus those later reversed, each refund counted once. */
export function refundedAmount(refunds: readonly RefundFact[]): number {
  let total = 0;
  for (const ref of new Set(refunds.map((r) => r.reference))) {
    const state = refundState(ref, refunds);
    if (state?.status === 'succeeded') total += state.amount;
  }
  return total;
}

/** One refund's state from its facts: reversed or failed beats succeeded, whatever the order. */
export function refundState(
  refundReference: string,
  facts: readonly ConnectorFact[],
): { status: 'succeeded' | 'failed'; amount: number; reason?: string; rawStatus: string } | undefined {
  const mine = facts.filter((f) => f.kind === 'refund' && f.reference === refundReference) as RefundFact[];
  if (!mine.length) return undefined;
  const bad = mine.find(
    (f) => f.event === 'failed' || f.event === 'canceled' || f.event === 'reversed' || !f.success,
  );
  const good = mine.find((f) => f.event === 'succeeded' && f.success);
  const decisive = bad ?? good!;
  return {
    status: bad ? 'failed' : 'succeeded',
    amount: (good ?? decisive).amount?.value ?? 0,
    ...(decisive.reason ? { reason: decisive.reason } : {}),
    rawStatus: decisive.raw_event,
  };
}
