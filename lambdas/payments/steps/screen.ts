/**
 * Payment workflow, "Screen for risk": runs the rules of lambdas/domain/risk.ts. A hit moves the
 * payment to `pending_review` with a Review (`rv_…`) that ops decide through /v1/reviews. An
 * allowed payment goes back to the workflow as this step's write left it (`routeView`), so
 * "Choose a processor" needs no read of it.
 */
import { riskConfigFromEnv, screen } from '../../domain/risk.ts';
import { annotate, countCustomerPayment, getPayment, transition } from '../../store/payments.ts';
import { putReview, reviewIdFor } from '../../store/reviews.ts';
import { z } from 'zod';
import { prefixedId, taskHandler } from '../../shared/task-input.ts';
import { routeView } from './route-view.ts';

const Input = z.object({ payment_id: prefixedId('pay') });

export const handler = taskHandler('payment-screen', Input, async (input) => {
  const p = await getPayment(input.payment_id);
  if (!p) throw new Error(`payment ${input.payment_id} not found`);
  if (p.status === 'pending_review' && p.review)
    return { decision: 'review', reasons: p.review.reasons, review_id: p.review.id, payment: null };
  if (p.status !== 'processing')
    return { decision: 'allow', reasons: [], note: `already ${p.status}`, payment: null };
  const velocity = p.customer?.id
    ? await countCustomerPayment(p.merchant_id, p.customer.id, p.id)
    : undefined;
  const result = screen(
    {
      amount: p.amount,
      currency: p.currency,
      customerCountry: p.customer?.country,
      customerPaymentsThisHour: velocity,
    },
    riskConfigFromEnv(),
  );
  // The workflow's first step records that it runs (POST /v1/payments only starts it), with the
  // screen's decision: one write of the payment.
  const entries = [
    { type: 'workflow', event: 'started', execution_arn: p.execution_arn ?? undefined },
    { type: 'risk', decision: result.decision, reasons: result.reasons },
  ];
  if (result.decision === 'allow') {
    const written = await annotate(p.id, {}, [], entries);
    // The payment as this write left it, for "Choose a processor" (which checks it in its write).
    return { decision: 'allow', reasons: [], payment: written ? routeView(written) : null };
  }
  // Derived from the payment id: a retried step writes the same review, never a second, orphaned one.
  const reviewId = reviewIdFor(p.id);
  await putReview({
    id: reviewId,
    payment_id: p.id,
    merchant_id: p.merchant_id,
    reasons: result.reasons,
    status: 'open',
    created: Math.floor(Date.now() / 1000),
  });
  await transition(p.id, 'pending_review', {
    from: ['processing'],
    set: { review: { id: reviewId, reasons: result.reasons, status: 'open' } },
    entries,
    note: `held for review: ${result.reasons.join('; ')}`,
  });
  return { decision: 'review', reasons: result.reasons, review_id: reviewId, payment: null };
});
