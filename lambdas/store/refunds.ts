/**
 * Refunds, and the money they take from a payment.
 *
 *   pk REFUND#<re_id>  sk REFUND                    the refund (kind 'refund')
 *   gsi1pk PAYMENT#<pay_id>#REFUNDS  gsi1sk <created ms>#<re_id>   refunds of a payment
 *   gsi2pk OPEN#refund#<shard>  gsi2sk <ms>#<re_id>   while pending (lambdas/store/open-items.ts)
 *   pk REFUNDREF#<processor>#<processor refund id>  sk REFUNDREF   → refund id (webhooks)
 *
 * The refundable amount lives on the payment item as `refundable_remaining` (= captured − refunded
 * − reserved). A refund *reserves* its amount with one conditional update
 * (`refundable_remaining >= :amount`), so concurrent refunds can never together exceed what was
 * captured: DynamoDB serializes the updates of one item. The reservation is later *settled*
 * (amount_refunded += amount) or *released* (refundable_remaining += amount). Both are
 * idempotent: the refund id is added to a set on the payment in the same update, under the
 * condition that it is not there yet.
 */
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { indexQuery, queryAll } from './pages.ts';
import { clients } from '../shared/aws.ts';
import { conditionalUpdate, conditionalWrite, putIfAbsent } from './conditional.ts';
import { updateExpression } from './expressions.ts';
import { withoutInternal } from './items.ts';
import { openIndex } from './open-items.ts';
import { config } from '../shared/config.ts';
import { PaystepError } from '../shared/errors.ts';
import { getPayment, transition } from './payments.ts';
import type { Payment } from '../domain/payment.ts';

export type RefundStatus = 'pending' | 'succeeded' | 'failed' | 'canceled';
export type RefundReason = 'duplicate' | 'fraudulent' | 'requested_by_customer';

export interface Refund {
  id: string;
  object: 'refund';
  merchant_id: string;
  payment_id: string;
  amount: number;
  currency: string;
  status: RefundStatus;
  reason: RefundReason | null;
  channel: 'api' | 'cli' | 'console';
  processor: string;
  processor_reference: string | null;
  failure_reason: string | null;
  metadata: Record<string, string>;
  execution_arn: string;
  /** Held in an incident's backlog while its processor is in an open incident (epoch ms). */
  held?: { incident_id: string; since: number } | null;
  created: number;
  updated: number;
}

const table = () => config.tableName('main');
const key = (id: string) => ({ pk: `REFUND#${id}`, sk: 'REFUND' });
const INTERNAL = ['task_token', 'processor_status'];

export function toRefund(item: Record<string, unknown>): Refund {
  return withoutInternal(item, INTERNAL) as unknown as Refund;
}

export class RefundRejected extends PaystepError {
  override name = 'RefundRejected';
  override readonly code: 'amount_too_large' | 'payment_unexpected_state';
  constructor(code: RefundRejected['code'], message: string) {
    super(message, { code });
    this.code = code;
  }
}

const REFUNDABLE = ['captured', 'settled', 'partially_refunded'];

/**
 * Takes `amount` out of the payment's refundable amount for refund `refundId`, once: the refund
 * id joins the payment's `refunds_reserved` set in the same conditional update, so a request
 * resumed after a crash that reserves again for the same refund changes nothing. Throws
 * RefundRejected when the payment cannot give that much. A payment captured before refundable
 * amounts were tracked is initialised from its captured and refunded amounts first.
 */
export async function reserve(paymentId: string, refundId: string, amount: number): Promise<void> {
  const ddb = clients.ddb();
  const paymentKey = { pk: `PAYMENT#${paymentId}`, sk: 'PAYMENT' };
  const attempt = () =>
    conditionalWrite(
      new UpdateCommand({
        TableName: table(),
        Key: paymentKey,
        UpdateExpression: 'SET refundable_remaining = refundable_remaining - :a ADD refunds_reserved :r',
        ConditionExpression:
          '#s IN (:c, :st, :pr) AND refundable_remaining >= :a AND NOT contains(refunds_reserved, :rid)',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: {
          ':a': amount,
          ':r': new Set([refundId]),
          ':rid': refundId,
          ':c': 'captured',
          ':st': 'settled',
          ':pr': 'partially_refunded',
        },
      }),
    );
  for (let round = 0; round < 2; round++) {
    if (await attempt()) return;
    const p = await ddb.send(new GetCommand({ TableName: table(), Key: paymentKey, ConsistentRead: true }));
    const item = p.Item;
    if ((item?.refunds_reserved as Set<string> | undefined)?.has(refundId)) return; // reserved before
    if (!item || !REFUNDABLE.includes(item.status as string))
      throw new RefundRejected(
        'payment_unexpected_state',
        `This payment is ${item?.status ?? 'missing'}; only captured payments can be refunded.`,
      );
    if (item.refundable_remaining !== undefined || round > 0)
      throw new RefundRejected(
        'amount_too_large',
        `Refund amount ${amount} is greater than what remains refundable on this payment (${item.refundable_remaining ?? 0}).`,
      );
    await conditionalWrite(
      new UpdateCommand({
        TableName: table(),
        Key: paymentKey,
        UpdateExpression: 'SET refundable_remaining = amount_captured - amount_refunded',
        ConditionExpression: 'attribute_not_exists(refundable_remaining)',
      }),
    );
  }
}

