/**
 * The console's core on a local DynamoDB table (test/unit/store-local-table.ts): the operator,
 * session and audit stores, and the handler as API Gateway calls it: sign-in, cookies, CSRF, role
 * checks, path parameters, forms, error pages, redirects with a flash, downloads, escaping, assets
 * and the security headers.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { envVarFor } from '../../lib/topology.ts';
import { listAudit, writeAudit } from '../../lambdas/store/audit.ts';
import { countOpenSince, countWaitingForReview } from '../../lambdas/store/open-items.ts';
import { createPayment } from '../../lambdas/store/payments.ts';
import {
  countOpenExceptions,
  openException,
  someOpenExceptions,
} from '../../lambdas/store/reconciliation.ts';
import { answerableDisputes, createDispute } from '../../lambdas/store/disputes.ts';
import type { DisputeStatus } from '../../lambdas/disputes/model.ts';
import { paymentItem } from '../fixtures/payments.ts';
import {
  createOperator,
  createSession,
  deleteSession,
  disableOperator,
  getSession,
  listOperators,
  LOGIN_FAILURE_LIMIT,
  operatorForKey,
  SESSION_SECONDS,
} from '../../lambdas/store/operators.ts';
import { parseForm, serveConsole, setExtraRoutesForTest } from '../../lambdas/console/handler.ts';
import { html } from '../../lambdas/console/html.ts';
import { csrfTokenFor, csrfValid, parseCookies, serializeCookie } from '../../lambdas/console/session.ts';
import { ConsoleError, type ConsoleRoute } from '../../lambdas/console/types.ts';
import { startLocalTable, type LocalTable } from './store-local-table.ts';

const PEPPER = envVarFor.secretValue('api-key-pepper');
let table: LocalTable;

function event(
  method: string,
  path: string,
  o: {
    cookie?: string;
    form?: Record<string, string>;
    query?: Record<string, string>;
    headers?: Record<string, string>;
    ip?: string;
  } = {},
): APIGatewayProxyEvent {
  return {
    httpMethod: method,
    path,
    resource: '/console/{proxy+}',
    headers: {
      host: 'localhost:3000',
      ...(o.cookie ? { Cookie: o.cookie } : {}),
      ...(o.form ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {}),
      ...o.headers,
    },
    multiValueHeaders: {},
    queryStringParameters: o.query ?? null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    requestContext: {
      requestId: 'req-unit',
      stage: 'prod',
      identity: { sourceIp: o.ip ?? '10.0.0.1' },
    } as unknown as APIGatewayProxyEvent['requestContext'],
    body: o.form ? new URLSearchParams(o.form).toString() : null,
    isBase64Encoded: false,
  };
}

const cookiesOf = (r: APIGatewayProxyResult) => (r.multiValueHeaders?.['set-cookie'] ?? []) as string[];
const cookieValue = (r: APIGatewayProxyResult, name: string) =>
  cookiesOf(r)
    .map((c) => parseCookies(c.split(';')[0]))
    .find((c) => name in c)?.[name];

/** Signs in through the login form, as a browser: returns the Cookie header of the session. */
async function signIn(key: string, ip = '10.0.0.1'): Promise<{ cookie: string; csrf: string }> {
  const form = await serveConsole(event('GET', '/console/login', { ip }));
  const loginToken = /name="login_token" value="([^"]+)"/.exec(form.body)![1]!;
  const r = await serveConsole(
    event('POST', '/console/login', {
      ip,
      cookie: `ps_login=${cookieValue(form, 'ps_login')}`,
      form: { login_token: loginToken, key, next: '/audit' },
    }),
  );
  expect(r.statusCode).toBe(303);
  const cookie = `ps_session=${cookieValue(r, 'ps_session')}`;
  const page = await serveConsole(event('GET', '/console/x-echo', { cookie }));
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!;
  return { cookie, csrf };
}

