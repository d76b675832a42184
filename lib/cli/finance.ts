/**
 * Finance commands (docs/finance.md):
 *
 *   paystep reconcile import --processor stripe|adyen FILE [--as-of D] [--delay-days N] [--no-wait]
 *   paystep reconcile sync --processor stripe [--payout-now]   reconcile new payouts from the API
 *                                                              (Adyen has no payouts API: import)
 *   paystep reconcile list --processor stripe|adyen            reconciled payouts
 *   paystep reconcile exceptions [--merchant M]                open exceptions, with their age
 *   paystep reconcile resolve ID --note "…" [--merchant M]     resolve an open exception by hand
 *   paystep report run NAME --date D [--merchant M]            a report on demand (progress on stderr)
 *   paystep report list [--merchant M] [--report NAME] [--date D]
 *   paystep report show NAME --date D [--merchant M] [--format csv|json] [--file F]   its content
 *   paystep ledger check [--processor]                         the ledger's invariants (exit 1 if broken);
 *                                                              --processor: refunds against the processor
 *   paystep ledger balances [--merchant M]                     balances per merchant/processor/currency
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { resolveDataDir, withRuntime } from './context.ts';
import {
  CommandFailed,
  day,
  integer,
  oneOf,
  payoutApiProcessorName,
  settlementProcessorName,
  UsageError,
} from './args.ts';
import { executionProgress } from './executions.ts';
import { ledgerCheck } from '../../lambdas/ledger/check.ts';
import { processorCheck } from '../../lambdas/ledger/processor-check.ts';
import { project } from '../../lambdas/ledger/domain.ts';
import { scanEntries } from '../../lambdas/store/ledger.ts';
import { listRuns, openExceptions } from '../../lambdas/store/reconciliation.ts';
import { sourcesOf } from '../../lambdas/reconciliation/sources/index.ts';
import { daysBetween } from '../../lambdas/reconciliation/engine.ts';
import { startReconciliation, waitForExecution } from '../../lambdas/reconciliation/start.ts';
import {
  ExceptionResolutionError,
  NOTE_INVALID,
  resolveException,
} from '../../lambdas/reconciliation/exceptions.ts';
import { sync } from '../../lambdas/reconciliation/sync.ts';
import { getStream, putFile, listObjects } from '../../lambdas/reports/storage.ts';
import { runReport, type Progress } from '../../lambdas/reports/daily.ts';
import { REPORT_NAMES } from '../../lambdas/reports/finance.ts';

type Out = (s: string) => void;

/** Everything in the reports bucket: the daily reports, and what each reconciliation writes. */
export const REPORT_KINDS = [...REPORT_NAMES, 'reconciliation', 'exceptions'] as const;

/** `[██████░░░░] 3/7 merchants · mch_… · 12,345 rows` on one line (a TTY) or a line per merchant. */
export function progressLine(p: Progress, width = 24): string {
  const fraction = p.merchantsTotal ? p.merchantsDone / p.merchantsTotal : 1;
  const full = Math.round(fraction * width);
  return (
    `${p.report} [${'█'.repeat(full)}${'░'.repeat(width - full)}] ` +
    `${p.merchantsDone}/${p.merchantsTotal} merchants · ${p.merchant} · ${p.rows.toLocaleString('en-US')} rows`
  );
}

function progressBar(stream: NodeJS.WriteStream = process.stderr) {
  let last = '';
  let lastDone = -1;
  return {
    update(p: Progress) {
      const line = progressLine(p);
      if (stream.isTTY) {
        if (line !== last) stream.write(`\r${line}\x1b[K`);
      } else if (p.merchantsDone !== lastDone) {
        stream.write(`${line}\n`);
        lastDone = p.merchantsDone;
      }
      last = line;
    },
    done() {
      if (stream.isTTY && last) stream.write('\n');
    },
  };
}

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

/** Waits for a reconciliation, showing its progress on stderr. */
async function waitWithProgress(executionArn: string) {
  const progress = executionProgress(executionArn, {
    unit: 'chunks',
    items: (input) => (input as { chunks?: unknown } | null)?.chunks,
  });
  try {
    return await waitForExecution(executionArn, undefined, () => progress.poll());
  } finally {
    progress.done();
  }
}

