/**
 * The ops console in a real browser (Debian's Chromium, test/browser/fixture.ts) against the local
 * runtime: sign-in, the home page, the audit log, a support operator refused the audit log, sign
 * out. Every screen is screenshotted and checked with axe-core; no page may trip its own
 * Content-Security-Policy (htmx and uPlot included).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createOperator } from '../../lambdas/store/operators.ts';
import { checkScreen, describeInBrowser, launchBrowser, type Browser } from './fixture.ts';

describeInBrowser('ops console in the browser', () => {
  let dir: string;
  let rt: Runtime;
  let browser: Browser;
  let adminKey: string;
  let supportKey: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-browser-'));
    rt = await startRuntime({ dataDir: dir, port: 0, scheduler: false });
    adminKey = (await createOperator({ name: 'ann', role: 'admin' })).key;
    supportKey = (await createOperator({ name: 'sam', role: 'support' })).key;
    browser = await launchBrowser();
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    await rt?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const signIn = async (key: string) => {
    const { page } = browser;
    await page.goto(`${rt.url}/console`);
    expect(new URL(page.url()).pathname).toBe('/console/login');
    await page.getByLabel('Operator key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => u.pathname === '/console');
  };
  const signOut = async () => {
    const { page } = browser;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL((u) => u.pathname === '/console/login');
    expect((await page.getByRole('status').textContent())?.trim()).toBe('You are signed out.');
  };

  test('sign in: the sign-in page, then home', async () => {
    const { page } = browser;
    await page.goto(`${rt.url}/console/audit`);
    expect(new URL(page.url()).pathname).toBe('/console/login');
    await checkScreen(page, 'login');
    await signIn(adminKey);
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Home');
    await page.getByRole('heading', { name: 'Needs a person' }).waitFor();
    // The chart is drawn (htmx, uPlot and console.js loaded under the CSP).
    await page.locator('figure.chart canvas').first().waitFor();
    // The first Tab reaches the skip link.
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement?.textContent')).toBe('Skip to content');
    await checkScreen(page, 'home');
  });

  test('the audit log lists the sign-in', async () => {
    const { page } = browser;
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Audit log' }).click();
    await page.waitForURL((u) => u.pathname === '/console/audit');
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Audit log');
    await page.getByRole('cell', { name: 'operator.sign_in' }).first().waitFor();
    await checkScreen(page, 'audit');
    await signOut();
  });

  test('support cannot open the audit log (403), and has no link to it', async () => {
    const { page } = browser;
    await signIn(supportKey);
    expect(await page.getByRole('link', { name: 'Audit log' }).count()).toBe(0);
    const res = await page.goto(`${rt.url}/console/audit`);
    expect(res?.status()).toBe(403);
    expect(await page.getByRole('alert').textContent()).toContain('audit.read');
    await checkScreen(page, 'forbidden');
    await signOut();
    await checkScreen(page, 'signed-out');
    expect(browser.cspViolations).toEqual([]);
  });
});
