/**
 * Adyen's Settlement details report (`settlement_detail_report_batch_<n>.csv`) as a reconciliation
 * source. The parsing is the Adyen connector's (lambdas/connectors/adyen/settlement.ts: columns by
 * header name, types, amounts, payout id `<Merchant Account>-<Batch>-<NC>`); this file only adapts
 * it to `FileFormat`:
 *
 * - Adyen has no payouts API here, so the payout headers (batch, date, amount per currency) come
 *   from the file itself: the `MerchantPayout` line of each currency. They are handed to prepare
 *   through `FileContext.payout` once the file has been read (the reader only knows them at the end).
 * - The fee of a line is the sum of Adyen's Commission, Markup, Scheme Fees and Interchange columns
 *   (gross − net when the currencies agree), booked as the line's `fee:adyen:<line>` ledger entry.
 * - Rows that leave `Batch Number` empty take it from the file name (`…_batch_<n>.csv`).
 */
import path from 'node:path';
import {
  ADYEN_SETTLEMENT_DETAILS_FORMAT,
  AdyenSettlementReader,
  batchNumberFromFileName,
} from '../../connectors/adyen/settlement.ts';
import type { SettlementItem } from '../types.ts';
import type { FileContext, FileFormat } from './index.ts';

export async function* readAdyenSettlementFile(
  stream: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  context: FileContext = {},
): AsyncGenerator<SettlementItem[]> {
  const batchNumber = context.name ? batchNumberFromFileName(path.basename(context.name)) : undefined;
  const reader = new AdyenSettlementReader(batchNumber !== undefined ? { batchNumber } : {});
  yield* reader.items(stream);
  for (const h of reader.payouts) context.payout?.(h);
}

export const ADYEN_SETTLEMENT_DETAILS: FileFormat = {
  read: readAdyenSettlementFile,
  description: ADYEN_SETTLEMENT_DETAILS_FORMAT.description,
  payoutsInFile: true,
};
