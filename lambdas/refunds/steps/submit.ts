/**
 * Refund workflow, "Refund with processor": asks the processor to refund, with the idempotency key
 * `<refund>:refund` (a retried call never refunds twice). A refusal by the processor is an outcome
 * (`failed`, the reservation is released); a technical error is thrown for the workflow's Retry.
 * While the processor is in an `open` incident the refund is held instead (`held`; docs/routing.md
 * "The backlog").
 */
import { processor } from '../../connectors/registry.ts';
import { ProcessorRequestError } from '../../connectors/types.ts';
import { addEvent, getPayment } from '../../store/payments.ts';
import { getRefundItem, recordProcessorReference, setRefundAttributes } from '../../store/refunds.ts';
import { holdingIncident, holdRefund } from '../../incidents/backlog.ts';
import { z } from 'zod';
import { prefixedId, taskHandler } from '../../shared/task-input.ts';

const Input = z.object({ refund_id: prefixedId('re') });

export const handler = taskHandler('refund-submit', Input, async (input) => {
  const r = await getRefundItem(input.refund_id);
  if (!r) throw new Error(`refund ${input.refund_id} not found`);
  if (r.status !== 'pending') return { status: r.status, failure_reason: r.failure_reason ?? null };
  const p = await getPayment(r.payment_id as string);
  if (!p?.processor_reference)
    return { status: 'failed', failure_reason: 'payment_not_captured_at_processor' };
  // The processor is in an open incident: the refund waits in the backlog ("Wait for the processor
  // to return"), still pending with its reservation, and is sent with the same key once resolved.
  const incident = await holdingIncident(r.processor as string);
  if (incident) {
    await holdRefund(r, incident);
    return { status: 'held', failure_reason: null, incident_id: incident.id };
  }
  if (r.held) await setRefundAttributes(r.id as string, { held: null });
  const adapter = await processor(r.processor as string);
  const started = Date.now();
  try {
    const out = await adapter.refund(
      p.processor_reference,
      r.amount as number,
      `${r.id}:refund`,
      (r.reason as never) ?? undefined,
    );
    await recordProcessorReference(r.id as string, r.processor as string, out.refundReference);
    await addEvent(p.id, {
      type: 'attempt',
      processor: r.processor,
      operation: 'refund',
      refund_id: r.id,
      outcome: out.status,
      latency_ms: Date.now() - started,
      processor_reference: out.refundReference,
    });
    return { status: out.status, failure_reason: out.failureReason ?? null };
  } catch (err) {
    await addEvent(p.id, {
      type: 'attempt',
      processor: r.processor,
      operation: 'refund',
      refund_id: r.id,
      outcome: 'error',
      latency_ms: Date.now() - started,
      error: (err as Error).name,
      message: (err as Error).message,
    });
    if (err instanceof ProcessorRequestError)
      return { status: 'failed', failure_reason: err.code ?? 'processor_refused' };
    throw err;
  }
});
