/**
 * The daily finance reports, as pure streaming builders (docs/finance.md, "Reports"):
 * - transactions: one row per ledger entry (money movement) of the day: the ledger's own figures;
 * - summary: per processor and currency, gross, refunds, disputes, fees, net and paid out, and how
 *   many movements of each kind, folded from the same entries (so the two can never disagree); per
 *   merchant, and for the platform (every merchant's entries of the day);
 * - performance: approval rates of the day's payments by processor, payment method, card brand,
 *   issuer country, customer country and channel; decline reasons; review outcomes.
 * Rows are produced in a deterministic order; nothing depends on the time the report runs.
 */
import type { LedgerEntry } from '../ledger/domain.ts';
import { APPROVED_STATUSES, type Payment } from '../domain/payment.ts';

export const REPORT_NAMES = ['transactions', 'summary', 'performance', 'subscriptions'] as const;
export type ReportName = (typeof REPORT_NAMES)[number];

export const isReportName = (s: string): s is ReportName => (REPORT_NAMES as readonly string[]).includes(s);

// ---------------------------------------------------------------------------------------------
// Transactions

export const TRANSACTION_COLUMNS = [
  'entry_id',
  'occurred_at',
  'type',
  'merchant_id',
  'processor',
  'currency',
  'amount',
  'receivable_effect',
  'debit_account',
  'credit_account',
  'payment_id',
  'source_id',
  'processor_reference',
] as const;

/** Effect of the entry on the processor receivable (debits +, credits −). */
export function receivableEffect(e: LedgerEntry): number {
  let v = 0;
  for (const p of e.postings) if (p.account === 'processor_receivable') v += p.debit - p.credit;
  return v;
}

export function transactionRow(e: LedgerEntry): unknown[] {
  const debit = e.postings.filter((p) => p.debit > 0).map((p) => p.account);
  const credit = e.postings.filter((p) => p.credit > 0).map((p) => p.account);
  return [
    e.id,
    e.occurred_at,
    e.type,
    e.merchant_id,
    e.processor,
    e.currency,
    e.amount,
    receivableEffect(e),
    debit.join(' '),
    credit.join(' '),
    e.payment_id,
    e.source_id,
    e.processor_reference,
  ];
}

// ---------------------------------------------------------------------------------------------
// Summary

export const SUMMARY_COLUMNS = [
  'currency',
  'processor',
  'entries',
  'gross',
  'refunds',
  'disputes',
  'fees',
  'net',
  'paid_out',
  'capture_count',
  'refund_count',
  'dispute_count',
  'fee_count',
  'payout_count',
] as const;

export interface SummaryRow {
  currency: string;
  processor: string;
  entries: number;
  gross: number;
  refunds: number;
  disputes: number;
  fees: number;
  net: number;
  paid_out: number;
  /** Movements of each kind (a reversal counts as a movement of its kind). */
  capture_count: number;
  refund_count: number;
  dispute_count: number;
  fee_count: number;
  payout_count: number;
}

/** One processor's rows of a summary, a row per currency (amounts in different currencies are never added). */
export interface ProcessorSummary {
  processor: string;
  entries: number;
  currencies: SummaryRow[];
}

const MONEY_FIELDS = [
  'entries',
  'gross',
  'refunds',
  'disputes',
  'fees',
  'net',
  'paid_out',
  'capture_count',
  'refund_count',
  'dispute_count',
  'fee_count',
  'payout_count',
] as const;

const emptyRow = (currency: string, processor: string): SummaryRow => ({
  currency,
  processor,
  entries: 0,
  gross: 0,
  refunds: 0,
  disputes: 0,
  fees: 0,
  net: 0,
  paid_out: 0,
  capture_count: 0,
  refund_count: 0,
  dispute_count: 0,
  fee_count: 0,
  payout_count: 0,
});

/** Folds entries into per processor/currency totals: net = gross − refunds − disputes − fees. */
export class DailyTotals {
  private readonly rows = new Map<string, SummaryRow>();
  entries = 0;

  private row(currency: string, processor: string): SummaryRow {
    const k = `${currency}|${processor}`;
    let r = this.rows.get(k);
    if (!r) {
      r = emptyRow(currency, processor);
      this.rows.set(k, r);
    }
    return r;
  }

  add(e: LedgerEntry): void {
    this.entries++;
    const r = this.row(e.currency, e.processor);
    r.entries++;
    const a = e.amount;
    switch (e.type) {
      case 'capture':
        r.gross += a;
        r.capture_count++;
        break;
      case 'capture_reversal':
        r.gross -= a;
        r.capture_count++;
        break;
      case 'refund':
        r.refunds += a;
        r.refund_count++;
        break;
      case 'refund_reversal':
        r.refunds -= a;
        r.refund_count++;
        break;
      case 'dispute_withdrawal':
      case 'dispute_reinstatement_reversal':
        r.disputes += a;
        r.dispute_count++;
        break;
      case 'dispute_reinstatement':
      case 'dispute_withdrawal_reversal':
        r.disputes -= a;
        r.dispute_count++;
        break;
      case 'fee':
        r.fees += e.postings.some((p) => p.account === 'processor_fees' && p.debit > 0) ? a : -a;
        r.fee_count++;
        break;
      case 'payout':
        r.paid_out += e.postings.some((p) => p.account === 'bank' && p.debit > 0) ? a : -a;
        r.payout_count++;
        break;
    }
    r.net = r.gross - r.refunds - r.disputes - r.fees;
  }

