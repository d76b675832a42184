/**
 * The matcher: settlement items against internal records, one item at a time (streaming; memory is
 * the internal records plus the exceptions). Pure: the Lambda job (match.ts) and the benchmark
 * feed it from DynamoDB and from files respectively.
 *
 * Classification (docs/finance.md, "Exceptions"):
 * - `missing_internally`    a payment line whose reference paystep does not know
 * - `missing_at_processor`  a capture no payout has paid after the processor's settlement delay
 * - `currency_mismatch`     a line in another currency than the payment
 * - `amount_mismatch`       a charge whose gross is not the captured amount; refunds settled beyond
 *                           what paystep refunded
 * - `fee_mismatch`          a fee off the processor's fee schedule (beyond its rounding tolerance)
 * - `duplicate`             a line settled twice (same line in two payouts, or twice in one), or a
 *                           second charge for the same payment
 * - `refund_above_charge`   refunds settled for a payment above what was captured
 * - `payout_total_mismatch` a payout whose amount is not the sum of its lines' net
 *
 * "Earlier" between payouts is their order (payout date, then id), never the order the runs
 * happened in: re-running an old payout after newer ones classifies it the same way.
 */
import { processorTerms, type ProcessorTerms } from './fees.ts';
import type {
  ExceptionType,
  InternalRecord,
  ItemResult,
  PayoutCheck,
  PayoutHeader,
  PriorSettlement,
  ReconException,
  SettlementItem,
  SettlementType,
} from './types.ts';

/** Lines that belong to a payment and must match one. */
const PAYMENT_TYPES: ReadonlySet<SettlementType> = new Set([
  'charge',
  'refund',
  'refund_failure',
  'dispute',
  'dispute_reversal',
]);

export const payoutOrder = (date: string, id: string) => `${date}|${id}`;

const EMPTY_PRIOR: readonly PriorSettlement[] = Object.freeze([]);
/** Shared by the lines without exceptions (most of them): one array fewer per line. */
const NO_EXCEPTIONS: ReconException[] = Object.freeze([]) as unknown as ReconException[];
function flag(out: ItemResult, e: ReconException): void {
  if (out.exceptions === NO_EXCEPTIONS) out.exceptions = [e];
  else out.exceptions.push(e);
}
const SEEN = 1;
const CHARGED = 2;

/**
 * The internal records of a run, by reference, stored column-wise (strings in arrays, amounts and
 * run state in typed arrays): a million records cost a Map entry and a few array slots each, not
 * a million objects for the garbage collector to trace.
 */
export class InternalIndex {
  private readonly byRef = new Map<string, number>();
  private cap = 0;
  size = 0;
  readonly reference: string[] = [];
  readonly payment: string[] = [];
  readonly merchant: string[] = [];
  readonly currency: string[] = [];
  readonly status: string[] = [];
  readonly capturedOn: (string | null)[] = [];
  readonly settledPayout: (string | null)[] = [];
  readonly prior = new Map<number, readonly PriorSettlement[]>();
  captured = new Float64Array(0);
  refunded = new Float64Array(0);
  /** Run state: SEEN (a charge line is for it), CHARGED (a charge line was taken as the original). */
  flags = new Uint8Array(0);
  /** Run state: refunds settled in this run so far (positive). */
  runRefunds = new Float64Array(0);
  /** Run state: line ids seen (a string for the usual single line, a list beyond). */
  readonly lines: (string | string[] | undefined)[] = [];

