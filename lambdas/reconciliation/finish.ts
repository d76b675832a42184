/**
 * Reconciliation workflow, "Check payouts and write the reports": payout totals against their
 * lines, each merchant's share of each payout booked in the ledger (receivable → bank), captures
 * no payout paid after the settlement delay, then the reports:
 *
 *   <merchant>/reconciliation/<payout date>/<payout>.csv|json   the merchant's lines of the payout
 *   platform/reconciliation/<payout date>/<payout>.csv|json     every line, and the payout's total
 *   <merchant|platform>/exceptions/<as of>/exceptions.csv|json  open exceptions with their age
 *
 * and the run record of each payout. Work files are deleted; a file taken from the drop prefix
 * `incoming/` moves to `processed/`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { payoutEntry } from '../ledger/domain.ts';
import { recordEntry } from '../store/ledger.ts';
import {
  dueReferences,
  openException,
  openExceptions,
  PLATFORM,
  putRun,
  type StoredException,
} from '../store/reconciliation.ts';
import { CsvReport, publishJson, reportKey } from '../reports/output.ts';
import { deleteObject, getStream, getText, objectLines, putFile } from '../reports/storage.ts';
import { addDays, checkPayoutTotals, daysBetween, Reconciler, type PayoutSums } from './engine.ts';
import { processorTerms } from './fees.ts';
import { openReconciliationExceptions } from '../shared/metrics.ts';
import { taskHandler } from '../shared/task-input.ts';
import { loadInternal, type ChunkTotals, type MatchOutput, type ResultLine } from './match.ts';
import { PreparedSchema, type Prepared } from './prepare.ts';
import type { ExceptionType, PayoutCheck, ReconException } from './types.ts';

export interface FinishInput extends Prepared {
  matched: MatchOutput[];
}

/** The task input contract (lambdas/shared/task-input.ts): the prepared run and every chunk's result. */
const FinishInputSchema: z.ZodType<FinishInput> = PreparedSchema.extend({
  matched: z.array(
    z.looseObject({
      chunk: z.string().min(1),
      results: z.string().min(1),
      summary: z.string().min(1),
      items: z.number().int().nonnegative(),
      matched: z.number().int().nonnegative(),
      exceptions: z.number().int().nonnegative(),
    }),
  ),
});

/** How far back captures are looked at for `missing_at_processor`. */
const LOOKBACK_DAYS = 60;

export const RECONCILIATION_COLUMNS = [
  'processor',
  'payout_id',
  'payout_date',
  'line',
  'item_id',
  'type',
  'reference',
  'source_id',
  'payment_id',
  'merchant_id',
  'currency',
  'gross',
  'fee',
  'net',
  'expected_amount',
  'expected_fee',
  'status',
  'exception_types',
  'exception_ids',
  'reasons',
] as const;

export const EXCEPTION_COLUMNS = [
  'exception_id',
  'type',
  'merchant_id',
  'processor',
  'payout_id',
  'item_id',
  'payment_id',
  'reference',
  'currency',
  'expected',
  'actual',
  'first_seen',
  'age_days',
  'reason',
] as const;

interface OwnerPayout {
  csv: CsvReport;
  lines: number;
  matched: number;
  not_applicable: number;
  exceptions: Partial<Record<ExceptionType, number>>;
  settled: number;
  gross: number;
  fee: number;
  net: number;
}

/** Result files merged back into source order (each file is in source order). */
async function* mergedResults(keys: string[]): AsyncGenerator<ResultLine> {
  const iters = keys.map((k) => objectLines('settlements', k)[Symbol.asyncIterator]());
  const buffers: ResultLine[][] = keys.map(() => []);
  const pos = keys.map(() => 0);
  const fill = async (i: number) => {
    while (pos[i]! >= buffers[i]!.length) {
      const next = await iters[i]!.next();
      if (next.done) return false;
      buffers[i] = next.value.map((l) => JSON.parse(l) as ResultLine);
      pos[i] = 0;
    }
    return true;
  };
  const live = new Set<number>();
  for (let i = 0; i < keys.length; i++) if (await fill(i)) live.add(i);
  while (live.size) {
    let best = -1;
    for (const i of live)
      if (best < 0 || buffers[i]![pos[i]!]!.item.index < buffers[best]![pos[best]!]!.item.index) best = i;
    yield buffers[best]![pos[best]!]!;
    pos[best]!++;
    if (!(await fill(best))) live.delete(best);
  }
}

export function exceptionRow(e: StoredException, asOf: string): unknown[] {
  return [
    e.id,
    e.type,
    e.merchant_id,
    e.processor,
    e.payout_id,
    e.item_id,
    e.payment_id,
    e.reference,
    e.currency,
    e.expected,
    e.actual,
    e.first_seen,
    Math.max(0, daysBetween(e.first_seen, asOf)),
    e.reason,
  ];
}

