/**
 * The Stripe adapter against the Stripe simulator, with the real `stripe` SDK in between: what a
 * payment attempt does for each documented test card, how idempotency keys make retries safe, and
 * what faults (5xx, 429, timeouts) turn into. A last block runs the same flow against real Stripe
 * test mode when STRIPE_SECRET_KEY is set (skipped otherwise).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Stripe from 'stripe';
import { StripeAdapter, stripeAdapterFromEnv } from '../../lambdas/connectors/stripe/adapter.ts';
import {
  ProcessorRequestError,
  ProcessorUnavailableError,
  ProcessorUnreachableError,
  type AuthorizeRequest,
  type AuthorizeResult,
} from '../../lambdas/connectors/types.ts';
import { StripeSimulator, type StripeEvent } from '../../lib/local/processors/stripe-simulator.ts';

const KEY = 'sk_test_paystep_unit';

let dataDir: string;
let sim: StripeSimulator;
let url: string;
let events: StripeEvent[];
let seq = 0;

const authorizeRequest = (over: Partial<AuthorizeRequest> = {}): AuthorizeRequest => {
  seq++;
  return {
    paymentId: `pay_unit_${seq}`,
    merchantId: 'mch_unit',
    amount: 1000,
    currency: 'usd',
    paymentMethod: 'pm_card_visa',
    captureMethod: 'automatic',
    idempotencyKey: `attempt-${seq}-${randomUUID()}`,
    ...over,
  };
};

const adapter = (over: Partial<ConstructorParameters<typeof StripeAdapter>[0]> = {}) =>
  new StripeAdapter({ secretKey: KEY, apiBase: url, maxNetworkRetries: 0, timeoutMs: 5000, ...over });

/** An adapter sending to another address of the simulator (its API door). */
const adapterAt = (apiBase: string) =>
  new StripeAdapter({ secretKey: KEY, apiBase, maxNetworkRetries: 0, timeoutMs: 5000 });

/** The SDK itself, for what the adapter does not expose. */
const sdk = () => new Stripe(KEY, { host: '127.0.0.1', port: new URL(url).port, protocol: 'http' });

/** A JSON response body, read loosely: tests assert its shape. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Body = Record<string, any>;

/** A raw form-encoded call, to check the wire format the SDK hides. */
async function call(
  method: string,
  p: string,
  form?: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: Body }> {
  const res = await fetch(`${url}${p}`, {
    method,
    headers: {
      Authorization: `Bearer ${KEY}`,
      ...(form ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {}),
      ...headers,
    },
    body: form ? new URLSearchParams(form).toString() : undefined,
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Body };
}

async function expectRejects<E extends Error>(
  p: Promise<unknown>,
  type: abstract new (...args: never[]) => E,
): Promise<E> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(type);
    return err as E;
  }
  throw new Error(`expected a ${type.name}`);
}

const eventsOf = async (objectId: string) => {
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  return events.filter((e) => e.data.object.id === objectId).map((e) => e.type);
};

function authorized(r: AuthorizeResult): Extract<AuthorizeResult, { outcome: 'authorized' | 'captured' }> {
  if (r.outcome !== 'authorized' && r.outcome !== 'captured') throw new Error(`outcome ${r.outcome}`);
  return r;
}

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-stripe-'));
  events = [];
  sim = new StripeSimulator({ dataDir, onEvent: (e) => void events.push(e) });
  url = await sim.start();
});

afterEach(() => sim.faults.reset());

