/**
 * `npm run bench:billing` — subscription billing on the local runtime, and the dunning schedules
 * compared on a seeded model (docs/billing.md "Benchmark").
 *
 * 1. Run: `--subscriptions` customers (pm_card_visa) on a plan of `--interval` (day), each billed
 *    for `--periods` periods on the local runtime with time compressed by `--time-scale` (86400: a
 *    day per second). Reports the wall time, payments per second, and checks that no invoice was
 *    charged twice (one captured payment per paid invoice, every payment linked to one attempt).
 * 2. Model (pure, no runtime): `--model-invoices` failed renewals drawn from a seeded model of when
 *    a declined card starts succeeding again, retried by the decline-aware schedule (planRetry) and
 *    by a fixed one (every 3 days, 4 times); recovered revenue for each. A model result, not a
 *    claim about the world. The model:
 *    - 60 % insufficient funds: the card is funded again on one of the next likely funding days
 *      (the 1st, the 15th, the month's last day, or a Friday), the first such day with probability
 *      0.35, each later one with 0.35 of what is left; 15 % never within the window;
 *    - 25 % technical / issuer unavailable: succeeds after an exponential time, mean 3 hours;
 *    - 15 % generic soft declines: succeeds after a uniform 0–20 days, or never (40 %).
 *    A retry succeeds when it happens at or after that time (14:00 UTC funding days count from
 *    their 00:00).
 *
 * Results: a table on stdout, progress on stderr.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { billingRun, timeScaleFor } from './billing-run.ts';
import { log, numberFlag, round, table } from './lib.ts';
import {
  DEFAULT_DUNNING_POLICY,
  fixedRetry,
  nextFundingDay,
  planRetry,
  type RenewalFailure,
} from '../lambdas/domain/dunning.ts';

const DAY = 86_400;

/** mulberry32: a small seeded PRNG, so the model gives the same answer every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface ModelCase {
  failure: RenewalFailure;
  /** When the card starts succeeding again (epoch seconds), or Infinity. */
  okFrom: number;
  amount: number;
}

function drawCase(r: () => number, failedAt: number): ModelCase {
  const u = r();
  const amount = 500 + Math.floor(r() * 4500);
  if (u < 0.6) {
    if (r() < 0.15) return { failure: funds, okFrom: Infinity, amount };
    let t = failedAt;
    for (;;) {
      const next = nextFundingDay(t + 1);
      const dayStart = next - 14 * 3600;
      if (r() < 0.35) return { failure: funds, okFrom: dayStart, amount };
      t = next;
      if (t > failedAt + 60 * DAY) return { failure: funds, okFrom: Infinity, amount };
    }
  }
  if (u < 0.85) return { failure: technical, okFrom: failedAt + -Math.log(1 - r()) * 3 * 3600, amount };
  return { failure: generic, okFrom: r() < 0.4 ? Infinity : failedAt + r() * 20 * DAY, amount };
}
const funds: RenewalFailure = { category: 'soft_decline', code: 'insufficient_funds', retryable: true };
const technical: RenewalFailure = { category: 'technical', code: 'processing_error', retryable: true };
const generic: RenewalFailure = { category: 'soft_decline', code: 'generic_decline', retryable: true };

/** Whether the invoice is recovered, and by which attempt, under each schedule. */
function simulate(c: ModelCase, failedAt: number) {
  // Decline-aware: planRetry until it gives up.
  let attempts = 1;
  let last = failedAt;
  let quick = 0;
  let aware: number | undefined;
  for (;;) {
    const plan = planRetry({
      policy: DEFAULT_DUNNING_POLICY,
      failure: c.failure,
      attempts,
      quickRetries: quick,
      firstFailedAt: failedAt,
      lastAttemptAt: last,
    });
    if (plan.action !== 'retry') break;
    attempts++;
    if (plan.schedule === 'quick') quick++;
    last = plan.at;
    if (last >= c.okFrom) {
      aware = attempts;
      break;
    }
  }
  // Fixed: every 3 days, 4 times.
  let fixed: number | undefined;
  let n = 1;
  let t = failedAt;
  for (;;) {
    const next = fixedRetry(n, t);
    if (next === undefined) break;
    n++;
    t = next;
    if (t >= c.okFrom) {
      fixed = n;
      break;
    }
  }
  return { aware, fixed };
}

