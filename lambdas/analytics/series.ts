/**
 * Approval analytics over time (the ops console's analytics screen): the payments created between
 * two UTC days, per day and per value of one dimension, with the same definitions as GET
 * /v1/analytics/payments (lambdas/domain/analytics.ts ApprovalAnalytics, one per day), read from the
 * day rollups (docs/routing.md "Approval rollups"): one item per merchant and day with payments.
 * For one merchant, or for every merchant (an operator who sees them all); at most MAX_RANGE_DAYS.
 */
import type { AnalyticsDimension, AnalyticsGroup } from '../domain/analytics.ts';
import { dayStartMs } from '../shared/days.ts';
import { allMerchants } from '../store/merchants.ts';
import { dayRollups } from '../store/rollups.ts';
import { ComboSums } from './rollup-format.ts';

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
  const perDay = days.map(() => new ComboSums());
  const total = new ComboSums();
  const merchants: string[] = [];
  if (merchantId) merchants.push(merchantId);
  else for await (const m of allMerchants()) merchants.push(m.id);
  // Merchants' items read 8 at a time: the reads overlap (in AWS, and with the local engine in its
  // worker thread) with summing the items already read.
  const add = (item: Record<string, unknown>) => {
    const i = days.indexOf(String(item.sk).slice('DAY#'.length));
    if (i < 0) return;
    perDay[i]!.addItem(item);
  };
  for (let i = 0; i < merchants.length; i += 8)
    await Promise.all(
      merchants.slice(i, i + 8).map(async (m) => {
        for await (const item of dayRollups(m, q.from, q.to)) add(item);
      }),
    );
  for (const d of perDay) total.addSums(d);
  const payments = total.payments;
  const dayGroups = perDay.map(
    (a) =>
      new Map(
        a
          .analytics([q.dimension])
          .result()
          .map((g) => [`${g.dimension}\u0000${g.value}`, g]),
      ),
  );
  return {
    object: 'payment_analytics_series',
    from: q.from,
    to: q.to,
    dimension: q.dimension,
    days,
    payments,
    series: total
      .analytics([q.dimension])
      .result()
      .map((g) => ({
        value: g.value,
        dimension: g.dimension,
        total: g,
        days: dayGroups.map((d) => d.get(`${g.dimension}\u0000${g.value}`) ?? null),
      })),
  };
}
