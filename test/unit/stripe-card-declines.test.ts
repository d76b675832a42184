/**
 * The Stripe adapter against the Stripe simulator for each documented declining test card: the
 * decline codes, the Stripe-shaped 402 body, and a working card then paying the same PaymentIntent.
 */
import Stripe from 'stripe';
import {
  sim,
  authorizeRequest,
  adapter,
  sdk,
  call,
  expectRejects,
  eventsOf,
  useStripeSimulator,
} from '../fixtures/stripe-simulator.ts';

useStripeSimulator();

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
