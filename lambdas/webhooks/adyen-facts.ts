/**
 * A verified Adyen fact (stored by POST /webhooks/adyen) → domain action, like stripe-events.ts
 * for Stripe events. Facts are processor-neutral (lambdas/connectors/facts.ts); every action is
 * idempotent and order-independent on its own:
 *
 * - payment facts → `applyPaymentEvent` (the payment named by the fact's merchant reference, the
 *   paystep payment id): compared with the payment and recorded on its timeline, or, while the
 *   payment waits for the customer's authentication, its outcome applied (from the stored facts).
 *   A capture is recorded by the workflow when Adyen accepts it; the CAPTURE fact then finds the
 *   payment captured (`consistent`), however often it comes. A `capture_failed` about a captured
 *   payment flags it for attention (the transition table cannot move it back);
 * - refund facts → `applyRefundUpdate` (succeeded / failed; a pending refund moves once);
 * - dispute facts → `applyDisputeFact` (lambdas/disputes/facts.ts): the dispute and its payment.
 *
 * `unknown_object`: the fact names a payment or refund paystep does not have yet (the
 * notification overtook the workflow's write): the event is parked and retried.
 */
import type { ConnectorFact, PaymentFact } from '../connectors/facts.ts';
import type { PaymentStatus } from '../domain/payment.ts';
import { applyDisputeFact } from '../disputes/facts.ts';
import { applyRefundUpdate } from '../refunds/updates.ts';
import { isIdOf } from '../shared/input.ts';
import { annotate, getPayment } from '../store/payments.ts';
import { paymentIdForReference } from '../store/processor-facts.ts';
import { applyPaymentEvent } from './payments.ts';
import type { EventOutcome } from './stripe-events.ts';

const PROCESSOR = 'adyen';

/** A payment fact as a paystep status, where it names one. */
function stageOf(event: PaymentFact['event']): PaymentStatus | undefined {
  switch (event) {
    case 'authorised':
      return 'authorized';
    case 'refused':
      return 'failed';
    case 'pending':
      return 'processing';
    case 'captured':
      return 'captured';
    case 'canceled':
    case 'expired':
      return 'canceled';
    default:
      return undefined; // capture_failed, cancel_failed, authorisation_adjusted: no status of its own
  }
}

async function paymentFact(fact: PaymentFact, created: number): Promise<EventOutcome> {
  // The pspReference is remembered when Adyen answers the authorisation; the AUTHORISATION
  // notification may come first, and names the payment as its merchant reference (a modification's
  // merchant reference is the modification's own, so it is not read as a payment id).
  const paymentId =
    (await paymentIdForReference(PROCESSOR, fact.reference)) ??
    (fact.raw_event === 'AUTHORISATION' && fact.merchantReference && isIdOf('payment', fact.merchantReference)
      ? fact.merchantReference
      : undefined);
  if (!paymentId) return 'ignored'; // not a paystep payment
  const outcome = await applyPaymentEvent(
    paymentId,
    { processor: PROCESSOR, reference: fact.reference, stage: stageOf(fact.event), raw: fact.raw_event },
    { id: fact.id, type: fact.raw_event, created },
  );
  if (fact.event === 'capture_failed' && outcome === 'recorded') {
    const p = await getPayment(paymentId);
    if (p?.status === 'captured')
      await annotate(paymentId, {
        needs_attention: {
          reason: `Adyen reports the capture failed (${fact.reason ?? fact.raw_event}); the money was not taken: check the payment in the Customer Area`,
          since: Math.floor(Date.now() / 1000),
          status: p.status,
        },
      });
  }
  return outcome;
}

export async function handleAdyenFact(fact: ConnectorFact): Promise<EventOutcome> {
  const at = Date.parse(fact.at);
  const created = Number.isFinite(at) ? Math.floor(at / 1000) : Math.floor(Date.now() / 1000);
  switch (fact.kind) {
    case 'payment':
      return paymentFact(fact, created);
    case 'refund':
      if (fact.event === 'reversed') return 'recorded';
      return applyRefundUpdate(
        PROCESSOR,
        { id: fact.reference, status: fact.event, failure_reason: fact.reason },
        created,
      );
    case 'dispute':
      return applyDisputeFact(fact);
  }
}
