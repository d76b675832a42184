/**
 * POST /v1/payments/{id}/cancel — cancels a payment before capture: an authorized payment (the
 * hold is released at the processor), one held for review (the review is rejected), or one
 * waiting for customer authentication. Requires Idempotency-Key.
 */
import { ApiError, notFound } from '../shared/errors.ts';
import { httpHandler } from '../shared/http.ts';
import { pathId } from '../shared/input.ts';
import { idempotent, readIdempotencyKey, replayHeaders, requestHash } from '../store/idempotency.ts';
import { addEvent, getMerchantPayment } from '../store/payments.ts';
import { presentPayment } from './present.ts';
import { resumeWorkflow } from './resume.ts';
import { parse } from './validation.ts';
import { waitForPayment } from './wait.ts';
import { z } from 'zod';

const Body = z
  .strictObject({
    reason: z.enum(['duplicate', 'fraudulent', 'requested_by_customer', 'abandoned']).optional(),
  })
  .optional();

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
      if (progress.recoveryPoint === 'resuming_workflow' && p.status !== from) {
        const after = await waitForPayment(id, (x) => x.status !== 'processing');
        return { status: 200, body: presentPayment(after) };
      }
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
      if (progress.recoveryPoint !== 'resuming_workflow') {
        await addEvent(id, { type: 'cancel_requested', reason });
        await progress.checkpoint('resuming_workflow', { from: p.status });
      }
      await resume();
      const after = await waitForPayment(id, (x) => x.status !== p.status);
      return { status: 200, body: presentPayment(after) };
    },
    { operation: 'payment.cancel' },
  );
  return { status: response.status, body: response.body, headers: replayHeaders(replayed) };
});
