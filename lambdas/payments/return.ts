/**
 * GET /v1/payments/{id}/return?redirectResult=… — where the shopper's browser comes back after
 * 3-D Secure on a processor that redirects the shopper (Adyen: `ADYEN_RETURN_URL`, see
 * docs/api.md). The processor's `redirectResult` is sent back to it (`/payments/details`), and its
 * answer is recorded as the authorization's would be (requires_action → captured, authorized or
 * failed, through the guarded transitions); the payment workflow waiting for the customer is
 * resumed with the outcome. Completing twice (a reload, the AUTHORISATION notification first)
 * changes nothing more.
 *
 * Across a crash (docs/states.md, "Idempotent requests and crashes"): the processor's
 * `/payments/details` is sent under the same idempotency key every time and completes the payment
 * once; the outcome is a guarded transition from `requires_action`; the workflow's task token is
 * removed only after the workflow was resumed, so a return retried after a crash that recorded the
 * outcome but did not resume the workflow resumes it (as a late processor notification would).
 *
 * No API key: the shopper's browser calls it. The `redirectResult` is the processor's proof and
 * only the processor can read it; the answer names the payment's status and nothing else.
 */
import { InvalidToken, SendTaskSuccessCommand, TaskDoesNotExist, TaskTimedOut } from '@aws-sdk/client-sfn';
import { CAPTURED_STATUSES, type PaymentStatus } from '../domain/payment.ts';
import { completesRedirect } from '../connectors/redirects.ts';
import { processor } from '../connectors/registry.ts';
import {
  ProcessorRequestError,
  ProcessorUnavailableError,
  type AuthorizeResult,
} from '../connectors/types.ts';
import { clients } from '../shared/aws.ts';
import { ApiError, invalidRequest, notFound } from '../shared/errors.ts';
import { httpHandler } from '../shared/http.ts';
import { pathId } from '../shared/input.ts';
import { logger } from '../shared/logger.ts';
import { clearTaskToken, getPayment, getTaskToken } from '../store/payments.ts';
import { recordAttempt, recordAuthorizeResult, type Outcome } from './steps/outcome.ts';

const answer = (id: string, status: string) => ({
  status: 200,
  body: { object: 'payment_return', payment: id, status },
});

/** The processor refused the redirectResult, or it proves another payment: the same answer. */
const redirectRefused = () =>
  new ApiError(
    400,
    'invalid_request_error',
    'redirect_result_invalid',
    'The processor did not accept this redirectResult for the payment.',
    'redirectResult',
  );

export const handler = httpHandler(async (req) => {
  const id = pathId(req, 'payment');
  const redirectResult = req.query.redirectResult;
  if (!redirectResult)
    throw invalidRequest(
      'parameter_missing',
      'Missing required parameter: redirectResult.',
      'redirectResult',
    );
  const p = await getPayment(id);
  if (!p) throw notFound('payment', id);
  // Already completed (a reload, or the processor's notification came first): say where it is,
  // after resuming the workflow if an earlier return recorded the outcome and stopped before that.
  if (p.status !== 'requires_action' || !p.processor) {
    const outcome = completedOutcome(p.status);
    if (outcome) await resumeAuthentication(p.id, outcome);
    return answer(id, p.status);
  }
  const adapter = await processor(p.processor);
  if (!completesRedirect(adapter))
    throw new ApiError(
      400,
      'invalid_request_error',
      'redirect_not_supported',
      `Payments on ${p.processor} do not return through this route.`,
    );
  const started = Date.now();
  let result: AuthorizeResult;
  try {
    result = await adapter.completeRedirect(redirectResult, {
      paymentId: p.id,
      amount: p.amount,
      captureMethod: p.capture_method,
    });
  } catch (err) {
    const e = err as Error;
    await recordAttempt(p, {
      processor: p.processor,
      operation: 'complete_redirect',
      outcome: 'error',
      latency_ms: Date.now() - started,
      error: e.name,
      message: e.message,
    });
    if (err instanceof ProcessorRequestError) throw redirectRefused();
    if (err instanceof ProcessorUnavailableError)
      throw new ApiError(
        502,
        'api_error',
        'processor_unavailable',
        'The processor could not be reached; reload this page to try again.',
      );
    throw err;
  }
  // The proof must be about this payment (the processor names the payment it completed).
  if (
    p.processor_reference &&
    result.processorReference &&
    result.processorReference !== p.processor_reference
  )
    throw redirectRefused();
  await recordAttempt(p, {
    processor: p.processor,
    operation: 'complete_redirect',
    outcome: result.outcome,
    latency_ms: Date.now() - started,
    processor_reference: result.processorReference,
    ...(result.outcome === 'declined'
      ? { processor_code: result.failure.processor_code, code: result.failure.code }
      : { processor_status: result.rawStatus }),
  });
  const outcome = await recordAuthorizeResult(p, p.processor, result, { keepTaskToken: true });
  if (outcome !== 'requires_action') await resumeAuthentication(p.id, outcome);
  const after = await getPayment(p.id);
  return answer(id, after?.status ?? outcome);
});

/** Where a payment that left `requires_action` went, as the authentication wait's outcome. */
function completedOutcome(status: PaymentStatus): Outcome | undefined {
  if (status === 'captured' || status === 'authorized' || status === 'failed' || status === 'canceled')
    return status;
  return CAPTURED_STATUSES.has(status) ? 'captured' : undefined;
}

/**
 * Resumes the payment workflow waiting for the customer's authentication with `outcome`, then
 * removes its token (only that token: a newer wait keeps its own). No token: nothing waits (the
 * notification resumed it first, or the wait lapsed and the check took over).
 */
async function resumeAuthentication(paymentId: string, outcome: Outcome): Promise<void> {
  const waiting = await getTaskToken(paymentId);
  if (!waiting.token || waiting.kind !== 'authentication') return;
  let resumed = true;
  try {
    await clients
      .sfn()
      .send(new SendTaskSuccessCommand({ taskToken: waiting.token, output: JSON.stringify({ outcome }) }));
  } catch (err) {
    if (!(err instanceof TaskTimedOut || err instanceof TaskDoesNotExist || err instanceof InvalidToken))
      throw err;
    resumed = false; // resumed already (the notification), or the wait lapsed and the check took over
    logger.info('authentication wait already resumed', { paymentId });
  }
  // The token's removal and the entry in one write: a crash between two writes left the entry out
  // for good (a retried return then finds no token and records nothing).
  await clearTaskToken(paymentId, waiting.token, {
    entry: {
      type: 'workflow',
      event: 'shopper returned',
      action: resumed ? 'resumed' : 'already_resumed',
      outcome,
    },
  });
}
