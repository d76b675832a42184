/**
 * The runtime part of `npm run bench:billing` (docs/billing.md "Benchmark"): `subscriptions`
 * customers (pm_card_visa) on one plan, each billed `periods` periods on the local runtime (in this
 * process) with time compressed.
 *
 * - Load: every subscription bills one period per scaled period, so the demand is subscriptions ×
 *   time scale / period length payments per second, whatever the runtime can do. Above its capacity
 *   every period waits in line and processor calls time out (payments flagged for attention,
 *   invoices left waiting): `rate` picks the time scale that asks for that many payments per
 *   second instead of a fixed `timeScale`.
 * - Progress costs next to nothing: period n+1's execution (`<sub>-p<n+1>`) starts only once period
 *   n's invoice is paid, so a subscription is done when `<sub>-p<periods>` exists; the runtime is
 *   asked in memory (no AWS call, no table read). The invoices are read once, at the end.
 * - Counted: the invoices of periods 0…periods-1 and their payments (periods billed after them,
 *   while the subscriptions are canceled, are not counted); two checks that must be 0: invoices
 *   with more than one captured payment, attempts with more than one payment.
 * - A stall (no period paid for `stallSeconds`) or `timeoutSeconds` ends the run with the
 *   unfinished subscriptions listed (what their current invoice and payment wait on).
 * - `calls`: AWS calls and Lambda invocations per paid invoice, by function (bench/checkout/probes.ts);
 *   `cpuProf`: a V8 CPU profile of this process during billing, summarised.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ServerStats } from './checkout/probes.ts';
import { log, round, summarizeCpuProfile, table } from './lib.ts';

export interface BillingRunOptions {
  subscriptions: number;
  periods: number;
  interval: 'day' | 'week' | 'month';
  /** Real seconds = simulated seconds / timeScale. */
  timeScale: number;
  calls: boolean;
  cpuProf?: string;
  /** How many subscription requests at once while creating them. */
  concurrency?: number;
  stallSeconds?: number;
  /** Ends the run after this long (seconds from the first subscription), listing the unfinished. */
  timeoutSeconds?: number;
}

const PERIOD_SECONDS = { day: 86_400, week: 7 * 86_400, month: 30.44 * 86_400 } as const;

/** The time scale at which `subscriptions` subscriptions ask for `rate` payments per second. */
export const timeScaleFor = (rate: number, subscriptions: number, interval: keyof typeof PERIOD_SECONDS) =>
  Math.max(1, Math.round((rate * PERIOD_SECONDS[interval]) / subscriptions));

export interface BillingRunResult {
  subscriptions: number;
  invoicesPaid: number;
  invoicesExpected: number;
  payments: number;
  wall: number;
  createSeconds: number;
  chargedTwice: number;
  duplicatesAttempt: number;
  stalled: string[];
}

