/**
 * POST /v1/reviews/{id}/approve and /reject — an operator's decision on a payment held by the
 * risk screen. Resumes the payment's workflow (task token): approve → it is authorized as usual;
 * reject → canceled. Idempotency-Key optional (a decision can only be taken once anyway); with
 * one, a retry after a crash answers as the first request would have (recovery point
 * `resuming_workflow`).
 */
import { ApiError, notFound } from '../shared/errors.ts';
import { httpHandler } from '../shared/http.ts';
import { pathId } from '../shared/input.ts';
import { idempotent, readIdempotencyKey, replayHeaders, requestHash } from '../store/idempotency.ts';
import { addEvent, getPayment } from '../store/payments.ts';
import { getMerchantReview } from '../store/reviews.ts';
import { presentPayment } from '../payments/present.ts';
import { resumeWorkflow } from '../payments/resume.ts';
import { waitForPayment } from '../payments/wait.ts';

export const handler = httpHandler(async (req) => {
  const id = pathId(req, 'review');
  const decision = req.path.endsWith('/approve') ? 'approve' : 'reject';
  const idemKey = readIdempotencyKey(req.headers, false);
  const { response, replayed } = await idempotent(
    req.merchantId,
    idemKey,
    requestHash('POST', `/v1/reviews/${id}/${decision}`, req.body ?? null),
    async (_id, progress) => {
      const review = await getMerchantReview(req.merchantId, id);
      if (!review) throw notFound('review', id);
      const p = await getPayment(review.payment_id);
      if (!p) throw notFound('review', id);
      const open = p.status === 'pending_review' && p.review?.status === 'open';
      const settled = () =>
        waitForPayment(p.id, (x) => x.status !== 'pending_review' && x.status !== 'processing');
      if (progress.recoveryPoint === 'resuming_workflow' && !open) {
        // This request's decision reached the workflow before the crash: answer with its result.
        return {
          status: 200,
          body: { id, object: 'review', decision, payment: presentPayment(await settled()) },
        };
      }
      if (!open)
        throw new ApiError(
          400,
          'invalid_request_error',
          'review_closed',
          `This review is already ${p.review?.status ?? 'closed'} (payment ${p.status}).`,
        );
      if (progress.recoveryPoint !== 'resuming_workflow') {
        await addEvent(p.id, { type: 'review', decision, review_id: id });
        await progress.checkpoint('resuming_workflow', { decision });
      }
      await resumeWorkflow(p.id, 'review', { decision });
      return {
        status: 200,
        body: { id, object: 'review', decision, payment: presentPayment(await settled()) },
      };
    },
    { operation: `review.${decision}` },
  );
  return { status: response.status, body: response.body, headers: replayHeaders(replayed) };
});
