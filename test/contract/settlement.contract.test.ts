/**
 * Connector contract: settlement import, the same for every connector (harness.ts). The simulator
 * settles what it captured and refunded and writes the processor's own file (Stripe's itemized
 * payout reconciliation report, Adyen's Settlement details report); the processor's reader in
 * lambdas/reconciliation/sources turns it into `SettlementItem`s the matcher can use: a charge line
 * per captured payment with its reference, a negative refund line, `net = gross − fee`, every line
 * in one payout, and the lines adding up to what was paid out.
 */
import { sourcesOf } from '../../lambdas/reconciliation/sources/index.ts';
import type { PayoutHeader, SettlementItem } from '../../lambdas/reconciliation/types.ts';
import { describeContract, eventually, referenceOf, targetCan, testIf } from './harness.ts';

describeContract('settlement', (fx, target) => {
  const onSimulator = testIf(targetCan(target, 'simulator'));

  onSimulator(
    "the processor's settlement file imports into items that match its payments and payout",
    async () => {
      const f = fx();
      const charged = referenceOf((await f.authorize({ amount: 2500 })).result);
      const refunded = referenceOf((await f.authorize({ amount: 1000 })).result);
      await eventually(
        'captured',
        () => f.adapter.retrieve(refunded),
        (x) => x.status === 'captured',
      );
      const refund = await f.adapter.refund(refunded, 400, `${refunded}:refund:settle`);
      await eventually(
        'refund settled',
        () => f.adapter.retrieveRefund(refund.refundReference),
        (x) => x.status === 'succeeded',
      );

      const file = await f.settlementFile!();
      const source = sourcesOf(f.name);
      const format = source.files[source.defaultFormat]!;
      const headers: PayoutHeader[] = [];
      const items: SettlementItem[] = [];
      for await (const batch of format.read([file.body], { name: file.name, payout: (h) => headers.push(h) }))
        items.push(...batch);

      const charge = items.find((i) => i.type === 'charge' && i.reference === charged);
      expect(charge).toMatchObject({ processor: f.name, gross: 2500, currency: f.currency });
      expect(charge!.net).toBe(charge!.gross - charge!.fee);
      const back = items.find((i) => i.type === 'refund' && i.reference === refunded);
      expect(back).toMatchObject({ gross: -400, currency: f.currency });
      for (const i of items) {
        expect(i.net).toBe(i.gross - i.fee);
        expect(i.item_id).toBeTruthy();
        expect(i.payout_date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      }
      expect(new Set(items.map((i) => i.item_id)).size).toBe(items.length);

      // The payout: stated in the file (Adyen) or by the processor's API (Stripe, here its simulator).
      const payouts = format.payoutsInFile
        ? headers.map((h) => ({ id: h.payout_id, currency: h.currency, amount: h.amount }))
        : file.payouts;
      const payout = payouts.find((p) => p.currency === f.currency);
      expect(payout).toBeDefined();
      const lines = items.filter((i) => i.payout_id === payout!.id && i.type !== 'payout');
      expect(lines).toContainEqual(charge);
      expect(lines.reduce((s, i) => s + i.net, 0)).toBe(payout!.amount);
    },
  );
});