export async function billingRun(o: BillingRunOptions): Promise<BillingRunResult> {
  // Set before the handlers' modules load (their loggers read the level once).
  process.env.PAYSTEP_LOG_LEVEL ??= 'silent';
  process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
  // Time is compressed; the risk screen's velocity rule counts payments per real hour.
  process.env.PAYSTEP_RISK_VELOCITY_LIMIT = '1000000000';
  const { startRuntime } = await import('../lib/local/runtime.ts');
  const { createMerchant } = await import('../lambdas/store/merchants.ts');
  const { merchantInvoices, getInvoice } = await import('../lambdas/store/invoices.ts');
  const { getPayment } = await import('../lambdas/store/payments.ts');
  const { queryPages } = await import('../lambdas/store/pages.ts');
  const { config } = await import('../lambdas/shared/config.ts');
  const { clients } = await import('../lambdas/shared/aws.ts');
  const { periodExecutionName } = await import('../lambdas/billing/charging.ts');
  const { periodInvoiceId } = await import('../lambdas/billing/model.ts');
  const { installProbes } = await import('./checkout/probes.ts');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-bench-billing-'));
  const rt = await startRuntime({ dataDir: dir, port: 0, timeScale: o.timeScale, scheduler: false });
  const stats = o.calls ? installProbes(rt, clients) : undefined;
  const execArn = (name: string) =>
    `${config.stateMachineArn('billing').replace(':stateMachine:', ':execution:')}:${name}`;
  /** Whether the execution exists (running or finished): asked of the runtime in memory. */
  const started = (name: string) => {
    try {
      rt.stepFunctions.describeExecution({ executionArn: execArn(name) });
      return true;
    } catch {
      return false;
    }
  };
  try {
    const m = await createMerchant('Bench');
    const post = async (p: string, body: unknown) => {
      const res = await fetch(`${rt.url}${p}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${m.apiKey}`,
          'content-type': 'application/json',
          'idempotency-key': randomUUID(),
        },
        body: JSON.stringify(body),
      });
      const out = (await res.json()) as { id: string };
      if (res.status >= 300) throw new Error(`POST ${p}: ${res.status} ${JSON.stringify(out)}`);
      return out;
    };
    const plan = await post('/v1/plans', {
      name: 'Bench',
      amount: 1000,
      currency: 'usd',
      interval: o.interval,
    });
    const t0 = Date.now();
    const subs: string[] = [];
    let made = 0;
    await Promise.all(
      Array.from({ length: o.concurrency ?? 16 }, async () => {
        while (made < o.subscriptions) {
          made++;
          const cus = await post('/v1/customers', { payment_method: 'pm_card_visa' });
          subs.push((await post('/v1/subscriptions', { customer: cus.id, plan: plan.id })).id);
          if (subs.length % 500 === 0) log(`${subs.length} subscriptions`);
        }
      }),
    );
    const createSeconds = (Date.now() - t0) / 1000;
    log(`${subs.length} subscriptions in ${round(createSeconds)} s; billing ${o.periods} periods…`);
    const before = stats?.(true);
    const tBill = Date.now();
    const profiler = o.cpuProf ? await startProfiler() : undefined;
    // Period reached per subscription: period k is paid once `<sub>-p<k+1>` exists.
    const reached = new Map(subs.map((s) => [s, 0]));
    let lastProgress = Date.now();
    let stalled: string[] = [];
    for (;;) {
      let moved = false;
      let paid = 0;
      for (const [s, k0] of reached) {
        let k = k0;
        while (k < o.periods && started(periodExecutionName(s, k + 1))) k++;
        if (k !== k0) {
          moved = true;
          reached.set(s, k);
        }
        paid += k;
      }
      process.stderr.write(`\r${paid}/${subs.length * o.periods} invoices paid`);
      if (paid >= subs.length * o.periods) break;
      if (moved) lastProgress = Date.now();
      if (
        Date.now() - lastProgress > (o.stallSeconds ?? 120) * 1000 ||
        (o.timeoutSeconds !== undefined && Date.now() - t0 > o.timeoutSeconds * 1000)
      ) {
        stalled = [...reached].filter(([, k]) => k < o.periods).map(([s]) => s);
        break;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    const wall = (Date.now() - t0) / 1000;
    const billSeconds = (Date.now() - tBill) / 1000;
    process.stderr.write('\n');
    if (profiler) printProfileSummary(await profiler.stop(o.cpuProf!));
    const after = stats?.();
    if (before && after) printCalls(before, after, subs.length * o.periods, billSeconds);
    for (const s of stalled.slice(0, 10)) {
      const inv = await getInvoice(periodInvoiceId(s, reached.get(s)!));
      const p = inv?.payment ? await getPayment(inv.payment) : undefined;
      log(
        `unfinished: ${s} period ${reached.get(s)}: invoice ${inv?.status ?? 'missing'}, attempt ${inv?.attempt_count ?? '-'}, ` +
          `payment ${p ? `${p.id} ${p.status}${(p as { needs_attention?: boolean }).needs_attention ? ' (needs attention)' : ''}` : '-'}`,
      );
    }
    // Cancel (periods after the counted ones go on until then), a few at a time.
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < subs.length) await post(`/v1/subscriptions/${subs[next++]}/cancel`, {});
      }),
    );
    // The counted invoices, read once.
    const counted = new Set<string>();
    for (const s of subs) for (let k = 0; k < o.periods; k++) counted.add(periodInvoiceId(s, k));
    const { invoices } = await merchantInvoices(m.merchant.id, 100_000_000);
    const invoicesPaid = invoices.filter((i) => counted.has(i.id) && i.status === 'paid').length;
    // No invoice charged twice: captured payments per invoice, and one payment per attempt.
    const captured = new Map<string, number>();
    const attempts = new Set<string>();
    let payments = 0;
    let duplicatesAttempt = 0;
    for await (const p of queryPages({
      TableName: config.tableName('main'),
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :pk',
      ExpressionAttributeValues: { ':pk': `MERCHANT#${m.merchant.id}#PAYMENTS` },
    })) {
      const meta = p.metadata as Record<string, string>;
      const k = `${meta.invoice}#${meta.attempt}`;
      if (attempts.has(k)) duplicatesAttempt++;
      attempts.add(k);
      if (p.status === 'captured') captured.set(meta.invoice!, (captured.get(meta.invoice!) ?? 0) + 1);
      if (counted.has(meta.invoice!)) payments++;
    }
    return {
      subscriptions: subs.length,
      invoicesPaid,
      invoicesExpected: subs.length * o.periods,
      payments,
      wall,
      createSeconds,
      chargedTwice: [...captured.values()].filter((n) => n > 1).length,
      duplicatesAttempt,
      stalled,
    };
  } finally {
    await rt.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** V8's sampling profiler on this process (the runtime and the bench), for the billing phase. */
async function startProfiler() {
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 500 });
  await session.post('Profiler.start');
  return {
    async stop(file: string): Promise<string> {
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      fs.writeFileSync(file, JSON.stringify(profile));
      return file;
    },
  };
}

