/**
 * Approval rollup maintenance from the main table's stream (docs/routing.md "Approval rollups"):
 * for each change of a payment, contribution(new image) − contribution(old image), summed per
 * rollup item (the merchant's day of the payment's creation: combinations and minutes), then one
 * conditional UpdateItem per item for the whole batch (lambdas/store/rollups.ts), exactly once
 * per shard although the stream delivers at least once. Only `kind = payment` images count, and
 * only those marked `rollup` (every payment created since rollups exist; `paystep analytics
 * rebuild` marks older ones, through the stream), so rollup writes never feed back into rollups.
 */
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { contributionOf } from '../domain/analytics.ts';
import { toPayment } from '../store/payments.ts';
import { applyRollupDeltas, dayKey, type RecordDelta } from '../store/rollups.ts';
import { ComboSums, minuteAttributes, paddedSequence } from './rollup-format.ts';

/** The payment-item attribute that says the payment is counted in the rollups. */
export const ROLLUP_MARK = 'rollup';

type Image = Record<string, unknown>;

/** Whether a payment image counts in the rollups. */
export const counted = (img: Image | undefined): img is Image =>
  img?.kind === 'payment' && img[ROLLUP_MARK] === 1 && typeof img.merchant_id === 'string';

const createdMsOf = (img: Image) =>
  typeof img.created_ms === 'number' ? img.created_ms : Number(img.created) * 1000;

interface ItemDeltas {
  key: Record<string, string>;
  merchantId: string;
  deltas: RecordDelta[];
}

/** Every rollup item's deltas of the records, per item in record order. Pure. */
export function rollupDeltas(records: DynamoDBRecord[]): ItemDeltas[] {
  const items = new Map<string, ItemDeltas>();
  const img = (x: unknown) => (x ? (unmarshall(x as Record<string, AttributeValue>) as Image) : undefined);
  for (const r of records) {
    const sides: [Image, 1 | -1][] = [];
    const oldImage = img(r.dynamodb?.OldImage);
    const newImage = img(r.dynamodb?.NewImage);
    if (counted(oldImage)) sides.push([oldImage, -1]);
    if (counted(newImage)) sides.push([newImage, 1]);
    if (!sides.length) continue;
    const seq = paddedSequence(r.dynamodb?.SequenceNumber ?? '');
    const perItem = new Map<
      string,
      { key: Record<string, string>; merchantId: string; sums: ComboSums; minutes: Map<string, number> }
    >();
    for (const [image, sign] of sides) {
      const merchantId = image.merchant_id as string;
      const createdMs = createdMsOf(image);
      const c = contributionOf(toPayment(image));
      const key = dayKey(merchantId, new Date(createdMs).toISOString().slice(0, 10));
      const k = `${key.pk}\u0000${key.sk}`;
      const d = perItem.get(k) ?? { key, merchantId, sums: new ComboSums(), minutes: new Map() };
      d.sums.add(c, sign);
      for (const [n, v] of minuteAttributes(c, createdMs, sign))
        d.minutes.set(n, (d.minutes.get(n) ?? 0) + v);
      perItem.set(k, d);
    }
    for (const [k, x] of perItem) {
      const a = x.sums.attributes();
      const counters = [...a.counters, ...[...x.minutes].filter(([, v]) => v !== 0)];
      if (!counters.length) continue; // the change did not move any count
      const it = items.get(k) ?? { key: x.key, merchantId: x.merchantId, deltas: [] };
      it.deltas.push({ seq, counters, once: [...a.keys] });
      items.set(k, it);
    }
  }
  return [...items.values()];
}

/**
 * Applies the records (a prefix of one shard's batch that the stream will not deliver again
 * after this batch succeeds) to the rollups. Throws if a write fails: the batch is retried and
 * what was already applied is not applied again. Returns the UpdateItem calls that wrote.
 */
export async function maintainRollups(shard: string, records: DynamoDBRecord[]): Promise<number> {
  const items = rollupDeltas(records);
  const written = await Promise.all(
    items.map((i) => applyRollupDeltas(i.key, i.merchantId, shard, i.deltas)),
  );
  return written.reduce((a, b) => a + b, 0);
}
