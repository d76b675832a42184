/**
 * Refund workflow, "Settle the refund" / "Release the reservation": books a succeeded refund on the
 * payment (partially_refunded / refunded) or gives a failed one's reservation back; then the refund
 * reaches its final status. Each step is idempotent (see lambdas/store/refunds.ts).
 *
 * "Flag the refund for attention" / "Record that the refund outcome is unexpected" (input with
 * `needs_attention` instead of `status`): a step failed, refused its input, or the outcome is not one
 * the workflow knows. Nothing is settled or released on a guess: the refund stays `pending` with its
 * reservation and is marked `needs_attention`; the sweeper applies the processor's answer once the
 * workflow has ended.
 */
import { z } from 'zod';
import { logger } from '../../shared/logger.ts';
import { refundEnded } from '../../shared/metrics.ts';
import { caughtError, prefixedId, taskHandler } from '../../shared/task-input.ts';
import { addEvent } from '../../store/payments.ts';
import { finishRefund, getRefundItem, release, setRefundAttributes, settle } from '../../store/refunds.ts';

const Finish = z.object({
  refund_id: prefixedId('re'),
  status: z.enum(['succeeded', 'failed', 'canceled']),
  failure_reason: z.string().nullish(),
});
const Flag = z.object({
  refund_id: prefixedId('re'),
  needs_attention: caughtError,
  /** The workflow's state when "Is the outcome final?" met an outcome it does not know. */
  workflow_state: z.record(z.string(), z.unknown()).optional(),
});
const flag = taskHandler('refund-finish', Flag, async (input) => {
  const r = await getRefundItem(input.refund_id);
  if (!r) throw new Error(`refund ${input.refund_id} not found`);
  if (r.status !== 'pending') return { status: r.status as string };
  const e = input.needs_attention;
  let reason = `${e.Error ?? 'unknown error'}: ${(e.Cause ?? '').slice(0, 500)}`;
  if (input.workflow_state) {
    const { refund_id: _id, ...state } = input.workflow_state;
    reason += ` Workflow state: ${JSON.stringify(state).slice(0, 500)}`;
  }
  await setRefundAttributes(input.refund_id, {
    needs_attention: { reason, since: Math.floor(Date.now() / 1000) },
  });
  await addEvent(r.payment_id as string, {
    type: 'refund',
    refund_id: input.refund_id,
    event: 'needs_attention',
    reason,
  });
  logger.error('refund needs attention', { refundId: input.refund_id, reason });
  return { status: 'pending', needs_attention: true };
});

const finish = taskHandler('refund-finish', Finish, async (input) => {
  const r = await getRefundItem(input.refund_id);
  if (!r) throw new Error(`refund ${input.refund_id} not found`);
  const paymentId = r.payment_id as string;
  const amount = r.amount as number;
  if (r.status !== 'pending') return { status: r.status as string };
  if (input.status === 'succeeded') {
    await settle(paymentId, r.id as string, amount);
    if (await finishRefund(r.id as string, 'succeeded')) refundEnded(r.processor as string, 'succeeded');
  } else {
    await release(paymentId, r.id as string, amount);
    if (await finishRefund(r.id as string, input.status, input.failure_reason ?? 'processor_declined'))
      refundEnded(r.processor as string, input.status);
  }
  await addEvent(paymentId, {
    type: 'refund',
    refund_id: r.id as string,
    amount,
    event: input.status,
  });
  return { status: input.status };
});

/** Flagging when the input carries `needs_attention`, settling or releasing otherwise. */
export const handler = (event: unknown) =>
  typeof event === 'object' && event !== null && 'needs_attention' in event ? flag(event) : finish(event);
