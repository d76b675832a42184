/**
 * The sweeper on Adyen (the Adyen counterpart of sweeper.test.ts). Adyen has no API to read a
 * payment, so the sweeper's truth comes from the Adyen connector: an authorisation whose answer was
 * lost is asked again with the same idempotency key (Adyen answers what it did, and charges once),
 * and a payment's or refund's state is read from the notification facts paystep stored (the
 * connector's state source). With every notification lost, nothing is guessed: no fact, no change.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { parseAdyenNotification } from '../../lambdas/connectors/adyen/notifications.ts';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { ADYEN_LOCAL_HMAC_KEY } from '../../lib/topology/processors.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { getRefundItem } from '../../lambdas/store/refunds.ts';
import { storeFact } from '../../lambdas/store/processor-facts.ts';
import { REFUND_PENDING_ESCALATION_SECONDS, sweep } from '../../lambdas/sweeper/run.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by assertions
type Json = Record<string, any>;

function api(rt: () => Runtime, key: () => string) {
  return async (method: string, p: string, body?: unknown): Promise<{ status: number; body: Json }> => {
    const headers: Record<string, string> = { authorization: `Bearer ${key()}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method === 'POST') headers['idempotency-key'] = randomUUID();
    const res = await fetch(`${rt().url}${p}`, {
      method,
      headers,
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as Json };
  };
}

const until = async <T>(what: string, fn: () => Promise<T | undefined | false>, ms = 20_000): Promise<T> => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

/** What the Adyen simulator holds for a pspReference: the payment and its modifications. */
async function atAdyen(rt: Runtime, psp: string): Promise<Json> {
  return (await (await fetch(`${rt.endpoints.adyen}/_sim/payments/${psp}`)).json()) as Json;
}

describe('sweeper on Adyen: an unknown authorisation outcome', () => {
  let dir: string;
  let rt: Runtime;
  let key: string;
  const call = api(
    () => rt,
    () => key,
  );

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-sweeper-adyen-'));
    process.env.PAYSTEP_PROCESSOR_TIMEOUT_MS = '400';
    // Fast enough that the workflow's long retries are spent in about a second.
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 100_000, scheduler: false });
    key = (await createMerchant('Adyen Sweep')).apiKey;
  });
  afterAll(async () => {
    delete process.env.PAYSTEP_PROCESSOR_TIMEOUT_MS;
    delete process.env.PAYSTEP_SYNC_WAIT_MS;
    await rt?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('Adyen processed the payment but never answered, and its notification was lost: escalated while Adyen stays silent, then captured once', async () => {
    rt.adyen!.notifications.configure({ dropRate: 1 }); // the AUTHORISATION notification never comes
    rt.adyen!.faults.set({ mode: 'timeout-after-processing', match: '^POST /v7\\d/payments$' });
    process.env.PAYSTEP_SYNC_WAIT_MS = '200';
    const created = await call('POST', '/v1/payments', {
      amount: 3100,
      currency: 'eur',
      payment_method: 'pm_card_visa',
      processor: 'adyen',
    });
    delete process.env.PAYSTEP_SYNC_WAIT_MS;
    expect(created.status).toBeLessThan(300);
    const id = created.body.id as string;
    const arn = `arn:aws:states:local:000000000000:execution:paystep-payment:${id}`;
    expect(await rt.stepFunctions.waitForExecution(arn, 30_000)).toMatchObject({
      status: 'FAILED',
      error: 'NeedsAttention',
    });
    // Adyen did authorise it (the request ran; only its answer was lost).
    const psps = rt.adyen!.notificationItems().filter((i) => i.merchantReference === id);
    expect(psps.map((i) => i.eventCode)).toEqual(['AUTHORISATION']);
    const psp = psps[0]!.pspReference;
    expect((await call('GET', `/v1/payments/${id}`)).body).toMatchObject({
      status: 'processing',
      processor: 'adyen',
    });

    const stillSilent = await sweep();
    expect(stillSilent.escalated.map((e) => e.id)).toContain(id);
    expect((await call('GET', `/v1/payments/${id}`)).body.status).toBe('processing'); // never failed

    rt.adyen!.faults.reset();
    const recovered = await sweep();
    expect(recovered.resolved).toContainEqual({ id, action: 'reconciled: captured' });
    expect((await call('GET', `/v1/payments/${id}`)).body).toMatchObject({
      status: 'captured',
      amount_captured: 3100,
      processor: 'adyen',
      processor_reference: psp,
    });
    // One payment at Adyen: every retry and the sweeper's check replayed the same idempotency key.
    expect(
      rt
        .adyen!.notificationItems()
        .filter((i) => i.merchantReference === id && i.eventCode === 'AUTHORISATION'),
    ).toHaveLength(1);
    expect((await atAdyen(rt, psp)).payment).toBeDefined();
    expect((await sweep()).resolved.filter((r) => r.id === id)).toEqual([]);
    rt.adyen!.notifications.configure({ dropRate: 0 });
  });
});

