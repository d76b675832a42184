/**
 * The incident backlog (docs/routing.md "The backlog"): what only the processor in an `open`
 * incident can do — capture or cancel a payment it authorized, refund a payment it captured — is
 * held instead of failing, and replayed when the incident is resolved.
 *
 * - Holding: the workflow step that would call the processor (capture, cancel, refund submit) asks
 *   `holdingIncident`; if it holds, the step records the operation (`holdPayment`/`holdRefund`:
 *   the backlog entry, the timeline, the payment's or refund's `held`) and answers `held`; the
 *   workflow then waits in "Wait for the processor to return" (lambdas/incidents/wait.ts), which
 *   stores its task token on the entry.
 * - Releasing: lambdas/incidents/release.ts, when the incident is resolved.
 */
import { InvalidToken, SendTaskSuccessCommand, TaskDoesNotExist, TaskTimedOut } from '@aws-sdk/client-sfn';
import { clients } from '../shared/aws.ts';
import { holdsProcessor, type Incident } from '../domain/incidents.ts';
import type { HeldOperation } from '../domain/backlog.ts';
import type { Payment, PendingModification } from '../domain/payment.ts';
import { runningIncident } from '../store/incidents.ts';
import { holdOperation, type HoldRequest } from '../store/backlog.ts';
import { addEvent, getPayment, markModificationHeld } from '../store/payments.ts';
import { setRefundAttributes } from '../store/refunds.ts';

/** The processor's incident if it is `open` (only an open incident holds; a suspected one does not). */
export async function holdingIncident(processor: string | null | undefined): Promise<Incident | undefined> {
  if (!processor) return undefined;
  const i = await runningIncident(processor);
  return i && holdsProcessor(i.status) ? i : undefined;
}

export type PaymentOperation = 'capture' | 'cancel';

export const paymentHoldRequest = (
  p: Payment,
  kind: PaymentOperation,
  incident: Incident,
  amount?: number,
): HoldRequest => ({
  incident_id: incident.id,
  processor: incident.processor,
  merchant_id: p.merchant_id,
  kind,
  payment_id: p.id,
  ...(kind === 'capture' ? { amount: amount ?? p.amount } : {}),
  currency: p.currency,
  held_at: Date.now(),
});

export const refundHoldRequest = (r: Record<string, unknown>, incident: Incident): HoldRequest => ({
  incident_id: incident.id,
  processor: incident.processor,
  merchant_id: r.merchant_id as string,
  kind: 'refund',
  payment_id: r.payment_id as string,
  refund_id: r.id as string,
  amount: r.amount as number,
  currency: r.currency as string,
  held_at: Date.now(),
});

const why = (i: Incident) => `${i.processor} is in incident ${i.id} (${i.reason})`;

/**
 * Holds a requested capture or cancel (`pending`, recorded with its idempotency key before this)
 * in the incident's backlog: the entry, the timeline (once) and the payment's `held`.
 */
export async function holdPayment(
  p: Payment,
  pending: PendingModification,
  incident: Incident,
): Promise<HeldOperation> {
  const { held } = await holdOperation(paymentHoldRequest(p, pending.action, incident, pending.amount));
  if (pending.held?.incident_id !== incident.id) {
    await addEvent(p.id, {
      type: 'backlog',
      event: 'held',
      operation: pending.action,
      incident_id: incident.id,
      reason: `${pending.action} held: ${why(incident)}; it is made when the incident is resolved`,
      idempotency_key: pending.idempotency_key,
    });
    await markModificationHeld(p.id, pending.idempotency_key, {
      incident_id: incident.id,
      since: held.held_at,
    });
  }
  return held;
}

/**
 * Where the capture and cancel steps decide (docs/routing.md "The backlog"): a requested
 * modification whose processor is in an open incident is held (its incident is returned); otherwise
 * a mark left from an earlier hold is cleared, since it is about to be sent.
 */
export async function holdIfIncident(
  p: Payment,
  pending: PendingModification,
): Promise<Incident | undefined> {
  const incident = await holdingIncident(p.processor);
  if (incident) await holdPayment(p, pending, incident);
  else if (pending.held) await markModificationHeld(p.id, pending.idempotency_key, undefined);
  return incident;
}

/** Holds a pending refund in the incident's backlog: the entry, the payment's timeline (once), the refund's `held`. */
export async function holdRefund(r: Record<string, unknown>, incident: Incident): Promise<HeldOperation> {
  const { held } = await holdOperation(refundHoldRequest(r, incident));
  if ((r.held as { incident_id?: string } | null | undefined)?.incident_id !== incident.id) {
    await addEvent(r.payment_id as string, {
      type: 'refund',
      refund_id: r.id as string,
      event: 'held',
      incident_id: incident.id,
      reason: `refund held: ${why(incident)}; it is made when the incident is resolved`,
    });
    await setRefundAttributes(r.id as string, { held: { incident_id: incident.id, since: held.held_at } });
  }
  return held;
}

/**
 * What resumes "Wait for the processor to return": for a payment, the instruction the operation
 * step takes again (the amount and reason recorded with the request); for a refund, nothing more.
 */
export async function resumeInstruction(
  kind: 'capture' | 'cancel' | 'refund',
  paymentId: string,
): Promise<Record<string, unknown>> {
  if (kind === 'refund') return { released: true };
  const p = await getPayment(paymentId);
  const m = p?.pending_modification?.action === kind ? p.pending_modification : undefined;
  return kind === 'capture'
    ? { action: 'capture', amount: m?.amount ?? p?.amount }
    : { action: 'cancel', reason: m?.reason ?? 'requested_by_customer' };
}

/** Resumes a waiting workflow; false when nothing waited on the token any more (resumed before). */
export async function resumeWaiting(token: string, output: unknown): Promise<boolean> {
  try {
    await clients
      .sfn()
      .send(new SendTaskSuccessCommand({ taskToken: token, output: JSON.stringify(output) }));
    return true;
  } catch (err) {
    if (err instanceof TaskTimedOut || err instanceof TaskDoesNotExist || err instanceof InvalidToken)
      return false;
    throw err;
  }
}
