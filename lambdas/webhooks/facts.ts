/**
 * A stored webhook event → its facts (through the processor's connector, lambdas/connectors/
 * webhooks.ts) → domain actions, the same for every processor. Facts are processor-neutral
 * (lambdas/connectors/facts.ts); every action is idempotent and order-independent on its own:
 *
 * - payment facts → `applyPaymentEvent` (./payments.ts), for the payment behind the fact's
 *   reference (remembered when the processor answered the authorisation) or named by the fact's
 *   merchant reference when the fact is about the payment itself (not a modification, whose
 *   merchant reference is its own): compared with the payment and recorded on its timeline, or,
 *   while the payment waits for the customer's authentication, its outcome applied. A capture is
 *   recorded by the workflow when the processor accepts it; a `captured` fact then finds the payment
 *   captured (`consistent`), however often it comes. A `capture_failed` about a captured payment
 *   flags it for attention (the transition table cannot move it back);
 * - refund facts → `applyRefundUpdate` (succeeded / failed / canceled: a pending refund moves once;
 *   a reversal is recorded);
 * - dispute facts → `applyDisputeFact` (lambdas/disputes/facts.ts), for every processor: a fact
 *   that carries the dispute as its event saw it (`DisputeFact.dispute`: Stripe's events carry the
 *   whole object) applies that (ordered by the event's time, so a stale event changes nothing and
 *   every event keeps its own outcome); otherwise the dispute connector's `retrieve` folds the
 *   dispute's stored facts (Adyen).
 *
 * `unknown_object`: the fact names a payment or refund paystep does not have yet (the
 * notification overtook the workflow's write): the event is parked and retried. An event with no
 * fact (a type paystep does not use) is `ignored`.
 */
import type { ConnectorFact, PaymentFact } from '../connectors/facts.ts';
import type { WebhookFormat } from '../connectors/webhooks.ts';
import type { PaymentStatus } from '../domain/payment.ts';
import { applyDisputeFact } from '../disputes/facts.ts';
import { applyModificationFact, modificationFactMayApply } from '../payments/modification-outcome.ts';
import { applyRefundUpdate } from '../refunds/updates.ts';
import { isIdOf } from '../shared/input.ts';
import {
  annotate,
  getPayment,
  getPaymentState,
  recordWebhookEntries,
  webhookEventKey,
  type TimelineEntry,
} from '../store/payments.ts';
import { paymentIdForReference } from '../store/processor-facts.ts';
import { applyPaymentEvent, passivePaymentEvent, type EventInfo, type PaymentState } from './payments.ts';

export type EventOutcome = 'applied' | 'recorded' | 'ignored' | 'unknown_object';

/** A payment fact as a paystep status, where it names one. */
export function stageOf(event: PaymentFact['event']): PaymentStatus | undefined {
  switch (event) {
    case 'authorised':
      return 'authorized';
    case 'refused':
      return 'failed';
    case 'pending':
      return 'processing';
    case 'action_required':
      return 'requires_action';
    case 'captured':
      return 'captured';
    case 'canceled':
    case 'expired':
      return 'canceled';
    default:
      return undefined; // capture_failed, cancel_failed, authorisation_adjusted: no status of its own
  }
}

/** Combines outcomes of several facts: unknown wins (retry), then applied, recorded, ignored. */
export function combine(outcomes: readonly EventOutcome[]): EventOutcome {
  for (const o of ['unknown_object', 'applied', 'recorded'] as const) if (outcomes.includes(o)) return o;
  return 'ignored';
}

async function paymentIdOf(fact: PaymentFact): Promise<string | undefined> {
  const known = await paymentIdForReference(fact.processor, fact.reference);
  if (known) return known;
  const named = fact.merchantReference;
  return !fact.modificationReference && named && isIdOf('payment', named) ? named : undefined;
}

async function paymentFact(fact: PaymentFact, event: EventInfo): Promise<EventOutcome> {
  const paymentId = await paymentIdOf(fact);
  if (!paymentId) return 'ignored'; // not a paystep payment
  // The outcome of a pending capture or cancel (lambdas/payments/modification-outcome.ts).
  const resolved = await applyModificationFact(paymentId, fact);
  const outcome = await applyPaymentEvent(paymentId, viewOf(fact), event);
  if (fact.event === 'capture_failed' && outcome === 'recorded') {
    const p = await getPayment(paymentId);
    if (p?.status === 'captured')
      await annotate(paymentId, {
        needs_attention: {
          reason: `${fact.processor} reports the capture failed (${fact.reason ?? fact.raw_event}); the money was not taken: check the payment at the processor`,
          since: Math.floor(Date.now() / 1000),
          status: p.status,
        },
      });
  }
  return resolved ? 'applied' : outcome;
}

