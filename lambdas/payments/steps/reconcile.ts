/**
 * Payment workflow, "Check the outcome with the processor": when an authorization's outcome is
 * unknown (retries spent on timeouts or outages, a crash after the processor answered) or the
 * customer's authentication lapsed, ask the processor instead of guessing. Never marks a payment
 * failed while money may have moved.
 *
 * - unknown outcome: repeat the authorization with the SAME idempotency key — the processor returns
 *   what it did the first time (or does it now, if the first request never ran);
 * - authentication result (the workflow was resumed by a webhook or the sweeper): retrieve the
 *   payment intent and record its state (still waiting → keep waiting);
 * - lapsed authentication: retrieve the payment intent; if it still waits for the customer, cancel
 *   it at the processor first, then fail the payment (`authentication_required`).
 * - pending capture or cancel (`modification_pending`, "Check the capture with the processor"):
 *   the outcome's notification is late; the processor's state source decides, if it can
 *   (lambdas/payments/modification-outcome.ts).
 * A processor still unreachable is thrown (`ProcessorUnavailable`) for the workflow's long Retry;
 * after that the payment is flagged for attention, not failed.
 */
import { processor } from '../../connectors/registry.ts';
import { ProcessorRequestError, ProcessorUnavailableError, type Failure } from '../../connectors/types.ts';
import { getPayment, recordPaymentAttempt, transition } from '../../store/payments.ts';
import {
  attemptFailure,
  authorizeRequest,
  recordAttempt,
  recordAuthorizeResult,
  recordRetrieved,
} from './outcome.ts';
import { z } from 'zod';
import { prefixedId, taskHandler } from '../../shared/task-input.ts';
import { checkPendingModification, workflowOutcome } from '../modification-outcome.ts';

const LAPSED: Failure = {
  category: 'authentication',
  code: 'authentication_required',
  processor_code: 'authentication_not_completed',
  message: 'The customer did not complete authentication.',
  explanation:
    'The bank asked the customer to authenticate (3-D Secure) and the customer did not complete it in time. The card was not charged.',
  recommended_action: 'Ask the customer to pay again and complete the authentication step.',
  retryable: true,
};

const NEVER_SENT: Failure = {
  category: 'technical',
  code: 'processing_error',
  processor_code: 'not_sent',
  message: 'The payment could not be processed. Please try again.',
  explanation:
    'The payment stopped before it was sent to any processor (its workflow ended early); the card was not charged.',
  recommended_action: 'Retry the payment with a new idempotency key.',
  retryable: true,
};

/** The processor has not decided yet: retried by the workflow like an outage. */
export class StillProcessing extends ProcessorUnavailableError {}

const Input = z.object({
  payment_id: prefixedId('pay'),
  reason: z.enum([
    'unknown_outcome',
    'authentication_result',
    'authentication_lapsed',
    'modification_pending',
  ]),
});

export const handler = taskHandler('payment-reconcile', Input, async (input) => {
  const p = await getPayment(input.payment_id);
  if (!p) throw new Error(`payment ${input.payment_id} not found`);
  if (input.reason === 'modification_pending') return { outcome: await checkPendingModification(p) };
  if (!['processing', 'requires_action'].includes(p.status)) return { outcome: workflowOutcome(p) };
  if (!p.processor) {
    // Never routed (the route step sets the processor before any request goes out): nothing was
    // sent anywhere, so nothing is unknown. It fails as not processed; the merchant may retry.
    await transition(p.id, 'failed', {
      from: ['processing'],
      set: { failure: NEVER_SENT },
      note: 'never sent to a processor',
    });
    return { outcome: 'failed' };
  }
  const name = p.processor;
  const adapter = await processor(name);
  const started = Date.now();

  if (input.reason === 'unknown_outcome' && p.status === 'processing') {
    // The attempt in progress, at its processor, with its own key: never another processor.
    const attempt = p.authorize_attempt ?? 1;
    const request = authorizeRequest(p, attempt);
    try {
      const result = await adapter.authorize(request);
      await recordAttempt(p, {
        processor: name,
        attempt,
        operation: 'reconcile',
        outcome: result.outcome,
        latency_ms: Date.now() - started,
        processor_reference: result.processorReference,
      });
      await recordPaymentAttempt(p.id, {
        attempt,
        processor: name,
        idempotency_key: request.idempotencyKey,
        started: new Date(started).toISOString(),
        latency_ms: Date.now() - started,
        outcome: result.outcome,
        failure: attemptFailure(result),
        processor_reference: result.processorReference ?? null,
      });
      return { outcome: await recordAuthorizeResult(p, name, result) };
    } catch (err) {
      await recordAttempt(p, {
        processor: name,
        operation: 'reconcile',
        outcome: 'error',
        latency_ms: Date.now() - started,
        error: (err as Error).name,
        message: (err as Error).message,
      }).catch(() => undefined);
      if (!(err instanceof ProcessorRequestError) || !p.processor_reference) throw err;
      // The processor refuses the replay (e.g. its idempotency record expired): fall back to its state.
    }
  }

  if (!p.processor_reference) throw new ProcessorUnavailableError(name, 'no processor reference to check');
  const r = await adapter.retrieve(p.processor_reference);
  await recordAttempt(p, {
    processor: name,
    operation: 'retrieve',
    outcome: r.rawStatus,
    latency_ms: Date.now() - started,
    processor_reference: r.processorReference,
  });
  const outcome = await recordRetrieved(p, name, r, LAPSED);
  if (outcome === 'processing')
    throw new StillProcessing(name, 'the processor is still processing this payment');
  if (outcome !== 'waiting') return { outcome };
  // Still waiting for the customer: keep waiting, unless the wait has lapsed.
  if (input.reason !== 'authentication_lapsed') return { outcome: 'requires_action' };
  // Still waiting for the customer: withdraw the payment intent so it can no longer be completed, then fail.
  await adapter.cancel(p.processor_reference, `${p.id}:cancel-lapsed`);
  const after = await adapter.retrieve(p.processor_reference);
  const final = await recordRetrieved(
    p,
    name,
    after.status === 'canceled' ? { ...after, status: 'requires_payment_method', failure: LAPSED } : after,
    LAPSED,
  );
  if (final === 'processing' || final === 'waiting')
    throw new StillProcessing(name, 'the processor has not settled this payment yet');
  return { outcome: final };
});
