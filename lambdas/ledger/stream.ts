/**
 * Stream consumer: turns changes of payment and dispute items into journal entries (idempotent,
 * deterministic ids: see lambdas/ledger/domain.ts), keeps the processor-reference index that
 * reconciliation matches by, and notes which merchants had activity on which day (for the daily
 * reports). A redelivered or reordered record adds nothing.
 */
import { getPayment } from '../store/payments.ts';
import { markActivity, recordEntry } from '../store/ledger.ts';
import { linkReference } from '../store/reconciliation.ts';
import type { StreamChange, StreamConsumer } from '../stream/consumers.ts';
import { disputePaymentId, entriesFromChange, touchesMoney, type DisputeContext } from './domain.ts';

const day = (epochSeconds: unknown) =>
  new Date((typeof epochSeconds === 'number' ? epochSeconds : Date.now() / 1000) * 1000)
    .toISOString()
    .slice(0, 10);

const num = (v: unknown) => (typeof v === 'number' ? v : 0);

async function indexReference(old: Record<string, unknown> | undefined, img: Record<string, unknown>) {
  const reference = img.processor_reference;
  const processor = img.processor;
  if (typeof reference !== 'string' || !reference || typeof processor !== 'string' || !processor) return;
  const firstSeen = old?.processor_reference !== reference;
  const firstCapture = num(old?.amount_captured) === 0 && num(img.amount_captured) > 0;
  if (!firstSeen && !firstCapture) return;
  await linkReference({
    processor,
    reference,
    payment_id: String(img.id),
    merchant_id: String(img.merchant_id),
    currency: String(img.currency),
    captured_on: num(img.amount_captured) > 0 ? day(img.updated) : undefined,
  });
}

export async function handleLedgerChange(change: StreamChange): Promise<number> {
  const img = change.newImage;
  if (!img || change.eventName === 'REMOVE') return 0;
  if (img.kind === 'payment') {
    await indexReference(change.oldImage, img);
    if (change.eventName === 'INSERT' && typeof img.merchant_id === 'string')
      await markActivity(day(img.created), img.merchant_id);
  }
  if (!touchesMoney(change)) return 0;
  let ctx: DisputeContext = {};
  if (img.kind === 'dispute' && (!img.merchant_id || !img.processor || !img.currency)) {
    const paymentId = disputePaymentId(img);
    const p = paymentId ? await getPayment(paymentId) : undefined;
    if (p)
      ctx = {
        merchant_id: p.merchant_id,
        processor: p.processor ?? undefined,
        currency: p.currency,
        processor_reference: p.processor_reference,
      };
  }
  const entries = entriesFromChange(
    {
      eventName: change.eventName,
      oldImage: change.oldImage,
      newImage: img,
      approximateCreation: change.record?.dynamodb?.ApproximateCreationDateTime,
    },
    ctx,
  );
  let added = 0;
  for (const e of entries) if (await recordEntry(e)) added++;
  return added;
}

export const ledgerConsumer: StreamConsumer = {
  name: 'ledger',
  async handle(change) {
    await handleLedgerChange(change);
  },
};
