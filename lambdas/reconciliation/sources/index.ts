/**
 * Where settlement data comes from, per processor. A source only normalizes: it turns a
 * processor's file or API into SettlementItems and PayoutHeaders; matching never changes.
 *
 * To add Adyen: write `adyen-settlement-details.ts` reading the Settlement details report
 * (columns `Merchant Account`, `Batch Number`, `Psp Reference`, `Type` (Settled, Refunded,
 * Chargeback, Fee, MerchantPayout…), `Gross Currency`, `Gross Debit (GC)`, `Gross Credit (GC)`,
 * `Net Currency`, `Net Debit (NC)`, `Net Credit (NC)`, `Commission (NC)`, `Markup (NC)`,
 * `Scheme Fees (NC)`, `Interchange (NC)`, `Creation Date`) into SettlementItems (payout id = merchant
 * account + batch number, reference = Psp Reference, fee = the sum of the fee columns, the
 * `MerchantPayout` line as the PayoutHeader's amount), list it below, and add Adyen's terms in
 * fees.ts.
 */
import type { PayoutHeader, SettlementItem } from '../types.ts';
import { stripePayout, stripePayoutItems, stripePayouts } from './stripe-api.ts';
import { readStripeItemizedCsv } from './stripe-csv.ts';

export interface FileFormat {
  /** Reads the file into items, in file order, in batches. */
  read(stream: AsyncIterable<Buffer | string> | Iterable<Buffer | string>): AsyncGenerator<SettlementItem[]>;
  /** Names the format in messages. */
  description: string;
}

export interface PayoutApi {
  /** A payout's header (amount), or undefined if the processor does not know it. */
  payout(id: string): Promise<PayoutHeader | undefined>;
  /** Paid payouts created since (epoch seconds), oldest first. */
  payouts(sinceEpochSeconds: number): Promise<PayoutHeader[]>;
  items(payout: PayoutHeader): AsyncGenerator<SettlementItem[]>;
}

export interface ProcessorSources {
  files: Record<string, FileFormat>;
  /** The default file format of `paystep reconcile import --processor <p>`. */
  defaultFormat: string;
  api?: PayoutApi;
}

export const SOURCES: Record<string, ProcessorSources> = {
  stripe: {
    files: {
      'payout-reconciliation-itemized': {
        read: readStripeItemizedCsv,
        description: "Stripe itemized payout reconciliation report (CSV, 'payout_reconciliation.itemized.5')",
      },
    },
    defaultFormat: 'payout-reconciliation-itemized',
    api: { payout: stripePayout, payouts: stripePayouts, items: stripePayoutItems },
  },
};

export function sourcesOf(processor: string): ProcessorSources {
  const s = SOURCES[processor];
  if (!s)
    throw new Error(
      `no settlement source for processor "${processor}" (known: ${Object.keys(SOURCES).join(', ')})`,
    );
  return s;
}
