/**
 * The outcome of a capture or cancel (docs/states.md, "Pending capture and cancel"), applied once
 * whichever way it comes: the processor's own answer (Stripe decides at once), its notification
 * (Adyen's CAPTURE / CAPTURE_FAILED / CANCELLATION, as processor-neutral facts), or the workflow's
 * check with the processor when the notification is late ("Check the capture with the processor").
 *
 * Every write is conditional on the modification still being the payment's pending one (its
 * idempotency key) and goes through the guarded transition table (MODIFICATIONS → TRANSITIONS),
 * so an outcome applied twice, or a late fact of an earlier modification, changes nothing. After
 * the outcome, a workflow waiting for it ("Wait for the capture outcome" / "… cancel outcome",
 * task token of kind `modification`) is resumed with where the payment now is.
 */
import { InvalidToken, SendTaskSuccessCommand, TaskDoesNotExist, TaskTimedOut } from '@aws-sdk/client-sfn';
import type { PaymentFact } from '../connectors/facts.ts';
import { pendingOf, type ModificationOutcome } from '../connectors/modifications.ts';
import { processor } from '../connectors/registry.ts';
import { ProcessorRequestError } from '../connectors/types.ts';
import { MODIFICATIONS, type Payment, type PendingModification } from '../domain/payment.ts';
import { clients } from '../shared/aws.ts';
import { PaystepError } from '../shared/errors.ts';
import { logger } from '../shared/logger.ts';
import { listFacts } from '../store/processor-facts.ts';
import {
  addEvent,
  clearModification,
  clearTaskToken,
  getPayment,
  getTaskToken,
  markModificationPending,
  transition,
  TransitionRejected,
} from '../store/payments.ts';

/**
 * Where the payment is, as the payment workflow's Choices read it: its status, or
 * `capture_requested` / `cancel_requested` while a modification is pending (still `authorized`).
 */
export function workflowOutcome(p: Payment): string {
  if (p.status === 'authorized' && p.pending_modification)
    return `${p.pending_modification.action}_requested`;
  return p.status;
}

export interface ModificationResult {
  succeeded: boolean;
  /** A capture's captured amount (minor units); default: the amount requested. */
  amount?: number;
  /** Why it failed, when it did. */
  reason?: string;
  /** A capture the processor refused because the authorization had lapsed: the payment is canceled. */
  canceledAtProcessor?: boolean;
  /** Where the outcome comes from, for the timeline. */
  source: string;
}

/**
 * Applies the outcome of `pending` (if it is still the payment's pending modification), then
 * resumes a workflow waiting for it. Returns whether this call changed the payment.
 */
export async function resolveModification(
  id: string,
  pending: PendingModification,
  r: ModificationResult,
): Promise<boolean> {
  const { action } = pending;
  const { from, succeeded } = MODIFICATIONS[action];
  const errorField = action === 'capture' ? 'last_capture_error' : 'last_cancel_error';
  let changed = false;
  try {
    if (r.succeeded) {
      const amount = r.amount ?? pending.amount ?? 0;
      const set =
        action === 'capture'
          ? { amount_captured: amount, refundable_remaining: amount, capture_before: null }
          : { cancellation_reason: pending.reason ?? 'requested_by_customer' };
      changed = (
        await transition(id, succeeded, {
          from: [from],
          set,
          remove: ['pending_modification', errorField],
          modificationKey: pending.idempotency_key,
          note: `${action} confirmed: ${r.source}`,
        })
      ).changed;
    } else if (r.canceledAtProcessor) {
      changed = (
        await transition(id, 'canceled', {
          from: [from],
          set: {
            cancellation_reason: 'authorization_expired',
            [errorField]: { code: `${action}_failed`, message: r.reason ?? r.source, at: Date.now() },
          },
          remove: ['pending_modification'],
          modificationKey: pending.idempotency_key,
          note: r.source,
        })
      ).changed;
    } else {
      changed = await clearModification(id, pending, {
        code: `${action}_failed`,
        message: r.reason ?? r.source,
      });
      if (changed)
        await addEvent(id, {
          type: 'modification',
          event: 'failed',
          action,
          reason: r.reason,
          source: r.source,
        });
    }
  } catch (err) {
    // Another modification is pending now, or the payment moved on: not this outcome's to apply.
    if (!(err instanceof TransitionRejected)) throw err;
    logger.info('modification outcome not applied', { paymentId: id, action, reason: err.message });
  }
  await resumeWaiting(id);
  return changed;
}

