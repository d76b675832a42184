/**
 * Adyen's Settlement details report → SettlementItems and PayoutHeaders
 * (lambdas/connectors/adyen/settlement.ts): columns found by name in any order, every record type,
 * signs and fees, payout ids and dates, multi-currency batches, and memory that stays flat on a
 * large file.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { CsvError, csvLine } from '../../lambdas/reports/csv.ts';
import {
  ADYEN_SETTLEMENT_DETAILS_FORMAT,
  AdyenSettlementReader,
  adyenCreated,
  batchNumberFromFileName,
  readAdyenSettlementDetails,
} from '../../lambdas/connectors/adyen/settlement.ts';
import type { SettlementItem } from '../../lambdas/reconciliation/types.ts';

/** Adyen's standard columns, in Adyen's order. */
const COLUMNS = [
  'Company Account',
  'Merchant Account',
  'Psp Reference',
  'Merchant Reference',
  'Payment Method',
  'Creation Date',
  'TimeZone',
  'Type',
  'Modification Reference',
  'Gross Currency',
  'Gross Debit (GC)',
  'Gross Credit (GC)',
  'Exchange Rate',
  'Net Currency',
  'Net Debit (NC)',
  'Net Credit (NC)',
  'Commission (NC)',
  'Markup (NC)',
  'Scheme Fees (NC)',
  'Interchange (NC)',
  'Payment Method Variant',
  'Modification Merchant Reference',
  'Batch Number',
  'Reserved4',
  'Reserved5',
  'Reserved6',
  'Reserved7',
  'Reserved8',
  'Reserved9',
  'Reserved10',
] as const;
type Row = Partial<Record<(typeof COLUMNS)[number] | 'Store', string>>;

const tx = (over: Row): Row => ({
  'Company Account': 'PaystepCompany',
  'Merchant Account': 'PaystepECOM',
  'Payment Method': 'visa',
  'Creation Date': '2026-11-27 10:00:00',
  TimeZone: 'CET',
  'Exchange Rate': '1',
  'Payment Method Variant': 'visaclassic',
  'Batch Number': '4',
  ...over,
});

/** One batch: every record type paystep reconciles. */
const ROWS: Row[] = [
  tx({
    'Psp Reference': 'PSP0000000000001',
    'Merchant Reference': 'pay_1',
    Type: 'Settled',
    'Modification Reference': 'PSPCAP0000000001',
    'Gross Currency': 'EUR',
    'Gross Credit (GC)': '10.50',
    'Net Currency': 'EUR',
    'Net Credit (NC)': '10.20',
    'Markup (NC)': '0.05',
    'Scheme Fees (NC)': '0.02',
    'Interchange (NC)': '0.23',
  }),
  tx({
    'Psp Reference': 'PSP0000000000001',
    Type: 'Refunded',
    'Modification Reference': 'PSPREF0000000001',
    'Gross Currency': 'EUR',
    'Gross Debit (GC)': '4.00',
    'Net Currency': 'EUR',
    'Net Debit (NC)': '4.00',
  }),
  tx({
    'Psp Reference': 'PSP0000000000002',
    Type: 'Chargeback',
    'Modification Reference': 'PSPDIS0000000001',
    'Gross Currency': 'EUR',
    'Gross Debit (GC)': '349.99',
    'Net Currency': 'EUR',
    'Net Debit (NC)': '357.49',
    'Commission (NC)': '7.50',
  }),
  tx({
    'Psp Reference': 'PSP0000000000002',
    Type: 'ChargebackReversed',
    'Modification Reference': 'PSPDIS0000000002',
    'Gross Currency': 'EUR',
    'Gross Credit (GC)': '349.99',
    'Net Currency': 'EUR',
    'Net Credit (NC)': '349.99',
  }),
  tx({
    'Psp Reference': 'PSP0000000000002',
    Type: 'SecondChargeback',
    'Modification Reference': 'PSPDIS0000000003',
    'Gross Currency': 'EUR',
    'Gross Debit (GC)': '349.99',
    'Net Currency': 'EUR',
    'Net Debit (NC)': '349.99',
  }),
  tx({
    'Psp Reference': 'PSP0000000000003',
    Type: 'RefundedReversed',
    'Modification Reference': 'PSPREF0000000009',
    'Gross Currency': 'EUR',
    'Gross Credit (GC)': '2.00',
    'Net Currency': 'EUR',
    'Net Credit (NC)': '2.00',
  }),
  tx({
    Type: 'Fee',
    'Modification Reference': 'Transaction Fees November 2026',
    'Net Currency': 'EUR',
    'Net Debit (NC)': '0.20',
  }),
  tx({
    Type: 'MiscCosts',
    'Modification Reference': 'Chargeback handling',
    'Net Currency': 'EUR',
    'Net Debit (NC)': '1.00',
  }),
  tx({
    Type: 'DepositCorrection',
    'Modification Reference': 'Deposit',
    'Net Currency': 'EUR',
    'Net Credit (NC)': '5.00',
  }),
  tx({
    'Creation Date': '2026-11-28 06:00:00',
    Type: 'MerchantPayout',
    'Modification Reference': 'Merchant payout batch 4',
    'Net Currency': 'EUR',
    'Net Debit (NC)': '4.51',
  }),
];

