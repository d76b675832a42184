import {
  allowedSources,
  canTransition,
  explain,
  PAYMENT_STATUSES,
  TERMINAL_STATUSES,
  TRANSITIONS,
  type Payment,
} from '../../lambdas/domain/payment.ts';
import {
  currencyExponent,
  formatAmount,
  isSupportedCurrency,
  maxAmount,
  amountGranularity,
} from '../../lambdas/domain/money.ts';
import { riskConfigFromEnv, screen } from '../../lambdas/domain/risk.ts';
import { choose } from '../../lambdas/domain/routing.ts';
import { parseCreatePayment, parseListQuery } from '../../lambdas/payments/validation.ts';
import { ApiError } from '../../lambdas/shared/errors.ts';

describe('payment transitions', () => {
  test('no status can move backwards to processing except a review approval, and terminal statuses never move', () => {
    expect(allowedSources('processing')).toEqual(['pending_review', 'requires_action']);
    for (const s of TERMINAL_STATUSES)
      for (const to of PAYMENT_STATUSES) expect(canTransition(s, to)).toBe(false);
    expect(TERMINAL_STATUSES.sort()).toEqual(['canceled', 'charged_back', 'failed', 'refunded']);
  });
  test('captured money can only settle, be refunded or disputed; authorizations only capture or cancel', () => {
    expect(TRANSITIONS.authorized).toEqual(['captured', 'canceled']);
    expect(canTransition('captured', 'authorized')).toBe(false);
    expect(canTransition('captured', 'failed')).toBe(false);
    expect(canTransition('disputed', 'charged_back')).toBe(true);
    expect(allowedSources('captured').sort()).toEqual([
      'authorized',
      'disputed',
      'processing',
      'requires_action',
    ]);
  });
});

describe('money', () => {
  test('exponents and formatting follow ISO 4217', () => {
    expect(currencyExponent('usd')).toBe(2);
    expect(currencyExponent('jpy')).toBe(0);
    expect(currencyExponent('kwd')).toBe(3);
    expect(formatAmount(1234, 'usd')).toBe('12.34 USD');
    expect(formatAmount(5, 'usd')).toBe('0.05 USD');
    expect(formatAmount(1234, 'jpy')).toBe('1234 JPY');
    expect(formatAmount(1234, 'kwd')).toBe('1.234 KWD');
    expect(isSupportedCurrency('xyz')).toBe(false);
    expect(maxAmount('kwd')).toBe(99_999_999);
    expect(amountGranularity('kwd')).toBe(10);
    expect(amountGranularity('usd')).toBe(1);
    expect(currencyExponent('mga')).toBe(0); // the processor's exponent, not ISO's
    // ISK and UGX: two-decimal in the processor's API, whole units only (multiples of 100).
    expect([currencyExponent('isk'), amountGranularity('isk')]).toEqual([2, 100]);
    expect(isSupportedCurrency('iqd')).toBe(false); // not accepted by the processor
  });
});

describe('payment request validation', () => {
  const valid = { amount: 1000, currency: 'usd', payment_method: 'pm_card_visa' };
  const paramOf = (body: unknown) => {
    try {
      parseCreatePayment(body);
    } catch (err) {
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).status).toBe(400);
      return (err as ApiError).param;
    }
    throw new Error('expected a validation error');
  };
  test('a valid request gets defaults', () => {
    expect(parseCreatePayment(valid)).toMatchObject({ capture_method: 'automatic' });
  });
  test.each([
    [{ ...valid, amount: 0 }, 'amount'],
    [{ ...valid, amount: -5 }, 'amount'],
    [{ ...valid, amount: 10.5 }, 'amount'],
    [{ ...valid, amount: '1000' }, 'amount'],
    [{ ...valid, amount: 100_000_000 }, 'amount'],
    [{ ...valid, currency: 'kwd', amount: 1235 }, 'amount'],
    [{ ...valid, amount: Number.MAX_SAFE_INTEGER + 2 }, 'amount'],
    [{ ...valid, currency: 'USD' }, 'currency'],
    [{ ...valid, currency: 'xyz' }, 'currency'],
    [{ amount: 1000, currency: 'usd' }, 'payment_method'],
    [{ ...valid, capture_method: 'later' }, 'capture_method'],
    [{ ...valid, customer: { email: 'nope' } }, 'customer.email'],
    [{ ...valid, customer: { country: 'us' } }, 'customer.country'],
    [
      { ...valid, metadata: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v'])) },
      'metadata',
    ],
    [{ ...valid, metadata: { k: 'x'.repeat(501) } }, 'metadata.k'],
    [{ ...valid, surprise: 1 }, 'surprise'],
    [undefined, 'amount'],
  ])('%j is rejected naming %s', (body, param) => {
    expect(paramOf(body)).toBe(param);
  });
  test('list query: bad limit and unknown filters are 400s', () => {
    expect(parseListQuery({}).limit).toBe(10);
    expect(() => parseListQuery({ limit: '0' })).toThrow(/limit/);
    expect(() => parseListQuery({ limit: '101' })).toThrow(/limit/);
    expect(() => parseListQuery({ status: 'nope' })).toThrow(/status/);
    expect(() => parseListQuery({ colour: 'red' })).toThrow(/colour/);
  });
});

