/**
 * Applies a processor's dispute *fact* (lambdas/connectors/facts.ts `DisputeFact`: one verified
 * webhook event, e.g. Stripe's `charge.dispute.*`, Adyen's NOTIFICATION_OF_CHARGEBACK, CHARGEBACK,
 * CHARGEBACK_REVERSED, SECOND_CHARGEBACK, REQUEST_FOR_INFORMATION, DISPUTE_DEFENSE_PERIOD_ENDED),
 * called by the webhook applier once the fact is stored (lambdas/webhooks/facts.ts). Nothing here
 * knows a processor's event or status names.
 *
 * - A fact that carries the dispute as its event saw it (`fact.dispute`: the processor's event
 *   holds the whole dispute object, as Stripe's do) applies that, as of the event's time
 *   (`applyDisputeAsOf`): an out-of-order, older event changes nothing, a redelivered one is a
 *   duplicate, and each event keeps its own outcome.
 * - Otherwise a fact is one event, not the dispute: the dispute connector's `retrieve` folds every
 *   fact stored for the dispute into its state by meaning (lambdas/connectors/adyen/disputes.ts
 *   `disputeState`), so whichever fact is applied last, the dispute ends in the same state. The
 *   fact's id is the change's fingerprint: a redelivered fact changes nothing.
 *
 * Both go through `applyAndFollow`: the guarded dispute transitions, the payment's guarded
 * transitions, the dispute workflow, the waiting step resumed.
 */
import type { DisputeFact } from '../connectors/facts.ts';
import { disputes } from '../connectors/registry.ts';
import { logger } from '../shared/logger.ts';
import { applyDisputeAsOf, applyProcessorFacts } from './events.ts';

export async function applyDisputeFact(fact: DisputeFact): Promise<'applied' | 'ignored' | 'unknown_object'> {
  const connector = await disputes(fact.processor);
  const at = Date.parse(fact.at);
  if (fact.dispute)
    return applyDisputeAsOf(
      connector,
      fact.raw_event,
      Number.isFinite(at) ? Math.floor(at / 1000) : fact.dispute.processor_updated,
      fact.dispute,
    );
  const facts = await connector.retrieve(fact.reference);
  if (!facts.status) {
    logger.info('dispute fact with no dispute status of its own', {
      processor: fact.processor,
      event: fact.raw_event,
    });
    return 'ignored';
  }
  return applyProcessorFacts(connector, facts, {
    eventType: fact.raw_event,
    eventCreated: Math.max(facts.processor_updated, Number.isFinite(at) ? Math.floor(at / 1000) : 0),
    fingerprint: fact.id,
  });
}
