/**
 * The entry point for processor dispute events. Webhook ingestion (POST /webhooks/stripe) verifies
 * the signature and calls `handleDisputeEvent` with the event's type, `data.object` and `created`.
 *
 * The caller's function needs, in its topology `uses`: tables `main`, stateMachines `dispute`,
 * secrets `stripe-secret-key` (see `disputeEventUses` in lib/topology/disputes.ts).
 */
import { newId } from '../shared/ids.ts';
import { logger } from '../shared/logger.ts';
import { getPayment } from '../store/payments.ts';
import { claimRef, getRef } from '../store/disputes.ts';
import { applyAndFollow, type DisputeBinding } from './apply.ts';
import { eventFingerprint, factsFromStripe, type DisputeFacts } from './model.ts';
import { stripeDisputes } from '../connectors/stripe/disputes.ts';

export const DISPUTE_EVENT_TYPES = [
  'charge.dispute.created',
  'charge.dispute.updated',
  'charge.dispute.closed',
  'charge.dispute.funds_withdrawn',
  'charge.dispute.funds_reinstated',
] as const;

const PROCESSOR = 'stripe';

/**
 * Applies one Stripe dispute event. Idempotent; safe in any order and under concurrency.
 * - 'applied': the dispute changed (created, a newer status or fields, new balance transactions);
 *   the payment, workflow and timeline followed.
 * - 'ignored': a duplicate, an older event than the state already recorded, a backwards status, an
 *   event type or status paystep does not handle, or a dispute on a payment that is not paystep's.
 * - 'unknown_object': the dispute names a paystep payment this table does not have (yet): park the
 *   event and retry it later.
 * Throws when a dependency failed (DynamoDB, Step Functions, Stripe lookup): retry the delivery.
 */
export async function handleDisputeEvent(
  eventType: string,
  dispute: Record<string, unknown>,
  eventCreated: number,
): Promise<'applied' | 'ignored' | 'unknown_object'> {
  if (!(DISPUTE_EVENT_TYPES as readonly string[]).includes(eventType)) return 'ignored';
  const facts = factsFromStripe(dispute);
  if (!facts) {
    logger.warn('dispute event without a dispute object', { eventType });
    return 'ignored';
  }
  const binding = await bind(facts);
  if (binding === 'foreign') {
    logger.warn('dispute on a payment paystep does not know', {
      eventType,
      processorReference: facts.processor_reference,
    });
    return 'ignored';
  }
  if (binding === 'unknown') return 'unknown_object';
  const r = await applyAndFollow(binding, facts, {
    eventType,
    eventCreated,
    fingerprint: eventFingerprint(eventType, eventCreated, dispute),
  });
  return r.outcome;
}

/**
 * The paystep dispute for a processor dispute: known already (its reference), or bound now to the
 * payment named by the PaymentIntent's `metadata.paystep_payment_id`.
 */
export async function bind(facts: DisputeFacts): Promise<DisputeBinding | 'unknown' | 'foreign'> {
  const known = await getRef(PROCESSOR, facts.processor_reference);
  if (known)
    return {
      disputeId: known.dispute_id,
      paymentId: known.payment_id,
      merchantId: known.merchant_id,
      processor: PROCESSOR,
    };
  const paymentId =
    facts.paystep_payment_id ??
    (await (
      await stripeDisputes()
    ).paystepPaymentId({ paymentIntent: facts.payment_intent, charge: facts.charge }));
  if (!paymentId) return 'foreign';
  const payment = await getPayment(paymentId);
  if (!payment) return 'unknown';
  if (
    payment.processor_reference &&
    facts.payment_intent &&
    payment.processor_reference !== facts.payment_intent
  ) {
    logger.warn('dispute names a PaymentIntent other than the payment’s', { paymentId });
    return 'foreign';
  }
  const ref = await claimRef(PROCESSOR, facts.processor_reference, {
    dispute_id: newId('dp'),
    payment_id: payment.id,
    merchant_id: payment.merchant_id,
  });
  return {
    disputeId: ref.dispute_id,
    paymentId: ref.payment_id,
    merchantId: ref.merchant_id,
    processor: PROCESSOR,
  };
}
