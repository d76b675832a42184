/**
 * Approval analytics over time (the ops console's analytics screen): the payments created between
 * two UTC days, per day and per value of one dimension, with the same definitions as GET
 * /v1/analytics/payments (lambdas/domain/analytics.ts ApprovalAnalytics, one per day). For one
 * merchant, or for every merchant (an operator who sees them all): bounded like the API, at most
 * MAX_RANGE_DAYS and MAX_PAYMENTS payments read in all, else a 400 asking for a shorter range.
 */
import { ApprovalAnalytics, type AnalyticsDimension, type AnalyticsGroup } from '../domain/analytics.ts';
import { dayStartMs } from '../shared/days.ts';
import { invalidRequest } from '../shared/errors.ts';
import { allMerchants } from '../store/merchants.ts';
import { listPayments } from '../store/payments.ts';
import { MAX_PAYMENTS } from './service.ts';

export interface AnalyticsSeries {
  object: 'payment_analytics_series';
  from: string;
  to: string;
  dimension: AnalyticsDimension;
  /** The days, in order (YYYY-MM-DD). */
  days: string[];
  payments: number;
  /** `all` first, then each value of the dimension, most payments first; `days[i]` is day i's group. */
  series: {
    value: string;
    dimension: AnalyticsGroup['dimension'];
    total: AnalyticsGroup;
    days: (AnalyticsGroup | null)[];
  }[];
}

const DAY_MS = 86_400_000;
const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** `merchantId` undefined: every merchant. `from`/`to` are checked days (parseAnalyticsQuery). */
export async function paymentSeries(
  merchantId: string | undefined,
  q: { from: string; to: string; dimension: AnalyticsDimension },
): Promise<AnalyticsSeries> {
  const fromMs = dayStartMs(q.from)!;
  const toMs = dayStartMs(q.to)!;
  const days: string[] = [];
  for (let t = fromMs; t <= toMs; t += DAY_MS) days.push(isoDay(t));
  const perDay = days.map(() => new ApprovalAnalytics([q.dimension]));
  const total = new ApprovalAnalytics([q.dimension]);
  let payments = 0;
  const merchants = merchantId ? [merchantId] : allMerchantIds();
  for await (const m of merchants) {
    let after: string | undefined;
    for (;;) {
      const page = await listPayments(m, {
        createdGte: fromMs / 1000,
        createdLt: toMs / 1000 + 86_400,
        limit: 100,
        startingAfter: after,
      });
      for (const p of page.data) {
        const i = Math.floor((p.created * 1000 - fromMs) / DAY_MS);
        if (i < 0 || i >= days.length) continue;
        perDay[i]!.add(p);
        total.add(p);
      }
      payments += page.data.length;
      if (payments > MAX_PAYMENTS)
        throw invalidRequest(
          'analytics_range_too_large',
          `More than ${MAX_PAYMENTS} payments between ${q.from} and ${q.to}${merchantId ? '' : ' across all merchants'}: ask for a shorter range${merchantId ? '' : ' or one merchant'}.`,
          'from',
        );
      if (!page.hasMore || !page.data.length) break;
      after = page.data.at(-1)!.id;
    }
  }
  const dayGroups = perDay.map((a) => new Map(a.result().map((g) => [`${g.dimension}\u0000${g.value}`, g])));
  return {
    object: 'payment_analytics_series',
    from: q.from,
    to: q.to,
    dimension: q.dimension,
    days,
    payments,
    series: total.result().map((g) => ({
      value: g.value,
      dimension: g.dimension,
      total: g,
      days: dayGroups.map((d) => d.get(`${g.dimension}\u0000${g.value}`) ?? null),
    })),
  };
}

async function* allMerchantIds(): AsyncGenerator<string> {
  for await (const m of allMerchants()) yield m.id;
}
