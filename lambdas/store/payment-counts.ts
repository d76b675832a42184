/**
 * Bounded counts of a merchant's recent payments for the console's home page: one Query page of the
 * merchant's payments index (lambdas/store/payments.ts, `gsi1`, newest first), counted by
 * DynamoDB (`Select: COUNT`), so a page view reads a known number of items whatever the history.
 */
import type { PaymentStatus } from '../domain/payment.ts';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';

/**
 * How many of the merchant's newest `window` payments are in `status`; `complete` when the window
 * held the merchant's whole history (the count is then exact).
 */
export async function countRecentInStatus(
  merchantId: string,
  status: PaymentStatus,
  window: number,
): Promise<{ count: number; complete: boolean }> {
  const out = await clients.ddb().send(
    new QueryCommand({
      TableName: config.tableName('main'),
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :pk',
      FilterExpression: '#s = :s',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':pk': `MERCHANT#${merchantId}#PAYMENTS`, ':s': status },
      ScanIndexForward: false,
      Select: 'COUNT',
      Limit: window,
    }),
  );
  return { count: out.Count ?? 0, complete: !out.LastEvaluatedKey };
}
