/**
 * Request validation for the billing API (zod), with the payments API's `parse`: every problem is
 * a 400 naming the `param` (`parameter_missing`, `parameter_invalid`, `parameter_unknown`).
 */
import { z } from 'zod';
import { INTERVALS, MAX_INTERVAL_COUNT } from '../domain/billing.ts';
import { amountProblem, isSupportedCurrency } from '../domain/money.ts';
import { isInvoiceStatus, isSubscriptionStatus } from '../domain/subscription.ts';
import { invalidRequest } from '../shared/errors.ts';
import { Metadata, parse } from '../payments/validation.ts';
import { isBillingId, type BillingPrefix } from './model.ts';

const text = (max: number) =>
  z.string().min(1, 'must not be empty').max(max, `must be at most ${max} characters`);
const paymentMethod = text(255);
const id = (prefix: BillingPrefix, what: string) =>
  z
    .string(`${what} must be a ${what} id (${prefix}_…)`)
    .refine((v) => isBillingId(prefix, v), `must be a ${what} id (${prefix}_…)`);

export const CreateCustomerBody = z.strictObject({
  email: z.email('must be an email address').max(512).optional(),
  name: text(255).optional(),
  country: z
    .string()
    .regex(/^[A-Z]{2}$/, 'must be an uppercase ISO 3166-1 alpha-2 code')
    .optional(),
  payment_method: paymentMethod,
  metadata: Metadata.optional(),
});
export const UpdateCustomerBody = CreateCustomerBody.partial();

export const CreatePlanBody = z.strictObject({
  name: text(255),
  amount: z
    .number('amount must be an integer number of minor units')
    .int('must be an integer number of minor units')
    .positive('must be greater than zero'),
  currency: z
    .string('currency must be a string')
    .regex(/^[a-z]{3}$/, 'must be a lowercase three-letter ISO 4217 code')
    .refine(isSupportedCurrency, 'is not supported by the processor (see docs/api.md)'),
  interval: z.enum(INTERVALS, `must be one of ${INTERVALS.join(', ')}`),
  interval_count: z.number().int('must be a whole number').min(1, 'must be at least 1').optional(),
  trial_period_days: z
    .number()
    .int('must be a whole number of days')
    .min(0)
    .max(730, 'must be at most 730')
    .optional(),
});

export const CreateSubscriptionBody = z.strictObject({
  customer: id('cus', 'customer'),
  plan: id('plan', 'plan'),
  trial_period_days: z
    .number()
    .int('must be a whole number of days')
    .min(0)
    .max(730, 'must be at most 730')
    .optional(),
  metadata: Metadata.optional(),
});

export const UpdateSubscriptionBody = z.strictObject({
  plan: id('plan', 'plan').optional(),
  cancel_at_period_end: z.boolean('must be true or false').optional(),
  metadata: Metadata.optional(),
});

export const CancelBody = z
  .strictObject({ at_period_end: z.boolean('must be true or false').optional() })
  .optional();
export const EmptyBody = z.strictObject({}).optional();

export const parseCreateCustomer = (b: unknown) => {
  if (b === undefined)
    throw invalidRequest('parameter_missing', 'Missing required param: payment_method.', 'payment_method');
  return parse(CreateCustomerBody, b);
};
export const parseUpdateCustomer = (b: unknown) => parse(UpdateCustomerBody, b ?? {});

export function parseCreatePlan(b: unknown) {
  if (b === undefined) throw invalidRequest('parameter_missing', 'Missing required param: name.', 'name');
  const p = parse(CreatePlanBody, b);
  const problem = amountProblem(p.amount, p.currency);
  if (problem) throw invalidRequest('amount_invalid', `Invalid amount: ${problem}`, 'amount');
  const count = p.interval_count ?? 1;
  if (count > MAX_INTERVAL_COUNT[p.interval])
    throw invalidRequest(
      'parameter_invalid',
      `Invalid interval_count: a period is at most one year (${MAX_INTERVAL_COUNT[p.interval]} ${p.interval}s)`,
      'interval_count',
    );
  return { ...p, interval_count: count };
}

export const parseCreateSubscription = (b: unknown) => {
  if (b === undefined)
    throw invalidRequest('parameter_missing', 'Missing required param: customer.', 'customer');
  return parse(CreateSubscriptionBody, b);
};
export const parseUpdateSubscription = (b: unknown) => parse(UpdateSubscriptionBody, b ?? {});
export const parseCancel = (b: unknown) => parse(CancelBody, b) ?? {};
export const parseEmpty = (b: unknown) => parse(EmptyBody, b);

/** `limit` and `starting_after`, plus the listing's own filters (each checked by `check`). */
export function parseListQuery(
  q: Record<string, string>,
  filters: Record<string, (v: string) => boolean>,
): { limit: number; startingAfter?: string; filters: Record<string, string | undefined> } {
  const known = ['limit', 'starting_after', ...Object.keys(filters)];
  for (const k of Object.keys(q))
    if (!known.includes(k)) throw invalidRequest('parameter_unknown', `Received unknown parameter: ${k}`, k);
  let limit = 10;
  if (q.limit !== undefined) {
    if (!/^\d+$/.test(q.limit) || Number(q.limit) < 1 || Number(q.limit) > 100)
      throw invalidRequest(
        'parameter_invalid',
        'Invalid limit: must be an integer between 1 and 100',
        'limit',
      );
    limit = Number(q.limit);
  }
  const out: Record<string, string | undefined> = {};
  for (const [k, ok] of Object.entries(filters)) {
    const v = q[k];
    if (v === undefined) continue;
    if (!ok(v))
      throw invalidRequest(
        'parameter_invalid',
        `Invalid ${k}: ${JSON.stringify(v.slice(0, 64))} is not accepted`,
        k,
      );
    out[k] = v;
  }
  if (q.starting_after !== undefined && !/^[a-z]+_[0-9A-Za-z]{10,40}$/.test(q.starting_after))
    throw invalidRequest(
      'parameter_invalid',
      'Invalid starting_after: must be an id from a previous page',
      'starting_after',
    );
  return { limit, startingAfter: q.starting_after, filters: out };
}

export const filterChecks = {
  customer: (v: string) => isBillingId('cus', v),
  plan: (v: string) => isBillingId('plan', v),
  subscription: (v: string) => isBillingId('sub', v),
  subscriptionStatus: isSubscriptionStatus,
  invoiceStatus: isInvoiceStatus,
};