describe('risk screen', () => {
  const config = riskConfigFromEnv({
    PAYSTEP_RISK_AMOUNT_LIMITS: 'usd:50000',
    PAYSTEP_RISK_VELOCITY_LIMIT: '3',
    PAYSTEP_RISK_BLOCKED_COUNTRIES: 'KP',
  });
  test('within limits: allow', () => {
    expect(
      screen({ amount: 50000, currency: 'usd', customerCountry: 'US', customerPaymentsThisHour: 3 }, config),
    ).toEqual({ decision: 'allow', reasons: [] });
  });
  test('each rule holds the payment for review with a readable reason', () => {
    expect(screen({ amount: 50001, currency: 'usd' }, config).reasons[0]).toMatch(
      /above the review limit 50000/,
    );
    expect(screen({ amount: 1, currency: 'usd', customerPaymentsThisHour: 4 }, config).reasons[0]).toMatch(
      /4 payments this hour/,
    );
    expect(screen({ amount: 1, currency: 'usd', customerCountry: 'kp' }, config)).toMatchObject({
      decision: 'review',
      reasons: [expect.stringMatching(/KP/)],
    });
    expect(screen({ amount: 1_000_001, currency: 'eur' }, config).decision).toBe('review'); // default limit
  });
});

describe('routing', () => {
  test('default route tries every configured processor; rules narrow it', () => {
    const input = { merchantId: 'm', amount: 1, currency: 'eur' };
    expect(choose(input, [], ['stripe', 'adyen'])).toEqual({
      processors: ['stripe', 'adyen'],
      rule: 'platform default',
    });
    const rules = [
      { name: 'eur-to-adyen', matches: (p: typeof input) => p.currency === 'eur', processors: ['adyen'] },
    ];
    expect(choose(input, rules, ['stripe', 'adyen'])).toEqual({
      processors: ['adyen'],
      rule: 'eur-to-adyen',
    });
    expect(choose(input, rules, ['stripe'])).toEqual({ processors: ['stripe'], rule: 'platform default' });
    expect(() => choose(input, [], [])).toThrow(/no processor/);
  });

  test("the merchant's order comes before the platform's, among the enabled processors only", () => {
    const input = { merchantId: 'm', amount: 1, currency: 'usd' };
    expect(choose(input, [], ['stripe', 'adyen'], ['adyen', 'stripe'])).toEqual({
      processors: ['adyen', 'stripe'],
      rule: 'merchant default',
    });
    // A disabled entry is skipped; the other enabled processors stay as failover candidates.
    expect(choose(input, [], ['stripe', 'adyen'], ['checkout', 'adyen'])).toEqual({
      processors: ['adyen', 'stripe'],
      rule: 'merchant default',
    });
    expect(choose(input, [], ['stripe'], ['adyen'])).toEqual({
      processors: ['stripe'],
      rule: 'platform default',
    });
  });
});

describe('explanations', () => {
  const base = {
    id: 'pay_x',
    amount: 1050,
    currency: 'usd',
    amount_captured: 0,
    amount_refunded: 0,
    review: null,
    capture_before: null,
    cancellation_reason: null,
    failure: null,
  } as unknown as Payment;
  test('a decline reads the failure explanation and recommended action', () => {
    const p = {
      ...base,
      status: 'failed',
      failure: {
        explanation: 'Declined by the card issuer for insufficient funds.',
        recommended_action: 'Ask the customer for another payment method.',
      },
    } as unknown as Payment;
    expect(explain(p)).toBe(
      'Declined by the card issuer for insufficient funds. Ask the customer for another payment method.',
    );
  });
  test('authorized and partial captures say what to do and how much', () => {
    expect(explain({ ...base, status: 'authorized', capture_before: 1_800_000_000 } as Payment)).toMatch(
      /10\.50 USD is authorized.*Capture it.*before 2027-01-15/,
    );
    expect(explain({ ...base, status: 'captured', amount_captured: 500 } as Payment)).toMatch(
      /5\.00 USD of 10\.50 USD/,
    );
  });
});