/** Writes `<owner>/exceptions/<as of>/exceptions.csv|json`: open exceptions and their age. */
export async function writeExceptionsReport(
  owner: string,
  asOf: string,
  list: StoredException[],
): Promise<string[]> {
  const sorted = [...list]
    .filter((e) => e.first_seen <= asOf)
    .sort((a, b) =>
      a.type !== b.type ? (a.type < b.type ? -1 : 1) : a.id < b.id ? -1 : a.id > b.id ? 1 : 0,
    );
  const csv = new CsvReport(reportKey(owner, 'exceptions', asOf, 'exceptions', 'csv'), EXCEPTION_COLUMNS);
  const byType: Record<string, { count: number; oldest_days: number }> = {};
  for (const e of sorted) {
    await csv.row(exceptionRow(e, asOf));
    const age = Math.max(0, daysBetween(e.first_seen, asOf));
    const t = (byType[e.type] ??= { count: 0, oldest_days: 0 });
    t.count++;
    t.oldest_days = Math.max(t.oldest_days, age);
  }
  const out = await csv.publish();
  const json = await publishJson(reportKey(owner, 'exceptions', asOf, 'exceptions', 'json'), {
    object: 'exceptions_report',
    owner,
    as_of: asOf,
    open: sorted.length,
    by_type: byType,
    csv: out.key,
    csv_sha256: out.sha256,
  });
  return [out.key, json];
}

