/**
 * `npm run bench:routing` — routing, failover and the circuit breaker (docs/routing.md,
 * docs/performance.md "Routing").
 *
 * 1. Decision (in-process, no I/O): `decideRoute` on a three-rule configuration for
 *    `--decisions` payments of varied facts; per-call latency p50/p99/max.
 * 2. Split (in-process): `--split-payments` new payment ids through a 70/30 split rule; each
 *    processor's share and its distance from the weight, in percentage points.
 * 3. Split end to end (local runtime): `--e2e-split` payments through the same rule via
 *    POST /v1/payments; the processor each one ended on must be the one the decision named.
 * 4. Outage (local runtime, circuit breaker on): routing `stripe, adyen`; after a warm-up,
 *    Stripe's API refuses connections (simulator fault `down`); `--outage-payments` payments from
 *    `--concurrency` clients. Success rate (every one of them Adyen can take), payments that tried
 *    Stripe first, the time from the fault to the breaker opening, and payments still sent to
 *    Stripe first after it opened.
 * 5. Unknown outcomes (local runtime): Stripe's `timeout-after-processing` on a share
 *    (`--timeout-rate`) of requests, `--timeout-payments` payments: every payment's authorizations
 *    as each processor's own records show them; a payment authorized at both is a double
 *    authorization (the count must be 0).
 *
 * Results: a table on stdout, progress on stderr, JSON in os.tmpdir() (path printed).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { bar, fmtMs, log, machineInfo, numberFlag, Progress, round, summarize, table } from './lib.ts';

const USAGE = `usage: npm run bench:routing -- [--decisions N] [--split-payments N] [--e2e-split N]
  [--outage-payments N] [--timeout-payments N] [--timeout-rate R] [--concurrency N]`;

const SPLIT_RULE = {
  name: 'split-70-30',
  when: { currency: ['usd'] },
  split: { adyen: 70, stripe: 30 },
  fallback: ['adyen', 'stripe'],
};

const CONFIG = {
  rules: [
    { name: 'eur-to-adyen', when: { currency: ['eur'] }, processors: ['adyen', 'stripe'] },
    {
      name: 'big-us',
      when: { customer_country: ['US'], amount_gte: 100000 },
      split: { stripe: 70, adyen: 30 },
      fallback: ['stripe', 'adyen'],
    },
    {
      name: 'vip',
      when: { metadata: { tier: ['gold', 'platinum'] }, card_brand: ['visa'] },
      processors: ['stripe'],
    },
  ],
  default: ['stripe', 'adyen'],
};

interface Args {
  decisions: number;
  splitPayments: number;
  e2eSplit: number;
  outagePayments: number;
  timeoutPayments: number;
  timeoutRate: number;
  concurrency: number;
}

/** Runs `n` jobs on `concurrency` workers, with a progress bar. */
async function pool(label: string, n: number, concurrency: number, job: (i: number) => Promise<void>) {
  const progress = new Progress();
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) {
        const i = next++;
        await job(i);
        done++;
        if (done % 10 === 0 || done === n) progress.update(`${label} ${bar(done / n)} ${done}/${n}`);
      }
    }),
  );
  progress.done();
}

async function inProcess(a: Args) {
  const { decideRoute, validateRoutingConfig } = await import('../lambdas/domain/routing.ts');
  const { newId } = await import('../lambdas/shared/ids.ts');
  const ctx = {
    known: ['stripe', 'adyen'],
    enabled: ['stripe', 'adyen'],
    cannotTakeCurrency: () => undefined,
    failureCodes: new Map(),
  };
  const parsed = validateRoutingConfig({ ...CONFIG, rules: [...CONFIG.rules, SPLIT_RULE] }, ctx);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  const config = parsed.config;
  const route = { enabled: ['stripe', 'adyen'], merchantOrder: [] as string[] };

  // 1. Decision latency over varied facts.
  const currencies = ['usd', 'eur', 'gbp', 'usd'];
  const facts = Array.from({ length: 1000 }, (_, i) => ({
    id: newId('pay'),
    amount: (i * 7919) % 250_000,
    currency: currencies[i % 4]!,
    customerCountry: i % 3 ? 'US' : 'FR',
    cardBrand: i % 2 ? 'visa' : 'mastercard',
    metadata: (i % 5 ? {} : { tier: 'gold' }) as Record<string, string>,
  }));
  for (let i = 0; i < 20_000; i++) decideRoute(config, facts[i % 1000]!, route); // warm up
  const times = new Float64Array(a.decisions);
  for (let i = 0; i < a.decisions; i++) {
    const t = performance.now();
    decideRoute(config, facts[i % 1000]!, route);
    times[i] = performance.now() - t;
  }
  const decision = summarize(times);

  // 2. The split over new payment ids.
  const counts: Record<string, number> = { adyen: 0, stripe: 0 };
  for (let i = 0; i < a.splitPayments; i++) {
    const d = decideRoute(config, { id: newId('pay'), amount: 1000, currency: 'usd' }, route);
    counts[d.processors[0]!]!++;
  }
  const share = (p: string) => (100 * counts[p]!) / a.splitPayments;
  const split = {
    payments: a.splitPayments,
    adyen_pct: round(share('adyen'), 2),
    stripe_pct: round(share('stripe'), 2),
    max_deviation_pp: round(Math.max(Math.abs(share('adyen') - 70), Math.abs(share('stripe') - 30)), 2),
  };
  return { decision, split };
}

