/**
 * `npm run bench -- console [--payments N] [--merchants M] [--runs R]`: server-side render time
 * of the console's payment screens with N payments in the store (issue 13: < 100 ms at p95 with
 * 100,000). Seeds N payments over M merchants straight into a local runtime's table (created over
 * the last 30 days, every kind of status, an order id and an email each), then calls each screen's
 * route handler R times as the console's handler would and reports p50/p95/max per screen.
 * It measures once the table's stream consumers (merchant events, ledger, reference index) have
 * caught up with the seeded payments. Seeding goes through the local DynamoDB's stream capture
 * (a few ms a write): 100,000 payments take minutes.
 * stdout: one JSON line of results; progress on stderr.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import { PAYMENT_STATUSES, type Payment } from '../lambdas/domain/payment.ts';
import { routes } from '../lambdas/console/pages/index.ts';
import type { Operator } from '../lambdas/console/model.ts';
import type { ConsoleRequest } from '../lambdas/console/types.ts';
import { createMerchant } from '../lambdas/store/merchants.ts';
import { createPayment } from '../lambdas/store/payments.ts';
import { startRuntime } from '../lib/local/runtime.ts';
import { numberFlag, percentile, round } from './lib.ts';

const DAY = 86_400_000;
const USAGE = 'usage: npm run bench -- console [--payments 100000] [--merchants 5] [--runs 50]';

function payment(i: number, merchantId: string, createdMs: number): Payment {
  const status = PAYMENT_STATUSES[i % PAYMENT_STATUSES.length]!;
  const s = Math.floor(createdMs / 1000);
  return {
    id: `pay_bench${String(i).padStart(12, '0')}`,
    object: 'payment',
    merchant_id: merchantId,
    amount: 1000 + (i % 5000),
    currency: 'usd',
    status,
    amount_captured: 0,
    amount_refunded: 0,
    capture_method: 'automatic',
    payment_method: 'pm_card_visa',
    processor: 'stripe',
    processor_reference: `pi_bench${i}`,
    failure: null,
    order_id: `ORDER-${i}`,
    customer: { email: `customer${i % 20_000}@example.com` },
    channel: 'web',
    description: null,
    metadata: {},
    card: { brand: 'visa', last4: '4242' },
    capture_before: null,
    cancellation_reason: null,
    review: null,
    execution_arn: null,
    created: s,
    updated: s,
    version: 1,
  };
}

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        payments: { type: 'string', default: '100000' },
        merchants: { type: 'string', default: '5' },
        runs: { type: 'string', default: '50' },
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
    total = numberFlag('payments', values.payments, 1, 10_000_000, true);
    merchantCount = numberFlag('merchants', values.merchants, 1, 1000, true);
    runs = numberFlag('runs', values.runs, 1, 100_000, true);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-bench-console-'));
  process.env.PAYSTEP_LOG_LEVEL ??= 'silent';
  const rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 1000, scheduler: false, gateway: false });
  try {
    const merchants: string[] = [];
    for (let m = 0; m < merchantCount; m++) merchants.push((await createMerchant(`Bench ${m}`)).merchant.id);
    const now = Date.now();
    const started = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = next++; i < total; i = next++) {
          await createPayment(
            payment(i, merchants[i % merchantCount]!, now - 30 * DAY + Math.floor((i / total) * 30 * DAY)),
            undefined,
          );
          if (i % 10_000 === 0) process.stderr.write(`seeded ${i}/${total}\n`);
        }
      }),
    );
    process.stderr.write(`seeded ${total} payments in ${round((Date.now() - started) / 1000)} s\n`);
    // Measured once the stream consumers (merchant events, ledger, reference index) have caught up.
    await rt.settle(60 * 60_000);
    process.stderr.write(`settled after ${round((Date.now() - started) / 1000)} s\n`);

    const admin: Operator = { id: 'op_bench_admin', name: 'bench', role: 'admin', created: 0 };
    const limited: Operator = {
      ...admin,
      id: 'op_bench_support',
      role: 'support',
      merchant_id: merchants[0]!,
    };
    const mid = Math.floor(total / 2);
    const today = new Date(now).toISOString().slice(0, 10);
    const weekAgo = new Date(now - 7 * DAY).toISOString().slice(0, 10);
    const screens: [string, Operator, string][] = [
      ['search by payment id', admin, `/payments?q=pay_bench${String(mid).padStart(12, '0')}`],
      ['search by order id', admin, `/payments?q=ORDER-${mid}`],
      ['search by email', admin, `/payments?q=customer${mid % 20_000}@example.com`],
      ['list, all merchants', admin, '/payments'],
      ['list by status (failed), all merchants', admin, '/payments?status=failed'],
      ['list by date range, all merchants', admin, `/payments?from=${weekAgo}&to=${today}`],
      ['list by status, one merchant (limited operator)', limited, '/payments?status=charged_back'],
      ['payment page', admin, `/payments/pay_bench${String(mid).padStart(12, '0')}`],
      ['reviews queue', admin, '/reviews'],
    ];
    const results: Record<string, { p50: number; p95: number; max: number }> = {};
    for (const [label, op, url] of screens) {
      const u = new URL(url, 'http://console.bench');
      const [, rest] = /^\/payments\/(pay_\w+)$/.exec(u.pathname) ?? [];
      const route = routes.find(
        (r) => r.method === 'GET' && r.path === (rest ? '/payments/{id}' : u.pathname),
      )!;
      const times: number[] = [];
      for (let k = 0; k < runs + 3; k++) {
        const req: ConsoleRequest = {
          operator: op,
          method: 'GET',
          path: u.pathname,
          params: rest ? { id: rest } : {},
          query: Object.fromEntries(u.searchParams),
          form: {},
          csrfToken: 'bench',
          htmx: false,
          now: Date.now(),
          requestId: `bench-${k}`,
          audit: async () => undefined,
        };
        const t0 = performance.now();
        await route.handler(req);
        if (k >= 3) times.push(performance.now() - t0); // the first runs warm the code up
      }
      const sorted = [...times].sort((a, b) => a - b);
      results[label] = {
        p50: round(percentile(sorted, 50)),
        p95: round(percentile(sorted, 95)),
        max: round(sorted.at(-1)!),
      };
      process.stderr.write(`${label}: p50 ${results[label].p50} ms, p95 ${results[label].p95} ms\n`);
    }
    process.stdout.write(`${JSON.stringify({ payments: total, merchants: merchantCount, runs, results })}\n`);
    return 0;
  } finally {
    await rt.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