export function registerFinanceCommands(program: Command, out: Out): void {
  const dataDir = () => resolveDataDir(program.opts().dataDir);

  // --- reconcile ------------------------------------------------------------------------------
  const reconcile = program.command('reconcile').description('reconcile processor payouts with payments');
  reconcile
    .command('import')
    .description(
      'reconcile a settlement file (Stripe: the itemized payout reconciliation report CSV; ' +
        'Adyen: the Settlement details report CSV)',
    )
    .argument('<file>', 'the file')
    .requiredOption(
      '--processor <name>',
      'processor whose file it is (stripe, adyen)',
      settlementProcessorName,
    )
    .option('--format <format>', 'file format (default: the processor’s payout reconciliation report)')
    .option(
      '--as-of <date>',
      'day the reconciliation speaks for (default: the latest payout date)',
      day('--as-of'),
    )
    .option(
      '--delay-days <n>',
      'settlement delay before a capture counts as missing at the processor',
      integer('--delay-days', 0, 365),
    )
    .option('--no-wait', 'start the reconciliation and return without waiting (no progress)')
    .action(
      async (
        file: string,
        opts: { processor: string; format?: string; asOf?: string; delayDays?: number; wait: boolean },
      ) => {
        const sources = sourcesOf(opts.processor);
        if (opts.format) oneOf(`format for ${opts.processor}`, Object.keys(sources.files))(opts.format);
        const delay = opts.delayDays;
        if (!fs.existsSync(file)) throw new UsageError(`no such file: ${file}`);
        const sha = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
        // The file's own name is kept after the hash: a reader may need it (Adyen's batch number).
        const base = path
          .basename(file)
          .replace(/[^A-Za-z0-9._-]/g, '_')
          .slice(-100);
        const key = `imports/${opts.processor}/${sha.slice(0, 32)}-${path.extname(base) ? base : `${base}.csv`}`;
        const result = await withRuntime(dataDir(), async () => {
          await putFile('settlements', key, file, 'text/csv');
          const started = await startReconciliation(
            {
              processor: opts.processor,
              source: { kind: 'file', key, ...(opts.format ? { format: opts.format } : {}) },
              ...(opts.asOf ? { as_of: opts.asOf } : {}),
              ...(delay !== undefined ? { settlement_delay_days: delay } : {}),
            },
            `${opts.processor}-import-${sha.slice(0, 16)}-${Date.now()}`,
          );
          if (!opts.wait) return { execution_arn: started.executionArn, status: 'RUNNING' };
          const outcome = await waitWithProgress(started.executionArn);
          return { execution_arn: started.executionArn, ...outcome };
        });
        out(json(result));
        if (result.status !== 'SUCCEEDED' && result.status !== 'RUNNING')
          throw new CommandFailed(
            `reconciliation ${result.status}: ${'cause' in result ? String(result.cause ?? '') : ''}`,
          );
      },
    );
  reconcile
    .command('sync')
    .description('reconcile the processor’s paid payouts that are not reconciled yet (from its API)')
    .requiredOption('--processor <name>', 'processor with a payouts API (stripe)', payoutApiProcessorName)
    .option('--payout-now', 'local simulator only: pay out the whole balance first')
    .option(
      '--lookback-days <n>',
      'payouts created in the last N days',
      integer('--lookback-days', 1, 365),
      14,
    )
    .action(async (opts: { processor: string; payoutNow?: boolean; lookbackDays: number }) => {
      const result = await withRuntime(dataDir(), async () => {
        if (opts.payoutNow) {
          const base = process.env.STRIPE_API_BASE;
          if (!base) throw new UsageError('--payout-now needs the local Stripe simulator');
          const res = await fetch(`${base}/_sim/payouts/run`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ include_pending: true }),
          });
          if (!res.ok) throw new Error(`simulator payout failed: ${res.status}`);
        }
        const { started, skipped } = await sync({
          processor: opts.processor,
          only: 'api',
          lookback_days: opts.lookbackDays,
        });
        const outcomes = [];
        for (const arn of started) outcomes.push({ execution_arn: arn, ...(await waitWithProgress(arn)) });
        return { reconciled: outcomes, already_reconciled: skipped };
      });
      out(json(result));
    });
  reconcile
    .command('list')
    .description('reconciled payouts, newest first')
    .requiredOption('--processor <name>', 'processor (stripe, adyen)', settlementProcessorName)
    .action(async (opts: { processor: string }) => {
      const runs = await withRuntime(dataDir(), () => listRuns(opts.processor));
      out(json({ object: 'list', data: runs }));
    });
  reconcile
    .command('exceptions')
    .description('open reconciliation exceptions, oldest first, with their age in days')
    .option('--merchant <id>', 'one merchant (or "platform")')
    .action(async (opts: { merchant?: string }) => {
      const list = await withRuntime(dataDir(), () => openExceptions(opts.merchant));
      const today = new Date().toISOString().slice(0, 10);
      const data = list
        .map((e) => ({ ...e, age_days: Math.max(0, daysBetween(e.first_seen, today)) }))
        .sort((a, b) =>
          a.first_seen !== b.first_seen ? (a.first_seen < b.first_seen ? -1 : 1) : a.id < b.id ? -1 : 1,
        );
      out(json({ object: 'list', data }));
    });
  // A sibling of `exceptions`, not its subcommand: a command is either a group or a leaf here.
  reconcile
    .command('resolve')
    .description('resolve an open exception by hand, with a note saying what was done (recorded with it)')
    .argument('<id>', 'the exception id (<type>:<processor>:<subject>)')
    .requiredOption('--note <text>', 'how it was resolved')
    .option(
      '--merchant <id>',
      'whose exception (a merchant id or "platform"; default: found among the open ones)',
    )
    .action(async (id: string, opts: { note: string; merchant?: string }) => {
      const r = await withRuntime(dataDir(), async () => {
        try {
          return await resolveException(id, opts.note, 'cli', { owner: opts.merchant });
        } catch (err) {
          if (err instanceof ExceptionResolutionError)
            throw err.code === NOTE_INVALID
              ? new UsageError(`--note: ${err.message}`)
              : new CommandFailed(err.message);
          throw err;
        }
      });
      out(json(r.after));
    });

  // --- report ---------------------------------------------------------------------------------
  const report = program.command('report').description('finance reports in the reports bucket');
  report
    .command('run')
    .description(`run a report for a day now (${REPORT_NAMES.join(', ')})`)
    .argument('<name>', REPORT_NAMES.join(' | '), oneOf('report', REPORT_NAMES))
    .requiredOption('--date <date>', 'the day (yyyy-mm-dd, UTC)', day('--date'))
    .option('--merchant <id>', 'one merchant (default: every merchant with activity that day)')
    .action(async (name: string, opts: { date: string; merchant?: string }) => {
      const bar = progressBar();
      try {
        const files = await withRuntime(dataDir(), () =>
          runReport(name, opts.date, { merchant: opts.merchant, onProgress: (p) => bar.update(p) }),
        );
        bar.done();
        const merchants = files.filter((f) => f.merchant !== 'platform').length;
        out(json({ report: name, date: opts.date, merchants, files }));
      } catch (err) {
        bar.done();
        throw err;
      }
    });
  report
    .command('list')
    .description('reports in the reports bucket')
    .option('--merchant <id>', 'one merchant (or "platform")')
    .option('--report <name>', `one report (${REPORT_KINDS.join(', ')})`, oneOf('report', REPORT_KINDS))
    .option('--date <date>', 'one day (yyyy-mm-dd)', day('--date'))
    .action(async (opts: { merchant?: string; report?: string; date?: string }) => {
      const prefix = opts.merchant
        ? `${opts.merchant}/${opts.report ? `${opts.report}/${opts.date ? `${opts.date}/` : ''}` : ''}`
        : '';
      const data = await withRuntime(dataDir(), async () => {
        const found = [];
        for await (const o of listObjects('reports', prefix)) {
          const [merchant, name, date, file] = o.key.split('/');
          if (!file) continue;
          if (opts.report && name !== opts.report) continue;
          if (opts.date && date !== opts.date) continue;
          if (merchant === 'system') continue;
          found.push({ key: o.key, merchant, report: name, date, file, bytes: o.size });
        }
        return found.sort((a, b) => (a.key < b.key ? -1 : 1));
      });
      out(json({ object: 'list', data }));
    });
  report
    .command('show')
    .description('print a report from the reports bucket, as stored (CSV, or JSON with --format json)')
    .argument('<name>', REPORT_KINDS.join(' | '), oneOf('report', REPORT_KINDS))
    .requiredOption('--date <date>', 'the day (yyyy-mm-dd; reconciliation: the payout date)', day('--date'))
    .option('--merchant <id>', 'whose report: a merchant id or "platform" (needed when several have one)')
    .option('--format <format>', 'csv | json', oneOf('format', ['csv', 'json'] as const), 'csv')
    .option('--file <name>', 'which file, when there are several (reconciliation: one per payout, po_…)')
    .action(
      async (
        name: string,
        opts: { date: string; merchant?: string; format: 'csv' | 'json'; file?: string },
      ) => {
        await withRuntime(dataDir(), async () => {
          const key = await findReport(name, opts);
          const decoder = new TextDecoder('utf-8');
          for await (const chunk of await getStream('reports', key))
            out(decoder.decode(chunk as Buffer, { stream: true }));
          out(decoder.decode());
        });
      },
    );

  // --- ledger ---------------------------------------------------------------------------------
  const ledger = program.command('ledger').description('the double-entry ledger');
  ledger
    .command('check')
    .description(
      'check the invariants: entries balance; receivable = captured − refunded − disputed − fees − paid out',
    )
    .option(
      '--processor',
      "also ask the processor about every captured payment's refunds: a refund it paid that paystep did not record, or one recorded twice (one processor call per payment)",
    )
    .option(
      '--since <date>',
      'with --processor: only payments created on or after this day (yyyy-mm-dd)',
      day('--since'),
    )
    .option('--merchant <id>', 'with --processor: one merchant')
    .action(async (opts: { processor?: boolean; since?: string; merchant?: string }) => {
      const report = await withRuntime(dataDir(), async () => {
        const ledgerReport = await ledgerCheck();
        if (!opts.processor) return { ...ledgerReport, processor: undefined };
        let shown = 0;
        const processorReport = await processorCheck({
          since: opts.since ? Date.parse(`${opts.since}T00:00:00Z`) / 1000 : undefined,
          merchantId: opts.merchant,
          onProgress: (n) => {
            if (n - shown >= 100 || n === 1) {
              process.stderr.write(`paystep: ${n} payments checked with the processor\n`);
              shown = n;
            }
          },
        });
        return { ...ledgerReport, processor: processorReport };
      });
      const { balances: _b, ...rest } = report;
      out(json(rest));
      if (!report.ok) throw new CommandFailed('the ledger invariants do not hold (see above)');
      if (report.processor && !report.processor.ok)
        throw new CommandFailed(
          `paystep and the processor disagree on ${report.processor.discrepancies.length} payment(s)` +
            (report.processor.unreachable.length
              ? `; ${report.processor.unreachable.length} not checked`
              : ''),
        );
    });
  ledger
    .command('balances')
    .description('balances per merchant, processor and currency (derived from the entries)')
    .option('--merchant <id>', 'one merchant')
    .action(async (opts: { merchant?: string }) => {
      const balances = await withRuntime(dataDir(), async () => {
        const entries = [];
        for await (const e of scanEntries())
          if (!opts.merchant || e.merchant_id === opts.merchant) entries.push(e);
        return project(entries);
      });
      out(json({ object: 'list', data: balances }));
    });
}

