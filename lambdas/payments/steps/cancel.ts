/**
 * Payment workflow, cancel steps ("Cancel with processor", "Cancel the expired authorization",
 * "Cancel the rejected payment", "Cancel after the review window"): releases an authorization at
 * the processor when there is one, then moves the payment to `canceled` with the reason.
 */
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../../shared/aws.ts';
import { config } from '../../shared/config.ts';
import { processor } from '../../processors/registry.ts';
import { addEvent, getPayment, transition } from '../../store/payments.ts';

export async function handler(input: { payment_id: string; reason: string }) {
  const p = await getPayment(input.payment_id);
  if (!p) throw new Error(`payment ${input.payment_id} not found`);
  if (p.status === 'canceled') return { status: 'canceled' };
  if ((p.status === 'authorized' || p.status === 'requires_action') && p.processor && p.processor_reference) {
    const adapter = await processor(p.processor);
    const started = Date.now();
    const r = await adapter.cancel(p.processor_reference, `${p.id}:cancel`);
    await addEvent(p.id, {
      type: 'attempt',
      processor: p.processor,
      operation: 'cancel',
      outcome: 'canceled',
      latency_ms: Date.now() - started,
      processor_status: r.rawStatus,
    });
  }
  let review = p.review;
  if (review && review.status === 'open') {
    review = { ...review, status: input.reason === 'review_expired' ? 'expired' : 'rejected' };
    await clients.ddb().send(
      new PutCommand({
        TableName: config.tableName('main'),
        Item: {
          pk: `REVIEW#${review.id}`,
          sk: 'REVIEW',
          kind: 'review',
          id: review.id,
          payment_id: p.id,
          merchant_id: p.merchant_id,
          reasons: review.reasons,
          status: review.status,
          decided: Math.floor(Date.now() / 1000),
        },
      }),
    );
  }
  await transition(p.id, 'canceled', {
    from: ['authorized', 'pending_review', 'requires_action', 'processing'],
    set: { cancellation_reason: input.reason, review: review ?? undefined },
    remove: ['task_token', 'task_token_kind'],
    note: `canceled: ${input.reason}`,
  });
  return { status: 'canceled', reason: input.reason };
}
