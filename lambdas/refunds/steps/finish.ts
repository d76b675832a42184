/**
 * Refund workflow, "Settle the refund" / "Release the reservation": books a succeeded refund on the
 * payment (partially_refunded / refunded) or gives a failed one's reservation back; then the refund
 * reaches its final status. Each step is idempotent (see lambdas/store/refunds.ts).
 */
import { addEvent } from '../../store/payments.ts';
import { finishRefund, getRefundItem, release, settle } from '../../store/refunds.ts';

export async function handler(input: { refund_id: string; status: string; failure_reason?: string | null }) {
  const r = await getRefundItem(input.refund_id);
  if (!r) throw new Error(`refund ${input.refund_id} not found`);
  const paymentId = r.payment_id as string;
  const amount = r.amount as number;
  if (r.status !== 'pending') return { status: r.status };
  if (input.status === 'succeeded') {
    await settle(paymentId, r.id as string, amount);
    await finishRefund(r.id as string, 'succeeded');
  } else {
    const status = input.status === 'canceled' ? 'canceled' : 'failed';
    await release(paymentId, r.id as string, amount);
    await finishRefund(r.id as string, status, input.failure_reason ?? 'processor_declined');
  }
  await addEvent(paymentId, {
    type: 'refund',
    refund_id: r.id as string,
    amount,
    event: input.status === 'succeeded' ? 'succeeded' : input.status,
  });
  return { status: input.status };
}
