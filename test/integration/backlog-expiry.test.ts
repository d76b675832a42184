/**
 * The capture deadline while a processor is in incident (docs/states.md, "The payment workflow",
 * step 7): an authorization whose capture window lapses during the incident takes the usual
 * expiry path, "Cancel the expired authorization", whose cancellation is held in the backlog and
 * made once when the incident is resolved, with its reason. Its own runtime: workflow time runs
 * 50,000× faster, so the 6.5-day window lapses in about 11 s (a held wait re-checks its incident
 * every 0.07 s meanwhile, and stays one entry).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { declareIncident, resolveIncident } from '../../lambdas/incidents/service.ts';
import { listHeld } from '../../lambdas/store/backlog.ts';
import { apiClient, until, type Json } from '../fixtures/api.ts';

let rt: Runtime;
let dir: string;
let call: ReturnType<typeof apiClient>;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-backlog-expiry-'));
  rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 50_000, scheduler: false });
  call = apiClient(() => rt.url!, (await createMerchant('Backlog expiry')).apiKey);
});

afterAll(async () => {
  await rt?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('an authorization that lapses while held is canceled once, as authorization_expired, when the incident is resolved', async () => {
  const r = await call('POST', '/v1/payments', {
    amount: 5000,
    currency: 'usd',
    payment_method: 'pm_card_visa',
    capture_method: 'manual',
  });
  expect(r.body).toMatchObject({ status: 'authorized', processor: 'stripe' });
  const id = r.body.id as string;
  const { incident } = await declareIncident('stripe', 'Stripe down for days', 'test');
  const requests = rt.stripe!.stats().requests;

  const held = await until(
    'the expired authorization held',
    async () => (await listHeld(incident.id)).find((h) => h.kind === 'cancel' && h.payment_id === id),
    60_000,
  );
  expect(held.status).toBe('held');
  const p = await until('the payment marked held', async () => {
    const body = (await call('GET', `/v1/payments/${id}`)).body;
    return (body.explanation as string).includes('held') && body;
  });
  expect(p).toMatchObject({
    status: 'authorized',
    pending_modification: { type: 'cancel', reason: 'authorization_expired' },
  });
  expect(p.explanation).toContain(`incident ${incident.id}`);
  expect(rt.stripe!.stats().requests).toBe(requests);

  await resolveIncident(incident.id, 'test');
  expect(await listHeld(incident.id)).toEqual([
    expect.objectContaining({ kind: 'cancel', payment_id: id, status: 'done', outcome: 'canceled' }),
  ]);
  expect((await call('GET', `/v1/payments/${id}`)).body).toMatchObject({
    status: 'canceled',
    cancellation_reason: 'authorization_expired',
  });
  const intent = rt.stripe!.paymentIntent(r.body.processor_reference as string) as Json;
  expect(intent.status).toBe('canceled');
});
