/**
 * Releasing the incident backlog (docs/routing.md "The backlog"), when the incident is resolved
 * (`drainBacklog`, from resolveIncident): payments of the processor left with an unknown outcome
 * are added as `outcome_check` entries, then every entry is released in replay order, one at a
 * time: its workflow is resumed and performs the operation with the idempotency key it chose
 * before it was held (so a release done twice moves no money twice), and the entry records what
 * it ended in (`done`/`failed`, `outcome` in words). An outcome check runs the sweeper's check of
 * an unknown outcome. Holding: lambdas/incidents/backlog.ts.
 */
import { logger } from '../shared/logger.ts';
import { formatAmount } from '../domain/money.ts';
import type { Incident } from '../domain/incidents.ts';
import { getIncident } from '../store/incidents.ts';
import type { HeldOperation } from '../domain/backlog.ts';
import { CAPTURED_STATUSES, type Payment } from '../domain/payment.ts';
import { finishHeld, heldTaskToken, holdOperation, listHeld, markReleased } from '../store/backlog.ts';
import { addEvent, getPayment, toPayment } from '../store/payments.ts';
import { getRefundItem } from '../store/refunds.ts';
import { openItems } from '../store/open-items.ts';
import { waitForPayment } from '../payments/wait.ts';
import { checkUnknownOutcome, type SweepResult } from '../sweeper/run.ts';
import { resumeInstruction, resumeWaiting, type PaymentOperation } from './backlog.ts';

/** How long a release waits for one replayed operation before releasing the next (ms). */
export const REPLAY_WAIT_MS = 15_000;

type Finished = { status: 'done' | 'failed'; outcome: string } | undefined;

/** What a released capture or cancel ended in, once its step ran again (undefined: not yet). */
function paymentOutcome(kind: PaymentOperation, p: Payment): Finished {
  const m = p.pending_modification;
  if (p.status === 'authorized' && m?.action === kind && m.state === 'requested') return undefined; // not replayed yet
  if (kind === 'capture') {
    if (CAPTURED_STATUSES.has(p.status))
      return { status: 'done', outcome: `captured ${formatAmount(p.amount_captured, p.currency)}` };
    if (p.status === 'canceled')
      return {
        status: 'failed',
        outcome: 'not captured: the authorization had lapsed; the payment is canceled',
      };
    if (m?.action === 'capture')
      return { status: 'done', outcome: 'capture accepted by the processor; its confirmation is awaited' };
    const e = p.last_capture_error;
    return { status: 'failed', outcome: `capture failed${e ? `: ${e.code}: ${e.message}` : ''}` };
  }
  if (p.status === 'canceled') return { status: 'done', outcome: 'canceled' };
  if (CAPTURED_STATUSES.has(p.status))
    return { status: 'failed', outcome: 'not canceled: the processor had captured the payment' };
  if (m?.action === 'cancel')
    return { status: 'done', outcome: 'cancellation accepted by the processor; its confirmation is awaited' };
  const e = p.last_cancel_error;
  return { status: 'failed', outcome: `cancel failed${e ? `: ${e.code}: ${e.message}` : ''}` };
}

function refundOutcome(r: Record<string, unknown> | undefined): Finished {
  if (!r) return { status: 'failed', outcome: 'the refund is gone' };
  if (r.status === 'succeeded') return { status: 'done', outcome: 'refund succeeded' };
  if (r.status === 'failed' || r.status === 'canceled')
    return {
      status: 'failed',
      outcome: `refund ${String(r.status)}: ${String(r.failure_reason ?? 'no reason given')}`,
    };
  if (r.processor_reference && !r.held)
    return { status: 'done', outcome: "refund submitted; the processor's outcome is pending" };
  return undefined;
}

async function awaitRefund(id: string, ms: number): Promise<Finished> {
  const deadline = Date.now() + ms;
  let delay = 5;
  for (;;) {
    const out = refundOutcome(await getRefundItem(id));
    if (out || Date.now() >= deadline) return out;
    await new Promise((res) => setTimeout(res, Math.min(delay, Math.max(1, deadline - Date.now()))));
    delay = Math.min(delay * 2, 100);
  }
}

/** An unknown outcome, checked with the processor by the sweeper's own check. */
async function checkOutcome(h: HeldOperation): Promise<Finished> {
  const p = await getPayment(h.payment_id);
  if (!p) return { status: 'failed', outcome: 'the payment is gone' };
  if (p.status !== 'processing') return { status: 'done', outcome: `decided meanwhile: ${p.status}` };
  const result: SweepResult = { examined: 1, resolved: [], escalated: [], untouched: 0 };
  await checkUnknownOutcome(p, true, result);
  if (result.escalated.length)
    return { status: 'failed', outcome: result.escalated.map((e) => e.reason).join('; ') };
  return { status: 'done', outcome: result.resolved.map((r) => r.action).join('; ') || 'checked: unchanged' };
}

