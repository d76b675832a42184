/**
 * `npm run bench:reconcile` — reconciliation and report generation at scale (issue 5).
 *
 * 1. Generates `--rows` (default 1,000,000) settlement lines as a Stripe itemized payout
 *    reconciliation CSV (100 payouts), and as many internal records (CSV), with a known set of
 *    injected differences (`--inject` of each kind, default 100): amount, currency and fee
 *    mismatches, duplicate lines, refunds above the charge, lines no payment knows, captures no
 *    payout paid, and payouts whose total is off.
 * 2. Parse floor: reads both files with the same readers (CSV → SettlementItem, CSV → record) and
 *    does nothing else. Also the raw CSV split alone.
 * 3. Reconciliation: the same reads, plus the index of internal records, the matcher on every
 *    line, payout totals, missing settlements, and the exceptions CSV written to disk. Checks that
 *    every injected difference is found, nothing else is, and every other line matched.
 * 4. Daily transactions report of `--rows` ledger entries: rows formatted and streamed to a file
 *    (what the Lambda uploads), entries generated on the fly: memory must stay flat.
 *
 * Each measured phase runs in its own process (`--phase`), so its peak RSS is its own.
 * Results: a table on stdout, JSON in os.tmpdir() (path printed), progress on stderr.
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { addDays, Reconciler } from '../lambdas/reconciliation/engine.ts';
import { stripeTerms } from '../lambdas/reconciliation/fees.ts';
import { formatMajor } from '../lambdas/reconciliation/amounts.ts';
import { readStripeItemizedCsv, STRIPE_ITEMIZED_COLUMNS } from '../lambdas/connectors/stripe/settlement.ts';
import type { InternalRecord, PayoutHeader, ReconException } from '../lambdas/reconciliation/types.ts';
import { csvBatches, csvLine } from '../lambdas/reports/csv.ts';
import { transactionRow, TRANSACTION_COLUMNS } from '../lambdas/reports/finance.ts';
import { TempFile } from '../lambdas/reports/storage.ts';
import type { LedgerEntry } from '../lambdas/ledger/domain.ts';
import { log, machineInfo, ROOT, round, table, tmpFile } from './lib.ts';

const AS_OF = '2024-06-30';
const PAYOUT_DATE = '2024-06-28';
const PAYOUTS = 100;
const REFUND_LINES_SHARE = 0.05;
const INTERNAL_COLUMNS = [
  'reference',
  'payment_id',
  'merchant_id',
  'currency',
  'amount_captured',
  'amount_refunded',
  'status',
  'captured_on',
] as const;

interface Files {
  dir: string;
  settlement: string;
  internal: string;
  payouts: string;
  expected: string;
}

interface Expected {
  rows: number;
  internal: number;
  exceptions: string[];
  matched: number;
}

interface PhaseResult {
  phase: string;
  ms: number;
  maxRssMiB: number;
  heapUsedMiB: number;
  [k: string]: unknown;
}

const pad = (i: number) => String(i).padStart(8, '0');
const ref = (i: number) => `pi_${pad(i)}`;
const amountOf = (i: number) => 500 + ((i * 7919) % 99_500);

// ---------------------------------------------------------------------------------------------
// Generation

/** Writes the files; returns what reconciliation must find. */
async function generate(rows: number, inject: number, dir: string): Promise<Files> {
  const files: Files = {
    dir,
    settlement: path.join(dir, 'settlement.csv'),
    internal: path.join(dir, 'internal.csv'),
    payouts: path.join(dir, 'payouts.json'),
    expected: path.join(dir, 'expected.json'),
  };
  const K = inject;
  const refundLines = Math.round(rows * REFUND_LINES_SHARE);
  const charged = rows - refundLines - 2 * K; // + K duplicate lines + K unknown lines = rows
  const internalCount = rows;
  if (charged < 1000 * K + 10) throw new Error('--rows too small for --inject');
  const role = (i: number): 'amount' | 'currency' | 'fee' | 'duplicate' | 'refund_above' | null => {
    if (i >= 1000 * K || i % 1000 > 5 || i % 1000 === 0) return null;
    return (['amount', 'currency', 'fee', 'duplicate', 'refund_above'] as const)[(i % 1000) - 1]!;
  };
  // Refund lines: K above the charge, the rest ordinary, on charged records that have no other role.
  const refunded = new Map<number, number>(); // index → refunded amount (internal)
  const refundLine = new Map<number, number>(); // index → refund line amount (positive)
  for (let i = 0; i < 1000 * K; i += 1000) {
    const j = i + 5;
    refunded.set(j, amountOf(j));
    refundLine.set(j, amountOf(j) + 100);
  }
  for (let i = 7; refundLine.size < refundLines && i < charged; i += 17) {
    if (role(i) || refundLine.has(i)) continue;
    const half = Math.floor(amountOf(i) / 2);
    refunded.set(i, half);
    refundLine.set(i, half);
  }
  if (refundLine.size < refundLines) throw new Error('not enough records for the refund lines');

  const expected: string[] = [];
  // Internal records.
  {
    const out = fs.createWriteStream(files.internal);
    let buf = csvLine(INTERNAL_COLUMNS);
    for (let i = 0; i < internalCount; i++) {
      const capturedOn =
        i < charged ? addDays(PAYOUT_DATE, -3) : i < charged + K ? addDays(AS_OF, -30) : addDays(AS_OF, -1);
      if (i >= charged && i < charged + K) expected.push(`missing_at_processor:stripe:${ref(i)}`);
      buf += `${ref(i)},pay_${pad(i)},mch_${i % 50},usd,${amountOf(i)},${refunded.get(i) ?? 0},captured,${capturedOn}\r\n`;
      if (buf.length > 1 << 20) {
        if (!out.write(buf)) await new Promise<void>((r) => out.once('drain', () => r()));
        buf = '';
      }
    }
    out.end(buf);
    await new Promise<void>((r) => out.once('finish', () => r()));
  }
  // Settlement lines, assigned to payouts in order.
  const perPayout = Math.ceil(rows / PAYOUTS);
  const nets = new Array<number>(PAYOUTS).fill(0);
  let row = 0;
  let txn = 0;
  let unknown = 0;
  const out = fs.createWriteStream(files.settlement);
  let buf = csvLine(STRIPE_ITEMIZED_COLUMNS);
  const line = (
    category: string,
    reference: string,
    currency: string,
    gross: number,
    fee: number,
    id?: string,
  ) => {
    const p = Math.min(PAYOUTS - 1, Math.floor(row / perPayout));
    const txnId = id ?? `txn_${pad(txn++)}`;
    nets[p] = nets[p]! + gross - fee;
    row++;
    buf +=
      `po_${pad(p)},${PAYOUT_DATE} 00:00:00,${txnId},${PAYOUT_DATE} 10:00:00,${PAYOUT_DATE} 00:00:00,${currency},` +
      `${formatMajor(gross, 2)},${formatMajor(fee, 2)},${formatMajor(gross - fee, 2)},${category},ch_${reference.slice(3)},,` +
      `ch_${reference.slice(3)},${reference},visa,US,\r\n`;
    return txnId;
  };
  const unknownEvery = Math.floor(charged / K);
  for (let i = 0; i < charged; i++) {
    const r = role(i);
    const gross = amountOf(i) + (r === 'amount' ? 100 : 0);
    const fee = stripeTerms.expectedFee('charge', gross, 'usd')! + (r === 'fee' ? 7 : 0);
    const id = line('charge', ref(i), r === 'currency' ? 'eur' : 'usd', gross, fee);
    if (r === 'amount') expected.push(`amount_mismatch:stripe:${id}`);
    if (r === 'currency') expected.push(`currency_mismatch:stripe:${id}`);
    if (r === 'fee') expected.push(`fee_mismatch:stripe:${id}`);
    if (r === 'duplicate') {
      line('charge', ref(i), 'usd', gross, fee, id);
      expected.push(`duplicate:stripe:${id}`);
    }
    const refund = refundLine.get(i);
    if (refund !== undefined) {
      const rid = line('refund', ref(i), 'usd', -refund, 0);
      if (r === 'refund_above') expected.push(`refund_above_charge:stripe:${rid}`);
    }
    if (i % unknownEvery === unknownEvery - 1 && unknown < K) {
      const uid = line('charge', `pi_unknown${pad(unknown++)}`, 'usd', 1000, 59);
      expected.push(`missing_internally:stripe:${uid}`);
    }
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await new Promise<void>((r2) => out.once('drain', () => r2()));
      buf = '';
    }
  }
  out.end(buf);
  await new Promise<void>((r) => out.once('finish', () => r()));
  if (row !== rows) throw new Error(`generated ${row} lines, not ${rows}`);
  // Payout headers: every 10th payout's amount is off by one cent (K/10 at least 1).
  const offBy = new Set(
    Array.from({ length: Math.max(1, Math.min(PAYOUTS, Math.round(K / 10))) }, (_, j) => j * 10),
  );
  const headers: PayoutHeader[] = nets.map((net, p) => ({
    processor: 'stripe',
    payout_id: `po_${pad(p)}`,
    payout_date: PAYOUT_DATE,
    currency: 'usd',
    amount: offBy.has(p) ? net + 1 : net,
  }));
  for (const p of offBy) expected.push(`payout_total_mismatch:stripe:po_${pad(p)}`);
  fs.writeFileSync(files.payouts, JSON.stringify(headers));
  const matched = charged - 3 * K + (refundLine.size - K);
  fs.writeFileSync(
    files.expected,
    JSON.stringify({
      rows,
      internal: internalCount,
      exceptions: expected.sort(),
      matched,
    } satisfies Expected),
  );
  return files;
}

