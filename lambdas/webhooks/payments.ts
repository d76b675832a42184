/**
 * What a processor's payment fact (lambdas/connectors/facts.ts, applied by ./facts.ts) does to
 * the payment.
 *
 * - The payment waits for customer authentication (status `requires_action`, task token of kind
 *   `authentication`): the event is a trigger, not the truth. The payment is re-read from the
 *   processor (`retrieve`), and its *current* state decides: captured / authorized / failed / canceled →
 *   the payment moves there (guarded transition from `requires_action`) and its workflow is
 *   resumed with that outcome ("Authenticated?" in statemachines/payment.asl.json); still waiting
 *   → nothing. Whichever event of the processor's payment comes first, in whatever order, the outcome is
 *   the same, and later events find the payment no longer waiting.
 * - Otherwise the workflow owns the payment's transitions (authorize, capture and cancel steps
 *   write what the processor answered them). The event is only compared with the payment and
 *   recorded on its timeline (`webhook`: ahead, consistent, behind, or conflict), never applied:
 *   an old event cannot move a payment, and a real divergence (conflict) is left visible for the
 *   sweeper and for support.
 */
import { InvalidToken, SendTaskSuccessCommand, TaskDoesNotExist, TaskTimedOut } from '@aws-sdk/client-sfn';
import { CAPTURED_STATUSES, TRANSITIONS, type PaymentStatus } from '../domain/payment.ts';
import { processor } from '../connectors/registry.ts';
import type { RetrieveResult } from '../connectors/types.ts';
import { clients } from '../shared/aws.ts';
import { logger } from '../shared/logger.ts';
import { paymentOutcome } from '../shared/metrics.ts';
import {
  addEvent,
  clearTaskToken,
  getPaymentState,
  recordWebhookEntries,
  transition,
  webhookEventKey,
  TransitionRejected,
  type TimelineEntry,
} from '../store/payments.ts';
import { PaystepError } from '../shared/errors.ts';

/** Thrown when the payment is about to wait but has not stored its task token yet: retry soon. */
export class PaymentNotReady extends PaystepError {
  override name = 'PaymentNotReady';
}

export type PaymentEventOutcome = 'applied' | 'recorded' | 'ignored' | 'unknown_object';

/** What the event says about the processor's side, in paystep's vocabulary. */
export interface ProcessorView {
  processor: string;
  /** The processor's payment reference (`processor_reference` of the payment). */
  reference: string;
  /** The processor's state as a paystep status, when it maps to one. */
  stage?: PaymentStatus;
  /** The processor's own status word, for the timeline (Stripe `succeeded`, Adyen `CAPTURE`, …). */
  raw: string;
}

export interface EventInfo {
  id: string;
  type: string;
  created: number;
}

function reachable(from: PaymentStatus, to: PaymentStatus): boolean {
  const seen = new Set<PaymentStatus>([from]);
  const queue: PaymentStatus[] = [from];
  while (queue.length) {
    const s = queue.shift()!;
    for (const n of TRANSITIONS[s]) {
      if (n === to) return true;
      if (!seen.has(n)) {
        seen.add(n);
        queue.push(n);
      }
    }
  }
  return false;
}

/**
 * How the processor's state relates to the payment's: `consistent` (the same, or captured while
 * the payment is in a later money state), `ahead` (the payment will get there through its
 * workflow), `behind` (an older event), `conflict` (neither: a real divergence).
 */
export function compareStates(
  ours: PaymentStatus,
  theirs: PaymentStatus | undefined,
): 'consistent' | 'ahead' | 'behind' | 'conflict' | 'unknown' {
  if (!theirs) return 'unknown';
  if (theirs === ours) return 'consistent';
  if (theirs === 'captured' && CAPTURED_STATUSES.has(ours)) return 'consistent';
  if (reachable(ours, theirs)) return 'ahead';
  if (reachable(theirs, ours)) return 'behind';
  return 'conflict';
}

type AuthOutcome = 'captured' | 'authorized' | 'failed' | 'canceled';

function outcomeOf(truth: RetrieveResult): AuthOutcome | undefined {
  switch (truth.status) {
    case 'captured':
      return 'captured';
    case 'authorized':
      return 'authorized';
    case 'canceled':
      return 'canceled';
    case 'requires_payment_method':
      return 'failed';
    default:
      return undefined; // requires_action, processing: the customer has not finished yet
  }
}

/** The outcome a payment already moved to by an earlier (interrupted) delivery, if any. */
function outcomeOfStatus(s: PaymentStatus): AuthOutcome | undefined {
  if (s === 'captured' || s === 'authorized' || s === 'failed' || s === 'canceled') return s;
  if (CAPTURED_STATUSES.has(s)) return 'captured';
  return undefined;
}

async function resume(token: string, outcome: AuthOutcome): Promise<boolean> {
  try {
    await clients
      .sfn()
      .send(new SendTaskSuccessCommand({ taskToken: token, output: JSON.stringify({ outcome }) }));
    return true;
  } catch (err) {
    // Already resumed (an earlier delivery), or the wait lapsed: nothing left to resume.
    if (err instanceof TaskTimedOut || err instanceof TaskDoesNotExist || err instanceof InvalidToken)
      return false;
    throw err;
  }
}