const echo: ConsoleRoute[] = [
  {
    method: 'GET',
    path: '/x-echo',
    permission: 'home.read',
    handler: async (req) => ({
      kind: 'page',
      title: 'Echo',
      nav: 'home',
      body: html`<p id="q">${req.query.text ?? ''}</p>
        <a href="/console/payments">link</a>`,
    }),
  },
  {
    method: 'GET',
    path: '/x-items/{id}',
    permission: 'payments.read',
    handler: async (req) => ({ kind: 'fragment', body: html`<p>${req.params.id}</p>` }),
  },
  {
    method: 'POST',
    path: '/x-act/{id}',
    permission: 'refunds.create',
    handler: async (req) => {
      if (req.form.amount === 'too-much') throw new ConsoleError(409, 'Over <your> limit');
      await req.audit({
        action: 'test.act',
        target: { kind: 'payment', id: req.params.id! },
        note: req.form.note,
      });
      return { kind: 'redirect', to: `/x-echo`, flash: `Done for ${req.params.id}` };
    },
  },
  {
    method: 'GET',
    path: '/x-boom',
    permission: 'home.read',
    handler: async () => {
      throw new Error('secret internal detail');
    },
  },
  {
    method: 'GET',
    path: '/x-file',
    permission: 'home.read',
    handler: async () => ({
      kind: 'download',
      filename: 'summary "2026".csv',
      contentType: 'text/csv',
      body: 'a,b\n',
    }),
  },
  {
    method: 'GET',
    path: '/x-far',
    permission: 'home.read',
    handler: async () => ({ kind: 'external', to: 'https://bucket.s3.example/k?X-Amz-Signature=ab' }),
  },
];

let supportKey: string;
let adminKey: string;

beforeAll(async () => {
  table = await startLocalTable();
  process.env[PEPPER] = 'unit-test-pepper';
  setExtraRoutesForTest(echo);
  supportKey = (await createOperator({ name: 'sam', role: 'support', refund_limit: 5000 })).key;
  adminKey = (await createOperator({ name: 'ada', role: 'admin' })).key;
}, 60_000);
afterAll(async () => {
  setExtraRoutesForTest([]);
  delete process.env[PEPPER];
  await table?.stop();
});

describe('operator store', () => {
  it('creates operators with a one-time key stored only as a hash; names are unique', async () => {
    const { operator, key } = await createOperator({ name: 'fin', role: 'finance' });
    expect(operator.id).toMatch(/^op_[0-9A-Za-z]{22}$/);
    expect(key).toMatch(/^opk_[0-9A-Za-z]{40}$/);
    expect((await operatorForKey(key))?.id).toBe(operator.id);
    await expect(createOperator({ name: 'fin', role: 'admin' })).rejects.toThrow(/exists/);
    await expect(createOperator({ name: 'Bad Name', role: 'admin' })).rejects.toThrow(/not an operator name/);
    await expect(createOperator({ name: 'x', role: 'boss' as 'admin' })).rejects.toThrow(
      /unknown role 'boss'/,
    );
    await expect(createOperator({ name: 'y', role: 'admin', refund_limit: 5 })).rejects.toThrow(/support/);
    const listed = await listOperators();
    expect(listed.map((o) => o.name)).toEqual(expect.arrayContaining(['ada', 'fin', 'sam']));
    expect(JSON.stringify(listed)).not.toContain(key);
    expect(JSON.stringify(listed)).not.toContain('opk_');
  });
  it('refuses other keys, and a disabled operator’s key', async () => {
    const { key } = await createOperator({ name: 'gone', role: 'support' });
    // Change the last character to one it is not (a fixed 'x' was the same key 1 time in 62).
    const other = `${key.slice(0, -1)}${key.endsWith('x') ? 'y' : 'x'}`;
    expect(await operatorForKey(other)).toBeUndefined();
    expect(await operatorForKey('sk_test_abc')).toBeUndefined();
    expect((await disableOperator('gone'))?.disabled).toBe(true);
    expect(await operatorForKey(key)).toBeUndefined();
    expect(await disableOperator('nobody')).toBeUndefined();
  });
  it('sessions expire after 8 hours and end when deleted', async () => {
    const now = Date.now();
    const { token, session } = await createSession('op_x', now);
    expect(session.expires - session.created).toBe(SESSION_SECONDS * 1000);
    expect((await getSession(token, now + 1000))?.operator_id).toBe('op_x');
    expect(await getSession(token, session.expires)).toBeUndefined();
    expect(await getSession('short')).toBeUndefined();
    await deleteSession(token);
    expect(await getSession(token, now + 1000)).toBeUndefined();
  });
});

