/**
 * Bounded, validated input (issue #12): every request is checked before a handler hashes,
 * validates or stores it (lambdas/shared/input.ts via lambdas/shared/http.ts), and the schemas
 * report wrong types, amounts, currencies and event types as the API documents them.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import fc from 'fast-check';
import Stripe from 'stripe';
import { ApiError } from '../../lambdas/shared/errors.ts';
import { parseRequest } from '../../lambdas/shared/http.ts';
import { isIdOf, jsonTextDepth, MAX_JSON_DEPTH, pathId } from '../../lambdas/shared/input.ts';
import { openValue, sealValue } from '../../lambdas/shared/secrets.ts';
import { parseCreatePayment, parse, CaptureBody, parseListQuery } from '../../lambdas/payments/validation.ts';
import { parseCreateEndpoint, parseEventListQuery, EVENT_TYPES } from '../../lambdas/events/validation.ts';
import { parseEvidence } from '../../lambdas/disputes/validation.ts';
import {
  amountProblem,
  currencyExponent,
  maxChargeAmount,
  minAmount,
  SUPPORTED_CURRENCIES,
} from '../../lambdas/domain/money.ts';
import { requestHash } from '../../lambdas/store/idempotency.ts';
import { verifyStripeSignature } from '../../lambdas/connectors/stripe/signature.ts';
import { envVarFor, topology } from '../../lib/topology.ts';

const PAN = '4242424242424242';

const event = (over: Partial<APIGatewayProxyEvent> = {}): APIGatewayProxyEvent =>
  ({
    httpMethod: 'POST',
    path: '/v1/payments',
    headers: { 'Content-Type': 'application/json' },
    body: null,
    isBase64Encoded: false,
    queryStringParameters: null,
    pathParameters: null,
    requestContext: { requestId: 'r', authorizer: { merchantId: 'mch_1' } },
    ...over,
  }) as unknown as APIGatewayProxyEvent;

/** The ApiError `fn` throws (fails the test if it does not throw one). */
function errorOf(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    return err as ApiError;
  }
  throw new Error('expected an ApiError');
}

const nested = (depth: number, inner: unknown = 1): string =>
  '{"a":'.repeat(depth) + JSON.stringify(inner) + '}'.repeat(depth);

