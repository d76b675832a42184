/**
 * What evidence submission and acceptance share: the merchant's answerable dispute, the processor
 * call with its errors in API terms, and applying the dispute the processor's connector answered
 * with through the same path as a webhook event (so the order of the API response and the webhook
 * does not matter).
 */
import { ApiError, notFound } from '../shared/errors.ts';
import { ProcessorRequestError, ProcessorUnavailableError } from '../connectors/types.ts';
import { getDispute, getMerchantDispute, type DisputeRecord } from '../store/disputes.ts';
import { applyAndFollow } from './apply.ts';
import { ANSWERABLE, eventFingerprint, type DisputeFacts } from './model.ts';

/** The merchant's dispute, or a 404. */
export async function merchantDispute(merchantId: string, id: string): Promise<DisputeRecord> {
  const d = await getMerchantDispute(merchantId, id);
  if (!d) throw notFound('dispute', id);
  return d;
}

export async function answerableDispute(
  merchantId: string,
  id: string,
  action: string,
): Promise<DisputeRecord> {
  const d = await merchantDispute(merchantId, id);
  if (!ANSWERABLE.includes(d.status))
    throw new ApiError(
      400,
      'invalid_request_error',
      'dispute_unexpected_state',
      `This dispute is ${d.status}; only a dispute that needs a response (needs_response, warning_needs_response) can be ${action}.`,
    );
  return d;
}

/** Runs a processor call; its failures become API errors (never the processor's raw error). */
export async function atProcessor<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ProcessorRequestError)
      throw new ApiError(400, 'invalid_request_error', 'processor_refused', err.message, undefined, {
        cause: err,
      });
    if (err instanceof ProcessorUnavailableError)
      throw new ApiError(
        502,
        'api_error',
        'processor_unavailable',
        'The processor could not be reached; nothing was lost. Retry the request (the same Idempotency-Key is safe).',
        undefined,
        { cause: err },
      );
    throw err;
  }
}

/** Applies the dispute a processor call answered with; the dispute as it is afterwards. */
export async function applyProcessorResponse(
  d: DisputeRecord,
  facts: DisputeFacts,
  source: 'api.evidence' | 'api.accept',
): Promise<DisputeRecord> {
  const now = Math.floor(Date.now() / 1000);
  await applyAndFollow(
    { disputeId: d.id, paymentId: d.payment_id, merchantId: d.merchant_id, processor: d.processor },
    facts,
    { eventType: source, eventCreated: now, fingerprint: eventFingerprint(source, now, facts) },
  );
  return (await getDispute(d.id))!;
}