describe('audit store', () => {
  it('lists newest first, by operator or object, a page at a time', async () => {
    const who = { id: 'op_audit1', name: 'aud', role: 'admin' };
    const other = { id: 'op_audit2', name: 'aud2', role: 'support' };
    const base = 1_800_000_000_000;
    for (let i = 0; i < 5; i++)
      await writeAudit(
        { action: 'x.do', target: { kind: 'payment', id: `pay_${i % 2}` }, note: `n${i}` },
        i < 3 ? who : other,
        base + i,
      );
    const all = await listAudit({ limit: 3 });
    expect(all.data.map((e) => e.note)).toEqual(['n4', 'n3', 'n2']);
    const rest = await listAudit({ limit: 3, after: all.next });
    expect(rest.data.map((e) => e.note).slice(0, 2)).toEqual(['n1', 'n0']);
    const mine = await listAudit({ limit: 2, operatorId: 'op_audit1' });
    expect(mine.data.map((e) => e.note)).toEqual(['n2', 'n1']);
    expect(
      (await listAudit({ limit: 2, operatorId: 'op_audit1', after: mine.next })).data.map((e) => e.note),
    ).toEqual(['n0']);
    const onPay0 = await listAudit({ limit: 10, target: { kind: 'payment', id: 'pay_0' } });
    expect(onPay0.data.map((e) => e.note)).toEqual(['n4', 'n2', 'n0']);
    expect(onPay0.next).toBeUndefined();
    expect((await listAudit({ limit: 2, after: 'garbage' })).data).toEqual([]);
  });
});

describe('stuck payments for the home page', () => {
  it('counts open payments quiet since before a time, of one merchant or all, up to a cap', async () => {
    const now = 1_900_000_000_000;
    const put = (id: string, merchant: string, status: 'processing' | 'captured', ms: number) =>
      createPayment(paymentItem({ id, merchant_id: merchant, status, created: Math.floor(ms / 1000) }), ms);
    for (let i = 0; i < 6; i++)
      await put(`pay_old${i}`, i < 4 ? 'mch_a' : 'mch_b', 'processing', now - 3_600_000 - i);
    await put('pay_new', 'mch_a', 'processing', now - 1000);
    await put('pay_done', 'mch_a', 'captured', now - 7_200_000);
    const cutoff = now - 900_000;
    expect(await countOpenSince('payment', cutoff, 100)).toEqual({ count: 6, capped: false });
    expect(await countOpenSince('payment', cutoff, 100, 'mch_b')).toEqual({ count: 2, capped: false });
    expect(await countOpenSince('payment', cutoff, 3)).toEqual({ count: 3, capped: true });
    // One merchant's among every merchant's: each shard reads at most cap + 1 entries, then says capped.
    expect(await countOpenSince('payment', cutoff, 1, 'mch_b')).toEqual({ count: 1, capped: true });
  });
});