// ---------------------------------------------------------------------------------------------
// Phases (each in its own process)

async function* internalRecords(file: string): AsyncGenerator<InternalRecord[]> {
  const NO_PRIOR: InternalRecord['prior'] = [];
  // Low-cardinality columns (currency, merchant, status, day) share one string each.
  const interned = new Map<string, string>();
  const intern = (v: string) => {
    let x = interned.get(v);
    if (x === undefined) interned.set(v, (x = v));
    return x;
  };
  let header = true;
  for await (const rows of csvBatches(fs.createReadStream(file))) {
    const out: InternalRecord[] = [];
    for (const r of rows) {
      if (header) {
        header = false;
        continue;
      }
      out.push({
        reference: r[0]!,
        payment_id: r[1]!,
        merchant_id: intern(r[2]!),
        processor: 'stripe',
        currency: intern(r[3]!),
        amount_captured: Number(r[4]),
        amount_refunded: Number(r[5]),
        status: intern(r[6]!),
        captured_on: r[7] ? intern(r[7]) : null,
        settled_payout: null,
        prior: NO_PRIOR,
      });
    }
    yield out;
  }
}

const mib = (bytes: number) => round(bytes / 2 ** 20, 1);

function finishPhase(phase: string, started: number, extra: Record<string, unknown>): PhaseResult {
  return {
    phase,
    ms: Math.round(performance.now() - started),
    maxRssMiB: round(process.resourceUsage().maxRSS / 1024, 1),
    heapUsedMiB: mib(process.memoryUsage().heapUsed),
    ...extra,
  };
}