describe('sweeper on Adyen: lost notifications', () => {
  let dir: string;
  let rt: Runtime;
  let key: string;
  const call = api(
    () => rt,
    () => key,
  );

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-sweeper-adyen-lost-'));
    process.env.PAYSTEP_SYNC_WAIT_MS = '300';
    // Slow enough that the workflows' own timeouts (1 h for 3-D Secure, 24 h for refunds) do not fire.
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 10, scheduler: false });
    key = (await createMerchant('Adyen Lost')).apiKey;
    process.env.PAYSTEP_SWEEP_AFTER_SECONDS = '0';
    process.env.PAYSTEP_SWEEP_AUTH_AFTER_SECONDS = '0';
  });
  afterAll(async () => {
    delete process.env.PAYSTEP_SYNC_WAIT_MS;
    delete process.env.PAYSTEP_SWEEP_AFTER_SECONDS;
    delete process.env.PAYSTEP_SWEEP_AUTH_AFTER_SECONDS;
    await rt?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("a refund whose REFUND notification is lost stays pending (nothing guessed); once the notification's fact is in paystep's records, the sweeper settles it once", async () => {
    const paid = await call('POST', '/v1/payments', {
      amount: 2600,
      currency: 'eur',
      payment_method: 'pm_card_visa',
      processor: 'adyen',
    });
    const id = paid.body.id as string;
    await until('captured', async () => (await call('GET', `/v1/payments/${id}`)).body.status === 'captured');
    const psp = (await call('GET', `/v1/payments/${id}`)).body.processor_reference as string;

    rt.adyen!.notifications.configure({ dropRate: 1 });
    const refund = (await call('POST', '/v1/refunds', { payment: id, amount: 1100 })).body;
    expect(refund.status).toBe('pending');
    const refundPsp = await until(
      'the refund sent to Adyen',
      async () => (await getRefundItem(refund.id))?.processor_reference as string | undefined,
    );
    const item = await until('Adyen to decide the refund', async () =>
      rt.adyen!.notificationItems().find((i) => i.pspReference === refundPsp && i.eventCode === 'REFUND'),
    );
    expect(item.success).toBe('true');

    // The notification never reached paystep: Adyen has no API to ask, so the refund stays pending.
    const blind = await sweep();
    expect(blind.escalated.filter((e) => e.id === refund.id)).toEqual([]);
    expect(blind.resolved.filter((r) => r.id === refund.id)).toEqual([]);
    expect((await call('GET', `/v1/refunds/${refund.id}`)).body.status).toBe('pending');
    // Three days on, still nothing: escalated for someone to look, and still pending.
    const later = await sweep(Math.floor(Date.now() / 1000) + REFUND_PENDING_ESCALATION_SECONDS + 60);
    expect(later.escalated).toContainEqual({
      id: refund.id,
      reason: "refund pending at adyen for 3 days with no outcome: check it in the processor's dashboard",
    });
    expect((await call('GET', `/v1/refunds/${refund.id}`)).body.status).toBe('pending');

    // The route stored the notification's fact under its references, then crashed before queueing
    // it, and Adyen's retry was lost: the fact is in paystep's records, its processing is not.
    const verified = parseAdyenNotification(
      JSON.stringify({ live: 'false', notificationItems: [{ NotificationRequestItem: item }] }),
      { hmacKeys: [ADYEN_LOCAL_HMAC_KEY] },
    );
    expect(verified.facts).toHaveLength(1);
    expect(await storeFact(verified.facts[0]!)).toBe(true);
    const swept = await sweep();
    expect(swept.escalated).toEqual([]);
    expect(swept.resolved).toContainEqual({ id: refund.id, action: 'resumed: succeeded' });
    await until(
      'refund succeeded',
      async () => (await call('GET', `/v1/refunds/${refund.id}`)).body.status === 'succeeded',
    );
    expect((await call('GET', `/v1/payments/${id}`)).body).toMatchObject({
      status: 'partially_refunded',
      amount_refunded: 1100,
    });
    expect((await sweep()).resolved.filter((r) => r.id === refund.id)).toEqual([]);
    expect((await call('GET', `/v1/payments/${id}`)).body.amount_refunded).toBe(1100); // settled once
    const refundsAtAdyen = ((await atAdyen(rt, psp)).modifications as Json[]).filter(
      (m) => m.type === 'refund',
    );
    expect(refundsAtAdyen).toHaveLength(1);
    rt.adyen!.notifications.configure({ dropRate: 0 });
  });

  test('a payment waiting for 3-D Secure with no notification yet is left waiting, not escalated', async () => {
    const created = await call('POST', '/v1/payments', {
      amount: 1700,
      currency: 'eur',
      payment_method: 'pm_card_authenticationRequired',
      processor: 'adyen',
    });
    const id = created.body.id as string;
    await until(
      'requires_action',
      async () => (await call('GET', `/v1/payments/${id}`)).body.status === 'requires_action',
    );
    const r = await sweep();
    expect(r.escalated.filter((e) => e.id === id)).toEqual([]);
    expect((await call('GET', `/v1/payments/${id}`)).body).toMatchObject({ status: 'requires_action' });
    expect((await call('GET', `/v1/payments/${id}`)).body.needs_attention).toBeFalsy();
  });
});