afterAll(async () => {
  await sim.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('authorize', () => {
  test('automatic capture: one PaymentIntent, captured, with the card details and paystep metadata', async () => {
    const before = sim.stats();
    const req = authorizeRequest({ currency: 'eur', amount: 2500, description: 'Order 42' });
    const r = authorized(await adapter().authorize(req));
    expect(r).toMatchObject({ outcome: 'captured', amountCaptured: 2500, rawStatus: 'succeeded' });
    expect(r.processorReference).toMatch(/^pi_/);
    expect(r.card).toMatchObject({ brand: 'visa', last4: '4242', country: 'US' });
    const pi = sim.paymentIntent(r.processorReference)!;
    expect(pi).toMatchObject({
      status: 'succeeded',
      amount: 2500,
      amount_received: 2500,
      currency: 'eur',
      capture_method: 'automatic',
      description: 'Order 42',
      livemode: false,
      metadata: { paystep_payment_id: req.paymentId, merchant_id: 'mch_unit' },
    });
    // As on Stripe, a test id makes a new PaymentMethod.
    expect(pi.payment_method).toMatch(/^pm_/);
    expect(pi.payment_method).not.toBe('pm_card_visa');
    const charge = sim.charge(pi.latest_charge as string)!;
    expect(charge).toMatchObject({ status: 'succeeded', captured: true, amount_captured: 2500, paid: true });
    expect(charge.balance_transaction).toMatch(/^txn_/);
    expect(sim.stats().paymentIntentsCreated - before.paymentIntentsCreated).toBe(1);
    expect(await eventsOf(pi.id)).toEqual(['payment_intent.created', 'payment_intent.succeeded']);
    expect(await eventsOf(charge.id)).toEqual(['charge.succeeded']);
  });

  test.each([
    ['pm_card_mastercard', 'mastercard', '4444', 'US'],
    ['pm_card_amex', 'amex', '8431', 'US'],
    ['pm_card_gb', 'visa', '0000', 'GB'],
    ['pm_card_de', 'visa', '0016', 'DE'],
  ])('%s succeeds with its brand and country', async (pm, brand, last4, country) => {
    const r = authorized(await adapter().authorize(authorizeRequest({ paymentMethod: pm })));
    expect(r.card).toMatchObject({ brand, last4, country });
  });

  test('manual capture: authorized with a capture deadline, then captured in full', async () => {
    const a = adapter();
    const r = authorized(await a.authorize(authorizeRequest({ captureMethod: 'manual', amount: 1500 })));
    expect(r).toMatchObject({ outcome: 'authorized', amountCaptured: 0, rawStatus: 'requires_capture' });
    const now = Math.floor(Date.now() / 1000);
    expect(r.captureBefore).toBeGreaterThan(now + 6 * 24 * 3600);
    expect(sim.paymentIntent(r.processorReference)).toMatchObject({
      amount_capturable: 1500,
      amount_received: 0,
    });
    expect(await a.retrieve(r.processorReference)).toMatchObject({ status: 'authorized', amountCaptured: 0 });

    const c = await a.capture(r.processorReference, undefined, `cap-${randomUUID()}`);
    expect(c).toEqual({
      processorReference: r.processorReference,
      amountCaptured: 1500,
      rawStatus: 'succeeded',
    });
    expect(await a.retrieve(r.processorReference)).toMatchObject({
      status: 'captured',
      amountCaptured: 1500,
    });
    expect(await eventsOf(r.processorReference)).toEqual([
      'payment_intent.created',
      'payment_intent.amount_capturable_updated',
      'payment_intent.succeeded',
    ]);
  });

  test('partial capture releases the rest; capturing again or too much is refused', async () => {
    const a = adapter();
    const r = authorized(await a.authorize(authorizeRequest({ captureMethod: 'manual', amount: 1000 })));
    const over = await expectRejects(
      a.capture(r.processorReference, 1001, `cap-${randomUUID()}`),
      ProcessorRequestError,
    );
    expect(over.code).toBe('amount_too_large');

    const c = await a.capture(r.processorReference, 600, `cap-${randomUUID()}`);
    expect(c.amountCaptured).toBe(600);
    const pi = sim.paymentIntent(r.processorReference)!;
    expect(pi).toMatchObject({ status: 'succeeded', amount_received: 600, amount_capturable: 0 });
    expect(sim.charge(pi.latest_charge as string)).toMatchObject({ captured: true, amount_captured: 600 });

    const again = await expectRejects(
      a.capture(r.processorReference, 100, `cap-${randomUUID()}`),
      ProcessorRequestError,
    );
    expect(again.code).toBe('payment_intent_unexpected_state');
  });

  test('cancel releases an authorization; a captured payment cannot be canceled', async () => {
    const a = adapter();
    const r = authorized(await a.authorize(authorizeRequest({ captureMethod: 'manual' })));
    expect(await a.cancel(r.processorReference, `cancel-${randomUUID()}`)).toEqual({
      processorReference: r.processorReference,
      rawStatus: 'canceled',
    });
    expect(await a.retrieve(r.processorReference)).toMatchObject({ status: 'canceled', amountCaptured: 0 });
    const pi = sim.paymentIntent(r.processorReference)!;
    expect(pi.canceled_at).toEqual(expect.any(Number));
    expect(sim.charge(pi.latest_charge as string)).toMatchObject({ captured: false, refunded: true });
    expect(await eventsOf(pi.id)).toContain('payment_intent.canceled');

    const done = authorized(await a.authorize(authorizeRequest()));
    const err = await expectRejects(
      a.cancel(done.processorReference, `cancel-${randomUUID()}`),
      ProcessorRequestError,
    );
    expect(err.code).toBe('payment_intent_unexpected_state');
  });
});

describe('declines', () => {
  test.each([
    [
      'pm_card_visa_chargeDeclined',
      'generic_decline',
      'soft_decline',
      true,
      'card_declined/generic_decline',
      '0002',
    ],
    [
      'pm_card_visa_chargeDeclinedInsufficientFunds',
      'insufficient_funds',
      'soft_decline',
      true,
      'card_declined/insufficient_funds',
      '9995',
    ],
    ['pm_card_visa_chargeDeclinedLostCard', 'lost_card', 'fraud', false, 'card_declined/lost_card', '9987'],
    [
      'pm_card_visa_chargeDeclinedStolenCard',
      'stolen_card',
      'fraud',
      false,
      'card_declined/stolen_card',
      '9979',
    ],
    ['pm_card_chargeDeclinedExpiredCard', 'expired_card', 'hard_decline', false, 'expired_card', '0069'],
    ['pm_card_chargeDeclinedIncorrectCvc', 'incorrect_cvc', 'hard_decline', false, 'incorrect_cvc', '0127'],
    [
      'pm_card_chargeDeclinedProcessingError',
      'processing_error',
      'technical',
      true,
      'processing_error',
      '0119',
    ],
    ['pm_card_chargeDeclinedFraudulent', 'fraudulent', 'fraud', false, 'card_declined/fraudulent', '0019'],
    ['pm_card_radarBlock', 'fraudulent', 'fraud', false, 'card_declined/fraudulent', '0019'],
    [
      'pm_card_visa_chargeDeclinedVelocityLimitExceeded',
      'card_velocity_exceeded',
      'soft_decline',
      true,
      'card_declined/card_velocity_exceeded',
      '6975',
    ],
  ])('%s → declined %s (%s, retryable %s)', async (pm, code, category, retryable, processorCode, last4) => {
    const r = await adapter().authorize(authorizeRequest({ paymentMethod: pm }));
    if (r.outcome !== 'declined') throw new Error(`outcome ${r.outcome}`);
    expect(r.failure).toMatchObject({ code, category, retryable, processor_code: processorCode });
    expect(r.failure.message).not.toBe('');
    expect(r.failure.explanation.length).toBeGreaterThan(10);
    expect(r.failure.recommended_action.length).toBeGreaterThan(10);
    if (category === 'fraud') expect(r.failure.recommended_action).toMatch(/^Do not retry/);
    expect(r.card).toMatchObject({ brand: 'visa', last4 });
    expect(r.rawStatus).toBe('requires_payment_method');
    // The PaymentIntent is left open with the error recorded, as on Stripe.
    const pi = sim.paymentIntent(r.processorReference!)!;
    expect(pi.status).toBe('requires_payment_method');
    expect(pi.payment_method).toBeNull();
    expect(pi.last_payment_error).toMatchObject({ type: 'card_error', code: processorCode.split('/')[0] });
    const charge = sim.charge(pi.latest_charge as string)!;
    expect(charge).toMatchObject({
      status: 'failed',
      paid: false,
      failure_code: processorCode.split('/')[0],
    });
    expect(await eventsOf(pi.id)).toEqual(['payment_intent.created', 'payment_intent.payment_failed']);
    expect(await adapter().retrieve(pi.id)).toMatchObject({
      status: 'requires_payment_method',
      failure: { code, category },
    });
  });

  test('the 402 body is Stripe-shaped, and a working card then pays the same PaymentIntent', async () => {
    const res = await call('POST', '/v1/payment_intents', {
      amount: '1234',
      currency: 'usd',
      confirm: 'true',
      payment_method: 'pm_card_visa_chargeDeclinedInsufficientFunds',
      'automatic_payment_methods[enabled]': 'true',
      'automatic_payment_methods[allow_redirects]': 'never',
    });
    expect(res.status).toBe(402);
    const e = res.body.error;
    expect(e).toMatchObject({
      type: 'card_error',
      code: 'card_declined',
      decline_code: 'insufficient_funds',
      message: 'Your card has insufficient funds.',
      advice_code: 'try_again_later',
      doc_url: 'https://stripe.com/docs/error-codes/card-declined',
      charge: expect.stringMatching(/^ch_/),
      payment_method: { object: 'payment_method', card: { last4: '9995' } },
      payment_intent: {
        object: 'payment_intent',
        status: 'requires_payment_method',
        last_payment_error: { decline_code: 'insufficient_funds' },
      },
    });
    expect(res.headers.get('request-id')).toMatch(/^req_/);
    const id = e.payment_intent.id as string;
    const pi = await sdk().paymentIntents.confirm(id, { payment_method: 'pm_card_visa' });
    expect(pi).toMatchObject({ id, status: 'succeeded', amount_received: 1234, last_payment_error: null });
  });

  test('expired card and incorrect CVC name the param, as Stripe does', async () => {
    const s = sdk();
    const base = { amount: 500, currency: 'usd', confirm: true };
    const apm = { enabled: true, allow_redirects: 'never' as const };
    const expired = await expectRejects(
      s.paymentIntents.create({
        ...base,
        automatic_payment_methods: apm,
        payment_method: 'pm_card_chargeDeclinedExpiredCard',
      }),
      Stripe.errors.StripeCardError,
    );
    expect(expired).toMatchObject({ code: 'expired_card', decline_code: 'expired_card', param: 'exp_month' });
    const cvc = await expectRejects(
      s.paymentIntents.create({
        ...base,
        automatic_payment_methods: apm,
        payment_method: 'pm_card_chargeDeclinedIncorrectCvc',
      }),
      Stripe.errors.StripeCardError,
    );
    expect(cvc).toMatchObject({ code: 'incorrect_cvc', param: 'cvc', statusCode: 402 });
  });
});

describe('3-D Secure', () => {
  test('pm_card_authenticationRequired → requires_action; completing authentication captures', async () => {
    const a = adapter();
    const r = await a.authorize(authorizeRequest({ paymentMethod: 'pm_card_authenticationRequired' }));
    if (r.outcome !== 'requires_action') throw new Error(`outcome ${r.outcome}`);
    expect(r.rawStatus).toBe('requires_action');
    expect(r.nextActionUrl).toBe(`${url}/_sim/3ds/${r.processorReference}`);
    expect(sim.paymentIntent(r.processorReference)).toMatchObject({
      next_action: { type: 'use_stripe_sdk' },
      latest_charge: null,
    });
    // Capturing before authentication is refused.
    const early = await expectRejects(
      a.capture(r.processorReference, undefined, randomUUID()),
      ProcessorRequestError,
    );
    expect(early.code).toBe('payment_intent_unexpected_state');

    sim.authenticate(r.processorReference, 'succeed');
    expect(await a.retrieve(r.processorReference)).toMatchObject({
      status: 'captured',
      amountCaptured: 1000,
    });
  });

  test('with a return_url: a redirect next action, and a failed authentication leaves a retryable failure', async () => {
    const a = adapter({ returnUrl: 'https://shop.example/return' });
    const r = await a.authorize(authorizeRequest({ paymentMethod: 'pm_card_authenticationRequired' }));
    if (r.outcome !== 'requires_action') throw new Error(`outcome ${r.outcome}`);
    expect(sim.paymentIntent(r.processorReference)).toMatchObject({
      next_action: {
        type: 'redirect_to_url',
        redirect_to_url: { return_url: 'https://shop.example/return' },
      },
    });
    const page = await fetch(r.nextActionUrl!);
    expect(await page.text()).toContain('Complete authentication');
    const res = await fetch(`${url}/_sim/payment_intents/${r.processorReference}/authenticate`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'outcome=fail&redirect=1',
      redirect: 'manual',
    });
    expect(res.status).toBe(303);
    const location = new URL(res.headers.get('location')!);
    expect(location.origin + location.pathname).toBe('https://shop.example/return');
    expect(location.searchParams.get('redirect_status')).toBe('failed');
    expect(await a.retrieve(r.processorReference)).toMatchObject({
      status: 'requires_payment_method',
      failure: { category: 'authentication', code: 'authentication_failed', retryable: true },
    });
  });
});

describe('wire format', () => {
  test('no API key → 401; a live key → 401 (test mode only)', async () => {
    const none = await fetch(`${url}/v1/payment_intents/pi_x`);
    expect(none.status).toBe(401);
    expect(((await none.json()) as Body).error.message).toMatch(/You did not provide an API key/);
    const live = await call('GET', '/v1/payment_intents/pi_x', undefined, {
      Authorization: 'Bearer sk_live_abc123',
    });
    expect(live.status).toBe(401);
    await expectRejects(
      new StripeAdapter({ secretKey: 'sk_live_nope', apiBase: url, maxNetworkRetries: 0 }).retrieve('pi_x'),
      ProcessorRequestError,
    );
  });

  test.each([
    [{ currency: 'usd' }, 'amount', 'parameter_missing'],
    [{ amount: 'ten', currency: 'usd' }, 'amount', 'parameter_invalid_integer'],
    [{ amount: '0', currency: 'usd' }, 'amount', 'parameter_invalid_integer'],
    [{ amount: '10', currency: 'usd' }, 'amount', 'amount_too_small'],
    [{ amount: '100', currency: 'xyz' }, 'currency', undefined],
    [{ amount: '100', currency: 'usd', capture_method: 'later' }, 'capture_method', undefined],
    [{ amount: '100', currency: 'usd', colour: 'blue' }, 'colour', 'parameter_unknown'],
    [
      { amount: '100', currency: 'usd', payment_method: 'pm_card_nope' },
      'payment_method',
      'resource_missing',
    ],
  ])('invalid create %j → 400 on %s', async (form, param, code) => {
    const res = await call('POST', '/v1/payment_intents', form as Record<string, string>);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ type: 'invalid_request_error', param });
    expect(res.body.error.code).toBe(code);
  });

  test('confirming with redirect-capable automatic payment methods needs a return_url, as on Stripe', async () => {
    const res = await call('POST', '/v1/payment_intents', {
      amount: '100',
      currency: 'usd',
      confirm: 'true',
      payment_method: 'pm_card_visa',
    });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/return_url/);
    const card = await call('POST', '/v1/payment_intents', {
      amount: '100',
      currency: 'USD',
      confirm: 'true',
      payment_method: 'pm_card_visa',
      'allowed_payment_method_types[0]': 'card',
      'metadata[order]': 'A-1',
      'expand[]': 'latest_charge',
    });
    expect(card.status).toBe(200);
    expect(card.body).toMatchObject({
      status: 'succeeded',
      currency: 'usd',
      metadata: { order: 'A-1' },
      allowed_payment_method_types: ['card'],
      latest_charge: { object: 'charge', payment_method_details: { card: { brand: 'visa', last4: '4242' } } },
    });
  });

  test('unknown objects → 404 resource_missing; unknown URLs → 404', async () => {
    const res = await call('GET', '/v1/payment_intents/pi_doesnotexist');
    expect(res.status).toBe(404);
    expect(res.body.error).toMatchObject({
      code: 'resource_missing',
      message: "No such payment_intent: 'pi_doesnotexist'",
    });
    await expectRejects(adapter().retrieve('pi_doesnotexist'), ProcessorRequestError);
    const refund = await call('GET', '/v1/refunds/re_nope');
    expect(refund.status).toBe(404);
    const unknown = await call('GET', '/v1/customers');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.message).toMatch(/Unrecognized request URL/);
  });
});