const render = (rows: Row[], columns: readonly string[] = COLUMNS) =>
  csvLine(columns) + rows.map((r) => csvLine(columns.map((c) => r[c as keyof Row] ?? ''))).join('');

async function readAll(text: string | Iterable<string>, reader = new AdyenSettlementReader()) {
  const items: SettlementItem[] = [];
  for await (const b of reader.items(typeof text === 'string' ? [text] : text)) items.push(...b);
  return { items, payouts: reader.payouts };
}

describe('Adyen Settlement details report', () => {
  test('every record type, signed as the balance sees it, with fees, in one payout of the batch', async () => {
    const { items, payouts } = await readAll(render(ROWS));
    const payout = 'PaystepECOM-4-EUR';
    const pick = (i: SettlementItem) => [i.type, i.reference, i.gross, i.fee, i.net];
    expect(items.map(pick)).toEqual([
      ['charge', 'PSP0000000000001', 1050, 30, 1020],
      ['refund', 'PSP0000000000001', -400, 0, -400],
      ['dispute', 'PSP0000000000002', -34999, 750, -35749],
      ['dispute_reversal', 'PSP0000000000002', 34999, 0, 34999],
      ['dispute', 'PSP0000000000002', -34999, 0, -34999],
      ['refund_failure', 'PSP0000000000003', 200, 0, 200],
      ['fee', null, -20, 0, -20],
      ['fee', null, -100, 0, -100],
      ['adjustment', null, 500, 0, 500],
      ['payout', null, -451, 0, -451],
    ]);
    for (const it of items) {
      expect(it).toMatchObject({
        processor: 'adyen',
        payout_id: payout,
        payout_date: '2026-11-28',
        currency: 'eur',
      });
      expect(it.net).toBe(it.gross - it.fee);
      expect(it.merchant_hint).toBeNull();
    }
    expect(items[0]).toMatchObject({
      item_id: 'Settled:PSPCAP0000000001',
      source_id: 'PSPCAP0000000001',
      created: '2026-11-27T09:00:00.000Z',
    });
    expect(items[6]!.item_id).toBe(`${payout}:Fee:Transaction Fees November 2026`);
    expect(new Set(items.map((i) => i.item_id)).size).toBe(items.length);
    expect(payouts).toEqual([
      {
        processor: 'adyen',
        payout_id: payout,
        payout_date: '2026-11-28',
        currency: 'eur',
        amount: 451,
        status: 'paid',
      },
    ]);
  });

  test('columns in another order, with extra columns and quoted fields, read the same', async () => {
    const shuffled = [...COLUMNS, 'Store'].reverse();
    const rows = ROWS.map((r) => ({ ...r, Store: 'Amsterdam, "Main"' }));
    const a = await readAll(render(ROWS));
    const b = await readAll(render(rows, shuffled));
    expect(b.items).toEqual(a.items);
    expect(b.payouts).toEqual(a.payouts);
  });

  test('CRLF, a byte order mark and chunks split anywhere make no difference', async () => {
    const text = '\ufeff' + render(ROWS);
    const chunks = text.match(/[\s\S]{1,37}/g)!;
    expect((await readAll(chunks)).items).toEqual((await readAll(render(ROWS))).items);
  });

  test('a batch with two currencies has a payout per currency', async () => {
    const usd = ROWS.map((r) => ({
      ...r,
      'Gross Currency': r['Gross Currency'] ? 'USD' : '',
      'Net Currency': 'USD',
      'Psp Reference': r['Psp Reference'] ? `${r['Psp Reference']}U` : '',
      'Modification Reference': `${r['Modification Reference']}U`,
    }));
    const { items, payouts } = await readAll(
      render([...ROWS.slice(0, -1), ...usd.slice(0, -1), ROWS.at(-1)!, usd.at(-1)!]),
    );
    expect(payouts.map((p) => [p.payout_id, p.currency, p.amount])).toEqual([
      ['PaystepECOM-4-EUR', 'eur', 451],
      ['PaystepECOM-4-USD', 'usd', 451],
    ]);
    expect(items.filter((i) => i.currency === 'usd').every((i) => i.payout_id === 'PaystepECOM-4-USD')).toBe(
      true,
    );
  });

  test('currencies with other exponents, a conversion, and a batch Adyen collected from', async () => {
    const rows = [
      tx({
        'Psp Reference': 'PSPJPY0000000001',
        Type: 'Settled',
        'Modification Reference': 'PSPJPYCAP0000001',
        'Gross Currency': 'JPY',
        'Gross Credit (GC)': '1500',
        'Net Currency': 'JPY',
        'Net Credit (NC)': '1470',
      }),
      tx({
        'Psp Reference': 'PSPUSD0000000001',
        Type: 'Settled',
        'Modification Reference': 'PSPUSDCAP0000001',
        'Gross Currency': 'USD',
        'Gross Credit (GC)': '11.00',
        'Exchange Rate': '0.92',
        'Net Currency': 'JPY',
        'Net Credit (NC)': '1500',
        'Markup (NC)': '20',
        'Interchange (NC)': '10',
      }),
      tx({
        Type: 'MerchantPayout',
        'Modification Reference': 'p',
        'Net Currency': 'JPY',
        'Net Credit (NC)': '120',
      }),
    ];
    const { items, payouts } = await readAll(render(rows));
    expect(items.map((i) => [i.currency, i.gross, i.fee, i.net])).toEqual([
      ['jpy', 1500, 30, 1470],
      ['jpy', 1530, 30, 1500], // another gross currency: gross in the net currency, fee from the columns
      ['jpy', 120, 0, 120],
    ]);
    expect(payouts[0]).toMatchObject({ payout_id: 'PaystepECOM-4-JPY', amount: -120 });
  });

  test('the batch number from the option (file name) when rows leave it empty; else a clear error', async () => {
    const rows = ROWS.map((r) => ({ ...r, 'Batch Number': '' }));
    expect(batchNumberFromFileName('reports/settlement_detail_report_batch_17.csv')).toBe('17');
    const { items } = await readAll(render(rows), new AdyenSettlementReader({ batchNumber: 17 }));
    expect(items[0]!.payout_id).toBe('PaystepECOM-17-EUR');
    await expect(readAll(render(rows))).rejects.toThrow(/line 2: Batch Number is empty/);
  });

  test('a missing required column, a bad amount, an empty file', async () => {
    const without = COLUMNS.filter((c) => c !== 'Net Credit (NC)');
    await expect(readAll(render(ROWS, without))).rejects.toThrow(/missing column\(s\): Net Credit \(NC\)/);
    const bad = [tx({ ...ROWS[0], 'Gross Credit (GC)': '10,50' })];
    await expect(readAll(render(bad))).rejects.toThrow(CsvError);
    await expect(readAll('')).rejects.toThrow(/empty/);
  });

  test('a batch that did not pay out takes its latest creation date; payoutDate streams without spilling', async () => {
    const { items, payouts } = await readAll(render(ROWS.slice(0, 3)));
    expect(payouts).toEqual([]);
    expect(items.every((i) => i.payout_date === '2026-11-27')).toBe(true);
    const known = await readAll(
      render(ROWS),
      new AdyenSettlementReader({ payoutDate: '2026-12-01', batchSize: 3 }),
    );
    expect(known.items.every((i) => i.payout_date === '2026-12-01')).toBe(true);
    expect(known.payouts[0]!.payout_date).toBe('2026-12-01');
  });

  test('creation dates in the zones Adyen writes', () => {
    expect(adyenCreated('2026-07-01 12:00:00', 'CEST')).toBe('2026-07-01T10:00:00.000Z');
    expect(adyenCreated('2026-07-01 12:00:00', 'UTC')).toBe('2026-07-01T12:00:00.000Z');
    expect(adyenCreated('2026-07-01 12:00:00', 'XYZ')).toBe('2026-07-01T12:00:00');
    expect(adyenCreated('yesterday', 'CET')).toBeNull();
  });

  test('the reconciliation file format reads the same items', async () => {
    const items: SettlementItem[] = [];
    for await (const b of ADYEN_SETTLEMENT_DETAILS_FORMAT.read([render(ROWS)])) items.push(...b);
    expect(items).toEqual((await readAll(render(ROWS))).items);
    expect(ADYEN_SETTLEMENT_DETAILS_FORMAT.description).toMatch(/Settlement details report/);
  });

  test('a large report streams in flat memory (what stays reachable does not grow with the rows)', async () => {
    // A real collection between measurements, so garbage not yet collected does not count.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const N = 50_000;
    function* lines(): Generator<string> {
      yield csvLine(COLUMNS);
      let block = '';
      for (let i = 1; i <= N; i++) {
        const r = tx({
          'Psp Reference': `PSP${String(i).padStart(13, '0')}`,
          Type: 'Settled',
          'Modification Reference': `CAP${String(i).padStart(13, '0')}`,
          'Gross Currency': 'EUR',
          'Gross Credit (GC)': '10.00',
          'Net Currency': 'EUR',
          'Net Credit (NC)': '9.70',
        });
        block += csvLine(COLUMNS.map((c) => r[c] ?? ''));
        if (i % 2000 === 0) {
          yield block;
          block = '';
        }
      }
      yield csvLine(
        COLUMNS.map((c) => ({ ...ROWS.at(-1)!, 'Net Debit (NC)': String((N * 970) / 100) })[c] ?? ''),
      );
    }
    gc();
    const before = process.memoryUsage().heapUsed;
    let retained = 0;
    let count = 0;
    let net = 0;
    const reader = new AdyenSettlementReader();
    for await (const batch of reader.items(lines())) {
      count += batch.length;
      for (const it of batch) net += it.net;
      if (count % 20_000 < batch.length) {
        gc();
        retained = Math.max(retained, process.memoryUsage().heapUsed - before);
      }
    }
    expect(count).toBe(N + 1);
    expect(net).toBe(0); // the payout line takes out what the rows brought in
    expect(reader.payouts[0]!.amount).toBe(N * 970);
    // 50 000 items held at once would be tens of MB; read and dropped batch by batch, a few MB at most.
    expect(retained).toBeLessThan(8 * 1024 * 1024);
  }, 20_000);

  test('readAdyenSettlementDetails is the reader with options', async () => {
    const items: SettlementItem[] = [];
    for await (const b of readAdyenSettlementDetails([render(ROWS)], { payoutDate: '2026-11-30' }))
      items.push(...b);
    expect(items).toHaveLength(ROWS.length);
  });
});