/**
 * What can still be refunded on the payment now: its `refundable_remaining` (reservations taken
 * out), or, for a payment from before refundable amounts were tracked, captured − refunded.
 */
export async function refundableRemaining(
  p: Pick<Payment, 'id' | 'amount_captured' | 'amount_refunded'>,
): Promise<number> {
  const out = await clients.ddb().send(
    new GetCommand({
      TableName: table(),
      Key: { pk: `PAYMENT#${p.id}`, sk: 'PAYMENT' },
      ProjectionExpression: 'refundable_remaining',
      ConsistentRead: true,
    }),
  );
  return (out.Item?.refundable_remaining as number | undefined) ?? p.amount_captured - p.amount_refunded;
}

/** Whether refund `refundId` holds a reservation on the payment (reserved and not released). */
export async function hasReservation(paymentId: string, refundId: string): Promise<boolean> {
  const p = await clients.ddb().send(
    new GetCommand({
      TableName: table(),
      Key: { pk: `PAYMENT#${paymentId}`, sk: 'PAYMENT' },
      ProjectionExpression: 'refunds_reserved, refunds_released',
      ConsistentRead: true,
    }),
  );
  const reserved = p.Item?.refunds_reserved as Set<string> | undefined;
  const released = p.Item?.refunds_released as Set<string> | undefined;
  return Boolean(reserved?.has(refundId) && !released?.has(refundId));
}

/**
 * Gives a failed or canceled refund's reservation back to the payment, once, and only if that
 * refund reserved it (payments from before reservations were recorded per refund have no set).
 */
export async function release(paymentId: string, refundId: string, amount: number): Promise<void> {
  await conditionalWrite(
    new UpdateCommand({
      TableName: table(),
      Key: { pk: `PAYMENT#${paymentId}`, sk: 'PAYMENT' },
      UpdateExpression: 'SET refundable_remaining = refundable_remaining + :a ADD refunds_released :r',
      ConditionExpression:
        'attribute_exists(pk) AND NOT contains(refunds_released, :rid) AND (contains(refunds_reserved, :rid) OR attribute_not_exists(refunds_reserved))',
      ExpressionAttributeValues: { ':a': amount, ':r': new Set([refundId]), ':rid': refundId },
    }),
  );
}

/**
 * Books a succeeded refund on the payment (once) and moves the payment to partially_refunded or
 * refunded. Returns the payment's refunded total.
 */
export async function settle(paymentId: string, refundId: string, amount: number): Promise<number> {
  const booked = await conditionalUpdate(
    new UpdateCommand({
      TableName: table(),
      Key: { pk: `PAYMENT#${paymentId}`, sk: 'PAYMENT' },
      // `updated` moves with the amount: the ledger dates the refund's entry by it (docs/finance.md),
      // so without it a refund was booked on the day of the payment's previous change (its capture).
      UpdateExpression: 'SET amount_refunded = amount_refunded + :a, updated = :u ADD refunds_applied :r',
      ConditionExpression: 'attribute_exists(pk) AND NOT contains(refunds_applied, :rid)',
      ExpressionAttributeValues: {
        ':a': amount,
        ':u': Math.floor(Date.now() / 1000),
        ':r': new Set([refundId]),
        ':rid': refundId,
      },
      ReturnValues: 'ALL_NEW',
    }),
  );
  const refunded = booked
    ? (booked.amount_refunded as number)
    : (await getPayment(paymentId))!.amount_refunded; // booked before
  const p = (await getPayment(paymentId))!;
  const target = refunded >= p.amount_captured ? 'refunded' : 'partially_refunded';
  if (
    p.status !== target &&
    p.status !== 'refunded' &&
    p.status !== 'disputed' &&
    p.status !== 'charged_back'
  ) {
    await transition(paymentId, target, {
      from: ['captured', 'settled', 'partially_refunded'],
      note: `refund ${refundId} succeeded`,
    }).catch((err: Error) => {
      if (err.name !== 'TransitionRejected') throw err;
    });
  }
  return refunded;
}