/** Resumes "Wait for the … outcome" if the payment's workflow waits there; drops a used token. */
async function resumeWaiting(id: string): Promise<void> {
  const p = await getPayment(id);
  if (!p || p.pending_modification) return;
  const { token, kind } = await getTaskToken(id);
  if (!token) return;
  if (kind === 'modification') {
    try {
      await clients.sfn().send(
        new SendTaskSuccessCommand({
          taskToken: token,
          output: JSON.stringify({ status: workflowOutcome(p) }),
        }),
      );
    } catch (err) {
      // Resumed already (another delivery, the check), or the wait lapsed and the check took over.
      if (!(err instanceof TaskTimedOut || err instanceof TaskDoesNotExist || err instanceof InvalidToken))
        throw err;
    }
    await clearTaskToken(id, token);
  } else if (kind === 'capture' && p.status !== 'authorized') {
    await clearTaskToken(id, token); // the instruction's token, used: nothing waits on it any more
  }
}

/** The modification a processor fact is about: its action and whether it succeeded. */
function meaning(
  event: PaymentFact['event'],
): { action: 'capture' | 'cancel'; succeeded: boolean } | { lapsed: true } | undefined {
  switch (event) {
    case 'captured':
      return { action: 'capture', succeeded: true };
    case 'capture_failed':
      return { action: 'capture', succeeded: false };
    case 'canceled':
      return { action: 'cancel', succeeded: true };
    case 'cancel_failed':
      return { action: 'cancel', succeeded: false };
    case 'expired':
      return { lapsed: true };
    default:
      return undefined;
  }
}

/**
 * A verified processor fact (CAPTURE, CAPTURE_FAILED, CANCELLATION, …) about a payment with a
 * pending modification: applies its outcome. False when the fact resolves nothing (no modification
 * pending, another action, or another modification's fact).
 */
/** Whether `applyModificationFact` could change payment `p` (else it reads it and returns false). */
export function modificationFactMayApply(p: Payment, fact: PaymentFact): boolean {
  return meaning(fact.event) !== undefined && !!p.pending_modification && p.status === 'authorized';
}

export async function applyModificationFact(paymentId: string, fact: PaymentFact): Promise<boolean> {
  const m = meaning(fact.event);
  if (!m) return false;
  const p = await getPayment(paymentId);
  const pending = p?.pending_modification;
  if (!p || !pending || p.status !== 'authorized') return false;
  if (pending.reference && fact.modificationReference && pending.reference !== fact.modificationReference)
    return false; // a fact of an earlier capture or cancel of this payment
  const source = `${fact.raw_event} notification ${fact.id}`;
  if ('lapsed' in m || (pending.action === 'capture' && m.action === 'cancel' && m.succeeded))
    return resolveModification(paymentId, pending, {
      succeeded: pending.action === 'cancel',
      canceledAtProcessor: pending.action === 'capture',
      reason: fact.reason ?? fact.raw_event,
      source,
    });
  if (m.action !== pending.action) return false;
  if (!m.succeeded && p.processor && p.processor_reference) {
    // As when a processor refuses a capture outright: its own state decides. An authorization
    // that was canceled there (lapsed, or canceled outside paystep) cancels the payment.
    const adapter = await processor(p.processor);
    const truth = await adapter.retrieve(p.processor_reference).catch(() => undefined);
    if (truth?.status === 'canceled' && pending.action === 'capture')
      return resolveModification(paymentId, pending, {
        succeeded: false,
        canceledAtProcessor: true,
        reason: fact.reason ?? fact.raw_event,
        source: `${source}; the processor reports the authorization ${truth.rawStatus}`,
      });
  }
  return resolveModification(paymentId, pending, {
    succeeded: m.succeeded,
    ...(m.succeeded && fact.amount ? { amount: fact.amount.value } : {}),
    ...(!m.succeeded ? { reason: fact.reason ?? fact.raw_event } : {}),
    source,
  });
}

/** How long a modification may stay pending before the workflow flags it (Adyen retries notifications for 30 days). */
export const MAX_PENDING_SECONDS = 7 * 86400;

