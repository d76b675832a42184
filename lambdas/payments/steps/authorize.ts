/**
 * Payment workflow, "Authorize with processor". One attempt per processor; the processor
 * idempotency key `<payment>:authorize:<attempt>` is the same for every retry of the attempt, so a
 * retried call (after a timeout whose outcome is unknown) can never authorize twice.
 *
 * Outcomes: authorized / captured / requires_action / processing move the payment and return;
 * a decline moves it to `failed` with the failure taxonomy and throws `PaymentDeclined` (caught by
 * the workflow, never retried); a technical problem throws `ProcessorUnavailable` (retried by the
 * workflow with backoff, then recorded as a technical failure).
 */
import { processor } from '../../processors/registry.ts';
import { ProcessorRequestError, ProcessorUnavailableError } from '../../processors/types.ts';
import { addEvent, getPayment, transition } from '../../store/payments.ts';

export class PaymentDeclined extends Error {
  override name = 'PaymentDeclined';
}

export async function handler(input: { payment_id: string; processor: string; attempt?: number }) {
  const p = await getPayment(input.payment_id);
  if (!p) throw new Error(`payment ${input.payment_id} not found`);
  // A replayed step (workflow retry after this step had finished) reports what happened.
  if (p.status === 'authorized' || p.status === 'captured' || p.status === 'requires_action')
    return { outcome: p.status, processor_reference: p.processor_reference };
  if (p.status === 'failed') throw new PaymentDeclined(JSON.stringify(p.failure));
  if (p.status !== 'processing') return { outcome: p.status, processor_reference: p.processor_reference };

  const attempt = input.attempt ?? 1;
  const adapter = await processor(input.processor);
  const started = Date.now();
  const base = { type: 'attempt' as const, processor: input.processor, attempt, operation: 'authorize' };
  let result;
  try {
    result = await adapter.authorize({
      paymentId: p.id,
      merchantId: p.merchant_id,
      amount: p.amount,
      currency: p.currency,
      paymentMethod: p.payment_method,
      captureMethod: p.capture_method,
      customer: p.customer ?? undefined,
      description: p.description ?? undefined,
      idempotencyKey: `${p.id}:authorize:${attempt}`,
    });
  } catch (err) {
    const e = err as Error;
    await addEvent(p.id, {
      ...base,
      outcome: 'error',
      latency_ms: Date.now() - started,
      error: e.name,
      message: e.message,
    });
    if (err instanceof ProcessorRequestError) {
      await transition(p.id, 'failed', {
        from: ['processing'],
        set: {
          failure: {
            category: 'invalid_request',
            code: err.code ?? 'invalid_request',
            processor_code: err.code ?? 'invalid_request',
            message: 'The payment could not be processed.',
            explanation: `The processor rejected the request: ${err.message}`,
            recommended_action:
              'Check the payment method and parameters; this is not a card decline, so retrying unchanged will fail again.',
            retryable: false,
          },
        },
        note: 'processor rejected the request',
      });
      throw new PaymentDeclined(err.message);
    }
    if (err instanceof ProcessorUnavailableError) throw err;
    throw new ProcessorUnavailableError(input.processor, e.message, { cause: err });
  }
  const latency = Date.now() - started;
  if (result.outcome === 'declined') {
    await addEvent(p.id, {
      ...base,
      outcome: 'declined',
      latency_ms: latency,
      processor_reference: result.processorReference,
      processor_code: result.failure.processor_code,
      code: result.failure.code,
    });
    await transition(p.id, 'failed', {
      from: ['processing'],
      set: {
        failure: result.failure,
        processor: input.processor,
        processor_reference: result.processorReference ?? null,
        card: result.card ?? null,
      },
      note: `declined: ${result.failure.code}`,
    });
    throw new PaymentDeclined(JSON.stringify(result.failure));
  }
  await addEvent(p.id, {
    ...base,
    outcome: result.outcome,
    latency_ms: latency,
    processor_reference: result.processorReference,
    processor_status: result.rawStatus,
  });
  if (result.outcome === 'authorized' || result.outcome === 'captured') {
    await transition(p.id, result.outcome, {
      from: ['processing'],
      set: {
        processor: input.processor,
        processor_reference: result.processorReference,
        amount_captured: result.amountCaptured,
        // What refunds may still take; refunds reserve from it atomically (lambdas/store/refunds.ts).
        refundable_remaining: result.amountCaptured,
        card: result.card ?? null,
        capture_before:
          result.outcome === 'authorized'
            ? (result.captureBefore ?? Math.floor(Date.now() / 1000) + 7 * 86400)
            : null,
      },
    });
  } else {
    await transition(p.id, 'requires_action', {
      from: ['processing'],
      set: { processor: input.processor, processor_reference: result.processorReference },
      note:
        result.outcome === 'processing'
          ? 'processor is still processing'
          : 'customer authentication required',
    });
  }
  return {
    outcome: result.outcome === 'processing' ? 'requires_action' : result.outcome,
    processor_reference: result.processorReference,
  };
}
