/**
 * The incident backlog (docs/routing.md "The backlog") on the local runtime: while Stripe has an
 * open incident, a capture, a refund and a cancel of Stripe payments are held (answered as in
 * progress, never sent: the simulator sees no request), the timeline says why; resolving the
 * incident replays them in the order they were held, each once at the simulator with the key
 * chosen before it was held; releasing again moves nothing. A payment whose authorization's
 * outcome was left unknown (flagged) is checked with Stripe when the incident is resolved. A
 * suspected (or dismissed) incident holds nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import {
  declareIncident,
  dismissIncident,
  resolveIncident,
  suspectIncident,
} from '../../lambdas/incidents/service.ts';
import { releaseBacklog } from '../../lambdas/incidents/release.ts';
import { moveIncident } from '../../lambdas/store/incidents.ts';
import { heldTaskToken, listHeld } from '../../lambdas/store/backlog.ts';
import { getPayment } from '../../lambdas/store/payments.ts';
import { apiClient, until, type Json } from '../fixtures/api.ts';

let rt: Runtime;
let dir: string;
let call: ReturnType<typeof apiClient>;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-backlog-'));
  process.env.PAYSTEP_PROCESSOR_TIMEOUT_MS = '300';
  process.env.PAYSTEP_PROCESSOR_NETWORK_RETRIES = '0'; // the SDK's own backoff is real time; the workflow's is scaled
  // Workflow time ×1000: a held operation's wait re-checks its incident every 3.6 s (it stays held,
  // one entry), and the outcome check of an unknown authorization gives up within seconds.
  rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 1000, scheduler: false });
  call = apiClient(() => rt.url!, (await createMerchant('Backlog')).apiKey);
});

afterEach(() => rt.stripe?.faults.reset());

afterAll(async () => {
  delete process.env.PAYSTEP_PROCESSOR_TIMEOUT_MS;
  delete process.env.PAYSTEP_PROCESSOR_NETWORK_RETRIES;
  await rt?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const pay = async (capture_method: 'manual' | 'automatic', amount: number) => {
  const r = await call('POST', '/v1/payments', {
    amount,
    currency: 'usd',
    payment_method: 'pm_card_visa',
    capture_method,
  });
  expect(r.body).toMatchObject({
    processor: 'stripe',
    status: capture_method === 'manual' ? 'authorized' : 'captured',
  });
  return r.body.id as string;
};

const timeline = async (id: string) =>
  (await call('GET', `/v1/payments/${id}/timeline`)).body.events as Json[];
const stripeCounts = () => {
  const s = rt.stripe!.stats();
  return { requests: s.requests, captures: s.captures, refunds: s.refunds };
};

test('held while Stripe is in incident, replayed once each in held order when it is resolved', async () => {
  const toCapture = await pay('manual', 2500);
  const toRefund = await pay('automatic', 4000);
  const toCancel = await pay('manual', 1200);
  const { incident } = await declareIncident('stripe', 'Stripe API answering 503', 'test');
  const before = stripeCounts();

  // The capture: an operation in progress (202), held, the payment still authorized.
  const cap = await call('POST', `/v1/payments/${toCapture}/capture`, { amount: 2000 });
  expect(cap.status).toBe(202);
  expect(cap.body).toMatchObject({
    status: 'authorized',
    pending_modification: { type: 'capture', status: 'requested', amount: 2000 },
  });
  expect(cap.body.explanation).toContain(`held because stripe is in incident ${incident.id}`);
  const ref = await call('POST', '/v1/refunds', { payment: toRefund, amount: 1500 });
  expect(ref.status).toBe(201);
  expect(ref.body).toMatchObject({ status: 'pending', processor: 'stripe', processor_reference: null });
  const can = await call('POST', `/v1/payments/${toCancel}/cancel`);
  expect(can.status).toBe(202);
  expect(can.body).toMatchObject({ status: 'authorized', pending_modification: { type: 'cancel' } });

  // Each workflow waits with its token on the entry; nothing reached Stripe.
  const held = await until('three operations held, their workflows waiting', async () => {
    const h = await listHeld(incident.id);
    return h.length === 3 && (await Promise.all(h.map(heldTaskToken))).every(Boolean) && h;
  });
  expect(held.map((h) => [h.kind, h.payment_id, h.refund_id, h.amount, h.status])).toEqual([
    ['capture', toCapture, undefined, 2000, 'held'],
    ['refund', toRefund, ref.body.id, 1500, 'held'],
    ['cancel', toCancel, undefined, undefined, 'held'],
  ]);
  expect(stripeCounts()).toEqual(before);
  expect((await timeline(toCapture)).find((e) => e.type === 'backlog')).toMatchObject({
    event: 'held',
    operation: 'capture',
    incident_id: incident.id,
    reason: expect.stringContaining('Stripe API answering 503'),
  });
  expect((await timeline(toRefund)).find((e) => e.event === 'held')).toMatchObject({
    type: 'refund',
    refund_id: ref.body.id,
    incident_id: incident.id,
  });
  // A cancel while the capture is held is refused: one modification at a time.
  expect((await call('POST', `/v1/payments/${toCapture}/cancel`)).body.error).toMatchObject({
    code: 'modification_pending',
  });

  // Resolving replays them, in held order, once each.
  await resolveIncident(incident.id, 'test', 'Stripe recovered');
  const after = await listHeld(incident.id);
  expect(after.map((h) => [h.kind, h.status, h.outcome])).toEqual([
    ['capture', 'done', 'captured 20.00 USD'],
    ['refund', 'done', expect.stringMatching(/^refund (succeeded|submitted)/)],
    ['cancel', 'done', 'canceled'],
  ]);
  expect(after[0]!.finished_at!).toBeLessThanOrEqual(after[1]!.released_at!);
  expect(after[1]!.finished_at!).toBeLessThanOrEqual(after[2]!.released_at!);
  const counts = stripeCounts();
  expect({ captures: counts.captures - before.captures, refunds: counts.refunds - before.refunds }).toEqual({
    captures: 1,
    refunds: 1,
  });
  const captured = (await call('GET', `/v1/payments/${toCapture}`)).body;
  expect(captured).toMatchObject({ status: 'captured', amount_captured: 2000, pending_modification: null });
  expect((await call('GET', `/v1/payments/${toCancel}`)).body.status).toBe('canceled');
  const refund = await until('the refund succeeded', async () => {
    const r = (await call('GET', `/v1/refunds/${ref.body.id}`)).body;
    return r.status === 'succeeded' && r;
  });
  expect(rt.stripe!.objectsWhere('refund', 'id', refund.processor_reference)).toHaveLength(1);
  // The capture went with the key chosen when it was requested, before it was held.
  const capTimeline = await timeline(toCapture);
  const requested = capTimeline.find((e) => e.type === 'modification' && e.event === 'requested');
  expect(capTimeline.find((e) => e.event === 'held')?.idempotency_key).toBe(requested?.idempotency_key);
  expect(capTimeline.map((e) => e.event).filter((e) => ['held', 'released', 'replayed'].includes(e))).toEqual(
    ['held', 'released', 'replayed'],
  );

  // Released again (a resolve retried after a crash): nothing moves.
  const again = await releaseBacklog(incident.id);
  expect(again).toEqual(after);
  expect(stripeCounts()).toEqual(counts);
});

test('a suspected incident holds nothing, and dismissing it releases nothing', async () => {
  const id = await pay('manual', 900);
  const { incident } = await suspectIncident('stripe', '5 technical failures in a row');
  const cap = await call('POST', `/v1/payments/${id}/capture`);
  expect(cap.status).toBe(200);
  expect(cap.body.status).toBe('captured');
  await dismissIncident(incident.id, 'test');
  expect(await listHeld(incident.id)).toEqual([]);
});

test('an authorization left with an unknown outcome is checked with the processor when the incident is resolved', async () => {
  // Stripe processes, then never answers: the workflow cannot know, and flags the payment.
  rt.stripe!.faults.set({ timeoutNext: 1000 });
  const created = rt.stripe!.stats().paymentIntentsCreated;
  const r = await call('POST', '/v1/payments', {
    amount: 3100,
    currency: 'usd',
    payment_method: 'pm_card_visa',
  });
  const id = r.body.id as string;
  const flagged = await until('the payment flagged for attention', async () => {
    const p = await getPayment(id);
    return p?.status === 'processing' && 'needs_attention' in p && p.needs_attention ? p : undefined;
  });
  expect(flagged.processor).toBe('stripe');
  const { incident } = await declareIncident('stripe', 'Stripe times out', 'test');
  rt.stripe!.faults.reset();

  await resolveIncident(incident.id, 'test');
  const held = await listHeld(incident.id);
  expect(held).toEqual([
    expect.objectContaining({
      kind: 'outcome_check',
      payment_id: id,
      status: 'done',
      outcome: 'reconciled: captured',
    }),
  ]);
  expect((await call('GET', `/v1/payments/${id}`)).body).toMatchObject({
    status: 'captured',
    amount_captured: 3100,
  });
  expect(rt.stripe!.stats().paymentIntentsCreated - created).toBe(1);
  // Checked again: nothing more.
  expect(await releaseBacklog(incident.id)).toEqual(held);
});

test('a resolve cut short by a crash (resolved, nothing released): resolving again is refused but releases the backlog', async () => {
  const id = await pay('manual', 1800);
  const { incident } = await declareIncident('stripe', 'Stripe down again', 'test');
  const before = stripeCounts();
  expect((await call('POST', `/v1/payments/${id}/capture`)).status).toBe(202);
  await until('the capture held', async () => (await listHeld(incident.id)).length === 1);
  // What a crash right after the status change leaves: resolved, the backlog not released.
  await moveIncident(incident.id, 'stripe', 'resolved', { at: Date.now(), by: 'cli', text: 'resolved' });
  await expect(resolveIncident(incident.id, 'cli')).rejects.toThrow(
    `incident ${incident.id} is resolved: it cannot change any more`,
  );
  expect(await listHeld(incident.id)).toEqual([
    expect.objectContaining({
      kind: 'capture',
      payment_id: id,
      status: 'done',
      outcome: 'captured 18.00 USD',
    }),
  ]);
  expect(stripeCounts().captures - before.captures).toBe(1);
});
