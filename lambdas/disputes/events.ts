/**
 * Entry points for what a processor says about a dispute, all ending in `applyAndFollow`
 * (./apply.ts: the guarded dispute and payment transitions, the workflow):
 *
 * - `applyDisputeFact` (./facts.ts): a verified webhook's neutral dispute fact, for every processor
 *   (lambdas/webhooks/facts.ts) — the dispute as the event saw it when the fact carries it
 *   (Stripe), otherwise the connector's `retrieve` (Adyen);
 * - `handleDisputeEvent(processor, type, payload, created)`: a processor's own dispute object that
 *   reached paystep some other way (a test forwarding a simulator's events, a tool), read by the
 *   processor's dispute connector (`readEvent`) into the same neutral facts;
 * - `applyDisputeAsOf`: the shared step: neutral facts as of one event, fingerprinted by the event
 *   and the facts, so the same event applied through either entry point is one change.
 *
 * The caller's function needs, in its topology `uses`: tables `main`, stateMachines `dispute`,
 * the processors' secrets (see `disputeEventUses` in lib/topology/disputes.ts).
 */
import { newId } from '../shared/ids.ts';
import { logger } from '../shared/logger.ts';
import { getPayment } from '../store/payments.ts';
import { claimRef, getRef } from '../store/disputes.ts';
import { disputes } from '../connectors/registry.ts';
import type { DisputeConnector } from '../connectors/disputes.ts';
import { applyAndFollow, type DisputeBinding } from './apply.ts';
import { eventFingerprint, type DisputeFacts } from './model.ts';

/**
 * Applies one processor dispute event. Idempotent; safe in any order and under concurrency.
 * - 'applied': the dispute changed (created, a newer status or fields, new balance transactions);
 *   the payment, workflow and timeline followed.
 * - 'ignored': a duplicate, an older event than the state already recorded, a backwards status, an
 *   event type or status paystep does not handle, or a dispute on a payment that is not paystep's.
 * - 'unknown_object': the dispute names a paystep payment this table does not have (yet): park the
 *   event and retry it later.
 * Throws when a dependency failed (DynamoDB, Step Functions, the processor): retry the delivery.
 */
export async function handleDisputeEvent(
  processorName: string,
  eventType: string,
  payload: Record<string, unknown>,
  eventCreated: number,
): Promise<'applied' | 'ignored' | 'unknown_object'> {
  const connector = await disputes(processorName);
  const facts = connector.readEvent?.(eventType, payload);
  if (!facts) {
    logger.warn('not a dispute event this processor’s connector reads', {
      processor: processorName,
      eventType,
    });
    return 'ignored';
  }
  return applyDisputeAsOf(connector, eventType, eventCreated, facts);
}

/**
 * Applies the dispute as one processor event (`eventType`, at `eventCreated`, epoch seconds) saw
 * it: an older event than the state recorded changes nothing, a redelivery (same event, same
 * facts) is a duplicate. Results as `handleDisputeEvent`'s.
 */
export function applyDisputeAsOf(
  connector: DisputeConnector,
  eventType: string,
  eventCreated: number,
  facts: DisputeFacts,
): Promise<'applied' | 'ignored' | 'unknown_object'> {
  return applyProcessorFacts(connector, facts, {
    eventType,
    eventCreated,
    fingerprint: eventFingerprint(eventType, eventCreated, facts),
  });
}

/** Binds the facts to a paystep dispute and applies them (shared by every processor's entry point). */
export async function applyProcessorFacts(
  connector: DisputeConnector,
  facts: DisputeFacts,
  src: { eventType: string; eventCreated: number; fingerprint: string },
): Promise<'applied' | 'ignored' | 'unknown_object'> {
  const binding = await bind(connector, facts);
  if (binding === 'foreign') {
    logger.warn('dispute on a payment paystep does not know', {
      processor: facts.processor,
      eventType: src.eventType,
      processorReference: facts.processor_reference,
    });
    return 'ignored';
  }
  if (binding === 'unknown') return 'unknown_object';
  return (await applyAndFollow(binding, facts, src)).outcome;
}

/**
 * The paystep dispute for a processor dispute: known already (its processor and reference), or
 * bound now to the payment the facts name (or the connector finds: Stripe's PaymentIntent
 * metadata, Adyen's pspReference of the payment), if that payment was made on this processor.
 */
export async function bind(
  connector: DisputeConnector,
  facts: DisputeFacts,
): Promise<DisputeBinding | 'unknown' | 'foreign'> {
  const processorName = connector.processor;
  const known = await getRef(processorName, facts.processor_reference);
  if (known)
    return {
      disputeId: known.dispute_id,
      paymentId: known.payment_id,
      merchantId: known.merchant_id,
      processor: processorName,
    };
  const paymentId = facts.paystep_payment_id ?? (await connector.paystepPaymentId(facts));
  if (!paymentId) return 'foreign';
  const payment = await getPayment(paymentId);
  if (!payment) return 'unknown';
  if (payment.processor && payment.processor !== processorName) {
    logger.warn('dispute names a payment made on another processor', { paymentId, processor: processorName });
    return 'foreign';
  }
  if (
    payment.processor_reference &&
    facts.payment_reference &&
    payment.processor_reference !== facts.payment_reference
  ) {
    logger.warn('dispute names a processor payment other than the payment’s', { paymentId });
    return 'foreign';
  }
  const ref = await claimRef(processorName, facts.processor_reference, {
    dispute_id: newId('dp'),
    payment_id: payment.id,
    merchant_id: payment.merchant_id,
  });
  return {
    disputeId: ref.dispute_id,
    paymentId: ref.payment_id,
    merchantId: ref.merchant_id,
    processor: processorName,
  };
}