describe('idempotency', () => {
  test('the same key twice → one PaymentIntent; other parameters with that key → ProcessorRequestError', async () => {
    const a = adapter();
    const before = sim.stats().paymentIntentsCreated;
    const req = authorizeRequest();
    const first = authorized(await a.authorize(req));
    const second = authorized(await a.authorize(req));
    expect(second.processorReference).toBe(first.processorReference);
    expect(sim.stats().paymentIntentsCreated - before).toBe(1);

    const err = await expectRejects(a.authorize({ ...req, amount: req.amount + 1 }), ProcessorRequestError);
    expect(err.code).toBe('idempotency_error');
    expect(sim.stats().paymentIntentsCreated - before).toBe(1);
  });

  test('a declined attempt replays its decline; the key is scoped to the API key', async () => {
    const req = authorizeRequest({ paymentMethod: 'pm_card_visa_chargeDeclined' });
    const form = {
      amount: '700',
      currency: 'usd',
      confirm: 'true',
      payment_method: 'pm_card_visa_chargeDeclined',
      'automatic_payment_methods[enabled]': 'true',
      'automatic_payment_methods[allow_redirects]': 'never',
    };
    const headers = { 'Idempotency-Key': req.idempotencyKey };
    const first = await call('POST', '/v1/payment_intents', form, headers);
    const replay = await call('POST', '/v1/payment_intents', form, headers);
    expect(first.status).toBe(402);
    expect(replay.status).toBe(402);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.headers.get('original-request')).toBe(first.headers.get('request-id'));
    expect(replay.body).toEqual(first.body);
    expect(first.headers.get('idempotent-replayed')).toBeNull();

    const otherKey = await call('POST', '/v1/payment_intents', form, {
      ...headers,
      Authorization: 'Bearer sk_test_another_account_key',
    });
    expect(otherKey.headers.get('idempotent-replayed')).toBeNull();
    expect(otherKey.body.error.payment_intent.id).not.toBe(first.body.error.payment_intent.id);

    const otherEndpoint = await call('POST', `/v1/refunds`, { payment_intent: 'pi_x' }, headers);
    expect(otherEndpoint.status).toBe(400);
    expect(otherEndpoint.body.error.type).toBe('idempotency_error');
  });

  test('the same key while the first request is still executing → 409', async () => {
    sim.faults.set({ latencyMs: 300 });
    const form = {
      amount: '900',
      currency: 'usd',
      confirm: 'true',
      payment_method: 'pm_card_visa',
      'automatic_payment_methods[enabled]': 'true',
      'automatic_payment_methods[allow_redirects]': 'never',
    };
    const headers = { 'Idempotency-Key': randomUUID() };
    const first = call('POST', '/v1/payment_intents', form, headers);
    await new Promise((r) => setTimeout(r, 50));
    const second = await call('POST', '/v1/payment_intents', form, headers);
    expect(second.status).toBe(409);
    expect(second.body.error).toMatchObject({ type: 'idempotency_error', code: 'idempotency_key_in_use' });
    expect((await first).status).toBe(200);
    sim.faults.reset();
    const third = await call('POST', '/v1/payment_intents', form, headers);
    expect(third.headers.get('idempotent-replayed')).toBe('true');
    expect(third.body.id).toBe((await first).body.id);
  });
});

