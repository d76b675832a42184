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
import { TRANSITIONS, type PaymentStatus } from '../domain/payment.ts';
import { applyDisputeFact } from '../disputes/facts.ts';
import { applyModificationFact, modificationFactMayApply } from '../payments/modification-outcome.ts';
import { applyRefundUpdate } from '../refunds/updates.ts';
import { isIdOf } from '../shared/input.ts';
import {
  annotate,
  getPayment,
  getPaymentState,
  paymentState,
  recordWebhookEntries,
  webhookEventKey,
  type PaymentState,
  type TimelineEntry,
} from '../store/payments.ts';
import { paymentIdForReference } from '../store/processor-facts.ts';
import {
  applyPaymentEvent,
  compareStates,
  entryBase,
  passivePaymentEvent,
  type EventInfo,
} from './payments.ts';

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
async function paymentStateOf(
  fact: PaymentFact,
  /** The named payment as a failed write just found it (undefined: read it; null: no such payment). */
  known?: PaymentState | null,
): Promise<PaymentState | undefined> {
  const named = namedPayment(fact);
  const state = named
    ? known === undefined
      ? await getPaymentState(named)
      : (known ?? undefined)
    : undefined;
  const p = state?.payment;
  if (p && p.processor === fact.processor && p.processor_reference === fact.reference) return state;
  // The event overtook the workflow's write of the processor reference (the receiver settles events
  // as they arrive): the payment its merchant reference names is the one that created the processor
  // payment, which the reference index would name too (it is written with that payment's id).
  if (p && !p.processor_reference && (!p.processor || p.processor === fact.processor)) return state;
  const indexed = await paymentIdForReference(fact.processor, fact.reference);
  if (indexed && indexed !== named) return getPaymentState(indexed);
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
  known?: PaymentState | null,
): Promise<{ outcome: EventOutcome; paymentId: string; entry?: TimelineEntry } | undefined> {
  // capture_failed may flag a captured payment for attention: always applied.
  if (fact.kind !== 'payment' || fact.event === 'capture_failed') return undefined;
  const state = await paymentStateOf(fact, known);
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
  // One fact about the payment it names (the usual event): written first, on a guess (`settleByGuess`).
  let known: PaymentState | null | undefined;
  if (facts.length === 1) {
    const guessed = await settleByGuess(facts[0]!, event);
    if (guessed && 'outcome' in guessed) return guessed.outcome;
    known = guessed?.known;
  }
  const planned: NonNullable<Awaited<ReturnType<typeof passiveFact>>>[] = [];
  for (const fact of facts) {
    const plan = await passiveFact(fact, event, known);
    if (!plan) return undefined;
    if (plan.entry && facts.length === 1 && fact.kind === 'payment') observe(fact, plan.entry.comparison);
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

/** The payment a payment fact names as its own (its merchant reference), if it does. */
function namedPayment(fact: PaymentFact): string | undefined {
  const m = fact.merchantReference;
  return !fact.modificationReference && m && isIdOf('payment', m) ? m : undefined;
}

type Comparison = ReturnType<typeof compareStates>;
const STATUSES = Object.keys(TRANSITIONS) as PaymentStatus[];

/**
 * How the recent events of each kind (processor, event type) compared with their payments in this
 * container, counts halved as they grow so that they follow the recent mix. The likeliest is the
 * guess for the next such event (Stripe's `payment_intent.created` usually arrives once the payment
 * is captured: `behind`; sometimes before the workflow wrote the answer: `consistent`). Only a
 * guess: the write that records the entry holds only if the payment is in a status that gives it.
 */
const seenComparisons = new Map<string, Map<Comparison, number>>();
const kindOf = (fact: PaymentFact) => `${fact.processor}\u0000${fact.raw_event}`;

function observe(fact: PaymentFact, comparison: unknown): void {
  if (typeof comparison !== 'string' || comparison === 'conflict') return;
  const counts = seenComparisons.get(kindOf(fact)) ?? new Map<Comparison, number>();
  counts.set(comparison as Comparison, (counts.get(comparison as Comparison) ?? 0) + 1);
  if ([...counts.values()].reduce((a, b) => a + b, 0) > 64)
    for (const [c, n] of counts) counts.set(c, Math.floor(n / 2));
  seenComparisons.set(kindOf(fact), counts);
}

function likeliest(fact: PaymentFact): Comparison {
  let best: Comparison = 'consistent';
  let most = 0;
  for (const [c, n] of seenComparisons.get(kindOf(fact)) ?? []) if (n > most) [best, most] = [c, n];
  return best;
}

/**
 * Settles a one-fact event without reading its payment first. The entry is written on a guess of
 * the payment, under a condition that holds exactly when the payment is as guessed: the fact's
 * processor payment, or one the workflow has not written a processor reference on yet (the event
 * overtook it: the two cases `paymentStateOf` takes the named payment in); in a status that
 * compares to the fact as such events most often did lately (`likeliest`); no modification pending
 * on it while `authorized` (`modificationFactMayApply`); and, as for any passive entry, not waiting
 * for authentication. When it holds, `passiveFact` would have read the payment and decided this
 * very entry (`recorded`, with this comparison): the same outcome, with no read. When it does not,
 * the failed write carries the payment as it is (`known`; null: none), and the caller decides from
 * it as from a read, then writes (the same two calls as a read and a write). Undefined: no guess to
 * make (not a payment fact about the payment it names).
 */
async function settleByGuess(
  fact: ConnectorFact,
  event: EventInfo,
): Promise<{ outcome: EventOutcome } | { known: PaymentState | null } | undefined> {
  if (fact.kind !== 'payment' || fact.event === 'capture_failed') return undefined;
  const paymentId = namedPayment(fact);
  if (!paymentId) return undefined;
  const view = viewOf(fact);
  const comparison = view.stage ? likeliest(fact) : ('unknown' as const);
  const statuses = STATUSES.filter(
    (s) => s !== 'requires_action' && compareStates(s, view.stage) === comparison,
  );
  if (!statuses.length) return undefined;
  const r = await recordWebhookEntries(
    paymentId,
    webhookEventKey(fact.processor, event.id),
    [{ ...entryBase(view, event), comparison }],
    true,
    {
      expression: [
        '((#g_p = :g_p AND #g_ref = :g_ref) OR ((attribute_not_exists(#g_ref) OR #g_ref = :g_null) AND (attribute_not_exists(#g_p) OR #g_p = :g_null OR #g_p = :g_p)))',
        `#g_st IN (${statuses.map((_, i) => `:g_s${i}`).join(', ')})`,
        '(attribute_not_exists(#g_pm) OR #g_pm = :g_null OR #g_st <> :g_auth)',
      ].join(' AND '),
      names: {
        '#g_p': 'processor',
        '#g_ref': 'processor_reference',
        '#g_st': 'status',
        '#g_pm': 'pending_modification',
      },
      values: {
        ':g_p': fact.processor,
        ':g_ref': fact.reference,
        ':g_null': null,
        ':g_auth': 'authorized',
        ...Object.fromEntries(statuses.map((s, i) => [`:g_s${i}`, s])),
      },
    },
  );
  if (r === 'recorded') {
    observe(fact, comparison);
    return { outcome: 'recorded' };
  }
  if (r === 'missing') return { known: null };
  if (typeof r === 'string') throw new Error(`unexpected answer to a guessed write: ${r}`);
  return { known: paymentState(r.guessed) };
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
