/**
 * POST /v1/refunds {payment, amount?, reason?, metadata?} — refunds a captured payment, fully or
 * partially; several refunds per payment, never more than was captured (even concurrently).
 * Requires Idempotency-Key. Answers 201 with the refund once its outcome is known (or `pending`).
 */
import { z } from 'zod';
import { httpHandler } from '../shared/http.ts';
import { idempotent, readIdempotencyKey, replayHeaders, requestHash } from '../store/idempotency.ts';
import { parse } from '../payments/validation.ts';
import { createRefund, presentRefund } from './service.ts';

const Body = z.strictObject({
  payment: z.string().min(1, 'payment is required').max(64),
  amount: z
    .number('amount must be an integer number of minor units')
    .int('amount must be an integer')
    .positive('amount must be greater than zero')
    .max(999_999_999)
    .optional(),
  reason: z.enum(['duplicate', 'fraudulent', 'requested_by_customer']).optional(),
  metadata: z
    .record(z.string().min(1).max(40), z.string().max(500))
    .refine((m) => Object.keys(m).length <= 50, 'metadata can have at most 50 keys')
    .optional(),
});

export const handler = httpHandler(async (req) => {
  const idemKey = readIdempotencyKey(req.headers, true);
  const { response, replayed } = await idempotent(
    req.merchantId,
    idemKey,
    requestHash('POST', '/v1/refunds', req.body),
    async () => {
      const body = parse(Body, req.body ?? {});
      const refund = await createRefund({
        merchantId: req.merchantId,
        paymentId: body.payment,
        amount: body.amount,
        reason: body.reason,
        metadata: body.metadata,
        channel: 'api',
      });
      return { status: 201, body: presentRefund(refund) };
    },
  );
  return { status: response.status, body: response.body, headers: replayHeaders(replayed) };
});
