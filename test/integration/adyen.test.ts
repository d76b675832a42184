/**
 * Adyen end to end on the local runtime (one runtime for the file): payments sent to Adyen with
 * `processor: "adyen"` and paystep's test payment method ids, through the Adyen simulator and the
 * real @adyen/api-library client; modification outcomes and refunds settled by HMAC-signed
 * notifications on POST /webhooks/adyen, stored once and applied idempotently; a forged
 * notification refused with 401.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { hmacValidator } from '@adyen/api-library';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { listFacts } from '../../lambdas/store/processor-facts.ts';
import { getWebhookEvent } from '../../lambdas/store/webhook-events.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by assertions
type Json = Record<string, any>;

describe('Adyen on the local runtime', () => {
  let dir: string;
  let rt: Runtime;
  let key: string;

  const call = async (method: string, p: string, body?: unknown) => {
    const headers: Record<string, string> = { authorization: `Bearer ${key}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method === 'POST') headers['idempotency-key'] = randomUUID();
    const res = await fetch(`${rt.url}${p}`, {
      method,
      headers,
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as Json };
  };
  const postNotification = async (body: unknown) => {
    const res = await fetch(`${rt.url}/webhooks/adyen`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, text: await res.text() };
  };
  const until = async <T>(what: string, fn: () => Promise<T | undefined | false>, ms = 15_000) => {
    const end = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const factProcessed = (psp: string, rawEvent: string) =>
    until(`${rawEvent} of ${psp} processed`, async () => {
      const f = (await listFacts('adyen', psp)).find((x) => x.raw_event === rawEvent && x.success);
      const e = f && (await getWebhookEvent('adyen', f.id));
      return e?.status === 'processed' ? f : undefined;
    });

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-adyen-'));
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 1000, scheduler: false });
    key = (await createMerchant('Adyen Shop')).apiKey;
  });
  afterAll(async () => {
    await rt?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the runtime runs the Adyen simulator and lists it', () => {
    expect(rt.endpoints.adyen).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const info = JSON.parse(fs.readFileSync(path.join(dir, 'runtime.json'), 'utf8')) as Json;
    expect(info.endpoints.adyen).toBe(rt.endpoints.adyen);
  });

  test('pm_card_visa is captured on Adyen; the payment shows Adyen and its pspReference', async () => {
    const r = await call('POST', '/v1/payments', {
      amount: 1500,
      currency: 'eur',
      payment_method: 'pm_card_visa',
      processor: 'adyen',
    });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ status: 'captured', processor: 'adyen', amount_captured: 1500 });
    expect(r.body.processor_reference).toMatch(/^[A-Z0-9]{16}$/);
    const got = await call('GET', `/v1/payments/${r.body.id}`);
    expect(got.body).toMatchObject({
      processor: 'adyen',
      processor_reference: r.body.processor_reference,
    });
    // The AUTHORISATION notification is verified, stored once and compared with the payment.
    await factProcessed(r.body.processor_reference, 'AUTHORISATION');
    expect((await call('GET', `/v1/payments/${r.body.id}`)).body.status).toBe('captured');
  });

  test('without `processor` a payment goes to Stripe; an unknown processor is refused', async () => {
    const r = await call('POST', '/v1/payments', {
      amount: 700,
      currency: 'usd',
      payment_method: 'pm_card_visa',
    });
    expect(r.body).toMatchObject({ status: 'captured', processor: 'stripe' });
    const bad = await call('POST', '/v1/payments', {
      amount: 700,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      processor: 'worldpay',
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'parameter_invalid', param: 'processor' });
  });

  test('an insufficient-funds card is declined with insufficient_funds', async () => {
    const r = await call('POST', '/v1/payments', {
      amount: 2000,
      currency: 'eur',
      payment_method: 'pm_card_visa_chargeDeclinedInsufficientFunds',
      processor: 'adyen',
    });
    expect(r.body).toMatchObject({ status: 'failed', processor: 'adyen' });
    expect(r.body.failure).toMatchObject({ code: 'insufficient_funds', category: 'soft_decline' });
  });

  test('manual capture, then capture; the CAPTURE notification is applied once, however often it comes', async () => {
    const r = await call('POST', '/v1/payments', {
      amount: 3000,
      currency: 'eur',
      payment_method: 'pm_card_visa',
      capture_method: 'manual',
      processor: 'adyen',
    });
    expect(r.body).toMatchObject({ status: 'authorized', processor: 'adyen', amount_captured: 0 });
    const psp = r.body.processor_reference as string;
    const c = await call('POST', `/v1/payments/${r.body.id}/capture`, { amount: 2500 });
    expect(c.status).toBe(200);
    expect(c.body).toMatchObject({ status: 'captured', amount_captured: 2500 });
    const fact = await factProcessed(psp, 'CAPTURE');
    expect(fact).toMatchObject({ kind: 'payment', event: 'captured', reference: psp });
    // Adyen delivers the same notification again: accepted, nothing new stored, nothing changes.
    const item = rt
      .adyen!.notificationItems()
      .find((i) => i.eventCode === 'CAPTURE' && i.originalReference === psp);
    expect(item).toBeDefined();
    const before = (await listFacts('adyen', psp)).length;
    const again = await postNotification({
      live: 'false',
      notificationItems: [{ NotificationRequestItem: item }],
    });
    expect(again).toEqual({ status: 200, text: '[accepted]' });
    expect((await listFacts('adyen', psp)).length).toBe(before);
    expect((await getWebhookEvent('adyen', fact.id))?.attempts).toBe(1);
    expect((await call('GET', `/v1/payments/${r.body.id}`)).body).toMatchObject({
      status: 'captured',
      amount_captured: 2500,
    });
  });

  test('a refund reaches succeeded by the REFUND notification', async () => {
    const p = await call('POST', '/v1/payments', {
      amount: 4000,
      currency: 'eur',
      payment_method: 'pm_card_visa',
      processor: 'adyen',
    });
    expect(p.body.status).toBe('captured');
    const r = await call('POST', '/v1/refunds', { payment: p.body.id, amount: 1000 });
    expect(r.status).toBe(201);
    const refund = await until('the refund to succeed', async () => {
      const g = await call('GET', `/v1/refunds/${r.body.id}`);
      return g.body.status === 'succeeded' ? g.body : undefined;
    });
    expect(refund.processor_reference).toMatch(/^[A-Z0-9]{16}$/);
    const fact = (await listFacts('adyen', refund.processor_reference as string)).find(
      (f) => f.raw_event === 'REFUND',
    );
    expect(fact).toMatchObject({
      kind: 'refund',
      event: 'succeeded',
      paymentReference: p.body.processor_reference,
    });
    expect((await call('GET', `/v1/payments/${p.body.id}`)).body).toMatchObject({
      status: 'partially_refunded',
      amount_refunded: 1000,
    });
  });

  test('a forged notification is refused with 401 and nothing is stored', async () => {
    const item = {
      pspReference: 'FORGED0000000001',
      originalReference: 'FORGED0000000000',
      merchantAccountCode: 'PaystepLocalECOM',
      merchantReference: 'pay_forged',
      amount: { currency: 'EUR', value: 100000 },
      eventCode: 'REFUND',
      eventDate: new Date().toISOString(),
      success: 'true',
      additionalData: {} as Record<string, string>,
    };
    const wrongKey = 'AB'.repeat(32);
    item.additionalData.hmacSignature = new hmacValidator().calculateHmac(item as never, wrongKey);
    const r = await postNotification({
      live: 'false',
      notificationItems: [{ NotificationRequestItem: item }],
    });
    expect(r.status).toBe(401);
    expect(JSON.parse(r.text).error).toMatchObject({ code: 'bad_signature' });
    expect(await listFacts('adyen', 'FORGED0000000001')).toEqual([]);
  });
});
