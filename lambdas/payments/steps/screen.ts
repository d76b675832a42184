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
import { routeView, ScreenView, screenView } from './route-view.ts';

const Input = z.object({
  payment_id: prefixedId('pay'),
  /** The payment as POST /v1/payments put it (the execution input; route-view.ts). */
  payment: ScreenView.optional(),
});

export const handler = taskHandler('payment-screen', Input, async (input) => {
  const carried = input.payment;
  let decided: Awaited<ReturnType<typeof screenOf>> | undefined;
  // The carried payment, if it is this one and still processing: an allowed payment is recorded
  // by a write that holds only if the payment is as carried (same version, processing). Anything
  // else (a hold for review, a payment that moved on) reads it and goes the way below.
  if (carried && carried.id === input.payment_id && carried.status === 'processing') {
    decided = await screenOf(carried.merchant_id, carried);
    if (decided.decision === 'allow') {
      const written = await annotate(carried.id, {}, [], startedEntries(carried.execution_arn, decided), {
        expression: 'version = :seen_v AND #seen_s = :seen_processing',
        names: { '#seen_s': 'status' },
        values: { ':seen_v': carried.version, ':seen_processing': 'processing' },
      });
      if (written) return { decision: 'allow', reasons: [], payment: routeView(written) };
    }
  }
  const p = await getPayment(input.payment_id);
  if (!p) throw new Error(`payment ${input.payment_id} not found`);
  if (p.status === 'pending_review' && p.review)
    return { decision: 'review', reasons: p.review.reasons, review_id: p.review.id, payment: null };
  if (p.status !== 'processing')
    return { decision: 'allow', reasons: [], note: `already ${p.status}`, payment: null };
  // What decides never changes (amount, currency, customer): a decision made on the copy stands.
  const result = decided ?? (await screenOf(p.merchant_id, screenView(p)));
  const entries = startedEntries(p.execution_arn, result);
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

/** The risk rules' decision (the velocity rule counts the customer's payment: idempotent per payment). */
async function screenOf(merchantId: string, p: ScreenView) {
  const velocity = p.customer_id ? await countCustomerPayment(merchantId, p.customer_id, p.id) : undefined;
  return screen(
    {
      amount: p.amount,
      currency: p.currency,
      customerCountry: p.customer_country ?? undefined,
      customerPaymentsThisHour: velocity,
    },
    riskConfigFromEnv(),
  );
}

/**
 * The workflow's first step records that it runs (POST /v1/payments only starts it), with the
 * screen's decision: one write of the payment.
 */
function startedEntries(executionArn: string | null, result: { decision: string; reasons: string[] }) {
  return [
    { type: 'workflow', event: 'started', execution_arn: executionArn ?? undefined },
    { type: 'risk', decision: result.decision, reasons: result.reasons },
  ];
}
