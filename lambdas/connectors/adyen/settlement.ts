/**
 * Adyen's Settlement details report (docs.adyen.com/reporting/settlement-detail-report; the file
 * `settlement_detail_report_batch_<n>.csv` of one payable batch) → the reconciliation engine's
 * `SettlementItem`s and `PayoutHeader`s (lambdas/reconciliation/types.ts).
 *
 * Columns are found by name (any order, extra columns ignored). Required: `Merchant Account`,
 * `Psp Reference`, `Type`, `Modification Reference`, `Gross Currency`, `Gross Debit (GC)`,
 * `Gross Credit (GC)`, `Net Currency`, `Net Debit (NC)`, `Net Credit (NC)`. Used when present:
 * `Batch Number` (else the `batchNumber` option, e.g. from the file name), `Creation Date` with
 * `TimeZone`, `Commission (NC)`, `Markup (NC)`, `Scheme Fees (NC)`, `Interchange (NC)`.
 *
 * Rows (`Type`, Adyen's journal type):
 * - Settled → `charge`; Refunded → `refund`; RefundedReversed → `refund_failure`;
 *   Chargeback, SecondChargeback → `dispute`; ChargebackReversed → `dispute_reversal`
 *   (the Bulk / Externally / InInstallments variants likewise);
 * - Fee, MiscCosts, PaymentCost, InvoiceDeduction → `fee`;
 * - DepositCorrection, ManualCorrected, Balancetransfer, ReserveAdjustment → `adjustment`;
 * - MerchantPayout → the payout: its `PayoutHeader` (amount = Net Debit − Net Credit, what reached
 *   the bank; negative when Adyen collected from the merchant) and a `payout` item, as Stripe's
 *   report has one; anything else → `other`.
 *
 * Payout id: a batch closes per merchant account with one MerchantPayout per net currency, and
 * batch numbers count per merchant account, so the payout is `<Merchant Account>-<Batch>-<NC>`
 * (e.g. `PaystepECOM-4-EUR`).
 *
 * Amounts: major units with a `.` (Adyen writes `5.00`), into paystep's minor units of the
 * currency (lambdas/domain/money.ts; Adyen's CLP `1000.00` is paystep's 1000), without floats.
 * Signed as the balance sees them: gross = Gross Credit − Gross Debit, net = Net Credit − Net
 * Debit; fee = gross − net when the gross and net currencies are the same (the report's fee
 * columns add up to it), else the fee columns' sum, and then gross is taken in the net currency
 * (gross = net + fee) so `net = gross − fee` holds. Rows without a gross (fees, payouts,
 * corrections) have gross = net and fee 0.
 *
 * Streaming: rows are read in batches in constant memory. The payout date (the MerchantPayout
 * row's Creation Date) is only known at the end of the batch, so items are first spilled to a
 * temporary file (JSON lines) and read back with their payout date — memory stays flat for a
 * million rows; disk use is about 300 bytes a row. With the `payoutDate` option nothing is spilled.
 * A batch that did not pay out (no MerchantPayout row) takes its latest Creation Date.
 */
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { currencyExponent, isSupportedCurrency } from '../../domain/money.ts';
import { parseMajor } from '../../reconciliation/amounts.ts';
import type { FileContext, FileFormat } from '../../reconciliation/sources/index.ts';
import type { PayoutHeader, SettlementItem, SettlementType } from '../../reconciliation/types.ts';
import { columnIndex, csvBatches, CsvError } from '../../reports/csv.ts';
import { TempFile } from '../../reports/storage.ts';

export const ADYEN_SETTLEMENT_REQUIRED = [
  'Merchant Account',
  'Psp Reference',
  'Type',
  'Modification Reference',
  'Gross Currency',
  'Gross Debit (GC)',
  'Gross Credit (GC)',
  'Net Currency',
  'Net Debit (NC)',
  'Net Credit (NC)',
] as const;

