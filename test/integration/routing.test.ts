/**
 * Routing configurations on the local runtime (docs/routing.md): GET/PUT /v1/routing versioned
 * and merchant-scoped, a 400 naming the field for a bad configuration, POST /v1/routing/simulate
 * saying which processors a payment would try and why, and `paystep routing show|set|simulate`
 * through the same service (usage errors exit 2 naming the value).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { apiClient, until, type Json } from '../fixtures/api.ts';
import { declareIncident, resolveIncident } from '../../lambdas/incidents/service.ts';
import { forgetHealthCache } from '../../lambdas/processors/health.ts';
import { runCli } from '../fixtures/cli.ts';
import { EXAMPLE_ROUTING } from '../fixtures/routing.ts';

const EXAMPLE = EXAMPLE_ROUTING;

let rt: Runtime;
let dir: string;
let merchantA: string;
let call: ReturnType<typeof apiClient>;
let callB: ReturnType<typeof apiClient>;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-routing-'));
  rt = await startRuntime({ dataDir: dir, port: 0, scheduler: false });
  const a = await createMerchant('Router A');
  const b = await createMerchant('Router B');
  merchantA = a.merchant.id;
  call = apiClient(() => rt.url!, a.apiKey);
  callB = apiClient(() => rt.url!, b.apiKey);
});

afterAll(async () => {
  await rt?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const paystep = (...args: string[]) => runCli(dir, ...args);

describe('GET/PUT /v1/routing', () => {
  test('none at first; a PUT makes version 1; the same again creates nothing; versions stay readable', async () => {
    expect((await call('GET', '/v1/routing')).body).toEqual({
      object: 'routing_config',
      version: 0,
      created: null,
      source: null,
      config: null,
      cascade: { codes: ['issuer_not_available', 'processing_error', 'try_again_later'], max_attempts: 2 },
    });
    const put = await call('PUT', '/v1/routing', EXAMPLE);
    expect(put.status).toBe(200);
    expect(put.headers.get('paystep-routing-version-created')).toBe('true');
    expect(put.body).toMatchObject({ version: 1, source: 'api', config: { default: ['stripe', 'adyen'] } });
    const again = await call('PUT', '/v1/routing', EXAMPLE);
    expect(again.headers.get('paystep-routing-version-created')).toBe('false');
    expect(again.body.version).toBe(1);

    const v2 = await call('PUT', '/v1/routing', { ...EXAMPLE, default: ['adyen'] });
    expect(v2.body.version).toBe(2);
    expect((await call('GET', '/v1/routing')).body.config.default).toEqual(['adyen']);
    expect((await call('GET', '/v1/routing?version=1')).body.config.default).toEqual(['stripe', 'adyen']);
    expect((await call('GET', '/v1/routing?version=9')).status).toBe(404);
    expect((await call('GET', '/v1/routing?version=x')).body.error).toMatchObject({ param: 'version' });
    // Another merchant sees only its own.
    expect((await callB('GET', '/v1/routing')).body.version).toBe(0);
    await call('PUT', '/v1/routing', EXAMPLE); // back to the example for what follows (version 3)
  });

  test('a bad configuration is a 400 naming the field, and nothing is written', async () => {
    const before = (await call('GET', '/v1/routing')).body.version as number;
    const bad = await call('PUT', '/v1/routing', {
      rules: [{ name: 'x', when: { currency: ['eur'] }, split: { stripe: 60, adyen: 30 } }],
      cascade: { codes: ['issuer_unavailable'] },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'routing_config_invalid', param: 'rules[0].split' });
    expect(bad.body.error.message).toContain('the weights must sum to 100 (they sum to 90)');
    expect(bad.body.error.message).toContain('did you mean "issuer_not_available"');
    expect((await call('PUT', '/v1/routing', { default: ['paypal'] })).body.error.param).toBe('default[0]');
    expect((await call('PUT', '/v1/routing')).status).toBe(400);
    expect((await call('PUT', '/v1/routing', '[1,2')).status).toBe(400);
    expect((await call('GET', '/v1/routing')).body.version).toBe(before);
  });
});

describe('POST /v1/routing/simulate', () => {
  test('says which processors a payment would try and which rule decided', async () => {
    const eur = await call('POST', '/v1/routing/simulate', { amount: 1000, currency: 'eur' });
    expect(eur.status).toBe(200);
    expect(eur.body).toMatchObject({
      object: 'routing_simulation',
      version: 3,
      processors: ['adyen', 'stripe'],
      rule: 'eur-to-adyen',
      explanation: 'rule "eur-to-adyen" matched (currency EUR): adyen, stripe in that order.',
    });
    const big = await call('POST', '/v1/routing/simulate', {
      id: 'pay_fixed',
      amount: 150000,
      currency: 'usd',
      customer: { country: 'US' },
    });
    expect(big.body.rule).toBe('big-us');
    const same = await call('POST', '/v1/routing/simulate', {
      id: 'pay_fixed',
      amount: 150000,
      currency: 'usd',
      customer: { country: 'US' },
    });
    expect(same.body.processors).toEqual(big.body.processors); // deterministic per payment id
    expect((await call('POST', '/v1/routing/simulate', { amount: 500, currency: 'usd' })).body.rule).toBe(
      'default',
    );
  });

  test('a currency one processor cannot take skips it, with the reason', async () => {
    const r = await call('POST', '/v1/routing/simulate', {
      amount: 1000,
      currency: 'bif',
      config: { default: ['adyen', 'stripe'] },
    });
    expect(r.body).toMatchObject({
      version: null,
      processors: ['stripe'],
      skipped: [{ processor: 'adyen', reason: 'adyen does not take BIF' }],
    });
  });

  test('a live processor token pins the route (decision 0004); a test id does not', async () => {
    const live = await call('POST', '/v1/routing/simulate', {
      amount: 1000,
      currency: 'eur',
      payment_method: 'pm_1LiveStripeToken',
    });
    expect(live.body).toMatchObject({
      rule: 'eur-to-adyen',
      processors: ['stripe'],
      skipped: [{ processor: 'adyen', reason: 'adyen cannot charge a payment method token of stripe' }],
    });
    const test = await call('POST', '/v1/routing/simulate', {
      amount: 1000,
      currency: 'eur',
      payment_method: 'pm_card_visa',
    });
    expect(test.body.processors).toEqual(['adyen', 'stripe']);
  });

  test('bad facts are 400s naming the field', async () => {
    expect((await call('POST', '/v1/routing/simulate', { currency: 'eur' })).body.error).toMatchObject({
      param: 'amount',
    });
    expect(
      (await call('POST', '/v1/routing/simulate', { amount: 1, currency: 'eur', colour: 'red' })).status,
    ).toBe(400);
    expect(
      (await call('POST', '/v1/routing/simulate', { amount: 1, currency: 'eur', config: { default: [] } }))
        .body.error,
    ).toMatchObject({
      code: 'routing_config_invalid',
      param: 'default',
    });
  });
});

describe('paystep routing', () => {
  test('show, set from a file, simulate: JSON on stdout', async () => {
    const file = path.join(dir, 'routing.json');
    fs.writeFileSync(file, JSON.stringify({ default: ['adyen', 'stripe'] }));
    const set = await paystep('routing', 'set', '--merchant', merchantA, file);
    expect(set.code).toBe(0);
    const created = JSON.parse(set.stdout) as Json;
    expect(created).toMatchObject({ version: 4, source: 'cli', config: { default: ['adyen', 'stripe'] } });
    const show = JSON.parse(
      (await paystep('routing', 'show', '--merchant', merchantA, '--version', '3')).stdout,
    ) as Json;
    expect(show.config.rules).toHaveLength(2);
    const sim = await paystep(
      'routing',
      'simulate',
      '--merchant',
      merchantA,
      '--amount',
      '1000',
      '--currency',
      'usd',
    );
    expect(JSON.parse(sim.stdout)).toMatchObject({
      processors: ['adyen', 'stripe'],
      rule: 'default',
      version: 4,
    });
  });

  test('mistakes exit 2 naming the value; nothing on stdout', async () => {
    const file = path.join(dir, 'bad.json');
    fs.writeFileSync(file, JSON.stringify({ default: ['paypal'] }));
    expect(await paystep('routing', 'set', '--merchant', merchantA, file)).toMatchObject({
      code: 2,
      stdout: '',
      error: expect.stringContaining('default[0]: "paypal" is not a processor paystep knows'),
    });
    expect(
      await paystep('routing', 'set', '--merchant', merchantA, path.join(dir, 'missing.json')),
    ).toMatchObject({
      code: 2,
      error: expect.stringContaining('ENOENT'),
    });
    expect(await paystep('routing', 'show', '--merchant', 'mch_nobody')).toMatchObject({
      code: 2,
      error: "no merchant 'mch_nobody'",
    });
    expect((await paystep('routing', 'simulate', '--merchant', merchantA, '--currency', 'eur')).code).toBe(2);
  });
});

describe('the payment workflow follows the routing decision', () => {
  const pay = async (currency: string, extra: Record<string, unknown> = {}) => {
    const r = await callB('POST', '/v1/payments', {
      amount: 1500,
      currency,
      payment_method: 'pm_card_visa',
      ...extra,
    });
    expect(r.status).toBe(201);
    const done = await until('an outcome', async () => {
      const p = (await callB('GET', `/v1/payments/${r.body.id}`)).body;
      return ['captured', 'failed'].includes(p.status as string) ? p : undefined;
    });
    const routed = (await callB('GET', `/v1/payments/${r.body.id}/timeline`)).body.events.find(
      (e: Json) => e.type === 'workflow' && e.event === 'routed',
    ) as Json;
    return { payment: done, routed };
  };

  test('EUR goes to Adyen by the rule, with the rule, the version and the reason on the timeline', async () => {
    expect((await callB('PUT', '/v1/routing', EXAMPLE)).status).toBe(200);
    const eur = await pay('eur');
    expect(eur.payment).toMatchObject({ status: 'captured', processor: 'adyen' });
    expect(eur.routed).toMatchObject({
      processor: 'adyen',
      processors: ['adyen', 'stripe'],
      reason: 'eur-to-adyen',
      routing_version: 1,
      explanation: 'rule "eur-to-adyen" matched (currency EUR): adyen, stripe in that order.',
    });
    expect((await pay('usd')).payment).toMatchObject({ status: 'captured', processor: 'stripe' });
    // Both attempts counted in the processors' health.
    const health = Object.fromEntries(
      ((await callB('GET', '/v1/processors')).body.data as Json[]).map((p) => [p.name, p.health]),
    );
    expect(health.adyen.attempts).toBeGreaterThanOrEqual(1);
    expect(health.stripe.attempts).toBeGreaterThanOrEqual(1);
  });

  test('a processor in an open incident is routed around; with none left the payment fails, never sent blind', async () => {
    const adyen = await declareIncident('adyen', 'rehearsal', 'test');
    forgetHealthCache();
    const eur = await pay('eur');
    expect(eur.payment).toMatchObject({ status: 'captured', processor: 'stripe' });
    expect(eur.routed.explanation).toContain(
      `Skipped: adyen is in incident ${adyen.incident.id} (rehearsal).`,
    );

    const stripe = await declareIncident('stripe', 'rehearsal', 'test');
    forgetHealthCache();
    const none = await pay('eur');
    expect(none.payment).toMatchObject({
      status: 'failed',
      processor: null,
      failure: { code: 'no_processor_available', retryable: true },
    });
    expect(none.routed.processors).toEqual([]);
    await resolveIncident(adyen.incident.id, 'test');
    await resolveIncident(stripe.incident.id, 'test');
    forgetHealthCache();
  });
});
