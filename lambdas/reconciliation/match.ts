/**
 * Reconciliation workflow, "Match the chunk with payments": one chunk of settlement lines against
 * paystep's records (the processor-reference index and the payments), then, idempotently:
 * - the settlement history of each reference (what later runs see as earlier payouts),
 * - matched charges: the payment moves to `settled` with the payout id and date,
 * - the processor's fee on every attributable line is booked in the ledger,
 * - exceptions are recorded (open, with their first sighting); a capture finally paid resolves
 *   its `missing_at_processor` exception.
 * Writes the chunk's results to `work/<run>/result-NNNN.jsonl` (in source order) and its totals to
 * `work/<run>/summary-NNNN.json`; returns only small counts (the workflow's state stays small).
 */
import { feeEntry } from '../ledger/domain.ts';
import { recordEntry } from '../store/ledger.ts';
import { recordSettlement } from '../store/payments.ts';
import {
  getPaymentAmounts,
  getReferences,
  openException,
  recordSettlementLine,
  resolveException,
} from '../store/reconciliation.ts';
import { objectLines, putText, TempFile, putFile } from '../reports/storage.ts';
import { payoutOrder, Reconciler } from './engine.ts';
import type { IndexedItem } from './prepare.ts';
import type { InternalRecord, ItemResult } from './types.ts';

export interface MatchInput {
  run_id: string;
  processor: string;
  as_of: string;
  chunk: string;
}

export interface ChunkTotals {
  /** Per payout: lines, gross, fee, net. */
  payouts: Record<string, { items: number; gross: number; fee: number; net: number }>;
  /** Net paid out per payout, merchant and currency (lines attributable to a payment). */
  shares: { payout_id: string; payout_date: string; merchant_id: string; currency: string; net: number }[];
}

export interface MatchOutput {
  chunk: string;
  results: string;
  summary: string;
  items: number;
  matched: number;
  exceptions: number;
}

/** A result line of `result-NNNN.jsonl`. */
export interface ResultLine extends Omit<ItemResult, 'item'> {
  item: IndexedItem;
}

const CONCURRENCY = 16;

async function inParallel<T>(xs: T[], fn: (x: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(CONCURRENCY, xs.length) }, async () => {
      while (i < xs.length) await fn(xs[i++]!);
    }),
  );
}

export async function loadInternal(processor: string, refs: string[]): Promise<Map<string, InternalRecord>> {
  const index = await getReferences(processor, refs);
  const payments = await getPaymentAmounts([...index.values()].map((r) => r.payment_id));
  const out = new Map<string, InternalRecord>();
  for (const [ref, r] of index) {
    const p = payments.get(r.payment_id);
    if (!p) continue;
    out.set(ref, {
      reference: ref,
      payment_id: r.payment_id,
      merchant_id: p.merchant_id,
      processor,
      currency: p.currency,
      amount_captured: p.amount_captured,
      amount_refunded: p.amount_refunded,
      status: p.status,
      captured_on: r.captured_on,
      settled_payout: r.settled_payout,
      prior: r.prior,
    });
  }
  return out;
}

export async function match(input: MatchInput): Promise<MatchOutput> {
  const items: IndexedItem[] = [];
  for await (const lines of objectLines('settlements', input.chunk))
    for (const l of lines) items.push(JSON.parse(l) as IndexedItem);
  const refs = [...new Set(items.map((i) => i.reference).filter((r): r is string => Boolean(r)))];
  const internal = await loadInternal(input.processor, refs);

  // Lines of one reference in payout order (then source order): "earlier" is the payout order.
  const ordered = [...items].sort((a, b) => {
    const ra = a.reference ?? '';
    const rb = b.reference ?? '';
    if (ra !== rb) return ra < rb ? -1 : 1;
    const pa = payoutOrder(a.payout_date, a.payout_id);
    const pb = payoutOrder(b.payout_date, b.payout_id);
    if (pa !== pb) return pa < pb ? -1 : 1;
    return a.index - b.index;
  });
  const engine = new Reconciler({ processor: input.processor });
  for (const r of internal.values()) engine.addInternal(r);
  const results = ordered.map((it) => engine.item(it) as ResultLine);

  const totals: ChunkTotals = { payouts: {}, shares: [] };
  const shares = new Map<string, ChunkTotals['shares'][number]>();
  for (const r of results) {
    const it = r.item;
    if (it.type === 'payout') continue;
    const p = (totals.payouts[it.payout_id] ??= { items: 0, gross: 0, fee: 0, net: 0 });
    p.items++;
    p.gross += it.gross;
    p.fee += it.fee;
    p.net += it.net;
    if (r.payment_id && r.merchant_id) {
      const k = `${it.payout_id}|${r.merchant_id}|${it.currency}`;
      const s = shares.get(k) ?? {
        payout_id: it.payout_id,
        payout_date: it.payout_date,
        merchant_id: r.merchant_id,
        currency: it.currency,
        net: 0,
      };
      s.net += it.net;
      shares.set(k, s);
    }
  }
  totals.shares = [...shares.values()];

  // Effects, each idempotent.
  await inParallel(results, async (r) => {
    const it = r.item;
    const rec = it.reference ? internal.get(it.reference) : undefined;
    if (rec) {
      await recordSettlementLine(
        input.processor,
        rec.reference,
        {
          item_id: it.item_id,
          payout_id: it.payout_id,
          payout_date: it.payout_date,
          type: it.type,
          gross: it.gross,
        },
        { seen: it.type === 'charge', settled: r.settle },
      );
      const fee = feeEntry({
        processor: input.processor,
        itemId: it.item_id,
        merchantId: rec.merchant_id,
        currency: it.currency,
        fee: it.fee,
        paymentId: rec.payment_id,
        reference: rec.reference,
        occurredAt: `${it.payout_date}T00:00:00.000Z`,
      });
      if (fee) await recordEntry(fee);
    }
    if (r.settle && rec)
      await recordSettlement(rec.payment_id, input.processor, it.payout_id, it.payout_date);
    if (r.settle && rec) {
      await resolveException(
        rec.merchant_id,
        `missing_at_processor:${input.processor}:${rec.reference}`,
        input.as_of,
        `paid in payout ${it.payout_id}`,
      );
    }
    for (const e of r.exceptions) await openException(e, input.as_of);
  });

  const base = input.chunk.replace(/chunk-(\d+)\.jsonl$/, '');
  const n = /chunk-(\d+)\.jsonl$/.exec(input.chunk)?.[1] ?? '0000';
  const resultKey = `${base}result-${n}.jsonl`;
  const summaryKey = `${base}summary-${n}.json`;
  const file = new TempFile('recon-result');
  try {
    for (const r of [...results].sort((a, b) => a.item.index - b.item.index))
      await file.write(JSON.stringify(r) + '\n');
    const f = await file.close();
    await putFile('settlements', resultKey, f.path, 'application/x-ndjson');
  } finally {
    file.remove();
  }
  await putText('settlements', summaryKey, JSON.stringify(totals), 'application/json');
  return {
    chunk: input.chunk,
    results: resultKey,
    summary: summaryKey,
    items: results.length,
    matched: engine.counts.matched,
    exceptions: engine.counts.exception,
  };
}

export async function handler(input: MatchInput): Promise<MatchOutput> {
  return match(input);
}
