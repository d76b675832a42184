/**
 * An operator's decision on a payment held by the risk screen: the one path for the API
 * (POST /v1/reviews/{id}/approve|reject, ./decide.ts) and the console (the payment page and the
 * reviews queue). Resumes the payment's workflow (task token): approve → it is authorized as
 * usual; reject → canceled. Run inside `idempotent` (lambdas/store/idempotency.ts): a retry after a
 * crash answers as the first request would have (recovery point `resuming_workflow`).
 */
import { ApiError, notFound } from '../shared/errors.ts';
import type { Payment } from '../domain/payment.ts';
import type { RequestProgress } from '../store/idempotency.ts';
import { addEvent, getPayment } from '../store/payments.ts';
import { getMerchantReview } from '../store/reviews.ts';
import { presentPayment } from '../payments/present.ts';
import { resumeWorkflow } from '../payments/resume.ts';
import { waitForPayment } from '../payments/wait.ts';

export type ReviewDecision = 'approve' | 'reject';

export interface DecideReviewInput {
  merchantId: string;
  reviewId: string;
  decision: ReviewDecision;
  /** Why (the console asks for it); kept on the payment's timeline. */
  reason?: string;
  /** Who decided, for the timeline: `api`, or `console <operator id>`. */
  by?: string;
}

/** Decides the review once; answers the API's response (the payment once it has moved on). */
export async function decideReview(
  input: DecideReviewInput,
  progress: RequestProgress,
): Promise<{
  status: number;
  body: {
    id: string;
    object: 'review';
    decision: ReviewDecision;
    payment: ReturnType<typeof presentPayment>;
  };
}> {
  const { reviewId: id, decision } = input;
  const review = await getMerchantReview(input.merchantId, id);
  if (!review) throw notFound('review', id);
  const p = await getPayment(review.payment_id);
  if (!p) throw notFound('review', id);
  const open = p.status === 'pending_review' && p.review?.status === 'open';
  const settled = (): Promise<Payment> =>
    waitForPayment(p.id, (x) => x.status !== 'pending_review' && x.status !== 'processing');
  const answer = async () => ({
    status: 200,
    body: { id, object: 'review' as const, decision, payment: presentPayment(await settled()) },
  });
  if (progress.recoveryPoint === 'resuming_workflow' && !open) {
    // This request's decision reached the workflow before the crash: answer with its result.
    return answer();
  }
  if (!open)
    throw new ApiError(
      400,
      'invalid_request_error',
      'review_closed',
      `This review is already ${p.review?.status ?? 'closed'} (payment ${p.status}).`,
    );
  if (progress.recoveryPoint !== 'resuming_workflow') {
    await addEvent(p.id, { type: 'review', decision, review_id: id, reason: input.reason, by: input.by });
    await progress.checkpoint('resuming_workflow', { decision });
  }
  await resumeWorkflow(p.id, 'review', { decision });
  return answer();
}
