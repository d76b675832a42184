/**
 * Issue #9's scenario, as an ops person would run it (docs/runbooks/processor-outage.md), on one
 * runtime with two merchants: a routing configuration (EUR → Adyen, the rest split 70/30),
 * simulated and followed by real payments; Stripe goes down through the simulator fault control:
 * payments keep succeeding on Adyen, the breaker opens and a `suspected` incident appears; ops
 * confirm it; a capture of a Stripe-authorized payment waits instead of failing; Stripe comes
 * back, ops resolve the incident: the capture is made once, and the incident report is in the
 * reports bucket with the right counts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { forgetHealthCache } from '../../lambdas/processors/health.ts';
import { apiClient, until, type Json } from '../fixtures/api.ts';
import { runCli } from '../fixtures/cli.ts';

let rt: Runtime;
let dir: string;
let shop: ReturnType<typeof apiClient>;
let other: ReturnType<typeof apiClient>;

beforeAll(async () => {
  process.env.PAYSTEP_CIRCUIT_BREAKER = 'on'; // off by default in tests (test/setup-env.ts)
  process.env.PAYSTEP_PROCESSOR_TIMEOUT_MS = '300';
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-incident-'));
  rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 1000, scheduler: false });
  shop = apiClient(() => rt.url!, (await createMerchant('Shop')).apiKey);
  other = apiClient(() => rt.url!, (await createMerchant('Other')).apiKey);
});

afterAll(async () => {
  delete process.env.PAYSTEP_CIRCUIT_BREAKER;
  delete process.env.PAYSTEP_PROCESSOR_TIMEOUT_MS;
  await rt?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const paystep = async (...args: string[]): Promise<Json> => {
  const r = await runCli(dir, ...args);
  if (r.code !== 0) throw new Error(`paystep ${args.join(' ')}: exit ${r.code}: ${r.error}`);
  return JSON.parse(r.stdout) as Json;
};

async function decided(call: typeof shop, body: Json): Promise<Json> {
  const r = await call('POST', '/v1/payments', { payment_method: 'pm_card_visa', ...body });
  expect(r.status).toBeLessThan(300);
  return until(`payment ${r.body.id} decided`, async () => {
    const p = (await call('GET', `/v1/payments/${r.body.id}`)).body;
    return p.status === 'processing' ? undefined : p;
  });
}

const stripeStatus = async () =>
  ((await shop('GET', '/v1/processors')).body.data as Json[]).find((p) => p.name === 'stripe')!;

test('route, outage, incident, held capture, recovery', async () => {
  // 1. The routing configuration: EUR to Adyen, everything else split 70/30.
  const config = {
    rules: [
      { name: 'eur-to-adyen', when: { currency: ['eur'] }, processors: ['adyen', 'stripe'] },
      { name: 'split-the-rest', when: {}, split: { stripe: 70, adyen: 30 }, fallback: ['stripe', 'adyen'] },
    ],
    default: ['stripe', 'adyen'],
  };
  expect((await shop('PUT', '/v1/routing', config)).status).toBe(200);
  const sim = await shop('POST', '/v1/routing/simulate', { amount: 1200, currency: 'eur' });
  expect(sim.body).toMatchObject({ processors: ['adyen', 'stripe'], rule: 'eur-to-adyen' });
  expect(sim.body.explanation).toMatch(/eur-to-adyen/);

  // 2. Payments follow it: EUR on Adyen; each USD payment where the split (by its id) put it.
  expect(await decided(shop, { amount: 1200, currency: 'eur' })).toMatchObject({
    status: 'captured',
    processor: 'adyen',
  });
  for (let i = 0; i < 6; i++) {
    const p = await decided(shop, { amount: 1500 + i, currency: 'usd' });
    const want = await shop('POST', '/v1/routing/simulate', { id: p.id, amount: p.amount, currency: 'usd' });
    expect(want.body.rule).toBe('split-the-rest');
    expect(p).toMatchObject({ status: 'captured', processor: want.body.processors[0] });
  }
  // A payment authorized on Stripe, to be captured later.
  const held = await decided(shop, {
    amount: 4200,
    currency: 'usd',
    capture_method: 'manual',
    processor: 'stripe',
  });
  expect(held).toMatchObject({ status: 'authorized', processor: 'stripe' });

  // 3. Stripe goes down (its API refuses connections): payments keep succeeding on Adyen.
  expect(await paystep('simulator', 'fault', '--processor', 'stripe', '--mode', 'down')).toMatchObject({
    mode: 'down',
    rate: 1,
  });
  const during: Json[] = [];
  for (let i = 0; i < 8; i++) during.push(await decided(other, { amount: 900 + i, currency: 'usd' }));
  expect(during.every((p) => p.status === 'captured' && p.processor === 'adyen')).toBe(true);
  // The first ones tried Stripe and failed over at once; once the breaker opened, Stripe went last.
  expect(during[0]!.attempts.map((a: Json) => [a.processor, a.outcome])).toEqual([
    ['stripe', 'not_processed'],
    ['adyen', 'captured'],
  ]);
  forgetHealthCache();
  const down = await stripeStatus();
  expect(down.breaker.state).toBe('open');
  expect(down.incident).toMatchObject({ status: 'suspected' });
  expect(during.at(-1)!.attempts.map((a: Json) => a.processor)).toEqual(['adyen']);

  // 4. Ops confirm the suspected incident.
  const incidentId = down.incident.id as string;
  expect(
    await paystep('incident', 'confirm', incidentId, '--note', 'Stripe status page confirms'),
  ).toMatchObject({ id: incidentId, status: 'open' });
  forgetHealthCache();
  expect((await stripeStatus()).status).toBe('incident');
  // While it is open, routing skips Stripe altogether (rerouted, in the report below).
  for (let i = 0; i < 2; i++) {
    const p = await decided(other, { amount: 990 + i, currency: 'usd' });
    expect(p).toMatchObject({ status: 'captured', processor: 'adyen' });
    expect(p.attempts.map((a: Json) => a.processor)).toEqual(['adyen']);
  }

  // 5. A capture of the Stripe-authorized payment waits (held), it does not fail.
  const capturesBefore = rt.stripe!.stats().captures;
  const cap = await shop('POST', `/v1/payments/${held.id}/capture`, {});
  expect(cap.status).toBeLessThan(300);
  const waiting = (await shop('GET', `/v1/payments/${held.id}`)).body;
  expect(waiting.status).toBe('authorized');
  expect(waiting.explanation).toMatch(new RegExp(incidentId));
  expect(rt.stripe!.stats().captures).toBe(capturesBefore);

  // 6. Stripe comes back; ops resolve the incident: the capture is made, once.
  await paystep('simulator', 'fault', '--processor', 'stripe', '--mode', 'none');
  expect(await paystep('incident', 'resolve', incidentId, '--note', 'Stripe recovered')).toMatchObject({
    status: 'resolved',
  });
  const captured = await until('the held capture made', async () => {
    const p = (await shop('GET', `/v1/payments/${held.id}`)).body;
    return p.status === 'captured' && p;
  });
  expect(captured.amount_captured).toBe(4200);
  expect(rt.stripe!.stats().captures - capturesBefore).toBe(1);

  // 7. The incident report is in the reports bucket, with the counts of what happened.
  const file = path.join(dir, 'buckets', 'paystep-reports', 'incidents', 'stripe', `${incidentId}.json`);
  const report = JSON.parse(fs.readFileSync(file, 'utf8')) as Json;
  expect(report.incident).toMatchObject({ id: incidentId, processor: 'stripe', status: 'resolved' });
  expect(report.payments.rerouted).toBe(2);
  expect(report.payments.failed).toBe(0);
  expect(report.backlog).toMatchObject({ held: 1, by_kind: { capture: 1 }, by_status: { done: 1 } });
  expect(report.backlog.replayed).toEqual([
    expect.objectContaining({ kind: 'capture', payment_id: held.id, status: 'done' }),
  ]);
  expect(report.still_open.operations).toEqual([]);
  expect(fs.existsSync(file.replace(/\.json$/, '.csv'))).toBe(true);
  expect((await paystep('incident', 'report', incidentId)).incident.id).toBe(incidentId);
});
