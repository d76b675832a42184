/**
 * Settlement batches and Adyen's Settlement details report (docs.adyen.com/reporting/settlement-
 * detail-report): every money movement (capture, refund, chargeback and their reversals) becomes
 * an entry; `closeBatch()` closes, per merchant account, the batch of everything not yet batched,
 * as Adyen's payable batch does, adds a `Fee` row (transaction fees) and a `MerchantPayout` row per
 * currency, and the report is `settlement_detail_report_batch_<n>.csv` (a REPORT_AVAILABLE
 * notification points at it).
 *
 * Fees are deterministic (the simulator's price list, Interchange++ style): on Settled rows
 * interchange 0.8 %, scheme fees 0.2 %, markup 0.5 % of the gross (each rounded to minor units),
 * net = gross − fees; a Chargeback costs a 15.00 (major units) commission; Refunded,
 * ChargebackReversed, SecondChargeback and RefundedReversed rows carry no fee; the batch's `Fee`
 * row charges 0.10 per Settled or Refunded row. Net currency = gross currency (exchange rate 1).
 * A capture that fails after its batch closed appears as `ManualCorrected` in a later batch. When
 * a currency's batch total is negative, its MerchantPayout row shows the amount as Net Credit (a
 * collection from the merchant) instead of Net Debit.
 */
import { C, exponent, formatMinor, type Amount, type Payment, type SimContext } from './model.ts';

export type SettlementRecordType =
  | 'Settled'
  | 'Refunded'
  | 'Chargeback'
  | 'SecondChargeback'
  | 'ChargebackReversed'
  | 'RefundedReversed'
  | 'ManualCorrected'
  | 'Fee'
  | 'MerchantPayout';

export interface SettlementEntry {
  id: string;
  merchantAccount: string;
  batch?: number;
  type: SettlementRecordType;
  pspReference?: string;
  merchantReference?: string;
  paymentMethod?: string;
  paymentMethodVariant?: string;
  createdAt: number;
  modificationReference: string;
  modificationMerchantReference?: string;
  grossCurrency?: string;
  grossDebit?: number;
  grossCredit?: number;
  netCurrency: string;
  netDebit?: number;
  netCredit?: number;
  commission?: number;
  markup?: number;
  schemeFees?: number;
  interchange?: number;
}

export interface SettlementBatch {
  merchantAccount: string;
  number: number;
  closedAt: number;
  file: string;
}

