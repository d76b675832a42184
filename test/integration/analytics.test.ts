/**
 * Approval analytics (GET /v1/analytics/payments, `paystep analytics`) on the local runtime:
 * payments on both processors with approvals and declines, grouped by processor and card brand,
 * with the performance report's definitions; bad parameters are 400s naming them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { buildProgram } from '../../lib/cli/main.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { apiClient, until, type Json } from '../fixtures/api.ts';

let rt: Runtime;
let dir: string;
let merchantId: string;
let call: ReturnType<typeof apiClient>;
const today = new Date().toISOString().slice(0, 10);

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-analytics-'));
  process.env.PAYSTEP_SYNC_WAIT_MS = '5000';
  rt = await startRuntime({ dataDir: dir, port: 0, scheduler: false });
  const m = await createMerchant('Analytics');
  merchantId = m.merchant.id;
  call = apiClient(() => rt.url!, m.apiKey);
  const pay = (processor: string, payment_method: string, amount: number) =>
    call('POST', '/v1/payments', {
      amount,
      currency: 'usd',
      payment_method,
      processor,
      customer: { country: 'US' },
    });
  const made = await Promise.all([
    pay('stripe', 'pm_card_visa', 1000),
    pay('stripe', 'pm_card_visa', 2000),
    pay('stripe', 'pm_card_visa_chargeDeclinedInsufficientFunds', 500),
    pay('adyen', 'pm_card_visa', 3000),
    pay('adyen', 'pm_card_chargeDeclinedExpiredCard', 700),
  ]);
  for (const r of made) expect(r.status).toBe(201);
  // Every payment reached its outcome (approved or declined) before the figures are read.
  await until('every payment decided', async () => {
    for (const r of made) {
      const p = (await call('GET', `/v1/payments/${r.body.id}`)).body;
      if (!['captured', 'failed'].includes(p.status as string)) return false;
    }
    return true;
  });
});

afterAll(async () => {
  await rt?.stop();
  delete process.env.PAYSTEP_SYNC_WAIT_MS;
  fs.rmSync(dir, { recursive: true, force: true });
});

test('approval rate, decline reasons and volume by processor and card brand', async () => {
  const r = await call(
    'GET',
    `/v1/analytics/payments?from=${today}&to=${today}&group_by=processor,card_brand`,
  );
  expect(r.status).toBe(200);
  expect(r.body).toMatchObject({ object: 'payment_analytics', from: today, to: today, payments: 5 });
  const g = Object.fromEntries((r.body.groups as Json[]).map((x) => [`${x.dimension}:${x.value}`, x]));
  expect(g['all:all']).toMatchObject({
    payments: 5,
    attempts: 5,
    approved: 3,
    declined: 2,
    approval_rate: 0.6,
    volume: { usd: 6000 },
  });
  expect(g['processor:stripe']).toMatchObject({
    payments: 3,
    approved: 2,
    approval_rate: 0.6667,
    decline_reasons: { insufficient_funds: 1 },
    volume: { usd: 3000 },
  });
  expect(g['processor:adyen']).toMatchObject({
    payments: 2,
    approved: 1,
    approval_rate: 0.5,
    decline_reasons: { expired_card: 1 },
  });
  expect((r.body.groups as Json[])[0]!.dimension).toBe('all');
});

test('defaults, and bad parameters named', async () => {
  const d = await call('GET', '/v1/analytics/payments');
  expect(d.body).toMatchObject({ to: today, group_by: ['processor'], payments: 5 });
  expect((await call('GET', '/v1/analytics/payments?group_by=colour')).body.error).toMatchObject({
    param: 'group_by',
  });
  expect((await call('GET', '/v1/analytics/payments?from=2026-02-30')).body.error).toMatchObject({
    param: 'from',
  });
  expect(
    (await call('GET', '/v1/analytics/payments?from=2026-01-01&to=2026-12-31')).body.error.message,
  ).toContain('at most 92 days');
  expect((await call('GET', '/v1/analytics/payments?colour=red')).body.error).toMatchObject({
    code: 'parameter_unknown',
  });
});

test('paystep analytics prints a table', async () => {
  let stdout = '';
  await buildProgram((s) => (stdout += s)).parseAsync(
    ['--data-dir', dir, 'analytics', '--merchant', merchantId, '--group-by', 'processor'],
    {
      from: 'user',
    },
  );
  const lines = stdout.trimEnd().split('\n');
  expect(lines[0]).toMatch(/to .*: 5 payments$/);
  expect(lines[1]).toMatch(
    /^dimension\s+value\s+payments\s+attempts\s+approved\s+declined\s+approval\s+cascades\s+volume\s+top decline$/,
  );
  expect(lines[2]).toMatch(/^all\s+all\s+5\s+5\s+3\s+2\s+60\.0%\s+0\s+60\.00 USD\s+expired_card \(1\)$/);
});
