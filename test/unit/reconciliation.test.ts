/**
 * Reconciliation as a specification: Stripe's itemized payout reconciliation CSV is read exactly
 * (RFC 4180, major units → minor units without floats), and the matcher classifies every kind of
 * difference, deterministically, whatever order the payouts are reconciled in.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { addDays, Reconciler } from '../../lambdas/reconciliation/engine.ts';
import { stripeTerms } from '../../lambdas/reconciliation/fees.ts';
import { formatMajor, parseMajor } from '../../lambdas/reconciliation/amounts.ts';
import {
  readStripeItemizedCsv,
  renderStripeItemizedCsv,
} from '../../lambdas/connectors/stripe/settlement.ts';
import type { InternalRecord, SettlementItem } from '../../lambdas/reconciliation/types.ts';
import { CsvReader, csvLine } from '../../lambdas/reports/csv.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'finance');

async function readFixture(name: string): Promise<SettlementItem[]> {
  const out: SettlementItem[] = [];
  for await (const batch of readStripeItemizedCsv(fs.createReadStream(path.join(FIXTURES, name))))
    out.push(...batch);
  return out;
}

const rec = (over: Partial<InternalRecord> & { reference: string }): InternalRecord => ({
  payment_id: `pay_${over.reference.slice(3)}`,
  merchant_id: 'mch_1',
  processor: 'stripe',
  currency: 'usd',
  amount_captured: 1000,
  amount_refunded: 0,
  status: 'captured',
  captured_on: '2024-03-01',
  settled_payout: null,
  prior: [],
  ...over,
});

const internal = (): InternalRecord[] => [
  rec({ reference: 'pi_1' }),
  rec({ reference: 'pi_2', amount_captured: 2000 }),
  rec({ reference: 'pi_3' }),
  rec({ reference: 'pi_4', merchant_id: 'mch_2' }),
  rec({ reference: 'pi_5', merchant_id: 'mch_2', amount_refunded: 1000 }),
  rec({ reference: 'pi_6', merchant_id: 'mch_2', amount_refunded: 500 }),
  rec({ reference: 'pi_7', merchant_id: 'mch_2', captured_on: '2024-02-20' }),
  rec({ reference: 'pi_8', captured_on: '2024-03-04' }),
];

describe('CSV (RFC 4180)', () => {
  test('fields with commas, quotes and line breaks are quoted; records end with CRLF', () => {
    expect(csvLine(['a', 'b,c', 'say "hi"', 'x\ny', null, 12])).toBe('a,"b,c","say ""hi""","x\ny",,12\r\n');
  });

  test('the reader gets the same records whatever the chunking', () => {
    const text = '\ufeffh1,h2,h3\r\n1,"a, b",3\n4,"multi\r\nline ""q""",6\r\n\r\n7,8,\n9,,"x"';
    const whole = new CsvReader();
    const expected = [...whole.push(text), ...whole.end()];
    expect(expected).toEqual([
      ['h1', 'h2', 'h3'],
      ['1', 'a, b', '3'],
      ['4', 'multi\r\nline "q"', '6'],
      ['7', '8', ''],
      ['9', '', 'x'],
    ]);
    for (let size = 1; size < 12; size++) {
      const r = new CsvReader();
      const rows: string[][] = [];
      for (let i = 0; i < text.length; i += size) rows.push(...r.push(text.slice(i, i + size)));
      rows.push(...r.end());
      expect(rows).toEqual(expected);
    }
  });

  test('Stripe amounts in major units become exact minor units, and back', () => {
    expect(parseMajor('10.50', 2)).toBe(1050);
    expect(parseMajor('-0.07', 2)).toBe(-7);
    expect(parseMajor('1234', 0)).toBe(1234);
    expect(parseMajor('1.230', 3)).toBe(1230);
    expect(parseMajor('10.5', 2)).toBe(1050);
    expect(parseMajor('0.29', 2)).toBe(29); // 0.29 * 100 = 28.999999999999996 in floating point
    expect(() => parseMajor('10.505', 2)).toThrow(/more decimals/);
    expect(() => parseMajor('ten', 2)).toThrow(/not an amount/);
    expect(formatMajor(-1050, 2)).toBe('-10.50');
    expect(formatMajor(7, 2)).toBe('0.07');
    expect(formatMajor(1050, 0)).toBe('1050');
  });
});

describe('Stripe itemized payout reconciliation CSV', () => {
  test('is read into settlement items, by column name', async () => {
    const items = await readFixture('stripe-itemized-po_A.csv');
    expect(items).toHaveLength(10);
    expect(items[0]).toEqual({
      processor: 'stripe',
      item_id: 'txn_1',
      payout_id: 'po_A',
      payout_date: '2024-03-05',
      type: 'charge',
      reference: 'pi_1',
      source_id: 'ch_1',
      currency: 'usd',
      gross: 1000,
      fee: 59,
      net: 941,
      created: '2024-03-01T10:00:00Z',
      merchant_hint: 'mch_1',
    });
    expect(items[4]).toMatchObject({ item_id: 'txn_5', reference: 'pi_9' });
    expect(items[6]).toMatchObject({ type: 'refund', gross: -1500, fee: 0, net: -1500 });
    expect(items[9]).toMatchObject({ type: 'fee', reference: null, gross: -200 });
  });

  test('a file without a required column is refused with its name', async () => {
    const bad =
      'automatic_payout_id,balance_transaction_id,currency,gross,net\r\npo_1,txn_1,usd,1.00,1.00\r\n';
    await expect(async () => {
      for await (const _ of readStripeItemizedCsv([Buffer.from(bad)])) void _;
    }).rejects.toThrow(/missing column\(s\): fee, reporting_category/);
  });

  test('what the simulator writes reads back as the same items', async () => {
    const csv = renderStripeItemizedCsv([
      {
        automatic_payout_id: 'po_X',
        automatic_payout_effective_at: '2024-03-05 00:00:00',
        balance_transaction_id: 'txn_X',
        currency: 'jpy',
        reporting_category: 'charge',
        payment_intent_id: 'pi_X',
        description: 'a, "b"',
        gross_minor: 5000,
        fee_minor: 145,
        net_minor: 4855,
      },
    ]);
    const items: SettlementItem[] = [];
    for await (const b of readStripeItemizedCsv([Buffer.from(csv)])) items.push(...b);
    expect(items[0]).toMatchObject({ currency: 'jpy', gross: 5000, fee: 145, net: 4855, reference: 'pi_X' });
  });
});

describe('the matcher', () => {
  async function run(records = internal(), amount: number | null = 12345) {
    const r = new Reconciler({ processor: 'stripe' });
    for (const x of records) r.addInternal(x);
    r.addPayout({
      processor: 'stripe',
      payout_id: 'po_A',
      payout_date: '2024-03-05',
      currency: 'usd',
      amount,
    });
    const results = (await readFixture('stripe-itemized-po_A.csv')).map((it) => r.item(it));
    const payouts = r.payoutChecks();
    const missing = r.missingAtProcessor('2024-03-05');
    return { r, results, payouts, missing };
  }

  test('classifies every line with a reason', async () => {
    const { results } = await run();
    const summary = results.map((x) => [
      x.item.item_id,
      x.status,
      x.exceptions.map((e) => e.type).join('+'),
      x.settle,
      x.merchant_id,
    ]);
    expect(summary).toEqual([
      ['txn_1', 'matched', '', true, 'mch_1'],
      ['txn_2', 'exception', 'amount_mismatch', false, 'mch_1'],
      ['txn_3', 'exception', 'currency_mismatch', false, 'mch_1'],
      ['txn_4', 'exception', 'fee_mismatch', true, 'mch_2'],
      ['txn_5', 'exception', 'missing_internally', false, 'mch_2'],
      ['txn_6', 'exception', 'duplicate', false, 'mch_1'],
      ['txn_7', 'exception', 'refund_above_charge', false, 'mch_2'],
      ['txn_8', 'matched', '', false, 'mch_2'],
      ['txn_1', 'exception', 'duplicate', false, 'mch_1'],
      ['txn_10', 'not_applicable', '', false, null],
    ]);
    const byType = Object.fromEntries(results.flatMap((x) => x.exceptions).map((e) => [e.type, e]));
    expect(byType.amount_mismatch).toMatchObject({
      id: 'amount_mismatch:stripe:txn_2',
      payment_id: 'pay_2',
      expected: 2000,
      actual: 2500,
      reason: 'charge settled for 2500 but paystep captured 2000 (difference 500)',
    });
    expect(byType.fee_mismatch).toMatchObject({ expected: 59, actual: 100 });
    expect(byType.currency_mismatch!.reason).toBe('charge settled in EUR but payment pay_3 is in USD');
    expect(byType.refund_above_charge).toMatchObject({ expected: 1000, actual: 1500 });
    expect(byType.missing_internally!.reason).toBe('charge ch_9 for pi_9 is not a payment paystep knows');
  });

  test('checks the payout total against the net of its lines', async () => {
    const { payouts } = await run();
    const net = 941 + 2397 + 941 + 900 + 1135 + 941 - 1500 - 500 + 941 - 200;
    expect(payouts.payouts).toEqual([
      {
        processor: 'stripe',
        payout_id: 'po_A',
        payout_date: '2024-03-05',
        currency: 'usd',
        amount: 12345,
        items: 10,
        gross: 1000 + 2500 + 1000 + 1000 + 1200 + 1000 - 1500 - 500 + 1000 - 200,
        fee: 59 + 103 + 59 + 100 + 65 + 59 + 59,
        net,
        difference: 12345 - net,
      },
    ]);
    expect(payouts.exceptions.map((e) => [e.type, e.expected, e.actual])).toEqual([
      ['payout_total_mismatch', net, 12345],
    ]);
    expect((await run(internal(), net)).payouts.exceptions).toEqual([]);
    expect((await run(internal(), null)).payouts.exceptions).toEqual([]);
  });

  test('flags captures no payout paid after the settlement delay, and only those', async () => {
    const { missing } = await run();
    expect(missing.map((e) => [e.id, e.merchant_id, e.expected])).toEqual([
      ['missing_at_processor:stripe:pi_7', 'mch_2', 1000],
    ]);
    expect(missing[0]!.reason).toBe(
      'captured 1000 on 2024-02-20; no payout paid it by 2024-03-05 (settlement delay 7 days)',
    );
    // pi_2 (amount mismatch) and pi_3 (currency mismatch) were in the payout: not missing.
    expect(addDays('2024-03-05', -7)).toBe('2024-02-27');
  });

  test('a line already settled in an earlier payout is a duplicate; re-running the earlier payout is not', () => {
    const charge = (payout: string, date: string, id = 'txn_1'): SettlementItem => ({
      processor: 'stripe',
      item_id: id,
      payout_id: payout,
      payout_date: date,
      type: 'charge',
      reference: 'pi_1',
      source_id: 'ch_1',
      currency: 'usd',
      gross: 1000,
      fee: 59,
      net: 941,
      created: null,
      merchant_hint: null,
    });
    const history = [
      {
        item_id: 'txn_1',
        payout_id: 'po_A',
        payout_date: '2024-03-05',
        type: 'charge' as const,
        gross: 1000,
      },
      {
        item_id: 'txn_1',
        payout_id: 'po_B',
        payout_date: '2024-03-06',
        type: 'charge' as const,
        gross: 1000,
      },
    ];
    const classify = (item: SettlementItem) => {
      const r = new Reconciler({ processor: 'stripe', terms: stripeTerms });
      r.addInternal(rec({ reference: 'pi_1', prior: history }));
      return r.item(item);
    };
    // Re-running po_A after po_B: po_A is still the original.
    expect(classify(charge('po_A', '2024-03-05'))).toMatchObject({ status: 'matched', settle: true });
    const again = classify(charge('po_B', '2024-03-06'));
    expect(again.status).toBe('exception');
    expect(again.exceptions[0]!.reason).toBe('line txn_1 was already settled in payout po_A');
    // Another charge line for the same payment in a later payout.
    const second = classify(charge('po_C', '2024-03-07', 'txn_9'));
    expect(second.exceptions[0]!.reason).toBe(
      'payment pay_1 was already charged in payout po_A; txn_9 charges it again',
    );
  });

  test('the same inputs give the same results, exception ids included', async () => {
    const a = await run();
    const b = await run();
    expect(JSON.stringify([a.results, a.payouts, a.missing])).toBe(
      JSON.stringify([b.results, b.payouts, b.missing]),
    );
  });
});
