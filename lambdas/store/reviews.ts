/**
 * Manual reviews (docs/states.md, `pending_review`; docs/runbooks): one item per review, keyed by the review id that is
 * derived from the payment id (`rv_<payment id suffix>`), so a retried workflow step writes the
 * same review, never a second one.
 *
 *   pk REVIEW#<rv_id>  sk REVIEW   { id, payment_id, merchant_id, reasons, status, created, decided? }
 */
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';

export type ReviewStatus = 'open' | 'approved' | 'rejected' | 'expired';

export interface Review {
  id: string;
  payment_id: string;
  merchant_id: string;
  reasons: string[];
  status: ReviewStatus;
  created?: number;
  decided?: number;
}

const table = () => config.tableName('main');
const key = (id: string) => ({ pk: `REVIEW#${id}`, sk: 'REVIEW' });

/** The review id of a payment's review. */
export const reviewIdFor = (paymentId: string) => `rv_${paymentId.slice('pay_'.length)}`;

/** Writes the review as it is now (opened, or decided). */
export async function putReview(r: Review): Promise<void> {
  await clients
    .ddb()
    .send(new PutCommand({ TableName: table(), Item: { ...key(r.id), kind: 'review', ...r } }));
}

export async function getReview(id: string): Promise<Review | undefined> {
  const out = await clients
    .ddb()
    .send(new GetCommand({ TableName: table(), Key: key(id), ConsistentRead: true }));
  if (!out.Item) return undefined;
  const { pk: _pk, sk: _sk, kind: _kind, ...review } = out.Item;
  return review as Review;
}

/** The review if it belongs to the merchant (another merchant's review reads as missing). */
export async function getMerchantReview(merchantId: string, id: string): Promise<Review | undefined> {
  if (!/^rv_[0-9A-Za-z]{10,40}$/.test(id)) return undefined;
  const r = await getReview(id);
  return r && r.merchant_id === merchantId ? r : undefined;
}