describe('faults', () => {
  test('failNext: a 5xx with no SDK retries → ProcessorUnavailableError, nothing happened; the retry works', async () => {
    const a = adapter({ maxNetworkRetries: 0 });
    const before = sim.stats();
    sim.faults.set({ failNext: 1 });
    const req = authorizeRequest();
    const err = await expectRejects(a.authorize(req), ProcessorUnavailableError);
    expect(err.processor).toBe('stripe');
    expect(sim.stats().paymentIntentsCreated).toBe(before.paymentIntentsCreated);
    const r = authorized(await a.authorize(req));
    expect(r.outcome).toBe('captured');
    expect(sim.stats().paymentIntentsCreated - before.paymentIntentsCreated).toBe(1);
  });

  test("the SDK's own retries (maxNetworkRetries 2) absorb a single 5xx on a read", async () => {
    const a = adapter({ maxNetworkRetries: 2 });
    const made = authorized(await a.authorize(authorizeRequest()));
    const before = sim.stats();
    sim.faults.set({ failNext: 1 });
    expect((await a.retrieve(made.processorReference)).status).toBe('captured');
    expect(sim.stats().requests - before.requests).toBe(2);
  });

  test('an authorization is sent once, whatever the SDK retries: the workflow retries it with the same key', async () => {
    const a = adapter({ maxNetworkRetries: 2 });
    const before = sim.stats();
    sim.faults.set({ failNext: 1 });
    const req = authorizeRequest();
    await expectRejects(a.authorize(req), ProcessorUnavailableError);
    expect(sim.stats().requests - before.requests).toBe(1);
    const r = authorized(await a.authorize(req));
    expect(r.outcome).toBe('captured');
    expect(sim.stats().paymentIntentsCreated - before.paymentIntentsCreated).toBe(1);
  });

  test('timeoutNext: the charge happens but the answer never comes; the retry with the same key gets it', async () => {
    const before = sim.stats();
    sim.faults.set({ timeoutNext: 1 });
    const req = authorizeRequest();
    await expectRejects(adapter({ timeoutMs: 300 }).authorize(req), ProcessorUnavailableError);
    expect(sim.stats().paymentIntentsCreated - before.paymentIntentsCreated).toBe(1);
    const r = authorized(await adapter().authorize(req));
    expect(r.outcome).toBe('captured');
    expect(sim.stats().paymentIntentsCreated - before.paymentIntentsCreated).toBe(1);
    expect(sim.stats().confirms - before.confirms).toBe(1);
  });

  test('rateLimitNext → 429 → ProcessorUnavailableError; failRate 1 fails everything', async () => {
    sim.faults.set({ rateLimitNext: 1 });
    const rl = await expectRejects(adapter().authorize(authorizeRequest()), ProcessorUnavailableError);
    expect(rl.message).toMatch(/429/);
    sim.faults.set({ failRate: 1 });
    await expectRejects(adapter().retrieve('pi_whatever'), ProcessorUnavailableError);
  });

  test('downRate: the connection is dropped before executing → ProcessorUnavailableError, nothing happened', async () => {
    const before = sim.stats();
    sim.faults.set({ downRate: 1 });
    const req = authorizeRequest();
    // The simulator's own address drops the connection (a reset): that proves nothing was processed
    // to nobody, so it is not "unreachable".
    const err = await expectRejects(
      adapter({ maxNetworkRetries: 0 }).authorize(req),
      ProcessorUnavailableError,
    );
    expect(err).not.toBeInstanceOf(ProcessorUnreachableError);
    expect(sim.stats().paymentIntentsCreated).toBe(before.paymentIntentsCreated);
    sim.faults.reset();
    expect(authorized(await adapter().authorize(req)).outcome).toBe('captured');
    expect(sim.stats().paymentIntentsCreated - before.paymentIntentsCreated).toBe(1);
  });

  test('downRate 1 closes the API door: connections are refused → ProcessorUnreachableError (nothing was sent)', async () => {
    await sim.doorSettled();
    const door = adapterAt(sim.apiUrl);
    const before = sim.stats();
    sim.faults.set({ downRate: 1 });
    await sim.doorSettled();
    const req = authorizeRequest();
    const err = await expectRejects(door.authorize(req), ProcessorUnreachableError);
    expect(err.message).toMatch(/refused \(ECONNREFUSED\)/);
    expect(sim.stats().requests).toBe(before.requests);
    sim.faults.reset();
    await sim.doorSettled();
    expect(authorized(await door.authorize(req)).outcome).toBe('captured');
    expect(sim.stats().paymentIntentsCreated - before.paymentIntentsCreated).toBe(1);
  });

  test('timeoutRate: every request executes but is not answered, replays included; cleared, the retry gets it', async () => {
    const before = sim.stats();
    sim.faults.set({ timeoutRate: 1 });
    const req = authorizeRequest();
    await expectRejects(adapter({ timeoutMs: 300 }).authorize(req), ProcessorUnavailableError);
    await expectRejects(adapter({ timeoutMs: 300 }).authorize(req), ProcessorUnavailableError);
    expect(sim.stats().paymentIntentsCreated - before.paymentIntentsCreated).toBe(1);
    expect(sim.faults.get()).toEqual({ timeoutRate: 1 });
    sim.faults.reset();
    expect(authorized(await adapter().authorize(req)).outcome).toBe('captured');
    expect(sim.stats().paymentIntentsCreated - before.paymentIntentsCreated).toBe(1);
    expect(() => sim.faults.set({ downRate: 2 })).toThrow(/downRate must be a number in 0..1/);
  });

  test('faults are driven over HTTP too, and `match` limits them to some requests', async () => {
    const set = await fetch(`${url}/_sim/faults`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ failNext: 2, match: '^POST /v1/refunds' }),
    });
    expect(await set.json()).toEqual({ failNext: 2, match: '^POST /v1/refunds' });
    const a = adapter();
    const r = authorized(await a.authorize(authorizeRequest()));
    await expectRejects(a.refund(r.processorReference, 100, randomUUID()), ProcessorUnavailableError);
    expect(await (await fetch(`${url}/_sim/faults`)).json()).toEqual({
      failNext: 1,
      match: '^POST /v1/refunds',
    });
    const cleared = await fetch(`${url}/_sim/faults`, { method: 'DELETE' });
    expect(await cleared.json()).toEqual({});
    expect((await a.refund(r.processorReference, 100, randomUUID())).status).toBe('succeeded');
    const bad = await fetch(`${url}/_sim/faults`, { method: 'POST', body: '{"failRate": 2}' });
    expect(bad.status).toBe(400);
  });
});