  private grow(): void {
    const cap = Math.max(1024, this.cap * 2);
    const f64 = (a: Float64Array) => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    };
    this.captured = f64(this.captured);
    this.refunded = f64(this.refunded);
    this.runRefunds = f64(this.runRefunds);
    const flags = new Uint8Array(cap);
    flags.set(this.flags);
    this.flags = flags;
    this.cap = cap;
  }

  add(r: InternalRecord): number {
    let i = this.byRef.get(r.reference);
    if (i === undefined) {
      if (this.size === this.cap) this.grow();
      i = this.size++;
      this.byRef.set(r.reference, i);
      this.lines.push(undefined);
    }
    this.reference[i] = r.reference;
    this.payment[i] = r.payment_id;
    this.merchant[i] = r.merchant_id;
    this.currency[i] = r.currency;
    this.status[i] = r.status;
    this.capturedOn[i] = r.captured_on;
    this.settledPayout[i] = r.settled_payout;
    this.captured[i] = r.amount_captured;
    this.refunded[i] = r.amount_refunded;
    if (r.prior.length) this.prior.set(i, r.prior);
    else this.prior.delete(i);
    return i;
  }

  indexOf(reference: string): number {
    return this.byRef.get(reference) ?? -1;
  }

  priorOf(i: number): readonly PriorSettlement[] {
    return this.prior.get(i) ?? EMPTY_PRIOR;
  }

  record(i: number): InternalRecord {
    return {
      reference: this.reference[i]!,
      payment_id: this.payment[i]!,
      merchant_id: this.merchant[i]!,
      processor: '',
      currency: this.currency[i]!,
      amount_captured: this.captured[i]!,
      amount_refunded: this.refunded[i]!,
      status: this.status[i]!,
      captured_on: this.capturedOn[i]!,
      settled_payout: this.settledPayout[i]!,
      prior: [...this.priorOf(i)],
    };
  }
}

/** What the checks of one line need of its record. */
interface RecView {
  i: number;
  reference: string;
  payment_id: string;
  merchant_id: string;
  currency: string;
  amount_captured: number;
  amount_refunded: number;
  prior: readonly PriorSettlement[];
}

interface PayoutAcc {
  header?: PayoutHeader;
  payout_date: string;
  currency: string;
  items: number;
  gross: number;
  fee: number;
  net: number;
}

export interface ReconcilerOptions {
  processor: string;
  terms?: ProcessorTerms;
}

export class Reconciler {
  readonly processor: string;
  private readonly terms: ProcessorTerms;
  private readonly internal = new InternalIndex();
  private readonly view: RecView = {
    i: 0,
    reference: '',
    payment_id: '',
    merchant_id: '',
    currency: '',
    amount_captured: 0,
    amount_refunded: 0,
    prior: EMPTY_PRIOR,
  };
  private readonly payouts = new Map<string, PayoutAcc>();
  private readonly unknownItems = new Set<string>();
  readonly counts = { items: 0, matched: 0, exception: 0, not_applicable: 0 };

  constructor(opts: ReconcilerOptions) {
    this.processor = opts.processor;
    this.terms = opts.terms ?? processorTerms(opts.processor);
  }

  addInternal(rec: InternalRecord): void {
    this.internal.add(rec);
  }

  get internalCount(): number {
    return this.internal.size;
  }

  addPayout(h: PayoutHeader): void {
    const acc = this.payoutAcc(h.payout_id, h.payout_date, h.currency);
    acc.header = h;
  }

  private payoutAcc(id: string, date: string, currency: string): PayoutAcc {
    let acc = this.payouts.get(id);
    if (!acc) {
      acc = { payout_date: date, currency, items: 0, gross: 0, fee: 0, net: 0 };
      this.payouts.set(id, acc);
    }
    return acc;
  }

  private exc(
    type: ExceptionType,
    subject: string,
    item: SettlementItem | null,
    rec: RecView | InternalRecord | undefined,
    expected: number | null,
    actual: number | null,
    reason: string,
  ): ReconException {
    return {
      id: `${type}:${this.processor}:${subject}`,
      type,
      processor: this.processor,
      merchant_id: rec?.merchant_id ?? item?.merchant_hint ?? null,
      payout_id: item?.payout_id ?? null,
      item_id: item?.item_id ?? null,
      payment_id: rec?.payment_id ?? null,
      reference: rec?.reference ?? item?.reference ?? null,
      currency: item?.currency ?? rec?.currency ?? null,
      expected,
      actual,
      reason,
    };
  }

