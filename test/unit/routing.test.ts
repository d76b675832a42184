/**
 * Routing decisions (lambdas/domain/routing.ts, docs/routing.md): configuration validation naming
 * the field, rule matching, the deterministic split, eligibility with reasons, the default chain,
 * and what happens after an attempt (never moving on after an unknown outcome, cascading only
 * allow-listed soft declines).
 */
import fc from 'fast-check';
import {
  decideRoute,
  nextStep,
  splitBucket,
  splitPick,
  validateRoutingConfig,
  type RoutingConfig,
  type ValidationContext,
} from '../../lambdas/domain/routing.ts';
import { cannotTake, knownProcessors } from '../../lambdas/connectors/capabilities.ts';
import { failureCodes } from '../../lambdas/connectors/failure-codes.ts';
import { EXAMPLE_ROUTING } from '../fixtures/routing.ts';

const ctx: ValidationContext = {
  known: knownProcessors(),
  enabled: ['stripe', 'adyen'],
  cannotTakeCurrency: (p, currency) => cannotTake(p, { currency }),
  failureCodes: failureCodes(),
};

const ISSUE_EXAMPLE = EXAMPLE_ROUTING;

function valid(raw: unknown): RoutingConfig {
  const r = validateRoutingConfig(raw, ctx);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.config;
}
function problems(raw: unknown): Record<string, string> {
  const r = validateRoutingConfig(raw, ctx);
  if (r.ok) throw new Error('expected problems');
  return Object.fromEntries(r.problems.map((p) => [p.field, p.message]));
}

describe('validation', () => {
  test('the documented example is valid and normalized', () => {
    const c = valid({
      ...ISSUE_EXAMPLE,
      rules: [{ ...ISSUE_EXAMPLE.rules[0], when: { currency: ['EUR'] } }],
    });
    expect(c.rules[0]!.when.currency).toEqual(['eur']);
    expect(valid({}).rules).toEqual([]);
    expect(valid({ cascade: {} }).cascade).toEqual({
      codes: ['issuer_not_available', 'processing_error', 'try_again_later'],
      max_attempts: 2,
    });
  });

  test('each mistake is named by its field', () => {
    expect(
      problems({
        rules: [
          { name: 'a', when: {}, processors: ['paypal'] },
          { name: 'b', when: {}, split: { stripe: 70, adyen: 20 } },
          { name: 'a', when: { amount_gte: 500, amount_lt: 100 }, processors: ['stripe'] },
          { name: 'c', when: {}, processors: ['stripe'], split: { stripe: 100 } },
        ],
        cascade: { codes: ['issuer_unavailable', 'expired_card', 'fraudulent'], max_attempts: 2 },
      }),
    ).toEqual({
      'rules[0].processors[0]': '"paypal" is not a processor paystep knows (stripe, adyen)',
      'rules[1].split': 'the weights must sum to 100 (they sum to 90)',
      'rules[2].name': '"a" is the name of an earlier rule',
      'rules[2].when': 'amount_gte must be less than amount_lt: no amount can match',
      'rules[3]': 'a rule has either "processors" (a priority list) or "split" (weights)',
      'cascade.codes[0]':
        '"issuer_unavailable" is not one of paystep\'s failure codes (did you mean "issuer_not_available"?)',
      'cascade.codes[1]': '"expired_card" is a hard decline that must not be retried: it is never cascaded',
      'cascade.codes[2]': '"fraudulent" is a fraud that must not be retried: it is never cascaded',
    });
  });

  test('a disabled processor, a currency it cannot take, unknown fields and wrong types', () => {
    const only = { ...ctx, enabled: ['stripe'] };
    const r = validateRoutingConfig({ default: ['adyen'] }, only);
    expect(r).toEqual({
      ok: false,
      problems: [{ field: 'default[0]', message: '"adyen" is not enabled on this platform (stripe)' }],
    });
    expect(
      problems({ rules: [{ name: 'bif', when: { currency: ['bif'] }, split: { adyen: 50, stripe: 50 } }] }),
    ).toEqual({
      'rules[0].split.adyen': 'the rule routes BIF payments here, but adyen does not take BIF',
    });
    expect(
      problems({ rules: [{ name: 'x', when: { colour: ['red'] }, processors: ['stripe'] }], extra: 1 }),
    ).toEqual({
      'rules[0].when': 'unknown field "colour"',
      '(config)': 'unknown field "extra"',
    });
    expect(
      Object.keys(
        problems({ rules: [{ name: '', processors: 'stripe' }], cascade: { max_attempts: 9 } }),
      ).sort(),
    ).toEqual(['cascade.max_attempts', 'rules[0].name', 'rules[0].processors']);
    expect(Object.keys(problems('not an object'))).toEqual(['(config)']);
  });
});

