/**
 * Request validation for the payments API (zod). Every problem is a 400 naming the `param`;
 * messages say what is accepted.
 */
import { z } from 'zod';
import { invalidRequest } from '../shared/errors.ts';
import { amountGranularity, isSupportedCurrency, maxAmount } from '../domain/money.ts';
import { isPaymentStatus } from '../domain/payment.ts';

const shortString = (max: number) =>
  z.string().min(1, 'must not be empty').max(max, `must be at most ${max} characters`);

const Metadata = z
  .record(
    z.string().min(1).max(40, 'metadata keys must be at most 40 characters'),
    z.string().max(500, 'metadata values must be at most 500 characters'),
  )
  .refine((m) => Object.keys(m).length <= 50, 'metadata can have at most 50 keys');

export const CreatePaymentBody = z.strictObject({
  amount: z
    .number('amount must be an integer number of minor units')
    .int('amount must be an integer number of minor units (e.g. 1000 for 10.00 USD)')
    .positive('amount must be greater than zero'),
  currency: z
    .string()
    .regex(/^[a-z]{3}$/, 'currency must be a lowercase three-letter ISO 4217 code')
    .refine(isSupportedCurrency, 'currency is not supported'),
  payment_method: shortString(255),
  capture_method: z.enum(['automatic', 'manual']).default('automatic'),
  order_id: shortString(255).optional(),
  customer: z
    .strictObject({
      id: shortString(255).optional(),
      email: z.email('customer.email must be an email address').max(512).optional(),
      country: z
        .string()
        .regex(/^[A-Z]{2}$/, 'customer.country must be an uppercase ISO 3166-1 alpha-2 code')
        .optional(),
    })
    .optional(),
  channel: z.enum(['web', 'mobile', 'pos', 'moto', 'api', 'recurring']).optional(),
  description: z.string().max(1000, 'description must be at most 1000 characters').optional(),
  metadata: Metadata.optional(),
});

export type CreatePayment = z.infer<typeof CreatePaymentBody>;

export const CaptureBody = z
  .strictObject({
    amount: z
      .number()
      .int('amount must be an integer')
      .positive('amount must be greater than zero')
      .optional(),
  })
  .optional();

export function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const param = [...issue.path, issue.keys[0]].join('.');
    throw invalidRequest('parameter_unknown', `Received unknown parameter: ${param}`, param);
  }
  const param = issue.path.join('.') || undefined;
  const missing = issue.code === 'invalid_type' && (issue as { input?: unknown }).input === undefined;
  if (missing) throw invalidRequest('parameter_missing', `Missing required param: ${param}.`, param);
  throw invalidRequest(
    'parameter_invalid',
    param ? `Invalid ${param}: ${issue.message}` : issue.message,
    param,
  );
}

export function parseCreatePayment(body: unknown): CreatePayment {
  if (body === undefined)
    throw invalidRequest('parameter_missing', 'Missing required param: amount.', 'amount');
  const data = parse(CreatePaymentBody, body);
  if (data.amount % amountGranularity(data.currency) !== 0)
    throw invalidRequest(
      'amount_invalid',
      `Invalid amount: ${data.currency} amounts must be a multiple of ${amountGranularity(data.currency)} minor units`,
      'amount',
    );
  if (data.amount > maxAmount(data.currency))
    throw invalidRequest(
      'amount_too_large',
      `Invalid amount: must be at most ${maxAmount(data.currency)} for ${data.currency}`,
      'amount',
    );
  return data;
}

export function parseListQuery(q: Record<string, string>) {
  const known = ['status', 'order_id', 'created_gte', 'created_lt', 'limit', 'starting_after'];
  for (const k of Object.keys(q))
    if (!known.includes(k)) throw invalidRequest('parameter_unknown', `Received unknown parameter: ${k}`, k);
  const int = (name: string, min: number, max: number) => {
    const v = q[name];
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max)
      throw invalidRequest(
        'parameter_invalid',
        `Invalid ${name}: must be an integer between ${min} and ${max}`,
        name,
      );
    return Number(v);
  };
  if (q.status !== undefined && !isPaymentStatus(q.status))
    throw invalidRequest('parameter_invalid', `Invalid status: ${q.status}`, 'status');
  return {
    status: q.status as never,
    orderId: q.order_id,
    createdGte: int('created_gte', 0, 4_102_444_800),
    createdLt: int('created_lt', 0, 4_102_444_800),
    limit: int('limit', 1, 100) ?? 10,
    startingAfter: q.starting_after,
  };
}
