/**
 * POST /v1/reviews/{id}/approve and /reject — an operator's decision on a payment held by the
 * risk screen (./service.ts, shared with the console). Idempotency-Key optional (a decision can
 * only be taken once anyway); with one, a retry after a crash answers as the first request would
 * have (recovery point `resuming_workflow`).
 */
import { httpHandler } from '../shared/http.ts';
import { pathId } from '../shared/input.ts';
import { idempotent, readIdempotencyKey, replayHeaders, requestHash } from '../store/idempotency.ts';
import { decideReview } from './service.ts';

export const handler = httpHandler(async (req) => {
  const id = pathId(req, 'review');
  const decision = req.path.endsWith('/approve') ? 'approve' : 'reject';
  const idemKey = readIdempotencyKey(req.headers, false);
  const { response, replayed } = await idempotent(
    req.merchantId,
    idemKey,
    requestHash('POST', `/v1/reviews/${id}/${decision}`, req.body ?? null),
    (_id, progress) => decideReview({ merchantId: req.merchantId, reviewId: id, decision }, progress),
    { operation: `review.${decision}` },
  );
  return { status: response.status, body: response.body, headers: replayHeaders(replayed) };
});
