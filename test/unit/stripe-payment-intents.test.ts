/**
 * The Stripe adapter's PaymentIntents against the Stripe simulator, with the real `stripe` SDK in
 * between: automatic and manual capture, partial capture, cancel, 3-D Secure (requires_action, return
 * URLs, failed authentication) and the test card that marks its charge for a dispute.
 */
import { randomUUID } from 'node:crypto';
import { ProcessorRequestError } from '../../lambdas/connectors/types.ts';
import {
  sim,
  url,
  authorizeRequest,
  adapter,
  expectRejects,
  eventsOf,
  authorized,
  useStripeSimulator,
} from '../fixtures/stripe-simulator.ts';

useStripeSimulator();

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
