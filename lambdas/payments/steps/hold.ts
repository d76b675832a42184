/**
 * Payment workflow, callback tasks ("Wait for a review decision", "Wait for capture or cancel",
 * "Wait for customer authentication"): stores the task token on the payment, with what it waits
 * for, so the API (capture, cancel, review decisions) or a processor webhook can resume it.
 */
import { annotate, addEvent } from '../../store/payments.ts';
import { z } from 'zod';
import { prefixedId, taskHandler, taskToken } from '../../shared/task-input.ts';

const Input = z.object({
  payment_id: prefixedId('pay'),
  kind: z.enum(['review', 'capture', 'authentication']),
  token: taskToken,
});

export const handler = taskHandler('payment-hold', Input, async (input) => {
  await annotate(input.payment_id, { task_token: input.token, task_token_kind: input.kind });
  await addEvent(input.payment_id, { type: 'workflow', event: `waiting for ${input.kind}` });
  return { waiting: input.kind };
});