  /** Classifies one settlement line. */
  item(it: SettlementItem): ItemResult {
    this.counts.items++;
    if (it.type !== 'payout') {
      const acc = this.payoutAcc(it.payout_id, it.payout_date, it.currency);
      acc.items++;
      acc.gross += it.gross;
      acc.fee += it.fee;
      acc.net += it.net;
    }
    const result = this.classify(it);
    this.counts[result.status]++;
    return result;
  }

  private classify(it: SettlementItem): ItemResult {
    const out: ItemResult = {
      item: it,
      merchant_id: null,
      payment_id: null,
      status: 'not_applicable',
      exceptions: NO_EXCEPTIONS,
      settle: false,
      expected_amount: null,
      expected_fee: null,
    };
    if (!PAYMENT_TYPES.has(it.type)) {
      out.merchant_id = it.merchant_hint;
      return out;
    }
    const idx = this.internal;
    const i = it.reference ? idx.indexOf(it.reference) : -1;
    if (i < 0) {
      out.merchant_id = it.merchant_hint;
      out.status = 'exception';
      if (this.unknownItems.has(it.item_id)) {
        flag(
          out,
          this.exc(
            'duplicate',
            it.item_id,
            it,
            undefined,
            null,
            it.gross,
            `line ${it.item_id} is listed twice`,
          ),
        );
        return out;
      }
      this.unknownItems.add(it.item_id);
      flag(
        out,
        this.exc(
          'missing_internally',
          it.item_id,
          it,
          undefined,
          null,
          it.gross,
          it.reference
            ? `${it.type} ${it.source_id ?? it.item_id} for ${it.reference} is not a payment paystep knows`
            : `${it.type} ${it.source_id ?? it.item_id} names no payment reference`,
        ),
      );
      return out;
    }
    // One view, refilled per line (classification is synchronous; exceptions copy what they need).
    const r = this.view;
    r.i = i;
    r.reference = idx.reference[i]!;
    r.payment_id = idx.payment[i]!;
    r.merchant_id = idx.merchant[i]!;
    r.currency = idx.currency[i]!;
    r.amount_captured = idx.captured[i]!;
    r.amount_refunded = idx.refunded[i]!;
    r.prior = idx.priorOf(i);
    if (it.type === 'charge') idx.flags[i]! |= SEEN;
    out.merchant_id = r.merchant_id;
    out.payment_id = r.payment_id;
    // Only needed against earlier payouts' lines (most references have none).
    const here = r.prior.length ? payoutOrder(it.payout_date, it.payout_id) : '';

    // The same line twice: in this run, or in an earlier payout.
    const seen = idx.lines[i];
    if (
      seen !== undefined &&
      (seen === it.item_id || (typeof seen !== 'string' && seen.includes(it.item_id)))
    ) {
      out.status = 'exception';
      flag(
        out,
        this.exc(
          'duplicate',
          it.item_id,
          it,
          r,
          null,
          it.gross,
          `line ${it.item_id} is listed twice in payout ${it.payout_id}`,
        ),
      );
      return out;
    }
    idx.lines[i] =
      seen === undefined ? it.item_id : typeof seen === 'string' ? [seen, it.item_id] : [...seen, it.item_id];
    for (const p of r.prior) {
      if (
        p.item_id === it.item_id &&
        p.payout_id !== it.payout_id &&
        payoutOrder(p.payout_date, p.payout_id) < here
      ) {
        out.status = 'exception';
        flag(
          out,
          this.exc(
            'duplicate',
            it.item_id,
            it,
            r,
            null,
            it.gross,
            `line ${it.item_id} was already settled in payout ${p.payout_id}`,
          ),
        );
        return out;
      }
    }

    if (it.currency !== r.currency) {
      out.status = 'exception';
      flag(
        out,
        this.exc(
          'currency_mismatch',
          it.item_id,
          it,
          r,
          null,
          null,
          `${it.type} settled in ${it.currency.toUpperCase()} but payment ${r.payment_id} is in ${r.currency.toUpperCase()}`,
        ),
      );
      return out;
    }

    switch (it.type) {
      case 'charge':
        this.charge(it, r, here, out);
        break;
      case 'refund':
      case 'refund_failure':
        this.refund(it, r, here, out);
        break;
      default:
        out.status = 'matched';
    }
    if (out.exceptions.length) out.status = 'exception';
    return out;
  }

