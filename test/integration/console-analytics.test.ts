/**
 * The console's analytics screen on the local runtime, called as the console's handler calls it
 * (test/fixtures/console-routes.ts): payments of two merchants on both processors, approvals and
 * declines; the approval rate and payments per day by processor as tables (the same definitions as
 * GET /v1/analytics/payments) and as the JSON the chart script reads; all merchants for an operator
 * who sees them all, one for an operator limited to it; bad parameters refused; and the chart
 * script (lambdas/console/assets/analytics.js) run against the page's JSON with a stand-in uPlot.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import type { ConsoleRoute } from '../../lambdas/console/types.ts';
import { operator } from '../fixtures/console.ts';
import { consoleCaller } from '../fixtures/console-routes.ts';
import { apiClient, until, type Json } from '../fixtures/api.ts';

let rt: Runtime;
let dir: string;
let routes: ConsoleRoute[] = [];
const call = consoleCaller(() => routes);
let merchantA: string;
let merchantB: string;
let apiA: ReturnType<typeof apiClient>;
const today = new Date().toISOString().slice(0, 10);

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-console-analytics-'));
  process.env.PAYSTEP_SYNC_WAIT_MS = '5000';
  rt = await startRuntime({ dataDir: dir, port: 0, scheduler: false });
  ({ routes } = await import('../../lambdas/console/pages/index.ts'));
  const a = await createMerchant('Acme');
  const b = await createMerchant('Bolt');
  [merchantA, merchantB] = [a.merchant.id, b.merchant.id];
  apiA = apiClient(() => rt.url!, a.apiKey);
  const apiB = apiClient(() => rt.url!, b.apiKey);
  const pay = (api: typeof apiA, processor: string, payment_method: string, amount: number) =>
    api('POST', '/v1/payments', {
      amount,
      currency: 'usd',
      payment_method,
      processor,
      customer: { country: 'US' },
    });
  const made = await Promise.all([
    pay(apiA, 'stripe', 'pm_card_visa', 1000),
    pay(apiA, 'stripe', 'pm_card_visa', 2000),
    pay(apiA, 'stripe', 'pm_card_visa_chargeDeclinedInsufficientFunds', 500),
    pay(apiA, 'adyen', 'pm_card_visa', 3000),
    pay(apiB, 'adyen', 'pm_card_chargeDeclinedExpiredCard', 700),
    pay(apiB, 'adyen', 'pm_card_visa', 4000),
  ]);
  for (const r of made) expect(r.status).toBe(201);
  const apis = [apiA, apiA, apiA, apiA, apiB, apiB];
  // Every payment reached its outcome (approved or declined) before the figures are read.
  await until('every payment decided', async () => {
    for (const [i, r] of made.entries()) {
      const p = (await apis[i]!('GET', `/v1/payments/${r.body.id}`)).body;
      if (!['captured', 'failed'].includes(p.status as string)) return false;
    }
    return true;
  });
  // The figures are the stream's rollups: read them once it has applied every change.
  await rt.settle();
});

afterAll(async () => {
  await rt?.stop();
  delete process.env.PAYSTEP_SYNC_WAIT_MS;
  fs.rmSync(dir, { recursive: true, force: true });
});

const chartData = (text: string) =>
  JSON.parse(/<script type="application\/json" id="analytics-data">(.*?)<\/script>/.exec(text)![1]!) as Json;

test('all merchants by processor: tables with the same numbers as the chart data', async () => {
  const { res, text } = await call('support', 'GET', '/analytics');
  expect(res).toMatchObject({ kind: 'page', nav: 'analytics', title: 'Analytics' });
  expect(text).toContain('6 payments of all merchants');
  // Totals: stripe 2 of 3 approved, adyen 2 of 3 approved; all 4 of 6.
  expect(text).toMatch(
    /<th scope="row">All payments<\/th><td>6<\/td><td>6<\/td><td>4<\/td><td>2<\/td><td>66\.7%<\/td>/,
  );
  expect(text).toMatch(
    /<th scope="row">stripe<\/th><td>3<\/td><td>3<\/td><td>2<\/td><td>1<\/td><td>66\.7%<\/td><td>0<\/td><td>30\.00 USD<\/td><td>insufficient_funds \(1\)<\/td>/,
  );
  expect(text).toMatch(
    /<th scope="row">adyen<\/th><td>3<\/td><td>3<\/td><td>2<\/td><td>1<\/td><td>66\.7%<\/td><td>0<\/td><td>70\.00 USD<\/td>/,
  );
  const data = chartData(text);
  expect(data.x).toHaveLength(14);
  expect(data.x.at(-1)).toBe(Date.parse(`${today}T00:00:00Z`) / 1000);
  expect(data.series.map((s: Json) => s.label)).toEqual(['All payments', 'adyen', 'stripe']);
  expect(data.series[0].payments.at(-1)).toBe(6);
  expect(data.series[0].approval.at(-1)).toBe(66.7);
  expect(data.series[0].approval[0]).toBeNull(); // nothing decided that day
  // The day's row in the tables beside the charts.
  expect(text).toContain(`<tr><th scope="row">${today}</th><td>66.7%</td><td>66.7%</td><td>66.7%</td></tr>`);
  expect(text).toContain(`<tr><th scope="row">${today}</th><td>6</td><td>3</td><td>3</td></tr>`);
  expect(text).toContain('<div class="chart" data-chart="approval" role="img"');
  // uPlot comes with the layout (every page); the page's own script under its versioned URL.
  expect(text).toMatch(/<script src="\/console\/assets\/analytics\.js\?v=[0-9a-f]+" defer><\/script>/);
});

test('one merchant, by card brand; an operator limited to a merchant sees only its own', async () => {
  const one = await call('admin', 'GET', '/analytics', {
    query: { merchant: merchantB, dimension: 'card_brand' },
  });
  expect(one.text).toContain(`2 payments of ${merchantB}`);
  expect(chartData(one.text).series[0].payments.at(-1)).toBe(2);
  const onlyA = operator('support', { merchant_id: merchantA });
  const own = await call(onlyA, 'GET', '/analytics', { query: { merchant: merchantB } });
  expect(own.text).toContain(`4 payments of ${merchantA}`);
  expect(own.text).not.toContain('<select id="an-merchant"');
});

test('bad parameters are refused, naming them', async () => {
  await expect(call('support', 'GET', '/analytics', { query: { dimension: 'nope' } })).rejects.toMatchObject({
    status: 400,
  });
  await expect(call('support', 'GET', '/analytics', { query: { from: '2026-13-01' } })).rejects.toMatchObject(
    { status: 400 },
  );
  await expect(
    call('support', 'GET', '/analytics', { query: { from: '2025-01-01', to: '2025-12-31' } }),
  ).rejects.toMatchObject({ status: 400, message: expect.stringContaining('at most 92 days') });
  await expect(
    call('support', 'GET', '/analytics', { query: { merchant: 'mch_nope' } }),
  ).rejects.toMatchObject({ status: 404 });
});

test('the chart script draws one uPlot chart per chart element from the page’s JSON', async () => {
  const { text } = await call('support', 'GET', '/analytics');
  const json = /<script type="application\/json" id="analytics-data">(.*?)<\/script>/.exec(text)![1]!;
  const boxes = ['approval', 'payments'].map((kind) => ({
    kind,
    clientWidth: 800,
    getAttribute: () => kind,
  }));
  const plots: { opts: Json; rows: unknown[][] }[] = [];
  const sandbox = {
    document: {
      getElementById: (id: string) => (id === 'analytics-data' ? { textContent: json } : null),
      querySelectorAll: () => boxes,
    },
    window: { addEventListener: () => undefined },
    uPlot: function (this: unknown, opts: Json, rows: unknown[][]) {
      plots.push({ opts, rows });
    },
  };
  vm.runInNewContext(fs.readFileSync('lambdas/console/assets/analytics.js', 'utf8'), sandbox);
  expect(plots).toHaveLength(2);
  const data = JSON.parse(json) as Json;
  expect(plots[0]!.rows).toEqual([data.x, ...data.series.map((s: Json) => s.approval)]);
  expect(plots[1]!.rows).toEqual([data.x, ...data.series.map((s: Json) => s.payments)]);
  expect(plots[0]!.opts.series.map((s: Json) => s.label)).toEqual([
    undefined,
    'All payments',
    'adyen',
    'stripe',
  ]);
  expect(plots[0]!.opts.series[1].value(null, 66.7)).toBe('66.7%');
});
