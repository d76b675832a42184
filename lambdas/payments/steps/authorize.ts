/**
 * Payment workflow, "Authorize with processor". One attempt per processor; the processor
 * idempotency key `<payment>:authorize:<attempt>` is the same for every retry of the attempt, so a
 * retried call (after a timeout whose outcome is unknown) can never authorize twice.
 *
 * Outcomes: authorized / captured / requires_action / processing move the payment and return;
 * a decline moves it to `failed` with the failure taxonomy and throws `PaymentDeclined` (caught by
 * the workflow, never retried). Anything else is thrown: the workflow retries it, and when the
 * retries are spent it does not guess — "Check the outcome with the processor" finds out.
 */
import { processor } from '../../connectors/registry.ts';
import { ProcessorRequestError } from '../../connectors/types.ts';
import { recordAttempt as recordHealth } from '../../processors/health.ts';
import type { HealthOutcome } from '../../domain/processor-health.ts';
import { logger } from '../../shared/logger.ts';
import { getPayment, transition } from '../../store/payments.ts';
import { authorizeRequest, PaymentDeclined, recordAttempt, recordAuthorizeResult } from './outcome.ts';
import { z } from 'zod';
import { prefixedId, taskHandler } from '../../shared/task-input.ts';
import { workflowOutcome } from '../modification-outcome.ts';

export { PaymentDeclined };

/**
 * Counts the attempt in the processor's health (docs/routing.md): answers are healthy, technical
 * failures are not, a request the processor refused (4xx) says nothing about its health. Never
 * fails the step: health is advice for routing, the payment's own record is what counts.
 */
async function health(name: string, outcome: HealthOutcome | undefined, latencyMs: number): Promise<void> {
  if (!outcome) return;
  await recordHealth(name, outcome, latencyMs).catch((err: unknown) =>
    logger.warn('could not record processor health', { processor: name, error: err as Error }),
  );
}

const Input = z.object({
  payment_id: prefixedId('pay'),
  processor: z.string().min(1),
  attempt: z.number().int().positive().optional(),
});

export const handler = taskHandler('payment-authorize', Input, async (input) => {
  const p = await getPayment(input.payment_id);
  if (!p) throw new Error(`payment ${input.payment_id} not found`);
  // A replayed step (workflow retry after this step had finished) reports what happened.
  if (p.status === 'failed') throw new PaymentDeclined(JSON.stringify(p.failure));
  if (p.status !== 'processing')
    return { outcome: workflowOutcome(p), processor_reference: p.processor_reference };

  const attempt = input.attempt ?? 1;
  const adapter = await processor(input.processor);
  const started = Date.now();
  const base = { processor: input.processor, attempt, operation: 'authorize' };
  let result;
  try {
    result = await adapter.authorize(authorizeRequest(p, attempt));
  } catch (err) {
    const e = err as Error;
    await health(
      input.processor,
      err instanceof ProcessorRequestError
        ? undefined
        : /timed? ?out|timeout/i.test(`${e.name} ${e.message}`)
          ? 'timeout'
          : 'error',
      Date.now() - started,
    );
    await recordAttempt(p, {
      ...base,
      outcome: 'error',
      latency_ms: Date.now() - started,
      error: e.name,
      message: e.message,
    }).catch(() => undefined);
    if (err instanceof ProcessorRequestError && err.code !== 'idempotency_error') {
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
    throw err;
  }
  const latency = Date.now() - started;
  await health(input.processor, result.outcome === 'declined' ? 'declined' : 'approved', latency);
  if (result.outcome === 'declined')
    await recordAttempt(p, {
      ...base,
      outcome: 'declined',
      latency_ms: latency,
      processor_reference: result.processorReference,
      processor_code: result.failure.processor_code,
      code: result.failure.code,
    });
  else
    await recordAttempt(p, {
      ...base,
      outcome: result.outcome,
      latency_ms: latency,
      processor_reference: result.processorReference,
      processor_status: result.rawStatus,
    });
  const outcome = await recordAuthorizeResult(p, input.processor, result);
  if (outcome === 'failed')
    throw new PaymentDeclined(JSON.stringify(result.outcome === 'declined' ? result.failure : null));
  return { outcome, processor_reference: result.outcome === 'declined' ? null : result.processorReference };
});