describe('reviews waiting and open exceptions for the home page', () => {
  it('counts the payments on the reviews queue’s index, of one merchant or all, up to a cap', async () => {
    const now = 1_950_000_000_000;
    for (let i = 0; i < 7; i++)
      await createPayment(
        paymentItem({
          id: `pay_rv${i}`,
          merchant_id: i < 4 ? 'mch_rv' : 'mch_rw',
          status: i === 6 ? 'captured' : 'pending_review',
          created: Math.floor((now + i * 1000) / 1000),
        }),
        now + i * 1000,
      );
    expect(await countWaitingForReview(100)).toEqual({ count: 6, capped: false });
    expect(await countWaitingForReview(100, 'mch_rv')).toEqual({ count: 4, capped: false });
    expect(await countWaitingForReview(100, 'mch_none')).toEqual({ count: 0, capped: false });
    expect(await countWaitingForReview(5)).toEqual({ count: 5, capped: true });
    // One merchant's among every merchant's: past the entries it may read, the count says so.
    expect(await countWaitingForReview(100, 'mch_rw', 3)).toEqual({ count: 0, capped: true });
  });

  it('reads the disputes due by a time from the deadline index, soonest first, of one merchant or all', async () => {
    const s = 2_000_000_000;
    const dispute = (n: number, merchant: string, due: number | null, status: DisputeStatus) =>
      createDispute({
        id: `dp_due${n}`,
        object: 'dispute',
        merchant_id: merchant,
        payment_id: `pay_due${n}`,
        processor: 'stripe',
        processor_reference: `du_due${n}`,
        charge: null,
        payment_intent: null,
        amount: 100,
        currency: 'usd',
        reason: 'fraudulent',
        status,
        processor_status: status,
        network_reason_code: null,
        evidence_due_by: due,
        remind_at: s,
        evidence: {},
        has_evidence: false,
        submission_count: 0,
        evidence_submitted_at: null,
        balance_transactions: [],
        funds_withdrawn_amount: 0,
        funds_reinstated_amount: 0,
        dispute_fee: 0,
        dispute_fee_returned: 0,
        payment_status_before: 'captured',
        accepted_by_merchant: false,
        execution_arn: '',
        workflow_started: false,
        status_seq: 1,
        processor_updated: s,
        applied_events: [],
        created: s - n,
        updated: s,
        closed_at: null,
        version: 1,
      });
    await dispute(1, 'mch_due_a', s + 5 * 86_400, 'needs_response');
    await dispute(2, 'mch_due_b', s + 86_400, 'warning_needs_response');
    await dispute(3, 'mch_due_a', s + 7 * 86_400, 'needs_response'); // due exactly at the bound
    await dispute(4, 'mch_due_a', s + 9 * 86_400, 'needs_response');
    await dispute(5, 'mch_due_a', s + 2 * 86_400, 'lost'); // not answerable: not on the index
    const dueBy = s + 7 * 86_400;
    const ids = async (merchantId?: string) =>
      (await answerableDisputes({ limit: 10, merchantId, dueBy })).data.map((d) => d.id);
    expect(await ids()).toEqual(['dp_due2', 'dp_due1', 'dp_due3']);
    expect(await ids('mch_due_a')).toEqual(['dp_due1', 'dp_due3']);
    expect((await answerableDisputes({ limit: 10 })).data.map((d) => d.id)).toContain('dp_due4');
  });

  it('counts open reconciliation exceptions, and reads a bounded number of them, of one owner or all', async () => {
    const exc = (n: number, merchant: string | null) => ({
      id: `amount_mismatch:stripe:txn_home${n}`,
      type: 'amount_mismatch' as const,
      processor: 'stripe',
      merchant_id: merchant,
      payout_id: 'po_home',
      item_id: `txn_home${n}`,
      payment_id: null,
      reference: null,
      currency: 'usd',
      expected: 100,
      actual: 101,
      reason: 'differs',
    });
    for (let n = 0; n < 4; n++) await openException(exc(n, n < 3 ? 'mch_exc' : null), '2030-01-01');
    expect(await countOpenExceptions(100)).toEqual({ count: 4, capped: false });
    expect(await countOpenExceptions(100, 'mch_exc')).toEqual({ count: 3, capped: false });
    expect(await countOpenExceptions(2)).toEqual({ count: 2, capped: true });
    // The finance overview's bounded read: at most N, saying whether there are more.
    const some = await someOpenExceptions(2);
    expect([some.data.length, some.more]).toEqual([2, true]);
    const own = await someOpenExceptions(10, 'mch_exc');
    expect(own.data.map((e) => e.item_id).sort()).toEqual(['txn_home0', 'txn_home1', 'txn_home2']);
    expect(own.more).toBe(false);
  });
});

