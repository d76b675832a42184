/**
 * `npm run bench -- console [--payments N] [--merchants M] [--runs R] [--only TEXT]`: server-side
 * render time of every GET screen of the ops console with N payments in the store (issue 13:
 * < 100 ms at p95 with 100,000). It starts a local runtime, seeds a month of traffic
 * (bench/console/seed.ts: N payments of every status over M merchants, reviews waiting, disputes
 * with deadlines, customers, subscriptions and invoices, reconciliation runs and exceptions, audit
 * entries, webhook events, an incident, a daily report) plus a few real payments through the API
 * (their workflow executions), waits until the stream consumers have caught up (`rt.settle`), then
 * calls each screen's route handler R times as the console's handler does (the operator signed in
 * and allowed) and reports p50/p95/max per screen, as an admin and as an operator limited to one
 * merchant where that reads differently.
 * stdout: one JSON object of results; progress and a table on stderr. docs/performance.md "Console".
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { routes } from '../lambdas/console/pages/index.ts';
import { can, type Operator, type Permission } from '../lambdas/console/model.ts';
import type { ConsoleRequest, ConsoleRoute } from '../lambdas/console/types.ts';
import { requestLedgerCheck } from '../lambdas/ledger/check-request.ts';
import { runReport } from '../lambdas/reports/daily.ts';
import { getLedgerCheck } from '../lambdas/store/ledger-check.ts';
import { clients } from '../lambdas/shared/aws.ts';
import { createMerchant } from '../lambdas/store/merchants.ts';
import { startRuntime, type Runtime } from '../lib/local/runtime.ts';
import { benchPaymentId, seedOthers, seedPayments, statusOf, type Seeded } from './console/seed.ts';
import { log, machineInfo, numberFlag, percentile, round, table } from './lib.ts';

const DAY = 86_400_000;
const USAGE = `usage: npm run bench -- console [flags]
  --payments N    payments seeded (default 100000)
  --merchants M   merchants they belong to (default 5)
  --runs R        timed renders per screen (default 30; 3 more warm up first)
  --only TEXT     measure only the screens whose label contains TEXT
  --data-dir DIR  keep the seeded store in DIR; a later run with the same DIR, --payments and
                  --merchants measures it again without seeding (e.g. after a code change)
  -h, --help      this text
stdout: JSON results; stderr: progress and a table.`;

interface Screen {
  label: string;
  op: Operator;
  url: string;
  /** Fewer runs for an on-demand whole-store action. */
  runs?: number;
}

/** The GET route for a console path, with its `{name}` values. */
function routeFor(pathname: string): { route: ConsoleRoute; params: Record<string, string> } {
  for (const route of routes) {
    if (route.method !== 'GET') continue;
    const names: string[] = [];
    const re = new RegExp(
      `^${route.path.replace(/\{(\w+)\}/g, (_, n: string) => (names.push(n), '([^/]+)'))}$`,
    );
    const m = re.exec(pathname);
    if (m)
      return { route, params: Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(m[i + 1]!)])) };
  }
  throw new Error(`no GET console route for ${pathname}`);
}

/** DynamoDB calls and items read (ScannedCount, GetItem's item, BatchGetItem's responses) so far. */
const reads = { calls: 0, items: 0 };
let counting = false;

/** Counts the DynamoDB reads of this process's client (the screens' and nothing else after settle). */
function countReads(): void {
  clients.ddb().middlewareStack.add(
    (next) => async (args) => {
      const out = await next(args);
      if (counting) {
        const o = out.output as {
          ScannedCount?: number;
          Item?: unknown;
          Responses?: Record<string, unknown[]>;
        };
        reads.calls++;
        reads.items +=
          o.ScannedCount ??
          (o.Item ? 1 : 0) + Object.values(o.Responses ?? {}).reduce((a, r) => a + r.length, 0);
      }
      return out;
    },
    { step: 'initialize', name: 'benchConsoleReads' },
  );
}

interface Result {
  p50: number;
  p95: number;
  max: number;
  /** DynamoDB calls and items read by one render. */
  ddbCalls: number;
  itemsRead: number;
}