async function startPlatform(breaker: boolean) {
  process.env.PAYSTEP_LOG_LEVEL ??= 'silent';
  process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
  process.env.PAYSTEP_RISK_VELOCITY_LIMIT = '1000000000';
  process.env.PAYSTEP_CIRCUIT_BREAKER = breaker ? 'on' : 'off';
  process.env.PAYSTEP_PROCESSOR_TIMEOUT_MS = '500';
  const { startRuntime } = await import('../lib/local/runtime.ts');
  const { createMerchant } = await import('../lambdas/store/merchants.ts');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-bench-routing-'));
  const rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 100, scheduler: false });
  const m = await createMerchant('Bench routing');
  const call = async (method: string, p: string, body?: unknown) => {
    const res = await fetch(`${rt.url}${p}`, {
      method,
      headers: {
        authorization: `Bearer ${m.apiKey}`,
        'content-type': 'application/json',
        ...(method === 'POST' ? { 'idempotency-key': randomUUID() } : {}),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    return (await res.json()) as Record<string, any>;
  };
  /** POST /v1/payments, then waits until it is decided; the payment. */
  const pay = async (body: Record<string, unknown>) => {
    const created = await call('POST', '/v1/payments', { payment_method: 'pm_card_visa', ...body });
    let p = created;
    for (let i = 0; p.status === 'processing' && i < 3000; i++) {
      await new Promise((r) => setTimeout(r, 20));
      p = await call('GET', `/v1/payments/${created.id}`);
    }
    return p;
  };
  const stop = async () => {
    await rt.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { rt, call, pay, stop };
}

async function endToEndSplit(a: Args) {
  const { decideRoute } = await import('../lambdas/domain/routing.ts');
  const { rt, call, pay, stop } = await startPlatform(false);
  try {
    const put = await call('PUT', '/v1/routing', { rules: [SPLIT_RULE], default: ['stripe', 'adyen'] });
    const cfg = put.config;
    let agree = 0;
    const ended: Record<string, number> = { adyen: 0, stripe: 0 };
    await pool('split end to end', a.e2eSplit, a.concurrency, async () => {
      const p = await pay({ amount: 1000, currency: 'usd' });
      const want = decideRoute(
        cfg,
        { id: p.id, amount: 1000, currency: 'usd' },
        { enabled: ['stripe', 'adyen'], merchantOrder: [] },
      ).processors[0];
      if (p.status === 'captured' && p.processor === want) agree++;
      ended[p.processor] = (ended[p.processor] ?? 0) + 1;
    });
    void rt;
    return {
      payments: a.e2eSplit,
      followed_decision: agree,
      adyen_pct: round((100 * (ended.adyen ?? 0)) / a.e2eSplit, 1),
    };
  } finally {
    await stop();
  }
}

async function outage(a: Args) {
  const { processorStatuses } = await import('../lambdas/processors/health.ts');
  const { runningIncident } = await import('../lambdas/store/incidents.ts');
  const { DEFAULT_BREAKER_POLICY } = await import('../lambdas/domain/processor-health.ts');
  const { rt, call, pay, stop } = await startPlatform(true);
  try {
    await call('PUT', '/v1/routing', { default: ['stripe', 'adyen'] });
    await pool('warm-up', 20, a.concurrency, async () => void (await pay({ amount: 1500, currency: 'usd' })));
    rt.stripe!.faults.set({ downRate: 1 });
    await rt.stripe!.doorSettled();
    const faultAt = Date.now();
    const results: { ok: boolean; triedStripe: boolean; startedAt: number }[] = [];
    await pool('Stripe down', a.outagePayments, a.concurrency, async () => {
      const startedAt = Date.now();
      const p = await pay({ amount: 1500, currency: 'usd' });
      results.push({
        ok: p.status === 'captured' && p.processor === 'adyen',
        triedStripe: (p.attempts ?? []).some((x: { processor: string }) => x.processor === 'stripe'),
        startedAt,
      });
    });
    const stripe = (await processorStatuses()).find((s) => s.name === 'stripe')!;
    // The breaker's `since` is its latest change (it may have reopened after a half-open probe);
    // the suspected incident it opened on first tripping dates the first opening.
    const incident = await runningIncident('stripe');
    const openedAt =
      incident?.opened_at ?? (stripe.breaker.state === 'closed' ? undefined : stripe.breaker.since);
    rt.stripe!.faults.reset();
    const succeeded = results.filter((r) => r.ok).length;
    return {
      payments: results.length,
      succeeded,
      success_pct: round((100 * succeeded) / results.length, 2),
      tried_stripe_first: results.filter((r) => r.triedStripe).length,
      breaker: stripe.breaker.state,
      incident: incident ? { id: incident.id, status: incident.status } : null,
      fault_to_breaker_open_ms: openedAt === undefined ? null : openedAt - faultAt,
      // While open (from 2 s after it opened, the payments already on their way, until the cooldown
      // makes it half-open and probes may try Stripe again) no payment should try Stripe first.
      tried_stripe_while_open:
        openedAt === undefined
          ? null
          : results.filter(
              (r) =>
                r.triedStripe &&
                r.startedAt > openedAt + 2000 &&
                r.startedAt < openedAt + DEFAULT_BREAKER_POLICY.cooldownMs,
            ).length,
      probes_after_cooldown:
        openedAt === undefined
          ? null
          : results.filter(
              (r) => r.triedStripe && r.startedAt >= openedAt + DEFAULT_BREAKER_POLICY.cooldownMs,
            ).length,
    };
  } finally {
    await stop();
  }
}

async function unknownOutcomes(a: Args) {
  const { rt, call, pay, stop } = await startPlatform(false);
  try {
    await call('PUT', '/v1/routing', { default: ['stripe', 'adyen'] });
    rt.stripe!.faults.set({ timeoutRate: a.timeoutRate });
    const ids: string[] = [];
    const statuses: Record<string, number> = {};
    await pool('timeout-after-processing', a.timeoutPayments, a.concurrency, async () => {
      const p = await pay({ amount: 2100, currency: 'usd' });
      ids.push(p.id);
      statuses[p.status] = (statuses[p.status] ?? 0) + 1;
    });
    rt.stripe!.faults.reset();
    // Each processor's own record of what it authorized, by paystep payment id.
    const atStripe = new Set(
      rt
        .stripe!.objectsWhere('payment_intent', 'object', 'payment_intent')
        .filter((pi) => ['succeeded', 'requires_capture', 'processing'].includes(pi.status as string))
        .map((pi) => (pi.metadata as Record<string, string>).paystep_payment_id),
    );
    const atAdyen = new Set(
      rt
        .adyen!.paymentRecords()
        .filter((p) => p.status === 'authorised')
        .map((p) => p.merchantReference),
    );
    const double = ids.filter((id) => atStripe.has(id) && atAdyen.has(id)).length;
    return {
      payments: ids.length,
      timeout_rate: a.timeoutRate,
      statuses,
      authorized_at_stripe: ids.filter((id) => atStripe.has(id)).length,
      authorized_at_adyen: ids.filter((id) => atAdyen.has(id)).length,
      double_authorizations: double,
    };
  } finally {
    await stop();
  }
}

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        decisions: { type: 'string', default: '100000' },
        'split-payments': { type: 'string', default: '10000' },
        'e2e-split': { type: 'string', default: '200' },
        'outage-payments': { type: 'string', default: '300' },
        'timeout-payments': { type: 'string', default: '200' },
        'timeout-rate': { type: 'string', default: '0.3' },
        concurrency: { type: 'string', default: '8' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    log(`bench:routing: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    log(USAGE);
    return 0;
  }
  const num = numberFlag;
  let a: Args;
  try {
    a = {
      decisions: num('decisions', values.decisions, 1000, 10_000_000),
      splitPayments: num('split-payments', values['split-payments'], 100, 10_000_000),
      e2eSplit: num('e2e-split', values['e2e-split'], 0, 100_000),
      outagePayments: num('outage-payments', values['outage-payments'], 0, 100_000),
      timeoutPayments: num('timeout-payments', values['timeout-payments'], 0, 100_000),
      timeoutRate: num('timeout-rate', values['timeout-rate'], 0, 1),
      concurrency: num('concurrency', values.concurrency, 1, 256),
    };
  } catch (err) {
    log(`bench:routing: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const machine = machineInfo();
  const load = os.loadavg().map((l) => round(l, 2));
  log(`machine: ${machine.cpus} × ${machine.cpuModel}, load ${load.join(' ')}`);
  const inproc = await inProcess(a);
  log(
    `decision p99 ${fmtMs(inproc.decision.p99)}; split ${inproc.split.adyen_pct}/${inproc.split.stripe_pct}`,
  );
  const e2e = a.e2eSplit ? await endToEndSplit(a) : null;
  const out = a.outagePayments ? await outage(a) : null;
  const unknown = a.timeoutPayments ? await unknownOutcomes(a) : null;

  const rows: (string | number)[][] = [['measure', 'result', 'goal']];
  rows.push(['routing decision p50', fmtMs(inproc.decision.p50), '']);
  rows.push(['routing decision p99', fmtMs(inproc.decision.p99), '< 1 ms']);
  rows.push(['routing decision max', fmtMs(inproc.decision.max), '']);
  rows.push([
    `70/30 split over ${inproc.split.payments} ids`,
    `${inproc.split.adyen_pct} / ${inproc.split.stripe_pct} %`,
    'within 2 pp',
  ]);
  rows.push(['split: largest deviation', `${inproc.split.max_deviation_pp} pp`, '≤ 2 pp']);
  if (e2e)
    rows.push([
      `split end to end (${e2e.payments} payments)`,
      `${e2e.followed_decision}/${e2e.payments} on the decided processor, adyen ${e2e.adyen_pct} %`,
      'all',
    ]);
  if (out) {
    rows.push([
      `Stripe down: payments succeeded on Adyen`,
      `${out.succeeded}/${out.payments} (${out.success_pct} %)`,
      '≥ 99 %',
    ]);
    rows.push(['Stripe down: tried Stripe first', out.tried_stripe_first, '']);
    rows.push([
      'fault → breaker open',
      out.fault_to_breaker_open_ms === null
        ? `not opened (${out.breaker})`
        : `${out.fault_to_breaker_open_ms} ms`,
      '',
    ]);
    rows.push(['tried Stripe first while open (2 s in → cooldown)', out.tried_stripe_while_open ?? '-', '0']);
    rows.push(['half-open probes to Stripe after the cooldown', out.probes_after_cooldown ?? '-', '']);
  }
  if (unknown) {
    rows.push([
      `timeout-after-processing ${unknown.timeout_rate}: payments`,
      `${unknown.payments} (${Object.entries(unknown.statuses)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')})`,
      '',
    ]);
    rows.push([
      'authorized at Stripe / at Adyen',
      `${unknown.authorized_at_stripe} / ${unknown.authorized_at_adyen}`,
      '',
    ]);
    rows.push(['double authorizations', unknown.double_authorizations, '0']);
  }
  process.stdout.write(`${table(rows)}\n`);
  const file = path.join(os.tmpdir(), `paystep-bench-routing-${Date.now()}.json`);
  fs.writeFileSync(
    file,
    JSON.stringify(
      {
        machine,
        load_before: load,
        args: a,
        in_process: inproc,
        e2e_split: e2e,
        outage: out,
        unknown_outcomes: unknown,
      },
      null,
      2,
    ),
  );
  log(`results: ${file}`);
  const failed =
    inproc.split.max_deviation_pp > 2 ||
    (out !== null && (out.success_pct < 99 || (out.tried_stripe_while_open ?? 0) > 0)) ||
    (unknown !== null && unknown.double_authorizations > 0);
  return failed ? 1 : 0;
}
