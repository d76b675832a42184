/**
 * The daily finance reports as pure builders: one transactions row per ledger entry with its
 * effect on the receivable, a summary folded from the same entries, and payment performance by
 * dimension, in a deterministic order.
 */
import { entriesFromChange, feeEntry, payoutEntry, type LedgerEntry } from '../../lambdas/ledger/domain.ts';
import type { Payment } from '../../lambdas/domain/payment.ts';
import {
  DailyTotals,
  outcomeOf,
  paymentMethodType,
  PerformanceTotals,
  receivableEffect,
  SUMMARY_COLUMNS,
  summaryRow,
  transactionRow,
} from '../../lambdas/reports/finance.ts';
import { previousDay } from '../../lambdas/reports/daily.ts';
import { progressLine } from '../../lib/cli/finance.ts';

const base = {
  kind: 'payment',
  id: 'pay_1',
  merchant_id: 'mch_1',
  processor: 'stripe',
  currency: 'usd',
  updated: 1_719_700_000,
};

function day(): LedgerEntry[] {
  return [
    ...entriesFromChange({
      eventName: 'INSERT',
      newImage: { ...base, amount_captured: 1000, amount_refunded: 0 },
    }),
    ...entriesFromChange({
      eventName: 'MODIFY',
      oldImage: { ...base, amount_captured: 1000, amount_refunded: 0 },
      newImage: { ...base, amount_captured: 1000, amount_refunded: 250 },
    }),
    ...entriesFromChange(
      {
        eventName: 'INSERT',
        newImage: {
          kind: 'dispute',
          id: 'dp_1',
          payment_id: 'pay_1',
          funds_withdrawn_amount: 750,
          updated: 1_719_700_100,
        },
      },
      { merchant_id: 'mch_1', processor: 'stripe', currency: 'usd' },
    ),
    feeEntry({
      processor: 'stripe',
      itemId: 'txn_1',
      merchantId: 'mch_1',
      currency: 'usd',
      fee: 59,
      paymentId: 'pay_1',
      reference: 'pi_1',
      occurredAt: '2024-06-29T00:00:00.000Z',
    })!,
    payoutEntry({
      processor: 'stripe',
      payoutId: 'po_1',
      merchantId: 'mch_1',
      currency: 'usd',
      net: 941,
      occurredAt: '2024-06-29T00:00:00.000Z',
    })!,
  ];
}