export function model(invoices: number, seed: number) {
  const r = rng(seed);
  const start = Date.UTC(2026, 0, 1) / 1000;
  const out = {
    invoices,
    amount: 0,
    aware: { n: 0, amount: 0, attempts: 0 },
    fixed: { n: 0, amount: 0, attempts: 0 },
  };
  for (let i = 0; i < invoices; i++) {
    const failedAt = start + Math.floor(r() * 365 * DAY);
    const c = drawCase(r, failedAt);
    out.amount += c.amount;
    const s = simulate(c, failedAt);
    if (s.aware) {
      out.aware.n++;
      out.aware.amount += c.amount;
      out.aware.attempts += s.aware;
    }
    if (s.fixed) {
      out.fixed.n++;
      out.fixed.amount += c.amount;
      out.fixed.attempts += s.fixed;
    }
  }
  return out;
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      subscriptions: { type: 'string', default: '100' },
      periods: { type: 'string', default: '30' },
      interval: { type: 'string', default: 'day' },
      'time-scale': { type: 'string', default: '86400' },
      rate: { type: 'string' },
      timeout: { type: 'string' },
      calls: { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
      'model-invoices': { type: 'string', default: '100000' },
      seed: { type: 'string', default: '10' },
      'model-only': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    log(
      'usage: npm run bench:billing -- [--subscriptions N] [--periods P] [--interval day|week|month] [--time-scale S | --rate R] [--timeout S] [--calls] [--cpu-prof FILE] [--model-invoices N] [--seed S] [--model-only]\n' +
        '  --rate R       the time scale at which the subscriptions ask for R payments per second (instead of --time-scale)\n' +
        '  --calls        AWS calls and Lambda invocations per paid invoice, by function\n' +
        '  --timeout S    end the run after S seconds, listing the unfinished subscriptions (else only a 120 s stall ends it)\n' +
        '  --cpu-prof F   a CPU profile of the runtime during billing, written to F and summarised',
    );
    return 0;
  }
  const m = model(Number(values['model-invoices']), Number(values.seed));
  const rows: (string | number)[][] = [
    [
      'schedule',
      'recovered invoices',
      'recovered revenue',
      'share of failed revenue',
      'attempts per recovery',
    ],
    ...(['aware', 'fixed'] as const).map((k) => [
      k === 'aware' ? 'decline-aware (planRetry)' : 'fixed (3 days × 4)',
      m[k].n,
      m[k].amount,
      `${round((m[k].amount / m.amount) * 100)} %`,
      round(m[k].attempts / Math.max(1, m[k].n), 2),
    ]),
  ];
  process.stdout.write(
    `Model (seed ${values.seed}, ${m.invoices} failed renewals; a model result):\n${table(rows)}\n`,
  );
  if (values['model-only']) return 0;
  if (!['day', 'week', 'month'].includes(values.interval!))
    throw new Error(`--interval: '${values.interval}' is not day, week or month`);
  const interval = values.interval as 'day' | 'week' | 'month';
  const subscriptions = numberFlag('subscriptions', values.subscriptions!, 1, 1_000_000, true);
  const periods = numberFlag('periods', values.periods!, 1, 366, true);
  const timeScale =
    values.rate !== undefined
      ? timeScaleFor(numberFlag('rate', values.rate, 0.01, 10_000), subscriptions, interval)
      : numberFlag('time-scale', values['time-scale']!, 1, 1e9);
  const r = await billingRun({
    subscriptions,
    periods,
    interval,
    timeScale,
    calls: values.calls!,
    cpuProf: values['cpu-prof'],
    timeoutSeconds: values.timeout !== undefined ? numberFlag('timeout', values.timeout, 1, 1e7) : undefined,
  });
  process.stdout.write(
    `\nRun on the local runtime (${os.cpus().length} CPUs, time scale ${timeScale}, load average ${os
      .loadavg()
      .map((l) => round(l, 1))
      .join(' ')}):\n` +
      table([
        [
          'subscriptions',
          'periods',
          'invoices paid',
          'payments',
          'create s',
          'wall s',
          'payments/s',
          'charged twice',
          'attempts with two payments',
          'unfinished',
        ],
        [
          r.subscriptions,
          periods,
          `${r.invoicesPaid} of ${r.invoicesExpected}`,
          r.payments,
          round(r.createSeconds),
          round(r.wall),
          round(r.payments / r.wall),
          r.chargedTwice,
          r.duplicatesAttempt,
          r.stalled.length,
        ],
      ]) +
      '\n',
  );
  return r.chargedTwice || r.duplicatesAttempt || r.stalled.length ? 1 : 0;
}
