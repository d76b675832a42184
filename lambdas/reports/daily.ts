/**
 * The daily finance reports (scheduled at 02:15 UTC for the previous day, or on demand with
 * `paystep report run NAME --date D`), per merchant with activity that day:
 *
 *   <merchant>/transactions/<date>/transactions.csv|json
 *   <merchant>/summary/<date>/summary.csv|json
 *   <merchant>/performance/<date>/performance.csv|json
 *   <merchant>/subscriptions/<date>/subscriptions.csv|json   (MRR, churn, recovery; docs/billing.md)
 *
 * and, when the summary runs for every merchant, the platform's: every merchant's entries of the
 * day added up per processor and currency (`platform/summary/<date>/summary.csv|json`).
 *
 * Re-running a day rewrites the same bytes when nothing changed (entries are immutable; a late
 * entry for the day, e.g. a payout booked later, is included the next time).
 */
import { listPayments } from '../store/payments.ts';
import { activeMerchants, entriesOfDay } from '../store/ledger.ts';
import { PLATFORM } from '../store/reconciliation.ts';
import { CsvReport, publishJson, reportKey } from './output.ts';
import {
  DailyTotals,
  isReportName,
  PERFORMANCE_COLUMNS,
  PerformanceTotals,
  REPORT_NAMES,
  SUMMARY_COLUMNS,
  summaryRow,
  TRANSACTION_COLUMNS,
  transactionRow,
  type ReportName,
} from './finance.ts';
import { PaystepError } from '../shared/errors.ts';
import {
  SUBSCRIPTIONS_COLUMNS,
  subscriptionsCsvRow,
  subscriptionsReport,
} from '../billing/subscriptions-report.ts';
import type { Plan, Subscription } from '../billing/model.ts';
import { listSubscriptions } from '../store/subscriptions.ts';
import { getPlan } from '../store/plans.ts';
import { merchantInvoices } from '../store/invoices.ts';

export interface Progress {
  report: ReportName;
  merchant: string;
  merchantsDone: number;
  merchantsTotal: number;
  rows: number;
}

export interface RunOptions {
  merchant?: string;
  onProgress?: (p: Progress) => void;
}

