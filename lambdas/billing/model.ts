/**
 * Billing objects (docs/billing.md "Objects"): customers, plans, subscriptions and invoices as
 * stored and as the API shows them. Ids are prefixed like every paystep id (`cus_`, `plan_`,
 * `sub_`, `in_`); an invoice of a period has a deterministic id (subscription + period), so opening
 * the same period's invoice twice finds the first.
 */
import { createHash } from 'node:crypto';
import type { Interval } from '../domain/billing.ts';
import type { InvoiceStatus, SubscriptionStatus } from '../domain/subscription.ts';
import { randomBase62 } from '../shared/ids.ts';

export type BillingPrefix = 'cus' | 'plan' | 'sub' | 'in';
export const newBillingId = (prefix: BillingPrefix) => `${prefix}_${randomBase62(22)}`;

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** `<prefix>_` + 22 base62 characters of SHA-256(seed): the same seed, the same id. */
export function deterministicId(prefix: BillingPrefix, seed: string): string {
  let n = BigInt(`0x${createHash('sha256').update(seed).digest('hex').slice(0, 32)}`);
  let out = '';
  for (let i = 0; i < 22; i++) {
    out = ALPHABET[Number(n % 62n)] + out;
    n /= 62n;
  }
  return `${prefix}_${out}`;
}

/** The id of the invoice of period `index` of a subscription. */
export const periodInvoiceId = (subscriptionId: string, index: number) =>
  deterministicId('in', `${subscriptionId}|period|${index}`);

/** The id of the proration invoice of a plan change (one per subscription version). */
export const prorationInvoiceId = (subscriptionId: string, version: number) =>
  deterministicId('in', `${subscriptionId}|proration|${version}`);

const ID_BODY = /^[0-9A-Za-z]{10,40}$/;
export const isBillingId = (prefix: BillingPrefix, id: unknown): id is string =>
  typeof id === 'string' && id.startsWith(`${prefix}_`) && ID_BODY.test(id.slice(prefix.length + 1));

export interface Customer {
  id: string;
  object: 'customer';
  merchant_id: string;
  email: string | null;
  name: string | null;
  country: string | null;
  payment_method: string;
  metadata: Record<string, string>;
  created: number;
  updated: number;
  version: number;
}

export interface Plan {
  id: string;
  object: 'plan';
  merchant_id: string;
  name: string;
  amount: number;
  currency: string;
  interval: Interval;
  interval_count: number;
  trial_period_days: number | null;
  created: number;
}

export interface SubscriptionPeriod {
  index: number;
  start: number;
  end: number;
}

export interface Subscription {
  id: string;
  object: 'subscription';
  merchant_id: string;
  customer: string;
  plan: string;
  status: SubscriptionStatus;
  /** Start of period 0 (the trial's end when there is a trial), epoch seconds. */
  anchor: number;
  current_period: SubscriptionPeriod;
  trial_end: number | null;
  cancel_at_period_end: boolean;
  canceled_at: number | null;
  /** Why it ended: `requested`, `period_end`, `dunning`. */
  cancellation_reason: string | null;
  /** Minor units held from a downgrade; reduces the next invoices. */
  credit: number;
  latest_invoice: string | null;
  metadata: Record<string, string>;
  created: number;
  updated: number;
  version: number;
}

export interface InvoiceAttempt {
  attempt: number;
  payment: string;
  at: number;
  outcome: 'processing' | 'succeeded' | 'failed';
  code?: string;
  /** What dunning decided after this attempt, in words. */
  next?: string;
}

export interface Invoice {
  id: string;
  object: 'invoice';
  merchant_id: string;
  subscription: string;
  customer: string;
  /** `renewal` (one per period) or `proration` (a plan change). */
  billing_reason: 'subscription_create' | 'subscription_cycle' | 'subscription_update';
  period: number;
  period_start: number;
  period_end: number;
  currency: string;
  /** The plan's amount for the period (or the proration). */
  subtotal: number;
  credit_applied: number;
  amount_due: number;
  amount_paid: number;
  status: InvoiceStatus;
  attempt_count: number;
  attempts: InvoiceAttempt[];
  next_attempt_at: number | null;
  /** The latest attempt's payment. */
  payment: string | null;
  /** Set after a hard decline: no retry until the customer's payment method changes. */
  payment_method_required: boolean;
  failed_attempts: number;
  first_failed_at: number | null;
  quick_retries: number;
  description: string | null;
  paid_at: number | null;
  created: number;
  updated: number;
  version: number;
}

const pick = <T>(item: Record<string, unknown>, keys: (keyof T)[]): T =>
  Object.fromEntries(keys.map((k) => [k, item[k as string] ?? null])) as T;

export const presentCustomer = (c: Customer) =>
  pick<Omit<Customer, 'merchant_id' | 'version'>>(c as never, [
    'id',
    'object',
    'email',
    'name',
    'country',
    'payment_method',
    'metadata',
    'created',
    'updated',
  ]);

export const presentPlan = (p: Plan) =>
  pick<Omit<Plan, 'merchant_id'>>(p as never, [
    'id',
    'object',
    'name',
    'amount',
    'currency',
    'interval',
    'interval_count',
    'trial_period_days',
    'created',
  ]);

export const presentSubscription = (s: Subscription) =>
  pick<Omit<Subscription, 'merchant_id' | 'version'>>(s as never, [
    'id',
    'object',
    'customer',
    'plan',
    'status',
    'anchor',
    'current_period',
    'trial_end',
    'cancel_at_period_end',
    'canceled_at',
    'cancellation_reason',
    'credit',
    'latest_invoice',
    'metadata',
    'created',
    'updated',
  ]);

export const presentInvoice = (i: Invoice) =>
  pick<Omit<Invoice, 'merchant_id' | 'version' | 'quick_retries'>>(i as never, [
    'id',
    'object',
    'subscription',
    'customer',
    'billing_reason',
    'period',
    'period_start',
    'period_end',
    'currency',
    'subtotal',
    'credit_applied',
    'amount_due',
    'amount_paid',
    'status',
    'attempt_count',
    'attempts',
    'next_attempt_at',
    'payment',
    'payment_method_required',
    'failed_attempts',
    'first_failed_at',
    'description',
    'paid_at',
    'created',
    'updated',
  ]);