describe('daily reports', () => {
  test('a transactions row per entry, with its accounts and its effect on the receivable', () => {
    const rows = day().map(transactionRow);
    expect(rows.map((r) => [r[0], r[2], r[6], r[7], r[8], r[9]])).toEqual([
      ['cap:pay_1:1000', 'capture', 1000, 1000, 'processor_receivable', 'sales'],
      ['ref:pay_1:250', 'refund', 250, -250, 'refunds', 'processor_receivable'],
      ['dsp:dp_1:750', 'dispute_withdrawal', 750, -750, 'disputes', 'processor_receivable'],
      ['fee:stripe:txn_1', 'fee', 59, -59, 'processor_fees', 'processor_receivable'],
      ['pout:stripe:po_1:mch_1:usd', 'payout', 941, -941, 'bank', 'processor_receivable'],
    ]);
    expect(day().reduce((s, e) => s + receivableEffect(e), 0)).toBe(1000 - 250 - 750 - 59 - 941);
  });

  test('the summary folds the same entries: net = gross − refunds − disputes − fees', () => {
    const t = new DailyTotals();
    for (const e of day()) t.add(e);
    expect(SUMMARY_COLUMNS.slice(0, 2)).toEqual(['currency', 'processor']);
    expect(t.list().map(summaryRow)).toEqual([
      ['usd', 'stripe', 5, 1000, 250, 750, 59, -59, 941, 1, 1, 1, 1, 1],
    ]);
  });

  test('by processor: each processor and currency on its own, counts included; the platform adds merchants up', () => {
    // The same day on Adyen, in euros, for a second merchant: a capture, a partial refund, a fee.
    const adyen = (e: LedgerEntry): LedgerEntry => ({
      ...e,
      id: `${e.id}:adyen`,
      processor: 'adyen',
      currency: 'eur',
      merchant_id: 'mch_2',
    });
    const [capture, refund, , fee] = day();
    const a = new DailyTotals();
    for (const e of day()) a.add(e);
    const b = new DailyTotals();
    for (const e of [capture!, refund!, fee!].map(adyen)) b.add(e);
    b.add(capture!); // and a Stripe capture in dollars
    expect(b.list().map(summaryRow)).toEqual([
      ['eur', 'adyen', 3, 1000, 250, 0, 59, 691, 0, 1, 1, 0, 1, 0],
      ['usd', 'stripe', 1, 1000, 0, 0, 0, 1000, 0, 1, 0, 0, 0, 0],
    ]);
    const platform = new DailyTotals();
    platform.merge(a);
    platform.merge(b);
    expect(platform.entries).toBe(9);
    expect(platform.byProcessor()).toEqual([
      {
        processor: 'adyen',
        entries: 3,
        currencies: [
          expect.objectContaining({ currency: 'eur', gross: 1000, refunds: 250, fees: 59, net: 691 }),
        ],
      },
      {
        processor: 'stripe',
        entries: 6,
        currencies: [
          expect.objectContaining({
            currency: 'usd',
            entries: 6,
            gross: 2000,
            refunds: 250,
            disputes: 750,
            fees: 59,
            net: 941,
            paid_out: 941,
            capture_count: 2,
            refund_count: 1,
            dispute_count: 1,
            fee_count: 1,
            payout_count: 1,
          }),
        ],
      },
    ]);
    // Merging does not change what was merged.
    expect(a.list().map(summaryRow)).toEqual([
      ['usd', 'stripe', 5, 1000, 250, 750, 59, -59, 941, 1, 1, 1, 1, 1],
    ]);
  });

  test('performance: approval rate per dimension, decline reasons and review outcomes', () => {
    const p = (over: Partial<Payment>): Payment =>
      ({
        status: 'captured',
        processor: 'stripe',
        payment_method: 'pm_card_visa',
        card: { brand: 'visa', country: 'US' },
        customer: { country: 'FR' },
        channel: 'web',
        failure: null,
        review: null,
        ...over,
      }) as Payment;
    const t = new PerformanceTotals();
    t.add(p({}));
    t.add(p({ status: 'settled', card: { brand: 'mastercard', country: 'GB' } }));
    t.add(p({ status: 'failed', failure: { code: 'insufficient_funds' } as Payment['failure'] }));
    t.add(
      p({
        status: 'canceled',
        review: { id: 'rv_1', reasons: [], status: 'rejected' },
        card: null,
        processor: null,
      }),
    );
    const rows = t.rows();
    expect(rows[0]).toEqual(['all', 'all', 4, 2, 1, 1, '0.6667']);
    expect(rows).toContainEqual(['card_brand', 'visa', 2, 1, 1, 0, '0.5000']);
    expect(rows).toContainEqual(['issuer_country', 'GB', 1, 1, 0, 0, '1.0000']);
    expect(rows).toContainEqual(['decline_reason', 'insufficient_funds', 1, 0, 1, 0, '0.0000']);
    expect(rows).toContainEqual(['review', 'rejected', 1, 0, 0, 1, '']);
    expect(rows).toContainEqual(['processor', 'none', 1, 0, 0, 1, '']);
    expect(rows.map((r) => r[0])).toEqual([...rows.map((r) => r[0])].sort((a, b) => order(a) - order(b)));
    expect(outcomeOf({ status: 'refunded' })).toBe('approved');
    expect(paymentMethodType({ payment_method: 'pm_1Abc', card: null })).toBe('card');
  });

  test('the scheduled run reports the previous day; the CLI draws a progress bar', () => {
    expect(previousDay('2024-07-01T02:15:00Z')).toBe('2024-06-30');
    expect(
      progressLine(
        { report: 'summary', merchant: 'mch_1', merchantsDone: 1, merchantsTotal: 2, rows: 12345 },
        10,
      ),
    ).toBe('summary [█████░░░░░] 1/2 merchants · mch_1 · 12,345 rows');
  });
});

const DIMS = [
  'all',
  'processor',
  'payment_method',
  'card_brand',
  'issuer_country',
  'customer_country',
  'channel',
  'decline_reason',
  'review',
];
const order = (d: unknown) => DIMS.indexOf(String(d));