const FEE_COLUMNS = ['Commission (NC)', 'Markup (NC)', 'Scheme Fees (NC)', 'Interchange (NC)'] as const;

const TYPES: Readonly<Record<string, SettlementType>> = {
  Settled: 'charge',
  SettledBulk: 'charge',
  SettledInInstallments: 'charge',
  SettledExternally: 'charge',
  Refunded: 'refund',
  RefundedBulk: 'refund',
  RefundedInInstallments: 'refund',
  RefundedExternally: 'refund',
  RefundedReversed: 'refund_failure',
  Chargeback: 'dispute',
  SecondChargeback: 'dispute',
  ChargebackExternally: 'dispute',
  ChargebackReversed: 'dispute_reversal',
  ChargebackReversedExternally: 'dispute_reversal',
  Fee: 'fee',
  MiscCosts: 'fee',
  PaymentCost: 'fee',
  InvoiceDeduction: 'fee',
  DepositCorrection: 'adjustment',
  ManualCorrected: 'adjustment',
  Balancetransfer: 'adjustment',
  ReserveAdjustment: 'adjustment',
  MerchantPayout: 'payout',
};

export const adyenSettlementType = (type: string): SettlementType => TYPES[type] ?? 'other';

/** Offsets of the zone abbreviations Adyen writes in `TimeZone` (hours). Unknown: no offset. */
const ZONES: Readonly<Record<string, string>> = {
  UTC: '+00:00',
  GMT: '+00:00',
  WET: '+00:00',
  BST: '+01:00',
  WEST: '+01:00',
  CET: '+01:00',
  CEST: '+02:00',
  EET: '+02:00',
  EEST: '+03:00',
  MSK: '+03:00',
  IST: '+05:30',
  SGT: '+08:00',
  HKT: '+08:00',
  AWST: '+08:00',
  JST: '+09:00',
  AEST: '+10:00',
  AEDT: '+11:00',
  NZST: '+12:00',
  NZDT: '+13:00',
  EST: '-05:00',
  EDT: '-04:00',
  CST: '-06:00',
  CDT: '-05:00',
  MST: '-07:00',
  MDT: '-06:00',
  PST: '-08:00',
  PDT: '-07:00',
  BRT: '-03:00',
};

/** `2013-06-03 11:26:49` + `CET` → `2013-06-03T10:26:49.000Z` (no known zone: the local time as is). */
export function adyenCreated(date: string, zone: string): string | null {
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})$/.exec(date.trim());
  if (!m) return null;
  const offset = ZONES[zone.trim().toUpperCase()];
  if (!offset) return `${m[1]}T${m[2]}`;
  return new Date(`${m[1]}T${m[2]}${offset}`).toISOString();
}

const exponentOf = (currency: string) => (isSupportedCurrency(currency) ? currencyExponent(currency) : 2);

export interface AdyenSettlementOptions {
  /** The batch when rows leave `Batch Number` empty (e.g. from `settlement_detail_report_batch_4.csv`). */
  batchNumber?: string | number;
  /** The payout date (yyyy-mm-dd) when known beforehand: rows are then streamed without spilling. */
  payoutDate?: string;
  /** Items per yielded batch (default 1000). */
  batchSize?: number;
}

/** `settlement_detail_report_batch_4.csv` → `4`. */
export function batchNumberFromFileName(name: string): string | undefined {
  return /settlement_detail_report_batch_(\d+)/.exec(name)?.[1];
}

interface Columns {
  account: number;
  psp: number;
  merchantRef: number;
  type: number;
  modRef: number;
  created: number;
  zone: number;
  gc: number;
  gDebit: number;
  gCredit: number;
  nc: number;
  nDebit: number;
  nCredit: number;
  fees: number[];
  batch: number;
}

type Pending = Omit<SettlementItem, 'payout_date'>;