export interface ReportFiles {
  report: ReportName;
  date: string;
  merchant: string;
  rows: number;
  files: string[];
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

export class ReportInputError extends PaystepError {
  override name = 'ReportInputError';
}

function dayBounds(date: string): { gte: number; lt: number } {
  const gte = Date.parse(`${date}T00:00:00Z`) / 1000;
  return { gte, lt: gte + 86_400 };
}

async function transactions(
  merchant: string,
  date: string,
  tick: (rows: number) => void,
): Promise<ReportFiles> {
  const csv = new CsvReport(
    reportKey(merchant, 'transactions', date, 'transactions', 'csv'),
    TRANSACTION_COLUMNS,
  );
  const totals = new DailyTotals();
  const byType: Record<string, number> = {};
  for await (const e of entriesOfDay(merchant, date)) {
    await csv.row(transactionRow(e));
    totals.add(e);
    byType[e.type] = (byType[e.type] ?? 0) + 1;
    if (csv.rows % 1000 === 0) tick(csv.rows);
  }
  tick(csv.rows);
  const out = await csv.publish();
  const json = await publishJson(reportKey(merchant, 'transactions', date, 'transactions', 'json'), {
    object: 'transactions_report',
    merchant_id: merchant,
    date,
    rows: out.rows,
    by_type: Object.fromEntries(Object.entries(byType).sort(([a], [b]) => (a < b ? -1 : 1))),
    totals: totals.list(),
    csv: out.key,
    csv_sha256: out.sha256,
  });
  return { report: 'transactions', date, merchant, rows: out.rows, files: [out.key, json] };
}

async function summaryTotals(merchant: string, date: string, tick: (rows: number) => void) {
  const totals = new DailyTotals();
  for await (const e of entriesOfDay(merchant, date)) {
    totals.add(e);
    if (totals.entries % 1000 === 0) tick(totals.entries);
  }
  tick(totals.entries);
  return totals;
}

/** Writes a summary (a merchant's, or the platform's with `merchants`, the number added up). */
async function writeSummary(
  owner: string,
  date: string,
  totals: DailyTotals,
  merchants?: number,
): Promise<ReportFiles> {
  const rows = totals.list();
  const csv = new CsvReport(reportKey(owner, 'summary', date, 'summary', 'csv'), SUMMARY_COLUMNS);
  for (const r of rows) await csv.row(summaryRow(r));
  const out = await csv.publish();
  const json = await publishJson(reportKey(owner, 'summary', date, 'summary', 'json'), {
    object: 'summary_report',
    merchant_id: owner,
    date,
    ...(merchants !== undefined ? { merchants } : {}),
    entries: totals.entries,
    currencies: rows,
    by_processor: totals.byProcessor(),
    csv: out.key,
    csv_sha256: out.sha256,
  });
  return { report: 'summary', date, merchant: owner, rows: out.rows, files: [out.key, json] };
}

async function summary(merchant: string, date: string, tick: (rows: number) => void): Promise<ReportFiles> {
  return writeSummary(merchant, date, await summaryTotals(merchant, date, tick));
}

async function performance(
  merchant: string,
  date: string,
  tick: (rows: number) => void,
): Promise<ReportFiles> {
  const { gte, lt } = dayBounds(date);
  const totals = new PerformanceTotals();
  let after: string | undefined;
  for (;;) {
    const page = await listPayments(merchant, {
      createdGte: gte,
      createdLt: lt,
      limit: 100,
      startingAfter: after,
    });
    for (const p of page.data) totals.add(p);
    tick(totals.payments);
    if (!page.hasMore || !page.data.length) break;
    after = page.data.at(-1)!.id;
  }
  const rows = totals.rows();
  const csv = new CsvReport(
    reportKey(merchant, 'performance', date, 'performance', 'csv'),
    PERFORMANCE_COLUMNS,
  );
  for (const r of rows) await csv.row(r);
  const out = await csv.publish();
  const all = rows.find((r) => r[0] === 'all');
  const json = await publishJson(reportKey(merchant, 'performance', date, 'performance', 'json'), {
    object: 'performance_report',
    merchant_id: merchant,
    date,
    payments: totals.payments,
    approval_rate: all ? all[6] || null : null,
    dimensions: rows.map((r) => Object.fromEntries(PERFORMANCE_COLUMNS.map((c, i) => [c, r[i]]))),
    csv: out.key,
    csv_sha256: out.sha256,
  });
  return { report: 'performance', date, merchant, rows: out.rows, files: [out.key, json] };
}

/** At most this many of a merchant's subscriptions and invoices are read (the report says when it stopped). */
const MAX_BILLING_OBJECTS = 100_000;

async function subscriptions(
  merchant: string,
  date: string,
  tick: (rows: number) => void,
): Promise<ReportFiles> {
  const day = dayBounds(date);
  const subs: Subscription[] = [];
  let after: string | undefined;
  let truncated = false;
  for (;;) {
    const page = await listSubscriptions(merchant, { limit: 100, startingAfter: after });
    subs.push(...page.data);
    tick(subs.length);
    if (!page.hasMore || !page.data.length) break;
    if (subs.length >= MAX_BILLING_OBJECTS) {
      truncated = true;
      break;
    }
    after = page.data.at(-1)!.id;
  }
  const plans = new Map<string, Plan>();
  for (const id of new Set(subs.map((x) => x.plan))) {
    const plan = await getPlan(id);
    if (plan) plans.set(id, plan);
  }
  const { invoices, truncated: invoicesTruncated } = await merchantInvoices(merchant, MAX_BILLING_OBJECTS);
  const rows = subscriptionsReport(day, subs, plans, invoices);
  const csv = new CsvReport(
    reportKey(merchant, 'subscriptions', date, 'subscriptions', 'csv'),
    SUBSCRIPTIONS_COLUMNS,
  );
  for (const r of rows) await csv.row(subscriptionsCsvRow(r));
  const out = await csv.publish();
  const json = await publishJson(reportKey(merchant, 'subscriptions', date, 'subscriptions', 'json'), {
    object: 'subscriptions_report',
    merchant_id: merchant,
    date,
    currencies: rows,
    truncated: truncated || invoicesTruncated,
    csv: out.key,
    csv_sha256: out.sha256,
  });
  return { report: 'subscriptions', date, merchant, rows: out.rows, files: [out.key, json] };
}

const BUILDERS: Record<ReportName, typeof transactions> = {
  transactions,
  summary,
  performance,
  subscriptions,
};

/**
 * Runs one report for one day, for one merchant or every merchant with activity that day; the
 * summary of every merchant also writes the platform's (the last entry, merchant `platform`).
 */
export async function runReport(name: string, date: string, opts: RunOptions = {}): Promise<ReportFiles[]> {
  if (!isReportName(name))
    throw new ReportInputError(`unknown report "${name}" (reports: ${REPORT_NAMES.join(', ')})`);
  if (!DAY.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`)))
    throw new ReportInputError(`--date must be a yyyy-mm-dd date, got "${date}"`);
  const merchants = opts.merchant ? [opts.merchant] : await activeMerchants(date);
  const platform = name === 'summary' && !opts.merchant ? new DailyTotals() : undefined;
  const out: ReportFiles[] = [];
  for (let i = 0; i < merchants.length; i++) {
    const merchant = merchants[i]!;
    const tick = (rows: number) =>
      opts.onProgress?.({ report: name, merchant, merchantsDone: i, merchantsTotal: merchants.length, rows });
    if (platform) {
      const totals = await summaryTotals(merchant, date, tick);
      platform.merge(totals);
      out.push(await writeSummary(merchant, date, totals));
    } else out.push(await BUILDERS[name](merchant, date, tick));
    opts.onProgress?.({
      report: name,
      merchant,
      merchantsDone: i + 1,
      merchantsTotal: merchants.length,
      rows: out.at(-1)!.rows,
    });
  }
  if (platform) out.push(await writeSummary(PLATFORM, date, platform, merchants.length));
  return out;
}

export interface DailyReportsEvent {
  reports?: string[];
  /** The day to report (yyyy-mm-dd); default: the day before `scheduled_time` (or before now). */
  date?: string;
  scheduled_time?: string;
  merchant?: string;
}

/** The day before a time (the scheduler's `<aws.scheduler.scheduled-time>`), UTC. */
export function previousDay(time?: string): string {
  const t = time && !Number.isNaN(Date.parse(time)) ? Date.parse(time) : Date.now();
  return new Date(t - 86_400_000).toISOString().slice(0, 10);
}

export async function handler(event: DailyReportsEvent = {}) {
  const date = event.date ?? previousDay(event.scheduled_time);
  const reports = event.reports ?? [...REPORT_NAMES];
  const files: ReportFiles[] = [];
  for (const r of reports) files.push(...(await runReport(r, date, { merchant: event.merchant })));
  return {
    date,
    reports,
    merchants: new Set(files.map((f) => f.merchant).filter((m) => m !== PLATFORM)).size,
    files: files.flatMap((f) => f.files),
  };
}
