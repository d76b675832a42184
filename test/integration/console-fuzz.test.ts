/**
 * Fuzzing the signed-in console: every route of lambdas/console/pages/index.ts (so a new screen is
 * fuzzed without touching this file), signed in as each role (support with a refund limit,
 * finance, admin), with malformed ids, query parameters, form fields and CSRF tokens, on one
 * local runtime. Whatever the request: never a 5xx, never a stack trace, and nothing the request
 * carried comes back unescaped (every generated value carries `<fz` and quotes; the page may show
 * it only as `&lt;fz`). The runtime still answers after. A failure prints its seed: replay it with
 * FUZZ_SEED=<seed>; FUZZ_STATS=1 prints how many answers of each method and status the run got.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { routes } from '../../lambdas/console/pages/index.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { createOperator } from '../../lambdas/store/operators.ts';
import { apiClient } from '../fixtures/api.ts';

const ROLES = ['support', 'finance', 'admin'] as const;
type Role = (typeof ROLES)[number];

/** Query and form fields the screens read (lambdas/console/pages/*), and a few they do not. */
const QUERY_KEYS = [
  'q',
  'status',
  'from',
  'to',
  'merchant',
  'machine',
  'before',
  'after',
  'kind',
  'key',
  'date',
  'owner',
  'id',
  'check',
  'dimension',
  'format',
  'next',
  'operator',
  'target_kind',
  'target_id',
  'processor',
  'limit',
  'x',
];
const FORM_KEYS = [
  'amount',
  'reason',
  'decision',
  'token',
  'back',
  'note',
  'owner',
  'id',
  'confirm',
  'processor',
  'product_description',
  'uncategorized_text',
  'customer_email_address',
  'service_date',
  'stack',
  'next',
  'submit',
];

/** Odd text: always carries `<fz` and quotes, so an unescaped reflection is visible. */
const hostile = fc
  .tuple(
    fc.constantFrom(
      '',
      '<fz>',
      '"><fz x=1>',
      "'<fz'",
      '<fz/onerror=alert(1)>',
      '</textarea><fz>',
      '<fz>${7*7}',
      '<fz>\u0000\u202e',
      '<fz>%00%3c',
      '<fz>../../etc/passwd',
      '<fz>' + 'x'.repeat(3000),
    ),
    fc.string({ maxLength: 12 }),
  )
  .map(([a, b]) => (a ? `${a}${b}` : `<fz${b}`));

/** What a field may hold: hostile text, numbers of every shape, dates, ids, empties, lists. */
const value = (real: string[]) =>
  fc.oneof(
    hostile,
    fc.constantFrom(
      '',
      '0',
      '-1',
      '1e309',
      'NaN',
      '12.345',
      '1,000.50',
      '99999999999999999999',
      '2026-02-30',
      '2026-01-01',
      'approve',
      'reject',
      'yes',
      'stripe',
      'adyen',
      'platform',
      'payment',
      'FAILED',
      'captured',
      ...real,
    ),
    fc.integer().map(String),
  );

/** A path id: a real one, one of the right shape that exists nowhere, or garbage (encoded). */
const pathId = (real: string[]) =>
  fc.oneof(
    fc.constantFrom(...real),
    fc.constantFrom(
      'pay_AAAAAAAAAAAAAAAAAAAAAA',
      'dp_x',
      'inc_0',
      'op_1',
      're_1',
      '..',
      '%2e%2e',
      'x'.repeat(300),
    ),
    hostile.map((s) => encodeURIComponent(s)),
  );