  private charge(it: SettlementItem, r: RecView, here: string, out: ItemResult): void {
    out.expected_amount = r.amount_captured;
    const earlier = r.prior.find(
      (p) =>
        p.type === 'charge' && p.item_id !== it.item_id && payoutOrder(p.payout_date, p.payout_id) < here,
    );
    if (earlier || this.internal.flags[r.i]! & CHARGED) {
      const where = earlier ? `payout ${earlier.payout_id}` : 'this run';
      flag(
        out,
        this.exc(
          'duplicate',
          it.item_id,
          it,
          r,
          null,
          it.gross,
          `payment ${r.payment_id} was already charged in ${where}; ${it.item_id} charges it again`,
        ),
      );
      return;
    }
    this.internal.flags[r.i]! |= CHARGED;
    const fee = this.terms.expectedFee('charge', it.gross, it.currency);
    out.expected_fee = fee;
    if (it.gross !== r.amount_captured) {
      flag(
        out,
        this.exc(
          'amount_mismatch',
          it.item_id,
          it,
          r,
          r.amount_captured,
          it.gross,
          `charge settled for ${it.gross} but paystep captured ${r.amount_captured} (difference ${it.gross - r.amount_captured})`,
        ),
      );
      return;
    }
    out.settle = true;
    out.status = 'matched';
    if (fee !== null && Math.abs(it.fee - fee) > this.terms.feeTolerance) {
      flag(
        out,
        this.exc(
          'fee_mismatch',
          it.item_id,
          it,
          r,
          fee,
          it.fee,
          `fee ${it.fee} on a ${it.gross} charge; the fee schedule says ${fee} (difference ${it.fee - fee})`,
        ),
      );
    }
  }

  private refund(it: SettlementItem, r: RecView, here: string, out: ItemResult): void {
    // Refunds are negative lines, refund failures give the money back.
    const delta = -it.gross;
    const run = this.internal.runRefunds;
    let before = run[r.i]!;
    for (const p of r.prior)
      if (
        (p.type === 'refund' || p.type === 'refund_failure') &&
        payoutOrder(p.payout_date, p.payout_id) < here
      )
        before += -p.gross;
    run[r.i] = run[r.i]! + delta;
    const total = before + delta;
    out.expected_amount = r.amount_refunded;
    if (it.type === 'refund' && total > r.amount_captured) {
      flag(
        out,
        this.exc(
          'refund_above_charge',
          it.item_id,
          it,
          r,
          r.amount_captured,
          total,
          `refunds settled for payment ${r.payment_id} reach ${total}, above the ${r.amount_captured} captured`,
        ),
      );
      return;
    }
    if (it.type === 'refund' && total > r.amount_refunded) {
      flag(
        out,
        this.exc(
          'amount_mismatch',
          it.item_id,
          it,
          r,
          r.amount_refunded,
          total,
          `refunds settled for payment ${r.payment_id} reach ${total} but paystep refunded ${r.amount_refunded}`,
        ),
      );
      return;
    }
    out.status = 'matched';
  }

