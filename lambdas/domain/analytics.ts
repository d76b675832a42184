/**
 * Approval analytics for product teams (docs/routing.md "Approval analytics"): payments grouped by
 * processor, payment method, card brand, issuer country, customer country or channel, with
 * attempts, approvals, the approval rate, decline reasons, cascades recovered and volume. Pure.
 * Outcomes and payment method kinds are the performance report's (lambdas/reports/finance.ts), so
 * the two never disagree.
 */
import type { Payment } from './payment.ts';
import { outcomeOf, paymentMethodType } from '../reports/finance.ts';

export const ANALYTICS_DIMENSIONS = [
  'processor',
  'payment_method',
  'card_brand',
  'issuer_country',
  'customer_country',
  'channel',
] as const;
export type AnalyticsDimension = (typeof ANALYTICS_DIMENSIONS)[number];

/** An attempt as the payment records it (`payment.attempts`, when routing tried several). */
interface AttemptLike {
  processor?: string;
  outcome?: string;
  next?: { cascade?: boolean };
}

export interface AnalyticsGroup {
  dimension: AnalyticsDimension | 'all';
  value: string;
  payments: number;
  /** Processor attempts (a payment cascaded to a second processor counts two). */
  attempts: number;
  approved: number;
  declined: number;
  /** Neither yet: processing, waiting for the customer or a review, canceled before a decision. */
  other: number;
  /** approved / (approved + declined); null before any decision. */
  approval_rate: number | null;
  /** Payments approved after their first attempt was declined elsewhere. */
  cascades_recovered: number;
  /** Approved amounts, minor units by currency. */
  volume: Record<string, number>;
  /** Declined payments by paystep failure code. */
  decline_reasons: Record<string, number>;
}

const valueOf = (p: Payment, d: AnalyticsDimension): string => {
  switch (d) {
    case 'processor':
      return p.processor ?? 'none';
    case 'payment_method':
      return paymentMethodType(p);
    case 'card_brand':
      return p.card?.brand ?? 'unknown';
    case 'issuer_country':
      return p.card?.country ?? 'unknown';
    case 'customer_country':
      return p.customer?.country ?? 'unknown';
    case 'channel':
      return p.channel ?? 'unknown';
  }
};

/** A payment's value of every dimension. */
export type DimensionValues = Record<AnalyticsDimension, string>;

/** What is summed per combination of dimension values: every count of an `AnalyticsGroup`. */
export interface Counts {
  payments: number;
  attempts: number;
  approved: number;
  declined: number;
  other: number;
  cascades_recovered: number;
  volume: Record<string, number>;
  decline_reasons: Record<string, number>;
}

/** What one payment adds to the analytics: its dimension values and its counts. */
export interface Contribution {
  values: DimensionValues;
  counts: Counts;
}

/**
 * The contribution of one payment, as it is now: `ApprovalAnalytics` over payments is the sum of
 * their contributions (test/unit/analytics-rollups.test.ts), so rollups that add
 * contribution(new) − contribution(old) for every change of a payment hold the same figures.
 * Every count is a sum: there is no percentile or other non-additive metric to keep.
 */
export function contributionOf(p: Payment): Contribution {
  const o = outcomeOf(p);
  const tried: AttemptLike[] = (p as { attempts?: AttemptLike[] }).attempts ?? [];
  // Approved after a soft decline elsewhere (a failover is not a cascade: nothing was declined).
  const recovered = o === 'approved' && tried.some((a) => a.next?.cascade);
  const values = Object.fromEntries(ANALYTICS_DIMENSIONS.map((d) => [d, valueOf(p, d)])) as DimensionValues;
  return {
    values,
    counts: {
      payments: 1,
      attempts: tried.length || 1,
      approved: o === 'approved' ? 1 : 0,
      declined: o === 'declined' ? 1 : 0,
      other: o === 'other' ? 1 : 0,
      cascades_recovered: recovered ? 1 : 0,
      volume: o === 'approved' ? { [p.currency]: p.amount } : {},
      decline_reasons: o === 'declined' ? { [p.failure?.code ?? 'unknown']: 1 } : {},
    },
  };
}

export class ApprovalAnalytics {
  private readonly groups = new Map<string, AnalyticsGroup>();
  private readonly dimensions: readonly AnalyticsDimension[];

  constructor(dimensions: readonly AnalyticsDimension[]) {
    this.dimensions = dimensions;
  }

  private group(dimension: AnalyticsGroup['dimension'], value: string): AnalyticsGroup {
    const k = `${dimension}\u0000${value}`;
    let g = this.groups.get(k);
    if (!g) {
      g = {
        dimension,
        value,
        payments: 0,
        attempts: 0,
        approved: 0,
        declined: 0,
        other: 0,
        approval_rate: null,
        cascades_recovered: 0,
        volume: {},
        decline_reasons: {},
      };
      this.groups.set(k, g);
    }
    return g;
  }

  /** Counts one payment (its contribution: `contributionOf`). */
  add(p: Payment): void {
    const c = contributionOf(p);
    this.addCounts(c.values, c.counts);
  }

  /**
   * Adds counts (of one payment, or summed over payments) whose dimension values are `values`:
   * what `add` does with a payment's contribution, and what a rollup read does with its stored sums.
   */
  addCounts(values: DimensionValues, c: Counts): void {
    for (const [d, v] of [['all', 'all'] as const, ...this.dimensions.map((d) => [d, values[d]] as const)]) {
      const g = this.group(d, v);
      g.payments += c.payments;
      g.attempts += c.attempts;
      g.approved += c.approved;
      g.declined += c.declined;
      g.other += c.other;
      g.cascades_recovered += c.cascades_recovered;
      for (const [cur, n] of Object.entries(c.volume)) g.volume[cur] = (g.volume[cur] ?? 0) + n;
      for (const [code, n] of Object.entries(c.decline_reasons))
        g.decline_reasons[code] = (g.decline_reasons[code] ?? 0) + n;
    }
  }

  /** `all` first, then each dimension in the order asked, most payments first. */
  result(): AnalyticsGroup[] {
    const order = new Map<string, number>([['all', -1], ...this.dimensions.map((d, i) => [d, i] as const)]);
    return [...this.groups.values()]
      .map((g) => {
        const decided = g.approved + g.declined;
        return { ...g, approval_rate: decided ? Math.round((g.approved / decided) * 10_000) / 10_000 : null };
      })
      .sort(
        (a, b) =>
          order.get(a.dimension)! - order.get(b.dimension)! ||
          b.payments - a.payments ||
          (a.value < b.value ? -1 : 1),
      );
  }
}
