/**
 * Payment workflow, "Flag for attention" and "Record that the outcome is unexpected": the outcome
 * could not be established (processor still unreachable after the long retries, an unexpected error,
 * a step that refused its input), or a Choice met an outcome it does not know (`UnexpectedOutcome`,
 * with the workflow state that led there). The payment keeps its status — it is never failed on a
 * guess — and is marked `needs_attention` with the reason; the sweeper and ops pick it up
 * (`paystep payments attention`).
 */
import { z } from 'zod';
import { addEvent, annotate, getPayment } from '../../store/payments.ts';
import { caughtError, prefixedId, taskHandler } from '../../shared/task-input.ts';

const Input = z.object({
  payment_id: prefixedId('pay'),
  error: caughtError.optional(),
  /** The workflow's state when a Choice met an unexpected outcome (everything it decided on). */
  workflow_state: z.record(z.string(), z.unknown()).optional(),
});

export const handler = taskHandler('payment-flag', Input, async (input) => {
  const p = await getPayment(input.payment_id);
  if (!p) throw new Error(`payment ${input.payment_id} not found`);
  let reason = `${input.error?.Error ?? 'unknown error'}: ${(input.error?.Cause ?? '').slice(0, 500)}`;
  if (input.workflow_state) {
    const { payment_id: _id, ...state } = input.workflow_state;
    reason += ` Workflow state: ${JSON.stringify(state).slice(0, 500)}`;
  }
  await annotate(p.id, {
    needs_attention: { reason, since: Math.floor(Date.now() / 1000), status: p.status },
  });
  await addEvent(p.id, { type: 'workflow', event: 'needs_attention', reason });
  return { status: p.status, needs_attention: true };
});
