/**
 * POST /v1/payments — creates a payment and starts its workflow (execution name = payment id).
 * Requires Idempotency-Key. Answers 201 with the payment as soon as its outcome is known
 * (captured, authorized, failed, requires_action, pending_review) or, after a short wait, while
 * it is still `processing`.
 */
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { httpHandler } from '../shared/http.ts';
import { newId } from '../shared/ids.ts';
import { logger } from '../shared/logger.ts';
import type { Payment } from '../domain/payment.ts';
import { idempotent, readIdempotencyKey, replayHeaders, requestHash } from '../store/idempotency.ts';
import { addEvent, createPayment, transition } from '../store/payments.ts';
import { presentPayment } from './present.ts';
import { parseCreatePayment } from './validation.ts';
import { waitForPayment } from './wait.ts';

export const handler = httpHandler(async (req) => {
  const idemKey = readIdempotencyKey(req.headers, true);
  const { response, replayed } = await idempotent(
    req.merchantId,
    idemKey,
    requestHash('POST', '/v1/payments', req.body),
    async () => {
      const body = parseCreatePayment(req.body);
      const nowMs = Date.now();
      const now = Math.floor(nowMs / 1000);
      const id = newId('pay');
      const smArn = config.stateMachineArn('payment');
      const executionArn = `${smArn.replace(':stateMachine:', ':execution:')}:${id}`;
      const payment: Payment = {
        id,
        object: 'payment',
        merchant_id: req.merchantId,
        amount: body.amount,
        currency: body.currency,
        status: 'processing',
        amount_captured: 0,
        amount_refunded: 0,
        capture_method: body.capture_method,
        payment_method: body.payment_method,
        processor: null,
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
      await createPayment(payment, nowMs);
      await addEvent(id, {
        type: 'created',
        amount: body.amount,
        currency: body.currency,
        capture_method: body.capture_method,
        idempotency_key: idemKey,
      });
      try {
        await clients.sfn().send(
          new StartExecutionCommand({
            stateMachineArn: smArn,
            name: id,
            input: JSON.stringify({ payment_id: id }),
          }),
        );
      } catch (err) {
        // No workflow will ever move this payment: fail it visibly rather than leave it processing.
        logger.error('could not start the payment workflow', { paymentId: id, error: err as Error });
        await transition(id, 'failed', {
          set: {
            failure: {
              category: 'technical',
              code: 'workflow_unavailable',
              processor_code: 'none',
              message: 'The payment could not be processed.',
              explanation: 'paystep could not start processing this payment; the card was not charged.',
              recommended_action: 'Retry the payment with a new Idempotency-Key.',
              retryable: true,
            },
          },
          note: 'workflow could not be started',
        });
        throw err;
      }
      await addEvent(id, { type: 'workflow', execution_arn: executionArn, event: 'started' });
      const settled = await waitForPayment(id, (p) => p.status !== 'processing');
      return { status: 201, body: presentPayment(settled) };
    },
  );
  return { status: response.status, body: response.body, headers: replayHeaders(replayed) };
});
