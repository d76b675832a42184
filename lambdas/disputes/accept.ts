/**
 * POST /v1/disputes/{id}/accept — the merchant accepts the dispute at its processor (its dispute
 * connector's `accept`): a chargeback becomes `accepted` (lost; the payment → charged_back), an
 * inquiry `warning_closed` where the processor can close one.
 * Irreversible, so Idempotency-Key is required. The work is lambdas/disputes/service.ts's, shared
 * with the ops console.
 */
import { httpHandler } from '../shared/http.ts';
import { pathId } from '../shared/input.ts';
import { idempotent, readIdempotencyKey, replayHeaders, requestHash } from '../store/idempotency.ts';
import { presentDispute } from './present.ts';
import { acceptDispute } from './service.ts';

export const handler = httpHandler(async (req) => {
  const id = pathId(req, 'dispute');
  const idemKey = readIdempotencyKey(req.headers, true);
  const { response, replayed } = await idempotent(
    req.merchantId,
    idemKey,
    requestHash('POST', `/v1/disputes/${id}/accept`, req.body ?? null),
    async (_id, progress) => {
      const after = await acceptDispute(req.merchantId, id, progress);
      return { status: 200, body: presentDispute(after) };
    },
    { operation: 'dispute.accept' },
  );
  return { status: response.status, body: response.body, headers: replayHeaders(replayed) };
});
