/**
 * `paystep analytics rebuild [--merchant M]` (docs/routing.md "Approval rollups"): counts in the
 * rollups the payments written before rollups existed. Safe while the stream runs because it does
 * not write rollups itself: it marks each unmarked payment (`rollup = 1`, on condition that it is
 * still unmarked) and the stream router adds contribution(new) − contribution(old) for that change
 * like any other. An unmarked image contributes nothing, so the mark's change adds the payment as
 * it is at that point of its own ordered history, and every later change adds its difference:
 * each payment is counted once whatever runs concurrently, and running it twice marks nothing new.
 */
import { config } from '../shared/config.ts';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { conditionalWrite } from '../store/conditional.ts';
import { indexQuery, queryPages } from '../store/pages.ts';
import { ROLLUP_MARK } from './stream.ts';

export interface RebuildResult {
  merchant_id: string;
  /** Payments of the merchant not yet counted when the rebuild looked. */
  unmarked: number;
  /** Of those, the ones this run marked (the others were marked meanwhile, or are gone). */
  marked: number;
}

export async function rebuildRollups(
  merchantId: string,
  progress: (marked: number) => void = () => {},
): Promise<RebuildResult> {
  const table = config.tableName('main');
  let unmarked = 0;
  let marked = 0;
  for await (const it of queryPages({
    ...indexQuery(table, `MERCHANT#${merchantId}#PAYMENTS`),
    FilterExpression: 'attribute_not_exists(#r)',
    ExpressionAttributeNames: { '#r': ROLLUP_MARK },
    ProjectionExpression: 'pk, sk',
  })) {
    unmarked++;
    const ok = await conditionalWrite(
      new UpdateCommand({
        TableName: table,
        Key: { pk: it.pk, sk: it.sk },
        UpdateExpression: 'SET #r = :one',
        ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(#r)',
        ExpressionAttributeNames: { '#r': ROLLUP_MARK },
        ExpressionAttributeValues: { ':one': 1 },
      }),
    );
    if (ok) marked++;
    if (ok && marked % 500 === 0) progress(marked);
  }
  return { merchant_id: merchantId, unmarked, marked };
}