function printProfileSummary(file: string): void {
  const p = summarizeCpuProfile(file, 20);
  log(
    `CPU profile (${file}, ${p.totalMs} ms of samples, idle excluded)\n` +
      table([
        ['component (self time)', 'ms', '%'],
        ...p.components.slice(0, 15).map((c) => [c.component, c.ms, c.share]),
      ]) +
      '\n' +
      table([
        ['function (inclusive, project and packages)', 'where', 'ms', '%'],
        ...p.inclusiveFunctions.slice(0, 30).map((f) => [f.fn, f.where, f.ms, f.share]),
      ]),
  );
}

function printCalls(before: ServerStats, after: ServerStats, invoices: number, seconds: number): void {
  const per = (d: number) => round(d / invoices, 2);
  const calls = Object.entries(after.sdkByFunction)
    .map(([k, v]) => [k, v.count - (before.sdkByFunction[k]?.count ?? 0)] as const)
    .filter(([, d]) => d > 0)
    .sort((a, b) => b[1] - a[1]);
  const total = calls.reduce((n, [, d]) => n + d, 0);
  const lambdas = Object.entries(after.lambdas)
    .map(([k, v]) => [k, v - (before.lambdas[k] ?? 0)] as const)
    .filter(([, d]) => d > 0)
    .sort((a, b) => b[1] - a[1]);
  const cpu = (after.cpuUs.user + after.cpuUs.system - before.cpuUs.user - before.cpuUs.system) / 1e6;
  log(
    `billing: ${round(seconds)} s, process CPU ${round(cpu)} s (all threads; ${round((cpu * 1000) / invoices, 1)} ms per invoice), ` +
      `${per(total)} AWS calls per invoice\n` +
      table([
        ['AWS calls per paid invoice (function, call)', 'calls'],
        ...calls.map(([k, d]) => [k, per(d)]),
      ]) +
      '\n' +
      table([['Lambda invocations per paid invoice', 'n'], ...lambdas.map(([k, d]) => [k, per(d)])]),
  );
}