describe('deciding a route', () => {
  const config = valid(ISSUE_EXAMPLE);
  const base = { enabled: ['stripe', 'adyen'] };

  test('the first matching rule decides, in words', () => {
    const eur = decideRoute(config, { id: 'pay_1', amount: 1000, currency: 'eur' }, base);
    expect(eur).toMatchObject({ processors: ['adyen', 'stripe'], rule: 'eur-to-adyen', skipped: [] });
    expect(eur.explanation).toBe('rule "eur-to-adyen" matched (currency EUR): adyen, stripe in that order.');
    const small = decideRoute(
      config,
      { id: 'pay_2', amount: 1000, currency: 'usd', customerCountry: 'US' },
      base,
    );
    expect(small).toMatchObject({ processors: ['stripe', 'adyen'], rule: 'default' });
  });

  test('a split is stable per payment and the fallback follows the pick', () => {
    const p = { id: 'pay_big', amount: 250_000, currency: 'usd', customerCountry: 'us' };
    const a = decideRoute(config, p, base);
    expect(decideRoute(config, p, base)).toEqual(a);
    expect(a.rule).toBe('big-us');
    expect(a.processors).toHaveLength(2);
    expect(a.explanation).toMatch(
      /^rule "big-us" matched \(amount ≥ 100000, customer_country US\): the 70\/30 split put this payment in (stripe|adyen)'s share \(bucket \d+ of 10000\); then fallback/,
    );
  });

  test('unavailable processors are skipped with their reason; nothing eligible is said too', () => {
    const down = decideRoute(
      config,
      { id: 'p', amount: 1, currency: 'eur' },
      { ...base, unavailable: (x) => (x === 'adyen' ? 'adyen: circuit breaker open' : undefined) },
    );
    expect(down.processors).toEqual(['stripe']);
    expect(down.explanation).toContain('Skipped: adyen: circuit breaker open.');
    const none = decideRoute(
      config,
      { id: 'p', amount: 1, currency: 'eur' },
      { ...base, unavailable: () => 'in incident' },
    );
    expect(none.processors).toEqual([]);
    expect(none.explanation).toContain('No processor can take this payment.');
  });

  test('a demoted processor (open breaker) is tried last, not dropped', () => {
    const r = decideRoute(
      config,
      { id: 'p', amount: 1, currency: 'eur' },
      { ...base, demoted: (x) => (x === 'adyen' ? 'adyen: circuit breaker open' : undefined) },
    );
    expect(r.processors).toEqual(['stripe', 'adyen']);
    expect(r.explanation).toContain('Tried last: adyen: circuit breaker open.');
    const alone = decideRoute(
      config,
      { id: 'p', amount: 1, currency: 'eur' },
      {
        ...base,
        unavailable: (x) =>
          x === 'stripe' ? 'stripe cannot charge a payment method token of adyen' : undefined,
        demoted: (x) => (x === 'adyen' ? 'adyen: circuit breaker open' : undefined),
      },
    );
    expect(alone.processors).toEqual(['adyen']); // nothing else can take it: it still gets its chance
  });

  test('without a config: the merchant order, then the platform order', () => {
    expect(
      decideRoute(undefined, { id: 'p', amount: 1, currency: 'usd' }, { ...base, merchantOrder: ['adyen'] }),
    ).toMatchObject({
      processors: ['adyen', 'stripe'],
      rule: 'merchant default',
    });
    expect(decideRoute(undefined, { id: 'p', amount: 1, currency: 'usd' }, base)).toMatchObject({
      processors: ['stripe', 'adyen'],
      rule: 'platform default',
    });
  });

  test('unknown facts never match; metadata and BIN prefixes do', () => {
    const c = valid({
      rules: [
        { name: 'visa-bin', when: { bin: ['4242'] }, processors: ['adyen'] },
        { name: 'vip', when: { metadata: { tier: ['gold'], campaign: '*' } }, processors: ['adyen'] },
      ],
      default: ['stripe'],
    });
    expect(decideRoute(c, { id: 'p', amount: 1, currency: 'usd' }, base).rule).toBe('default');
    expect(decideRoute(c, { id: 'p', amount: 1, currency: 'usd', bin: '424242' }, base).rule).toBe(
      'visa-bin',
    );
    expect(
      decideRoute(c, { id: 'p', amount: 1, currency: 'usd', metadata: { tier: 'gold' } }, base).rule,
    ).toBe('default');
    expect(
      decideRoute(c, { id: 'p', amount: 1, currency: 'usd', metadata: { tier: 'gold', campaign: 'x' } }, base)
        .rule,
    ).toBe('vip');
  });
});

