/**
 * POST /v1/payments — creates a payment and starts its workflow (execution name = payment id).
 * Requires Idempotency-Key. Answers 201 with the payment as soon as its outcome is known
 * (captured, authorized, failed, requires_action, pending_review) or, after a short wait, while
 * it is still `processing`.
 *
 * Crash safety: the payment id comes from the idempotency claim, so a retry of an interrupted
 * request (same key, same body) resumes the same payment: the put is skipped if the payment
 * exists and StartExecution with the same name is a no-op. It never creates a second payment.
 */
import { ExecutionAlreadyExists, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { httpHandler } from '../shared/http.ts';
import { newId } from '../shared/ids.ts';
import { logger } from '../shared/logger.ts';
import type { Payment } from '../domain/payment.ts';
import { idempotent, readIdempotencyKey, replayHeaders, requestHash } from '../store/idempotency.ts';
import { addEvent, annotate, createPayment } from '../store/payments.ts';
import { presentPayment } from './present.ts';
import { parseCreatePayment } from './validation.ts';
import { waitForPayment } from './wait.ts';

export const handler = httpHandler(async (req) => {
  const idemKey = readIdempotencyKey(req.headers, true);
  const hash = requestHash('POST', '/v1/payments', req.body);
  const { response, replayed } = await idempotent(
    req.merchantId,
    idemKey,
    hash,
    async (id) => {
      const body = parseCreatePayment(req.body);
      const nowMs = Date.now();
      const now = Math.floor(nowMs / 1000);
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
      const created = await createPayment(payment, nowMs); // false: resumed
      if (created)
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
        await addEvent(id, { type: 'workflow', execution_arn: executionArn, event: 'started' });
      } catch (err) {
        if (!(err instanceof ExecutionAlreadyExists)) {
          // The client's retry with the same key resumes here; until then the payment is visibly stuck.
          logger.error('could not start the payment workflow', { paymentId: id, error: err as Error });
          await annotate(id, {
            needs_attention: { reason: 'workflow not started', since: now, status: 'processing' },
          }).catch(() => undefined);
          throw err;
        }
      }
      const settled = await waitForPayment(id, (p) => p.status !== 'processing');
      return { status: 201, body: presentPayment(settled) };
    },
    { operation: 'payment.create', newResourceId: () => newId('pay') },
  );
  return { status: response.status, body: response.body, headers: replayHeaders(replayed) };
});
