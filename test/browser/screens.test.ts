/**
 * Every console screen in a real browser (Debian's Chromium, test/browser/fixture.ts) against one
 * local runtime, as support, ops and finance would use them (issue 13 "Done when"): a declined
 * payment found by its order id and explained, with its execution graph; a held payment approved
 * from the reviews queue; a refund from a payment's page, and a support operator over its limit
 * refused; a dispute's evidence submitted; a reconciliation exception resolved with a note; the
 * day's summary report downloaded; support refused finance; every action in the audit log.
 * The data is made through the API and the services, not through the browser. Each screen is
 * screenshotted to test-artifacts/screenshots/<name>.png and checked with axe-core, and no page may
 * trip its own Content-Security-Policy.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { createOperator } from '../../lambdas/store/operators.ts';
import { getException, openException } from '../../lambdas/store/reconciliation.ts';
import { runReport } from '../../lambdas/reports/daily.ts';
import { getLedgerCheck } from '../../lambdas/store/ledger-check.ts';
import { forwardDisputeEvents, type DisputeForwarder } from '../fixtures/dispute-forwarder.ts';
import { apiClient, until, type Json } from '../fixtures/api.ts';
import { checkScreen, describeInBrowser, launchBrowser, type Browser } from './fixture.ts';

const DAY = 86_400;
const today = new Date().toISOString().slice(0, 10);
const EXCEPTION = 'amount_mismatch:stripe:pi_browser_1';

describeInBrowser('every console screen in the browser', () => {
  let dir: string;
  let rt: Runtime;
  let browser: Browser;
  let api: ReturnType<typeof apiClient>;
  let merchant: string;
  const keys = { admin: '', support: '', finance: '' };
  const tag = Date.now().toString(36);
  let captured: Json;
  let declined: Json;
  let held: Json;
  let dispute: Json;
  let subscription: Json;
  let forwarder: DisputeForwarder | undefined;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-browser-screens-'));
    process.env.PAYSTEP_RISK_BLOCKED_COUNTRIES = 'KP';
    // Slow enough that a review (24 h) keeps waiting; quick enough for disputes to appear.
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 20, scheduler: false });
    rt.stripe!.configureDisputes({ createDelayMs: 20, decisionDelayMs: 50, responseWindowSeconds: 2 * DAY });
    // The simulator's dispute events to the entry point webhook ingestion calls (test/fixtures).
    forwarder = await forwardDisputeEvents(rt);
    const m = await createMerchant('Acme');
    merchant = m.merchant.id;
    api = apiClient(() => rt.url!, m.apiKey);
    const pay = async (pm: string, extra: Json = {}) => {
      const r = await api('POST', '/v1/payments', {
        amount: 15_000,
        currency: 'usd',
        payment_method: pm,
        ...extra,
      });
      expect(r.status).toBeLessThan(300);
      return r.body;
    };
    let disputed: Json;
    [captured, declined, held, disputed] = await Promise.all([
      pay('pm_card_visa', { order_id: `ORD-${tag}-1`, customer: { email: `jane.${tag}@example.com` } }),
      pay('pm_card_visa_chargeDeclinedInsufficientFunds', { order_id: `ORD-${tag}-2` }),
      pay('pm_card_visa', { order_id: `ORD-${tag}-3`, customer: { country: 'KP' } }),
      pay('pm_card_createDispute', { order_id: `ORD-${tag}-4` }),
    ]);
    expect([captured.status, declined.status, held.status, disputed.status]).toEqual([
      'captured',
      'failed',
      'pending_review',
      'captured',
    ]);
    dispute = await until(
      'a dispute',
      async () => (await api('GET', `/v1/disputes?payment=${disputed.id}`)).body.data?.[0] as Json,
    );
    await openException(
      {
        id: EXCEPTION,
        type: 'amount_mismatch',
        processor: 'stripe',
        merchant_id: merchant,
        payout_id: 'po_browser',
        item_id: 'txn_browser_1',
        payment_id: null,
        reference: null,
        currency: 'usd',
        expected: 2500,
        actual: 2600,
        reason: 'charge settled for 2600 but paystep captured 2500',
      },
      today,
    );
    const cus = (
      await api('POST', '/v1/customers', {
        email: 'c@example.com',
        name: 'Carol',
        payment_method: 'pm_card_visa',
      })
    ).body;
    const plan = (
      await api('POST', '/v1/plans', { name: 'Monthly', amount: 900, currency: 'usd', interval: 'month' })
    ).body;
    subscription = (await api('POST', '/v1/subscriptions', { customer: cus.id, plan: plan.id })).body;
    expect(subscription.status).toBe('active');
    await rt.dynamo.drain();
    await runReport('summary', today);
    keys.admin = (await createOperator({ name: 'ann', role: 'admin' })).key;
    keys.support = (await createOperator({ name: 'sam', role: 'support' })).key;
    keys.finance = (await createOperator({ name: 'fay', role: 'finance' })).key;
    browser = await launchBrowser();
    // A missing element fails its test with a message, before Jest's own timeout.
    browser.page.setDefaultTimeout(10_000);
  }, 90_000);

  afterAll(async () => {
    await forwarder?.stop();
    await browser?.close();
    await rt?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  afterEach(() => {
    expect(forwarder?.errors).toEqual([]);
    expect(browser.cspViolations).toEqual([]);
  });

  const go = async (to: string) => {
    const res = await browser.page.goto(`${rt.url}/console${to}`);
    expect(res?.status()).toBe(200);
  };
  const h1 = async () => (await browser.page.getByRole('heading', { level: 1 }).textContent())?.trim();
  const flash = async () => (await browser.page.locator('.flash[role="status"]').textContent())?.trim();
  const signIn = async (key: string) => {
    const { page } = browser;
    // Whoever was signed in before (a failed test may not have signed out) is forgotten.
    await browser.context.clearCookies();
    await page.goto(`${rt.url}/console/login`);
    await page.getByLabel('Operator key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => u.pathname === '/console');
  };
  const signOut = async () => {
    await browser.page.getByRole('button', { name: 'Sign out' }).click();
    await browser.page.waitForURL((u) => u.pathname === '/console/login');
  };

  test('support finds a declined payment by its order id: why it failed, what to do, its workflow graph', async () => {
    const { page } = browser;
    await signIn(keys.admin);
    // The dispute due in 2 days is on the home page, its amount written once ("150.00 USD").
    const due = page.getByRole('row').filter({ has: page.getByRole('link', { name: dispute.id as string }) });
    expect((await due.locator('td.num').textContent())?.trim()).toBe('150.00 USD');
    await checkScreen(page, 'home');
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Payments' }).click();
    await page.waitForURL((u) => u.pathname === '/console/payments');
    await page.getByLabel('Payment id, order id, customer email or processor reference').fill(`ORD-${tag}-2`);
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL((u) => u.searchParams.get('q') === `ORD-${tag}-2`);
    await checkScreen(page, 'payments');
    await page
      .getByRole('link', { name: declined.id as string })
      .first()
      .click();
    await page.waitForURL((u) => u.pathname === `/console/payments/${declined.id}`);
    const what = page.getByRole('region', { name: 'What happened' });
    expect(await what.locator('.explanation').textContent()).toContain(
      (declined.failure as Json).explanation,
    );
    expect(await what.locator('dt:has-text("Recommended action") + dd').textContent()).toBe(
      (declined.failure as Json).recommended_action,
    );
    const graph = page.locator('svg.execution-graph').first();
    await graph.waitFor({ state: 'visible' });
    expect(await graph.locator('rect, g').count()).toBeGreaterThan(0);
    // The whole story fits the window's width (a long error cause once widened it to 1,590 px).
    expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    await checkScreen(page, 'payment');
  });

  test('ops approves a held payment from the reviews queue', async () => {
    const { page } = browser;
    await go('/reviews');
    expect(await h1()).toBe('Reviews');
    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: held.id as string }) });
    await checkScreen(page, 'reviews');
    // By keyboard alone: type the reason, Tab to Approve, Enter.
    await row.getByLabel('Reason for the decision').focus();
    await page.keyboard.type('Known customer, verified by phone');
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement?.textContent')).toBe('Approve');
    await page.keyboard.press('Enter');
    await page.waitForURL((u) => u.pathname === '/console/reviews');
    expect(await flash()).toMatch(new RegExp(`^Review of ${held.id} approved: the payment is `));
    expect(await page.getByRole('link', { name: held.id as string }).count()).toBe(0);
    const after = await until('the approved payment to move on', async () => {
      const p = (await api('GET', `/v1/payments/${held.id}`)).body;
      return p.status === 'pending_review' ? undefined : p;
    });
    expect(after.status).not.toBe('canceled');
  });

  test('an admin refunds a captured payment from its page', async () => {
    const { page } = browser;
    await go(`/payments/${captured.id}`);
    await page.getByLabel(/^Amount in USD/).fill('20.00');
    await page.getByRole('button', { name: 'Refund' }).click();
    await page.waitForURL((u) => u.pathname === `/console/payments/${captured.id}`);
    expect(await flash()).toMatch(/^Refund re_\w+ of 20\.00 USD: /);
    const p = await until('the refund booked', async () => {
      const x = (await api('GET', `/v1/payments/${captured.id}`)).body;
      return x.amount_refunded === 2000 ? x : undefined;
    });
    expect(p.amount_refunded).toBe(2000);
    await checkScreen(page, 'payment-refunded');
  });

  test('executions: the list and one execution', async () => {
    const { page } = browser;
    await go('/executions');
    expect(await h1()).toBe('Executions');
    await checkScreen(page, 'executions');
    await page.locator('main a[href^="/console/executions/"]').first().click();
    await page.waitForURL((u) => /^\/console\/executions\/[^/]+$/.test(u.pathname));
    expect(await h1()).toMatch(/^Execution /);
    await page.locator('svg.execution-graph').first().waitFor({ state: 'visible' });
    await checkScreen(page, 'execution');
  });

  test('a dispute due soon is listed; evidence is submitted from its page', async () => {
    const { page } = browser;
    await go('/disputes');
    expect(await h1()).toBe('Disputes');
    const soon = page.locator('h2#due-soon ~ *').getByRole('link', { name: dispute.id as string });
    await soon.first().waitFor();
    await checkScreen(page, 'disputes');
    await soon.first().click();
    await page.waitForURL((u) => u.pathname === `/console/disputes/${dispute.id}`);
    await checkScreen(page, 'dispute');
    await page.getByLabel('Other evidence (text)').fill('Delivered and signed for on the 3rd');
    await page.getByRole('button', { name: 'Submit evidence' }).click();
    await page.waitForURL((u) => u.pathname === `/console/disputes/${dispute.id}`);
    expect(await flash()).toBe('Evidence submitted; the dispute is under review.');
    expect(rt.stripe!.dispute(dispute.processor_reference as string)!.evidence).toMatchObject({
      uncategorized_text: 'Delivered and signed for on the 3rd',
    });
  });

  test('processors, routing, subscriptions, analytics', async () => {
    const { page } = browser;
    await go('/processors');
    await page.getByRole('rowheader', { name: 'stripe' }).first().waitFor();
    await checkScreen(page, 'processors');
    await go('/processors/routing');
    await page.getByLabel('Merchant').selectOption(merchant);
    await page.getByRole('button', { name: 'Show' }).click();
    await page.waitForURL((u) => u.searchParams.get('merchant') === merchant);
    expect(await h1()).toBe(`Routing of ${merchant}`);
    await page.getByLabel('amount (minor units)').fill('1000');
    await page.getByLabel('currency').fill('usd');
    await page.getByRole('button', { name: 'Simulate' }).click();
    await page.getByRole('heading', { name: 'Decision' }).waitFor();
    expect(await page.locator('dt:has-text("Processors, in order") + dd').textContent()).toMatch(
      /stripe|adyen/,
    );
    await checkScreen(page, 'routing');
    await go('/subscriptions');
    expect(await h1()).toBe('Subscriptions');
    await page.getByLabel('Merchant').selectOption(merchant);
    await page.getByRole('button', { name: 'Show' }).click();
    await page.getByRole('rowheader', { name: subscription.id as string }).waitFor();
    await page.getByRole('cell', { name: 'Carol' }).first().waitFor();
    await checkScreen(page, 'subscriptions');
    await go('/analytics');
    // Both charts drawn by analytics.js (uPlot) under the CSP.
    await page.locator('[data-chart="payments"] canvas').waitFor();
    await page.locator('[data-chart="approval"] canvas').waitFor();
    await checkScreen(page, 'analytics');
  });

  test('finance resolves a reconciliation exception, downloads the day’s summary report, reads the ledger', async () => {
    const { page } = browser;
    await signIn(keys.finance);
    await go('/finance');
    expect(await h1()).toBe('Finance');
    await checkScreen(page, 'finance');
    await page.getByLabel(`Note for ${EXCEPTION}`).fill('Stripe confirmed a 1.00 surcharge');
    await page.getByRole('button', { name: 'Resolve' }).click();
    await page.waitForURL((u) => u.pathname === '/console/finance');
    expect(await flash()).toBe(`Exception ${EXCEPTION} resolved.`);
    expect((await getException(merchant, EXCEPTION))!.status).toBe('resolved');

    await go(`/finance/reports?kind=summary&date=${today}`);
    await checkScreen(page, 'reports');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page
        .getByRole('row', { name: /summary\.csv/ })
        .getByRole('link', { name: 'Download' })
        .click(),
    ]);
    expect(download.suggestedFilename()).toBe(`platform-summary-${today}-summary.csv`);
    const key = `platform/summary/${today}/summary.csv`;
    expect(fs.readFileSync((await download.path())!, 'utf8')).toBe(
      fs.readFileSync(path.join(dir, 'buckets', 'paystep-reports', key), 'utf8'),
    );

    await go('/finance/ledger');
    await page.getByRole('button', { name: 'Run the check' }).click();
    await page.waitForURL((u) => u.pathname === '/console/finance/ledger');
    // The check runs in the background (the ledger-checks queue): the page shows it once finished.
    await until('the ledger check to finish', async () => (await getLedgerCheck())?.status === 'finished');
    await page.reload();
    await page.getByRole('heading', { name: 'Invariant check: holds' }).waitFor();
    await checkScreen(page, 'ledger');
  });

  test('support: cannot open finance, cannot refund over its limit', async () => {
    const { page } = browser;
    await signIn(keys.support);
    const res = await page.goto(`${rt.url}/console/finance`);
    expect(res?.status()).toBe(403);
    expect(await page.getByRole('alert').textContent()).toContain('reconciliation.read');
    await checkScreen(page, 'forbidden-finance');
    await go(`/payments/${captured.id}`);
    // Empty amount: everything refundable (130.00 USD), over support's 100.00.
    await page.getByRole('button', { name: 'Refund' }).click();
    await page.waitForLoadState();
    expect(await page.getByRole('alert').textContent()).toContain(
      'A refund of 130.00 USD is over your refund limit of 100.00 USD',
    );
    await checkScreen(page, 'refund-refused');
    expect((await api('GET', `/v1/payments/${captured.id}`)).body.amount_refunded).toBe(2000);
  });

  test('the audit log lists the refund, the review decision, the evidence and the resolution', async () => {
    const { page } = browser;
    await signIn(keys.admin);
    await go('/audit');
    for (const action of ['refund.create', 'review.approve', 'dispute.evidence', 'reconciliation.resolve'])
      await page.getByRole('cell', { name: action }).first().waitFor();
    await checkScreen(page, 'audit');
    await signOut();
  });
});