async function measure(s: Screen, runs: number): Promise<Result> {
  const u = new URL(s.url, 'http://console.bench');
  const { route, params } = routeFor(u.pathname);
  if (!can(s.op.role, route.permission))
    throw new Error(`${s.label}: ${s.op.role} may not open ${u.pathname}`);
  const times: number[] = [];
  let ddbCalls = 0;
  let itemsRead = 0;
  for (let k = 0; k < runs + 3; k++) {
    const req: ConsoleRequest = {
      operator: s.op,
      method: 'GET',
      path: u.pathname,
      params,
      query: Object.fromEntries(u.searchParams),
      form: {},
      csrfToken: 'bench',
      htmx: false,
      now: Date.now(),
      requestId: `bench-${k}`,
      audit: async () => undefined,
    };
    if (k === 0) [reads.calls, reads.items, counting] = [0, 0, true];
    const t0 = performance.now();
    const res = await route.handler(req);
    if (k >= 3) times.push(performance.now() - t0); // the first runs warm the code up
    if (k === 0) [ddbCalls, itemsRead, counting] = [reads.calls, reads.items, false];
    if (k === 0 && 'status' in res && res.status && res.status >= 400)
      throw new Error(`${s.label}: ${u.pathname} answered ${res.status}`);
  }
  const sorted = [...times].sort((a, b) => a - b);
  return {
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    max: round(sorted.at(-1)!),
    ddbCalls,
    itemsRead,
  };
}