describe('cookies and CSRF tokens', () => {
  it('session cookies are HttpOnly, SameSite=Strict, scoped and expiring; Secure when asked', () => {
    const c = serializeCookie('ps_session', 'abc', { path: '/console', maxAge: 28800, secure: true });
    expect(c).toBe('ps_session=abc; HttpOnly; SameSite=Strict; Path=/console; Max-Age=28800; Secure');
    expect(serializeCookie('a', 'b', { path: '/p/console', maxAge: 0, secure: false })).not.toContain(
      'Secure',
    );
    expect(parseCookies('a=1; b="2"; a=3; bad; c=%E0%A4%A')).toEqual({ a: '1', b: '2' });
  });
  it('the CSRF token is an HMAC of the session id under its secret', () => {
    const s = { id: 'ses1', csrf_secret: 'aa'.repeat(32) };
    const t = csrfTokenFor(s);
    expect(csrfValid(s, t)).toBe(true);
    expect(csrfValid(s, undefined)).toBe(false);
    expect(csrfValid(s, t.slice(1))).toBe(false);
    expect(csrfValid({ ...s, id: 'ses2' }, t)).toBe(false);
    expect(csrfValid({ ...s, csrf_secret: 'bb'.repeat(32) }, t)).toBe(false);
  });
  it('forms: urlencoded only, bounded, valid UTF-8, no card numbers', () => {
    expect(parseForm('a=1&b=x+y%21&a=2', 'application/x-www-form-urlencoded; charset=UTF-8')).toEqual(
      Object.assign(Object.create(null), { a: '2', b: 'x y!' }),
    );
    expect(() => parseForm('{"a":1}', 'application/json')).toThrow(/forms only/);
    expect(() => parseForm('a=%E0%A4%A', 'application/x-www-form-urlencoded')).toThrow(/UTF-8/);
    expect(() => parseForm(`a=${'x'.repeat(70_000)}`, 'application/x-www-form-urlencoded')).toThrow(/larger/);
    expect(() => parseForm('note=4242424242424242', 'application/x-www-form-urlencoded')).toThrow(
      /card number/,
    );
    const proto = parseForm('__proto__=x&constructor=y', 'application/x-www-form-urlencoded');
    expect(proto.__proto__).toBe('x');
    expect(Object.getPrototypeOf(proto)).toBeNull();
  });
});

