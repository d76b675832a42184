/**
 * Billing's pure modules (docs/billing.md): subscription and invoice transitions, periods from
 * the anchor without drift, the proration rule, and decline-aware dunning.
 */
import fc from 'fast-check';
import {
  INVOICE_STATUSES,
  INVOICE_TRANSITIONS,
  SUBSCRIPTION_STATUSES,
  SUBSCRIPTION_TRANSITIONS,
  canInvoiceTransition,
  canSubscriptionTransition,
  invoiceSources,
} from '../../lambdas/domain/subscription.ts';
import {
  addIntervals,
  applyCredit,
  period,
  periodAt,
  planChange,
  prorate,
} from '../../lambdas/domain/billing.ts';
import {
  DEFAULT_DUNNING_POLICY as policy,
  dunningPolicyProblems,
  fixedRetry,
  nextFundingDay,
  planRetry,
  scheduleFor,
} from '../../lambdas/domain/dunning.ts';

const t = (iso: string) => Date.parse(iso) / 1000;
const iso = (s: number) => new Date(s * 1000).toISOString();

describe('states', () => {
  test('terminal states are final; every target is a known status', () => {
    expect(SUBSCRIPTION_TRANSITIONS.canceled).toEqual([]);
    expect(SUBSCRIPTION_TRANSITIONS.incomplete_expired).toEqual([]);
    expect(INVOICE_TRANSITIONS.paid).toEqual([]);
    for (const to of Object.values(SUBSCRIPTION_TRANSITIONS).flat())
      expect(SUBSCRIPTION_STATUSES).toContain(to);
    for (const to of Object.values(INVOICE_TRANSITIONS).flat()) expect(INVOICE_STATUSES).toContain(to);
  });
  test('the dunning path and its exits', () => {
    expect(canSubscriptionTransition('active', 'past_due')).toBe(true);
    expect(canSubscriptionTransition('past_due', 'active')).toBe(true);
    expect(canSubscriptionTransition('past_due', 'unpaid')).toBe(true);
    expect(canSubscriptionTransition('canceled', 'active')).toBe(false);
    expect(canSubscriptionTransition('incomplete', 'past_due')).toBe(false);
    expect(canInvoiceTransition('uncollectible', 'paid')).toBe(true);
    expect(canInvoiceTransition('paid', 'void')).toBe(false);
    expect(invoiceSources('paid')).toEqual(['open', 'uncollectible']);
  });
});

describe('periods', () => {
  const monthly = { interval: 'month', interval_count: 1 } as const;
  test('month ends clamp from the anchor, without drift', () => {
    const anchor = t('2026-01-31T10:00:00Z');
    expect([1, 2, 3, 13].map((n) => iso(addIntervals(anchor, monthly, n)))).toEqual([
      '2026-02-28T10:00:00.000Z',
      '2026-03-31T10:00:00.000Z',
      '2026-04-30T10:00:00.000Z',
      '2027-02-28T10:00:00.000Z',
    ]);
    expect(iso(addIntervals(t('2028-02-29T00:00:00Z'), { interval: 'year', interval_count: 1 }, 1))).toBe(
      '2029-02-28T00:00:00.000Z',
    );
    expect(iso(addIntervals(anchor, { interval: 'week', interval_count: 2 }, 1))).toBe(
      '2026-02-14T10:00:00.000Z',
    );
  });
  test('periodAt finds the period holding any instant', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: t('2020-01-01T00:00:00Z'), max: t('2030-01-01T00:00:00Z') }),
        fc.integer({ min: 0, max: 3 * 365 * 86_400 }),
        fc.constantFrom('day', 'week', 'month', 'year'),
        fc.integer({ min: 1, max: 3 }),
        (anchor, offset, interval, count) => {
          const r = { interval, interval_count: interval === 'year' ? 1 : count } as const;
          const p = periodAt(anchor, r, anchor + offset);
          expect(p.start).toBeLessThanOrEqual(anchor + offset);
          expect(p.end).toBeGreaterThan(anchor + offset);
          expect(period(anchor, r, p.index)).toEqual(p);
        },
      ),
    );
  });
});

describe('proration', () => {
  const current = { index: 0, start: 0, end: 30 * 86_400 };
  test('an upgrade half-way charges the difference for the half left', () => {
    const r = planChange({
      current,
      oldAmount: 1000,
      newAmount: 3000,
      sameRecurrence: true,
      now: 15 * 86_400,
      credit: 0,
    });
    expect(r).toMatchObject({ chargeNow: 1000, credit: 0, restartPeriod: false });
    expect(r.explanation).toBe(
      '50 % of the period was left: credited 500 for the old plan, charged 1500 for the new one',
    );
  });
  test('a downgrade leaves a credit; a new recurrence restarts the period less the credit', () => {
    expect(
      planChange({
        current,
        oldAmount: 3000,
        newAmount: 1000,
        sameRecurrence: true,
        now: 15 * 86_400,
        credit: 0,
      }),
    ).toMatchObject({ chargeNow: 0, credit: 1000 });
    expect(
      planChange({
        current,
        oldAmount: 3000,
        newAmount: 30000,
        sameRecurrence: false,
        now: 20 * 86_400,
        credit: 100,
      }),
    ).toMatchObject({ chargeNow: 28900, credit: 0, restartPeriod: true });
  });
  test('prorate rounds half away from zero and stays within the amount', () => {
    expect(prorate(1001, 1, 2)).toBe(501);
    fc.assert(
      fc.property(fc.nat(10_000_000), fc.nat(1000), fc.integer({ min: 1, max: 1000 }), (a, part, whole) => {
        const v = prorate(a, part, whole);
        return v >= 0 && v <= a;
      }),
    );
    expect(applyCredit(1000, 1500)).toEqual({ charge: 0, creditLeft: 500, used: 1000 });
  });
});

