/**
 * POST /v1/payments/{id}/cancel — cancels a payment before capture: an authorized payment (the
 * hold is released at the processor), one held for review (the review is rejected), or one
 * waiting for customer authentication. Requires Idempotency-Key. A processor that confirms
 * cancellations later (Adyen) leaves it pending: 202 with the payment still authorized and its
 * `pending_modification`, until the CANCELLATION arrives (docs/api.md).
 */
import { ApiError, notFound } from '../shared/errors.ts';
import { httpHandler } from '../shared/http.ts';
import { pathId } from '../shared/input.ts';
import { idempotent, readIdempotencyKey, replayHeaders, requestHash } from '../store/idempotency.ts';
import { addEvent, getMerchantPayment } from '../store/payments.ts';
import type { Payment } from '../domain/payment.ts';
import { presentPayment, refuseWhilePending } from './present.ts';
import { resumeWorkflow } from './resume.ts';
import { parse } from './validation.ts';
import { waitForPayment } from './wait.ts';
import { z } from 'zod';

const Body = z
  .strictObject({
    reason: z.enum(['duplicate', 'fraudulent', 'requested_by_customer', 'abandoned']).optional(),
  })
  .optional();

const pendingCancel = (p: Payment) =>
  p.status === 'authorized' && p.pending_modification?.action === 'cancel';

/**
 * 200 with the payment once the cancellation's outcome is known; 202 while an authorized payment's
 * cancellation is not confirmed yet (the processor confirms it later: `pending_modification`).
 */
const answer = (p: Payment) => ({ status: p.status === 'authorized' ? 202 : 200, body: presentPayment(p) });

export const handler = httpHandler(async (req) => {
  const id = pathId(req, 'payment');
  const idemKey = readIdempotencyKey(req.headers, true);
  const { response, replayed } = await idempotent(
    req.merchantId,
    idemKey,
    requestHash('POST', `/v1/payments/${id}/cancel`, req.body),
    async (_id, progress) => {
      const body = parse(Body, req.body);
      const p = await getMerchantPayment(req.merchantId, id);
      if (!p) throw notFound('payment', id);
      const reason = body?.reason ?? 'requested_by_customer';
      // Resumed after a crash once the cancellation was handed to the workflow: if the payment
      // has moved on since, that was this request (or the workflow's own ending): answer with it.
      const from = progress.recoveryData.from as string | undefined;
      const handedOver = progress.recoveryPoint === 'resuming_workflow';
      if (handedOver && (p.status !== from || p.pending_modification?.action === 'cancel')) {
        const after = await waitForPayment(id, (x) => x.status !== 'processing' && !pendingCancel(x));
        return answer(after);
      }
      if (p.status === 'authorized') refuseWhilePending(p, 'cancel');
      const resume =
        p.status === 'authorized'
          ? () => resumeWorkflow(id, 'capture', { action: 'cancel', reason })
          : p.status === 'pending_review'
            ? () => resumeWorkflow(id, 'review', { decision: 'reject', reason })
            : p.status === 'requires_action'
              ? () => resumeWorkflow(id, 'authentication', { outcome: 'canceled', reason })
              : undefined;
      if (!resume)
        throw new ApiError(
          400,
          'invalid_request_error',
          'payment_unexpected_state',
          `This payment is ${p.status}; only authorized payments, payments held for review, or payments waiting for authentication can be canceled.`,
        );
      if (!handedOver) {
        await addEvent(id, { type: 'cancel_requested', reason });
        await progress.checkpoint('resuming_workflow', { from: p.status });
      }
      const requested = Date.now();
      await resume();
      const after = await waitForPayment(
        id,
        (x) =>
          x.status !== p.status ||
          (x.last_cancel_error?.at ?? 0) >= requested ||
          !!x.pending_modification?.held, // held in an incident's backlog: 202, made when resolved
      );
      const failure = after.last_cancel_error;
      if (after.status === 'authorized' && failure && failure.at >= requested)
        throw new ApiError(
          502,
          'api_error',
          'cancel_failed',
          `The processor did not cancel the payment (${failure.code}); it is still authorized. Retry the cancellation with a new Idempotency-Key.`,
        );
      return answer(after);
    },
    { operation: 'payment.cancel' },
  );
  return { status: response.status, body: response.body, headers: replayHeaders(replayed) };
});
