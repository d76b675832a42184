/**
 * The daily `subscriptions` finance report (docs/billing.md "The subscriptions report"), per
 * merchant and currency: MRR at the end of the day, subscriptions counted in it, new ones, churn
 * split into voluntary (canceled on request or at period end) and involuntary (dunning gave up),
 * and the revenue dunning recovered that day, by attempt, first decline code and days since the
 * first failure. Pure: the caller passes the merchant's subscriptions, plans and invoices.
 *
 * MRR normalizes each plan to a month: a yearly plan counts amount ÷ 12, a weekly one
 * amount × 52 ÷ 12, a daily one amount × 365 ÷ 12, each divided by `interval_count`, rounded to
 * minor units. A subscription counts at the end of the day when it existed by then, was not
 * canceled by then, was past its trial, and is not (as of the run) incomplete, expired, paused or
 * unpaid: a state change without a time stamp is taken as it is now, so a re-run of an old day
 * can differ for those.
 */
import type { Invoice, Plan, Subscription } from './model.ts';
import { recoveryReport, type RecoveryReport } from './recovery.ts';

export const SUBSCRIPTIONS_COLUMNS = [
  'currency',
  'mrr',
  'subscriptions',
  'new',
  'new_mrr',
  'churned_voluntary',
  'churned_voluntary_mrr',
  'churned_involuntary',
  'churned_involuntary_mrr',
  'recovered_invoices',
  'recovered_amount',
] as const;

export interface SubscriptionsRow {
  currency: string;
  mrr: number;
  subscriptions: number;
  new: number;
  new_mrr: number;
  churned_voluntary: number;
  churned_voluntary_mrr: number;
  churned_involuntary: number;
  churned_involuntary_mrr: number;
  recovered_invoices: number;
  recovered_amount: number;
  /** What dunning recovered that day, broken down (by attempt, decline code, days). */
  recovery: Pick<RecoveryReport, 'by_attempt' | 'by_decline_code' | 'by_days_since_first_failure'> | null;
}

const PER_MONTH: Record<Plan['interval'], number> = { day: 365 / 12, week: 52 / 12, month: 1, year: 1 / 12 };

/** The plan's amount per month, in minor units. */
export function monthlyAmount(plan: Pick<Plan, 'amount' | 'interval' | 'interval_count'>): number {
  return Math.round((plan.amount * PER_MONTH[plan.interval]) / Math.max(1, plan.interval_count));
}

const NOT_COUNTED = new Set(['incomplete', 'incomplete_expired', 'paused', 'unpaid']);

/** `[gte, lt)` in epoch seconds: the day reported. */
export function subscriptionsReport(
  day: { gte: number; lt: number },
  subscriptions: readonly Subscription[],
  plans: ReadonlyMap<string, Plan>,
  invoices: readonly Invoice[],
): SubscriptionsRow[] {
  const rows = new Map<string, SubscriptionsRow>();
  const row = (currency: string): SubscriptionsRow => {
    let r = rows.get(currency);
    if (!r) {
      r = {
        currency,
        mrr: 0,
        subscriptions: 0,
        new: 0,
        new_mrr: 0,
        churned_voluntary: 0,
        churned_voluntary_mrr: 0,
        churned_involuntary: 0,
        churned_involuntary_mrr: 0,
        recovered_invoices: 0,
        recovered_amount: 0,
        recovery: null,
      };
      rows.set(currency, r);
    }
    return r;
  };
  const within = (t: number | null | undefined) =>
    t !== null && t !== undefined && t >= day.gte && t < day.lt;
  for (const s of subscriptions) {
    const plan = plans.get(s.plan);
    if (!plan) continue;
    const monthly = monthlyAmount(plan);
    const r = row(plan.currency);
    if (within(s.created) && s.status !== 'incomplete_expired') {
      r.new++;
      r.new_mrr += monthly;
    }
    if (within(s.canceled_at)) {
      if (s.cancellation_reason === 'dunning') {
        r.churned_involuntary++;
        r.churned_involuntary_mrr += monthly;
      } else {
        r.churned_voluntary++;
        r.churned_voluntary_mrr += monthly;
      }
    } else if (s.status === 'unpaid' && within(s.updated)) {
      // Dunning ended with the subscription kept unpaid: it stops counting, involuntarily.
      r.churned_involuntary++;
      r.churned_involuntary_mrr += monthly;
    }
    const existed = s.created < day.lt;
    const ended = s.canceled_at !== null && s.canceled_at < day.lt;
    const inTrial = s.trial_end !== null && s.trial_end >= day.lt;
    if (existed && !ended && !inTrial && !NOT_COUNTED.has(s.status) && s.status !== 'canceled') {
      r.subscriptions++;
      r.mrr += monthly;
    }
  }
  const recoveredToday = invoices.filter(
    (i) => i.status === 'paid' && i.failed_attempts > 0 && within(i.paid_at),
  );
  for (const rec of recoveryReport(recoveredToday)) {
    const r = row(rec.currency);
    r.recovered_invoices = rec.recovered.invoices;
    r.recovered_amount = rec.recovered.amount;
    r.recovery = {
      by_attempt: rec.by_attempt,
      by_decline_code: rec.by_decline_code,
      by_days_since_first_failure: rec.by_days_since_first_failure,
    };
  }
  return [...rows.values()].sort((a, b) => a.currency.localeCompare(b.currency));
}

export const subscriptionsCsvRow = (r: SubscriptionsRow): unknown[] => SUBSCRIPTIONS_COLUMNS.map((c) => r[c]);