describe('console fuzz, signed in', () => {
  let dir: string;
  let rt: Runtime;
  const sessions = {} as Record<Role, { cookie: string; csrf: string }>;
  const real: string[] = [];
  const stats = new Map<string, number>();

  const request = async (method: string, p: string, cookie: string, form?: Record<string, string>) => {
    const res = await fetch(`${rt.url}${p}`, {
      method,
      redirect: 'manual',
      headers: {
        cookie,
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    const body = await res.text();
    if (process.env.FUZZ_STATS)
      stats.set(`${method} ${res.status}`, (stats.get(`${method} ${res.status}`) ?? 0) + 1);
    return { status: res.status, body, location: res.headers.get('location') };
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-console-fuzz-'));
    rt = await startRuntime({ dataDir: dir, port: 0, scheduler: false });
    const m = await createMerchant('Fuzz shop');
    const api = apiClient(() => rt.url!, m.apiKey);
    const captured = await api('POST', '/v1/payments', {
      amount: 5000,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      order_id: 'ord-fuzz-1',
    });
    const held = await api('POST', '/v1/payments', {
      amount: 2_000_000,
      currency: 'usd',
      payment_method: 'pm_card_visa',
    });
    expect([captured.body.status, held.body.status]).toEqual(['captured', 'pending_review']);
    real.push(captured.body.id as string, held.body.id as string, m.merchant.id, 'ord-fuzz-1');
    for (const role of ROLES) {
      const { key } = await createOperator({
        name: `fz-${role}`,
        role,
        ...(role === 'support' ? { refund_limit: 2500 } : {}),
      });
      const res = await fetch(`${rt.url}/console/login`);
      const login = res.headers
        .getSetCookie()
        .find((c) => c.startsWith('ps_login='))!
        .split(';')[0]!;
      const token = /name="login_token" value="([^"]+)"/.exec(await res.text())![1]!;
      const r = await fetch(`${rt.url}/console/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: login, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ login_token: token, key, next: '/' }).toString(),
      });
      expect(r.status).toBe(303);
      const cookie = r.headers
        .getSetCookie()
        .find((c) => c.startsWith('ps_session='))!
        .split(';')[0]!;
      const home = await request('GET', '/console', cookie);
      expect(home.status).toBe(200);
      sessions[role] = { cookie, csrf: /name="csrf" value="([^"]+)"/.exec(home.body)![1]! };
    }
  });

  afterAll(async () => {
    if (process.env.FUZZ_STATS) process.stderr.write(`console fuzz answers: ${JSON.stringify([...stats])}\n`);
    await rt?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const check = (what: string, a: { status: number; body: string; location: string | null }) => {
    if (a.status >= 500) throw new Error(`${what} → ${a.status}\n${a.body.slice(0, 500)}`);
    if (/\bat [^\n]*\.(ts|js):\d+|node:internal|TypeError:|ReferenceError:/.test(a.body))
      throw new Error(`${what} → a stack trace or error name\n${a.body.slice(0, 800)}`);
    const i = a.body.search(/<fz/i);
    if (i >= 0)
      throw new Error(`${what} → unescaped input at ${i}: ${a.body.slice(Math.max(0, i - 120), i + 80)}`);
    if (a.location && !a.location.startsWith('/console'))
      throw new Error(`${what} → redirect out of the console: ${a.location}`);
  };

  // First: the fuzz below may refund the payment in full.
  test('a refused form leads back to the page it came from, not only home', async () => {
    const s = sessions.support;
    const [payment] = real;
    const page = await request('GET', `/console/payments/${payment}`, s.cookie);
    const token = /\/refund"[\s\S]*?name="token" value="([^"]+)"/.exec(page.body)![1]!;
    for (const amount of ['0.001', '40.00']) {
      const a = await request('POST', `/console/payments/${payment}/refund`, s.cookie, {
        csrf: s.csrf,
        token,
        amount,
        reason: 'duplicate',
      });
      expect(a.status).toBe(amount === '40.00' ? 403 : 400);
      expect(a.body).toContain(`<a href="/console/payments/${payment}">Back to the page you came from</a>`);
    }
    const resolve = await request('POST', '/console/finance/exceptions/resolve', sessions.finance.cookie, {
      csrf: sessions.finance.csrf,
      id: 'amount_mismatch:stripe:txn_none',
      owner: 'platform',
      note: 'n',
    });
    expect(resolve.status).toBeGreaterThanOrEqual(400);
    expect(resolve.body).toContain('<a href="/console/finance">Back to the page you came from</a>');
  });

  test('every route, every role: no 5xx, no stack trace, nothing reflected unescaped', async () => {
    const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Date.now() % 1_000_000;
    // POSTs get more runs (and mostly a valid token): they are where a screen acts.
    const runsOf = (method: string) => (method === 'POST' ? 6 : 3);
    let requests = 0;
    for (const role of ROLES) {
      const s = sessions[role];
      for (const route of routes) {
        const req = fc.record({
          ids: fc.array(pathId(real), { minLength: 3, maxLength: 3 }),
          query: fc.dictionary(fc.constantFrom(...QUERY_KEYS), value(real), { maxKeys: 4 }),
          form: fc.dictionary(fc.constantFrom(...FORM_KEYS), value(real), { maxKeys: 6 }),
          csrf: fc.oneof(
            { weight: 5, arbitrary: fc.constant('valid') },
            { weight: 1, arbitrary: fc.constantFrom('missing', 'wrong', 'hostile', 'other-role') },
          ),
        });
        await fc.assert(
          fc.asyncProperty(req, async ({ ids, query, form, csrf }) => {
            let n = 0;
            const p = route.path.replace(/\{[a-z_]+\}/g, () => ids[n++]!);
            const qs = new URLSearchParams(query).toString();
            const url = `/console${p === '/' ? '' : p}${qs ? `?${qs}` : ''}`;
            const what = `${role} ${route.method} ${url.slice(0, 300)} (seed ${seed})`;
            requests++;
            if (route.method === 'GET') {
              check(what, await request('GET', url, s.cookie));
              return;
            }
            const token =
              csrf === 'valid'
                ? s.csrf
                : csrf === 'wrong'
                  ? s.csrf.slice(0, -1) + (s.csrf.endsWith('A') ? 'B' : 'A')
                  : csrf === 'hostile'
                    ? '<fz>"'
                    : csrf === 'other-role'
                      ? sessions[role === 'admin' ? 'support' : 'admin'].csrf
                      : undefined;
            const body = { ...form, ...(token !== undefined ? { csrf: token } : {}) };
            const a = await request('POST', url, s.cookie, body);
            check(`${what} csrf=${csrf} form=${JSON.stringify(form).slice(0, 300)}`, a);
            // Without the session's token nothing runs: 403, or 404 when the path names no route.
            if (csrf !== 'valid') expect([403, 404]).toContain(a.status);
          }),
          { numRuns: runsOf(route.method), seed, endOnFailure: true },
        );
      }
    }
    expect(requests).toBe(ROLES.length * routes.reduce((n, r) => n + runsOf(r.method), 0));
    // Still answering, and the sessions still work.
    expect((await request('GET', '/console', sessions.admin.cookie)).status).toBe(200);
  });

  test('signed out, and with a forged or malformed session cookie: the sign-in page, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        fc.oneof(
          fc.constant(''),
          hostile.map((h) => `ps_session=${encodeURIComponent(h)}`),
          fc.constant('ps_session='),
          fc.constant(`ps_session=${'A'.repeat(43)}`),
        ),
        async (route, cookie) => {
          const p = route.path.replace(/\{[a-z_]+\}/g, 'x');
          const a = await request(
            route.method,
            `/console${p === '/' ? '' : p}`,
            cookie,
            route.method === 'POST' ? { csrf: 'x' } : undefined,
          );
          check(`${route.method} ${p} cookie=${cookie.slice(0, 60)}`, a);
          expect([303, 403]).toContain(a.status);
        },
      ),
      { numRuns: 60 },
    );
  });
});