describe('refunds', () => {
  test('full refund', async () => {
    const a = adapter();
    const r = authorized(await a.authorize(authorizeRequest({ amount: 2000 })));
    const refund = await a.refund(r.processorReference, 2000, randomUUID(), 'requested_by_customer');
    expect(refund).toEqual({
      refundReference: expect.stringMatching(/^re_/),
      status: 'succeeded',
      amount: 2000,
    });
    expect(sim.refund(refund.refundReference)).toMatchObject({
      object: 'refund',
      payment_intent: r.processorReference,
      reason: 'requested_by_customer',
      balance_transaction: expect.stringMatching(/^txn_/),
    });
    expect(await a.retrieve(r.processorReference)).toMatchObject({
      amountRefunded: 2000,
      status: 'captured',
    });
    const pi = sim.paymentIntent(r.processorReference)!;
    expect(sim.charge(pi.latest_charge as string)).toMatchObject({ refunded: true, amount_refunded: 2000 });
    expect(await eventsOf(refund.refundReference)).toEqual(['refund.created']);
    expect(await eventsOf(pi.latest_charge as string)).toEqual(['charge.succeeded', 'charge.refunded']);
    const again = await expectRejects(a.refund(r.processorReference, 1, randomUUID()), ProcessorRequestError);
    expect(again.code).toBe('charge_already_refunded');
  });

  test('partial refunds add up to the captured amount; more is refused', async () => {
    const a = adapter();
    const r = authorized(await a.authorize(authorizeRequest({ captureMethod: 'manual', amount: 1000 })));
    const uncaptured = await expectRejects(
      a.refund(r.processorReference, 100, randomUUID()),
      ProcessorRequestError,
    );
    expect(uncaptured.message).toMatch(/not been captured/);
    await a.capture(r.processorReference, 800, randomUUID());

    const over = await expectRejects(
      a.refund(r.processorReference, 801, randomUUID()),
      ProcessorRequestError,
    );
    expect(over.message).toMatch(
      /Refund amount \(\$8\.01\) is greater than unrefunded amount on charge \(\$8\.00\)/,
    );
    expect((await a.refund(r.processorReference, 300, randomUUID())).amount).toBe(300);
    expect((await a.refund(r.processorReference, 500, randomUUID())).amount).toBe(500);
    const more = await expectRejects(a.refund(r.processorReference, 1, randomUUID()), ProcessorRequestError);
    expect(more.code).toBe('charge_already_refunded');
    expect(await a.retrieve(r.processorReference)).toMatchObject({
      amountCaptured: 800,
      amountRefunded: 800,
    });
    expect(sim.stats().refunds).toBeGreaterThanOrEqual(2);
  });

  test('a refund retried with the same key is one refund', async () => {
    const a = adapter();
    const r = authorized(await a.authorize(authorizeRequest()));
    const key = randomUUID();
    const one = await a.refund(r.processorReference, 400, key);
    const two = await a.refund(r.processorReference, 400, key);
    expect(two.refundReference).toBe(one.refundReference);
    expect(await a.retrieve(r.processorReference)).toMatchObject({ amountRefunded: 400 });
  });

  test('pm_card_pendingRefund: pending, then succeeded; pm_card_refundFail: succeeded, then failed', async () => {
    const a = adapter();
    const pending = authorized(
      await a.authorize(authorizeRequest({ paymentMethod: 'pm_card_pendingRefund' })),
    );
    const p = await a.refund(pending.processorReference, 1000, randomUUID());
    expect(p.status).toBe('pending');
    const failing = authorized(await a.authorize(authorizeRequest({ paymentMethod: 'pm_card_refundFail' })));
    const f = await a.refund(failing.processorReference, 1000, randomUUID());
    expect(f.status).toBe('succeeded');

    sim.settleAsyncRefunds();
    expect(sim.refund(p.refundReference)).toMatchObject({ status: 'succeeded' });
    expect(sim.refund(f.refundReference)).toMatchObject({
      status: 'failed',
      failure_reason: 'expired_or_canceled_card',
      failure_balance_transaction: expect.stringMatching(/^txn_/),
    });
    expect(await a.retrieve(failing.processorReference)).toMatchObject({ amountRefunded: 0 });
    expect(await eventsOf(f.refundReference)).toEqual([
      'refund.created',
      'refund.updated',
      'charge.refund.updated',
      'refund.failed',
    ]);
  });
});

