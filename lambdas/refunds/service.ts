/**
 * Creating a refund: one path for every channel (API, ops CLI, later the console). Reserves the
 * amount on the payment atomically, records the refund (`pending`), and starts its workflow
 * (statemachines/refund.asl.json, execution name = refund id), then waits briefly for the outcome.
 */
import { ExecutionAlreadyExists, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { ApiError, invalidRequest, notFound } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import { logger } from '../shared/logger.ts';
import { refundEnded } from '../shared/metrics.ts';
import { isRefundable, type Payment } from '../domain/payment.ts';
import {
  freshProgress,
  idempotent,
  requestHash,
  type RequestProgress,
  type StoredResponse,
} from '../store/idempotency.ts';
import { getMerchantPayment, addEvent } from '../store/payments.ts';
import { parseRefundBody } from './validation.ts';
import {
  createRefundItem,
  finishRefund,
  getRefund,
  refundableRemaining,
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

/**
 * Creates a refund, exactly once per request. The refund id comes from the request's idempotency
 * claim (`progress.resourceId`), and the request records recovery points on the claim:
 *
 *   reserving {payment, amount}  → reserve (keyed by refund id) → refund item → workflow started
 *
 * A request resumed after a crash continues from its last point: the amount it reserved is
 * reserved once (the reservation is keyed by the refund id), the refund item is written once
 * (conditional put), and the workflow is started once (execution name = refund id), so the
 * processor is asked to refund once (its idempotency key is `<refund>:refund` as well).
 */
export async function createRefund(
  input: CreateRefundInput,
  progress: RequestProgress = freshProgress(newId('re')),
): Promise<Refund> {
  const id = progress.resourceId;
  const existing = await getRefund(id);
  if (existing) {
    if (existing.merchant_id !== input.merchantId) throw notFound('refund', id);
    if (existing.status === 'pending') await startRefundWorkflow(existing);
    return waitForRefund(id);
  }
  let p: Payment;
  let amount: number;
  const { payment: reservedFor, amount: reservedAmount } = progress.recoveryData;
  if (
    progress.recoveryPoint === 'reserving' &&
    typeof reservedFor === 'string' &&
    typeof reservedAmount === 'number'
  ) {
    // The first attempt chose the amount (maybe "everything refundable") and may have reserved it.
    const found = await getMerchantPayment(input.merchantId, reservedFor);
    if (!found) throw notFound('payment', reservedFor);
    p = found;
    amount = reservedAmount;
  } else {
    ({ payment: p, amount } = await refundablePayment(input));
    await progress.checkpoint('reserving', { payment: p.id, amount });
  }
  // A refundable payment was captured at a processor (checked above, before anything is reserved).
  const processorName = p.processor;
  if (!processorName)
    throw new ApiError(
      400,
      'invalid_request_error',
      'payment_unexpected_state',
      'This payment was never sent to a processor: there is nothing to refund.',
      'payment',
    );
  try {
    await reserve(p.id, id, amount);
  } catch (err) {
    if (err instanceof RefundRejected)
      throw err.code === 'amount_too_large'
        ? invalidRequest('amount_too_large', err.message, 'amount')
        : new ApiError(400, 'invalid_request_error', err.code, err.message, 'payment');
    throw err;
  }
  const nowMs = Date.now();
  const now = Math.floor(nowMs / 1000);
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
    processor: processorName,
    processor_reference: null,
    failure_reason: null,
    metadata: input.metadata ?? {},
    execution_arn: `${smArn.replace(':stateMachine:', ':execution:')}:${id}`,
    created: now,
    updated: now,
  };
  const created = await createRefundItem(refund, nowMs); // false: a concurrent resume wrote it
  if (created)
    await addEvent(p.id, {
      type: 'refund',
      refund_id: id,
      amount,
      reason: refund.reason ?? undefined,
      channel: input.channel,
      event: 'requested',
    });
  await progress.checkpoint('recorded', { payment: p.id, amount });
  await startRefundWorkflow(refund);
  return waitForRefund(id);
}

/** The payment to refund and the amount, checked against its state (nothing reserved yet). */
async function refundablePayment(input: CreateRefundInput): Promise<{ payment: Payment; amount: number }> {
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
  if (!isRefundable(p.status))
    throw new ApiError(
      400,
      'invalid_request_error',
      'payment_unexpected_state',
      `This payment is ${p.status}; only captured payments can be refunded.`,
      'payment',
    );
  if (input.amount !== undefined) return { payment: p, amount: input.amount };
  const amount = await refundableRemaining(p);
  if (amount <= 0)
    throw invalidRequest('amount_too_large', 'Nothing remains to be refunded on this payment.', 'amount');
  return { payment: p, amount };
}

/**
 * Starts the refund's workflow (execution name = refund id, so starting it again is a no-op).
 * If it cannot be started, the refund fails and its reservation is released.
 */
async function startRefundWorkflow(refund: Refund): Promise<void> {
  try {
    await clients.sfn().send(
      new StartExecutionCommand({
        stateMachineArn: config.stateMachineArn('refund'),
        name: refund.id,
        input: JSON.stringify({ refund_id: refund.id }),
      }),
    );
  } catch (err) {
    if (err instanceof ExecutionAlreadyExists) return;
    logger.error('could not start the refund workflow', { refundId: refund.id, error: err as Error });
    if (await finishRefund(refund.id, 'failed', 'workflow_unavailable')) {
      refundEnded(refund.processor, 'failed');
      await release(refund.payment_id, refund.id, refund.amount);
    }
    throw err;
  }
}

/**
 * The one refund request, for every channel (API, CLI, console): idempotent per merchant and key,
 * so a retry after a crash resumes the same refund and never pays twice.
 */
export async function requestRefund(req: {
  merchantId: string;
  idempotencyKey: string | undefined;
  body: unknown;
  channel: Refund['channel'];
}): Promise<{ response: StoredResponse; replayed: boolean }> {
  return idempotent(
    req.merchantId,
    req.idempotencyKey,
    requestHash('POST', '/v1/refunds', req.body),
    async (_id, progress) => {
      const body = parseRefundBody(req.body);
      const refund = await createRefund(
        {
          merchantId: req.merchantId,
          paymentId: body.payment,
          amount: body.amount,
          reason: body.reason,
          metadata: body.metadata,
          channel: req.channel,
        },
        progress,
      );
      return { status: 201, body: presentRefund(refund) };
    },
    { operation: 'refund.create', newResourceId: () => newId('re') },
  );
}

export async function waitForRefund(id: string, ms = config.syncWaitMs()): Promise<Refund> {
  const deadline = Date.now() + ms;
  let delay = 5;
  for (;;) {
    const r = await getRefund(id);
    if (!r) throw notFound('refund', id);
    // Held in an incident's backlog (docs/routing.md "The backlog"): pending until it is resolved.
    if (r.status !== 'pending' || r.held || Date.now() >= deadline) return r;
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
