/**
 * Payment workflow, "Flag for attention": the outcome could not be established (processor still
 * unreachable after the long retries, or an unexpected error). The payment keeps its status — it
 * is never failed on a guess — and is marked `needs_attention` with the reason; the sweeper and ops
 * pick it up (`paystep payments attention`).
 */
import { addEvent, annotate, getPayment } from '../../store/payments.ts';

export async function handler(input: { payment_id: string; error?: { Error?: string; Cause?: string } }) {
  const p = await getPayment(input.payment_id);
  if (!p) throw new Error(`payment ${input.payment_id} not found`);
  const reason = `${input.error?.Error ?? 'unknown error'}: ${(input.error?.Cause ?? '').slice(0, 500)}`;
  await annotate(p.id, {
    needs_attention: { reason, since: Math.floor(Date.now() / 1000), status: p.status },
  });
  await addEvent(p.id, { type: 'workflow', event: 'needs_attention', reason });
  return { status: p.status, needs_attention: true };
}
