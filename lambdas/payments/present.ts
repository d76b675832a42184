/** The public shape of a payment (docs/api.md). Internal attributes never leave the API. */
import { explain, type Payment } from '../domain/payment.ts';

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
    failure: p.failure,
    card: p.card,
    capture_before: p.capture_before,
    cancellation_reason: p.cancellation_reason,
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
