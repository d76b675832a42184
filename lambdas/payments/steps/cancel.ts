/**
 * Payment workflow, cancel steps ("Cancel with processor", "Cancel the expired authorization",
 * "Cancel the rejected payment", "Cancel after the review window", "Cancel the abandoned
 * authentication"): releases an authorization at the processor when there is one, then moves the
 * payment to `canceled` with the reason. When the processor refuses because the intent is already
 * canceled (it lapsed there first) that is the same result; if it was captured meanwhile, the
 * payment is recorded as captured instead.
 */
import { processor } from '../../connectors/registry.ts';
import { ProcessorRequestError } from '../../connectors/types.ts';
import { addEvent, getPayment, transition } from '../../store/payments.ts';
import { putReview } from '../../store/reviews.ts';
import { z } from 'zod';
import { prefixedId, taskHandler } from '../../shared/task-input.ts';

/** docs/api.md, `cancellation_reason`: the merchant's reasons and the workflow's own. */
export const CANCELLATION_REASONS = [
  'requested_by_customer',
  'duplicate',
  'fraudulent',
  'abandoned',
  'review_rejected',
  'review_expired',
  'authorization_expired',
] as const;

const Input = z.object({ payment_id: prefixedId('pay'), reason: z.enum(CANCELLATION_REASONS) });

export const handler = taskHandler('payment-cancel', Input, async (input) => {
  const p = await getPayment(input.payment_id);
  if (!p) throw new Error(`payment ${input.payment_id} not found`);
  if (p.status === 'canceled') return { status: 'canceled' };
  if ((p.status === 'authorized' || p.status === 'requires_action') && p.processor && p.processor_reference) {
    const adapter = await processor(p.processor);
    const started = Date.now();
    try {
      const r = await adapter.cancel(p.processor_reference, `${p.id}:cancel`);
      await addEvent(p.id, {
        type: 'attempt',
        processor: p.processor,
        operation: 'cancel',
        outcome: 'canceled',
        latency_ms: Date.now() - started,
        processor_status: r.rawStatus,
      });
    } catch (err) {
      if (!(err instanceof ProcessorRequestError)) throw err;
      const now = await adapter.retrieve(p.processor_reference);
      await addEvent(p.id, {
        type: 'attempt',
        processor: p.processor,
        operation: 'cancel',
        outcome: 'refused',
        latency_ms: Date.now() - started,
        processor_status: now.rawStatus,
        message: err.message,
      });
      if (now.status === 'captured') {
        await transition(p.id, 'captured', {
          from: ['authorized', 'requires_action'],
          set: { amount_captured: now.amountCaptured, refundable_remaining: now.amountCaptured },
          remove: ['task_token', 'task_token_kind'],
          note: 'cancel refused: the processor had captured the payment',
        });
        return { status: 'captured' };
      }
      if (now.status !== 'canceled') throw err;
    }
  }
  let review = p.review;
  if (review && review.status === 'open') {
    review = { ...review, status: input.reason === 'review_expired' ? 'expired' : 'rejected' };
    await putReview({
      id: review.id,
      payment_id: p.id,
      merchant_id: p.merchant_id,
      reasons: review.reasons,
      status: review.status,
      decided: Math.floor(Date.now() / 1000),
    });
  }
  await transition(p.id, 'canceled', {
    from: ['authorized', 'pending_review', 'requires_action', 'processing'],
    set: { cancellation_reason: input.reason, review: review ?? undefined },
    remove: ['task_token', 'task_token_kind'],
    note: `canceled: ${input.reason}`,
  });
  return { status: 'canceled', reason: input.reason };
});
