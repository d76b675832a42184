/**
 * Approval analytics (docs/routing.md "Approval analytics"): a merchant's payments created between
 * two UTC days, grouped by the dimensions asked, with the performance report's definitions. Shared
 * by GET /v1/analytics/payments and `paystep analytics`. Read from the day rollups the stream
 * keeps (docs/routing.md "Approval rollups"): one item per day with payments, whatever their number.
 */
import { ANALYTICS_DIMENSIONS, type AnalyticsDimension, type AnalyticsGroup } from '../domain/analytics.ts';
import { dayStartMs } from '../shared/days.ts';
import { invalidRequest } from '../shared/errors.ts';
import { dayRollups } from '../store/rollups.ts';
import { ComboSums } from './rollup-format.ts';

/** The longest range one request may cover. */
export const MAX_RANGE_DAYS = 92;

export interface AnalyticsQuery {
  /** First day, YYYY-MM-DD (UTC), included. */
  from: string;
  /** Last day, YYYY-MM-DD (UTC), included. */
  to: string;
  group_by: AnalyticsDimension[];
}

function parseDay(param: 'from' | 'to', value: string): number {
  const t = dayStartMs(value);
  if (t === undefined)
    throw invalidRequest('parameter_invalid', `Invalid ${param}: must be a day, YYYY-MM-DD (UTC).`, param);
  return t;
}

const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** Parses `from`, `to` (default: the last 7 days up to today) and `group_by` (default: processor). */
export function parseAnalyticsQuery(
  q: Record<string, string | undefined>,
  nowMs = Date.now(),
): AnalyticsQuery {
  const unknown = Object.keys(q).find((k) => !['from', 'to', 'group_by'].includes(k));
  if (unknown) throw invalidRequest('parameter_unknown', `Received unknown parameter: ${unknown}.`, unknown);
  const to = q.to ?? isoDay(nowMs);
  const toMs = parseDay('to', to);
  const from = q.from ?? isoDay(toMs - 6 * 86_400_000);
  const fromMs = parseDay('from', from);
  if (fromMs > toMs) throw invalidRequest('parameter_invalid', 'Invalid from: must not be after to.', 'from');
  if ((toMs - fromMs) / 86_400_000 + 1 > MAX_RANGE_DAYS)
    throw invalidRequest(
      'parameter_invalid',
      `Invalid from: a range covers at most ${MAX_RANGE_DAYS} days.`,
      'from',
    );
  const group_by = (q.group_by ?? 'processor')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = group_by.find((d) => !(ANALYTICS_DIMENSIONS as readonly string[]).includes(d));
  if (bad || !group_by.length)
    throw invalidRequest(
      'parameter_invalid',
      `Invalid group_by: ${bad ? `"${bad}" is not a dimension` : 'name a dimension'} (${ANALYTICS_DIMENSIONS.join(', ')}).`,
      'group_by',
    );
  return { from, to, group_by: [...new Set(group_by)] as AnalyticsDimension[] };
}

export interface PaymentAnalytics {
  object: 'payment_analytics';
  from: string;
  to: string;
  group_by: AnalyticsDimension[];
  payments: number;
  groups: AnalyticsGroup[];
}

/** The merchant's approval rollups from day `from` to day `to`, summed (lambdas/store/rollups.ts). */
export async function rollupSums(merchantId: string, from: string, to: string): Promise<ComboSums> {
  const sums = new ComboSums();
  for await (const item of dayRollups(merchantId, from, to)) sums.addItem(item);
  return sums;
}

export async function paymentAnalytics(merchantId: string, q: AnalyticsQuery): Promise<PaymentAnalytics> {
  parseDay('from', q.from);
  parseDay('to', q.to);
  const sums = await rollupSums(merchantId, q.from, q.to);
  return {
    object: 'payment_analytics',
    from: q.from,
    to: q.to,
    group_by: q.group_by,
    payments: sums.payments,
    groups: sums.analytics(q.group_by).result(),
  };
}
