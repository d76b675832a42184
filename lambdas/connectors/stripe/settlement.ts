/**
 * Stripe's itemized payout reconciliation report (Dashboard → Reports → Payout reconciliation →
 * Download → Itemized, or the Reporting API's `payout_reconciliation.itemized.5`) → the
 * reconciliation engine's `SettlementItem`s (lambdas/reconciliation/types.ts), as
 * ../adyen/settlement.ts does for Adyen's Settlement details report. The report states no payout
 * amounts: they come from the payouts API (./payouts.ts).
 *
 * Columns are found by name, so the file may carry more or fewer optional columns in any order.
 * Required: `automatic_payout_id`, `balance_transaction_id`, `currency`, `gross`, `fee`, `net`,
 * `reporting_category`. Used when present: `automatic_payout_effective_at` (or `…_utc`),
 * `payment_intent_id` (choose it in "Columns" when downloading: it is how lines find their
 * payment), `source_id`, `charge_id`, `created_utc` (or `created`), `payment_metadata[merchant_id]`.
 * Amounts are in major units with a `.` decimal separator, as Stripe writes them; they become
 * integer minor units without floating point.
 */
import { currencyExponent, isSupportedCurrency } from '../../domain/money.ts';
import { formatMajor, parseMajor } from '../../reconciliation/amounts.ts';
import type { FileFormat } from '../../reconciliation/sources/index.ts';
import type { SettlementItem, SettlementType } from '../../reconciliation/types.ts';
import { csvBatches, csvLine, columnIndex, CsvError } from '../../reports/csv.ts';

export const STRIPE_ITEMIZED_REQUIRED = [
  'automatic_payout_id',
  'balance_transaction_id',
  'currency',
  'gross',
  'fee',
  'net',
  'reporting_category',
] as const;

/** The columns the simulator writes (and `paystep` reads), in Stripe's order. */
export const STRIPE_ITEMIZED_COLUMNS = [
  'automatic_payout_id',
  'automatic_payout_effective_at',
  'balance_transaction_id',
  'created_utc',
  'available_on_utc',
  'currency',
  'gross',
  'fee',
  'net',
  'reporting_category',
  'source_id',
  'description',
  'charge_id',
  'payment_intent_id',
  'card_brand',
  'card_country',
  'payment_metadata[merchant_id]',
] as const;

export type StripeItemizedRow = Partial<Record<(typeof STRIPE_ITEMIZED_COLUMNS)[number], string | null>> & {
  gross_minor: number;
  fee_minor: number;
  net_minor: number;
};

const CATEGORY: Record<string, SettlementType> = {
  charge: 'charge',
  refund: 'refund',
  refund_failure: 'refund_failure',
  dispute: 'dispute',
  dispute_reversal: 'dispute_reversal',
  fee: 'fee',
  payout: 'payout',
  payout_reversal: 'payout',
  other_adjustment: 'adjustment',
  network_cost: 'adjustment',
  risk_reserved_funds: 'adjustment',
  risk_released_funds: 'adjustment',
};

export const stripeCategory = (c: string): SettlementType => CATEGORY[c] ?? 'other';

const exponentOf = (currency: string) => (isSupportedCurrency(currency) ? currencyExponent(currency) : 2);

/** Reads the report into SettlementItems, in file order, in batches. */
export async function* readStripeItemizedCsv(
  stream: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
): AsyncGenerator<SettlementItem[]> {
  let idx: Map<string, number> | undefined;
  let line = 0;
  const col = (name: string) => idx!.get(name) ?? -1;
  let c: Record<string, number> = {};
  for await (const rows of csvBatches(stream)) {
    const out: SettlementItem[] = [];
    for (const row of rows) {
      line++;
      if (!idx) {
        idx = columnIndex(row, STRIPE_ITEMIZED_REQUIRED);
        c = {
          payout: col('automatic_payout_id'),
          effective:
            col('automatic_payout_effective_at') >= 0
              ? col('automatic_payout_effective_at')
              : col('automatic_payout_effective_at_utc'),
          txn: col('balance_transaction_id'),
          created: col('created_utc') >= 0 ? col('created_utc') : col('created'),
          currency: col('currency'),
          gross: col('gross'),
          fee: col('fee'),
          net: col('net'),
          category: col('reporting_category'),
          source: col('source_id'),
          charge: col('charge_id'),
          pi: col('payment_intent_id'),
          merchant: col('payment_metadata[merchant_id]'),
        };
        continue;
      }
      const get = (i: number | undefined) => (i !== undefined && i >= 0 ? (row[i] ?? '') : '');
      try {
        const currency = get(c.currency).toLowerCase();
        const e = exponentOf(currency);
        const created = get(c.created);
        out.push({
          processor: 'stripe',
          item_id: get(c.txn),
          payout_id: get(c.payout),
          payout_date: get(c.effective).slice(0, 10),
          type: stripeCategory(get(c.category)),
          reference: get(c.pi) || null,
          source_id: get(c.source) || get(c.charge) || null,
          currency,
          gross: parseMajor(get(c.gross), e),
          fee: parseMajor(get(c.fee), e),
          net: parseMajor(get(c.net), e),
          created: created ? `${created.replace(' ', 'T')}${created.length === 19 ? 'Z' : ''}` : null,
          merchant_hint: get(c.merchant) || null,
        });
      } catch (err) {
        throw new CsvError(`line ${line}: ${(err as Error).message}`);
      }
      const last = out[out.length - 1]!;
      if (!last.item_id || !last.payout_id)
        throw new CsvError(`line ${line}: balance_transaction_id and automatic_payout_id are required`);
    }
    if (out.length) yield out;
  }
  if (!idx) throw new CsvError('the file is empty (no header row)');
}

/** Writes rows in the report's format (what the simulator serves as a payout's itemized report). */
export function renderStripeItemizedCsv(rows: StripeItemizedRow[]): string {
  let out = csvLine(STRIPE_ITEMIZED_COLUMNS);
  for (const r of rows) {
    const e = exponentOf(String(r.currency ?? 'usd'));
    out += csvLine(
      STRIPE_ITEMIZED_COLUMNS.map((k) =>
        k === 'gross'
          ? formatMajor(r.gross_minor, e)
          : k === 'fee'
            ? formatMajor(r.fee_minor, e)
            : k === 'net'
              ? formatMajor(r.net_minor, e)
              : (r[k] ?? ''),
      ),
    );
  }
  return out;
}

/** For lambdas/reconciliation/sources/index.ts `SOURCES.stripe.files`. */
export const STRIPE_ITEMIZED_FORMAT: FileFormat = {
  read: (stream) => readStripeItemizedCsv(stream),
  description: "Stripe itemized payout reconciliation report (CSV, 'payout_reconciliation.itemized.5')",
};