/** The key of one report file: `<owner>/<report>/<date>/<file>.<format>`; refuses when it is ambiguous. */
async function findReport(
  name: string,
  opts: { date: string; merchant?: string; format: string; file?: string },
): Promise<string> {
  const files: { owner: string; file: string; key: string }[] = [];
  for await (const o of listObjects(
    'reports',
    opts.merchant ? `${opts.merchant}/${name}/${opts.date}/` : '',
  )) {
    const [owner, report, date, file] = o.key.split('/');
    if (!owner || !file || owner === 'system' || report !== name || date !== opts.date) continue;
    if (!file.endsWith(`.${opts.format}`)) continue;
    if (opts.file && file !== opts.file && file !== `${opts.file}.${opts.format}`) continue;
    files.push({ owner, file, key: o.key });
  }
  const what = `${name} report for ${opts.date}${opts.merchant ? ` (${opts.merchant})` : ''}${opts.file ? ` named ${opts.file}` : ''}`;
  if (!files.length)
    throw new CommandFailed(
      `no ${what} in the reports bucket` +
        ((REPORT_NAMES as readonly string[]).includes(name)
          ? `; paystep report run ${name} --date ${opts.date} makes it`
          : '; paystep report list shows what there is'),
    );
  const owners = [...new Set(files.map((f) => f.owner))].sort();
  if (owners.length > 1)
    throw new UsageError(
      `${owners.length} owners have a ${what} (${owners.join(', ')}); pick one with --merchant`,
    );
  if (files.length > 1)
    throw new UsageError(
      `${files.length} files make the ${what} (${files.map((f) => f.file).join(', ')}); pick one with --file`,
    );
  return files[0]!.key;
}
