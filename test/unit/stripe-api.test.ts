/**
 * The Stripe simulator's HTTP API as the `stripe` SDK and the adapter see it: the wire format (API
 * keys, test mode only, return_url rules, 404s) and idempotency keys (replays, conflicting
 * parameters, key scope, a key still executing → 409).
 */
import { randomUUID } from 'node:crypto';
import { StripeAdapter } from '../../lambdas/connectors/stripe/adapter.ts';
import { ProcessorRequestError } from '../../lambdas/connectors/types.ts';
import {
  sim,
  url,
  authorizeRequest,
  adapter,
  call,
  expectRejects,
  authorized,
  useStripeSimulator,
  type Body,
} from '../fixtures/stripe-simulator.ts';

useStripeSimulator();

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
