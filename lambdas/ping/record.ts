/**
 * Ping workflow, "Record the ping" (callback task): stores the ping with the workflow's task token.
 * The table's stream carries the new item to the reports queue; the report writer resumes the
 * workflow with the token. Idempotent: a retried invocation finds the item and changes nothing.
 */
import { recordPing } from '../store/pings.ts';
import { prefixedId, taskHandler, taskToken } from '../shared/task-input.ts';
import { z } from 'zod';

const Input = z.object({
  ping_id: prefixedId('png'),
  merchant_id: z.string().min(1),
  message: z.string(),
  token: taskToken,
});
export type RecordPingInput = z.output<typeof Input>;

export const handler = taskHandler('ping-record', Input, async (input): Promise<{ recorded: boolean }> => {
  const recorded = await recordPing({
    id: input.ping_id,
    merchantId: input.merchant_id,
    message: input.message,
    taskToken: input.token,
  });
  return { recorded };
});