/**
 * The payment a payment fact is about, read once: the payment its merchant reference names when
 * that payment is the processor payment of the fact (the usual case: no lookup of the reference),
 * else the one the reference index names (as `paymentIdOf`).
 */
async function paymentStateOf(fact: PaymentFact): Promise<PaymentState | undefined> {
  const m = fact.merchantReference;
  const named = !fact.modificationReference && m && isIdOf('payment', m) ? m : undefined;
  const state = named ? await getPaymentState(named) : undefined;
  const p = state?.payment;
  if (p && p.processor === fact.processor && p.processor_reference === fact.reference) return state;
  // The event overtook the workflow's write of the processor reference (the receiver settles events
  // as they arrive): the payment its merchant reference names is the one that created the processor
  // payment, which the reference index would name too (it is written with that payment's id).
  if (p && !p.processor_reference && (!p.processor || p.processor === fact.processor)) return state;
  const known = await paymentIdForReference(fact.processor, fact.reference);
  if (known && known !== named) return getPaymentState(known);
  return state;
}

/**
 * A fact that changes nothing of a payment (the synchronous path already applied what it says):
 * its outcome and the timeline entry to write, decided from one read of the payment with the same
 * rules as `applyFact` (`passivePaymentEvent`). Undefined for any fact that may act (or that is
 * not about a known payment): apply it with `applyFact`.
 */
export async function passiveFact(
  fact: ConnectorFact,
  event: EventInfo,
): Promise<{ outcome: EventOutcome; paymentId: string; entry?: TimelineEntry } | undefined> {
  // capture_failed may flag a captured payment for attention: always applied.
  if (fact.kind !== 'payment' || fact.event === 'capture_failed') return undefined;
  const state = await paymentStateOf(fact);
  if (!state || modificationFactMayApply(state.payment, fact)) return undefined;
  const passive = passivePaymentEvent(state, viewOf(fact), event);
  return passive && { ...passive, paymentId: state.payment.id };
}

/**
 * An event whose facts all change nothing (`passiveFact`), settled without applying it: each
 * payment's timeline entries recorded once per event (`recordWebhookEntries`: no claim of the
 * event needed, whoever delivers it). Its outcome, or undefined when any fact may act, or a
 * payment changed since it was read (began waiting for authentication, vanished): apply it then
 * (`applyStoredEvent`, under the claim). Entries recorded before such an undefined stay recorded
 * once: applying the event finds them.
 */
export async function settlePassively(
  facts: readonly ConnectorFact[],
  event: EventInfo,
): Promise<EventOutcome | undefined> {
  const planned: NonNullable<Awaited<ReturnType<typeof passiveFact>>>[] = [];
  for (const fact of facts) {
    const plan = await passiveFact(fact, event);
    if (!plan) return undefined;
    planned.push(plan);
  }
  // One write per payment, whatever the number of its entries.
  const byPayment = new Map<string, { processor: string; entries: TimelineEntry[] }>();
  planned.forEach((p, i) => {
    if (!p.entry) return;
    const at = byPayment.get(p.paymentId) ?? { processor: facts[i]!.processor, entries: [] };
    at.entries.push(p.entry);
    byPayment.set(p.paymentId, at);
  });
  for (const [paymentId, { processor, entries }] of byPayment) {
    const r = await recordWebhookEntries(paymentId, webhookEventKey(processor, event.id), entries);
    if (r === 'changed' || r === 'missing') return undefined;
  }
  return combine(planned.map((p) => p.outcome));
}

const viewOf = (fact: PaymentFact) => ({
  processor: fact.processor,
  reference: fact.reference,
  stage: stageOf(fact.event),
  raw: fact.processorStatus ?? fact.raw_event,
});

/** Applies one fact of the stored event `event` (its id, type and time go on timelines). */
export async function applyFact(fact: ConnectorFact, event: EventInfo): Promise<EventOutcome> {
  switch (fact.kind) {
    case 'payment':
      return paymentFact(fact, event);
    case 'refund':
      if (fact.event === 'reversed') return 'recorded';
      return applyRefundUpdate(
        fact.processor,
        { id: fact.reference, status: fact.event, failure_reason: fact.reason },
        event.created,
      );
    case 'dispute':
      return applyDisputeFact(fact);
  }
}

/** Applies every fact of a stored event, through its processor's connector (`format`). */
export async function applyStoredEvent(
  format: WebhookFormat,
  stored: string,
  event: EventInfo,
): Promise<EventOutcome> {
  const outcomes: EventOutcome[] = [];
  for (const fact of format.facts(stored)) outcomes.push(await applyFact(fact, event));
  return combine(outcomes);
}
