/**
 * The pure parts of the console's ops screens: how deadlines and retries are told (relative), where
 * a past-due invoice is in its dunning schedule, the chart JSON that cannot close its script
 * element, the dispute deadline index's keys, and a service's API error becoming a console refusal.
 */
import { chartJson } from '../../lambdas/console/pages/analytics.ts';
import { dunningPosition } from '../../lambdas/console/pages/subscriptions.ts';
import { relative, service } from '../../lambdas/console/ops-view.ts';
import { deadlineIndex } from '../../lambdas/store/disputes.ts';
import { ApiError, invalidRequest, notFound } from '../../lambdas/shared/errors.ts';
import type { Invoice } from '../../lambdas/billing/model.ts';
import type { AnalyticsSeries } from '../../lambdas/analytics/series.ts';

const NOW = Date.parse('2026-11-29T12:00:00Z');

test('relative: days and hours ahead, hours and minutes ago', () => {
  expect(relative(NOW + 2 * 86_400_000 + 3 * 3_600_000, NOW)).toBe('in 2 days 3 hours');
  expect(relative(NOW + 86_400_000, NOW)).toBe('in 1 day');
  expect(relative(NOW - 5 * 3_600_000 - 60_000, NOW)).toBe('5 hours 1 minute ago');
  expect(relative(NOW + 10_000, NOW)).toBe('in 1 minute');
});

const invoice = (over: Partial<Invoice>): Invoice =>
  ({
    id: 'in_1',
    attempt_count: 2,
    attempts: [
      {
        attempt: 1,
        payment: 'pay_1',
        at: 1,
        outcome: 'failed',
        code: 'insufficient_funds',
        next: 'declined (insufficient_funds): retry on the next likely funding day (Friday 2026-12-04: a weekly payday), at least 2 days after the last attempt',
      },
    ],
    next_attempt_at: Date.parse('2026-12-04T14:00:00Z') / 1000,
    payment_method_required: false,
    first_failed_at: Date.parse('2026-11-28T10:00:00Z') / 1000,
    ...over,
  }) as Invoice;
const policy = { max_attempts: 8, window_days: 14, final_action: 'cancel' };

test('dunning position: attempt n of max, next retry and why, when retrying stops', () => {
  expect(dunningPosition(invoice({}), policy, NOW)).toEqual({
    attempt: '2 of 8',
    next: '2026-12-04 14:00 UTC (in 5 days 2 hours)',
    why: expect.stringContaining('next likely funding day (Friday 2026-12-04'),
    stops: '2026-12-12 (14-day window), then the subscription is canceled',
  });
  const hard = dunningPosition(
    invoice({ payment_method_required: true, next_attempt_at: null }),
    { ...policy, final_action: 'unpaid' },
    NOW,
  );
  expect(hard.next).toBe('when the customer updates their payment method');
  expect(hard.stops).toContain('kept as unpaid');
  const running = dunningPosition(
    invoice({
      next_attempt_at: null,
      attempts: [{ attempt: 3, payment: 'pay_3', at: 2, outcome: 'processing' }],
    }),
    policy,
    NOW,
  );
  expect(running).toMatchObject({ next: 'an attempt is in progress', why: 'no attempt has failed yet' });
});

test('chart JSON cannot close its script element', () => {
  const group = {
    dimension: 'channel',
    value: '</script><script>alert(1)</script>',
    payments: 1,
    approval_rate: 1,
  };
  const s = {
    days: ['2026-11-29'],
    series: [{ value: group.value, dimension: 'channel', total: group, days: [group] }],
  } as unknown as AnalyticsSeries;
  const out = chartJson(s, s.series).value;
  expect(out).not.toContain('<');
  expect(JSON.parse(out)).toEqual({
    x: [Date.parse('2026-11-29T00:00:00Z') / 1000],
    series: [{ label: group.value, approval: [100], payments: [1] }],
  });
});

test('the dispute deadline index: listed while it needs an answer, soonest first, removed after', () => {
  expect(deadlineIndex('dp_1', 'needs_response', 1_800_000_000)).toEqual({
    set: { gsi2pk: 'DISPUTES#ANSWERABLE', gsi2sk: '1800000000000#dp_1' },
    remove: [],
  });
  expect(deadlineIndex('dp_1', 'warning_needs_response', null).set.gsi2sk).toBe('9999999999999#dp_1');
  for (const s of ['under_review', 'won', 'lost', 'accepted', 'warning_closed'] as const)
    expect(deadlineIndex('dp_1', s, 1_800_000_000)).toEqual({ set: {}, remove: ['gsi2pk', 'gsi2sk'] });
});

test("a service's API errors become console refusals with the API's message", async () => {
  await expect(
    service(() => Promise.reject(invalidRequest('x', 'Bad amount', 'amount'))),
  ).rejects.toMatchObject({
    name: 'ConsoleError',
    status: 400,
    message: 'Bad amount',
  });
  await expect(service(() => Promise.reject(notFound('dispute', 'dp_x')))).rejects.toMatchObject({
    status: 404,
  });
  await expect(
    service(() => Promise.reject(new ApiError(502, 'api_error', 'processor_unavailable', 'Retry'))),
  ).rejects.toMatchObject({ status: 409, message: 'Retry' });
  await expect(service(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
});
