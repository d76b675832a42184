/**
 * The double-entry ledger, pure (docs/finance.md): accounts, journal entries, how money movements
 * become entries, the balance projection and the invariant check. No I/O.
 *
 * Every entry is immutable and balanced (sum of debits = sum of credits) and its id is derived
 * from its source, so recording the same movement twice is a no-op at the store (conditional put):
 *
 *   cap:<payment>:<captured>          amount_captured of a payment reached <captured>
 *   ref:<payment>:<refunded>          amount_refunded of a payment reached <refunded>
 *   dsp:<dispute>:<withdrawn>         funds_withdrawn_amount of a dispute reached <withdrawn>
 *   rin:<dispute>:<reinstated>        funds_reinstated_amount of a dispute reached <reinstated>
 *   <kind>-rev:<source>:<from>        a cumulative amount went back down from <from> (reversal)
 *   fee:<processor>:<item>            the processor's fee on a settlement item (reconciliation)
 *   pout:<processor>:<payout>:<merchant>:<currency>   a merchant's share of a payout (reconciliation)
 *
 * Movements are derived from *cumulative* amounts on the source items (the stream's old and new
 * images), never from events: the entry for "captured went from 600 to 1000" is keyed by 1000 and
 * worth 400. Replayed records produce the same ids; reordered records produce the same set of
 * entries (the deltas of one cumulative amount telescope to its final value whatever the order).
 */
import { PaystepError } from '../shared/errors.ts';

export type AccountKind =
  'processor_receivable' | 'sales' | 'refunds' | 'disputes' | 'processor_fees' | 'bank';

/** Account names. Balances are kept per merchant, processor and currency. */
export const ACCOUNTS = {
  /** Asset: what the processor owes for captures it has not paid out yet. */
  receivable: 'processor_receivable',
  /** Revenue: gross captured. */
  sales: 'sales',
  /** Contra-revenue: refunded to customers. */
  refunds: 'refunds',
  /** Contra-revenue: withdrawn by disputes (net of reinstatements). */
  disputes: 'disputes',
  /** Expense: the processor's fees. */
  fees: 'processor_fees',
  /** Asset: paid out to the bank. */
  bank: 'bank',
} as const satisfies Record<string, AccountKind>;

export const ENTRY_TYPES = [
  'capture',
  'refund',
  'dispute_withdrawal',
  'dispute_reinstatement',
  'fee',
  'payout',
  'capture_reversal',
  'refund_reversal',
  'dispute_withdrawal_reversal',
  'dispute_reinstatement_reversal',
] as const;
export type EntryType = (typeof ENTRY_TYPES)[number];

export interface Posting {
  account: AccountKind;
  debit: number;
  credit: number;
}

export interface LedgerEntry {
  id: string;
  type: EntryType;
  merchant_id: string;
  processor: string;
  currency: string;
  /** Positive, minor units: what moved. */
  amount: number;
  postings: Posting[];
  payment_id: string | null;
  /** The item the movement comes from: payment, dispute, settlement item or payout. */
  source_id: string;
  processor_reference: string | null;
  /** When the movement happened, from the source (never the time it was booked). */
  occurred_at: string;
}

/** Debit `debit`, credit `credit`; a negative amount swaps them. */
export function postings(amount: number, debit: AccountKind, credit: AccountKind): Posting[] {
  const a = Math.abs(amount);
  const [d, c] = amount >= 0 ? [debit, credit] : [credit, debit];
  return [
    { account: d, debit: a, credit: 0 },
    { account: c, debit: 0, credit: a },
  ];
}