describe('dunning', () => {
  const fail = (
    code: string,
    category: 'soft_decline' | 'hard_decline' | 'technical' | 'fraud' | 'authentication' = 'soft_decline',
    retryable = true,
  ) => ({ code, category, retryable });
  const first = t('2026-12-02T09:00:00Z'); // a Wednesday

  test('the schedule follows the failure', () => {
    expect(scheduleFor(fail('processing_error', 'technical'))).toBe('quick');
    expect(scheduleFor(fail('try_again_later'))).toBe('quick');
    expect(scheduleFor(fail('insufficient_funds'))).toBe('funding_day');
    expect(scheduleFor(fail('generic_decline'))).toBe('spaced');
    expect(scheduleFor(fail('expired_card', 'hard_decline', false))).toBe('payment_method_required');
    expect(scheduleFor(fail('authentication_required', 'authentication'))).toBe('payment_method_required');
    expect(scheduleFor({ ...fail('try_again_later'), merchant_advice_code: '03' })).toBe(
      'payment_method_required',
    );
  });

  test('insufficient funds waits for a funding day at least two days later', () => {
    const r = planRetry({
      policy,
      failure: fail('insufficient_funds'),
      attempts: 1,
      firstFailedAt: first,
      lastAttemptAt: first,
    });
    expect(r).toEqual({
      action: 'retry',
      at: t('2026-12-04T14:00:00Z'),
      schedule: 'funding_day',
      reason:
        'declined (insufficient_funds): retry on the next likely funding day (Friday 2026-12-04: a weekly payday), at least 2 days after the last attempt',
    });
    expect(iso(nextFundingDay(t('2026-12-12T15:00:00Z')))).toBe('2026-12-15T14:00:00.000Z');
    expect(iso(nextFundingDay(t('2026-12-29T00:00:00Z')))).toBe('2026-12-31T14:00:00.000Z');
  });

  test('quick retries grow; hard declines wait for the customer; the budget and window end it', () => {
    expect(
      planRetry({
        policy,
        failure: fail('processing_error', 'technical'),
        attempts: 2,
        quickRetries: 1,
        firstFailedAt: first,
        lastAttemptAt: first,
      }),
    ).toMatchObject({ action: 'retry', at: first + 4 * 3600 });
    expect(
      planRetry({
        policy,
        failure: fail('expired_card', 'hard_decline', false),
        attempts: 1,
        firstFailedAt: first,
        lastAttemptAt: first,
      }),
    ).toMatchObject({ action: 'wait_for_payment_method' });
    expect(
      planRetry({
        policy,
        failure: fail('generic_decline'),
        attempts: 8,
        firstFailedAt: first,
        lastAttemptAt: first,
      }),
    ).toEqual({
      action: 'give_up',
      final: 'cancel',
      reason:
        '8 attempts made, the most the policy allows: the invoice is uncollectible and the subscription is canceled',
    });
    expect(
      planRetry({
        policy: { ...policy, final_action: 'unpaid' },
        failure: fail('generic_decline'),
        attempts: 4,
        firstFailedAt: first,
        lastAttemptAt: first + 12 * 86_400,
      }),
    ).toMatchObject({ action: 'give_up', final: 'unpaid' });
  });

  test('property: a retry is always later than the last attempt and inside the window', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(
          'processing_error',
          'try_again_later',
          'insufficient_funds',
          'generic_decline',
          'do_not_honor',
        ),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 0, max: 13 * 86_400 }),
        (code, attempts, since) => {
          const r = planRetry({
            policy,
            failure: fail(code),
            attempts,
            firstFailedAt: first,
            lastAttemptAt: first + since,
          });
          if (r.action === 'retry')
            return r.at > first + since && r.at <= first + policy.window_days * 86_400;
          return r.action === 'give_up';
        },
      ),
    );
  });

  test('the fixed baseline and policy validation', () => {
    expect(fixedRetry(1, first)).toBe(first + 3 * 86_400);
    expect(fixedRetry(5, first)).toBeUndefined();
    expect(dunningPolicyProblems({ max_attempts: 0, window_days: 2.5, final_action: 'delete' })).toEqual([
      { field: 'max_attempts', message: 'must be a whole number from 1 to 20' },
      { field: 'window_days', message: 'must be a whole number of days from 1 to 60' },
      { field: 'final_action', message: 'must be "cancel" or "unpaid", got "delete"' },
    ]);
  });
});
