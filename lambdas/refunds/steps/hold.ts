/**
 * Refund workflow, "Wait for the final outcome" (callback): stores the task token on the refund so
 * the refund webhook can resume it. If the webhook already came (its status is recorded), resumes
 * at once.
 */
import { SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import { clients } from '../../shared/aws.ts';
import { getRefundItem, setRefundAttributes } from '../../store/refunds.ts';
import { z } from 'zod';
import { prefixedId, taskHandler, taskToken } from '../../shared/task-input.ts';

const Input = z.object({ refund_id: prefixedId('re'), token: taskToken });

export const handler = taskHandler('refund-hold', Input, async (input) => {
  await setRefundAttributes(input.refund_id, { task_token: input.token });
  const r = await getRefundItem(input.refund_id);
  const known = r?.processor_status;
  if (known === 'succeeded' || known === 'failed' || known === 'canceled')
    await clients.sfn().send(
      new SendTaskSuccessCommand({
        taskToken: input.token,
        output: JSON.stringify({ status: known, failure_reason: r?.processor_failure_reason ?? null }),
      }),
    );
  return { waiting: true };
});
