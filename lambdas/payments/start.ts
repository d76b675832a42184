/**
 * Starting a payment: the body of POST /v1/payments, shared with every other caller that takes
 * money (the billing workflow charges invoices through it), so a renewal is an ordinary payment
 * with the same states, routing, ledger and reports. Callers wrap it in `idempotent()`.
 *
 * Crash safety: `id` comes from the idempotency claim, so a retry of an interrupted request (same
 * key, same body) resumes the same payment: the put is skipped if the payment exists and
 * StartExecution with the same name is a no-op. It never creates a second payment.
 */
import { ExecutionAlreadyExists, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { logger } from '../shared/logger.ts';
import type { Payment } from '../domain/payment.ts';
import { annotate, createPayment } from '../store/payments.ts';
import type { CreatePayment } from './validation.ts';
import { waitForPayment } from './wait.ts';

export interface StartPayment {
  merchantId: string;
  /** The payment id (from the idempotency claim). */
  id: string;
  /** A validated request; `channel` may also be one paystep sets itself (`subscription`). */
  body: Omit<CreatePayment, 'channel'> & { channel?: string };
  idempotencyKey?: string;
  /** How long to wait for the outcome (default PAYSTEP_SYNC_WAIT_MS). */
  waitMs?: number;
}

/** Creates the payment, starts its workflow, and returns it once its outcome is known or the wait ends. */
export async function startPayment(s: StartPayment): Promise<Payment> {
  const { id, body } = s;
  const nowMs = Date.now();
  const now = Math.floor(nowMs / 1000);
  const smArn = config.stateMachineArn('payment');
  const executionArn = `${smArn.replace(':stateMachine:', ':execution:')}:${id}`;
  const payment: Payment = {
    id,
    object: 'payment',
    merchant_id: s.merchantId,
    amount: body.amount,
    currency: body.currency,
    status: 'processing',
    amount_captured: 0,
    amount_refunded: 0,
    capture_method: body.capture_method,
    payment_method: body.payment_method,
    // Named by the request: the workflow sends it there (straight-through); null: routing decides.
    processor: body.processor ?? null,
    processor_reference: null,
    failure: null,
    order_id: body.order_id ?? null,
    customer: body.customer ?? null,
    channel: body.channel ?? null,
    description: body.description ?? null,
    metadata: body.metadata ?? {},
    card: null,
    capture_before: null,
    cancellation_reason: null,
    review: null,
    execution_arn: executionArn,
    created: now,
    updated: now,
    version: 1,
  };
  // The `created` entry goes with the payment's own put; the workflow's first step records that
  // it started (lambdas/payments/steps/screen.ts), so starting it costs no write here.
  await createPayment(payment, nowMs, [
    {
      type: 'created',
      amount: body.amount,
      currency: body.currency,
      capture_method: body.capture_method,
      idempotency_key: s.idempotencyKey,
    },
  ]); // false: resumed
  try {
    await clients.sfn().send(
      new StartExecutionCommand({
        stateMachineArn: smArn,
        name: id,
        input: JSON.stringify({ payment_id: id }),
      }),
    );
  } catch (err) {
    if (!(err instanceof ExecutionAlreadyExists)) {
      // The client's retry with the same key resumes here; until then the payment is visibly stuck.
      logger.error('could not start the payment workflow', { paymentId: id, error: err as Error });
      await annotate(
        id,
        { needs_attention: { reason: 'workflow not started', since: now, status: 'processing' } },
        [],
        [{ type: 'workflow', event: 'not started', execution_arn: executionArn, error: (err as Error).name }],
      ).catch(() => undefined);
      throw err;
    }
  }
  return waitForPayment(id, (p) => p.status !== 'processing', s.waitMs);
}