describe('request bodies', () => {
  test(`nesting: ${MAX_JSON_DEPTH} levels pass, ${MAX_JSON_DEPTH + 1} are a 400 body_too_deep`, () => {
    expect(parseRequest(event({ body: nested(MAX_JSON_DEPTH) })).body).toBeDefined();
    const e = errorOf(() => parseRequest(event({ body: nested(MAX_JSON_DEPTH + 1) })));
    expect([e.status, e.code]).toEqual([400, 'body_too_deep']);
    const arrays = errorOf(() => parseRequest(event({ body: '['.repeat(21) + ']'.repeat(21) })));
    expect(arrays.code).toBe('body_too_deep');
  });

  test('a body nested 500,000 deep is refused before parsing, without recursion', () => {
    const e = errorOf(() => parseRequest(event({ body: '['.repeat(500_000) + ']'.repeat(500_000) })));
    expect(e.code).toBe('body_too_deep');
    // Brackets inside strings are text, not nesting.
    expect(jsonTextDepth(JSON.stringify({ s: '[[[[{{{{'.repeat(100) }))).toBe(1);
    expect(jsonTextDepth(JSON.stringify({ s: 'quote \\" [[[' }))).toBe(1);
  });

  test('canonical() hashes any nesting without recursion, as the recursive definition did', () => {
    const reference = (v: unknown): string => {
      if (Array.isArray(v)) return `[${v.map(reference).join(',')}]`;
      if (v && typeof v === 'object')
        return `{${Object.keys(v)
          .sort()
          .map((k) => `${JSON.stringify(k)}:${reference((v as Record<string, unknown>)[k])}`)
          .join(',')}}`;
      return JSON.stringify(v ?? null);
    };
    const hash = (body: unknown) =>
      createHash('sha256')
        .update(`POST /p\n${reference(body)}`)
        .digest('hex');
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect(requestHash('POST', '/p', v)).toBe(hash(v));
      }),
      { numRuns: 200 },
    );
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(requestHash('POST', '/p', deep)).toMatch(/^[0-9a-f]{64}$/);
  });

  test.each(['__proto__', 'constructor', 'prototype'])('the key %s is refused anywhere, named', (k) => {
    const top = errorOf(() => parseRequest(event({ body: `{"${k}":{"x":1}}` })));
    expect(top).toMatchObject({ status: 400, code: 'parameter_invalid', param: k });
    const deep = errorOf(() => parseRequest(event({ body: `{"metadata":{"a":[{"${k}":"x"}]}}` })));
    expect(deep).toMatchObject({ status: 400, code: 'parameter_invalid', param: `metadata.a.0.${k}` });
    expect(deep.message).toContain(k);
  });

  test.each(['latin1', 'ISO-8859-1', 'utf-16', 'windows-1252', '"us-ascii"'])(
    'charset=%s is refused; utf-8 and no charset are accepted',
    (charset) => {
      const e = errorOf(() =>
        parseRequest(
          event({ headers: { 'content-type': `application/json; charset=${charset}` }, body: '{}' }),
        ),
      );
      expect([e.status, e.code]).toEqual([400, 'unsupported_charset']);
      for (const ok of [
        'application/json',
        'application/json; charset=utf-8',
        'Application/JSON;Charset="UTF-8"',
      ])
        expect(parseRequest(event({ headers: { 'content-type': ok }, body: '{}' })).body).toEqual({});
    },
  );

  test('bytes that are not UTF-8, unpaired surrogates and oversized bodies are refused', () => {
    const latin1 = Buffer.from('{"description":"caf\xe9"}', 'latin1').toString('base64');
    expect(errorOf(() => parseRequest(event({ body: latin1, isBase64Encoded: true }))).code).toBe(
      'invalid_json',
    );
    expect(errorOf(() => parseRequest(event({ body: '{"description":"\\ud800"}' }))).param).toBe(
      'description',
    );
    const big = errorOf(() => parseRequest(event({ body: JSON.stringify({ d: 'x'.repeat(1 << 20) }) })));
    expect([big.status, big.code]).toEqual([413, 'body_too_large']);
  });

  test('path parameters that cannot be ids never reach a handler; pathId checks the kind', () => {
    for (const id of ['x'.repeat(5000), 'pay_../x', 'pay_%ZZ', 'pay_\u00e9', ''])
      expect(errorOf(() => parseRequest(event({ pathParameters: { id } }))).status).toBe(404);
    const ok = parseRequest(event({ pathParameters: { id: 'pay_4bZ7Qd1VxYyT2m9L0aKc3e' } }));
    expect(pathId(ok, 'payment')).toBe('pay_4bZ7Qd1VxYyT2m9L0aKc3e');
    const wrongKind = errorOf(() => pathId(ok, 'refund'));
    expect(wrongKind).toMatchObject({
      status: 404,
      type: 'not_found',
      code: 'resource_missing',
      param: 'id',
    });
    expect(isIdOf('webhook endpoint', 'we_abc')).toBe(true);
    expect(isIdOf('event', `evt_${'a'.repeat(61)}`)).toBe(false);
  });
});

