/**
 * Payment workflow, callback tasks ("Wait for a review decision", "Wait for capture or cancel",
 * "Wait for customer authentication", "Wait for the capture outcome", "Wait for the cancel
 * outcome"): stores the task token on the payment, with what it waits for, so the API (capture,
 * cancel, review decisions), a processor webhook or a modification's outcome can resume it.
 *
 * `modification`: the token is stored only while a capture or cancel is pending. When its outcome
 * was applied before the workflow got here (the notification overtook the workflow), nothing would
 * ever resume the wait, so this step resumes it itself with where the payment now is.
 */
import { SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import { clients } from '../../shared/aws.ts';
import { annotate, addEvent, getPayment, holdForModification } from '../../store/payments.ts';
import { z } from 'zod';
import { prefixedId, taskHandler, taskToken } from '../../shared/task-input.ts';
import { workflowOutcome } from '../modification-outcome.ts';

const Input = z.object({
  payment_id: prefixedId('pay'),
  kind: z.enum(['review', 'capture', 'authentication', 'modification']),
  token: taskToken,
});

export const handler = taskHandler('payment-hold', Input, async (input) => {
  if (input.kind === 'modification') {
    if (!(await holdForModification(input.payment_id, input.token))) {
      const p = await getPayment(input.payment_id);
      if (!p) throw new Error(`payment ${input.payment_id} not found`);
      const status = workflowOutcome(p);
      await clients
        .sfn()
        .send(new SendTaskSuccessCommand({ taskToken: input.token, output: JSON.stringify({ status }) }));
      return { waiting: 'nothing', status };
    }
    const p = await getPayment(input.payment_id);
    await addEvent(input.payment_id, {
      type: 'workflow',
      event: `waiting for the ${p?.pending_modification?.action ?? 'modification'} outcome`,
    });
    return { waiting: input.kind };
  }
  await annotate(input.payment_id, { task_token: input.token, task_token_kind: input.kind });
  await addEvent(input.payment_id, { type: 'workflow', event: `waiting for ${input.kind}` });
  return { waiting: input.kind };
});
