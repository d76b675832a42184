/**
 * Payment workflow, cancel steps ("Cancel with processor", "Cancel the expired authorization",
 * "Cancel the rejected payment", "Cancel after the review window", "Cancel the abandoned
 * authentication"): releases an authorization at the processor when there is one, then moves the
 * payment to `canceled` with the reason. When the processor refuses because the intent is already
 * canceled (it lapsed there first) that is the same result; if it was captured meanwhile, the
 * payment is recorded as captured instead. A processor that only accepts the cancellation of an
 * authorization (Adyen `received`) leaves it pending: the payment stays authorized until the
 * outcome (`cancel_requested`; docs/states.md "Pending capture and cancel").
 */
import { processor } from '../../connectors/registry.ts';
import { pendingOf, type CancelAnswer } from '../../connectors/modifications.ts';
import { ProcessorRequestError } from '../../connectors/types.ts';
import type { Payment } from '../../domain/payment.ts';
import {
  addEvent,
  clearModification,
  getPayment,
  markModificationPending,
  requestModification,
  transition,
} from '../../store/payments.ts';
import { holdIfIncident } from '../../incidents/backlog.ts';
import { resolveModification, workflowOutcome } from '../modification-outcome.ts';
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
  if (p.status === 'authorized' && p.processor && p.processor_reference)
    return cancelAuthorization(p, input.reason);
  if (p.status === 'requires_action' && p.processor && p.processor_reference) {
    const adapter = await processor(p.processor);
    const started = Date.now();
    try {
      // Nothing is authorized yet: whatever the processor answers, no hold remains to wait for.
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
          from: ['requires_action'],
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

/**
 * Releases an authorization: recorded first (`pending_modification`, with its idempotency key, so
 * every retry cancels once), then asked of the processor. A final answer cancels the payment now;
 * an accepted one (Adyen `received`) leaves it authorized with the cancellation pending until the
 * CANCELLATION notification ("Wait for the cancel outcome"). While the processor is in an `open`
 * incident it is held instead (`held`, "Wait for the processor to return before canceling") and
 * sent with the same key when the incident is resolved (docs/routing.md "The backlog").
 */
async function cancelAuthorization(
  p: Payment,
  reason: string,
): Promise<{ status: string; incident_id?: string }> {
  const pending = await requestModification(p.id, 'cancel', { reason });
  if (!pending || pending.state === 'pending') return statusOf(p.id);
  // The processor is in an open incident: the cancellation waits in the backlog with its key.
  const incident = await holdIfIncident(p, pending);
  if (incident) {
    return { status: 'held', incident_id: incident.id };
  }
  const adapter = await processor(p.processor!);
  const started = Date.now();
  try {
    const r: CancelAnswer = await adapter.cancel(p.processor_reference!, pending.idempotency_key);
    const accepted = pendingOf(r);
    await addEvent(p.id, {
      type: 'attempt',
      processor: p.processor,
      operation: 'cancel',
      outcome: accepted ? 'pending' : 'canceled',
      latency_ms: Date.now() - started,
      processor_status: r.rawStatus,
      modification_reference: accepted?.reference,
    });
    if (accepted) await markModificationPending(p.id, pending.idempotency_key, accepted.reference);
    else
      await resolveModification(p.id, pending, {
        succeeded: true,
        source: `the processor answered ${r.rawStatus}`,
      });
    return statusOf(p.id);
  } catch (err) {
    if (!(err instanceof ProcessorRequestError)) throw err; // outcome unknown: retried with the same key
    const now = await adapter.retrieve(p.processor_reference!).catch(() => undefined);
    await addEvent(p.id, {
      type: 'attempt',
      processor: p.processor,
      operation: 'cancel',
      outcome: 'refused',
      latency_ms: Date.now() - started,
      processor_status: now?.rawStatus,
      message: err.message,
    });
    if (now?.status === 'captured') {
      // The processor had captured it: that is the truth, whatever was asked.
      await clearModification(p.id, pending, { code: err.code ?? 'cancel_refused', message: err.message });
      await transition(p.id, 'captured', {
        from: ['authorized'],
        set: { amount_captured: now.amountCaptured, refundable_remaining: now.amountCaptured },
        remove: ['task_token', 'task_token_kind'],
        note: 'cancel refused: the processor had captured the payment',
      });
      return { status: 'captured' };
    }
    if (now?.status === 'canceled') {
      await resolveModification(p.id, pending, {
        succeeded: true,
        source: 'the processor had canceled it already',
      });
      return statusOf(p.id);
    }
    await clearModification(p.id, pending, { code: err.code ?? 'cancel_refused', message: err.message });
    throw err;
  }
}

async function statusOf(id: string): Promise<{ status: string }> {
  const p = await getPayment(id);
  if (!p) throw new Error(`payment ${id} not found`);
  return { status: workflowOutcome(p) };
}
