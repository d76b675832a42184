/**
 * Adyen's payment flow, honestly asynchronous (docs/states.md, "Pending capture and cancel"), on
 * the local runtime with the Adyen simulator:
 * - a capture or cancel Adyen answers `received` is recorded as requested, the payment stays
 *   authorized (`pending_modification`) until the CAPTURE / CANCELLATION notification, which
 *   resumes the waiting workflow; the simulator shows one modification;
 * - while it is pending, another capture or cancel is refused (409) and so is a refund;
 * - a notification that never reaches the applier: the workflow's check reads the stored fact;
 * - 3-D Secure: the shopper's return (GET /v1/payments/{id}/return) completes the payment;
 * - card analytics (BIN, issuer country) are kept beside the payment, never in the API's `card`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { hmacValidator } from '@adyen/api-library';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import {
  ADYEN_LOCAL_API_KEY,
  ADYEN_LOCAL_HMAC_KEY,
  ADYEN_LOCAL_MERCHANT_ACCOUNT,
} from '../../lib/topology/processors.ts';
import { factOf } from '../../lambdas/connectors/adyen/notifications.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { checkPendingModification } from '../../lambdas/payments/modification-outcome.ts';
import { getPayment, requestModification, timeline } from '../../lambdas/store/payments.ts';
import { storeFact } from '../../lambdas/store/processor-facts.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by assertions
type Json = Record<string, any>;

describe('Adyen payments: pending capture and cancel, 3-D Secure return, card analytics', () => {
  let dir: string;
  let rt: Runtime;
  let key: string;
  const saved = process.env.PAYSTEP_SYNC_WAIT_MS;

  const call = async (method: string, p: string, body?: unknown, headers: Record<string, string> = {}) => {
    const h: Record<string, string> = { authorization: `Bearer ${key}`, ...headers };
    if (body !== undefined) h['content-type'] = 'application/json';
    if (method === 'POST' && !h['idempotency-key']) h['idempotency-key'] = randomUUID();
    const res = await fetch(`${rt.url}${p}`, {
      method,
      headers: h,
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as Json };
  };
  const sim = async (method: string, p: string, body?: unknown) => {
    const res = await fetch(`${rt.endpoints.adyen}/_sim${p}`, {
      method,
      headers: body !== undefined ? { 'content-type': 'application/json' } : {},
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    return (await res.json()) as Json;
  };
  const until = async <T>(what: string, fn: () => Promise<T | undefined | false>, ms = 20_000) => {
    const end = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const manual = async (amount: number) => {
    const r = await call('POST', '/v1/payments', {
      amount,
      currency: 'eur',
      payment_method: 'pm_card_visa',
      capture_method: 'manual',
      processor: 'adyen',
    });
    expect(r.body).toMatchObject({ status: 'authorized', processor: 'adyen' });
    return r.body;
  };
  /** The simulator's modifications of a payment (what Adyen did), by type. */
  const modifications = async (psp: string, type: string) =>
    ((await sim('GET', `/payments/${psp}`)).modifications as Json[]).filter((m) => m.type === type);
  /** The notification item Adyen would send for a decided modification, signed. */
  const signedItem = (mod: Json, eventCode: string, success: boolean) => {
    const item: Json = {
      pspReference: mod.pspReference,
      originalReference: mod.paymentPspReference,
      merchantAccountCode: mod.merchantAccount,
      merchantReference: mod.reference ?? '',
      amount: mod.amount ?? { currency: 'EUR', value: 0 },
      eventCode,
      eventDate: new Date().toISOString(),
      success: success ? 'true' : 'false',
      reason: '',
      additionalData: {},
    };
    item.additionalData.hmacSignature = new hmacValidator().calculateHmac(
      item as never,
      ADYEN_LOCAL_HMAC_KEY,
    );
    return item;
  };
  const dropNotifications = (on: boolean) =>
    on ? sim('POST', '/notifications/controls', { dropRate: 1 }) : sim('DELETE', '/notifications/controls');

  beforeAll(async () => {
    process.env.PAYSTEP_SYNC_WAIT_MS = '2000';
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-adyen-pay-'));
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 1000, scheduler: false });
    key = (await createMerchant('Adyen Async Shop')).apiKey;
  });
  afterAll(async () => {
    await rt?.stop();
    if (saved === undefined) delete process.env.PAYSTEP_SYNC_WAIT_MS;
    else process.env.PAYSTEP_SYNC_WAIT_MS = saved;
    fs.rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => dropNotifications(false));

  test('a capture is captured only when the CAPTURE notification says so; Adyen captures once', async () => {
    const p = await manual(3000);
    const c = await call('POST', `/v1/payments/${p.id}/capture`, { amount: 2000 });
    expect(c.status).toBe(200);
    expect(c.body).toMatchObject({ status: 'captured', amount_captured: 2000, pending_modification: null });
    const events = await timeline(p.id);
    const requested = events.find((e) => e.type === 'modification' && e.event === 'requested');
    const attempt = events.find((e) => e.type === 'attempt' && e.operation === 'capture');
    const confirmed = events.find((e) => e.type === 'status_changed' && e.status === 'captured');
    expect(requested).toMatchObject({ action: 'capture', amount: 2000, idempotency_key: `${p.id}:capture` });
    expect(attempt).toMatchObject({ outcome: 'pending', processor_status: 'received' });
    expect(String(confirmed?.note)).toMatch(/capture confirmed: CAPTURE notification/);
    expect(await modifications(p.processor_reference, 'capture')).toHaveLength(1);
  });

  test('while the outcome is pending: 202, no second capture, no cancel, no refund; the late notification resumes the workflow', async () => {
    const p = await manual(4000);
    await dropNotifications(true);
    const c = await call('POST', `/v1/payments/${p.id}/capture`, {});
    expect(c.status).toBe(202);
    expect(c.body).toMatchObject({
      status: 'authorized',
      amount_captured: 0,
      pending_modification: { type: 'capture', status: 'pending', amount: 4000 },
    });
    expect(c.body.pending_modification.processor_reference).toMatch(/^[A-Z0-9]{16}$/);
    expect(c.body.explanation).toMatch(/capture of .* was requested and accepted by the processor/);
    const again = await call('POST', `/v1/payments/${p.id}/capture`, {});
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ type: 'conflict', code: 'modification_pending' });
    const cancel = await call('POST', `/v1/payments/${p.id}/cancel`, {});
    expect(cancel.status).toBe(409);
    const refund = await call('POST', '/v1/refunds', { payment: p.id, amount: 100 });
    expect(refund.status).toBe(400);
    expect(refund.body.error.code).toBe('payment_unexpected_state');
    // Adyen did capture (its notification was lost on the way): one capture, succeeded.
    const mod = await until('the capture at Adyen', async () => {
      const m = await modifications(p.processor_reference, 'capture');
      return m[0]?.status === 'succeeded' ? m[0] : undefined;
    });
    expect(mod.pspReference).toBe(c.body.pending_modification.processor_reference);
    // Adyen's retry arrives: the payment is captured and its workflow finishes.
    await dropNotifications(false);
    const res = await fetch(`${rt.url}/webhooks/adyen`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        live: 'false',
        notificationItems: [{ NotificationRequestItem: signedItem(mod, 'CAPTURE', true) }],
      }),
    });
    expect(await res.text()).toBe('[accepted]');
    const done = await until('the capture outcome', async () => {
      const x = await call('GET', `/v1/payments/${p.id}`);
      return x.body.status === 'captured' ? x.body : undefined;
    });
    expect(done).toMatchObject({ amount_captured: 4000, pending_modification: null });
    const t = await call('GET', `/v1/payments/${p.id}/timeline`);
    await until('the workflow to end', async () => {
      const x = await call('GET', `/v1/payments/${p.id}/timeline`);
      return x.body.workflow?.status === 'SUCCEEDED' ? x : undefined;
    });
    expect(
      t.body.events.some(
        (e: Json) => e.type === 'workflow' && /waiting for the capture outcome/.test(e.event),
      ),
    ).toBe(true);
    expect(await modifications(p.processor_reference, 'capture')).toHaveLength(1);
  });

  test('a notification stored but never applied: the workflow checks the stored facts and captures', async () => {
    const p = await manual(5000);
    await dropNotifications(true);
    const c = await call('POST', `/v1/payments/${p.id}/capture`, {});
    expect(c.status).toBe(202);
    const mod = await until('the capture at Adyen', async () => {
      const m = await modifications(p.processor_reference, 'capture');
      return m[0]?.status === 'succeeded' ? m[0] : undefined;
    });
    // The fact is stored (as POST /webhooks/adyen does) but its processing is lost.
    const fact = factOf(signedItem(mod, 'CAPTURE', true) as never, false)!;
    expect(await storeFact(fact)).toBe(true);
    // "Wait for the capture outcome" lapses (an hour, scaled), "Check the capture with the processor" decides.
    const done = await until('the check to capture', async () => {
      const x = await getPayment(p.id);
      return x?.status === 'captured' ? x : undefined;
    });
    expect(done.amount_captured).toBe(5000);
    expect(done.pending_modification ?? null).toBeNull();
    const t = await timeline(p.id);
    expect(
      t.some((e) => e.type === 'attempt' && e.operation === 'retrieve' && e.reason === 'capture pending'),
    ).toBe(true);
    expect(await modifications(p.processor_reference, 'capture')).toHaveLength(1);
  });

  test('a capture Adyen refuses (CAPTURE success=false) on a canceled authorisation: the payment is canceled, as Adyen says', async () => {
    const p = await manual(2500);
    // The authorisation is canceled at Adyen behind paystep's back (e.g. in the Customer Area).
    const direct = await fetch(`${rt.endpoints.adyen}/v72/payments/${p.processor_reference}/cancels`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': ADYEN_LOCAL_API_KEY },
      body: JSON.stringify({ merchantAccount: ADYEN_LOCAL_MERCHANT_ACCOUNT }),
    });
    expect(direct.status).toBe(200);
    await until('the cancellation at Adyen', async () => {
      const m = await modifications(p.processor_reference, 'cancel');
      return m[0]?.status === 'succeeded';
    });
    const c = await call('POST', `/v1/payments/${p.id}/capture`, {});
    expect(c.status).toBe(200);
    expect(c.body).toMatchObject({
      status: 'canceled',
      amount_captured: 0,
      cancellation_reason: 'authorization_expired',
      pending_modification: null,
    });
    expect((await getPayment(p.id))?.last_capture_error).toMatchObject({ code: 'capture_failed' });
    const captures = await modifications(p.processor_reference, 'capture');
    expect(captures.map((m) => [m.status, m.reason])).toEqual([['failed', 'Transaction already cancelled']]);
  });

  test('a capture that fails leaves the payment authorized; the next capture is a new modification with a new key', async () => {
    const p = await manual(2200);
    await dropNotifications(true);
    expect((await call('POST', `/v1/payments/${p.id}/capture`, {})).status).toBe(202);
    const mod = await until('the capture at Adyen', async () => {
      const m = await modifications(p.processor_reference, 'capture');
      return m[0]?.status === 'succeeded' ? m[0] : undefined;
    });
    // Adyen reports this capture failed (the scheme refused it): CAPTURE_FAILED.
    const res = await fetch(`${rt.url}/webhooks/adyen`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        live: 'false',
        notificationItems: [{ NotificationRequestItem: signedItem(mod, 'CAPTURE_FAILED', true) }],
      }),
    });
    expect(await res.text()).toBe('[accepted]');
    const failed = await until('the failure to apply', async () => {
      const x = await getPayment(p.id);
      return x?.last_capture_error ? x : undefined;
    });
    expect(failed).toMatchObject({ status: 'authorized', amount_captured: 0 });
    expect(failed.pending_modification ?? null).toBeNull();
    await dropNotifications(false);
    // The workflow went back to waiting for capture or cancel: a new capture, a new key.
    const again = await until('the workflow to wait again', async () => {
      const r = await call('POST', `/v1/payments/${p.id}/capture`, { amount: 1000 });
      return r.status === 409 ? undefined : r;
    });
    // (The simulator captured the first one before we told paystep it failed, so Adyen refuses this
    // one as already captured: a real second modification, answered honestly.)
    expect(again.status).toBe(502);
    const keys = (await timeline(p.id))
      .filter((e) => e.type === 'modification' && e.event === 'requested')
      .map((e) => e.idempotency_key);
    expect(keys).toEqual([`${p.id}:capture`, `${p.id}:capture:2`]);
    const captures = await modifications(p.processor_reference, 'capture');
    expect(captures.map((m) => m.status)).toEqual(['succeeded', 'failed']);
    expect(captures[1]!.amount.value).toBe(1000);
  });

  test('a capture recorded but never answered is asked again with its own key: Adyen captures once', async () => {
    const p = await manual(3300);
    // A capture recorded before the processor call, whose answer never reached paystep (a crash).
    const pending = await requestModification(p.id, 'capture', { amount: 3300 });
    expect(pending).toMatchObject({ state: 'requested', idempotency_key: `${p.id}:capture` });
    // Asked twice (a second check that read it unanswered too): the same key both times.
    const seen = (await getPayment(p.id))!;
    for (let i = 0; i < 2; i++)
      expect(['capture_requested', 'captured']).toContain(await checkPendingModification(seen));
    const done = await until('the capture outcome', async () => {
      const x = await getPayment(p.id);
      return x?.status === 'captured' ? x : undefined;
    });
    expect(done.amount_captured).toBe(3300);
    expect(await modifications(p.processor_reference, 'capture')).toHaveLength(1);
  });

  test('a cancel is canceled only when the CANCELLATION notification says so; Adyen cancels once', async () => {
    const p = await manual(1800);
    const c = await call('POST', `/v1/payments/${p.id}/cancel`, { reason: 'duplicate' });
    expect(c.status).toBe(200);
    expect(c.body).toMatchObject({
      status: 'canceled',
      cancellation_reason: 'duplicate',
      pending_modification: null,
    });
    const events = await timeline(p.id);
    expect(events.find((e) => e.type === 'attempt' && e.operation === 'cancel')).toMatchObject({
      outcome: 'pending',
      processor_status: 'received',
    });
    expect(await modifications(p.processor_reference, 'cancel')).toHaveLength(1);
  });

  test('Stripe captures through the same path and answers at once', async () => {
    const r = await call('POST', '/v1/payments', {
      amount: 1200,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      capture_method: 'manual',
      processor: 'stripe',
    });
    const c = await call('POST', `/v1/payments/${r.body.id}/capture`, {});
    expect(c.status).toBe(200);
    expect(c.body).toMatchObject({ status: 'captured', amount_captured: 1200, pending_modification: null });
    const attempt = (await timeline(r.body.id)).find(
      (e) => e.type === 'attempt' && e.operation === 'capture',
    );
    expect(attempt).toMatchObject({ outcome: 'captured' });
  });

  test('3-D Secure: the shopper returns with a redirectResult and the payment is captured', async () => {
    const r = await call('POST', '/v1/payments', {
      amount: 2600,
      currency: 'eur',
      payment_method: 'pm_card_authenticationRequired',
      processor: 'adyen',
    });
    expect(r.body).toMatchObject({ status: 'requires_action', processor: 'adyen' });
    const psp = r.body.processor_reference as string;
    // The shopper authenticates on the issuer's page; Adyen sends them back with a redirectResult.
    const { redirectResult } = await sim('POST', `/3ds/${psp}`, { outcome: 'authenticated' });
    expect(typeof redirectResult).toBe('string');
    const back = await fetch(
      `${rt.url}/v1/payments/${r.body.id}/return?redirectResult=${encodeURIComponent(redirectResult)}`,
    );
    expect(back.status).toBe(200);
    expect(await back.json()).toEqual({ object: 'payment_return', payment: r.body.id, status: 'captured' });
    const p = await call('GET', `/v1/payments/${r.body.id}`);
    expect(p.body).toMatchObject({ status: 'captured', amount_captured: 2600 });
    // The waiting workflow was resumed with the outcome and ends captured.
    await until('the workflow to end', async () => {
      const x = await call('GET', `/v1/payments/${r.body.id}/timeline`);
      return x.body.workflow?.status === 'SUCCEEDED' ? x : undefined;
    });
    // Coming back again (a reload) changes nothing.
    const reload = await fetch(
      `${rt.url}/v1/payments/${r.body.id}/return?redirectResult=${encodeURIComponent(redirectResult)}`,
    );
    expect(await reload.json()).toMatchObject({ status: 'captured' });
  });

  test('3-D Secure failed by the shopper: the payment fails; a bad redirectResult is a 400', async () => {
    const r = await call('POST', '/v1/payments', {
      amount: 2700,
      currency: 'eur',
      payment_method: 'pm_card_authenticationRequired',
      processor: 'adyen',
    });
    const bad = await fetch(`${rt.url}/v1/payments/${r.body.id}/return?redirectResult=garbage`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as Json).error).toMatchObject({ code: 'redirect_result_invalid' });
    const missing = await fetch(`${rt.url}/v1/payments/${r.body.id}/return`);
    expect(missing.status).toBe(400);
    const { redirectResult } = await sim('POST', `/3ds/${r.body.processor_reference}`, { outcome: 'failed' });
    const back = await fetch(
      `${rt.url}/v1/payments/${r.body.id}/return?redirectResult=${encodeURIComponent(redirectResult)}`,
    );
    expect(((await back.json()) as Json).status).toBe('failed');
    const p = await call('GET', `/v1/payments/${r.body.id}`);
    expect(p.body.failure.category).toBe('authentication');
  });

  test('card analytics: the BIN and issuer country are kept beside the payment, the API shows brand/last4/country only', async () => {
    const r = await call('POST', '/v1/payments', {
      amount: 1500,
      currency: 'eur',
      payment_method: 'pm_card_visa',
      processor: 'adyen',
    });
    expect(Object.keys(r.body.card).sort()).toEqual(expect.arrayContaining(['brand', 'last4']));
    expect(r.body.card_analytics).toBeUndefined();
    expect(JSON.stringify(r.body)).not.toMatch(/411111/);
    const stored = await getPayment(r.body.id);
    expect(stored?.card_analytics).toMatchObject({ bin: '411111' });
    expect(stored?.card_analytics?.bin).toMatch(/^\d{6}$/);
    const s = await call('POST', '/v1/payments', {
      amount: 1500,
      currency: 'usd',
      payment_method: 'pm_card_visa',
    });
    expect((await getPayment(s.body.id))?.card_analytics).toEqual({ issuer_country: 'US' });
  });
});
