/**
 * Payment workflow, "Capture with processor": authorized → captured (a partial capture releases
 * the rest), or — when the processor only accepts the capture (Adyen answers `received`) — the
 * request is kept pending on the payment and the workflow waits for its outcome
 * ("Wait for the capture outcome", docs/states.md "Pending capture and cancel").
 *
 * The capture is recorded (`pending_modification`, with its idempotency key) before the processor
 * is asked, so every retry of this step sends the same key and the processor captures once.
 * When the processor refuses, its own state decides: already captured → captured; already
 * canceled (the authorization lapsed) → canceled. Any failure is recorded on the payment
 * (`last_capture_error`) so the API can tell the merchant instead of answering "authorized".
 *
 * While the payment's processor is in an `open` incident the capture is not sent: it is held in
 * the incident backlog with the key already chosen (`held`; the workflow waits in "Wait for the
 * processor to return before capturing") and sent with that same key when the incident is
 * resolved (docs/routing.md "The backlog").
 */
import { processor } from '../../connectors/registry.ts';
import { pendingOf, type CaptureAnswer } from '../../connectors/modifications.ts';
import { ProcessorRequestError } from '../../connectors/types.ts';
import {
  addEvent,
  clearModification,
  getPayment,
  markModificationPending,
  requestModification,
} from '../../store/payments.ts';
import { holdIfIncident } from '../../incidents/backlog.ts';
import { z } from 'zod';
import { prefixedId, taskHandler } from '../../shared/task-input.ts';
import { resolveModification, workflowOutcome } from '../modification-outcome.ts';

const Input = z.object({ payment_id: prefixedId('pay'), amount: z.number().int().positive().optional() });

export const handler = taskHandler('payment-capture', Input, async (input) => {
  const p = await getPayment(input.payment_id);
  if (!p) throw new Error(`payment ${input.payment_id} not found`);
  const amount = Math.min(input.amount ?? p.amount, p.amount);
  const pending = await requestModification(p.id, 'capture', { amount });
  // Captured, canceled, or a capture already accepted (a replayed step): say where it is.
  if (!pending || pending.state === 'pending') return statusOf(p.id);
  // The processor is in an open incident: not asked; the capture waits in the backlog with its key.
  const incident = await holdIfIncident(p, pending);
  if (incident) {
    return { status: 'held', amount_captured: p.amount_captured, incident_id: incident.id };
  }
  const adapter = await processor(p.processor!);
  const started = Date.now();
  try {
    const r: CaptureAnswer = await adapter.capture(
      p.processor_reference!,
      pending.amount ?? amount,
      pending.idempotency_key,
    );
    const accepted = pendingOf(r);
    await addEvent(p.id, {
      type: 'attempt',
      processor: p.processor,
      operation: 'capture',
      outcome: accepted ? 'pending' : 'captured',
      latency_ms: Date.now() - started,
      amount: r.amountCaptured,
      processor_status: r.rawStatus,
      modification_reference: accepted?.reference,
    });
    if (accepted) {
      await markModificationPending(p.id, pending.idempotency_key, accepted.reference);
      return statusOf(p.id);
    }
    await resolveModification(p.id, pending, {
      succeeded: true,
      amount: r.amountCaptured,
      source: `the processor answered ${r.rawStatus}`,
    });
    return statusOf(p.id);
  } catch (err) {
    const e = err as Error;
    await addEvent(p.id, {
      type: 'attempt',
      processor: p.processor,
      operation: 'capture',
      outcome: 'error',
      latency_ms: Date.now() - started,
      error: e.name,
      message: e.message,
    });
    // An outage leaves the outcome unknown: the capture stays requested, and a retry (this step's,
    // or the next capture request) sends the same key.
    if (!(err instanceof ProcessorRequestError)) throw err;
    const r = await adapter.retrieve(p.processor_reference!).catch(() => undefined);
    if (r?.status === 'captured') {
      await resolveModification(p.id, pending, {
        succeeded: true,
        amount: r.amountCaptured,
        source: `capture refused (${e.message}); the processor had captured the payment`,
      });
      return statusOf(p.id);
    }
    if (r?.status === 'canceled') {
      await resolveModification(p.id, pending, {
        succeeded: false,
        canceledAtProcessor: true,
        reason: e.message,
        source: 'capture refused: the authorization had lapsed at the processor',
      });
      return statusOf(p.id);
    }
    await clearModification(p.id, pending, {
      code: (err as { code?: string }).code ?? e.name,
      message: e.message,
    });
    throw err;
  }
});

async function statusOf(id: string): Promise<{ status: string; amount_captured: number }> {
  const p = await getPayment(id);
  if (!p) throw new Error(`payment ${id} not found`);
  return { status: workflowOutcome(p), amount_captured: p.amount_captured };
}
