/**
 * POST /v1/payments — creates a payment and starts its workflow (execution name = payment id).
 * Requires Idempotency-Key. Answers 201 with the payment as soon as its outcome is known
 * (captured, authorized, failed, requires_action, pending_review) or, after a short wait, while
 * it is still `processing`. The work is `startPayment` (start.ts), shared with the billing
 * workflow; the payment id comes from the idempotency claim, so a retried request resumes the
 * same payment and never creates a second one.
 */
import { httpHandler } from '../shared/http.ts';
import { newId } from '../shared/ids.ts';
import { idempotent, readIdempotencyKey, replayHeaders, requestHash } from '../store/idempotency.ts';
import { presentPayment } from './present.ts';
import { startPayment } from './start.ts';
import { parseCreatePayment } from './validation.ts';

export const handler = httpHandler(async (req) => {
  const idemKey = readIdempotencyKey(req.headers, true);
  const hash = requestHash('POST', '/v1/payments', req.body);
  const { response, replayed } = await idempotent(
    req.merchantId,
    idemKey,
    hash,
    async (id) => {
      const body = parseCreatePayment(req.body);
      const settled = await startPayment({ merchantId: req.merchantId, id, body, idempotencyKey: idemKey });
      return { status: 201, body: presentPayment(settled) };
    },
    { operation: 'payment.create', newResourceId: () => newId('pay') },
  );
  return { status: response.status, body: response.body, headers: replayHeaders(replayed) };
});