export async function finish(input: FinishInput) {
  const { processor, as_of: asOf } = input;
  const terms = processorTerms(processor);
  const delay = input.settlement_delay_days ?? terms.settlementDelayDays;

  // Totals of the chunks.
  const sums: Record<string, PayoutSums> = {};
  const shares = new Map<string, ChunkTotals['shares'][number]>();
  for (const m of input.matched) {
    const t = JSON.parse(await getText('settlements', m.summary)) as ChunkTotals;
    for (const [id, s] of Object.entries(t.payouts)) {
      const acc = (sums[id] ??= { items: 0, gross: 0, fee: 0, net: 0 });
      acc.items += s.items;
      acc.gross += s.gross;
      acc.fee += s.fee;
      acc.net += s.net;
    }
    for (const s of t.shares) {
      const k = `${s.payout_id}|${s.merchant_id}|${s.currency}`;
      const acc = shares.get(k);
      if (acc) acc.net += s.net;
      else shares.set(k, { ...s });
    }
  }
  const checks = checkPayoutTotals(processor, input.payouts, sums);
  for (const e of checks.exceptions) await openException(e, asOf);

  // Each merchant's share of each payout: receivable → bank.
  for (const s of [...shares.values()].sort((a, b) =>
    `${a.payout_id}|${a.merchant_id}|${a.currency}` < `${b.payout_id}|${b.merchant_id}|${b.currency}`
      ? -1
      : 1,
  )) {
    const e = payoutEntry({
      processor,
      payoutId: s.payout_id,
      merchantId: s.merchant_id,
      currency: s.currency,
      net: s.net,
      occurredAt: `${s.payout_date}T00:00:00.000Z`,
    });
    if (e) await recordEntry(e);
  }

  // Captures no payout paid within the settlement delay.
  const missing: ReconException[] = [];
  const engine = new Reconciler({ processor, terms });
  for (let d = addDays(asOf, -LOOKBACK_DAYS); d <= addDays(asOf, -delay); d = addDays(d, 1)) {
    const refs = await dueReferences(processor, d);
    if (!refs.length) continue;
    const recs = await loadInternal(processor, refs);
    missing.push(...engine.missingAtProcessor(asOf, delay, recs.values()));
  }
  for (const e of missing) await openException(e, asOf);

  // Reports per payout and owner, lines in source order.
  const owners = new Map<string, OwnerPayout>();
  const payoutOf = new Map(checks.payouts.map((p) => [p.payout_id, p]));
  const ownerPayout = (owner: string, p: PayoutCheck): OwnerPayout => {
    const k = `${p.payout_id}|${owner}`;
    let o = owners.get(k);
    if (!o) {
      o = {
        csv: new CsvReport(
          reportKey(owner, 'reconciliation', p.payout_date, p.payout_id, 'csv'),
          RECONCILIATION_COLUMNS,
        ),
        lines: 0,
        matched: 0,
        not_applicable: 0,
        exceptions: {},
        settled: 0,
        gross: 0,
        fee: 0,
        net: 0,
      };
      owners.set(k, o);
    }
    return o;
  };
  for (const p of checks.payouts) ownerPayout(PLATFORM, p);
  const concerned = new Set<string>([PLATFORM]);
  for await (const r of mergedResults(input.matched.map((m) => m.results))) {
    const it = r.item;
    const p = payoutOf.get(it.payout_id)!;
    const row = [
      processor,
      it.payout_id,
      it.payout_date,
      it.index + 1,
      it.item_id,
      it.type,
      it.reference,
      it.source_id,
      r.payment_id,
      r.merchant_id,
      it.currency,
      it.gross,
      it.fee,
      it.net,
      r.expected_amount,
      r.expected_fee,
      r.status,
      r.exceptions.map((e) => e.type).join(' '),
      r.exceptions.map((e) => e.id).join(' '),
      r.exceptions.map((e) => e.reason).join('; '),
    ];
    for (const e of r.exceptions) concerned.add(e.merchant_id ?? PLATFORM);
    const targets = [PLATFORM];
    if (r.payment_id && r.merchant_id) targets.push(r.merchant_id);
    for (const owner of targets) {
      const o = ownerPayout(owner, p);
      await o.csv.row(row);
      o.lines++;
      if (r.status === 'matched') o.matched++;
      if (r.status === 'not_applicable') o.not_applicable++;
      if (r.settle) o.settled++;
      for (const e of r.exceptions) o.exceptions[e.type] = (o.exceptions[e.type] ?? 0) + 1;
      if (it.type !== 'payout') {
        o.gross += it.gross;
        o.fee += it.fee;
        o.net += it.net;
      }
    }
  }

  const reports: Record<string, string[]> = {};
  for (const [k, o] of [...owners].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const [payoutId, owner] = k.split('|') as [string, string];
    const p = payoutOf.get(payoutId)!;
    const csv = await o.csv.publish();
    const exceptions = { ...o.exceptions };
    const payoutException = checks.exceptions.find((e) => e.payout_id === payoutId);
    if (owner === PLATFORM && payoutException) exceptions.payout_total_mismatch = 1;
    const json = await publishJson(reportKey(owner, 'reconciliation', p.payout_date, payoutId, 'json'), {
      object: 'reconciliation_report',
      processor,
      payout_id: payoutId,
      payout_date: p.payout_date,
      currency: p.currency,
      owner,
      as_of: asOf,
      lines: o.lines,
      matched: o.matched,
      not_applicable: o.not_applicable,
      settled_payments: o.settled,
      exceptions: Object.fromEntries(Object.entries(exceptions).sort(([a], [b]) => (a < b ? -1 : 1))),
      totals: { gross: o.gross, fee: o.fee, net: o.net },
      ...(owner === PLATFORM
        ? {
            payout: {
              amount: p.amount,
              lines_net: p.net,
              difference: p.difference,
              reason: payoutException?.reason ?? null,
            },
          }
        : {}),
      csv: csv.key,
      csv_sha256: csv.sha256,
    });
    (reports[payoutId] ??= []).push(csv.key, json);
  }

  // Open exceptions, per merchant concerned and for the platform (all of them).
  const all = await openExceptions();
  // A gauge, written at every run: the reconciliation-exceptions alarm holds until a run finds none.
  openReconciliationExceptions(all.length);
  for (const k of owners.keys()) concerned.add(k.split('|')[1]!);
  for (const e of missing) concerned.add(e.merchant_id ?? PLATFORM);
  const exceptionReports: string[] = [];
  for (const owner of [...concerned].sort()) {
    const list = owner === PLATFORM ? all : all.filter((e) => (e.merchant_id ?? PLATFORM) === owner);
    exceptionReports.push(...(await writeExceptionsReport(owner, asOf, list)));
  }

  // Run records, per payout.
  const source = input.source.kind === 'file' ? `file:${input.source.key}` : `api:${input.source.payout_id}`;
  const summary = [];
  for (const p of checks.payouts) {
    const platform = owners.get(`${p.payout_id}|${PLATFORM}`)!;
    const exc = { ...platform.exceptions };
    if (checks.exceptions.some((e) => e.payout_id === p.payout_id)) exc.payout_total_mismatch = 1;
    const count = Object.values(exc).reduce((a, b) => a + (b ?? 0), 0);
    const run = {
      processor,
      payout_id: p.payout_id,
      payout_date: p.payout_date,
      currency: p.currency,
      amount: p.amount,
      status: count ? ('reconciled_with_exceptions' as const) : ('reconciled' as const),
      items: platform.lines,
      matched: platform.matched,
      exceptions: exc as Record<string, number>,
      source,
      as_of: asOf,
      reports: reports[p.payout_id] ?? [],
      execution: null,
    };
    await putRun(run);
    summary.push(run);
  }

  // Clean up.
  for (const m of input.matched) {
    await deleteObject('settlements', m.chunk);
    await deleteObject('settlements', m.results);
    await deleteObject('settlements', m.summary);
  }
  if (input.source.kind === 'file' && input.source.key.startsWith('incoming/')) {
    const tmp = path.join(os.tmpdir(), `recon-processed-${process.pid}-${Date.now()}.csv`);
    try {
      await pipeline(await getStream('settlements', input.source.key), fs.createWriteStream(tmp));
      await putFile(
        'settlements',
        `processed/${input.source.key.slice('incoming/'.length)}`,
        tmp,
        'text/csv',
      );
      await deleteObject('settlements', input.source.key);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }

  return {
    run_id: input.run_id,
    processor,
    as_of: asOf,
    items: input.items,
    payouts: summary,
    missing_at_processor: missing.length,
    exception_reports: exceptionReports,
  };
}

export type FinishOutput = Awaited<ReturnType<typeof finish>>;

export const handler = taskHandler('reconciliation-finish', FinishInputSchema, finish);
