/**
 * `paystep analytics rebuild [--merchant M]` (docs/routing.md "Approval rollups"): counts in the
 * rollups the payments written before rollups existed. Safe while the stream runs because it does
 * not write rollups itself: it marks each unmarked payment (`rollup = 1`, on condition that it is
 * still unmarked) and the stream router adds contribution(new) − contribution(old) for that change
 * like any other. An unmarked image contributes nothing, so the mark's change adds the payment as
 * it is at that point of its own ordered history, and every later change adds its difference:
 * each payment is counted once whatever runs concurrently, and running it twice marks nothing new.
 *
 * It also removes the 5-minute counters of day items before yesterday (only the home page's last
 * hour reads them; the stream router removes them as days pass), and folds the per-minute counters
 * of newer day items written before the counters went to 5-minute buckets (`m|0931|p` into `m|0930|p`, rollup-format.ts `BUCKET_MINUTES`): per item, in chunks,
 * one UpdateItem that ADDs each minute's value to its bucket and REMOVEs the minute, on condition
 * that the minutes still hold the values read (the router's concurrent ADDs touch only bucket
 * names, and ADD commutes), so nothing is counted twice or lost; a second run finds nothing to fold.
 */
import { config } from '../shared/config.ts';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { BUCKET_MINUTES, bucketName } from './rollup-format.ts';
import { dropBuckets } from '../store/rollups.ts';
import { conditionalWrite } from '../store/conditional.ts';
import { indexQuery, queryPages } from '../store/pages.ts';
import { ROLLUP_MARK } from './stream.ts';

export interface RebuildResult {
  merchant_id: string;
  /** Day items whose per-minute counters were folded into 5-minute buckets. */
  folded_days: number;
  /** Day items before yesterday whose time counters were removed (only the last hour reads them). */
  dropped_days: number;
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
  const { folded, dropped } = await foldMinutes(merchantId);
  return { merchant_id: merchantId, folded_days: folded, dropped_days: dropped, unmarked, marked };
}

const MINUTE = /^m\|(\d{4})\|([pad])$/;
/** Minutes folded per UpdateItem (an expression stays far under DynamoDB's 4 KB). */
const FOLD_CHUNK = 40;

/**
 * Folds the day items' per-minute counters into 5-minute buckets, and removes them from items
 * before yesterday (store/rollups.ts `dropBuckets`); returns the items changed.
 */
async function foldMinutes(merchantId: string): Promise<{ folded: number; dropped: number }> {
  const table = config.tableName('main');
  const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
  let days = 0;
  let dropped = 0;
  for await (const it of queryPages({
    TableName: table,
    ConsistentRead: true,
    KeyConditionExpression: 'pk = :pk AND begins_with(sk, :day)',
    ExpressionAttributeValues: { ':pk': `ROLLUP#${merchantId}`, ':day': 'DAY#' },
  })) {
    if (String(it.sk).slice('DAY#'.length) < yesterday) {
      if (await dropBuckets(merchantId, String(it.sk).slice('DAY#'.length), it)) dropped++;
      continue;
    }
    const stray = Object.entries(it).flatMap(([name, v]) => {
      const m = MINUTE.exec(name);
      if (!m || typeof v !== 'number' || Number(m[1]) % BUCKET_MINUTES === 0) return [];
      return [{ name, value: v, bucket: `m|${bucketName(Number(m[1]))}|${m[2]}` }];
    });
    if (!stray.length) continue;
    for (let i = 0; i < stray.length; i += FOLD_CHUNK) {
      const chunk = stray.slice(i, i + FOLD_CHUNK);
      const sums = new Map<string, number>();
      for (const x of chunk) sums.set(x.bucket, (sums.get(x.bucket) ?? 0) + x.value);
      const names: Record<string, string> = {};
      const values: Record<string, number> = {};
      chunk.forEach((x, j) => {
        names[`#m${j}`] = x.name;
        values[`:m${j}`] = x.value;
      });
      [...sums].forEach(([bucket, v], j) => {
        names[`#b${j}`] = bucket;
        values[`:b${j}`] = v;
      });
      // A concurrent change of these minutes (none is expected: writers now use buckets) fails the
      // condition: the next run folds them.
      await conditionalWrite(
        new UpdateCommand({
          TableName: table,
          Key: { pk: it.pk, sk: it.sk },
          UpdateExpression: `ADD ${[...sums].map((_, j) => `#b${j} :b${j}`).join(', ')} REMOVE ${chunk.map((_, j) => `#m${j}`).join(', ')}`,
          ConditionExpression: chunk.map((_, j) => `#m${j} = :m${j}`).join(' AND '),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
    }
    days++;
  }
  return { folded: days, dropped };
}