/** Stores a new refund; false if a refund with its id exists (a resumed request wrote it). */
export async function createRefundItem(r: Refund, createdMs: number): Promise<boolean> {
  return putIfAbsent(table(), {
    ...key(r.id),
    kind: 'refund',
    ...r,
    gsi1pk: `PAYMENT#${r.payment_id}#REFUNDS`,
    gsi1sk: `${String(createdMs).padStart(13, '0')}#${r.id}`,
    ...openIndex('refund', r.id, r.status, createdMs).set,
  });
}

export async function getRefund(id: string): Promise<Refund | undefined> {
  const out = await clients
    .ddb()
    .send(new GetCommand({ TableName: table(), Key: key(id), ConsistentRead: true }));
  return out.Item ? toRefund(out.Item) : undefined;
}

export async function getRefundItem(id: string): Promise<Record<string, unknown> | undefined> {
  const out = await clients
    .ddb()
    .send(new GetCommand({ TableName: table(), Key: key(id), ConsistentRead: true }));
  return out.Item;
}

export async function getMerchantRefund(merchantId: string, id: string): Promise<Refund | undefined> {
  if (!/^re_[0-9A-Za-z]{10,40}$/.test(id)) return undefined;
  const r = await getRefund(id);
  return r && r.merchant_id === merchantId ? r : undefined;
}

export async function refundsOfPayment(paymentId: string): Promise<Refund[]> {
  const items = await queryAll(indexQuery(table(), `PAYMENT#${paymentId}#REFUNDS`));
  return items.map(toRefund);
}

/** Records the processor's refund id (and the lookup item webhooks use). */
export async function recordProcessorReference(
  refundId: string,
  processor: string,
  reference: string,
): Promise<void> {
  await clients.ddb().send(
    new PutCommand({
      TableName: table(),
      Item: {
        pk: `REFUNDREF#${processor}#${reference}`,
        sk: 'REFUNDREF',
        kind: 'refund_ref',
        refund_id: refundId,
      },
    }),
  );
  await clients.ddb().send(
    new UpdateCommand({
      TableName: table(),
      Key: key(refundId),
      UpdateExpression: 'SET processor_reference = :r, updated = :now',
      ExpressionAttributeValues: { ':r': reference, ':now': Math.floor(Date.now() / 1000) },
    }),
  );
}

export async function refundIdForReference(
  processor: string,
  reference: string,
): Promise<string | undefined> {
  const out = await clients.ddb().send(
    new GetCommand({
      TableName: table(),
      Key: { pk: `REFUNDREF#${processor}#${reference}`, sk: 'REFUNDREF' },
      ConsistentRead: true,
    }),
  );
  return out.Item?.refund_id as string | undefined;
}

/**
 * pending → final status, once (the same write takes the refund off the open-items index).
 * Returns false when the refund was already final.
 */
export async function finishRefund(
  id: string,
  status: Exclude<RefundStatus, 'pending'>,
  failureReason?: string,
): Promise<boolean> {
  const nowMs = Date.now();
  const index = openIndex('refund', id, status, nowMs);
  return conditionalWrite(
    new UpdateCommand({
      TableName: table(),
      Key: key(id),
      ...updateExpression(
        { status, failure_reason: failureReason ?? null, updated: Math.floor(nowMs / 1000), ...index.set },
        ['task_token', ...index.remove],
        {
          condition: {
            expression: '#s = :pending',
            names: { '#s': 'status' },
            values: { ':pending': 'pending' },
          },
        },
      )!,
    }),
  );
}

export async function setRefundAttributes(id: string, set: Record<string, unknown>): Promise<void> {
  const update = updateExpression(set);
  if (!update) return;
  await clients.ddb().send(
    new UpdateCommand({
      TableName: table(),
      Key: key(id),
      ConditionExpression: 'attribute_exists(pk)',
      ...update,
    }),
  );
}
