/**
 * Payment workflow, "Authorize with processor": one attempt on one processor of the payment's
 * route (docs/routing.md "Attempts, failover and cascades"). Attempt N's idempotency key
 * `<payment>:authorize:<N>` is the same for every retry of the attempt, so a retried call (after a
 * timeout whose outcome is unknown) can never authorize twice at that processor.
 *
 * What the attempt ended in, and what comes next, as `nextStep` decides:
 * - an answer (authorized, captured, pending, authentication asked): recorded, the payment follows it;
 * - a decline: the payment fails with the failure taxonomy (`PaymentDeclined`, caught by the
 *   workflow) — unless it is an allow-listed soft decline with attempts left and another processor
 *   on the route: then it **cascades** (`outcome: 'try_next'`);
 * - provably not processed (the connector's `ProcessorUnreachableError`: the connection was refused)
 *   on the attempt's first request: **fails over** to the next processor (`try_next`). If an
 *   earlier request of the same attempt may have reached the processor (`authorize_sent`), a
 *   refusal proves nothing and is thrown like any other error;
 * - anything else is thrown: the workflow retries it with the same key, and when the retries are
 *   spent it does not guess — "Check the outcome with the processor" asks that same processor.
 *   An unknown outcome never moves to another processor.
 */
import { processor } from '../../connectors/registry.ts';
import { ProcessorRequestError, type AuthorizeResult } from '../../connectors/types.ts';
import { recordAttempt as recordHealth } from '../../processors/health.ts';
import type { HealthOutcome } from '../../domain/processor-health.ts';
import type { Payment, PaymentAttempt } from '../../domain/payment.ts';
import { DEFAULT_CASCADE, nextStep, type NextStep } from '../../domain/routing.ts';
import { logger } from '../../shared/logger.ts';
import { paymentMovedOn } from '../../shared/metrics.ts';
import {
  getPayment,
  markAuthorizeSent,
  moveToNextProcessor,
  transition,
  type TimelineEntry,
} from '../../store/payments.ts';
import {
  attemptFailure,
  authorizeRequest,
  PaymentDeclined,
  recordAttempt,
  recordAuthorizeResult,
} from './outcome.ts';
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
  /** The route, in order ("Choose a processor"); absent: only `processor`. */
  processors: z.array(z.string().min(1)).min(1).max(20).optional(),
  /** The merchant's cascade settings (absent: paystep's defaults). */
  cascade: z
    .object({ codes: z.array(z.string()).max(50), max_attempts: z.number().int().min(1).max(5) })
    .optional(),
});
type Input = z.infer<typeof Input>;

/** What the workflow reads: the outcome, and the processor and attempt it concerns. */
interface StepResult {
  outcome: string;
  processor: string;
  attempt: number;
  processor_reference?: string | null;
}

/**
 * Moves the payment on to `step.processor` as attempt N+1, recording attempt N with why. A replay
 * of a step that already moved on (or a payment that changed meanwhile) reports where it is now.
 */
async function moveOn(
  p: Payment,
  entry: PaymentAttempt,
  step: Extract<NextStep, { step: 'try_next' }>,
  attemptEntry: TimelineEntry,
): Promise<StepResult> {
  const next = { processor: step.processor, reason: step.reason, cascade: step.cascade };
  // The attempt's timeline entry and the move go with the write that moves the payment on.
  const moved = await moveToNextProcessor(p.id, { ...entry, next }, [
    attemptEntry,
    {
      type: 'workflow',
      event: step.cascade ? 'cascaded' : 'failed_over',
      from: entry.processor,
      processor: step.processor,
      attempt: entry.attempt + 1,
      reason: step.reason,
    },
  ]);
  if (moved) {
    paymentMovedOn(step.cascade ? 'cascade' : 'failover', entry.processor);
    return { outcome: 'try_next', processor: step.processor, attempt: entry.attempt + 1 };
  }
  const now = (await getPayment(p.id))!;
  return {
    outcome: now.status === 'processing' ? 'try_next' : workflowOutcome(now),
    processor: now.processor ?? step.processor,
    attempt: now.authorize_attempt ?? entry.attempt + 1,
  };
}

