/**
 * POST /v1/refunds {payment, amount?, reason?, metadata?} — refunds a captured payment, fully or
 * partially; several refunds per payment, never more than was captured (even concurrently).
 * Requires Idempotency-Key: a retry with the same key, even after a crash, resumes the same refund
 * (lambdas/refunds/service.ts). The body's schema is in ./validation.ts. Answers 201 with the
 * refund once its outcome is known (or `pending`).
 */
import { httpHandler } from '../shared/http.ts';
import { readIdempotencyKey, replayHeaders } from '../store/idempotency.ts';
import { requestRefund } from './service.ts';

export const handler = httpHandler(async (req) => {
  const { response, replayed } = await requestRefund({
    merchantId: req.merchantId,
    idempotencyKey: readIdempotencyKey(req.headers, true),
    body: req.body,
    channel: 'api',
  });
  return { status: response.status, body: response.body, headers: replayHeaders(replayed) };
});