async function phaseRaw(f: Files): Promise<PhaseResult> {
  const t = performance.now();
  let fields = 0;
  let rows = 0;
  for (const file of [f.settlement, f.internal])
    for await (const batch of csvBatches(fs.createReadStream(file))) {
      rows += batch.length;
      for (const r of batch) fields += r.length;
    }
  return finishPhase('raw CSV split (both files)', t, { rows, fields });
}

async function phaseFloor(f: Files): Promise<PhaseResult> {
  const t = performance.now();
  let items = 0;
  let records = 0;
  let gross = 0;
  for await (const batch of readStripeItemizedCsv(fs.createReadStream(f.settlement)))
    for (const it of batch) {
      items++;
      gross += it.gross;
    }
  for await (const batch of internalRecords(f.internal))
    for (const r of batch) {
      records++;
      gross += r.amount_captured;
    }
  return finishPhase('parse floor (both files, typed)', t, { items, records, checksum: gross });
}

async function phaseReconcile(f: Files): Promise<PhaseResult> {
  const t = performance.now();
  const engine = new Reconciler({ processor: 'stripe', terms: stripeTerms });
  for await (const batch of internalRecords(f.internal)) for (const r of batch) engine.addInternal(r);
  const tIndexed = performance.now();
  for (const h of JSON.parse(fs.readFileSync(f.payouts, 'utf8')) as PayoutHeader[]) engine.addPayout(h);
  const exceptions: ReconException[] = [];
  const unmatchedClean: string[] = [];
  const expected = JSON.parse(fs.readFileSync(f.expected, 'utf8')) as Expected;
  for await (const batch of readStripeItemizedCsv(fs.createReadStream(f.settlement)))
    for (const it of batch) {
      const r = engine.item(it);
      if (r.exceptions.length) exceptions.push(...r.exceptions);
      else if (r.status !== 'matched' && unmatchedClean.length < 10) unmatchedClean.push(it.item_id);
    }
  exceptions.push(...engine.payoutChecks().exceptions, ...engine.missingAtProcessor(AS_OF));
  const out = new TempFile('bench-exceptions');
  await out.write(
    csvLine(['exception_id', 'type', 'merchant_id', 'payment_id', 'expected', 'actual', 'reason']),
  );
  for (const e of exceptions)
    await out.write(csvLine([e.id, e.type, e.merchant_id, e.payment_id, e.expected, e.actual, e.reason]));
  const written = await out.close();
  out.remove();
  const ms = performance.now() - t;
  // Correctness (not timed).
  const found = [...new Set(exceptions.map((e) => e.id))].sort();
  const want = new Set(expected.exceptions);
  const missed = expected.exceptions.filter((e) => !found.includes(e));
  const extra = found.filter((e) => !want.has(e));
  const res = finishPhase('reconciliation (parse + index + match + report)', t, {
    indexMs: Math.round(tIndexed - t),
    lines: engine.counts.items,
    matched: engine.counts.matched,
    expectedMatched: expected.matched,
    exceptions: found.length,
    expectedExceptions: expected.exceptions.length,
    missed: missed.slice(0, 10),
    unexpected: extra.slice(0, 10),
    unmatchedWithoutReason: unmatchedClean,
    exceptionsBytes: written.bytes,
  });
  res.ms = Math.round(ms);
  res.ok = missed.length === 0 && extra.length === 0 && engine.counts.matched === expected.matched;
  return res;
}

