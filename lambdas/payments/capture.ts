/**
 * POST /v1/payments/{id}/capture {amount?} — captures an authorized payment, fully or partially
 * (the rest of the hold is released). Requires Idempotency-Key; a retry after a crash resumes the
 * same capture (recovery point `resuming_workflow`), it never asks the processor twice. A processor
 * that confirms captures later (Adyen) leaves the capture pending: 202 with the payment still
 * authorized and its `pending_modification`, until the outcome arrives (docs/api.md).
 */
import { ApiError, invalidRequest, notFound } from '../shared/errors.ts';
import { httpHandler } from '../shared/http.ts';
import { pathId } from '../shared/input.ts';
import { formatAmount } from '../domain/money.ts';
import { idempotent, readIdempotencyKey, replayHeaders, requestHash } from '../store/idempotency.ts';
import { addEvent, getMerchantPayment } from '../store/payments.ts';
import type { Payment } from '../domain/payment.ts';
import { presentPayment, refuseWhilePending } from './present.ts';
import { resumeWorkflow } from './resume.ts';
import { CaptureBody, parse } from './validation.ts';
import { waitForPayment } from './wait.ts';

const pendingCapture = (p: Payment) =>
  p.status === 'authorized' && p.pending_modification?.action === 'capture';

/**
 * 200 with the payment once the capture's outcome is known; 202 while it is not yet (the processor
 * accepted the capture and confirms it later: `pending_modification` says so; poll the payment).
 */
const answer = (p: Payment) => ({ status: p.status === 'authorized' ? 202 : 200, body: presentPayment(p) });

export const handler = httpHandler(async (req) => {
  const id = pathId(req, 'payment');
  const idemKey = readIdempotencyKey(req.headers, true);
  const { response, replayed } = await idempotent(
    req.merchantId,
    idemKey,
    requestHash('POST', `/v1/payments/${id}/capture`, req.body),
    async (_id, progress) => {
      const body = parse(CaptureBody, req.body);
      const p = await getMerchantPayment(req.merchantId, id);
      if (!p) throw notFound('payment', id);
      // Resumed after a crash once the capture was handed to the workflow: the same request
      // continues (the processor's idempotency key is chosen once, so it captures once).
      const handedOver = progress.recoveryPoint === 'resuming_workflow';
      if (handedOver && (p.status !== 'authorized' || p.pending_modification?.action === 'capture')) {
        const after = await waitForPayment(id, (x) => x.status !== 'processing' && !pendingCapture(x));
        return answer(after);
      }
      if (p.status !== 'authorized')
        throw new ApiError(
          400,
          'invalid_request_error',
          'payment_unexpected_state',
          `This payment is ${p.status}; only an authorized payment can be captured.`,
        );
      refuseWhilePending(p, 'capture');
      const amount = body?.amount ?? p.amount;
      if (amount > p.amount)
        throw invalidRequest(
          'amount_too_large',
          `Invalid amount: at most ${formatAmount(p.amount, p.currency)} (${p.amount}) can be captured.`,
          'amount',
        );
      if (!handedOver) {
        await addEvent(id, { type: 'capture_requested', amount });
        await progress.checkpoint('resuming_workflow', { amount });
      }
      const requested = Date.now();
      await resumeWorkflow(id, 'capture', { action: 'capture', amount });
      const after = await waitForPayment(
        id,
        (x) =>
          x.status !== 'authorized' ||
          (x.last_capture_error?.at ?? 0) >= requested ||
          !!x.pending_modification?.held, // held in an incident's backlog: 202, made when resolved
      );
      const failure = after.last_capture_error;
      if (after.status === 'authorized' && failure && failure.at >= requested)
        throw new ApiError(
          502,
          'api_error',
          'capture_failed',
          `The processor did not capture the payment (${failure.code}); it is still authorized. Retry the capture with a new Idempotency-Key.`,
        );
      return answer(after);
    },
    { operation: 'payment.capture' },
  );
  return { status: response.status, body: response.body, headers: replayHeaders(replayed) };
});
