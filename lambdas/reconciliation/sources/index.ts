/**
 * Where settlement data comes from, per processor. A source only normalizes: it turns a
 * processor's file or API into SettlementItems and PayoutHeaders; matching never changes.
 *
 * - Stripe: the payouts API, or the itemized payout reconciliation report (CSV); a file's payout
 *   amounts are looked up in the API.
 * - Adyen: the Settlement details report (CSV), read by the Adyen connector's importer
 *   (lambdas/connectors/adyen/settlement.ts). Adyen has no payouts API here: the report carries
 *   its own payout headers (the `MerchantPayout` line per currency), handed over through
 *   `FileContext.payout`.
 *
 * To add a processor: a reader in this folder (or its connector's), listed below, and its terms in
 * fees.ts.
 */
import type { PayoutHeader, SettlementItem } from '../types.ts';
import { stripePayout, stripePayoutItems, stripePayouts } from '../../connectors/stripe/payouts.ts';
import { readStripeItemizedCsv } from './stripe-csv.ts';
import { ADYEN_SETTLEMENT_DETAILS } from './adyen-settlement-details.ts';

/** What a reader may know of its file beyond the bytes, and where it hands payout headers. */
export interface FileContext {
  /** The file's name or object key (e.g. an Adyen batch number in `…_batch_<n>.csv`). */
  name?: string;
  /** Called with each payout header the file itself states, after its items were read. */
  payout?: (header: PayoutHeader) => void;
}

export interface FileFormat {
  /** Reads the file into items, in file order, in batches. */
  read(
    stream: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
    context?: FileContext,
  ): AsyncGenerator<SettlementItem[]>;
  /** Names the format in messages. */
  description: string;
  /** The file states its payouts' amounts (given to `context.payout`): no API lookup needed. */
  payoutsInFile?: boolean;
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
  adyen: {
    files: { 'settlement-details': ADYEN_SETTLEMENT_DETAILS },
    defaultFormat: 'settlement-details',
    // No payouts API: payouts are known from their Settlement details report only.
  },
};

/** Processors whose settlement files paystep reads (`reconcile import`, the drop prefix). */
export const fileProcessors = (): string[] => Object.keys(SOURCES);

/** Processors whose payouts paystep can list from an API (`reconcile sync`, the hourly sync). */
export const apiProcessors = (): string[] => Object.keys(SOURCES).filter((p) => SOURCES[p]!.api);

export function sourcesOf(processor: string): ProcessorSources {
  const s = SOURCES[processor];
  if (!s)
    throw new Error(
      `no settlement source for processor "${processor}" (known: ${Object.keys(SOURCES).join(', ')})`,
    );
  return s;
}
