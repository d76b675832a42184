/**
 * Webhook signatures, retry policy, payment-state comparison and the simulator's webhook sender,
 * without a runtime. Signatures come from the `stripe` SDK itself (`generateTestHeaderString`).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { parseSecretList, verifyStripeSignature } from '../../lambdas/connectors/stripe/signature.ts';
import { MAX_RECEIVES, RETRY_MAX_SECONDS, retryDelaySeconds } from '../../lambdas/webhooks/policy.ts';
import { compareStates } from '../../lambdas/webhooks/payments.ts';
import { stageOf } from '../../lambdas/webhooks/facts.ts';
import { paymentEventOfIntent } from '../../lambdas/connectors/stripe/webhooks.ts';
import {
  StripeWebhookSender,
  webhookControlsFromEnv,
} from '../../lib/local/processors/stripe-webhook-sender.ts';
import type { StripeEvent } from '../../lib/local/processors/stripe-simulator.ts';
import { createLogger } from '../../lib/local/log.ts';

const SECRET = 'whsec_test_current';
const OLD = 'whsec_test_previous';
const payload = JSON.stringify(
  {
    id: 'evt_1',
    object: 'event',
    type: 'payment_intent.succeeded',
    created: 1,
    data: { object: { id: 'pi_1' } },
  },
  null,
  2,
);
const sign = (body: string, secret: string, timestamp?: number) =>
  Stripe.webhooks.generateTestHeaderString({ payload: body, secret, ...(timestamp ? { timestamp } : {}) });
const now = () => Math.floor(Date.now() / 1000);

describe('Stripe signature verification', () => {
  test('a signature made by the stripe SDK with the secret is accepted', () => {
    expect(verifyStripeSignature(payload, sign(payload, SECRET), [SECRET])).toEqual({ ok: true });
    expect(verifyStripeSignature(Buffer.from(payload), sign(payload, SECRET), [SECRET])).toEqual({
      ok: true,
    });
  });

  test('a tampered body is refused', () => {
    const header = sign(payload, SECRET);
    const tampered = payload.replace('pi_1', 'pi_2');
    expect(verifyStripeSignature(tampered, header, [SECRET])).toMatchObject({
      ok: false,
      code: 'signature_invalid',
    });
  });

  test('the body must be the raw bytes: the same JSON re-serialized does not verify', () => {
    const header = sign(payload, SECRET);
    const reserialized = JSON.stringify(JSON.parse(payload));
    expect(verifyStripeSignature(reserialized, header, [SECRET])).toMatchObject({ ok: false });
  });

  test('another secret is refused', () => {
    expect(verifyStripeSignature(payload, sign(payload, 'whsec_attacker'), [SECRET])).toMatchObject({
      ok: false,
      code: 'signature_invalid',
    });
  });

  test('a stale timestamp (older than 300 s) is refused even with a valid signature; 299 s is fine', () => {
    const stale = sign(payload, SECRET, now() - 301);
    expect(verifyStripeSignature(payload, stale, [SECRET])).toMatchObject({
      ok: false,
      code: 'timestamp_outside_tolerance',
    });
    expect(verifyStripeSignature(payload, sign(payload, SECRET, now() - 299), [SECRET])).toEqual({
      ok: true,
    });
    // Signed too far in the future (the Stripe SDK checks only the age): refused; within it, fine.
    expect(verifyStripeSignature(payload, sign(payload, SECRET, now() + 301), [SECRET])).toMatchObject({
      ok: false,
      code: 'timestamp_outside_tolerance',
    });
    expect(verifyStripeSignature(payload, sign(payload, SECRET, now() + 60), [SECRET])).toEqual({ ok: true });
    // The same request replayed later than the tolerance: refused.
    const header = sign(payload, SECRET);
    expect(verifyStripeSignature(payload, header, [SECRET], { nowMs: Date.now() + 301_000 })).toMatchObject({
      ok: false,
      code: 'timestamp_outside_tolerance',
    });
  });

  test('rotation: with "new,old" configured, signatures under either are accepted, others not', () => {
    const secrets = parseSecretList(` ${SECRET} , ${OLD} ,`);
    expect(secrets).toEqual([SECRET, OLD]);
    expect(verifyStripeSignature(payload, sign(payload, SECRET), secrets)).toEqual({ ok: true });
    expect(verifyStripeSignature(payload, sign(payload, OLD), secrets)).toEqual({ ok: true });
    expect(verifyStripeSignature(payload, sign(payload, 'whsec_other'), secrets)).toMatchObject({
      ok: false,
    });
    // Once the old secret is removed, its signatures stop working.
    expect(verifyStripeSignature(payload, sign(payload, OLD), [SECRET])).toMatchObject({ ok: false });
  });

  test('Stripe signing with two secrets at once (several v1 in one header) is accepted', () => {
    const t = now();
    const a = sign(payload, 'whsec_unknown', t);
    const b = sign(payload, SECRET, t);
    const header = `t=${t},${a.split(',')[1]},${b.split(',')[1]}`;
    expect(verifyStripeSignature(payload, header, [SECRET])).toEqual({ ok: true });
  });

  test('missing or malformed headers, and no configured secret, are refused', () => {
    expect(verifyStripeSignature(payload, undefined, [SECRET])).toMatchObject({ code: 'signature_missing' });
    expect(verifyStripeSignature(payload, 'nonsense', [SECRET])).toMatchObject({ code: 'signature_missing' });
    expect(verifyStripeSignature(payload, `t=${now()}`, [SECRET])).toMatchObject({
      code: 'signature_missing',
    });
    expect(verifyStripeSignature(payload, sign(payload, SECRET), [])).toMatchObject({ ok: false });
  });
});

describe('retry policy', () => {
  test('parked events come back after 10 s, doubling, capped at 15 min', () => {
    expect([1, 2, 3, 4].map(retryDelaySeconds)).toEqual([10, 20, 40, 80]);
    expect(retryDelaySeconds(30)).toBe(RETRY_MAX_SECONDS);
    expect(MAX_RECEIVES).toBeGreaterThanOrEqual(5);
  });
});

describe('processor state vs payment state', () => {
  test('PaymentIntent statuses map, through payment facts, to payment statuses', () => {
    const stage = (status: string, hasError = false) => {
      const e = paymentEventOfIntent(status, hasError);
      return e && stageOf(e);
    };
    expect(stage('succeeded')).toBe('captured');
    expect(stage('requires_capture')).toBe('authorized');
    expect(stage('requires_action')).toBe('requires_action');
    expect(stage('processing')).toBe('processing');
    expect(stage('requires_payment_method', true)).toBe('failed');
    expect(stage('requires_payment_method', false)).toBe('processing');
    expect(stage('canceled')).toBe('canceled');
    expect(stage('weird')).toBeUndefined();
  });

  test('an older event is behind, a newer one ahead, a contradiction a conflict', () => {
    expect(compareStates('captured', 'requires_action')).toBe('behind');
    expect(compareStates('captured', 'authorized')).toBe('behind');
    expect(compareStates('authorized', 'captured')).toBe('ahead');
    expect(compareStates('processing', 'requires_action')).toBe('ahead');
    expect(compareStates('refunded', 'captured')).toBe('consistent');
    expect(compareStates('captured', 'captured')).toBe('consistent');
    expect(compareStates('failed', 'captured')).toBe('conflict');
    expect(compareStates('canceled', 'captured')).toBe('conflict');
  });
});

describe('the simulator webhook sender', () => {
  let server: http.Server;
  let url: string;
  let received: { body: string; signature: string }[] = [];
  let failNext = 0;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (failNext > 0) {
          failNext--;
          res.writeHead(500).end();
          return;
        }
        received.push({
          body: Buffer.concat(chunks).toString('utf8'),
          signature: String(req.headers['stripe-signature']),
        });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"received":true}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/stripe`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  beforeEach(() => {
    received = [];
    failNext = 0;
  });

  const event = (i: number): StripeEvent =>
    ({
      id: `evt_${i}`,
      object: 'event',
      api_version: '2025-01-01',
      created: now(),
      data: { object: { id: `pi_${i}`, object: 'payment_intent' } },
      livemode: false,
      pending_webhooks: 0,
      request: { id: null, idempotency_key: null },
      type: 'payment_intent.succeeded',
    }) as StripeEvent;

  const sender = (opts: Record<string, number> = {}) =>
    new StripeWebhookSender({
      url: () => url,
      secret: () => `${SECRET},${OLD}`,
      logger: createLogger('test'),
      timeScale: 1000,
      ...opts,
    });

  test('signs each event as Stripe does (verifiable with the first secret) and posts it once', async () => {
    const s = sender();
    s.send(event(1));
    await s.idle();
    expect(received).toHaveLength(1);
    expect(JSON.parse(received[0]!.body).id).toBe('evt_1');
    expect(received[0]!.signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifyStripeSignature(received[0]!.body, received[0]!.signature, [SECRET])).toEqual({ ok: true });
    expect(s.stats()).toMatchObject({ events: 1, delivered: 1, retries: 0 });
    await s.stop();
  });

  test('retries a non-2xx answer with backoff until delivered', async () => {
    const s = sender();
    failNext = 2;
    s.send(event(2));
    await s.idle();
    expect(received.map((r) => JSON.parse(r.body).id)).toEqual(['evt_2']);
    expect(s.stats()).toMatchObject({ delivered: 1, retries: 2 });
    expect(s.deliveries().map((d) => d.status)).toEqual([500, 500, 200]);
    await s.stop();
  });

  test('duplicate=1 delivers every event twice; dropRate=1 delivers nothing', async () => {
    const s = sender({ duplicate: 1 });
    for (let i = 0; i < 3; i++) s.send(event(10 + i));
    await s.idle();
    expect(received.map((r) => JSON.parse(r.body).id).sort()).toEqual([
      'evt_10',
      'evt_10',
      'evt_11',
      'evt_11',
      'evt_12',
      'evt_12',
    ]);
    s.configure({ duplicate: 0, dropRate: 1 });
    received = [];
    s.send(event(20));
    await s.idle();
    expect(received).toHaveLength(0);
    expect(s.stats()).toMatchObject({ dropped: 1, duplicated: 3 });
    await s.stop();
  });

  test('reorderWindow holds events and delivers them shuffled; a partial window is released after the hold', async () => {
    let seed = 7;
    const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    const s = new StripeWebhookSender({
      url: () => url,
      secret: () => SECRET,
      logger: createLogger('test'),
      reorderWindow: 6,
      reorderHoldMs: 30,
      random,
    });
    for (let i = 0; i < 6; i++) s.send(event(30 + i));
    await s.idle();
    const ids = received.map((r) => JSON.parse(r.body).id);
    expect([...ids].sort()).toEqual(['evt_30', 'evt_31', 'evt_32', 'evt_33', 'evt_34', 'evt_35']);
    expect(ids).not.toEqual([...ids].sort());
    received = [];
    s.send(event(40));
    await s.idle();
    expect(received).toHaveLength(1);
    await s.stop();
  });

  test('controls from the environment are validated', () => {
    expect(
      webhookControlsFromEnv({
        PAYSTEP_SIM_WEBHOOK_DUPLICATE: '0.5',
        PAYSTEP_SIM_WEBHOOK_REORDER_WINDOW: '4',
        PAYSTEP_SIM_WEBHOOK_DELAY_MS: '20',
        PAYSTEP_SIM_WEBHOOK_DROP_RATE: '0.1',
      }),
    ).toEqual({ duplicate: 0.5, reorderWindow: 4, delayMs: 20, dropRate: 0.1 });
    expect(() => webhookControlsFromEnv({ PAYSTEP_SIM_WEBHOOK_DROP_RATE: '2' })).toThrow(/between 0 and 1/);
    expect(() => webhookControlsFromEnv({ PAYSTEP_SIM_WEBHOOK_REORDER_WINDOW: '-1' })).toThrow(/integer/);
  });
});
