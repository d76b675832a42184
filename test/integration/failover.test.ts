/**
 * The payment workflow tries its route (docs/routing.md "Attempts, failover and cascades"): a
 * processor that refuses connections is failed over at once (nothing reached it); an allow-listed
 * soft decline cascades to the next processor; a hard decline never does; an unknown outcome
 * (the processor processed, the answer was lost) is settled with that same processor, never
 * elsewhere. Every attempt is on `payment.attempts[]` and the timeline says why it moved on.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { apiClient, until, type Json } from '../fixtures/api.ts';
import { paymentItem } from '../fixtures/payments.ts';

let rt: Runtime;
let dir: string;
let call: ReturnType<typeof apiClient>;
let merchantId: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-failover-'));
  process.env.PAYSTEP_PROCESSOR_TIMEOUT_MS = '300';
  rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 1000, scheduler: false });
  const m = await createMerchant('Failover Ltd');
  merchantId = m.merchant.id;
  call = apiClient(() => rt.url!, m.apiKey);
  const routing = {
    rules: [{ name: 'gbp-to-adyen', when: { currency: ['gbp'] }, processors: ['adyen', 'stripe'] }],
    default: ['stripe', 'adyen'],
  };
  expect((await call('PUT', '/v1/routing', routing)).status).toBe(200);
});

afterEach(async () => {
  rt.stripe!.faults.reset();
  rt.adyen!.faults.reset();
  await rt.stripe!.doorSettled();
  await rt.adyen!.doorSettled();
});

afterAll(async () => {
  delete process.env.PAYSTEP_PROCESSOR_TIMEOUT_MS;
  await rt?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function pay(paymentMethod: string, amount = 2500, currency = 'eur'): Promise<Json> {
  const r = await call('POST', '/v1/payments', { amount, currency, payment_method: paymentMethod });
  expect(r.status).toBeLessThan(300);
  return until(`payment ${r.body.id} decided`, async () => {
    const p = (await call('GET', `/v1/payments/${r.body.id}`)).body;
    return p.status === 'processing' ? undefined : p;
  });
}

const events = async (id: string): Promise<Json[]> =>
  (await call('GET', `/v1/payments/${id}/timeline`)).body.events as Json[];

test('a processor that refuses connections is failed over at once: captured on the next, both attempts recorded', async () => {
  const stripeBefore = rt.stripe!.stats().paymentIntentsCreated;
  // Through the control API, as an operator would: answered once the API door is closed.
  const set = await fetch(`${rt.endpoints.stripe}/_sim/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ downRate: 1 }),
  });
  expect(set.status).toBe(200);
  const p = await pay('pm_card_visa');
  expect(p).toMatchObject({ status: 'captured', processor: 'adyen' });
  expect(p.attempts).toEqual([
    expect.objectContaining({
      attempt: 1,
      processor: 'stripe',
      outcome: 'not_processed',
      idempotency_key: `${p.id}:authorize:1`,
      next: expect.objectContaining({ processor: 'adyen', cascade: false }),
    }),
    expect.objectContaining({
      attempt: 2,
      processor: 'adyen',
      outcome: 'captured',
      idempotency_key: `${p.id}:authorize:2`,
      failure: null,
    }),
  ]);
  expect(p.attempts[0].next.reason).toMatch(/refused/);
  expect(rt.stripe!.stats().paymentIntentsCreated).toBe(stripeBefore); // nothing reached Stripe
  const failedOver = (await events(p.id)).find((e) => e.event === 'failed_over');
  expect(failedOver).toMatchObject({ from: 'stripe', processor: 'adyen', attempt: 2 });
});

test('the same for Adyen: its API refusing connections sends the payment to Stripe', async () => {
  const adyenBefore = rt.adyen!.stats().requests;
  rt.adyen!.faults.set({ mode: 'down' });
  await rt.adyen!.doorSettled();
  const p = await pay('pm_card_visa', 1800, 'gbp');
  expect(p).toMatchObject({ status: 'captured', processor: 'stripe' });
  expect(p.attempts.map((a: Json) => [a.processor, a.outcome])).toEqual([
    ['adyen', 'not_processed'],
    ['stripe', 'captured'],
  ]);
  expect(rt.adyen!.stats().requests).toBe(adyenBefore);
});

test('an allow-listed soft decline cascades to the next processor; a hard decline never does', async () => {
  rt.stripe!.faults.set({ declineNext: 1 });
  const soft = await pay('pm_card_visa');
  expect(soft).toMatchObject({ status: 'captured', processor: 'adyen', failure: null });
  expect(soft.attempts).toHaveLength(2);
  expect(soft.attempts[0]).toMatchObject({
    processor: 'stripe',
    outcome: 'declined',
    failure: { code: 'processing_error', category: 'technical' },
    next: { processor: 'adyen', cascade: true },
  });
  expect(soft.attempts[0].processor_reference).toMatch(/^pi_/);
  expect(soft.attempts[1]).toMatchObject({ processor: 'adyen', outcome: 'captured' });
  const timeline = await events(soft.id);
  expect(timeline.find((e) => e.event === 'cascaded')).toMatchObject({ from: 'stripe', processor: 'adyen' });
  // Both attempts are on the timeline, the first with the reason it moved on.
  const attempts = timeline.filter((e) => e.type === 'attempt' && e.operation === 'authorize');
  expect(attempts.map((e) => [e.processor, e.outcome])).toEqual([
    ['stripe', 'declined'],
    ['adyen', 'captured'],
  ]);
  expect(attempts[0]!.reason).toMatch(/may succeed elsewhere/);

  const adyenBefore = rt.adyen!.stats().payments;
  const hard = await pay('pm_card_visa_chargeDeclinedInsufficientFunds');
  expect(hard).toMatchObject({
    status: 'failed',
    processor: 'stripe',
    failure: { code: 'insufficient_funds' },
  });
  expect(hard.attempts).toHaveLength(1);
  expect(rt.adyen!.stats().payments).toBe(adyenBefore);
  const stop = (await events(hard.id)).find((e) => e.type === 'attempt' && e.outcome === 'declined');
  expect(stop!.reason).toMatch(/not to try again|not on the cascade list|never retried/);
});

test('an unknown outcome is settled with the same processor: processed once, never failed over', async () => {
  const stripeBefore = rt.stripe!.stats().paymentIntentsCreated;
  const adyenBefore = rt.adyen!.stats().payments;
  rt.stripe!.faults.set({ timeoutNext: 1 });
  const p = await pay('pm_card_visa');
  expect(p).toMatchObject({ status: 'captured', processor: 'stripe' });
  expect(p.attempts).toEqual([
    expect.objectContaining({ attempt: 1, processor: 'stripe', outcome: 'captured' }),
  ]);
  expect(rt.stripe!.stats().paymentIntentsCreated - stripeBefore).toBe(1);
  expect(rt.adyen!.stats().payments).toBe(adyenBefore);
});

test("with timeout-after-processing on a third of Stripe's requests, no payment is ever authorized at both processors", async () => {
  const adyenBefore = new Set(rt.adyen!.paymentRecords().map((p) => p.merchantReference));
  rt.stripe!.faults.set({ timeoutRate: 0.3 });
  const ids: string[] = [];
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let i = 0; i < 5; i++) ids.push((await pay('pm_card_visa', 3000 + i)).id as string);
    }),
  );
  rt.stripe!.faults.reset();
  // What each processor itself holds for these payments.
  const atStripe = new Set(
    rt
      .stripe!.objectsWhere('payment_intent', 'object', 'payment_intent')
      .filter((pi) => pi.status === 'succeeded' || pi.status === 'requires_capture')
      .map((pi) => (pi.metadata as Record<string, string>).paystep_payment_id),
  );
  const atAdyen = new Set(
    rt
      .adyen!.paymentRecords()
      .filter((p) => p.status === 'authorised' && !adyenBefore.has(p.merchantReference))
      .map((p) => p.merchantReference),
  );
  expect(ids).toHaveLength(20);
  expect(ids.filter((id) => atStripe.has(id) && atAdyen.has(id))).toEqual([]);
  expect(ids.every((id) => atStripe.has(id) || atAdyen.has(id))).toBe(true);
});

test('a processor whose answer was lost and which then refuses connections is not failed over: the outcome is checked there', async () => {
  // The first request of the attempt times out after Stripe processed it; the retry then finds
  // Stripe refusing connections. The refusal proves nothing about the first request, so the payment
  // must wait for Stripe rather than try Adyen (which would charge the card twice).
  const adyenBefore = rt.adyen!.stats().payments;
  const stripeBefore = rt.stripe!.stats().paymentIntentsCreated;
  rt.stripe!.faults.set({ timeoutNext: 1 });
  process.env.PAYSTEP_SYNC_WAIT_MS = '200';
  const r = await call('POST', '/v1/payments', {
    amount: 4100,
    currency: 'eur',
    payment_method: 'pm_card_visa',
  }).finally(() => delete process.env.PAYSTEP_SYNC_WAIT_MS);
  const id = r.body.id as string;
  // Once the first request has gone out (it hangs), Stripe goes away.
  await until(
    'Stripe processed the first request',
    () => rt.stripe!.stats().paymentIntentsCreated > stripeBefore,
  );
  rt.stripe!.faults.set({ downRate: 1 });
  await rt.stripe!.doorSettled();
  await until('a refused retry', async () =>
    (await events(id)).some((e) => e.type === 'attempt' && e.outcome === 'not_processed'),
  );
  const waiting = (await call('GET', `/v1/payments/${id}`)).body;
  expect(waiting).toMatchObject({ status: 'processing', processor: 'stripe' });
  expect(rt.adyen!.stats().payments).toBe(adyenBefore);
  rt.stripe!.faults.reset();
  const done = await until(
    'the outcome checked with Stripe',
    async () => {
      const p = (await call('GET', `/v1/payments/${id}`)).body;
      return p.status === 'processing' ? undefined : p;
    },
    60_000,
  );
  expect(done).toMatchObject({ status: 'captured', processor: 'stripe' });
  expect(rt.adyen!.stats().payments).toBe(adyenBefore);
  expect((await events(id)).some((e) => e.event === 'failed_over')).toBe(false);
});

test('approval analytics count the cascade that recovered, and the attempts each payment made', async () => {
  const day = new Date().toISOString().slice(0, 10);
  const r = await call('GET', `/v1/analytics/payments?from=${day}&to=${day}&group_by=processor`);
  expect(r.status).toBe(200);
  const all = (r.body.groups as Json[]).find((g) => g.dimension === 'all')!;
  // One soft decline cascaded and recovered on Adyen (the failovers are not cascades).
  expect(all.cascades_recovered).toBe(1);
  expect(all.attempts).toBeGreaterThan(all.payments);
});

test('a processing payment never routed (no processor) is checked as not sent: failed, retryable, never sent anywhere', async () => {
  const { createPayment } = await import('../../lambdas/store/payments.ts');
  const { handler: reconcile } = await import('../../lambdas/payments/steps/reconcile.ts');
  const t = Math.floor(Date.now() / 1000);
  const id = `pay_neverSent${t}`;
  await createPayment(
    paymentItem({ id, merchant_id: merchantId, amount: 700, currency: 'eur', created: t, updated: t }),
  );
  const stripeBefore = rt.stripe!.stats().requests;
  const adyenBefore = rt.adyen!.stats().requests;
  const out = (await reconcile({ payment_id: id, reason: 'unknown_outcome' })) as Json;
  expect(out.outcome).toBe('failed');
  const p = (await call('GET', `/v1/payments/${id}`)).body;
  expect(p).toMatchObject({ status: 'failed', failure: { processor_code: 'not_sent', retryable: true } });
  expect(rt.stripe!.stats().requests).toBe(stripeBefore);
  expect(rt.adyen!.stats().requests).toBe(adyenBefore);
});

test('"Choose a processor" routes the payment the screen step carried, and never acts on a stale copy of it', async () => {
  const { createPayment, annotate, getPayment, timeline } = await import('../../lambdas/store/payments.ts');
  const { handler: screen } = await import('../../lambdas/payments/steps/screen.ts');
  const { handler: route } = await import('../../lambdas/payments/steps/route.ts');
  const t = Math.floor(Date.now() / 1000);
  const routedTo = async (id: string) =>
    (await timeline(id)).filter((e) => e.type === 'workflow' && e.event === 'routed').map((e) => e.processor);

  // The screen step hands over the payment as its write left it; routing it needs no read.
  const id = `pay_carried${t}`;
  await createPayment(
    paymentItem({ id, merchant_id: merchantId, amount: 900, currency: 'eur', created: t, updated: t }),
  );
  const risk = (await screen({ payment_id: id })) as Json;
  expect(risk).toMatchObject({ decision: 'allow', payment: { id, status: 'processing', processor: null } });
  const input = { payment_id: id, risk: { decision: 'allow', result: risk } };
  expect(await route(input)).toMatchObject({ processor: 'stripe', processors: ['stripe', 'adyen'] });
  expect((await getPayment(id))!.processor).toBe('stripe');
  // The step retried with the same input (its answer was lost): the copy is stale, its write
  // does not hold, and the payment as it is now decides (routed once, to stripe).
  expect(await route(input)).toMatchObject({ processor: 'stripe' });
  expect((await getPayment(id))!.processor).toBe('stripe');
  expect(await routedTo(id)).toEqual(['stripe', 'stripe']);

  // A copy that another write overtook (here the payment was routed to adyen meanwhile): the
  // route decided on the copy (stripe) is not written; the payment keeps adyen.
  const other = `pay_overtaken${t}`;
  await createPayment(
    paymentItem({ id: other, merchant_id: merchantId, amount: 900, currency: 'eur', created: t, updated: t }),
  );
  const otherRisk = (await screen({ payment_id: other })) as Json;
  await annotate(other, { processor: 'adyen' });
  expect(await route({ payment_id: other, risk: { decision: 'allow', result: otherRisk } })).toMatchObject({
    processor: 'adyen',
    processors: ['adyen'],
  });
  expect((await getPayment(other))!.processor).toBe('adyen');
  expect(await routedTo(other)).toEqual(['adyen']);
});