/** A capture or cancel still without an outcome after MAX_PENDING_SECONDS: flagged, never guessed. */
export class ModificationOutcomeUnknown extends PaystepError {
  override name = 'ModificationOutcomeUnknown';
}

/**
 * "Check the capture with the processor" / "Check the cancellation with the processor": the
 * notification is late (or its application was lost), so ask the processor's state source — its
 * API (Stripe), or the facts paystep stored (Adyen, which has no read API) — and apply a decided
 * outcome. Still undecided → the workflow waits again; for longer than MAX_PENDING_SECONDS → thrown.
 * A modification whose processor answer was never recorded (`requested`) is asked again with its
 * own idempotency key first.
 * Returns the workflow outcome (see workflowOutcome).
 */
export async function checkPendingModification(p: Payment): Promise<string> {
  const pending = p.pending_modification;
  if (!pending || p.status !== 'authorized' || !p.processor || !p.processor_reference)
    return workflowOutcome(p);
  const adapter = await processor(p.processor);
  if (pending.state === 'requested') {
    // Recorded, but the processor's answer never reached paystep (a crash, an outage): ask again
    // with the same idempotency key — the processor answers what it did, or does it now, once.
    const answer =
      pending.action === 'capture'
        ? await adapter.capture(p.processor_reference, pending.amount ?? p.amount, pending.idempotency_key)
        : await adapter.cancel(p.processor_reference, pending.idempotency_key);
    const accepted = pendingOf(answer as ModificationOutcome);
    await addEvent(p.id, {
      type: 'attempt',
      processor: p.processor,
      operation: pending.action,
      outcome: accepted ? 'pending' : pending.action === 'capture' ? 'captured' : 'canceled',
      processor_status: answer.rawStatus,
      modification_reference: accepted?.reference,
      reason: 'answer unknown: asked again with the same idempotency key',
    });
    if (accepted) await markModificationPending(p.id, pending.idempotency_key, accepted.reference);
    else
      await resolveModification(p.id, pending, {
        succeeded: true,
        ...('amountCaptured' in answer
          ? { amount: (answer as { amountCaptured: number }).amountCaptured }
          : {}),
        source: `the processor answered ${answer.rawStatus}`,
      });
    const after = await getPayment(p.id);
    return after ? workflowOutcome(after) : workflowOutcome(p);
  }
  const truth = await adapter.retrieve(p.processor_reference).catch((err: Error) => {
    // A processor without a read API has no fact yet: undecided, not an error.
    if (err instanceof ProcessorRequestError && err.code === 'not_supported') return undefined;
    throw err;
  });
  await addEvent(p.id, {
    type: 'attempt',
    processor: p.processor,
    operation: 'retrieve',
    outcome: truth?.rawStatus ?? 'unknown',
    reason: `${pending.action} pending`,
  });
  const source = `the processor reports ${truth?.rawStatus ?? 'no outcome'}`;
  if (pending.action === 'capture' && truth?.status === 'captured')
    await resolveModification(p.id, pending, { succeeded: true, amount: truth.amountCaptured, source });
  else if (truth?.status === 'canceled')
    await resolveModification(p.id, pending, {
      succeeded: pending.action === 'cancel',
      canceledAtProcessor: pending.action === 'capture',
      source,
    });
  else {
    // A failed modification leaves the payment authorized at the processor: its failure fact says so.
    const failed = (await listFacts(p.processor, p.processor_reference)).find(
      (f) =>
        f.kind === 'payment' &&
        f.event === (pending.action === 'capture' ? 'capture_failed' : 'cancel_failed') &&
        (!pending.reference || f.modificationReference === pending.reference),
    ) as PaymentFact | undefined;
    if (failed)
      await resolveModification(p.id, pending, {
        succeeded: false,
        reason: failed.reason ?? failed.raw_event,
        source: `${failed.raw_event} notification ${failed.id}`,
      });
    else if (Date.now() / 1000 - pending.requested_at > MAX_PENDING_SECONDS)
      throw new ModificationOutcomeUnknown(
        `the ${pending.action} of payment ${p.id} has had no outcome from the processor since ${new Date(pending.requested_at * 1000).toISOString()}`,
      );
  }
  const after = await getPayment(p.id);
  return after ? workflowOutcome(after) : workflowOutcome(p);
}
