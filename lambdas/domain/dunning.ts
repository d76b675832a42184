/**
 * Dunning: when to retry a failed renewal, chosen by why it failed (docs/billing.md "Dunning").
 * Pure: the caller passes the failure, the attempts so far and the merchant's policy.
 *
 * - A technical failure or an issuer that was unreachable clears within hours: quick retries.
 * - Insufficient funds clears when money arrives: retries on likely funding days (the 1st, the
 *   15th, the last day of the month, Fridays), at least two days apart.
 * - Other soft declines: spaced retries (3, 5, then 7 days).
 * - Hard declines, fraud, "do not try again" and authentication: no blind retry; the customer
 *   must give a payment method (or authenticate), and the update retries at once.
 * Every plan says why, in words, for the invoice's and the subscription's timelines.
 */
import type { FailureCategory } from '../connectors/types.ts';

export interface DunningPolicy {
  /** Attempts per invoice, the first charge included. */
  max_attempts: number;
  /** Days after the first failure when retrying stops. */
  window_days: number;
  /** What happens when retrying stops: the subscription is canceled, or kept as `unpaid`. */
  final_action: 'cancel' | 'unpaid';
}

/** Stripe's Smart Retries default is 8 tries within 2 weeks; paystep's default is the same budget. */
export const DEFAULT_DUNNING_POLICY: DunningPolicy = {
  max_attempts: 8,
  window_days: 14,
  final_action: 'cancel',
};

export interface RenewalFailure {
  category: FailureCategory;
  code: string;
  retryable: boolean;
  merchant_advice_code?: string;
}

export type Schedule = 'quick' | 'funding_day' | 'spaced';

export type RetryPlan =
  | { action: 'retry'; at: number; schedule: Schedule; reason: string }
  | { action: 'wait_for_payment_method'; reason: string }
  | { action: 'give_up'; final: DunningPolicy['final_action']; reason: string };

const HOUR = 3600;
const DAY = 86_400;
const QUICK_CODES = new Set([
  'issuer_not_available',
  'processing_error',
  'try_again_later',
  'approve_with_id',
]);
const FUNDS_CODES = new Set([
  'insufficient_funds',
  'card_velocity_exceeded',
  'withdrawal_count_limit_exceeded',
]);
const QUICK_DELAYS_H = [1, 4, 12, 24];
const SPACED_DELAYS_D = [3, 5, 7];
const DO_NOT_RETRY_ADVICE = new Set(['03', '21']);
/** Funding-day retries happen at 14:00 UTC (the customer's own time zone is not known). */
const FUNDING_HOUR_UTC = 14;

export function scheduleFor(f: RenewalFailure): Schedule | 'payment_method_required' {
  if (
    f.category === 'hard_decline' ||
    f.category === 'fraud' ||
    f.category === 'authentication' ||
    f.category === 'invalid_request' ||
    !f.retryable ||
    (f.merchant_advice_code && DO_NOT_RETRY_ADVICE.has(f.merchant_advice_code))
  )
    return 'payment_method_required';
  if (f.category === 'technical' || QUICK_CODES.has(f.code)) return 'quick';
  if (FUNDS_CODES.has(f.code)) return 'funding_day';
  return 'spaced';
}

const isoDay = (t: number) => new Date(t * 1000).toISOString().slice(0, 10);
const WEEKDAY = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** The first likely funding day at 14:00 UTC that is at or after `notBefore`. */
export function nextFundingDay(notBefore: number): number {
  const d = new Date(notBefore * 1000);
  for (let i = 0; i < 40; i++) {
    const day = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + i, FUNDING_HOUR_UTC));
    const t = day.getTime() / 1000;
    if (t < notBefore) continue;
    const date = day.getUTCDate();
    const last = new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth() + 1, 0)).getUTCDate();
    if (date === 1 || date === 15 || date === last || day.getUTCDay() === 5) return t;
  }
  return notBefore; // unreachable: a Friday comes within a week
}