describe('path ids', () => {
  test('every route with an {id} checks it with the shared helper before any store call', () => {
    const withId = topology.routes.filter((r) => r.path.includes('{id}'));
    expect(withId.length).toBeGreaterThan(10);
    for (const r of withId) {
      const source = fs.readFileSync(topology.functions[r.function]!.entry, 'utf8');
      const check = source.indexOf('pathId(req, ');
      expect({ route: `${r.method} ${r.path}`, checked: check >= 0 }).toEqual({
        route: `${r.method} ${r.path}`,
        checked: true,
      });
      // The check comes before the handler's first store, client or idempotency call.
      const firstUse = source.search(/await |idempotent\(|requestHash\(/);
      expect(firstUse === -1 || check < firstUse).toBe(true);
    }
  });
});

describe('card numbers are refused wherever merchants send text', () => {
  const valid = { amount: 1000, currency: 'usd', payment_method: 'pm_card_visa' };
  test.each([
    [{ ...valid, payment_method: PAN }, 'payment_method'],
    [{ ...valid, payment_method: '4242 4242 4242 4242' }, 'payment_method'],
    [{ ...valid, description: `card ${PAN.replace(/(\d{4})(?=\d)/g, '$1-')} exp 12/30` }, 'description'],
    [{ ...valid, order_id: `ord-${PAN}` }, 'order_id'],
    [{ ...valid, customer: { id: PAN } }, 'customer.id'],
    [{ ...valid, metadata: { note: `pan ${PAN}` } }, 'metadata.note'],
    [{ ...valid, metadata: { [PAN]: 'x' } }, 'metadata'],
    [{ payment: 'pay_1', metadata: { card: '5555 5555 5555 4444' } }, 'metadata.card'],
    [{ evidence: { uncategorized_text: `the card was 378282246310005` } }, 'evidence.uncategorized_text'],
    [{ url: `https://example.com/hook?c=${PAN}`, enabled_events: ['*'] }, 'url'],
    [{ anything: Number(PAN) }, 'anything'],
  ])('%j → card_number_refused naming %s, without echoing the number', (body, param) => {
    const e = errorOf(() => parseRequest(event({ body: JSON.stringify(body) })));
    expect(e).toMatchObject({
      status: 400,
      type: 'invalid_request_error',
      code: 'card_number_refused',
      param,
    });
    expect(e.message).toMatch(/never accepts or stores card numbers/);
    expect(JSON.stringify(e.toJSON())).not.toMatch(/\d{13}/);
  });

  test('in query strings too; and the schemas check again for direct callers', () => {
    const q = errorOf(() =>
      parseRequest(event({ httpMethod: 'GET', queryStringParameters: { order_id: PAN } })),
    );
    expect(q).toMatchObject({ code: 'card_number_refused', param: 'order_id' });
    expect(errorOf(() => parseCreatePayment({ ...valid, description: PAN })).code).toBe(
      'card_number_refused',
    );
    expect(errorOf(() => parseEvidence({ evidence: { customer_name: PAN } })).code).toBe(
      'card_number_refused',
    );
  });

  test('ordinary text with numbers passes', () => {
    const body = {
      ...valid,
      order_id: 'ord_1764057600000',
      description: 'Order 12345, 2 items, shipped 2025-11-25, call +44 20 7946 0958',
      metadata: { created_ms: '1764057600123', ref: '4242424242424241' },
    };
    expect(parseRequest(event({ body: JSON.stringify(body) })).body).toEqual(body);
  });
});

describe('validation errors', () => {
  const valid = { amount: 1000, currency: 'usd', payment_method: 'pm_card_visa' };
  test.each([
    [{ ...valid, amount: '1000' }, 'amount'],
    [{ ...valid, amount: null }, 'amount'],
    [{ ...valid, currency: 840 }, 'currency'],
    [{ ...valid, payment_method: ['pm_card_visa'] }, 'payment_method'],
    [{ ...valid, metadata: 'x' }, 'metadata'],
    [{ ...valid, metadata: { k: 1 } }, 'metadata.k'],
    [{ ...valid, customer: 'cus_1' }, 'customer'],
  ])('a wrong type is parameter_invalid, not parameter_missing: %j', (body, param) => {
    expect(errorOf(() => parseCreatePayment(body))).toMatchObject({ code: 'parameter_invalid', param });
  });

  test('an absent field is parameter_missing', () => {
    expect(errorOf(() => parseCreatePayment({ amount: 1000, currency: 'usd' }))).toMatchObject({
      code: 'parameter_missing',
      param: 'payment_method',
    });
    expect(errorOf(() => parse(CaptureBody, { amount: 'all' }))).toMatchObject({ code: 'parameter_invalid' });
  });

  test('list queries: ids and types are shape-checked before any store call', () => {
    expect(errorOf(() => parseListQuery({ starting_after: 'x'.repeat(5000) })).param).toBe('starting_after');
    expect(errorOf(() => parseListQuery({ order_id: 'o'.repeat(256) })).param).toBe('order_id');
    expect(errorOf(() => parseEventListQuery({ type: 'payment.exploded' })).param).toBe('type');
    expect(errorOf(() => parseEventListQuery({ starting_after: 'pay_1' })).param).toBe('starting_after');
    expect(parseEventListQuery({ type: 'refund.succeeded' }).type).toBe('refund.succeeded');
  });
});

describe('amounts and currencies', () => {
  test('every currency the processor accepts, with its exponent; nothing else', () => {
    expect(SUPPORTED_CURRENCIES).toHaveLength(139);
    for (const c of [
      'usd',
      'eur',
      'jpy',
      'krw',
      'kwd',
      'bhd',
      'jod',
      'omr',
      'tnd',
      'isk',
      'huf',
      'twd',
      'ugx',
    ])
      expect(SUPPORTED_CURRENCIES).toContain(c);
    for (const c of ['iqd', 'lyd', 'xxx', 'btc', 'usn'])
      expect(errorOf(() => parseCreatePayment({ ...base(c), amount: 1000 })).param).toBe('currency');
    expect([currencyExponent('jpy'), currencyExponent('usd'), currencyExponent('kwd')]).toEqual([0, 2, 3]);
  });

  const base = (currency: string) => ({ currency, payment_method: 'pm_card_visa' });

  test.each([
    ['usd', 1, 99_999_999],
    ['jpy', 1, 99_999_999],
    ['krw', 1, 99_999_999],
    ['kwd', 10, 99_999_990],
    ['bhd', 10, 99_999_990],
    ['isk', 100, 99_999_900],
  ])('%s: the documented minimum %d and maximum %d hold exactly', (currency, min, max) => {
    expect([minAmount(currency), maxChargeAmount(currency)]).toEqual([min, max]);
    expect(parseCreatePayment({ ...base(currency), amount: min }).amount).toBe(min);
    expect(parseCreatePayment({ ...base(currency), amount: max }).amount).toBe(max);
    expect(errorOf(() => parseCreatePayment({ ...base(currency), amount: max + min })).code).toBe(
      'amount_too_large',
    );
    if (min > 1) {
      expect(errorOf(() => parseCreatePayment({ ...base(currency), amount: min + 1 })).code).toBe(
        'amount_invalid',
      );
      expect(errorOf(() => parseCreatePayment({ ...base(currency), amount: min - 1 })).param).toBe('amount');
    }
    expect(errorOf(() => parseCreatePayment({ ...base(currency), amount: 0 })).param).toBe('amount');
  });

  test('any amount in a supported currency is either accepted or refused with a reason', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...SUPPORTED_CURRENCIES),
        fc.integer({ min: -10, max: 200_000_000 }),
        (c, a) => {
          const problem = a > 0 ? amountProblem(a, c) : 'not positive';
          if (problem)
            expect(errorOf(() => parseCreatePayment({ ...base(c), amount: a })).param).toBe('amount');
          else expect(parseCreatePayment({ ...base(c), amount: a }).amount).toBe(a);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('webhook endpoints', () => {
  test('enabled_events must be known event types or wildcards of known objects', () => {
    expect(EVENT_TYPES).toEqual(
      expect.arrayContaining(['payment.captured', 'refund.succeeded', 'dispute.won']),
    );
    const ok = parseCreateEndpoint({
      url: 'https://example.com/h',
      enabled_events: ['*', 'payment.*', 'refund.failed', 'dispute.created'],
    });
    expect(ok.enabled_events).toHaveLength(4);
    for (const bad of ['payment.exploded', 'receipt.*', 'invoice.exploded', 'payment.created.x', 'PAYMENT.*'])
      expect(
        errorOf(() => parseCreateEndpoint({ url: 'https://example.com/h', enabled_events: [bad] })).param,
      ).toBe('enabled_events.0');
  });

  test('signing secrets are sealed with AES-256-GCM, bound to their record', async () => {
    process.env[envVarFor.secretValue('webhook-secrets-key')] = 'k'.repeat(64);
    const sealed = await sealValue('webhook-secrets-key', 'whsec_abc', 'webhook_endpoint:we_1:mch_1');
    expect(JSON.stringify(sealed)).not.toContain('whsec_abc');
    expect(sealed).toMatchObject({ v: 1, alg: 'A256GCM' });
    expect(await openValue('webhook-secrets-key', sealed, 'webhook_endpoint:we_1:mch_1')).toBe('whsec_abc');
    await expect(openValue('webhook-secrets-key', sealed, 'webhook_endpoint:we_2:mch_1')).rejects.toThrow();
    // Rotation: a new key first, the old one still listed, opens both.
    process.env[envVarFor.secretValue('webhook-secrets-key')] = `${'n'.repeat(64)},${'k'.repeat(64)}`;
    expect(await openValue('webhook-secrets-key', sealed, 'webhook_endpoint:we_1:mch_1')).toBe('whsec_abc');
    const resealed = await sealValue('webhook-secrets-key', 'whsec_abc', 'x');
    expect(resealed.kid).not.toBe(sealed.kid);
    delete process.env[envVarFor.secretValue('webhook-secrets-key')];
  });
});

describe('processor webhook signatures', () => {
  const secret = 'whsec_test_secret';
  const body = JSON.stringify({ id: 'evt_1', type: 'charge.succeeded' });
  const sign = (timestamp: number) =>
    Stripe.webhooks.generateTestHeaderString({ payload: body, secret, timestamp });
  const now = 1_764_057_600;
  test('the tolerance applies in both directions', () => {
    const at = (t: number) => verifyStripeSignature(body, sign(t), [secret], { nowMs: now * 1000 });
    expect(at(now).ok).toBe(true);
    expect(at(now - 300).ok).toBe(true);
    expect(at(now + 300).ok).toBe(true);
    expect(at(now - 301)).toMatchObject({ ok: false, code: 'timestamp_outside_tolerance' });
    expect(at(now + 301)).toMatchObject({ ok: false, code: 'timestamp_outside_tolerance' });
    expect(at(now + 86_400 * 365)).toMatchObject({ ok: false, code: 'timestamp_outside_tolerance' });
  });
});