async function phaseReport(rows: number): Promise<PhaseResult> {
  const t = performance.now();
  const out = new TempFile('bench-transactions');
  await out.write(csvLine(TRANSACTION_COLUMNS));
  const rss: number[] = [];
  const types = ['capture', 'refund', 'fee', 'payout'] as const;
  for (let i = 0; i < rows; i++) {
    const type = types[i % 4]!;
    const amount = amountOf(i);
    const e: LedgerEntry = {
      id: `${type}:pay_${pad(i)}:${amount}`,
      type,
      merchant_id: 'mch_bench',
      processor: 'stripe',
      currency: 'usd',
      amount,
      postings:
        type === 'capture'
          ? [
              { account: 'processor_receivable', debit: amount, credit: 0 },
              { account: 'sales', debit: 0, credit: amount },
            ]
          : [
              {
                account: type === 'refund' ? 'refunds' : type === 'fee' ? 'processor_fees' : 'bank',
                debit: amount,
                credit: 0,
              },
              { account: 'processor_receivable', debit: 0, credit: amount },
            ],
      payment_id: `pay_${pad(i)}`,
      source_id: `pay_${pad(i)}`,
      processor_reference: ref(i),
      occurred_at: new Date(Date.UTC(2024, 5, 30) + (i % 86_400) * 1000).toISOString(),
    };
    await out.write(csvLine(transactionRow(e)));
    if (i % Math.max(1, Math.floor(rows / 10)) === 0) rss.push(mib(process.memoryUsage().rss));
  }
  const f = await out.close();
  out.remove();
  return finishPhase('daily transactions report (stream to file)', t, {
    rows,
    bytes: f.bytes,
    rssSamplesMiB: rss,
  });
}

export async function runPhase(phase: string, f: Files, rows: number): Promise<PhaseResult> {
  switch (phase) {
    case 'raw':
      return phaseRaw(f);
    case 'floor':
      return phaseFloor(f);
    case 'reconcile':
      return phaseReconcile(f);
    case 'report':
      return phaseReport(rows);
  }
  throw new Error(`unknown phase ${phase}`);
}

function inChild(phase: string, dir: string, rows: number): Promise<PhaseResult> {
  return new Promise((resolve, reject) => {
    const child = fork(
      path.join(ROOT, 'bench', 'run.ts'),
      ['reconcile', '--phase', phase, '--dir', dir, '--rows', String(rows)],
      {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      },
    );
    let result: PhaseResult | undefined;
    child.on('message', (m) => (result = m as PhaseResult));
    child.on('error', reject);
    child.on('exit', (code) =>
      result ? resolve(result) : reject(new Error(`phase ${phase} exited with ${code}`)),
    );
  });
}