export const handler = taskHandler('payment-authorize', Input, async (input: Input): Promise<StepResult> => {
  const attempt = input.attempt ?? 1;
  const route = input.processors ?? [input.processor];
  const hasNext = route.length > attempt;
  // With a next processor on the route, the request is noted before it goes out (`authorize_sent`,
  // below). That write comes first and returns the payment as it was just before it (written or
  // not), which is what a read would have given: the step reads nothing more. Its condition is
  // exactly when the checks below would have noted it (processing, at this attempt, not noted yet).
  const marked = hasNext ? await markAuthorizeSent(input.payment_id, attempt) : undefined;
  const p = marked ? marked.before : await getPayment(input.payment_id);
  if (!p) throw new Error(`payment ${input.payment_id} not found`);
  // A replayed step (workflow retry after this step had finished) reports what happened.
  if (p.status === 'failed') throw new PaymentDeclined(JSON.stringify(p.failure));
  if (p.status !== 'processing')
    return {
      outcome: workflowOutcome(p),
      processor: p.processor ?? input.processor,
      attempt: p.authorize_attempt ?? attempt,
      processor_reference: p.processor_reference,
    };
  const current = p.authorize_attempt ?? 1;
  if (current > attempt)
    return { outcome: 'try_next', processor: p.processor ?? input.processor, attempt: current };

  const cascade = input.cascade ?? DEFAULT_CASCADE;
  // A request of this attempt may already have reached the processor: a refusal now proves nothing.
  // (`p` is from before this run's own mark.)
  const inDoubt = p.authorize_sent === attempt;

  const adapter = await processor(input.processor);
  const request = authorizeRequest(p, attempt);
  const started = Date.now();
  const entry = (
    outcome: PaymentAttempt['outcome'],
    extra: Partial<PaymentAttempt> = {},
  ): PaymentAttempt => ({
    attempt,
    processor: input.processor,
    idempotency_key: request.idempotencyKey,
    started: new Date(started).toISOString(),
    latency_ms: Date.now() - started,
    outcome,
    failure: null,
    processor_reference: null,
    ...extra,
  });
  const base = { processor: input.processor, attempt, operation: 'authorize' };
  let result: AuthorizeResult;
  try {
    result = await adapter.authorize(request);
  } catch (err) {
    const e = err as Error & { notProcessed?: boolean };
    await health(
      input.processor,
      err instanceof ProcessorRequestError
        ? undefined
        : /timed? ?out|timeout/i.test(`${e.name} ${e.message}`)
          ? 'timeout'
          : 'error',
      Date.now() - started,
    );
    const attemptEntry: TimelineEntry = {
      type: 'attempt',
      ...base,
      outcome: e.notProcessed ? 'not_processed' : 'error',
      latency_ms: Date.now() - started,
      error: e.name,
      message: e.message,
    };
    if (err instanceof ProcessorRequestError && err.code !== 'idempotency_error') {
      // The attempt, its entry and the failure: one write.
      await transition(p.id, 'failed', {
        from: ['processing'],
        attempt: entry('declined', {
          failure: {
            category: 'invalid_request',
            code: err.code ?? 'invalid_request',
            processor_code: err.code ?? 'invalid_request',
          },
        }),
        entries: [attemptEntry],
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
    if (e.notProcessed && hasNext && !inDoubt) {
      const step = nextStep({ kind: 'not_processed', reason: e.message }, route, attempt, cascade);
      if (step.step === 'try_next') return moveOn(p, entry('not_processed'), step, attemptEntry);
    }
    // Retried (or checked with the processor): the attempt is only recorded on the timeline.
    await recordAttempt(p, attemptEntry).catch(() => undefined);
    throw err;
  }
  const latency = Date.now() - started;
  await health(input.processor, result.outcome === 'declined' ? 'declined' : 'approved', latency);
  const reference = result.processorReference ?? null;
  // The attempt (`attempts[]` and its timeline entry) is recorded with the payment's next move:
  // to the next processor, or to the answer's status (one write).
  let fold: { attempt: PaymentAttempt; entries: TimelineEntry[] };
  if (result.outcome === 'declined') {
    const step = nextStep({ kind: 'declined', failure: result.failure }, route, attempt, cascade);
    const attemptEntry: TimelineEntry = {
      type: 'attempt',
      ...base,
      outcome: 'declined',
      latency_ms: latency,
      processor_reference: result.processorReference,
      processor_code: result.failure.processor_code,
      code: result.failure.code,
      ...(step.step === 'try_next' ? { next: step.processor, reason: step.reason } : {}),
      ...(step.step === 'stop' && hasNext ? { reason: step.reason } : {}),
    };
    const declined = entry('declined', { failure: attemptFailure(result), processor_reference: reference });
    if (step.step === 'try_next') return moveOn(p, declined, step, attemptEntry);
    fold = { attempt: declined, entries: [attemptEntry] };
  } else {
    fold = {
      attempt: entry(result.outcome, { processor_reference: reference }),
      entries: [
        {
          type: 'attempt',
          ...base,
          outcome: result.outcome,
          latency_ms: latency,
          processor_reference: result.processorReference,
          processor_status: result.rawStatus,
        },
      ],
    };
  }
  const outcome = await recordAuthorizeResult(p, input.processor, result, fold);
  if (outcome === 'failed')
    throw new PaymentDeclined(JSON.stringify(result.outcome === 'declined' ? result.failure : null));
  return {
    outcome,
    processor: input.processor,
    attempt,
    processor_reference: result.outcome === 'declined' ? null : result.processorReference,
  };
});