function fundingLabel(t: number): string {
  const d = new Date(t * 1000);
  const last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
  const what =
    d.getUTCDate() === 1
      ? 'the 1st'
      : d.getUTCDate() === 15
        ? 'the 15th'
        : d.getUTCDate() === last
          ? 'the last day of the month'
          : 'a weekly payday';
  return `${WEEKDAY[d.getUTCDay()]} ${isoDay(t)}: ${what}`;
}

/**
 * The next step for an invoice whose latest attempt failed with `failure`.
 * `attempts`: attempts made so far (the failed one included); `quickRetries`: how many of them
 * were quick retries (so quick delays grow); times in epoch seconds.
 */
export function planRetry(input: {
  policy: DunningPolicy;
  failure: RenewalFailure;
  attempts: number;
  quickRetries?: number;
  firstFailedAt: number;
  lastAttemptAt: number;
}): RetryPlan {
  const { policy, failure, attempts, firstFailedAt, lastAttemptAt } = input;
  const schedule = scheduleFor(failure);
  if (schedule === 'payment_method_required')
    return {
      action: 'wait_for_payment_method',
      reason: `declined (${failure.code}): retrying the same card would fail again, so paystep waits for the customer to update their payment method and retries at once when they do`,
    };
  const giveUp = (why: string): RetryPlan => ({
    action: 'give_up',
    final: policy.final_action,
    reason: `${why}: the invoice is uncollectible and the subscription is ${policy.final_action === 'cancel' ? 'canceled' : 'kept as unpaid'}`,
  });
  if (attempts >= policy.max_attempts) return giveUp(`${attempts} attempts made, the most the policy allows`);
  const deadline = firstFailedAt + policy.window_days * DAY;

  let at: number;
  let reason: string;
  if (schedule === 'quick') {
    const h = QUICK_DELAYS_H[Math.min(input.quickRetries ?? 0, QUICK_DELAYS_H.length - 1)]!;
    at = lastAttemptAt + h * HOUR;
    reason = `declined (${failure.code}), which usually clears within hours: retry in ${h} h`;
  } else if (schedule === 'funding_day') {
    at = nextFundingDay(lastAttemptAt + 2 * DAY);
    reason = `declined (${failure.code}): retry on the next likely funding day (${fundingLabel(at)}), at least 2 days after the last attempt`;
  } else {
    const spacedSoFar = Math.max(0, attempts - 1 - (input.quickRetries ?? 0));
    const d = SPACED_DELAYS_D[Math.min(spacedSoFar, SPACED_DELAYS_D.length - 1)]!;
    at = lastAttemptAt + d * DAY;
    reason = `declined (${failure.code}): retry in ${d} days`;
  }
  if (at > deadline) return giveUp(`the next retry would fall after the ${policy.window_days}-day window`);
  return { action: 'retry', at, schedule, reason };
}

/** The fixed schedule used as the benchmark's baseline: every `everyDays` days, `times` times. */
export function fixedRetry(
  attempts: number,
  lastAttemptAt: number,
  everyDays = 3,
  times = 4,
): number | undefined {
  return attempts - 1 < times ? lastAttemptAt + everyDays * DAY : undefined;
}

/** Validates a merchant's dunning policy; problems named by field. */
export function dunningPolicyProblems(
  p: Partial<Record<keyof DunningPolicy, unknown>>,
): { field: string; message: string }[] {
  const out: { field: string; message: string }[] = [];
  if (
    p.max_attempts !== undefined &&
    !(Number.isInteger(p.max_attempts) && (p.max_attempts as number) >= 1 && (p.max_attempts as number) <= 20)
  )
    out.push({ field: 'max_attempts', message: 'must be a whole number from 1 to 20' });
  if (
    p.window_days !== undefined &&
    !(Number.isInteger(p.window_days) && (p.window_days as number) >= 1 && (p.window_days as number) <= 60)
  )
    out.push({ field: 'window_days', message: 'must be a whole number of days from 1 to 60' });
  if (p.final_action !== undefined && p.final_action !== 'cancel' && p.final_action !== 'unpaid')
    out.push({
      field: 'final_action',
      message: `must be "cancel" or "unpaid", got ${JSON.stringify(p.final_action)}`,
    });
  return out;
}