// ---------------------------------------------------------------------------------------------

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      rows: { type: 'string', default: '1000000' },
      inject: { type: 'string', default: '100' },
      repeat: { type: 'string', default: '3' },
      phase: { type: 'string' },
      dir: { type: 'string' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    log('usage: npm run bench:reconcile -- [--rows 1000000] [--inject 100] [--repeat 3] [--keep]');
    return 0;
  }
  const rows = Number(values.rows);
  const inject = Number(values.inject);
  if (values.phase) {
    const dir = values.dir!;
    const f: Files = {
      dir,
      settlement: path.join(dir, 'settlement.csv'),
      internal: path.join(dir, 'internal.csv'),
      payouts: path.join(dir, 'payouts.json'),
      expected: path.join(dir, 'expected.json'),
    };
    process.send!(await runPhase(values.phase, f, rows));
    return 0;
  }

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-bench-reconcile-'));
  try {
    log(`generating ${rows.toLocaleString('en-US')} settlement lines and internal records in ${dir} …`);
    const g0 = performance.now();
    const files = await generate(rows, inject, dir);
    const sizes = {
      settlementMiB: mib(fs.statSync(files.settlement).size),
      internalMiB: mib(fs.statSync(files.internal).size),
    };
    log(
      `generated in ${Math.round(performance.now() - g0)} ms (${sizes.settlementMiB} MiB + ${sizes.internalMiB} MiB)`,
    );
    // Each phase `--repeat` times, interleaved; the fastest run of each is reported (the machine
    // may be shared), with the largest peak RSS seen.
    const repeat = Math.max(1, Number(values.repeat));
    const runs = new Map<string, PhaseResult[]>();
    for (let n = 0; n < repeat; n++)
      for (const phase of ['raw', 'floor', 'reconcile', 'report']) {
        log(`phase ${phase} (${n + 1}/${repeat}) …`);
        const r = await inChild(phase, dir, rows);
        if (phase === 'reconcile' && !r.ok) log(`  WRONG: ${JSON.stringify(r)}`);
        runs.set(phase, [...(runs.get(phase) ?? []), r]);
      }
    const results = [...runs.values()].map((rs) => {
      const best = rs.reduce((a, b) => (b.ms < a.ms ? b : a));
      return {
        ...best,
        ok: rs.every((r) => r.ok !== false),
        maxRssMiB: Math.max(...rs.map((r) => r.maxRssMiB)),
        allMs: rs.map((r) => r.ms),
      };
    });
    const [raw, floor, recon, report] = results as unknown as [
      PhaseResult,
      PhaseResult,
      PhaseResult,
      PhaseResult,
    ];
    const ratio = recon.ms / floor.ms;
    process.stdout.write(
      `\n${table([
        ['phase', 'time', 'peak RSS', 'notes'],
        [raw.phase, `${raw.ms} ms`, `${raw.maxRssMiB} MiB`, `${raw.rows} rows`],
        [
          floor.phase,
          `${floor.ms} ms`,
          `${floor.maxRssMiB} MiB`,
          `${floor.items} lines + ${floor.records} records`,
        ],
        [
          recon.phase,
          `${recon.ms} ms`,
          `${recon.maxRssMiB} MiB`,
          `${round(ratio, 2)}× floor, ${round(recon.ms / raw.ms, 2)}× raw; index ${recon.indexMs} ms`,
        ],
        [
          report.phase,
          `${report.ms} ms`,
          `${report.maxRssMiB} MiB`,
          `${report.rows} rows, ${mib(report.bytes as number)} MiB`,
        ],
      ])}\n\n`,
    );
    process.stdout.write(
      `differences: ${recon.exceptions}/${recon.expectedExceptions} found, missed ${JSON.stringify(recon.missed)}, ` +
        `unexpected ${JSON.stringify(recon.unexpected)}; matched ${recon.matched} (expected ${recon.expectedMatched}) → ` +
        `${recon.ok ? 'OK' : 'WRONG'}\n` +
        `report RSS samples (MiB, every 10%): ${(report.rssSamplesMiB as number[]).join(' ')}\n` +
        `all runs (ms): ${results.map((r) => `${r.phase.split(' (')[0]} ${(r.allMs as number[]).join('/')}`).join('; ')}\n` +
        `machine: ${JSON.stringify(machineInfo())}, load average ${os
          .loadavg()
          .map((x) => x.toFixed(1))
          .join(' ')}\n`,
    );
    const json = tmpFile('paystep-bench-reconcile', 'json');
    fs.writeFileSync(
      json,
      JSON.stringify({ machine: machineInfo(), rows, inject, sizes, results, ratio }, null, 2),
    );
    process.stdout.write(`results: ${json}\n`);
    return recon.ok ? 0 : 1;
  } finally {
    if (!values.keep) fs.rmSync(dir, { recursive: true, force: true });
  }
}