describe('the split', () => {
  test('buckets are stable and in range, picks follow the weights', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (id, rule) => {
        const b = splitBucket(id, rule);
        return b === splitBucket(id, rule) && b >= 0 && b < 10_000 && Number.isInteger(b);
      }),
    );
    expect(splitPick({ stripe: 70, adyen: 30 }, 0)).toBe('adyen'); // alphabetical: adyen owns 0–2999
    expect(splitPick({ stripe: 70, adyen: 30 }, 2999)).toBe('adyen');
    expect(splitPick({ stripe: 70, adyen: 30 }, 3000)).toBe('stripe');
    expect(splitPick({ stripe: 100, adyen: 0 }, 0)).toBe('stripe');
  });

  test('10,000 payments through a 70/30 split land within 2 points of the weights', () => {
    let stripe = 0;
    for (let i = 0; i < 10_000; i++)
      if (splitPick({ stripe: 70, adyen: 30 }, splitBucket(`pay_${i}`, 'big-us')) === 'stripe') stripe++;
    expect(Math.abs(stripe / 100 - 70)).toBeLessThan(2);
  });
});

describe('after an attempt', () => {
  const route = ['stripe', 'adyen'];
  const decline = (
    code: string,
    category: 'soft_decline' | 'hard_decline' | 'fraud' | 'technical' = 'soft_decline',
    retryable = true,
    mac?: string,
  ) =>
    ({
      kind: 'declined',
      failure: { code, category, retryable, ...(mac ? { merchant_advice_code: mac } : {}) },
    }) as const;

  test('success is done; an unknown outcome is checked at the same processor, never moved', () => {
    expect(nextStep({ kind: 'succeeded' }, route, 1)).toEqual({ step: 'done' });
    expect(nextStep({ kind: 'unknown', reason: 'timed out after 10 s' }, route, 1)).toMatchObject({
      step: 'check_same_processor',
    });
  });

  test('not processed fails over to the next; the last one stops', () => {
    expect(nextStep({ kind: 'not_processed', reason: 'connection refused' }, route, 1)).toEqual({
      step: 'try_next',
      processor: 'adyen',
      reason: 'connection refused; nothing was processed',
      cascade: false,
    });
    expect(nextStep({ kind: 'not_processed', reason: 'connection refused' }, route, 2).step).toBe('stop');
  });

  test('only allow-listed, retryable soft declines cascade, within max_attempts', () => {
    expect(nextStep(decline('try_again_later'), route, 1)).toMatchObject({
      step: 'try_next',
      processor: 'adyen',
      cascade: true,
    });
    expect(nextStep(decline('issuer_not_available', 'technical'), route, 1)).toMatchObject({
      step: 'try_next',
      cascade: true,
    });
    expect(nextStep(decline('insufficient_funds'), route, 1)).toMatchObject({
      step: 'stop',
      reason: expect.stringContaining('not on the cascade list'),
    });
    expect(nextStep(decline('expired_card', 'hard_decline', false), route, 1)).toMatchObject({
      step: 'stop',
    });
    expect(nextStep(decline('fraudulent', 'fraud', false), route, 1)).toMatchObject({ step: 'stop' });
    expect(nextStep(decline('try_again_later', 'soft_decline', true, '03'), route, 1)).toMatchObject({
      step: 'stop',
      reason: expect.stringContaining('advice code 03'),
    });
    expect(nextStep(decline('try_again_later'), [...route, 'third'], 2)).toMatchObject({
      step: 'stop',
      reason: expect.stringContaining('2 attempts made'),
    });
  });

  test('property: a hard decline, fraud or authentication failure never moves to another processor', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('hard_decline', 'fraud', 'authentication', 'invalid_request'),
        fc.string(),
        fc.boolean(),
        fc.integer({ min: 0, max: 5 }),
        (category, code, retryable, made) =>
          nextStep({ kind: 'declined', failure: { category, code, retryable } }, route, made, {
            codes: [code],
            max_attempts: 5,
          }).step === 'stop',
      ),
    );
  });
});