/** Reads the report; after the iteration, `payouts` holds the batch's payout headers. */
export class AdyenSettlementReader {
  readonly payouts: PayoutHeader[] = [];
  private readonly options: AdyenSettlementOptions;

  constructor(options: AdyenSettlementOptions = {}) {
    this.options = options;
    if (options.payoutDate !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(options.payoutDate))
      throw new Error('payoutDate must be yyyy-mm-dd');
  }

  async *items(
    stream: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  ): AsyncGenerator<SettlementItem[]> {
    const size = Math.max(1, this.options.batchSize ?? 1000);
    const known = this.options.payoutDate;
    const headers = new Map<string, PayoutHeader>();
    const latest = new Map<string, string>();
    const spill = known ? undefined : new TempFile('adyen-settlement');
    try {
      let out: SettlementItem[] = [];
      for await (const rows of this.rows(stream, headers, latest)) {
        for (const it of rows) {
          if (spill) await spill.write(JSON.stringify(it) + '\n');
          else {
            out.push({ ...it, payout_date: known! });
            if (out.length >= size) {
              yield out;
              out = [];
            }
          }
        }
      }
      const dateOf = (id: string) => {
        const d = known ?? (headers.get(id)?.payout_date || latest.get(id));
        if (!d)
          throw new CsvError(`payout ${id} has no date: the report has no Creation Date; pass payoutDate`);
        return d;
      };
      for (const h of headers.values()) this.payouts.push({ ...h, payout_date: dateOf(h.payout_id) });
      if (spill) {
        await spill.close();
        const rl = readline.createInterface({ input: fs.createReadStream(spill.path), crlfDelay: Infinity });
        for await (const line of rl) {
          if (!line) continue;
          const it = JSON.parse(line) as Pending;
          out.push({ ...it, payout_date: dateOf(it.payout_id) });
          if (out.length >= size) {
            yield out;
            out = [];
          }
        }
      }
      if (out.length) yield out;
    } finally {
      spill?.remove();
    }
  }

  /** Rows as items without their payout date, in file order; collects payout headers. */
  private async *rows(
    stream: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
    headers: Map<string, PayoutHeader>,
    latest: Map<string, string>,
  ): AsyncGenerator<Pending[]> {
    let c: Columns | undefined;
    let line = 0;
    const fallbackBatch =
      this.options.batchNumber !== undefined ? String(this.options.batchNumber) : undefined;
    for await (const rows of csvBatches(stream)) {
      const out: Pending[] = [];
      for (const row of rows) {
        line++;
        if (!c) {
          const idx = columnIndex(row, ADYEN_SETTLEMENT_REQUIRED);
          const col = (n: string) => idx.get(n) ?? -1;
          c = {
            account: col('Merchant Account'),
            psp: col('Psp Reference'),
            merchantRef: col('Merchant Reference'),
            type: col('Type'),
            modRef: col('Modification Reference'),
            created: col('Creation Date'),
            zone: col('TimeZone'),
            gc: col('Gross Currency'),
            gDebit: col('Gross Debit (GC)'),
            gCredit: col('Gross Credit (GC)'),
            nc: col('Net Currency'),
            nDebit: col('Net Debit (NC)'),
            nCredit: col('Net Credit (NC)'),
            fees: FEE_COLUMNS.map(col).filter((i) => i >= 0),
            batch: col('Batch Number'),
          };
          continue;
        }
        try {
          const item = this.item(row, c, fallbackBatch, headers, latest);
          if (item) out.push(item);
        } catch (err) {
          throw new CsvError(`line ${line}: ${(err as Error).message}`);
        }
      }
      if (out.length) yield out;
    }
    if (!c) throw new CsvError('the file is empty (no header row)');
  }

