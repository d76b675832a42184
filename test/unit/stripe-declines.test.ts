/** The Stripe decline table: every code support will meet maps to words they can read to a customer. */
import {
  mapStripeDecline,
  STRIPE_DECLINES,
  stripeProcessorCode,
} from '../../lambdas/connectors/stripe/declines.ts';

const REQUIRED = [
  'generic_decline',
  'insufficient_funds',
  'lost_card',
  'stolen_card',
  'expired_card',
  'incorrect_cvc',
  'incorrect_number',
  'processing_error',
  'fraudulent',
  'do_not_honor',
  'card_velocity_exceeded',
  'authentication_required',
  'card_not_supported',
  'currency_not_supported',
  'try_again_later',
  'withdrawal_count_limit_exceeded',
  'pickup_card',
  'restricted_card',
  'security_violation',
  'transaction_not_allowed',
  'invalid_account',
];

test.each(REQUIRED)('%s has a row with payer, support and retry guidance', (code) => {
  const row = STRIPE_DECLINES[code];
  expect(row).toBeDefined();
  const f = mapStripeDecline('card_declined', code);
  expect(f.code).toBe(code);
  expect(f.processor_code).toBe(`card_declined/${code}`);
  for (const text of [f.message, f.explanation, f.recommended_action])
    expect(text.trim().length).toBeGreaterThan(10);
  expect(typeof f.retryable).toBe('boolean');
});

test('every row is complete and never suggests retrying a card the issuer flagged', () => {
  for (const [code, row] of Object.entries(STRIPE_DECLINES)) {
    expect([code, row.message && row.explanation && row.recommended_action ? 'ok' : 'missing']).toEqual([
      code,
      'ok',
    ]);
    if (row.category === 'fraud' || ['restricted_card', 'security_violation'].includes(code)) {
      expect([code, row.retryable]).toEqual([code, false]);
      expect(row.recommended_action).toMatch(/^Do not retry/);
      // The payer is never told the card was reported lost or stolen, or looked fraudulent.
      expect(row.message).toBe('Your card was declined.');
    }
  }
});

test.each([
  ['insufficient_funds', 'soft_decline', true],
  ['lost_card', 'fraud', false],
  ['stolen_card', 'fraud', false],
  ['pickup_card', 'fraud', false],
  ['fraudulent', 'fraud', false],
  ['expired_card', 'hard_decline', false],
  ['incorrect_cvc', 'hard_decline', false],
  ['processing_error', 'technical', true],
  ['authentication_required', 'authentication', true],
  ['try_again_later', 'soft_decline', true],
])('%s is %s, retryable %s', (code, category, retryable) => {
  expect(mapStripeDecline('card_declined', code)).toMatchObject({ category, retryable });
});

test('insufficient funds reads as support would say it', () => {
  expect(mapStripeDecline('card_declined', 'insufficient_funds')).toEqual({
    category: 'soft_decline',
    code: 'insufficient_funds',
    processor_code: 'card_declined/insufficient_funds',
    message: 'Your card has insufficient funds.',
    explanation: 'Declined by the card issuer for insufficient funds.',
    recommended_action:
      'Ask the customer for another payment method; retrying this card is unlikely to succeed today.',
    retryable: true,
  });
});

test('the decline code wins over the code; codes without a decline code are looked up too', () => {
  expect(mapStripeDecline('card_declined', 'lost_card').code).toBe('lost_card');
  expect(mapStripeDecline('expired_card', 'expired_card')).toMatchObject({
    code: 'expired_card',
    processor_code: 'expired_card',
  });
  expect(mapStripeDecline('incorrect_cvc')).toMatchObject({
    code: 'incorrect_cvc',
    processor_code: 'incorrect_cvc',
  });
  expect(mapStripeDecline('card_declined')).toMatchObject({
    code: 'generic_decline',
    category: 'soft_decline',
  });
  expect(mapStripeDecline('authentication_required', 'authentication_not_handled')).toMatchObject({
    code: 'authentication_required',
    category: 'authentication',
  });
  expect(mapStripeDecline('payment_intent_authentication_failure')).toMatchObject({
    code: 'authentication_failed',
    category: 'authentication',
    retryable: true,
  });
});

test('an unknown code falls back to a non-retryable decline that keeps the raw code', () => {
  expect(mapStripeDecline('card_declined', 'brand_new_code', 'Your card was declined by magic.')).toEqual({
    category: 'hard_decline',
    code: 'declined',
    processor_code: 'card_declined/brand_new_code',
    message: 'Your card was declined by magic.',
    explanation: expect.stringContaining('card_declined/brand_new_code'),
    recommended_action: expect.stringMatching(/^Do not retry automatically/),
    retryable: false,
  });
  expect(mapStripeDecline(undefined)).toMatchObject({
    processor_code: 'unknown',
    message: 'Your card was declined.',
  });
  // Object.prototype names are not codes.
  expect(mapStripeDecline('constructor').code).toBe('declined');
});

test('processor codes', () => {
  expect(stripeProcessorCode('card_declined', 'insufficient_funds')).toBe('card_declined/insufficient_funds');
  expect(stripeProcessorCode('expired_card', 'expired_card')).toBe('expired_card');
  expect(stripeProcessorCode(undefined, 'fraudulent')).toBe('fraudulent');
});
