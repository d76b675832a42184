/**
 * Creating a refund: one path for every channel (API, ops CLI, later the console). Reserves the
 * amount on the payment atomically, records the refund (`pending`), and starts its workflow
 * (statemachines/refund.asl.json, execution name = refund id), then waits briefly for the outcome.
 */
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { ApiError, invalidRequest, notFound } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import { logger } from '../shared/logger.ts';
import { getMerchantPayment, addEvent } from '../store/payments.ts';
import {
  createRefundItem,
  finishRefund,
  getRefund,
  release,
  reserve,
  RefundRejected,
  type Refund,
  type RefundReason,
} from '../store/refunds.ts';

export interface CreateRefundInput {
  merchantId: string;
  paymentId: string;
  amount?: number;
  reason?: RefundReason;
  metadata?: Record<string, string>;
  channel: Refund['channel'];
}

export async function createRefund(input: CreateRefundInput): Promise<Refund> {
  const p = await getMerchantPayment(input.merchantId, input.paymentId);
  if (!p)
    throw new ApiError(
      404,
      'not_found',
      'resource_missing',
      `No such payment: '${input.paymentId}'`,
      'payment',
    );
  if (p.status === 'disputed' || p.status === 'charged_back')
    throw new ApiError(
      400,
      'invalid_request_error',
      'charge_disputed',
      'This payment is disputed; refunding it now would pay the customer twice. Resolve the dispute instead.',
      'payment',
    );
  if (!['captured', 'settled', 'partially_refunded'].includes(p.status))
    throw new ApiError(
      400,
      'invalid_request_error',
      'payment_unexpected_state',
      `This payment is ${p.status}; only captured payments can be refunded.`,
      'payment',
    );
  let amount = input.amount;
  if (amount === undefined) {
    const raw = await clients.ddb().send(
      new GetCommand({
        TableName: config.tableName('main'),
        Key: { pk: `PAYMENT#${p.id}`, sk: 'PAYMENT' },
        ConsistentRead: true,
      }),
    );
    amount = (raw.Item?.refundable_remaining as number | undefined) ?? p.amount_captured - p.amount_refunded;
    if (amount <= 0)
      throw invalidRequest('amount_too_large', 'Nothing remains to be refunded on this payment.', 'amount');
  }
  try {
    await reserve(p.id, amount);
  } catch (err) {
    if (err instanceof RefundRejected)
      throw err.code === 'amount_too_large'
        ? invalidRequest('amount_too_large', err.message, 'amount')
        : new ApiError(400, 'invalid_request_error', err.code, err.message, 'payment');
    throw err;
  }
  const nowMs = Date.now();
  const now = Math.floor(nowMs / 1000);
  const id = newId('re');
  const smArn = config.stateMachineArn('refund');
  const refund: Refund = {
    id,
    object: 'refund',
    merchant_id: p.merchant_id,
    payment_id: p.id,
    amount,
    currency: p.currency,
    status: 'pending',
    reason: input.reason ?? null,
    channel: input.channel,
    processor: p.processor ?? 'stripe',
    processor_reference: null,
    failure_reason: null,
    metadata: input.metadata ?? {},
    execution_arn: `${smArn.replace(':stateMachine:', ':execution:')}:${id}`,
    created: now,
    updated: now,
  };
  try {
    await createRefundItem(refund, nowMs);
  } catch (err) {
    await release(p.id, id, amount);
    throw err;
  }
  await addEvent(p.id, {
    type: 'refund',
    refund_id: id,
    amount,
    reason: refund.reason ?? undefined,
    channel: input.channel,
    event: 'requested',
  });
  try {
    await clients.sfn().send(
      new StartExecutionCommand({
        stateMachineArn: smArn,
        name: id,
        input: JSON.stringify({ refund_id: id }),
      }),
    );
  } catch (err) {
    logger.error('could not start the refund workflow', { refundId: id, error: err as Error });
    if (await finishRefund(id, 'failed', 'workflow_unavailable')) await release(p.id, id, amount);
    throw err;
  }
  return waitForRefund(id);
}

export async function waitForRefund(id: string, ms = config.syncWaitMs()): Promise<Refund> {
  const deadline = Date.now() + ms;
  let delay = 5;
  for (;;) {
    const r = await getRefund(id);
    if (!r) throw notFound('refund', id);
    if (r.status !== 'pending' || Date.now() >= deadline) return r;
    await new Promise((res) => setTimeout(res, Math.min(delay, Math.max(1, deadline - Date.now()))));
    delay = Math.min(delay * 2, 100);
  }
}

export function presentRefund(r: Refund) {
  return {
    id: r.id,
    object: 'refund',
    payment: r.payment_id,
    amount: r.amount,
    currency: r.currency,
    status: r.status,
    reason: r.reason,
    failure_reason: r.failure_reason,
    processor: r.processor,
    processor_reference: r.processor_reference,
    channel: r.channel,
    metadata: r.metadata ?? {},
    created: r.created,
    updated: r.updated,
  };
}