/** A few real payments through the API, so that the executions screens have workflows to show. */
async function realPayments(url: string, apiKey: string): Promise<string[]> {
  const methods = ['pm_card_visa', 'pm_card_visa_chargeDeclinedInsufficientFunds', 'pm_card_mastercard'];
  const ids: string[] = [];
  for (let k = 0; k < 12; k++) {
    const res = await fetch(`${url}/v1/payments`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${apiKey}`,
        'content-type': 'application/json',
        'idempotency-key': `bench-console-${k}`,
      },
      body: JSON.stringify({
        amount: 2000 + k,
        currency: 'usd',
        payment_method: methods[k % methods.length],
      }),
    });
    const body = (await res.json()) as { id?: string };
    if (res.status >= 300 || !body.id)
      throw new Error(`POST /v1/payments answered ${res.status}: ${JSON.stringify(body)}`);
    ids.push(body.id);
  }
  return ids;
}

/** What a seeded store holds, kept beside it with --data-dir. */
interface Marker {
  payments: number;
  merchants: string[];
  seededAt: string;
  seconds: { payments: number; total_with_settle: number };
  seeded: Seeded;
  executed: string[];
  reportKey: string;
}

/** What the runtime holds while it catches up: the stream backlog, queue messages and memory. */
function backlog(rt: Runtime): string {
  const records = rt.dynamo
    .streamStats()
    .reduce((n, s) => n + s.shards.reduce((k, sh) => k + sh.pending, 0), 0);
  const m = process.memoryUsage();
  const mib = (n: number) => Math.round(n / 1_048_576);
  return `stream backlog ${records} records, ${rt.queues.memoryStats().messages} queue messages, heap ${mib(m.heapUsed)} MB, RSS ${mib(m.rss)} MB`;
}

const LEDGER_SCREEN = 'finance: ledger (latest check)';

/**
 * The ledger page shows the latest invariant check, run in the background: one run, requested as
 * the console requests it and run by the ledger-checks queue's consumer, before the screens are
 * measured (its reads are not the page's).
 */
async function runLedgerCheckOnce(rt: Runtime): Promise<void> {
  const started = Date.now();
  const { state } = await requestLedgerCheck('bench');
  await rt.settle(30 * 60_000);
  const done = await getLedgerCheck();
  if (done?.status !== 'finished' || done.request_id !== state.request_id)
    throw new Error(`the ledger check did not finish: ${done?.status ?? 'never ran'}`);
  log(
    `ledger check (background job) finished in ${round((Date.now() - started) / 1000)} s: ` +
      `${done.result!.entries} entries, ${done.result!.ok ? 'holds' : 'BROKEN'}`,
  );
}

/** `rt.settle` with a progress line every 30 s (the catch-up after seeding 100,000 takes a while). */
async function settleWithProgress(rt: Runtime, timeoutMs: number): Promise<void> {
  const started = Date.now();
  const timer = setInterval(
    () => log(`settling (${round((Date.now() - started) / 1000)} s): ${backlog(rt)}`),
    30_000,
  );
  try {
    await rt.settle(timeoutMs);
  } finally {
    clearInterval(timer);
  }
}

async function seed(rt: Runtime, total: number, merchantCount: number): Promise<Marker> {
  const merchants: { id: string; apiKey: string }[] = [];
  for (let m = 0; m < merchantCount; m++) {
    const { merchant, apiKey } = await createMerchant(`Bench ${m}`);
    merchants.push({ id: merchant.id, apiKey });
  }
  const ids = merchants.map((m) => m.id);
  const now = Date.now();
  const started = Date.now();
  await seedPayments(ids, total, now, (n) =>
    log(`seeded ${n}/${total} payments (${round((Date.now() - started) / 1000)} s); ${backlog(rt)}`),
  );
  const paymentsSeconds = round((Date.now() - started) / 1000);
  log(`seeded ${total} payments in ${paymentsSeconds} s; seeding the rest`);
  const seeded = await seedOthers(ids, total, now);
  const executed = await realPayments(rt.url!, merchants[0]!.apiKey);
  // Measured once the stream consumers (merchant events, ledger, reference index) have caught up.
  await settleWithProgress(rt, 3 * 3_600_000);
  const today = new Date(now).toISOString().slice(0, 10);
  const [report] = await runReport('summary', today, { merchant: ids[0] });
  await rt.settle(10 * 60_000);
  const seconds = { payments: paymentsSeconds, total_with_settle: round((Date.now() - started) / 1000) };
  log(`seeded and settled in ${seconds.total_with_settle} s`);
  return {
    payments: total,
    merchants: ids,
    seededAt: new Date(now).toISOString(),
    seconds,
    seeded,
    executed,
    reportKey: report?.files.find((f) => f.endsWith('.csv')) ?? '',
  };
}

const loadavg = () => os.loadavg().map((l) => round(l, 2));

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        payments: { type: 'string', default: '100000' },
        merchants: { type: 'string', default: '5' },
        runs: { type: 'string', default: '30' },
        only: { type: 'string' },
        'data-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stderr.write(`${USAGE}\n`);
    return 0;
  }
  let total: number, merchantCount: number, runs: number;
  try {
    total = numberFlag('payments', values.payments, 1000, 10_000_000, true);
    merchantCount = numberFlag('merchants', values.merchants, 1, 1000, true);
    runs = numberFlag('runs', values.runs, 1, 100_000, true);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  const loadStart = loadavg();
  const keep = values['data-dir'];
  const dir = keep ? path.resolve(keep) : fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-bench-console-'));
  const markerFile = path.join(dir, 'bench-console.json');
  let marker: Marker | undefined;
  if (keep && fs.existsSync(dir) && fs.readdirSync(dir).length > 0) {
    try {
      marker = JSON.parse(fs.readFileSync(markerFile, 'utf8')) as Marker;
    } catch {
      process.stderr.write(`--data-dir: ${dir} exists but holds no seeded console benchmark store\n`);
      return 2;
    }
    if (marker.payments !== total || marker.merchants.length !== merchantCount) {
      process.stderr.write(
        `--data-dir: ${dir} holds ${marker.payments} payments over ${marker.merchants.length} merchants, not ${total} over ${merchantCount}\n`,
      );
      return 2;
    }
  }
  process.env.PAYSTEP_LOG_LEVEL ??= 'silent';
  process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN'; // the handlers' INFO lines would mix with the JSON on stdout
  const startedAt = performance.now();
  const rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 1000, scheduler: false });
  const startSeconds = round((performance.now() - startedAt) / 1000);
  try {
    if (marker) {
      log(
        `measuring the store seeded in ${dir} at ${marker.seededAt}; the runtime started in ${startSeconds} s, ${backlog(rt)}`,
      );
      await settleWithProgress(rt, 3 * 3_600_000);
    } else {
      marker = await seed(rt, total, merchantCount);
      if (keep) fs.writeFileSync(markerFile, `${JSON.stringify(marker)}\n`);
    }
    if (!values.only || LEDGER_SCREEN.includes(values.only)) await runLedgerCheckOnce(rt);
    const { seeded, executed, reportKey } = marker;
    const ids = marker.merchants;
    const now = Date.parse(marker.seededAt);
    const today = new Date(now).toISOString().slice(0, 10);
    const admin: Operator = { id: 'op_bench_admin', name: 'ann', role: 'admin', created: 0 };
    /** An operator limited to merchant 0: support where support may open the screen. */
    const limited = (permission: Permission): Operator => ({
      id: 'op_bench_limited',
      name: 'sam',
      role: (['support', 'finance', 'admin'] as const).find((r) => can(r, permission))!,
      merchant_id: ids[0]!,
      created: 0,
    });
    const support = limited('payments.read');
    const mid = Math.floor(total / 2);
    const ofMerchant0 = (i: number) => i - (i % merchantCount);
    const weekAgo = new Date(now - 7 * DAY).toISOString().slice(0, 10);
    let failed = mid;
    while (statusOf(failed) !== 'failed') failed++;
    const screens: Screen[] = [
      { label: 'home', op: admin, url: '/' },
      { label: 'home (limited)', op: support, url: '/' },
      { label: 'payments: search by id', op: admin, url: `/payments?q=${benchPaymentId(mid)}` },
      { label: 'payments: search by order id', op: admin, url: `/payments?q=ORDER-${mid}` },
      {
        label: 'payments: search by email',
        op: admin,
        url: `/payments?q=customer${mid % 20_000}@example.com`,
      },
      {
        label: 'payments: search by processor reference',
        op: admin,
        url: `/payments?q=pi_bench${mid - (mid % 3) + 1}`,
      },
      { label: 'payments: list', op: admin, url: '/payments' },
      { label: 'payments: list by status (failed)', op: admin, url: '/payments?status=failed' },
      {
        label: 'payments: list by status (pending_review)',
        op: admin,
        url: '/payments?status=pending_review',
      },
      { label: 'payments: list by date range', op: admin, url: `/payments?from=${weekAgo}&to=${today}` },
      { label: 'payments: list (limited)', op: support, url: '/payments' },
      { label: 'payments: list by status (limited)', op: support, url: '/payments?status=charged_back' },
      {
        label: 'payments: search by email (limited)',
        op: support,
        url: `/payments?q=customer${ofMerchant0(mid) % 20_000}@example.com`,
      },
      { label: 'payment page', op: admin, url: `/payments/${benchPaymentId(mid)}` },
      { label: 'payment page (failed)', op: admin, url: `/payments/${benchPaymentId(failed)}` },
      { label: 'payment page (disputed)', op: admin, url: `/payments/${seeded.disputedPaymentId}` },
      { label: 'payment page (with workflow)', op: admin, url: `/payments/${executed[0]}` },
      { label: 'payment page (limited)', op: support, url: `/payments/${benchPaymentId(ofMerchant0(mid))}` },
      { label: 'executions', op: admin, url: '/executions' },
      { label: 'executions (failed)', op: admin, url: '/executions?machine=payment&status=failed' },
      { label: 'executions (limited)', op: support, url: '/executions' },
      { label: 'execution page', op: admin, url: `/executions/${executed[0]}` },
      { label: 'reviews', op: admin, url: '/reviews' },
      { label: 'reviews (limited)', op: support, url: '/reviews' },
      { label: 'disputes', op: admin, url: '/disputes' },
      { label: 'disputes (limited)', op: support, url: '/disputes' },
      { label: 'dispute page', op: admin, url: `/disputes/${seeded.disputeId}` },
      { label: 'processors', op: admin, url: '/processors' },
      { label: 'processors: routing', op: admin, url: '/processors/routing' },
      { label: 'processors: incident', op: admin, url: `/processors/incidents/${seeded.incidentId}` },
      {
        label: 'processors: incident report',
        op: admin,
        url: `/processors/incidents/${seeded.resolvedIncidentId}/report`,
      },
      { label: 'subscriptions (merchant chosen)', op: admin, url: `/subscriptions?merchant=${ids[0]}` },
      {
        label: 'subscriptions (past_due)',
        op: admin,
        url: `/subscriptions?merchant=${ids[0]}&status=past_due`,
      },
      { label: 'subscriptions (limited)', op: support, url: '/subscriptions' },
      { label: 'finance', op: admin, url: '/finance' },
      { label: 'finance (limited)', op: limited('reconciliation.read'), url: '/finance' },
      { label: 'finance: reports', op: admin, url: `/finance/reports?owner=${ids[0]}` },
      {
        label: 'finance: report preview',
        op: admin,
        url: `/finance/reports/preview?key=${encodeURIComponent(reportKey)}`,
      },
      {
        label: 'finance: report download',
        op: admin,
        url: `/finance/reports/download?key=${encodeURIComponent(reportKey)}`,
      },
      { label: 'finance: ledger', op: admin, url: '/finance/ledger' },
      // After a finished check (run above through its queue): the page reads the one stored result.
      { label: LEDGER_SCREEN, op: admin, url: '/finance/ledger' },
      { label: 'analytics', op: admin, url: '/analytics' },
      { label: 'analytics (limited)', op: support, url: '/analytics' },
      { label: 'audit', op: admin, url: '/audit' },
      { label: 'audit (limited)', op: limited('audit.read'), url: '/audit' },
      { label: 'audit: by operator', op: admin, url: '/audit?operator=ann' },
      {
        label: 'audit: by object',
        op: admin,
        url: `/audit?target_kind=payment&target_id=${benchPaymentId(31)}`,
      },
    ].filter((s) => !values.only || s.label.includes(values.only));
    if (!screens.length) {
      process.stderr.write(`--only: no screen's label contains '${values.only}'\n`);
      return 2;
    }
    countReads();
    const results: Record<string, Result & { runs: number }> = {};
    const failures: Record<string, string> = {};
    for (const s of screens) {
      const n = Math.min(runs, s.runs ?? runs);
      try {
        results[s.label] = { ...(await measure(s, n)), runs: n };
      } catch (err) {
        failures[s.label] = (err as Error).message;
        log(`${s.label}: FAILED: ${(err as Error).message}`);
        continue;
      }
      const r = results[s.label]!;
      log(
        `${s.label}: p50 ${r.p50} ms, p95 ${r.p95} ms, ${r.ddbCalls} DynamoDB calls, ${r.itemsRead} items read`,
      );
    }
    const loadEnd = loadavg();
    log(
      `\n${table([
        ['screen', 'p50 ms', 'p95 ms', 'max ms', 'DynamoDB calls', 'items read'],
        ...Object.entries(results).map(([k, r]) => [k, r.p50, r.p95, r.max, r.ddbCalls, r.itemsRead]),
      ])}\nload average (1, 5, 15 min): ${loadStart.join(', ')} at start, ${loadEnd.join(', ')} at end`,
    );
    process.stdout.write(
      `${JSON.stringify({
        payments: total,
        merchants: merchantCount,
        runs,
        seeded: { ...seeded.counts, payments: total, workflow_payments: executed.length },
        seeded_at: marker.seededAt,
        seeding_seconds: marker.seconds,
        runtime_start_seconds: startSeconds,
        machine: machineInfo(),
        load: { start: loadStart, end: loadEnd },
        results,
        ...(Object.keys(failures).length ? { failures } : {}),
      })}\n`,
    );
    return Object.keys(failures).length ? 1 : 0;
  } finally {
    await rt.stop();
    if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  }
}