test('pm_card_createDispute succeeds and marks its charge for a dispute', async () => {
  const r = authorized(
    await adapter().authorize(authorizeRequest({ paymentMethod: 'pm_card_createDispute' })),
  );
  const pi = sim.paymentIntent(r.processorReference)!;
  expect(sim.disputeMarkers()).toContainEqual({
    charge: pi.latest_charge,
    payment_intent: pi.id,
    reason: 'fraudulent',
    inquiry: false,
  });
});

test('a restarted simulator keeps its objects and idempotency records', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-stripe-restart-'));
  let s = new StripeSimulator({ dataDir: dir });
  const base = await s.start();
  const port = Number(new URL(base).port);
  const a = new StripeAdapter({ secretKey: KEY, apiBase: base, maxNetworkRetries: 0 });
  const req = authorizeRequest({ captureMethod: 'manual', amount: 3000 });
  const r = authorized(await a.authorize(req));
  await s.stop();
  expect(fs.existsSync(path.join(dir, 'processors', 'stripe.jsonl'))).toBe(true);

  s = new StripeSimulator({ dataDir: dir });
  try {
    expect(await s.start(port)).toBe(base);
    expect(await a.retrieve(r.processorReference)).toMatchObject({ status: 'authorized', amount: 3000 });
    // The idempotency record survived: the same attempt is not charged again.
    expect(authorized(await a.authorize(req)).processorReference).toBe(r.processorReference);
    expect(s.stats().paymentIntentsCreated).toBe(0);
    expect((await a.capture(r.processorReference, 1000, randomUUID())).amountCaptured).toBe(1000);
    expect(s.events().map((e) => e.type)).toContain('payment_intent.amount_capturable_updated');
  } finally {
    await s.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the simulator keeps the latest events and compacts its journal while running; objects survive a restart', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-stripe-compact-'));
  const opts = { dataDir: dir, eventLogLimit: 4, journalCompactMinLines: 20 };
  let s = new StripeSimulator(opts);
  const base = await s.start();
  const port = Number(new URL(base).port);
  const a = new StripeAdapter({ secretKey: KEY, apiBase: base, maxNetworkRetries: 0 });
  const journal = path.join(dir, 'processors', 'stripe.jsonl');
  const lines = () => fs.readFileSync(journal, 'utf8').trim().split('\n').length;
  try {
    const refs: string[] = [];
    for (let i = 0; i < 12; i++)
      refs.push(authorized(await a.authorize(authorizeRequest())).processorReference);
    await new Promise((r) => setImmediate(r));
    const events = s.events();
    expect(events.length).toBeLessThanOrEqual(5); // the limit, up to a tenth more (rounded up)
    expect(events.at(-1)?.data.object).toMatchObject({ id: refs.at(-1) });
    const objects = s.memoryStats().objects;
    // 12 payments append 108 lines (9 a payment: each save of an object, the idempotency record, the
    // events); compacted while running, the journal holds one line a live record and what followed.
    expect(lines()).toBeLessThan(100);
    expect(lines()).toBeLessThan(1.5 * (objects + s.memoryStats().idempotencyKeys + events.length));
    await s.stop();
    s = new StripeSimulator(opts);
    expect(await s.start(port)).toBe(base);
    expect(await a.retrieve(refs[0]!)).toMatchObject({ status: 'captured' });
    expect(s.memoryStats().objects).toBe(objects);
  } finally {
    await s.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('stripeAdapterFromEnv needs STRIPE_SECRET_KEY and honours STRIPE_API_BASE', async () => {
  expect(() => stripeAdapterFromEnv({})).toThrow(/STRIPE_SECRET_KEY/);
  const a = stripeAdapterFromEnv({
    STRIPE_SECRET_KEY: KEY,
    STRIPE_API_BASE: url,
    STRIPE_MAX_NETWORK_RETRIES: '0',
  });
  expect(authorized(await a.authorize(authorizeRequest())).outcome).toBe('captured');
  expect(() => stripeAdapterFromEnv({ STRIPE_SECRET_KEY: KEY, STRIPE_TIMEOUT_MS: 'soon' })).toThrow(
    /STRIPE_TIMEOUT_MS/,
  );
});

// --- Real Stripe test mode: the same flow, when a test key is available (not here: no network). ---
const realKey = process.env.STRIPE_SECRET_KEY;
(realKey?.startsWith('sk_test_') || realKey?.startsWith('rk_test_') ? describe : describe.skip)(
  'against real Stripe test mode',
  () => {
    const real = () => new StripeAdapter({ secretKey: realKey!, maxNetworkRetries: 2, timeoutMs: 20_000 });
    const req = (over: Partial<AuthorizeRequest> = {}) =>
      authorizeRequest({ idempotencyKey: `paystep-unit-${randomUUID()}`, ...over });

    test('automatic capture, replay, refund', async () => {
      const a = real();
      const first = req();
      const r = authorized(await a.authorize(first));
      expect(r).toMatchObject({
        outcome: 'captured',
        amountCaptured: 1000,
        card: { brand: 'visa', last4: '4242' },
      });
      expect(authorized(await a.authorize(first)).processorReference).toBe(r.processorReference);
      const refund = await a.refund(r.processorReference, 400, `paystep-unit-${randomUUID()}`);
      expect(refund).toMatchObject({ status: 'succeeded', amount: 400 });
      expect(await a.retrieve(r.processorReference)).toMatchObject({
        status: 'captured',
        amountRefunded: 400,
      });
    }, 60_000);

    test('manual capture, partial', async () => {
      const a = real();
      const r = authorized(await a.authorize(req({ captureMethod: 'manual' })));
      expect(r.outcome).toBe('authorized');
      expect(
        (await a.capture(r.processorReference, 600, `paystep-unit-${randomUUID()}`)).amountCaptured,
      ).toBe(600);
    }, 60_000);

    test('decline and authentication', async () => {
      const a = real();
      const d = await a.authorize(req({ paymentMethod: 'pm_card_visa_chargeDeclinedInsufficientFunds' }));
      expect(d).toMatchObject({ outcome: 'declined', failure: { code: 'insufficient_funds' } });
      const t = await a.authorize(req({ paymentMethod: 'pm_card_authenticationRequired' }));
      expect(t.outcome).toBe('requires_action');
      await a.cancel(t.processorReference!, `paystep-unit-${randomUUID()}`);
    }, 60_000);
  },
);