describe('console handler', () => {
  it('sends a signed-out browser to the sign-in page, keeping where it was going', async () => {
    const r = await serveConsole(event('GET', '/console/audit'));
    expect(r.statusCode).toBe(303);
    expect(r.headers!.location).toBe('/console/login?next=%2Faudit');
    const hx = await serveConsole(event('GET', '/console/audit', { headers: { 'HX-Request': 'true' } }));
    expect(hx.headers!['hx-redirect']).toBe('/console/login?next=%2Faudit');
    const post = await serveConsole(event('POST', '/console/x-act/pay_1', { form: { a: '1' } }));
    expect(post.statusCode).toBe(303);
  });
  it('signs in with a key: session cookie flags, then back where it was going', async () => {
    const form = await serveConsole(event('GET', '/console/login', { query: { next: '/audit' } }));
    expect(form.statusCode).toBe(200);
    expect(form.body).toContain('<label for="key">');
    const loginToken = /name="login_token" value="([^"]+)"/.exec(form.body)![1]!;
    const r = await serveConsole(
      event('POST', '/console/login', {
        cookie: `ps_login=${cookieValue(form, 'ps_login')}`,
        form: { login_token: loginToken, key: adminKey, next: '/audit' },
      }),
    );
    expect(r.statusCode).toBe(303);
    expect(r.headers!.location).toBe('/console/audit');
    const session = cookiesOf(r).find((c) => c.startsWith('ps_session='))!;
    expect(session).toMatch(
      /^ps_session=[0-9A-Za-z]{43}; HttpOnly; SameSite=Strict; Path=\/console; Max-Age=28800; Secure$/,
    );
    // An open redirect is not possible through `next`.
    const evil = await serveConsole(
      event('POST', '/console/login', {
        cookie: `ps_login=${cookieValue(form, 'ps_login')}`,
        form: { login_token: loginToken, key: adminKey, next: '//evil.example/x' },
      }),
    );
    expect(evil.headers!.location).toBe('/console');
  });
  it('locally (PAYSTEP_CONSOLE_SECURE_COOKIES=off) cookies are not Secure', async () => {
    process.env.PAYSTEP_CONSOLE_SECURE_COOKIES = 'off';
    try {
      const form = await serveConsole(event('GET', '/console/login'));
      expect(cookiesOf(form)[0]).not.toContain('Secure');
      expect(form.headers!['strict-transport-security']).toBeUndefined();
    } finally {
      delete process.env.PAYSTEP_CONSOLE_SECURE_COOKIES;
    }
  });
  it('a wrong key gets the same answer whoever it names, and too many failures from one address are refused', async () => {
    const ip = '10.9.9.9';
    const attempt = async (key: string) => {
      const form = await serveConsole(event('GET', '/console/login', { ip }));
      const loginToken = /name="login_token" value="([^"]+)"/.exec(form.body)![1]!;
      return serveConsole(
        event('POST', '/console/login', {
          ip,
          cookie: `ps_login=${cookieValue(form, 'ps_login')}`,
          form: { login_token: loginToken, key },
        }),
      );
    };
    const unknown = await attempt(`opk_${'A'.repeat(40)}`);
    const malformed = await attempt('sam');
    expect(unknown.statusCode).toBe(401);
    expect(malformed.statusCode).toBe(401);
    const msg = (b: string) => /<div class="error-box"[^>]*>([\s\S]*?)<\/div>/.exec(b)![1];
    expect(msg(unknown.body)).toBe(msg(malformed.body));
    expect(cookiesOf(unknown).some((c) => c.startsWith('ps_session='))).toBe(false);
    for (let i = 2; i < LOGIN_FAILURE_LIMIT; i++) await attempt('nope');
    const throttled = await attempt(supportKey);
    expect(throttled.statusCode).toBe(429);
    // Another address is not affected.
    expect((await signIn(supportKey, '10.9.9.10')).cookie).toMatch(/^ps_session=/);
  });
  it('a sign-in form without its double-submit cookie is refused', async () => {
    const r = await serveConsole(
      event('POST', '/console/login', { form: { login_token: 'x', key: adminKey } }),
    );
    expect(r.statusCode).toBe(403);
  });
  it('escapes what it shows, adds security headers, and links carry the stage prefix on the AWS endpoint', async () => {
    const { cookie } = await signIn(adminKey);
    const r = await serveConsole(
      event('GET', '/console/x-echo', { cookie, query: { text: '<script>x</script>' } }),
    );
    expect(r.statusCode).toBe(200);
    expect(r.body).toContain('<p id="q">&lt;script&gt;x&lt;/script&gt;</p>');
    expect(r.headers!['content-security-policy']).toContain("script-src 'self'");
    expect(r.headers!['content-security-policy']).not.toContain('unsafe-inline');
    expect(r.headers!['x-frame-options']).toBe('DENY');
    expect(r.headers!['x-content-type-options']).toBe('nosniff');
    expect(r.headers!['referrer-policy']).toBe('same-origin');
    expect(r.headers!['cache-control']).toBe('no-store');
    expect(r.body).toContain('<a class="skip-link" href="#main">');
    expect(r.body).toContain('<main id="main"');
    const aws = await serveConsole(
      event('GET', '/console/x-echo', {
        cookie,
        headers: { Host: 'abc123.execute-api.eu-west-1.amazonaws.com' },
      }),
    );
    expect(aws.body).toContain('href="/prod/console/payments"');
    expect(aws.body).not.toMatch(/(href|src|action)="\/console/);
  });
  it('shows only the sections the role may open; refuses other pages with 403 naming the permission', async () => {
    const support = await signIn(supportKey, '10.0.0.2');
    const home = await serveConsole(event('GET', '/console/x-echo', { cookie: support.cookie }));
    expect(home.body).not.toContain('href="/console/audit"');
    const audit = await serveConsole(event('GET', '/console/audit', { cookie: support.cookie }));
    expect(audit.statusCode).toBe(403);
    expect(audit.body).toContain('audit.read');
    const admin = await signIn(adminKey);
    const page = await serveConsole(event('GET', '/console/x-echo', { cookie: admin.cookie }));
    expect(page.body).toContain('href="/console/audit"');
  });
  it('checks path parameters and answers 404 and 405 pages', async () => {
    const { cookie } = await signIn(adminKey);
    const ok = await serveConsole(event('GET', '/console/x-items/pay_123', { cookie }));
    expect(ok.body).toBe('<p>pay_123</p>');
    const bad = await serveConsole(
      event('GET', `/console/x-items/${encodeURIComponent('a b<')}`, { cookie }),
    );
    expect(bad.statusCode).toBe(404);
    expect((await serveConsole(event('GET', '/console/nothing-here', { cookie }))).statusCode).toBe(404);
    expect((await serveConsole(event('GET', '/console/x-act/pay_1', { cookie }))).statusCode).toBe(405);
  });
  it('runs a POST only with the session’s CSRF token; then redirects with a flash and writes the audit', async () => {
    const { cookie, csrf } = await signIn(supportKey, '10.0.0.3');
    const noToken = await serveConsole(
      event('POST', '/console/x-act/pay_9', { cookie, form: { note: 'no token' } }),
    );
    expect(noToken.statusCode).toBe(403);
    const wrong = await serveConsole(
      event('POST', '/console/x-act/pay_9', { cookie, form: { csrf: `${csrf}x`, note: 'wrong' } }),
    );
    expect(wrong.statusCode).toBe(403);
    expect((await listAudit({ limit: 10, target: { kind: 'payment', id: 'pay_9' } })).data).toEqual([]);
    const done = await serveConsole(
      event('POST', '/console/x-act/pay_9', { cookie, form: { csrf, note: 'by form' } }),
    );
    expect(done.statusCode).toBe(303);
    expect(done.headers!.location).toBe('/console/x-echo');
    const flash = cookieValue(done, 'ps_flash');
    expect(flash).toBe('Done for pay_9');
    const viaHeader = await serveConsole(
      event('POST', '/console/x-act/pay_9', {
        cookie,
        form: { note: 'by header' },
        headers: { 'X-CSRF-Token': csrf },
      }),
    );
    expect(viaHeader.statusCode).toBe(303);
    const entries = (await listAudit({ limit: 10, target: { kind: 'payment', id: 'pay_9' } })).data;
    expect(entries.map((e) => e.note)).toEqual(['by header', 'by form']);
    expect(entries[0]!.operator).toMatchObject({ name: 'sam', role: 'support' });
    const shown = await serveConsole(
      event('GET', '/console/x-echo', { cookie: `${cookie}; ps_flash=${encodeURIComponent(flash!)}` }),
    );
    expect(shown.body).toContain('<div class="flash" role="status">Done for pay_9</div>');
    expect(cookiesOf(shown).some((c) => c.startsWith('ps_flash=;') && c.includes('Max-Age=0'))).toBe(true);
  });
  it('a ConsoleError is a message page with its status; anything else a 500 page with the request id only', async () => {
    const { cookie, csrf } = await signIn(supportKey, '10.0.0.4');
    const refused = await serveConsole(
      event('POST', '/console/x-act/pay_1', { cookie, form: { csrf, amount: 'too-much' } }),
    );
    expect(refused.statusCode).toBe(409);
    expect(refused.body).toContain('Over &lt;your&gt; limit');
    const boom = await serveConsole(event('GET', '/console/x-boom', { cookie }));
    expect(boom.statusCode).toBe(500);
    expect(boom.body).toContain('req-unit');
    expect(boom.body).not.toContain('secret internal detail');
    expect(boom.body).not.toContain('at ');
  });
  it('downloads are attachments with a safe file name', async () => {
    const { cookie } = await signIn(adminKey);
    const r = await serveConsole(event('GET', '/console/x-file', { cookie }));
    expect(r.headers!['content-type']).toBe('text/csv');
    expect(r.headers!['content-disposition']).toBe(
      `attachment; filename="summary__2026_.csv"; filename*=UTF-8''summary%20%222026%22.csv`,
    );
    expect(r.body).toBe('a,b\n');
    // A file too large for a Lambda response: a 303 to its presigned URL, never cached.
    const far = await serveConsole(event('GET', '/console/x-far', { cookie }));
    expect(far.statusCode).toBe(303);
    expect(far.headers!.location).toBe('https://bucket.s3.example/k?X-Amz-Signature=ab');
    expect(far.headers!['cache-control']).toBe('no-store');
  });
  it('signs out: the session is deleted, the cookie cleared (and a POST without the token does nothing)', async () => {
    const { cookie, csrf } = await signIn(adminKey);
    expect((await serveConsole(event('POST', '/console/logout', { cookie, form: {} }))).statusCode).toBe(403);
    const out = await serveConsole(event('POST', '/console/logout', { cookie, form: { csrf } }));
    expect(out.statusCode).toBe(303);
    expect(out.headers!.location).toBe('/console/login');
    expect(cookiesOf(out).find((c) => c.startsWith('ps_session='))).toContain('Max-Age=0');
    const after = await serveConsole(event('GET', '/console/x-echo', { cookie }));
    expect(after.statusCode).toBe(303);
  });
  it('a disabled operator’s session ends at its next request', async () => {
    const { key } = await createOperator({ name: 'leaver', role: 'support' });
    const { cookie } = await signIn(key, '10.0.0.5');
    expect((await serveConsole(event('GET', '/console/x-echo', { cookie }))).statusCode).toBe(200);
    await disableOperator('leaver');
    expect((await serveConsole(event('GET', '/console/x-echo', { cookie }))).statusCode).toBe(303);
  });
  it('serves the assets with long cache lifetimes, and nothing else under /assets', async () => {
    const page = await serveConsole(event('GET', '/console/login'));
    const src = /src="\/console\/assets\/(htmx\.min\.js)\?v=([0-9a-f]{12})"/.exec(page.body)!;
    const js = await serveConsole(event('GET', `/console/assets/${src[1]}`, { query: { v: src[2]! } }));
    expect(js.statusCode).toBe(200);
    expect(js.headers!['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers!['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(js.body.length).toBeGreaterThan(10_000);
    const css = await serveConsole(event('GET', '/console/assets/console.css'));
    expect(css.headers!['content-type']).toBe('text/css; charset=utf-8');
    for (const p of ['../../package.json', '..%2F..%2Fpackage.json', 'constructor', 'nope.js'])
      expect((await serveConsole(event('GET', `/console/assets/${p}`))).statusCode).toBe(404);
  });
});