  /** Payout totals against their lines (after every line was given). */
  payoutChecks(): { payouts: PayoutCheck[]; exceptions: ReconException[] } {
    const headers = new Map<string, PayoutHeader>();
    const sums: Record<string, PayoutSums> = {};
    for (const [id, a] of this.payouts) {
      headers.set(
        id,
        a.header ?? {
          processor: this.processor,
          payout_id: id,
          payout_date: a.payout_date,
          currency: a.currency,
          amount: null,
        },
      );
      sums[id] = { items: a.items, gross: a.gross, fee: a.fee, net: a.net };
    }
    return checkPayoutTotals(this.processor, [...headers.values()], sums);
  }

  /**
   * Captures no payout paid: captured on or before `asOf − delay` days, not settled before and
   * not matched in this run. `candidates` defaults to every internal record given.
   */
  missingAtProcessor(
    asOf: string,
    delayDays?: number,
    candidates?: Iterable<InternalRecord>,
  ): ReconException[] {
    const cutoff = addDays(asOf, -(delayDays ?? this.terms.settlementDelayDays));
    const out: ReconException[] = [];
    const idx = this.internal;
    const list: Iterable<InternalRecord> =
      candidates ??
      (function* () {
        for (let i = 0; i < idx.size; i++) {
          if (idx.flags[i]! & SEEN || idx.settledPayout[i] || !idx.capturedOn[i] || idx.captured[i]! <= 0)
            continue;
          if (idx.capturedOn[i]! > cutoff) continue;
          yield idx.record(i);
        }
      })();
    for (const r of list) {
      const i = candidates ? idx.indexOf(r.reference) : -1;
      if (i >= 0 && idx.flags[i]! & SEEN) continue;
      if (r.settled_payout || !r.captured_on || r.amount_captured <= 0) continue;
      if (r.captured_on > cutoff) continue;
      out.push(
        this.exc(
          'missing_at_processor',
          r.reference,
          null,
          r,
          r.amount_captured,
          null,
          `captured ${r.amount_captured} on ${r.captured_on}; no payout paid it by ${asOf} (settlement delay ${delayDays ?? this.terms.settlementDelayDays} days)`,
        ),
      );
    }
    return out;
  }
}

export interface PayoutSums {
  items: number;
  gross: number;
  fee: number;
  net: number;
}

/** Each payout's amount against the net of its lines; a difference is a `payout_total_mismatch`. */
export function checkPayoutTotals(
  processor: string,
  headers: PayoutHeader[],
  sums: Record<string, PayoutSums>,
): { payouts: PayoutCheck[]; exceptions: ReconException[] } {
  const payouts: PayoutCheck[] = [];
  const exceptions: ReconException[] = [];
  for (const h of [...headers].sort((a, b) => (a.payout_id < b.payout_id ? -1 : 1))) {
    const a = sums[h.payout_id] ?? { items: 0, gross: 0, fee: 0, net: 0 };
    const amount = h.amount;
    payouts.push({
      processor,
      payout_id: h.payout_id,
      payout_date: h.payout_date,
      currency: h.currency,
      amount,
      items: a.items,
      gross: a.gross,
      fee: a.fee,
      net: a.net,
      difference: amount === null ? null : amount - a.net,
    });
    if (amount !== null && amount !== a.net)
      exceptions.push({
        id: `payout_total_mismatch:${processor}:${h.payout_id}`,
        type: 'payout_total_mismatch',
        processor,
        merchant_id: null,
        payout_id: h.payout_id,
        item_id: null,
        payment_id: null,
        reference: null,
        currency: h.currency,
        expected: a.net,
        actual: amount,
        reason: `payout ${h.payout_id} paid ${amount} but its ${a.items} lines net to ${a.net} (difference ${amount - a.net})`,
      });
  }
  return { payouts, exceptions };
}

/** yyyy-mm-dd plus n days (UTC). */
export function addDays(day: string, n: number): string {
  const d = new Date(`${day}T00:00:00.000Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** Whole days from `from` to `to` (yyyy-mm-dd). */
export function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);
}