  private item(
    row: string[],
    c: Columns,
    fallbackBatch: string | undefined,
    headers: Map<string, PayoutHeader>,
    latest: Map<string, string>,
  ): Pending | undefined {
    const get = (i: number) => (i >= 0 ? (row[i] ?? '').trim() : '');
    const rawType = get(c.type);
    if (!rawType) return undefined;
    const account = get(c.account);
    if (!account) throw new Error('Merchant Account is empty');
    const batch = get(c.batch) || fallbackBatch;
    if (!batch) throw new Error('Batch Number is empty: pass the batch number (it is in the file name)');
    const nc = get(c.nc).toLowerCase();
    if (!/^[a-z]{3}$/.test(nc)) throw new Error(`Net Currency "${get(c.nc)}" is not a currency`);
    const payoutId = `${account}-${batch}-${nc.toUpperCase()}`;
    const amount = (i: number, currency: string) => (get(i) ? parseMajor(get(i), exponentOf(currency)) : 0);
    const net = amount(c.nCredit, nc) - amount(c.nDebit, nc);
    const gc = get(c.gc).toLowerCase();
    const hasGross = !!gc && (get(c.gCredit) !== '' || get(c.gDebit) !== '');
    let gross = net;
    let fee = 0;
    if (hasGross) {
      if (gc === nc) {
        gross = amount(c.gCredit, gc) - amount(c.gDebit, gc);
        fee = gross - net;
      } else {
        fee = c.fees.reduce((s, i) => s + amount(i, nc), 0);
        gross = net + fee;
      }
    }
    const created = c.created >= 0 ? adyenCreated(get(c.created), get(c.zone)) : null;
    // The batch's dates as the report writes them (the account's time zone).
    const day = /^\d{4}-\d{2}-\d{2}/.exec(get(c.created))?.[0];
    if (day && (latest.get(payoutId) ?? '') < day) latest.set(payoutId, day);
    const type = adyenSettlementType(rawType);
    const psp = get(c.psp);
    const modRef = get(c.modRef);
    if (type === 'payout') {
      headers.set(payoutId, {
        processor: 'adyen',
        payout_id: payoutId,
        payout_date: day ?? '',
        currency: nc,
        amount: -net,
        status: 'paid',
      });
    }
    return {
      processor: 'adyen',
      item_id: psp && modRef ? `${rawType}:${modRef}` : `${payoutId}:${rawType}${modRef ? `:${modRef}` : ''}`,
      payout_id: payoutId,
      type,
      reference: psp || null,
      source_id: psp ? modRef || null : null,
      currency: nc,
      gross,
      fee,
      net,
      created,
      merchant_hint: null,
    };
  }
}

/** The report's items, in batches (the `FileFormat.read` of reconciliation sources). */
export function readAdyenSettlementDetails(
  stream: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  options: AdyenSettlementOptions = {},
): AsyncGenerator<SettlementItem[]> {
  return new AdyenSettlementReader(options).items(stream);
}

/**
 * The report as a reconciliation source, for lambdas/reconciliation/sources/index.ts
 * `SOURCES.adyen.files`. Adyen has no payouts API here, so the payout headers (batch, date, amount
 * per currency) come from the file itself, the `MerchantPayout` line of each currency, handed to
 * prepare through `FileContext.payout` once the file has been read (the reader only knows them at
 * the end). Rows that leave `Batch Number` empty take it from the file name (`…_batch_<n>.csv`).
 */
export async function* readAdyenSettlementFile(
  stream: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  context: FileContext = {},
): AsyncGenerator<SettlementItem[]> {
  const batchNumber = context.name ? batchNumberFromFileName(path.basename(context.name)) : undefined;
  const reader = new AdyenSettlementReader(batchNumber !== undefined ? { batchNumber } : {});
  yield* reader.items(stream);
  for (const h of reader.payouts) context.payout?.(h);
}

export const ADYEN_SETTLEMENT_DETAILS_FORMAT: FileFormat = {
  read: readAdyenSettlementFile,
  description: 'Adyen Settlement details report (CSV, settlement_detail_report_batch_<n>.csv)',
  payoutsInFile: true,
};
