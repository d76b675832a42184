/**
 * Ping workflow, "Mark the ping complete": recorded|reported → complete, with the report's key.
 * The condition keeps the move forward-only: a replayed call on a complete ping changes nothing.
 */
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { prefixedId, taskHandler } from '../shared/task-input.ts';
import { z } from 'zod';

const Input = z.object({
  ping_id: prefixedId('png'),
  /** What the report writer resumed the workflow with (lambdas/ping/report.ts). */
  report: z.object({ report_key: z.string().min(1) }),
});

export const handler = taskHandler('ping-complete', Input, async (input) => {
  try {
    await clients.ddb().send(
      new UpdateCommand({
        TableName: config.tableName('main'),
        Key: { pk: `PING#${input.ping_id}`, sk: 'PING' },
        UpdateExpression: 'SET #s = :complete, report_key = :key, updated = :now REMOVE task_token',
        ConditionExpression: 'attribute_exists(pk) AND #s IN (:recorded, :reported)',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: {
          ':complete': 'complete',
          ':recorded': 'recorded',
          ':reported': 'reported',
          ':key': input.report.report_key,
          ':now': Math.floor(Date.now() / 1000),
        },
      }),
    );
  } catch (err) {
    if (!(err instanceof ConditionalCheckFailedException)) throw err;
  }
  return { ping_id: input.ping_id, status: 'complete', report_key: input.report.report_key };
});
