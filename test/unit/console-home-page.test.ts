/**
 * The home screen's rendering (lambdas/console/pages/home.ts `homeBody`): what needs a person with
 * links, capped counts shown as "N+", disputes due soonest first, the chart and its table, and
 * processor health; text from the store escaped.
 */
import { describe, expect, it } from '@jest/globals';
import type { HomeData } from '../../lambdas/console/home-data.ts';
import { homeBody } from '../../lambdas/console/pages/home.ts';
import type { DisputeRecord } from '../../lambdas/store/disputes.ts';
import type { ProcessorStatus } from '../../lambdas/processors/health.ts';

const dispute = (id: string, due: number, reason: string) =>
  ({
    id,
    payment_id: `pay_${id}`,
    evidence_due_by: due,
    reason,
    amount: 12_345,
    currency: 'usd',
    status: 'needs_response',
  }) as unknown as DisputeRecord;

const data = (over: Partial<HomeData> = {}): HomeData => ({
  perMinute: Array.from({ length: 60 }, (_, i) => ({ minute: 1_800_000_000 + i * 60, payments: i % 3 })),
  lastHour: { payments: 60, approved: 45, declined: 15, approvalRate: 0.75, capped: false },
  processors: [
    {
      name: 'stripe',
      enabled: true,
      status: 'incident',
      incident: { id: 'inc_1', status: 'open', reason: '<i>timeouts</i>' },
      health: {
        attempts: 10,
        technical_error_rate: 0.2,
        timeout_rate: 0.1,
        approval_rate: 0.5,
        p95_latency_ms: 900,
        window_seconds: 300,
      },
    } as unknown as ProcessorStatus,
  ],
  stuckPayments: { count: 1000, capped: true },
  parkedWebhooks: { count: 0, capped: false },
  reviewsWaiting: { count: 3, capped: false },
  disputesDue: [
    dispute('dp_later', 1_800_300_000, '<script>'),
    dispute('dp_soon', 1_800_086_400, 'fraudulent'),
  ],
  openExceptions: { count: 2, capped: false },
  failedExecutions: { count: 4, capped: false, byMachine: [{ machine: 'payment', count: 4 }] },
  ...over,
});

describe('home screen', () => {
  it('lists what needs a person, with links and capped counts', () => {
    const body = homeBody(data()).value;
    expect(body).toMatch(
      /1,000\+<\/div>\s*<div class="label"><a href="\/console\/payments\?status=processing">Stuck/,
    );
    expect(body).toContain('href="/console/reviews"');
    expect(body).toContain('href="/console/executions?status=FAILED"');
    expect(body).toContain('class="card clear"'); // parked webhooks: none
  });
  it('shows disputes due soonest first, amounts in currency units, text escaped', () => {
    const body = homeBody(data()).value;
    expect(body.indexOf('dp_soon')).toBeLessThan(body.indexOf('dp_later'));
    expect(body).toContain('123.45 USD');
    expect(body).toContain('&lt;script&gt;');
    expect(body).not.toContain('<script>');
    expect(body).toContain('&lt;i&gt;timeouts&lt;/i&gt;');
    expect(homeBody(data({ disputesDue: [] })).value).not.toContain('Disputes due soon');
  });
  it('draws payments per minute as a chart with the same numbers in a table, and the approval rate', () => {
    const body = homeBody(data()).value;
    const chart = /data-chart="([^"]+)"/.exec(body)![1]!.replace(/&quot;/g, '"');
    const spec = JSON.parse(chart) as { x: number[]; series: { values: number[] }[] };
    expect(spec.x).toHaveLength(60);
    expect(spec.series[0]!.values.slice(0, 4)).toEqual([0, 1, 2, 0]);
    expect(body).toContain('75.0 %');
    expect((body.match(/<td class="num">2<\/td>/g) ?? []).length).toBeGreaterThanOrEqual(20);
    const capped = homeBody(
      data({ lastHour: { payments: 1000, approved: 1, declined: 0, approvalRate: 1, capped: true } }),
    ).value;
    expect(capped).toContain('the newest 1000');
  });
});