/** Whether the entry is well formed: integer amounts, at least one debit and one credit, balanced. */
export function entryProblems(e: LedgerEntry): string[] {
  const out: string[] = [];
  let debits = 0;
  let credits = 0;
  for (const p of e.postings) {
    if (!Number.isSafeInteger(p.debit) || !Number.isSafeInteger(p.credit) || p.debit < 0 || p.credit < 0)
      out.push(`posting on ${p.account} is not a non-negative integer`);
    debits += p.debit;
    credits += p.credit;
  }
  if (debits !== credits) out.push(`debits ${debits} ≠ credits ${credits}`);
  if (debits === 0) out.push('moves nothing');
  if (!Number.isSafeInteger(e.amount) || e.amount <= 0) out.push('amount is not a positive integer');
  else if (debits !== e.amount) out.push(`amount ${e.amount} ≠ debits ${debits}`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Movements from the stream

/** A change of one item, as the stream gives it (unmarshalled images). */
export interface ItemChange {
  eventName: 'INSERT' | 'MODIFY' | 'REMOVE';
  oldImage?: Record<string, unknown>;
  newImage?: Record<string, unknown>;
  /** Epoch seconds the stream says the change happened (fallback for `occurred_at`). */
  approximateCreation?: number;
}

/** What a dispute item does not carry itself, from its payment. */
export interface DisputeContext {
  merchant_id?: string;
  processor?: string;
  currency?: string;
  processor_reference?: string | null;
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);

function occurredAt(img: Record<string, unknown> | undefined, fallback?: number): string {
  const s = num(img?.updated) || num(img?.created) || fallback || 0;
  return new Date(s * 1000).toISOString();
}

interface Cumulative {
  prefix: string;
  type: EntryType;
  reversal: EntryType;
  field: string;
  debit: AccountKind;
  credit: AccountKind;
}

const PAYMENT_AMOUNTS: Cumulative[] = [
  {
    prefix: 'cap',
    type: 'capture',
    reversal: 'capture_reversal',
    field: 'amount_captured',
    debit: ACCOUNTS.receivable,
    credit: ACCOUNTS.sales,
  },
  {
    prefix: 'ref',
    type: 'refund',
    reversal: 'refund_reversal',
    field: 'amount_refunded',
    debit: ACCOUNTS.refunds,
    credit: ACCOUNTS.receivable,
  },
];

const DISPUTE_AMOUNTS: Cumulative[] = [
  {
    prefix: 'dsp',
    type: 'dispute_withdrawal',
    reversal: 'dispute_withdrawal_reversal',
    field: 'funds_withdrawn_amount',
    debit: ACCOUNTS.disputes,
    credit: ACCOUNTS.receivable,
  },
  {
    prefix: 'rin',
    type: 'dispute_reinstatement',
    reversal: 'dispute_reinstatement_reversal',
    field: 'funds_reinstated_amount',
    debit: ACCOUNTS.receivable,
    credit: ACCOUNTS.disputes,
  },
];

/** Whether a change can move money (cheap test before any lookup). */
export function touchesMoney(change: ItemChange): boolean {
  if (change.eventName === 'REMOVE') return false;
  const kind = change.newImage?.kind;
  const fields = kind === 'payment' ? PAYMENT_AMOUNTS : kind === 'dispute' ? DISPUTE_AMOUNTS : [];
  return fields.some((f) => num(change.oldImage?.[f.field]) !== num(change.newImage?.[f.field]));
}

/** The dispute's payment id (the disputes area names it `payment_id`; `payment` is accepted too). */
export const disputePaymentId = (img: Record<string, unknown> | undefined): string | undefined =>
  str(img?.payment_id) ?? str(img?.payment);

/**
 * The journal entries a change of a payment or dispute item implies. A deleted item moves no
 * money (REMOVE is ignored). A dispute needs its payment's merchant, processor and currency when
 * it does not carry them (`ctx`).
 */
export function entriesFromChange(change: ItemChange, ctx: DisputeContext = {}): LedgerEntry[] {
  if (change.eventName === 'REMOVE' || !change.newImage) return [];
  const img = change.newImage;
  const old = change.oldImage;
  const kind = img.kind;
  if (kind !== 'payment' && kind !== 'dispute') return [];
  const fields = kind === 'payment' ? PAYMENT_AMOUNTS : DISPUTE_AMOUNTS;
  const sourceId = str(img.id);
  if (!sourceId) return [];
  const paymentId = kind === 'payment' ? sourceId : (disputePaymentId(img) ?? null);
  const merchant = str(img.merchant_id) ?? ctx.merchant_id;
  const processor = str(img.processor) ?? ctx.processor;
  const currency = str(img.currency) ?? ctx.currency;
  const out: LedgerEntry[] = [];
  for (const f of fields) {
    const from = num(old?.[f.field]);
    const to = num(img[f.field]);
    if (to === from) continue;
    if (!merchant || !processor || !currency)
      throw new LedgerInputError(
        `${kind} ${sourceId}: ${f.field} changed but merchant, processor or currency is unknown`,
      );
    const delta = to - from;
    out.push({
      id: delta > 0 ? `${f.prefix}:${sourceId}:${to}` : `${f.prefix}-rev:${sourceId}:${from}`,
      type: delta > 0 ? f.type : f.reversal,
      merchant_id: merchant,
      processor,
      currency,
      amount: Math.abs(delta),
      postings: postings(delta, f.debit, f.credit),
      payment_id: paymentId,
      source_id: sourceId,
      // A dispute's own processor_reference is the dispute id: the payment's is its payment_intent.
      processor_reference:
        (kind === 'payment'
          ? str(img.processor_reference)
          : (str(img.payment_intent) ?? ctx.processor_reference)) ?? null,
      occurred_at: occurredAt(img, change.approximateCreation),
    });
  }
  return out;
}

export class LedgerInputError extends PaystepError {
  override name = 'LedgerInputError';
}

/** The processor's fee on one settlement item (booked by reconciliation). */
export function feeEntry(x: {
  processor: string;
  itemId: string;
  merchantId: string;
  currency: string;
  fee: number;
  paymentId: string | null;
  reference: string | null;
  occurredAt: string;
}): LedgerEntry | undefined {
  if (!x.fee) return undefined;
  return {
    id: `fee:${x.processor}:${x.itemId}`,
    type: 'fee',
    merchant_id: x.merchantId,
    processor: x.processor,
    currency: x.currency,
    amount: Math.abs(x.fee),
    postings: postings(x.fee, ACCOUNTS.fees, ACCOUNTS.receivable),
    payment_id: x.paymentId,
    source_id: x.itemId,
    processor_reference: x.reference,
    occurred_at: x.occurredAt,
  };
}

/** A merchant's share of a payout (the net of its items in it), moved from receivable to bank. */
export function payoutEntry(x: {
  processor: string;
  payoutId: string;
  merchantId: string;
  currency: string;
  net: number;
  occurredAt: string;
}): LedgerEntry | undefined {
  if (!x.net) return undefined;
  return {
    id: `pout:${x.processor}:${x.payoutId}:${x.merchantId}:${x.currency}`,
    type: 'payout',
    merchant_id: x.merchantId,
    processor: x.processor,
    currency: x.currency,
    amount: Math.abs(x.net),
    postings: postings(x.net, ACCOUNTS.bank, ACCOUNTS.receivable),
    payment_id: null,
    source_id: x.payoutId,
    processor_reference: x.payoutId,
    occurred_at: x.occurredAt,
  };
}

// ---------------------------------------------------------------------------------------------
// Projection

/** `merchant|processor|currency` */
export const balanceKey = (merchant: string, processor: string, currency: string) =>
  `${merchant}|${processor}|${currency}`;

export interface Balances {
  merchant_id: string;
  processor: string;
  currency: string;
  /** Debit-positive balance per account (debits − credits). */
  accounts: Record<AccountKind, number>;
  /** Movements by entry type (amounts, reversals subtracted). */
  movements: {
    captured: number;
    refunded: number;
    disputed: number;
    fees: number;
    paid_out: number;
  };
  entries: number;
}

const emptyAccounts = (): Record<AccountKind, number> => ({
  processor_receivable: 0,
  sales: 0,
  refunds: 0,
  disputes: 0,
  processor_fees: 0,
  bank: 0,
});

/** Folds entries into balances per merchant, processor and currency. The only source of balances. */
export class BalanceProjection {
  readonly balances = new Map<string, Balances>();

  add(e: LedgerEntry): void {
    const k = balanceKey(e.merchant_id, e.processor, e.currency);
    let b = this.balances.get(k);
    if (!b) {
      b = {
        merchant_id: e.merchant_id,
        processor: e.processor,
        currency: e.currency,
        accounts: emptyAccounts(),
        movements: { captured: 0, refunded: 0, disputed: 0, fees: 0, paid_out: 0 },
        entries: 0,
      };
      this.balances.set(k, b);
    }
    for (const p of e.postings) b.accounts[p.account] += p.debit - p.credit;
    const m = b.movements;
    const signed = (t: EntryType) => (e.type === t ? e.amount : e.type === `${t}_reversal` ? -e.amount : 0);
    m.captured += signed('capture');
    m.refunded += signed('refund');
    m.disputed += signed('dispute_withdrawal') - signed('dispute_reinstatement');
    if (e.type === 'fee')
      m.fees += e.postings.find((p) => p.account === 'processor_fees')!.debit ? e.amount : -e.amount;
    if (e.type === 'payout')
      m.paid_out += e.postings.find((p) => p.account === 'bank')!.debit ? e.amount : -e.amount;
    b.entries++;
  }

  /** Sorted by merchant, processor, currency. */
  list(): Balances[] {
    return [...this.balances.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
  }
}

export function project(entries: Iterable<LedgerEntry>): Balances[] {
  const p = new BalanceProjection();
  for (const e of entries) p.add(e);
  return p.list();
}

// ---------------------------------------------------------------------------------------------
// Invariants

/** Cumulative amounts of the source items, what the ledger must agree with. */
export interface SourceTotals {
  merchant_id: string;
  processor: string;
  currency: string;
  captured: number;
  refunded: number;
  /** Withdrawn − reinstated, over the merchant's disputes. */
  disputed: number;
}

export interface InvariantReport {
  ok: boolean;
  entries: number;
  /** Entries that do not balance (should never exist: the store refuses them). */
  unbalanced: { id: string; problems: string[] }[];
  /** Per merchant/processor/currency: receivable ≠ captured − refunded − disputed − fees − paid out. */
  receivable: {
    merchant_id: string;
    processor: string;
    currency: string;
    receivable: number;
    expected: number;
    captured: number;
    refunded: number;
    disputed: number;
    fees: number;
    paid_out: number;
    difference: number;
  }[];
  /** Per merchant/processor/currency: ledger movements ≠ the source items' cumulative amounts. */
  sources: {
    merchant_id: string;
    processor: string;
    currency: string;
    field: 'captured' | 'refunded' | 'disputed';
    ledger: number;
    source: number;
  }[];
  /** Sum over all accounts of all balances (must be 0). */
  trial_balance: number;
}

/**
 * Checks the ledger: every entry balances; per merchant/processor/currency the receivable equals
 * captured − refunded − disputed − fees − paid out, where captured, refunded and disputed are
 * taken from the source items (payments and disputes) and fees and payouts from settlement; and
 * the ledger's captured/refunded/disputed movements equal the source items' amounts.
 */
export function checkInvariants(entries: Iterable<LedgerEntry>, sources: SourceTotals[]): InvariantReport {
  const projection = new BalanceProjection();
  const unbalanced: InvariantReport['unbalanced'] = [];
  let count = 0;
  for (const e of entries) {
    count++;
    const problems = entryProblems(e);
    if (problems.length) unbalanced.push({ id: e.id, problems });
    projection.add(e);
  }
  const src = new Map(sources.map((s) => [balanceKey(s.merchant_id, s.processor, s.currency), s]));
  const keys = [...new Set([...projection.balances.keys(), ...src.keys()])].sort();
  const receivable: InvariantReport['receivable'] = [];
  const srcProblems: InvariantReport['sources'] = [];
  let trial = 0;
  for (const k of keys) {
    const b = projection.balances.get(k);
    const s = src.get(k);
    const [merchant_id, processor, currency] = k.split('|') as [string, string, string];
    const captured = s?.captured ?? 0;
    const refunded = s?.refunded ?? 0;
    const disputed = s?.disputed ?? 0;
    const fees = b?.movements.fees ?? 0;
    const paidOut = b?.movements.paid_out ?? 0;
    const expected = captured - refunded - disputed - fees - paidOut;
    const actual = b?.accounts.processor_receivable ?? 0;
    if (b) for (const v of Object.values(b.accounts)) trial += v;
    if (actual !== expected)
      receivable.push({
        merchant_id,
        processor,
        currency,
        receivable: actual,
        expected,
        captured,
        refunded,
        disputed,
        fees,
        paid_out: paidOut,
        difference: actual - expected,
      });
    const pairs: ['captured' | 'refunded' | 'disputed', number, number][] = [
      ['captured', b?.movements.captured ?? 0, captured],
      ['refunded', b?.movements.refunded ?? 0, refunded],
      ['disputed', b?.movements.disputed ?? 0, disputed],
    ];
    for (const [field, ledger, source] of pairs)
      if (ledger !== source) srcProblems.push({ merchant_id, processor, currency, field, ledger, source });
  }
  return {
    ok: unbalanced.length === 0 && receivable.length === 0 && srcProblems.length === 0 && trial === 0,
    entries: count,
    unbalanced,
    receivable,
    sources: srcProblems,
    trial_balance: trial,
  };
}

/** Accumulates source totals from payment and dispute items (as stored). */
export class SourceTotalsBuilder {
  private readonly totals = new Map<string, SourceTotals>();
  private readonly paymentInfo = new Map<string, DisputeContext>();
  private readonly pendingDisputes: Record<string, unknown>[] = [];

  private bucket(merchant: string, processor: string, currency: string): SourceTotals {
    const k = balanceKey(merchant, processor, currency);
    let t = this.totals.get(k);
    if (!t) {
      t = { merchant_id: merchant, processor, currency, captured: 0, refunded: 0, disputed: 0 };
      this.totals.set(k, t);
    }
    return t;
  }

  add(item: Record<string, unknown>): void {
    if (item.kind === 'payment') {
      const processor = str(item.processor);
      const id = str(item.id);
      if (id && processor)
        this.paymentInfo.set(id, {
          merchant_id: str(item.merchant_id),
          processor,
          currency: str(item.currency),
        });
      if (!processor || (!num(item.amount_captured) && !num(item.amount_refunded))) return;
      const t = this.bucket(String(item.merchant_id), processor, String(item.currency));
      t.captured += num(item.amount_captured);
      t.refunded += num(item.amount_refunded);
    } else if (item.kind === 'dispute') {
      if (num(item.funds_withdrawn_amount) || num(item.funds_reinstated_amount))
        this.pendingDisputes.push(item);
    }
  }

  /** Totals; disputes are attributed through their payment when they do not say it themselves. */
  build(): SourceTotals[] {
    for (const d of this.pendingDisputes) {
      const ctx = this.paymentInfo.get(disputePaymentId(d) ?? '') ?? {};
      const merchant = str(d.merchant_id) ?? ctx.merchant_id;
      const processor = str(d.processor) ?? ctx.processor;
      const currency = str(d.currency) ?? ctx.currency;
      if (!merchant || !processor || !currency) continue;
      this.bucket(merchant, processor, currency).disputed +=
        num(d.funds_withdrawn_amount) - num(d.funds_reinstated_amount);
    }
    this.pendingDisputes.length = 0;
    return [...this.totals.values()];
  }
}