async function moveTo(
  paymentId: string,
  outcome: AuthOutcome,
  truth: RetrieveResult,
  eventId: string,
  processorName: string,
) {
  const note = `processor reports ${truth.rawStatus} (webhook ${eventId})`;
  const from: PaymentStatus[] = ['requires_action'];
  switch (outcome) {
    case 'captured':
      return transition(paymentId, 'captured', {
        from,
        set: {
          amount_captured: truth.amountCaptured,
          refundable_remaining: truth.amountCaptured,
          capture_before: null,
        },
        note,
      });
    case 'authorized':
      return transition(paymentId, 'authorized', {
        from,
        set: {
          amount_captured: 0,
          refundable_remaining: 0,
          capture_before: Math.floor(Date.now() / 1000) + 7 * 86400,
        },
        note,
      });
    case 'failed': {
      const adapter = await processor(processorName);
      const failure = truth.failure ?? adapter.mapDecline('payment_intent_authentication_failure');
      return transition(paymentId, 'failed', { from, set: { failure }, note: `${failure.code}: ${note}` });
    }
    case 'canceled':
      return transition(paymentId, 'canceled', {
        from,
        set: { cancellation_reason: 'canceled_at_processor' },
        note,
      });
  }
}

/**
 * Applies a processor event about payment `paymentId` (see the module comment). Throws
 * PaymentNotReady when the payment is in `requires_action` but its workflow has not stored the
 * task token yet (retry the event shortly), and on dependency errors.
 */
export type PaymentState = NonNullable<Awaited<ReturnType<typeof getPaymentState>>>;

/** What every `webhook` timeline entry says of the event. */
export const entryBase = (view: ProcessorView, event: EventInfo) => ({
  type: 'webhook',
  processor: view.processor,
  event_id: event.id,
  event_type: event.type,
  processor_status: view.raw,
});

/**
 * What the event does when it does not act on the payment: nothing (`ignored`: another processor,
 * another attempt's processor payment), or a timeline entry comparing the states (`recorded`).
 * The same decision `applyPaymentEvent` makes, from the payment as read, with no I/O. Undefined
 * when the event may act: the payment waits for the customer's authentication, or is about to.
 */
export function passivePaymentEvent(
  state: PaymentState,
  view: ProcessorView,
  event: EventInfo,
): { outcome: 'ignored' | 'recorded'; entry?: TimelineEntry } | undefined {
  const p = state.payment;
  if (p.processor && p.processor !== view.processor) return { outcome: 'ignored' };
  if (p.processor_reference && p.processor_reference !== view.reference) {
    // Another attempt's processor payment (e.g. after a failover): not this payment's truth.
    logger.warn('processor event for another attempt of the payment', { paymentId: p.id, eventId: event.id });
    return { outcome: 'ignored' };
  }
  if ((state.token && state.kind === 'authentication') || p.status === 'requires_action') return undefined;
  const comparison = compareStates(p.status, view.stage);
  if (comparison === 'conflict')
    logger.warn('processor state conflicts with the payment', {
      paymentId: p.id,
      eventId: event.id,
      ours: p.status,
      theirs: view.stage,
    });
  return { outcome: 'recorded', entry: { ...entryBase(view, event), comparison } };
}

export async function applyPaymentEvent(
  paymentId: string,
  view: ProcessorView,
  event: EventInfo,
): Promise<PaymentEventOutcome> {
  const state = await getPaymentState(paymentId);
  if (!state) return 'unknown_object';
  const passive = passivePaymentEvent(state, view, event);
  if (passive) {
    if (!passive.entry) return passive.outcome;
    // Once per event, whoever delivers it (the receiver may have settled it already).
    const r = await recordWebhookEntries(paymentId, webhookEventKey(view.processor, event.id), [
      passive.entry,
    ]);
    if (r === 'missing') return 'unknown_object';
    // It began waiting for the customer's authentication since it was read: apply the event.
    if (r === 'changed') return applyPaymentEvent(paymentId, view, event);
    return passive.outcome;
  }
  const p = state.payment;
  const waiting = { token: state.token, kind: state.kind };
  const base = entryBase(view, event);

  if (waiting.token && waiting.kind === 'authentication') {
    // Either waiting now, or moved by an earlier delivery that stopped before resuming.
    let outcome = outcomeOfStatus(p.status);
    if (p.status === 'requires_action') {
      const adapter = await processor(view.processor);
      const truth = await adapter.retrieve(view.reference);
      outcome = outcomeOf(truth);
      if (!outcome) {
        await addEvent(paymentId, {
          ...base,
          comparison: 'consistent',
          note: `processor still ${truth.rawStatus}`,
        });
        return 'recorded';
      }
      try {
        const moved = await moveTo(paymentId, outcome, truth, event.id, view.processor);
        // Counted once: by the write that moved the payment (a redelivered event changes nothing).
        if (moved.changed && outcome === 'failed')
          paymentOutcome(view.processor, 'declined', moved.payment.failure?.code);
        else if (moved.changed && outcome !== 'canceled') paymentOutcome(view.processor, 'approved');
      } catch (err) {
        if (!(err instanceof TransitionRejected)) throw err;
        await addEvent(paymentId, { ...base, comparison: 'conflict', note: err.message });
        logger.warn('processor outcome could not be applied', { paymentId, eventId: event.id, to: outcome });
        return 'recorded';
      }
    }
    if (!outcome) {
      await addEvent(paymentId, { ...base, comparison: compareStates(p.status, view.stage) });
      return 'recorded';
    }
    const resumed = await resume(waiting.token, outcome);
    // The token's removal and the event's entry in one write, the event noted as recorded: a
    // duplicate delivery arriving after it finds nothing to do.
    await clearTaskToken(paymentId, waiting.token, {
      eventKey: webhookEventKey(view.processor, event.id),
      entry: { ...base, comparison: 'ahead', action: resumed ? 'resumed' : 'already_resumed', outcome },
    });
    return 'applied';
  }

  // requires_action, and the workflow has not stored its task token yet.
  throw new PaymentNotReady(`payment ${paymentId} is requires_action but its workflow is not waiting yet`);
}
