/**
 * The browser harness of the console's tests (docs/console.md "How to add a screen"): Debian's
 * Chromium (`/usr/bin/chromium`; .ci/run installs it with apt: playwright never downloads a browser
 * here) driven by playwright-core, with flags that suit a closed network and a fresh profile per
 * run; each screen's screenshot written to test-artifacts/screenshots/<name>.png; axe-core checks
 * each screen for accessibility (serious and critical violations fail); Content-Security-Policy
 * violations the page reports are collected (the console must need no exception to its policy).
 *
 * Without /usr/bin/chromium the browser suites are skipped with a message, unless CI is set: in
 * CI a missing browser fails them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const SCREENSHOTS = path.resolve('test-artifacts', 'screenshots');
const AXE = path.resolve('node_modules', 'axe-core', 'axe.min.js');

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const inCi = () => /^(1|true|yes)$/i.test(process.env.CI ?? '');

/**
 * `describe`, or `describe.skip` with a message when there is no Chromium and CI is not set. In
 * CI the suite runs and fails at launch if the browser is missing.
 */
export function describeInBrowser(name: string, fn: () => void): void {
  if (!fs.existsSync(CHROMIUM) && !inCi()) {
    process.stderr.write(
      `\n[browser tests] skipped "${name}": ${CHROMIUM} is not installed (apt-get install chromium; CI=true makes this a failure)\n`,
    );
    describe.skip(name, fn);
    return;
  }
  describe(name, fn);
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** CSP violations reported by the pages so far. */
  cspViolations: string[];
  close(): Promise<void>;
}

/** Launches Chromium with a fresh profile and opens one page. */
export async function launchBrowser(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM))
    throw new Error(
      `${CHROMIUM} is missing: the browser tests need Debian's chromium (apt-get install chromium)`,
    );
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 900 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const cspViolations: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  return {
    context,
    page,
    cspViolations,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Writes the page's screenshot to test-artifacts/screenshots/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/**
 * Runs axe-core on the page: the serious and critical violations (an empty list passes). Injected
 * through the DevTools protocol (page.evaluate), which the page's CSP does not govern.
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(`${fs.readFileSync(AXE, 'utf8')}\n;0`);
  const result = (await page.evaluate(`axe.run(document, { resultTypes: ['violations'] })`)) as {
    violations: AxeViolation[];
  };
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target })),
    }));
}

/** A screen checked as the suite checks every screen: screenshot, then no serious accessibility problem. */
export async function checkScreen(page: Page, name: string): Promise<void> {
  await screenshot(page, name);
  expect(await axeViolations(page)).toEqual([]);
}