/** Releases one entry and waits (at most `waitMs`) for what it ends in; the entry as it is then. */
async function releaseOne(h: HeldOperation, waitMs: number): Promise<HeldOperation> {
  if (await markReleased(h))
    await addEvent(h.payment_id, {
      type: 'backlog',
      event: 'released',
      operation: h.kind,
      incident_id: h.incident_id,
      ...(h.refund_id ? { refund_id: h.refund_id } : {}),
      reason: `incident ${h.incident_id} resolved: the held ${h.kind.replace('_', ' ')} is replayed`,
    });
  let finished: Finished;
  if (h.kind === 'outcome_check') finished = await checkOutcome(h);
  else {
    // No token yet: the workflow has not reached its wait; its wait finds the incident resolved
    // and resumes itself.
    const token = await heldTaskToken(h);
    if (token) await resumeWaiting(token, await resumeInstruction(h.kind, h.payment_id));
    if (h.kind === 'refund') finished = await awaitRefund(h.refund_id!, waitMs);
    else {
      const kind = h.kind;
      const p = await waitForPayment(h.payment_id, (x) => paymentOutcome(kind, x) !== undefined, waitMs);
      finished = paymentOutcome(kind, p);
    }
  }
  if (!finished) return { ...h, status: 'released' }; // still running: a later release records it
  const done = await finishHeld(h, finished.status, finished.outcome);
  if (done)
    await addEvent(h.payment_id, {
      type: 'backlog',
      event: finished.status === 'done' ? 'replayed' : 'replay_failed',
      operation: h.kind,
      incident_id: h.incident_id,
      ...(h.refund_id ? { refund_id: h.refund_id } : {}),
      outcome: finished.outcome,
    });
  return done ?? h;
}

/**
 * Releases the incident's backlog in replay order, one operation at a time (the next once the
 * previous has finished, or after `waitMs`). Finished entries are skipped, so releasing again
 * moves nothing; an entry left `released` (its operation still running, or a crash) is looked at
 * again. One entry that fails does not stop the others. Returns the entries as they are after.
 */
export async function releaseBacklog(
  incidentId: string,
  opts: { waitMs?: number } = {},
): Promise<HeldOperation[]> {
  const out: HeldOperation[] = [];
  for (const h of await listHeld(incidentId)) {
    if (h.status === 'done' || h.status === 'failed') {
      out.push(h);
      continue;
    }
    try {
      out.push(await releaseOne(h, opts.waitMs ?? REPLAY_WAIT_MS));
    } catch (err) {
      logger.error('backlog: release failed (retried by the next release)', {
        id: h.id,
        error: err as Error,
      });
      out.push(h);
    }
  }
  return out;
}

/**
 * Payments of the incident's processor left `processing` and flagged for attention (their outcome
 * unknown): each becomes an `outcome_check` entry of the backlog, held since it was flagged.
 */
export async function holdUnknownOutcomes(incident: Incident): Promise<number> {
  let n = 0;
  for await (const item of openItems('payment')) {
    if (item.processor !== incident.processor || item.status !== 'processing' || !item.needs_attention)
      continue;
    const p = toPayment(item);
    const since = (item.needs_attention as { since?: number }).since;
    await holdOperation({
      incident_id: incident.id,
      processor: incident.processor,
      merchant_id: p.merchant_id,
      kind: 'outcome_check',
      payment_id: p.id,
      amount: p.amount,
      currency: p.currency,
      held_at: typeof since === 'number' ? since * 1000 : Date.now(),
    });
    n++;
  }
  return n;
}

/** When the incident is resolved: unknown outcomes to check, then the whole backlog released. */
export async function drainBacklog(
  incident: Incident,
  opts: { waitMs?: number } = {},
): Promise<HeldOperation[]> {
  await holdUnknownOutcomes(incident);
  return releaseBacklog(incident.id, opts);
}

/**
 * After a resolve (`resolveIncident`), whether it moved the incident or found it resolved already
 * (a resolve retried after a crash between the two): drains its backlog. Nothing for an incident
 * that is not resolved (or not an incident id).
 */
export async function drainResolvedIncident(id: string): Promise<HeldOperation[]> {
  const incident = /^inc_[0-9A-Za-z]+$/.test(id) ? await getIncident(id) : undefined;
  return incident?.status === 'resolved' ? drainBacklog(incident) : [];
}
