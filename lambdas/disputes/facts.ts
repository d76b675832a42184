/**
 * Applies a processor's dispute *fact* (lambdas/connectors/facts.ts `DisputeFact`: one verified
 * notification, e.g. Adyen's NOTIFICATION_OF_CHARGEBACK, CHARGEBACK, CHARGEBACK_REVERSED,
 * SECOND_CHARGEBACK, REQUEST_FOR_INFORMATION, DISPUTE_DEFENSE_PERIOD_ENDED), called by the webhook
 * applier once the fact is stored (lambdas/webhooks/adyen-facts.ts).
 *
 * A fact is one event, not the dispute: the dispute connector's `retrieve` folds every fact stored
 * for the dispute into its state by meaning (lambdas/connectors/adyen/disputes.ts `disputeState`),
 * so whichever fact is applied last, the dispute ends in the same state, and each fact applies
 * through the same path as a Stripe event (`applyAndFollow`: the guarded dispute transitions, the
 * payment's guarded transitions, the dispute workflow, the waiting step resumed). The fact's id is
 * the change's fingerprint: a redelivered fact changes nothing.
 */
import type { DisputeFact } from '../connectors/facts.ts';
import { disputes } from '../connectors/registry.ts';
import { logger } from '../shared/logger.ts';
import { applyProcessorFacts } from './events.ts';

export async function applyDisputeFact(fact: DisputeFact): Promise<'applied' | 'ignored' | 'unknown_object'> {
  const connector = await disputes(fact.processor);
  const facts = await connector.retrieve(fact.reference);
  if (!facts.status) {
    logger.info('dispute fact with no dispute status of its own', {
      processor: fact.processor,
      event: fact.raw_event,
    });
    return 'ignored';
  }
  const at = Date.parse(fact.at);
  return applyProcessorFacts(connector, facts, {
    eventType: fact.raw_event,
    eventCreated: Math.max(facts.processor_updated, Number.isFinite(at) ? Math.floor(at / 1000) : 0),
    fingerprint: fact.id,
  });
}
