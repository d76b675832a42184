/**
 * Where settlement data comes from, per processor: each processor's connector reads its files and
 * API (lambdas/connectors/<processor>/settlement.ts, payouts.ts); this module only lists them. A
 * source only normalizes: it turns a processor's file or API into SettlementItems and
 * PayoutHeaders; matching never changes.
 *
 * - Stripe: the payouts API, or the itemized payout reconciliation report (CSV); a file's payout
 *   amounts are looked up in the API.
 * - Adyen: the Settlement details report (CSV). Adyen has no payouts API here: the report carries
 *   its own payout headers (the `MerchantPayout` line per currency), handed over through
 *   `FileContext.payout`.
 *
 * To add a processor: its connector's reader (a `FileFormat`, and a `PayoutApi` if it has one),
 * listed below, and its terms in fees.ts.
 */
import type { PayoutHeader, SettlementItem } from '../types.ts';
import { ADYEN_SETTLEMENT_DETAILS_FORMAT } from '../../connectors/adyen/settlement.ts';
import { STRIPE_PAYOUT_API } from '../../connectors/stripe/payouts.ts';
import { STRIPE_ITEMIZED_FORMAT } from '../../connectors/stripe/settlement.ts';

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
    files: { 'payout-reconciliation-itemized': STRIPE_ITEMIZED_FORMAT },
    defaultFormat: 'payout-reconciliation-itemized',
    api: STRIPE_PAYOUT_API,
  },
  adyen: {
    files: { 'settlement-details': ADYEN_SETTLEMENT_DETAILS_FORMAT },
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
