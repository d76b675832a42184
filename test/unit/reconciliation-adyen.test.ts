/**
 * The Adyen settlement source (lambdas/connectors/adyen/settlement.ts, `ADYEN_SETTLEMENT_DETAILS_FORMAT`):
 * the connector's importer behind `SOURCES.adyen`, the payout headers handed over from the file's
 * MerchantPayout line, the batch number taken from the file name when rows leave it empty.
 */
import { SOURCES, apiProcessors, fileProcessors } from '../../lambdas/reconciliation/sources/index.ts';
import { processorTerms } from '../../lambdas/reconciliation/fees.ts';
import type { PayoutHeader, SettlementItem } from '../../lambdas/reconciliation/types.ts';

const HEADER =
  'Merchant Account,Psp Reference,Type,Modification Reference,Creation Date,TimeZone,Gross Currency,Gross Debit (GC),Gross Credit (GC),Net Currency,Net Debit (NC),Net Credit (NC),Commission (NC),Markup (NC),Scheme Fees (NC),Interchange (NC),Batch Number';
const ROWS = [
  'PaystepECOM,8815000000000001,Settled,8815000000000101,2026-03-02 10:00:00,UTC,EUR,,10.00,EUR,,9.85,,0.05,0.02,0.08,',
  'PaystepECOM,8815000000000002,Refunded,8815000000000102,2026-03-02 11:00:00,UTC,EUR,2.00,,EUR,2.00,,,,,,',
  'PaystepECOM,,Fee,Transaction Fees,2026-03-03 00:00:00,UTC,,,,EUR,0.20,,,,,,',
  'PaystepECOM,,MerchantPayout,"Merchant payout batch 12, PaystepECOM",2026-03-03 00:00:00,UTC,,,,EUR,7.65,,,,,,',
];

test('SOURCES.adyen reads the report through the connector and states its payouts', async () => {
  expect(fileProcessors()).toEqual(['stripe', 'adyen']);
  expect(apiProcessors()).toEqual(['stripe']);
  const format = SOURCES.adyen!.files[SOURCES.adyen!.defaultFormat]!;
  expect(format.payoutsInFile).toBe(true);
  const items: SettlementItem[] = [];
  const payouts: PayoutHeader[] = [];
  for await (const b of format.read([[HEADER, ...ROWS].join('\r\n') + '\r\n'], {
    name: 'imports/adyen/0123abcd-settlement_detail_report_batch_12.csv',
    payout: (h) => payouts.push(h),
  }))
    items.push(...b);
  expect(payouts).toEqual([
    {
      processor: 'adyen',
      payout_id: 'PaystepECOM-12-EUR',
      payout_date: '2026-03-03',
      currency: 'eur',
      amount: 765,
      status: 'paid',
    },
  ]);
  expect(items.map((i) => [i.type, i.reference, i.gross, i.fee, i.net, i.payout_id, i.payout_date])).toEqual([
    ['charge', '8815000000000001', 1000, 15, 985, 'PaystepECOM-12-EUR', '2026-03-03'],
    ['refund', '8815000000000002', -200, 0, -200, 'PaystepECOM-12-EUR', '2026-03-03'],
    ['fee', null, -20, 0, -20, 'PaystepECOM-12-EUR', '2026-03-03'],
    ['payout', null, -765, 0, -765, 'PaystepECOM-12-EUR', '2026-03-03'],
  ]);
  // The lines other than the payout net to what the MerchantPayout line paid.
  expect(items.filter((i) => i.type !== 'payout').reduce((s, i) => s + i.net, 0)).toBe(765);
});

test('Adyen terms: fees as Adyen states them (Interchange++), a 7-day settlement delay', () => {
  const t = processorTerms('adyen');
  expect(t.expectedFee('charge', 1000, 'eur')).toBeNull();
  expect(t.settlementDelayDays).toBe(7);
});
