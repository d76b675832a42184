/** The public shape of a payment (docs/api.md). Internal attributes never leave the API. */
import { explain, type Payment } from '../domain/payment.ts';
import { ApiError } from '../shared/errors.ts';

/** A capture or cancel the processor has not decided yet, as the API shows it (or null). */
export function presentModification(p: Payment) {
  const m = p.pending_modification;
  if (!m || p.status !== 'authorized') return null;
  return {
    type: m.action,
    status: m.state === 'pending' ? 'pending' : 'requested',
    ...(m.action === 'capture' ? { amount: m.amount ?? p.amount } : { reason: m.reason ?? null }),
    requested: m.requested_at,
    processor_reference: m.reference ?? null,
  };
}

/** 409 while another capture or cancel of the payment waits for the processor's outcome. */
export function refuseWhilePending(p: Payment, action: 'capture' | 'cancel'): void {
  const m = p.pending_modification;
  // `requested` with the same action: the processor's answer is unknown, so the same request may go on
  // (it sends the same idempotency key).
  if (!m || (m.action === action && m.state === 'requested')) return;
  throw new ApiError(
    409,
    'conflict',
    'modification_pending',
    `A ${m.action} of this payment is pending at the processor; its outcome has not arrived yet. Fetch the payment (pending_modification) and retry once it is decided.`,
  );
}

export function presentPayment(p: Payment) {
  return {
    id: p.id,
    object: 'payment',
    amount: p.amount,
    currency: p.currency,
    status: p.status,
    amount_captured: p.amount_captured,
    amount_refunded: p.amount_refunded,
    capture_method: p.capture_method,
    payment_method: p.payment_method,
    processor: p.processor,
    processor_reference: p.processor_reference,
    attempts: p.attempts ?? [],
    failure: p.failure,
    card: p.card,
    capture_before: p.capture_before,
    cancellation_reason: p.cancellation_reason,
    pending_modification: presentModification(p),
    review: p.review ? { id: p.review.id, status: p.review.status, reasons: p.review.reasons } : null,
    settlement: p.settlement ?? null,
    dispute: p.dispute ?? null,
    explanation: explain(p),
    order_id: p.order_id,
    customer: p.customer,
    channel: p.channel,
    description: p.description,
    metadata: p.metadata ?? {},
    created: p.created,
    updated: p.updated,
  };
}
