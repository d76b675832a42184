/**
 * The console's finance and subscriptions screens on the local runtime, called as the console's
 * handler calls them (test/fixtures/console-routes.ts): a Stripe payout reconciled (a run) and open
 * exceptions of two merchants; resolving one with a note, once, audited, and the same through
 * `paystep reconcile resolve`; the daily summary report listed, previewed and
 * downloaded; the ledger check (in the background); a subscription whose renewal fails for insufficient funds, shown
 * past due with where it is in its dunning schedule; an operator limited to one merchant kept to it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import type { ConsoleRoute } from '../../lambdas/console/types.ts';
import { can } from '../../lambdas/console/model.ts';
import { getException, openException } from '../../lambdas/store/reconciliation.ts';
import { resolveException } from '../../lambdas/reconciliation/exceptions.ts';
import { startReconciliation, waitForExecution } from '../../lambdas/reconciliation/start.ts';
import { runReport } from '../../lambdas/reports/daily.ts';
import { putText } from '../../lambdas/reports/storage.ts';
import { INLINE_DOWNLOAD_BYTES } from '../../lambdas/console/downloads.ts';
import { operator } from '../fixtures/console.ts';
import { consoleCaller, routePermission } from '../fixtures/console-routes.ts';
import { apiClient, until, type Json } from '../fixtures/api.ts';
import { runCli } from '../fixtures/cli.ts';
import { getLedgerCheck } from '../../lambdas/store/ledger-check.ts';

// A day passes in 2 s: a daily plan renews, and a funding-day retry (≥ 2 days later) is ≥ 4 s away.
const TIME_SCALE = 43_200;

let dir: string;
let rt: Runtime;
let routes: ConsoleRoute[] = [];
const call = consoleCaller(() => routes);
let merchantA: string;
let merchantB: string;
let apiA: ReturnType<typeof apiClient>;
let apiB: ReturnType<typeof apiClient>;
let payoutId: string;
const today = new Date().toISOString().slice(0, 10);

const exception = (id: string, merchant: string | null, reason: string) => ({
  id,
  type: 'amount_mismatch' as const,
  processor: 'stripe',
  merchant_id: merchant,
  payout_id: 'po_test',
  item_id: `txn_${id.split(':').pop()}`,
  payment_id: null,
  reference: null,
  currency: 'usd',
  expected: 2500,
  actual: 2600,
  reason,
});
const excA = 'amount_mismatch:stripe:pi_console_a';
const excA2 = 'amount_mismatch:stripe:pi_console_a2';
const excB = 'amount_mismatch:stripe:pi_console_b';

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-console-finance-'));
  process.env.PAYSTEP_RISK_VELOCITY_LIMIT = '100000';
  rt = await startRuntime({ dataDir: dir, port: 0, timeScale: TIME_SCALE, scheduler: false });
  ({ routes } = await import('../../lambdas/console/pages/index.ts'));
  const a = await createMerchant('Acme');
  const b = await createMerchant('Bolt');
  [merchantA, merchantB] = [a.merchant.id, b.merchant.id];
  apiA = apiClient(() => rt.url!, a.apiKey);
  apiB = apiClient(() => rt.url!, b.apiKey);
  for (const [api, amount] of [
    [apiA, 1050],
    [apiA, 2000],
    [apiB, 3000],
  ] as const)
    expect(
      (await api('POST', '/v1/payments', { amount, currency: 'usd', payment_method: 'pm_card_visa' })).status,
    ).toBe(201);
  await rt.dynamo.drain();
  const [payout] = rt.stripe!.createPayout({ includePending: true });
  payoutId = payout!.id;
  const started = await startReconciliation(
    { processor: 'stripe', source: { kind: 'api', payout_id: payoutId } },
    `stripe-${payoutId}`,
  );
  expect((await waitForExecution(started.executionArn, 20_000)).status).toBe('SUCCEEDED');
  await openException(exception(excA, merchantA, 'charge settled for 2600 but paystep captured 2500'), today);
  await openException(exception(excA2, merchantA, 'a second difference of A'), today);
  await openException(exception(excB, merchantB, 'a difference of B'), today);
  await runReport('summary', today);
});

afterAll(async () => {
  await rt?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('finance', () => {
  test('reconciliation runs and open exceptions, each part shown only with its permission', async () => {
    const { res, text } = await call('finance', 'GET', '/finance');
    expect(res).toMatchObject({ kind: 'page', nav: 'finance' });
    expect(text).toContain(`<th scope="row">${payoutId}</th>`);
    expect(text).toContain('reconciled');
    for (const id of [excA, excA2, excB]) expect(text).toContain(`<th scope="row">${id}</th>`);
    expect(text).toContain('charge settled for 2600 but paystep captured 2500');
    expect(text).toContain('25.00 USD');
    expect(text).toContain('action="/console/finance/exceptions/resolve"');
    expect(text).toContain('href="/console/finance/reports"');
    expect(text).toContain('href="/console/finance/ledger"');
    // Support may not see finance at all (the handler checks the route's permission).
    for (const [m, p] of [
      ['GET', '/finance'],
      ['POST', '/finance/exceptions/resolve'],
      ['GET', '/finance/reports'],
      ['GET', '/finance/reports/download'],
      ['GET', '/finance/ledger'],
      ['POST', '/finance/ledger/check'],
    ] as const)
      expect(can('support', routePermission(routes, m, p) as never)).toBe(false);
  });

  test('an operator limited to a merchant: its exceptions only, no payout runs, not another’s exception', async () => {
    const onlyA = operator('finance', { merchant_id: merchantA });
    const { text } = await call(onlyA, 'GET', '/finance');
    expect(text).toContain(excA);
    expect(text).not.toContain(excB);
    expect(text).not.toContain(payoutId);
    await expect(
      call(onlyA, 'POST', '/finance/exceptions/resolve', { form: { owner: merchantB, id: excB, note: 'x' } }),
    ).rejects.toMatchObject({ status: 404 });
    expect((await getException(merchantB, excB))!.status).toBe('open');
  });

  test('resolve with a note: once, audited; a second time is refused', async () => {
    await expect(
      call('finance', 'POST', '/finance/exceptions/resolve', {
        form: { owner: merchantA, id: excA, note: ' ' },
      }),
    ).rejects.toMatchObject({ status: 400 });
    await expect(
      call('finance', 'POST', '/finance/exceptions/resolve', {
        form: { owner: merchantA, id: 'amount_mismatch:stripe:nope', note: 'x' },
      }),
    ).rejects.toMatchObject({ status: 404 });
    const form = {
      csrf: 'x',
      owner: merchantA,
      id: excA,
      note: 'Stripe confirmed a 1.00 surcharge; booked by hand',
    };
    const first = await call('finance', 'POST', '/finance/exceptions/resolve', { form });
    expect(first.res).toEqual({ kind: 'redirect', to: '/finance', flash: `Exception ${excA} resolved.` });
    expect(first.req.audited).toEqual([
      {
        action: 'reconciliation.resolve',
        target: { kind: 'reconciliation_exception', id: excA },
        merchant_id: merchantA,
        before: { status: 'open' },
        after: { status: 'resolved', resolved_on: today, resolution: form.note },
        note: form.note,
      },
    ]);
    expect(await getException(merchantA, excA)).toMatchObject({
      status: 'resolved',
      resolution: form.note,
      resolved_by: 'console:op_test_finance',
    });
    await expect(call('finance', 'POST', '/finance/exceptions/resolve', { form })).rejects.toMatchObject({
      status: 409,
    });
    expect((await call('finance', 'GET', '/finance')).text).not.toContain(`<th scope="row">${excA}</th>`);
  });

  test('two resolutions at once: exactly one succeeds', async () => {
    const both = await Promise.allSettled([
      resolveException(excA2, 'first', 'alice', { owner: merchantA }),
      resolveException(excA2, 'second', 'bob', { owner: merchantA }),
    ]);
    expect(both.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(both.filter((r) => r.status === 'rejected')).toHaveLength(1);
    expect((await getException(merchantA, excA2))!.status).toBe('resolved');
  });

  test('paystep reconcile resolve: the same service from the CLI', async () => {
    const noNote = await runCli(dir, 'reconcile', 'resolve', excB, '--note', ' ');
    expect(noNote.code).toBe(2);
    const unknown = await runCli(dir, 'reconcile', 'resolve', 'amount_mismatch:stripe:nope', '--note', 'x');
    expect(unknown).toMatchObject({ code: 1, error: expect.stringContaining('amount_mismatch:stripe:nope') });
    const ok = await runCli(dir, 'reconcile', 'resolve', excB, '--note', 'refund booked');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({
      id: excB,
      status: 'resolved',
      resolution: 'refund booked',
      resolved_by: 'cli',
    });
    const again = await runCli(dir, 'reconcile', 'resolve', excB, '--note', 'again', '--merchant', merchantB);
    expect(again).toMatchObject({ code: 1, error: expect.stringContaining('resolved already') });
    // Off the list of open exceptions.
    const listed = await runCli(dir, 'reconcile', 'exceptions');
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout).data.map((e: Json) => e.id)).not.toContain(excB);
  });

  test('reports: listed by owner, kind and day, previewed as a table, downloaded', async () => {
    const list = await call('finance', 'GET', '/finance/reports', {
      query: { kind: 'summary', date: today },
    });
    const key = `platform/summary/${today}/summary.csv`;
    expect(list.text).toContain(`/console/finance/reports/preview?key=${encodeURIComponent(key)}`);
    const preview = await call('finance', 'GET', '/finance/reports/preview', { query: { key } });
    expect(preview.res).toMatchObject({ kind: 'page', nav: 'finance' });
    expect(preview.text).toMatch(/<th scope="col">[a-z_]+<\/th>/);
    expect(preview.text).toContain('<td>usd</td>');
    const download = await call('finance', 'GET', '/finance/reports/download', { query: { key } });
    expect(download.res).toMatchObject({ kind: 'download', contentType: 'text/csv; charset=utf-8' });
    expect((download.res as { body: string }).body).toBe(
      fs.readFileSync(path.join(dir, 'buckets', 'paystep-reports', key), 'utf8'),
    );
    // A file larger than a Lambda response can carry goes to the browser as a presigned S3 URL.
    const bigKey = `platform/summary/${today}/big.csv`;
    const big = `a,b\n${'1234567,89\n'.repeat(Math.ceil(INLINE_DOWNLOAD_BYTES / 11) + 10)}`;
    await putText('reports', bigKey, big, 'text/csv');
    const far = await call('finance', 'GET', '/finance/reports/download', { query: { key: bigKey } });
    expect(far.res).toMatchObject({ kind: 'external', to: expect.stringMatching(/X-Amz-Signature=/) });
    const fetched = await fetch((far.res as { to: string }).to);
    expect(fetched.status).toBe(200);
    expect(fetched.headers.get('content-disposition')).toContain(`platform-summary-${today}-big.csv`);
    expect(fetched.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(await fetched.text()).toBe(big);
    await expect(
      call('finance', 'GET', '/finance/reports/download', {
        query: { key: `platform/summary/${today}/none.csv` },
      }),
    ).rejects.toMatchObject({ status: 404 });
    // Without a day: the last 31 days; an older day's reports when that day is asked for.
    const old = '2020-01-31';
    await runReport('summary', old, { merchant: merchantA });
    const oldKey = `${merchantA}/summary/${old}/summary.csv`;
    expect(fs.existsSync(path.join(dir, 'buckets', 'paystep-reports', oldKey))).toBe(true);
    const mine = await call('finance', 'GET', '/finance/reports', { query: { owner: merchantA } });
    expect(mine.text).toContain('the last 31 days');
    expect(mine.text).not.toContain(encodeURIComponent(oldKey));
    const thatDay = await call('finance', 'GET', '/finance/reports', {
      query: { owner: merchantA, date: old },
    });
    expect(thatDay.text).toContain(encodeURIComponent(oldKey));
    expect(thatDay.text).not.toContain(encodeURIComponent(`${merchantA}/summary/${today}/`));
    expect(mine.text).toContain(`${merchantA}/summary/${today}/summary.csv`.replace(/\//g, '%2F'));
    for (const bad of ['../etc/passwd', 'system/x/2026-01-01/a.csv', `platform/summary/${today}/nope.csv`])
      await expect(
        call('finance', 'GET', '/finance/reports/download', { query: { key: bad } }),
      ).rejects.toMatchObject({
        status: bad.includes('nope') ? 404 : 400,
      });
    await expect(
      call('finance', 'GET', '/finance/reports', { query: { kind: 'nope' } }),
    ).rejects.toMatchObject({
      status: 400,
    });
    // Limited to A: A's reports only, whatever is asked.
    const onlyA = operator('finance', { merchant_id: merchantA });
    const own = await call(onlyA, 'GET', '/finance/reports', { query: { owner: 'platform' } });
    expect(own.text).toContain(`Reports of ${merchantA}`);
    await expect(call(onlyA, 'GET', '/finance/reports/download', { query: { key } })).rejects.toMatchObject({
      status: 404,
    });
  });

  test('ledger: the invariant check run in the background when asked, its latest result shown', async () => {
    const idle = await call('finance', 'GET', '/finance/ledger', { query: { check: 'run' } });
    expect(idle.text).toContain('The check has never run.');
    expect(idle.text).not.toContain('Invariant check:');
    const asked = await call('finance', 'POST', '/finance/ledger/check');
    expect(asked.res).toMatchObject({ kind: 'redirect', to: '/finance/ledger' });
    expect(asked.req.audited).toMatchObject([{ action: 'ledger.check_requested' }]);
    await until('the ledger check to finish', async () => (await getLedgerCheck())?.status === 'finished');
    const { text } = await call('finance', 'GET', '/finance/ledger');
    expect(text).toContain('Invariant check: holds');
    expect(text).toContain(`<th scope="row">${merchantA}</th>`);
    expect(text).toContain(`<th scope="row">${merchantB}</th>`);
    const onlyB = operator('finance', { merchant_id: merchantB });
    const own = await call(onlyB, 'GET', '/finance/ledger');
    expect(own.text).toContain(`<th scope="row">${merchantB}</th>`);
    expect(own.text).not.toContain(merchantA);
  });
});

describe('subscriptions', () => {
  let sub: Json;
  let failed: Json;

  beforeAll(async () => {
    const cus = (
      await apiA('POST', '/v1/customers', {
        email: 'c@example.com',
        name: 'Carol',
        payment_method: 'pm_card_visa',
      })
    ).body;
    const plan = (
      await apiA('POST', '/v1/plans', { name: 'Daily', amount: 500, currency: 'usd', interval: 'day' })
    ).body;
    sub = (await apiA('POST', '/v1/subscriptions', { customer: cus.id, plan: plan.id })).body;
    expect(sub.status).toBe('active');
    await apiA('POST', `/v1/customers/${cus.id}`, {
      payment_method: 'pm_card_visa_chargeDeclinedInsufficientFunds',
    });
    failed = await until('a failed renewal', async () => {
      const list = (await apiA('GET', `/v1/invoices?subscription=${sub.id}&limit=100`)).body.data as Json[];
      return list.find((i) => i.failed_attempts >= 1 && i.status === 'open' && i.next_attempt_at);
    });
    await until(
      'past_due',
      async () => (await apiA('GET', `/v1/subscriptions/${sub.id}`)).body.status === 'past_due',
    );
  });

  test('customers, subscriptions with a status filter, and the past-due invoice’s place in its dunning schedule', async () => {
    const { res, text } = await call('support', 'GET', '/subscriptions', { query: { merchant: merchantA } });
    expect(res).toMatchObject({ kind: 'page', nav: 'subscriptions' });
    expect(text).toContain('Carol');
    expect(text).toContain(`<th scope="row">${sub.id}</th>`);
    const dunning = text.slice(text.indexOf('Past-due invoices'), text.indexOf('<h2>Subscriptions</h2>'));
    expect(dunning).toContain(`<th scope="row">${failed.id}</th>`);
    expect(dunning).toMatch(/<td>\d of 8<\/td>/);
    expect(dunning).toMatch(/likely funding day/);
    expect(dunning).toMatch(/\d{4}-\d{2}-\d{2} 14:00 UTC \(in /);
    expect(dunning).toContain('14-day window');
    const pastDue = await call('support', 'GET', '/subscriptions', {
      query: { merchant: merchantA, status: 'past_due' },
    });
    expect(pastDue.text).toContain(`<th scope="row">${sub.id}</th>`);
    const canceled = await call('support', 'GET', '/subscriptions', {
      query: { merchant: merchantA, status: 'canceled' },
    });
    expect(canceled.text).not.toContain(`<th scope="row">${sub.id}</th>`);
    await expect(
      call('support', 'GET', '/subscriptions', { query: { merchant: merchantA, status: 'nope' } }),
    ).rejects.toMatchObject({ status: 400 });
  });

  test('no merchant chosen: a picker; limited to a merchant: its own only', async () => {
    const none = await call('admin', 'GET', '/subscriptions');
    expect(none.text).toContain('<label for="merchant-subscriptions">Merchant</label>');
    expect(none.text).toContain(`<option value="${merchantB}"`);
    const onlyB = operator('support', { merchant_id: merchantB });
    const own = await call(onlyB, 'GET', '/subscriptions', { query: { merchant: merchantA } });
    expect(own.text).toContain(`Subscriptions of ${merchantB}`);
    expect(own.text).not.toContain(sub.id);
    expect(own.text).not.toContain('<select id="merchant-');
  });
});
