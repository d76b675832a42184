/** The refund request body (POST /v1/refunds, `paystep refund create`): one schema for every channel. */
import { z } from 'zod';
import { parse } from '../payments/validation.ts';

export const RefundBody = z.strictObject({
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

export type RefundRequest = z.infer<typeof RefundBody>;

export const parseRefundBody = (body: unknown): RefundRequest => parse(RefundBody, body ?? {});
