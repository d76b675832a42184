/**
 * Payment workflow, "Record the technical failure" / "Record the lapsed authentication": the
 * processor could not be reached after the retries (or the customer never authenticated). The
 * outcome at the processor is not a decline; the failure says so and what to do.
 */
import type { Failure } from '../../processors/types.ts';
import { getPayment, transition } from '../../store/payments.ts';

export async function handler(input: {
  payment_id: string;
  reason: 'technical' | 'authentication_lapsed';
  error?: { Error?: string; Cause?: string };
}) {
  const p = await getPayment(input.payment_id);
  if (!p) throw new Error(`payment ${input.payment_id} not found`);
  if (p.status === 'failed') return { status: 'failed' };
  const failure: Failure =
    input.reason === 'authentication_lapsed'
      ? {
          category: 'authentication',
          code: 'authentication_required',
          processor_code: 'authentication_not_completed',
          message: 'The customer did not complete authentication.',
          explanation:
            'The bank asked the customer to authenticate (3-D Secure) and the customer did not complete it in time.',
          recommended_action: 'Ask the customer to pay again and complete the authentication step.',
          retryable: true,
        }
      : {
          category: 'technical',
          code: 'processor_unavailable',
          processor_code: input.error?.Error ?? 'unknown',
          message: 'The payment could not be processed right now.',
          explanation: `The payment processor could not be reached or did not answer after several attempts (${input.error?.Error ?? 'error'}). The card was not charged by this attempt.`,
          recommended_action:
            'Retry the payment in a few minutes with a new Idempotency-Key; if it persists, check the processor status page.',
          retryable: true,
        };
  await transition(p.id, 'failed', {
    from: ['processing', 'requires_action'],
    set: { failure },
    remove: ['task_token', 'task_token_kind'],
    note: failure.code,
  });
  return { status: 'failed', code: failure.code };
}
