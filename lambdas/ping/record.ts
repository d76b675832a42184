/**
 * Ping workflow, "Record the ping" (callback task): stores the ping with the workflow's task token.
 * The table's stream carries the new item to the reports queue; the report writer resumes the
 * workflow with the token. Idempotent: a retried invocation finds the item and changes nothing.
 */
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
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
  const now = Math.floor(Date.now() / 1000);
  try {
    await clients.ddb().send(
      new PutCommand({
        TableName: config.tableName('main'),
        Item: {
          pk: `PING#${input.ping_id}`,
          sk: 'PING',
          kind: 'ping',
          id: input.ping_id,
          merchant_id: input.merchant_id,
          message: input.message,
          status: 'recorded',
          task_token: input.token,
          created: now,
          updated: now,
          gsi1pk: `MERCHANT#${input.merchant_id}#PING`,
          gsi1sk: `${now}#${input.ping_id}`,
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
    return { recorded: true };
  } catch (err) {
    if (err instanceof ConditionalCheckFailedException) return { recorded: false };
    throw err;
  }
});
