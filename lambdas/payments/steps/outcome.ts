/**
 * Recording what a processor said about an authorization, shared by "Authorize with processor"
 * and "Check the outcome with the processor". Every write is a guarded transition from the
 * statuses that can precede it, so recording the same answer twice changes nothing.
 */
import type { Payment, PaymentAttempt } from '../../domain/payment.ts';
import type { AuthorizeRequest, AuthorizeResult, Failure, RetrieveResult } from '../../connectors/types.ts';
import { storableAnalytics } from '../../connectors/analytics.ts';
import { PaystepError } from '../../shared/errors.ts';
import { addEvent, transition, type TimelineEntry } from '../../store/payments.ts';
import { paymentOutcome } from '../../shared/metrics.ts';

/**
 * What is kept of the card for analytics (docs/states.md, "Card analytics"): the connector's
 * `analytics` (Adyen: BIN, issuer country, issuer, funding), else the issuing country of `card`
 * (Stripe). Never more than a 6–8 digit BIN of the number; never shown in the API's `card`.
 */
function cardAnalytics(result: AuthorizeResult) {
  const analytics = storableAnalytics((result as { analytics?: unknown }).analytics);
  if (analytics) return analytics;
  const card = 'card' in result ? result.card : undefined;
  return storableAnalytics(card?.country ? { issuer_country: card.country } : undefined) ?? null;
}

/** What `payment.attempts[]` keeps of an answer's failure (a decline), or null. */
export const attemptFailure = (r: AuthorizeResult): PaymentAttempt['failure'] =>
  r.outcome === 'declined'
    ? { category: r.failure.category, code: r.failure.code, processor_code: r.failure.processor_code }
    : null;

/** A declined authorization: the payment workflow catches it by name into `failed` (statemachines/payment.asl.json). */
export class PaymentDeclined extends PaystepError {
  override name = 'PaymentDeclined';
}

/** The processor request for a payment's authorization attempt (the key is the same on every retry). */
export function authorizeRequest(p: Payment, attempt: number): AuthorizeRequest {
  return {
    paymentId: p.id,
    merchantId: p.merchant_id,
    amount: p.amount,
    currency: p.currency,
    paymentMethod: p.payment_method,
    captureMethod: p.capture_method,
    customer: p.customer ?? undefined,
    description: p.description ?? undefined,
    idempotencyKey: `${p.id}:authorize:${attempt}`,
  };
}

export type Outcome = 'authorized' | 'captured' | 'requires_action' | 'failed' | 'canceled';

const PRE = ['processing', 'requires_action'] as const;

/**
 * What the payment's move records besides the answer, in the same write: the authorization
 * attempt (`attempts[]`, once) and timeline entries (the attempt's).
 */
export interface AttemptFold {
  attempt?: PaymentAttempt;
  entries?: TimelineEntry[];
}

export async function recordAuthorizeResult(
  p: Payment,
  processorName: string,
  result: AuthorizeResult,
  o: AttemptFold & { keepTaskToken?: boolean } = {},
): Promise<Outcome> {
  // A final outcome removes the workflow's task token, unless the caller resumes the workflow
  // itself and removes the token once it has (the shopper's return: a crash in between leaves the
  // token for the retried request, or the processor's notification, to resume the wait with).
  const remove = o.keepTaskToken ? [] : ['task_token', 'task_token_kind'];
  const { keepTaskToken: _keep, ...fold } = o;
  if (result.outcome === 'declined') {
    const { changed } = await transition(p.id, 'failed', {
      from: [...PRE],
      ...fold,
      set: {
        failure: result.failure,
        processor: processorName,
        processor_reference: result.processorReference ?? null,
        card: result.card ?? null,
        card_analytics: cardAnalytics(result),
      },
      remove,
      note: `declined: ${result.failure.code}`,
    });
    // Counted once: by the write that made the payment failed (a replay changes nothing).
    if (changed) paymentOutcome(processorName, 'declined', result.failure.code);
    return 'failed';
  }
  if (result.outcome === 'authorized' || result.outcome === 'captured') {
    const { changed } = await transition(p.id, result.outcome, {
      from: [...PRE],
      ...fold,
      set: {
        processor: processorName,
        processor_reference: result.processorReference,
        amount_captured: result.amountCaptured,
        // What refunds may still take; refunds reserve from it atomically (lambdas/store/refunds.ts).
        refundable_remaining: result.amountCaptured,
        card: result.card ?? null,
        card_analytics: cardAnalytics(result),
        capture_before:
          result.outcome === 'authorized'
            ? (result.captureBefore ?? Math.floor(Date.now() / 1000) + 7 * 86400)
            : null,
      },
      remove,
    });
    if (changed) paymentOutcome(processorName, 'approved');
    return result.outcome;
  }
  await transition(p.id, 'requires_action', {
    from: ['processing', 'requires_action'],
    ...fold,
    set: { processor: processorName, processor_reference: result.processorReference },
    note:
      result.outcome === 'processing' ? 'processor is still processing' : 'customer authentication required',
  });
  return 'requires_action';
}

/** Applies the processor's current view of a payment intent (after a timeout, a lapse, a refusal). */
export async function recordRetrieved(
  p: Payment,
  processorName: string,
  r: RetrieveResult,
  lapsedFailure: Failure,
): Promise<Outcome | 'processing' | 'waiting'> {
  switch (r.status) {
    case 'captured':
    case 'authorized':
      return recordAuthorizeResult(p, processorName, {
        outcome: r.status,
        processorReference: r.processorReference,
        amountCaptured: r.amountCaptured,
        rawStatus: r.rawStatus,
      });
    case 'canceled':
      await transition(p.id, 'canceled', {
        from: ['processing', 'requires_action', 'authorized'],
        set: { cancellation_reason: p.status === 'authorized' ? 'authorization_expired' : 'abandoned' },
        remove: ['task_token', 'task_token_kind'],
        note: `the processor reports the payment canceled (${r.rawStatus})`,
      });
      return 'canceled';
    case 'requires_payment_method': {
      const failure = r.failure ?? lapsedFailure;
      const { changed } = await transition(p.id, 'failed', {
        from: [...PRE],
        set: { failure },
        remove: ['task_token', 'task_token_kind'],
        note: 'the processor reports the payment failed',
      });
      if (changed) paymentOutcome(processorName, 'declined', failure.code);
      return 'failed';
    }
    case 'processing':
      return 'processing';
    case 'requires_action':
      return 'waiting';
  }
}

export async function recordAttempt(p: Payment, entry: Record<string, unknown>): Promise<void> {
  await addEvent(p.id, { type: 'attempt', ...entry });
}
