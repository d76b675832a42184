/**
 * The ops console over HTTP on the local runtime (same port as the API): operators created with
 * the CLI sign in with their key; signed-out requests go to the sign-in page; roles limit pages;
 * a POST without the session's CSRF token does nothing; actions are in the audit log; the home
 * page renders through the console function's own `uses` (the local runtime enforces them).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { runCli } from '../fixtures/cli.ts';
import { consoleHttp } from '../fixtures/console-http.ts';

describe('ops console on the local runtime', () => {
  let dir: string;
  let rt: Runtime;
  let adminKey: string;
  let supportKey: string;

  const { get, post, signIn } = consoleHttp(() => rt.url!);

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-console-'));
    rt = await startRuntime({ dataDir: dir, port: 0, scheduler: false });
    const admin = await runCli(dir, 'operator', 'create', '--name', 'ann', '--role', 'admin');
    expect(admin.code).toBe(0);
    adminKey = JSON.parse(admin.stdout).key;
    const m = await createMerchant('Acme');
    const support = await runCli(
      dir,
      'operator',
      'create',
      '--name',
      'sam',
      '--role',
      'support',
      '--merchant',
      m.merchant.id,
      '--refund-limit',
      '2500',
    );
    expect(support.code).toBe(0);
    const created = JSON.parse(support.stdout);
    expect(created).toMatchObject({
      object: 'operator',
      name: 'sam',
      role: 'support',
      merchant_id: m.merchant.id,
      refund_limit: 2500,
    });
    expect(created.id).toMatch(/^op_/);
    supportKey = created.key;
  }, 90_000);
  afterAll(async () => {
    await rt?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the CLI refuses unknown roles and merchants naming them, lists without keys, disables', async () => {
    const role = await runCli(dir, 'operator', 'create', '--name', 'x', '--role', 'boss');
    expect(role.code).toBe(2);
    expect(role.error).toContain("'boss'");
    const merchant = await runCli(
      dir,
      'operator',
      'create',
      '--name',
      'x',
      '--role',
      'support',
      '--merchant',
      'mch_nope',
    );
    expect(merchant.code).toBe(2);
    expect(merchant.error).toContain("'mch_nope'");
    expect((await runCli(dir, 'operator', 'create', '--name', 'x')).code).toBe(2);
    expect((await runCli(dir, 'operator', 'create', '--name', 'ann', '--role', 'admin')).code).toBe(2);
    const list = await runCli(dir, 'operator', 'list');
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout).data.map((o: { name: string }) => o.name)).toEqual(['ann', 'sam']);
    expect(list.stdout).not.toContain('opk_');
    expect(list.stdout).not.toContain('key');
    expect((await runCli(dir, 'operator', 'disable', '--name', 'nobody')).code).toBe(2);
  });

  test('signed out: every page sends the browser to sign in', async () => {
    for (const p of ['/console', '/console/audit']) {
      const r = await get(p);
      expect(r.status).toBe(303);
      expect(r.headers.get('location')).toMatch(/^\/console\/login/);
    }
    const login = await get('/console/login');
    expect(login.status).toBe(200);
    expect(login.headers.get('content-security-policy')).toContain("default-src 'none'");
  });

  test('sign-in sets the session cookie (not Secure on http://localhost); home renders; support cannot open the audit log', async () => {
    const admin = await signIn(adminKey);
    expect(admin.setCookie).toMatch(/HttpOnly; SameSite=Strict; Path=\/console; Max-Age=28800$/);
    expect(admin.home.body).toContain('Needs a person');
    expect(admin.home.body).toContain('Processor health');
    expect(admin.home.body).toContain('href="/console/audit"');
    const support = await signIn(supportKey);
    expect(support.home.body).not.toContain('href="/console/audit"');
    expect(support.home.body).toMatch(/Signed in as\s+<strong>sam<\/strong>/);
    const audit = await get('/console/audit', support.cookie);
    expect(audit.status).toBe(403);
    expect(audit.body).toContain('audit.read');
  });

  test('a POST without the CSRF token does nothing; sign-out with it ends the session; both sign-ins and the sign-out are audited', async () => {
    const support = await signIn(supportKey);
    const forged = await post('/console/logout', {}, support.cookie);
    expect(forged.status).toBe(403);
    expect((await get('/console', support.cookie)).status).toBe(200);
    const out = await post('/console/logout', { csrf: support.csrf }, support.cookie);
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toBe('/console/login');
    expect((await get('/console', support.cookie)).status).toBe(303);

    const admin = await signIn(adminKey);
    const log = await get('/console/audit?operator=sam', admin.cookie);
    expect(log.status).toBe(200);
    expect(log.body).toContain('operator.sign_out');
    expect(log.body).toContain('operator.sign_in');
  });

  test('a disabled operator is signed out at the next request', async () => {
    const support = await signIn(supportKey);
    expect((await runCli(dir, 'operator', 'disable', '--name', 'sam')).code).toBe(0);
    expect((await get('/console', support.cookie)).status).toBe(303);
  });
});
