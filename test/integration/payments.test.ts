/**
 * Checkout on the embedded runtime with the Stripe simulator: the payments API, the payment
 * workflow (risk screen, review, routing, authorization with retries, capture/cancel via task
 * tokens), idempotency under concurrency, merchant isolation and the timeline.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { claim, requestHash, unlock } from '../../lambdas/store/idempotency.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by assertions
type Json = Record<string, any>;

describe('checkout on the local runtime', () => {
  let dir: string;
  let rt: Runtime;
  let key: string;
  let acme: string;
  const whoAmI = async () => ({ merchantId: acme });

  const call = async (
    method: string,
    p: string,
    body?: unknown,
    opts: { key?: string; idem?: string | null; headers?: Record<string, string> } = {},
  ) => {
    const headers: Record<string, string> = {
      authorization: `Bearer ${opts.key ?? key}`,
      ...(opts.headers ?? {}),
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method === 'POST' && opts.idem !== null) headers['idempotency-key'] = opts.idem ?? randomUUID();
    const res = await fetch(`${rt.url}${p}`, {
      method,
      headers,
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as Json, headers: res.headers };
  };
  const pay = (pm: string, extra: Json = {}, opts = {}) =>
    call('POST', '/v1/payments', { amount: 1050, currency: 'usd', payment_method: pm, ...extra }, opts);

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-pay-'));
    process.env.PAYSTEP_PROCESSOR_TIMEOUT_MS = '300';
    process.env.PAYSTEP_PROCESSOR_NETWORK_RETRIES = '0'; // the SDK's own backoff is real time; the workflow's is scaled
    process.env.PAYSTEP_RISK_BLOCKED_COUNTRIES = 'KP';
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 1000, scheduler: false });
    const m = await createMerchant('Acme');
    key = m.apiKey;
    acme = m.merchant.id;
  });
  afterEach(() => rt.stripe?.faults.reset());
  afterAll(async () => {
    await rt?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('pm_card_visa with automatic capture is captured in the create response', async () => {
    const r = await pay('pm_card_visa', {
      order_id: 'ord_1',
      customer: { id: 'cus_1', email: 'a@example.com', country: 'US' },
    });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      object: 'payment',
      status: 'captured',
      amount: 1050,
      amount_captured: 1050,
      processor: 'stripe',
      order_id: 'ord_1',
    });
    expect(r.body.id).toMatch(/^pay_/);
    expect(r.body.processor_reference).toMatch(/^pi_/);
    expect(rt.stripe!.paymentIntent(r.body.processor_reference)).toMatchObject({
      status: 'succeeded',
      amount: 1050,
    });
  });

  test('a declined card fails with code, explanation and recommended action, visible in the timeline', async () => {
    const r = await pay('pm_card_visa_chargeDeclinedInsufficientFunds');
    expect(r.status).toBe(201);
    expect(r.body.status).toBe('failed');
    expect(r.body.failure).toMatchObject({ code: 'insufficient_funds', retryable: expect.any(Boolean) });
    expect(r.body.failure.explanation).toMatch(/insufficient funds/i);
    expect(r.body.failure.recommended_action.length).toBeGreaterThan(10);
    const t = await call('GET', `/v1/payments/${r.body.id}/timeline`);
    expect(t.status).toBe(200);
    expect(t.body.explanation).toBe(`${r.body.failure.explanation} ${r.body.failure.recommended_action}`);
    const attempt = t.body.events.find((e: Json) => e.type === 'attempt');
    expect(attempt).toMatchObject({ processor: 'stripe', outcome: 'declined', code: 'insufficient_funds' });
    expect(attempt.processor_code).toMatch(/insufficient_funds/);
    expect(typeof attempt.latency_ms).toBe('number');
    expect(t.body.events.map((e: Json) => e.status).filter(Boolean)).toEqual(['failed']);
    await rt.stepFunctions.waitForExecution(t.body.workflow.execution_arn);
    const again = await call('GET', `/v1/payments/${r.body.id}/timeline`);
    // A decline is an outcome the workflow established: the execution succeeds.
    expect(again.body.workflow).toMatchObject({ status: 'SUCCEEDED' });
  });

  test('manual capture: authorized, then a partial capture releases the rest; a second capture is refused', async () => {
    const r = await pay('pm_card_mastercard', { capture_method: 'manual' });
    expect(r.body).toMatchObject({ status: 'authorized', amount_captured: 0 });
    expect(r.body.capture_before).toBeGreaterThan(Date.now() / 1000);
    const over = await call('POST', `/v1/payments/${r.body.id}/capture`, { amount: 5000 });
    expect(over.status).toBe(400);
    expect(over.body.error.param).toBe('amount');
    const c = await call('POST', `/v1/payments/${r.body.id}/capture`, { amount: 600 });
    expect(c.status).toBe(200);
    expect(c.body).toMatchObject({ status: 'captured', amount_captured: 600 });
    expect(rt.stripe!.paymentIntent(r.body.processor_reference)).toMatchObject({
      status: 'succeeded',
      amount_received: 600,
    });
    const twice = await call('POST', `/v1/payments/${r.body.id}/capture`, {});
    expect(twice.status).toBe(400);
    expect(twice.body.error.code).toBe('payment_unexpected_state');
  });

  test('manual capture then cancel releases the authorization at the processor', async () => {
    const r = await pay('pm_card_visa', { capture_method: 'manual' });
    const c = await call('POST', `/v1/payments/${r.body.id}/cancel`);
    expect(c.status).toBe(200);
    expect(c.body).toMatchObject({ status: 'canceled', cancellation_reason: 'requested_by_customer' });
    expect(rt.stripe!.paymentIntent(r.body.processor_reference)!.status).toBe('canceled');
    const t = await call('GET', `/v1/payments/${r.body.id}/timeline`);
    expect(t.body.events.map((e: Json) => e.status).filter(Boolean)).toEqual(['authorized', 'canceled']);
  });

  test('idempotency: replay, 422 on a different body, 400 without a key', async () => {
    const idem = randomUUID();
    const a = await pay('pm_card_visa', {}, { idem });
    const b = await pay('pm_card_visa', {}, { idem });
    expect(b.status).toBe(201);
    expect(b.body.id).toBe(a.body.id);
    expect(b.headers.get('idempotent-replayed')).toBe('true');
    const c = await pay('pm_card_visa', { amount: 999 }, { idem });
    expect(c.status).toBe(422);
    expect(c.body.error.type).toBe('idempotency_error');
    const d = await pay('pm_card_visa', {}, { idem: null });
    expect(d.status).toBe(400);
    expect(d.body.error.param).toBe('Idempotency-Key');
  });

  test('a retry of an interrupted request resumes the same payment instead of creating another', async () => {
    const idem = randomUUID();
    const body = { amount: 4321, currency: 'usd', payment_method: 'pm_card_visa' };
    // What a crash leaves behind: a claim for this request, holding the payment id it was creating.
    const { merchantId } = await whoAmI();
    const c = await claim(
      merchantId,
      idem,
      requestHash('POST', '/v1/payments', body),
      'pay_InterruptedRequest000001',
    );
    expect(c.kind).toBe('new');
    expect((await call('POST', '/v1/payments', body, { idem })).status).toBe(409); // still locked
    await unlock(merchantId, idem);
    const r = await call('POST', '/v1/payments', body, { idem });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ id: 'pay_InterruptedRequest000001', status: 'captured' });
    const again = await call('POST', '/v1/payments', body, { idem });
    expect(again.body.id).toBe('pay_InterruptedRequest000001');
    expect(again.headers.get('idempotent-replayed')).toBe('true');
  });

  test('100 concurrent identical requests create one payment and one processor authorization', async () => {
    const idem = randomUUID();
    const before = rt.stripe!.stats().paymentIntentsCreated;
    const results = await Promise.all(
      Array.from({ length: 100 }, () => pay('pm_card_visa', { amount: 777 }, { idem })),
    );
    const ok = results.filter((r) => r.status === 201);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(results.every((r) => r.status === 201 || r.status === 409)).toBe(true);
    expect(new Set(ok.map((r) => r.body.id)).size).toBe(1);
    await rt.settle();
    expect(rt.stripe!.stats().paymentIntentsCreated - before).toBe(1);
    const list = await call('GET', '/v1/payments?limit=100');
    expect(list.body.data.filter((p: Json) => p.amount === 777)).toHaveLength(1);
  });

  test('technical errors are retried with the same idempotency key; an unknown outcome is checked, never guessed', async () => {
    rt.stripe!.faults.set({ failNext: 2 });
    const before = rt.stripe!.stats().paymentIntentsCreated;
    const r = await pay('pm_card_visa');
    expect(r.body.status).toBe('captured');
    expect(rt.stripe!.stats().paymentIntentsCreated - before).toBe(1);

    rt.stripe!.faults.set({ timeoutNext: 1 });
    const t = await pay('pm_card_visa');
    const done =
      t.body.status === 'processing' ? await waitFor(t.body.id, (p) => p.status !== 'processing') : t.body;
    expect(done.status).toBe('captured');
    expect(rt.stripe!.stats().paymentIntentsCreated - before).toBe(2); // the timed-out call and its retry made one intent

    // A timeout (the processor charged, the answer was lost) followed by an outage: the outcome is
    // unknown, so paystep must not call it failed. When the processor is back, the check finds the charge.
    rt.stripe!.faults.set({ timeoutNext: 1, failRate: 1 });
    process.env.PAYSTEP_SYNC_WAIT_MS = '200';
    const u = await pay('pm_card_visa').finally(() => delete process.env.PAYSTEP_SYNC_WAIT_MS);
    expect(u.body.status).toBe('processing');
    // Recover only once the authorize step has given up and the check has started.
    for (let i = 0; i < 400; i++) {
      const t = await call('GET', `/v1/payments/${u.body.id}/timeline`);
      if (t.body.events.some((e: Json) => e.operation === 'reconcile')) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    rt.stripe!.faults.reset();
    const recovered = await waitFor(u.body.id, (p) => p.status !== 'processing');
    expect(recovered.status).toBe('captured');
    expect(rt.stripe!.stats().paymentIntentsCreated - before).toBe(3);
    const rtl = await call('GET', `/v1/payments/${u.body.id}/timeline`);
    expect(
      rtl.body.events.some(
        (e: Json) => e.type === 'attempt' && e.operation === 'reconcile' && e.outcome === 'captured',
      ),
    ).toBe(true);

    // A processor that stays down: the payment is never failed on a guess; it is flagged for attention.
    rt.stripe!.faults.set({ failRate: 1 });
    process.env.PAYSTEP_SYNC_WAIT_MS = '200';
    const f = await pay('pm_card_visa').finally(() => delete process.env.PAYSTEP_SYNC_WAIT_MS);
    const arn = (await call('GET', `/v1/payments/${f.body.id}/timeline`)).body.workflow.execution_arn;
    const exec = await rt.stepFunctions.waitForExecution(arn, 20_000);
    expect(exec).toMatchObject({ status: 'FAILED', error: 'NeedsAttention' });
    const flagged = await call('GET', `/v1/payments/${f.body.id}/timeline`);
    expect(flagged.body.payment.status).toBe('processing');
    expect(
      flagged.body.events.some((e: Json) => e.type === 'workflow' && e.event === 'needs_attention'),
    ).toBe(true);
    expect(
      flagged.body.events.filter((e: Json) => e.type === 'attempt' && e.outcome === 'error').length,
    ).toBeGreaterThanOrEqual(3);
  });

  test('a risk hit holds the payment for review; approve captures it, reject cancels it', async () => {
    const held = await pay('pm_card_visa', { customer: { country: 'KP' } });
    expect(held.body.status).toBe('pending_review');
    expect(held.body.review).toMatchObject({ status: 'open', reasons: [expect.stringMatching(/KP/)] });
    const approved = await call('POST', `/v1/reviews/${held.body.review.id}/approve`);
    expect(approved.status).toBe(200);
    expect(approved.body.payment.status).toBe('captured');

    const held2 = await pay('pm_card_visa', { customer: { country: 'KP' } });
    const rejected = await call('POST', `/v1/reviews/${held2.body.review.id}/reject`);
    expect(rejected.body.payment).toMatchObject({
      status: 'canceled',
      cancellation_reason: 'review_rejected',
    });
    const again = await call('POST', `/v1/reviews/${held2.body.review.id}/approve`);
    expect(again.status).toBe(400);
  });

  test("merchants are isolated: another merchant's payment is a 404 and never listed", async () => {
    const mine = await pay('pm_card_visa');
    const other = (await createMerchant('Other')).apiKey;
    expect((await call('GET', `/v1/payments/${mine.body.id}`, undefined, { key: other })).status).toBe(404);
    expect(
      (await call('GET', `/v1/payments/${mine.body.id}/timeline`, undefined, { key: other })).status,
    ).toBe(404);
    expect((await call('POST', `/v1/payments/${mine.body.id}/capture`, {}, { key: other })).status).toBe(404);
    const list = await call('GET', '/v1/payments', undefined, { key: other });
    expect(list.body.data).toEqual([]);
  });

  test('listing: newest first, filters and cursor pagination', async () => {
    const m = (await createMerchant('Lister')).apiKey;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push((await pay('pm_card_visa', { order_id: `o${i % 2}` }, { key: m })).body.id);
    const first = await call('GET', '/v1/payments?limit=2', undefined, { key: m });
    expect(first.body.data.map((p: Json) => p.id)).toEqual([ids[4], ids[3]]);
    expect(first.body.has_more).toBe(true);
    const second = await call('GET', `/v1/payments?limit=2&starting_after=${ids[3]}`, undefined, { key: m });
    expect(second.body.data.map((p: Json) => p.id)).toEqual([ids[2], ids[1]]);
    const byOrder = await call('GET', '/v1/payments?order_id=o1', undefined, { key: m });
    expect(byOrder.body.data.map((p: Json) => p.id)).toEqual([ids[3], ids[1]]);
    const failedOnly = await call('GET', '/v1/payments?status=failed', undefined, { key: m });
    expect(failedOnly.body.data).toEqual([]);
    expect((await call('GET', '/v1/payments?limit=1000', undefined, { key: m })).status).toBe(400);
  });

  test('bad input: wrong content type, malformed JSON, bad fields', async () => {
    const ct = await fetch(`${rt.url}/v1/payments`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'idempotency-key': randomUUID(),
        'content-type': 'text/plain',
      },
      body: 'amount=1',
    });
    expect(ct.status).toBe(400);
    expect(((await ct.json()) as Json).error.code).toBe('unsupported_content_type');
    const bad = await fetch(`${rt.url}/v1/payments`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'idempotency-key': randomUUID(),
        'content-type': 'application/json',
      },
      body: '{"amount":',
    });
    expect(bad.status).toBe(400);
    const neg = await pay('pm_card_visa', { amount: -1 });
    expect(neg.status).toBe(400);
    expect(neg.body.error).toMatchObject({ type: 'invalid_request_error', param: 'amount' });
    const unknownPm = await pay('pm_card_doesnotexist');
    expect(unknownPm.status).toBe(201);
    expect(unknownPm.body.status).toBe('failed');
    expect(unknownPm.body.failure.category).toBe('invalid_request');
  });

  async function waitFor(id: string, done: (p: Json) => boolean): Promise<Json> {
    for (let i = 0; i < 500; i++) {
      const p = (await call('GET', `/v1/payments/${id}`)).body;
      if (done(p)) return p;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`payment ${id} did not settle`);
  }
});