export const SETTLEMENT_COLUMNS = [
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

/** The simulator's fees for one transaction row, in minor units. */
export function settlementAmounts(
  type: SettlementRecordType,
  value: number,
  currency: string,
): Pick<
  SettlementEntry,
  | 'grossDebit'
  | 'grossCredit'
  | 'netDebit'
  | 'netCredit'
  | 'commission'
  | 'markup'
  | 'schemeFees'
  | 'interchange'
> {
  switch (type) {
    case 'Settled': {
      const interchange = Math.round(value * 0.008);
      const schemeFees = Math.round(value * 0.002);
      const markup = Math.round(value * 0.005);
      return {
        grossCredit: value,
        netCredit: value - interchange - schemeFees - markup,
        interchange,
        schemeFees,
        markup,
      };
    }
    case 'Chargeback': {
      const commission = 15 * 10 ** exponent(currency);
      return { grossDebit: value, netDebit: value + commission, commission };
    }
    case 'Refunded':
    case 'SecondChargeback':
    case 'ManualCorrected':
      return { grossDebit: value, netDebit: value };
    default:
      return { grossCredit: value, netCredit: value };
  }
}

const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

export class Settlement {
  private readonly ctx: SimContext;
  private readonly companyAccount: string;

  constructor(ctx: SimContext, companyAccount: string) {
    this.ctx = ctx;
    this.companyAccount = companyAccount;
  }

  /** A transaction row for a payment (reference: the capture, refund or dispute). */
  record(
    type: SettlementRecordType,
    payment: Payment,
    ref: { pspReference: string; amount?: Amount; reference?: string },
  ): SettlementEntry {
    const amount = ref.amount ?? payment.amount;
    const entry: SettlementEntry = {
      id: `${type}:${ref.pspReference}`,
      merchantAccount: payment.merchantAccount,
      type,
      pspReference: payment.pspReference,
      merchantReference: payment.merchantReference,
      paymentMethod: payment.card.brand,
      paymentMethodVariant: payment.card.variant,
      createdAt: this.ctx.now(),
      modificationReference: ref.pspReference,
      ...(ref.reference ? { modificationMerchantReference: ref.reference } : {}),
      grossCurrency: amount.currency,
      netCurrency: amount.currency,
      ...settlementAmounts(type, amount.value, amount.currency),
    };
    // A second reversal of the same reference keeps its own row.
    if (this.ctx.store.has(C.entry, entry.id)) entry.id = `${entry.id}:${this.ctx.now()}`;
    this.ctx.store.put(C.entry, entry.id, entry);
    return entry;
  }

  /** Undoes a row (capture failed, refund failed): dropped if not batched yet, else reversed. */
  reverse(
    type: 'Settled' | 'Refunded',
    payment: Payment,
    ref: { pspReference: string; amount?: Amount },
  ): void {
    const id = `${type}:${ref.pspReference}`;
    const entry = this.ctx.store.get<SettlementEntry>(C.entry, id);
    if (entry && entry.batch === undefined) {
      this.ctx.store.delete(C.entry, id);
      return;
    }
    this.record(type === 'Refunded' ? 'RefundedReversed' : 'ManualCorrected', payment, ref);
  }

  /** Entries not in a batch yet. */
  open(merchantAccount?: string): SettlementEntry[] {
    return this.ctx.store
      .all<SettlementEntry>(C.entry)
      .filter((e) => e.batch === undefined && (!merchantAccount || e.merchantAccount === merchantAccount));
  }

  batches(merchantAccount?: string): SettlementBatch[] {
    return this.ctx.store
      .all<SettlementBatch>(C.batch)
      .filter((b) => !merchantAccount || b.merchantAccount === merchantAccount);
  }

  /** Closes a batch per merchant account with open entries; returns the batches closed. */
  closeBatch(): SettlementBatch[] {
    const { store } = this.ctx;
    const closed: SettlementBatch[] = [];
    const accounts = [...new Set(this.open().map((e) => e.merchantAccount))];
    for (const merchantAccount of accounts) {
      const entries = this.open(merchantAccount);
      const counterId = `batch:${merchantAccount}`;
      const number = (store.get<number>(C.counter, counterId) ?? 0) + 1;
      store.put(C.counter, counterId, number);
      const now = this.ctx.now();
      const totals = new Map<string, { net: number; rows: number }>();
      for (const e of entries) {
        store.put(C.entry, e.id, { ...e, batch: number });
        const t = totals.get(e.netCurrency) ?? { net: 0, rows: 0 };
        t.net += (e.netCredit ?? 0) - (e.netDebit ?? 0);
        if (e.type === 'Settled' || e.type === 'Refunded') t.rows++;
        totals.set(e.netCurrency, t);
      }
      const d = new Date(now);
      for (const [currency, t] of totals) {
        const fee = t.rows * 10 ** Math.max(0, exponent(currency) - 1);
        if (fee > 0) {
          this.putBatchRow(
            merchantAccount,
            number,
            now,
            'Fee',
            `Transaction Fees ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}`,
            currency,
            { netDebit: fee },
          );
          t.net -= fee;
        }
        if (t.net !== 0)
          this.putBatchRow(
            merchantAccount,
            number,
            now,
            'MerchantPayout',
            `Merchant payout batch ${number}, ${merchantAccount}`,
            currency,
            t.net > 0 ? { netDebit: t.net } : { netCredit: -t.net },
          );
      }
      const batch: SettlementBatch = { merchantAccount, number, closedAt: now, file: reportFileName(number) };
      store.put(C.batch, `${merchantAccount}:${number}`, batch);
      closed.push(batch);
      this.ctx.notify({
        eventCode: 'REPORT_AVAILABLE',
        success: true,
        pspReference: batch.file,
        merchantAccountCode: merchantAccount,
        merchantReference: '',
        amount: { value: 0, currency: 'EUR' },
        reason: `${this.ctx.baseUrl()}/reports/download/MerchantAccount/${encodeURIComponent(merchantAccount)}/${batch.file}`,
      });
    }
    return closed;
  }

  /** The report of batch `number` of a merchant account, or undefined. */
  csv(merchantAccount: string, number: number): string | undefined {
    if (!this.ctx.store.has(C.batch, `${merchantAccount}:${number}`)) return undefined;
    const rows = this.ctx.store
      .all<SettlementEntry>(C.entry)
      .filter((e) => e.merchantAccount === merchantAccount && e.batch === number);
    const lines = [SETTLEMENT_COLUMNS.join(',')];
    for (const e of rows) lines.push(this.row(e).map(csvField).join(','));
    return lines.join('\n') + '\n';
  }

  private putBatchRow(
    merchantAccount: string,
    batch: number,
    now: number,
    type: 'Fee' | 'MerchantPayout',
    modificationReference: string,
    netCurrency: string,
    amounts: { netDebit?: number; netCredit?: number },
  ): void {
    const entry: SettlementEntry = {
      id: `${type}:${merchantAccount}:${batch}:${netCurrency}`,
      merchantAccount,
      batch,
      type,
      createdAt: now,
      modificationReference,
      netCurrency,
      ...amounts,
    };
    this.ctx.store.put(C.entry, entry.id, entry);
  }

  private row(e: SettlementEntry): string[] {
    const money = (v: number | undefined, currency: string | undefined) =>
      v === undefined || !currency ? '' : formatMinor(v, currency);
    const nc = e.netCurrency;
    return [
      this.companyAccount,
      e.merchantAccount,
      e.pspReference ?? '',
      e.merchantReference ?? '',
      e.paymentMethod ?? '',
      formatCreationDate(e.createdAt),
      'UTC',
      e.type,
      e.modificationReference,
      e.grossCurrency ?? '',
      money(e.grossDebit, e.grossCurrency),
      money(e.grossCredit, e.grossCurrency),
      e.grossCurrency ? '1' : '',
      nc,
      money(e.netDebit, nc),
      money(e.netCredit, nc),
      money(e.commission, nc),
      money(e.markup, nc),
      money(e.schemeFees, nc),
      money(e.interchange, nc),
      e.paymentMethodVariant ?? '',
      e.modificationMerchantReference ?? '',
      String(e.batch ?? ''),
      '',
      '',
      '',
      '',
      '',
      '',
      '',
    ];
  }
}

export function reportFileName(batch: number): string {
  return `settlement_detail_report_batch_${batch}.csv`;
}

/** `YYYY-MM-DD HH:MM:SS` (UTC), the report's Creation Date format. */
export function formatCreationDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

function csvField(v: string): string {
  return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}
