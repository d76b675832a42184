/**
 * The daily subscriptions report's figures (lambdas/billing/subscriptions-report.ts): MRR
 * normalized to a month, new and churned (voluntary vs dunning) subscriptions of the day, and
 * the revenue dunning recovered that day.
 */
import { monthlyAmount, subscriptionsReport } from '../../lambdas/billing/subscriptions-report.ts';
import type { Invoice, Plan, Subscription } from '../../lambdas/billing/model.ts';

const DAY = { gte: 1_800_000_000, lt: 1_800_086_400 };
const plan = (
  id: string,
  amount: number,
  interval: Plan['interval'],
  currency = 'usd',
  interval_count = 1,
): Plan =>
  ({
    id,
    object: 'plan',
    merchant_id: 'mch_1',
    name: id,
    amount,
    currency,
    interval,
    interval_count,
    trial_period_days: null,
    created: 0,
  }) as Plan;
const sub = (id: string, planId: string, over: Partial<Subscription> = {}): Subscription =>
  ({
    id,
    object: 'subscription',
    merchant_id: 'mch_1',
    customer: 'cus_1',
    plan: planId,
    status: 'active',
    anchor: 0,
    current_period: { index: 0, start: 0, end: 1 },
    trial_end: null,
    cancel_at_period_end: false,
    canceled_at: null,
    cancellation_reason: null,
    credit: 0,
    latest_invoice: null,
    metadata: {},
    created: DAY.gte - 10 * 86_400,
    updated: DAY.gte - 10 * 86_400,
    version: 1,
    ...over,
  }) as Subscription;

test('MRR normalizes each interval to a month', () => {
  expect(monthlyAmount({ amount: 1200, interval: 'year', interval_count: 1 })).toBe(100);
  expect(monthlyAmount({ amount: 1000, interval: 'month', interval_count: 3 })).toBe(333);
  expect(monthlyAmount({ amount: 1200, interval: 'week', interval_count: 1 })).toBe(5200);
  expect(monthlyAmount({ amount: 100, interval: 'day', interval_count: 1 })).toBe(3042);
});

test('counts, new, churn voluntary vs involuntary, trials and paused excluded', () => {
  const plans = new Map([
    ['m', plan('m', 3000, 'month')],
    ['y', plan('y', 12000, 'year')],
    ['e', plan('e', 500, 'month', 'eur')],
  ]);
  const rows = subscriptionsReport(
    DAY,
    [
      sub('a', 'm'), // counted
      sub('b', 'y', { created: DAY.gte + 100 }), // new today, counted
      sub('c', 'm', { status: 'canceled', canceled_at: DAY.gte + 50, cancellation_reason: 'requested' }),
      sub('d', 'm', { status: 'canceled', canceled_at: DAY.gte + 60, cancellation_reason: 'dunning' }),
      sub('e', 'm', { status: 'unpaid', updated: DAY.gte + 70 }), // dunning kept it unpaid today
      sub('f', 'm', { status: 'trialing', trial_end: DAY.lt + 86_400 }), // still in trial
      sub('g', 'm', { status: 'paused' }),
      sub('h', 'm', { created: DAY.lt + 5 }), // made after the day
      sub('i', 'e', { status: 'past_due' }), // past due still counts
      sub('j', 'm', { status: 'canceled', canceled_at: DAY.gte - 86_400, cancellation_reason: 'requested' }),
    ],
    plans,
    [],
  );
  expect(rows.map((r) => r.currency)).toEqual(['eur', 'usd']);
  expect(rows[0]).toMatchObject({ mrr: 500, subscriptions: 1, new: 0 });
  expect(rows[1]).toMatchObject({
    mrr: 3000 + 1000,
    subscriptions: 2,
    new: 1,
    new_mrr: 1000,
    churned_voluntary: 1,
    churned_voluntary_mrr: 3000,
    churned_involuntary: 2,
    churned_involuntary_mrr: 6000,
    recovered_invoices: 0,
    recovery: null,
  });
});

test('recovered revenue of the day: invoices paid today after a failure, by attempt and decline code', () => {
  const inv = (id: string, over: Partial<Invoice>): Invoice =>
    ({
      id,
      object: 'invoice',
      merchant_id: 'mch_1',
      subscription: 'a',
      customer: 'cus_1',
      billing_reason: 'subscription_cycle',
      period: 1,
      period_start: 0,
      period_end: 1,
      currency: 'usd',
      subtotal: 3000,
      credit_applied: 0,
      amount_due: 3000,
      amount_paid: 3000,
      status: 'paid',
      attempt_count: 2,
      attempts: [
        {
          attempt: 1,
          payment: 'pay_1',
          at: DAY.gte - 3 * 86_400,
          outcome: 'failed',
          code: 'insufficient_funds',
        },
      ],
      next_attempt_at: null,
      payment: 'pay_2',
      payment_method_required: false,
      failed_attempts: 1,
      first_failed_at: DAY.gte - 3 * 86_400,
      quick_retries: 0,
      description: null,
      paid_at: DAY.gte + 3600,
      created: DAY.gte - 3 * 86_400,
      updated: DAY.gte + 3600,
      version: 3,
      ...over,
    }) as Invoice;
  const rows = subscriptionsReport(DAY, [sub('a', 'm')], new Map([['m', plan('m', 3000, 'month')]]), [
    inv('in_1', {}),
    inv('in_2', { paid_at: DAY.gte - 100 }), // recovered yesterday
    inv('in_3', { failed_attempts: 0, attempts: [], attempt_count: 1 }), // paid at once
  ]);
  expect(rows[0]).toMatchObject({ recovered_invoices: 1, recovered_amount: 3000 });
  expect(rows[0]!.recovery!.by_attempt).toEqual({ '2': { invoices: 1, amount: 3000 } });
  expect(rows[0]!.recovery!.by_decline_code.insufficient_funds).toMatchObject({ invoices: 1, amount: 3000 });
  expect(rows[0]!.recovery!.by_days_since_first_failure).toEqual({ '3': { invoices: 1, amount: 3000 } });
});
