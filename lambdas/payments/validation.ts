/**
 * Request validation for the payments API (zod). Every problem is a 400 naming the `param`;
 * messages say what is accepted. `parse` is shared by every API schema: a missing field is
 * `parameter_missing`, a present one of the wrong type or value `parameter_invalid`, an extra one
 * `parameter_unknown`. Bodies reach it already bounded (lambdas/shared/input.ts); it checks the
 * parsed data again for card numbers, for callers that do not come through the HTTP handler.
 */
import { z } from 'zod';
import { config } from '../shared/config.ts';
import { invalidRequest } from '../shared/errors.ts';
import { checkBody, isIdOf } from '../shared/input.ts';
import { amountProblem, isSupportedCurrency, maxAmount } from '../domain/money.ts';
import { isPaymentStatus } from '../domain/payment.ts';

const shortString = (max: number) =>
  z.string().min(1, 'must not be empty').max(max, `must be at most ${max} characters`);

export const Metadata = z
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
    .string('currency must be a string')
    .regex(/^[a-z]{3}$/, 'currency must be a lowercase three-letter ISO 4217 code')
    .refine(
      isSupportedCurrency,
      'currency is not supported by the processor (see docs/api.md for the accepted codes)',
    ),
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
  /** Straight-through: the processor to send the payment to (one of the enabled ones). */
  processor: z.string('processor must be a string').max(40).optional(),
});

export type CreatePayment = z.infer<typeof CreatePaymentBody>;

export const CaptureBody = z
  .strictObject({
    amount: z
      .number('amount must be an integer number of minor units')
      .int('amount must be an integer')
      .positive('amount must be greater than zero')
      .max(maxAmount('usd'), `amount must be at most ${maxAmount('usd')} minor units`)
      .optional(),
  })
  .optional();

/** Whether `path` names nothing in `body` (a missing field, not one of the wrong type). */
function absentAt(body: unknown, path: readonly PropertyKey[]): boolean {
  let v: unknown = body;
  for (const k of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, k)) return true;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v === undefined;
}

export function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) {
    checkBody(r.data);
    return r.data;
  }
  const issue = r.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const param = [...issue.path, issue.keys[0]].join('.');
    throw invalidRequest('parameter_unknown', `Received unknown parameter: ${param}`, param);
  }
  const param = issue.path.join('.') || undefined;
  // zod does not report the input by default: whether the field is absent is read from the body.
  const missing = issue.code === 'invalid_type' && param !== undefined && absentAt(body, issue.path);
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
  const problem = amountProblem(data.amount, data.currency);
  if (problem)
    throw invalidRequest(
      problem.startsWith('must be at most') ? 'amount_too_large' : 'amount_invalid',
      `Invalid amount: ${problem}`,
      'amount',
    );
  if (data.processor !== undefined) {
    const enabled = config.processors();
    if (!(enabled as string[]).includes(data.processor))
      throw invalidRequest(
        'parameter_invalid',
        `Invalid processor: must be one of the enabled processors (${enabled.join(', ')})`,
        'processor',
      );
  }
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
    throw invalidRequest('parameter_invalid', 'Invalid status: not a payment status', 'status');
  if (q.order_id !== undefined && (q.order_id.length === 0 || q.order_id.length > 255))
    throw invalidRequest('parameter_invalid', 'Invalid order_id: must be 1 to 255 characters', 'order_id');
  if (q.starting_after !== undefined && !isIdOf('payment', q.starting_after))
    throw invalidRequest(
      'parameter_invalid',
      'Invalid starting_after: must be a payment id (pay_…)',
      'starting_after',
    );
  return {
    status: q.status as never,
    orderId: q.order_id,
    createdGte: int('created_gte', 0, 4_102_444_800),
    createdLt: int('created_lt', 0, 4_102_444_800),
    limit: int('limit', 1, 100) ?? 10,
    startingAfter: q.starting_after,
  };
}