  /** Adds another fold's totals (the platform's summary is every merchant's, added up). */
  merge(other: DailyTotals): void {
    this.entries += other.entries;
    for (const o of other.rows.values()) {
      const r = this.row(o.currency, o.processor);
      for (const f of MONEY_FIELDS) r[f] += o[f];
    }
  }

  /** Rows by currency, then processor. */
  list(): SummaryRow[] {
    return [...this.rows.values()].sort((a, b) =>
      a.currency !== b.currency ? (a.currency < b.currency ? -1 : 1) : a.processor < b.processor ? -1 : 1,
    );
  }

  /** The same rows grouped by processor (processors by name, each one's currencies by code). */
  byProcessor(): ProcessorSummary[] {
    const out = new Map<string, ProcessorSummary>();
    for (const r of this.list()) {
      let p = out.get(r.processor);
      if (!p) {
        p = { processor: r.processor, entries: 0, currencies: [] };
        out.set(r.processor, p);
      }
      p.entries += r.entries;
      p.currencies.push(r);
    }
    return [...out.values()].sort((a, b) => (a.processor < b.processor ? -1 : 1));
  }
}

export const summaryRow = (r: SummaryRow): unknown[] => SUMMARY_COLUMNS.map((c) => r[c]);

// ---------------------------------------------------------------------------------------------
// Performance

export const PERFORMANCE_COLUMNS = [
  'dimension',
  'value',
  'payments',
  'approved',
  'declined',
  'other',
  'approval_rate',
] as const;

export const PERFORMANCE_DIMENSIONS = [
  'all',
  'processor',
  'payment_method',
  'card_brand',
  'issuer_country',
  'customer_country',
  'channel',
  'decline_reason',
  'review',
  'moved_on',
] as const;

export type Outcome = 'approved' | 'declined' | 'other';

export function outcomeOf(p: Pick<Payment, 'status'>): Outcome {
  if (APPROVED_STATUSES.has(p.status)) return 'approved';
  if (p.status === 'failed') return 'declined';
  return 'other';
}

/** The kind of payment method (`card` for card payment methods; the id's type otherwise). */
export function paymentMethodType(p: Pick<Payment, 'payment_method' | 'card'>): string {
  if (p.card || /^pm_card_/.test(p.payment_method ?? '')) return 'card';
  const m = /^([a-z]+)_/.exec(p.payment_method ?? '');
  return m?.[1] === 'pm' ? 'card' : (m?.[1] ?? 'unknown');
}

interface Counter {
  payments: number;
  approved: number;
  declined: number;
  other: number;
}

export class PerformanceTotals {
  private readonly counters = new Map<string, Counter>();
  payments = 0;

  private bump(dimension: string, value: string, o: Outcome): void {
    const k = `${dimension}\u0000${value}`;
    let c = this.counters.get(k);
    if (!c) {
      c = { payments: 0, approved: 0, declined: 0, other: 0 };
      this.counters.set(k, c);
    }
    c.payments++;
    c[o]++;
  }

  add(p: Payment): void {
    this.payments++;
    const o = outcomeOf(p);
    const dims: [string, string][] = [
      ['all', 'all'],
      ['processor', p.processor ?? 'none'],
      ['payment_method', paymentMethodType(p)],
      ['card_brand', p.card?.brand ?? 'unknown'],
      ['issuer_country', p.card?.country ?? 'unknown'],
      ['customer_country', p.customer?.country ?? 'unknown'],
      ['channel', p.channel ?? 'unknown'],
    ];
    if (p.status === 'failed') dims.push(['decline_reason', p.failure?.code ?? 'unknown']);
    if (p.review) dims.push(['review', p.review.status]);
    // Why a payment moved to another processor (docs/routing.md): `cascade: <decline code>` or
    // `failover: <processor>`; the row's approvals are what the next processor recovered.
    for (const a of p.attempts ?? [])
      if (a.next)
        dims.push([
          'moved_on',
          a.next.cascade ? `cascade: ${a.failure?.code ?? 'unknown'}` : `failover: ${a.processor}`,
        ]);
    for (const [d, v] of dims) this.bump(d, v, o);
  }

  rows(): unknown[][] {
    const order = new Map(PERFORMANCE_DIMENSIONS.map((d, i) => [d, i]));
    return [...this.counters.entries()]
      .map(([k, c]) => {
        const [dimension, value] = k.split('\u0000') as [string, string];
        const decided = c.approved + c.declined;
        return [
          dimension,
          value,
          c.payments,
          c.approved,
          c.declined,
          c.other,
          decided ? (c.approved / decided).toFixed(4) : '',
        ];
      })
      .sort((a, b) => {
        const da = order.get(a[0] as (typeof PERFORMANCE_DIMENSIONS)[number]) ?? 99;
        const db = order.get(b[0] as (typeof PERFORMANCE_DIMENSIONS)[number]) ?? 99;
        if (da !== db) return da - db;
        if (a[2] !== b[2]) return (b[2] as number) - (a[2] as number);
        return String(a[1]) < String(b[1]) ? -1 : 1;
      });
  }
}
