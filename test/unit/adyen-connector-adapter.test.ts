/**
 * The Adyen adapter (lambdas/connectors/adyen/adapter.ts) with the real `@adyen/api-library` in
 * between and a small fake Checkout API behind the transport (transport.ts): what goes on the wire
 * (reference, merchant account, amount in Adyen's minor units, the test instrument, capture mode,
 * `Idempotency-Key`), what each result code becomes, what failures mean (decline, request error,
 * unknown outcome), the asynchronous modifications, and `retrieve` answered from stored facts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  AdyenAdapter,
  AdyenUnexpectedResult,
  adyenIdempotencyKey,
  adyenOptionsFromEnv,
  type AdyenStateSource,
} from '../../lambdas/connectors/adyen/adapter.ts';
import { AdyenApiError, adyenError } from '../../lambdas/connectors/adyen/transport.ts';
import { ADYEN_TEST_METHODS } from '../../lambdas/connectors/adyen/test-methods.ts';
import type { ConnectorFact } from '../../lambdas/connectors/facts.ts';
import {
  ProcessorRequestError,
  ProcessorUnavailableError,
  type AuthorizeRequest,
} from '../../lambdas/connectors/types.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;
interface Seen {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Json;
}
type Answer = { status: number; body: Json | string } | 'hang' | 'reset';

let server: Server;
let base: string;
let seen: Seen[] = [];
let answer: (req: Seen) => Answer = () => ({ status: 500, body: {} });
const hanging: ServerResponse[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString('utf8')));
    req.on('end', () => {
      const s: Seen = {
        method: req.method!,
        path: req.url!,
        headers: req.headers,
        body: text ? JSON.parse(text) : {},
      };
      seen.push(s);
      const a = answer(s);
      if (a === 'hang') return void hanging.push(res);
      if (a === 'reset') return void req.socket.destroy();
      res.writeHead(a.status, { 'content-type': 'application/json' });
      res.end(typeof a.body === 'string' ? a.body : JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const res of hanging) res.destroy();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

beforeEach(() => {
  seen = [];
});

const payments: Record<
  string,
  { paymentId: string; amount: number; currency: string; captureMethod: 'automatic' | 'manual' }
> = {};
let facts: ConnectorFact[] = [];
const state: AdyenStateSource = {
  payment: async (psp) => payments[psp],
  facts: async (psp) =>
    facts.filter((f) => f.reference === psp || ('paymentReference' in f && f.paymentReference === psp)),
};

const adapter = (over: Partial<ConstructorParameters<typeof AdyenAdapter>[0]> = {}) =>
  new AdyenAdapter({
    apiKey: 'test_key_unit',
    merchantAccount: 'PaystepECOM',
    apiBase: base,
    timeoutMs: 2000,
    state,
    ...over,
  });

let seq = 0;
const request = (over: Partial<AuthorizeRequest> = {}): AuthorizeRequest => {
  seq++;
  return {
    paymentId: `pay_unit_${seq}`,
    merchantId: 'mch_unit',
    amount: 1050,
    currency: 'eur',
    paymentMethod: 'pm_card_visa',
    captureMethod: 'automatic',
    idempotencyKey: `pay_unit_${seq}:authorize:1`,
    ...over,
  };
};

const authorised = (s: Seen): Answer => ({
  status: 200,
  body: {
    pspReference: `PSP${String(seq).padStart(13, '0')}`,
    resultCode: 'Authorised',
    merchantReference: s.body.reference,
    amount: s.body.amount,
    paymentMethod: { type: 'scheme', brand: 'visa' },
    additionalData: {
      cardSummary: '1111',
      expiryDate: '3/2030',
      cardBin: '411111',
      cardIssuingCountry: 'NL',
    },
  },
});

describe('authorize', () => {
  test('automatic capture: the request on the wire, and a captured payment with its card', async () => {
    answer = authorised;
    const req = request();
    const r = await adapter().authorize(req);
    expect(r).toMatchObject({
      outcome: 'captured',
      amountCaptured: 1050,
      rawStatus: 'Authorised',
      card: { brand: 'visa', last4: '1111', country: 'NL', exp_month: 3, exp_year: 2030 },
      analytics: { bin: '411111', issuer_country: 'NL' },
    });
    expect(seen).toHaveLength(1);
    const s = seen[0]!;
    expect(s.method).toBe('POST');
    expect(s.path).toBe('/v72/payments');
    expect(s.headers['x-api-key']).toBe('test_key_unit');
    expect(s.headers['idempotency-key']).toBe(req.idempotencyKey);
    expect(s.body).toMatchObject({
      reference: req.paymentId,
      merchantAccount: 'PaystepECOM',
      amount: { currency: 'EUR', value: 1050 },
      captureDelayHours: 0,
      shopperInteraction: 'Ecommerce',
      channel: 'Web',
      metadata: { paystep_payment_id: req.paymentId, paystep_merchant_id: 'mch_unit' },
      paymentMethod: {
        type: 'scheme',
        encryptedCardNumber: 'test_4111111111111111',
        encryptedExpiryMonth: 'test_03',
        encryptedExpiryYear: 'test_2030',
        encryptedSecurityCode: 'test_737',
      },
    });
    expect(s.body.additionalData?.manualCapture).toBeUndefined();
    expect(typeof s.body.returnUrl).toBe('string');
  });

  test('manual capture asks Adyen for it on the request and answers authorized', async () => {
    answer = authorised;
    const r = await adapter().authorize(
      request({ captureMethod: 'manual', customer: { id: 'cus_1', country: 'nl' } }),
    );
    expect(r).toMatchObject({ outcome: 'authorized', amountCaptured: 0 });
    expect(seen[0]!.body.additionalData).toEqual({ manualCapture: 'true' });
    expect(seen[0]!.body.captureDelayHours).toBeUndefined();
    expect(seen[0]!.body).toMatchObject({ shopperReference: 'cus_1', countryCode: 'NL' });
  });

  test('a test decline: the magic value goes out, the refusal comes back as the taxonomy', async () => {
    answer = (s) => ({
      status: 200,
      body: {
        pspReference: 'PSPDECLINED00001',
        resultCode: 'Refused',
        refusalReason: 'Not enough balance',
        refusalReasonCode: '12',
        merchantReference: s.body.reference,
      },
    });
    const r = await adapter().authorize(
      request({ paymentMethod: 'pm_card_visa_chargeDeclinedInsufficientFunds' }),
    );
    expect(seen[0]!.body.paymentMethod.holderName).toBe('NOT_ENOUGH_BALANCE');
    expect(seen[0]!.body.additionalData).toEqual({ RequestedTestAcquirerResponseCode: '12' });
    expect(r).toMatchObject({
      outcome: 'declined',
      processorReference: 'PSPDECLINED00001',
      rawStatus: 'Refused',
      failure: { code: 'insufficient_funds', category: 'soft_decline', processor_code: 'Refused/12' },
    });
  });

  test('Error and Cancelled results are declines too (technical, fraud-cancelled)', async () => {
    answer = () => ({
      status: 200,
      body: {
        pspReference: 'P1',
        resultCode: 'Error',
        refusalReason: 'Acquirer Error',
        refusalReasonCode: '4',
      },
    });
    expect(await adapter().authorize(request())).toMatchObject({
      failure: { code: 'processing_error', retryable: true },
    });
    answer = () => ({
      status: 200,
      body: { pspReference: 'P2', resultCode: 'Cancelled', refusalReasonCode: '22' },
    });
    expect(await adapter().authorize(request())).toMatchObject({
      failure: { category: 'fraud', retryable: false },
    });
  });

  test('3-D Secure: requires_action with the redirect URL; Pending and Received: processing', async () => {
    answer = () => ({
      status: 200,
      body: {
        pspReference: 'PSP3DS0000000001',
        resultCode: 'RedirectShopper',
        action: { type: 'redirect', method: 'GET', url: 'https://sim.example/3ds/1' },
      },
    });
    expect(await adapter().authorize(request({ paymentMethod: 'pm_card_authenticationRequired' }))).toEqual({
      outcome: 'requires_action',
      processorReference: 'PSP3DS0000000001',
      rawStatus: 'RedirectShopper',
      nextActionUrl: 'https://sim.example/3ds/1',
    });
    expect(seen[0]!.body.paymentMethod.encryptedCardNumber).toBe(
      `test_${ADYEN_TEST_METHODS.pm_card_authenticationRequired!.number}`,
    );
    for (const resultCode of ['Pending', 'Received']) {
      answer = () => ({ status: 200, body: { pspReference: 'PSPPENDING000001', resultCode } });
      expect(await adapter().authorize(request())).toEqual({
        outcome: 'processing',
        processorReference: 'PSPPENDING000001',
        rawStatus: resultCode,
      });
    }
  });

  test('a result paystep never asks for is not a decline: outcome unknown (check, then flag)', async () => {
    answer = () => ({
      status: 200,
      body: { pspReference: 'PSPPARTIAL000001', resultCode: 'PartiallyAuthorised' },
    });
    const err = await adapter()
      .authorize(request())
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AdyenUnexpectedResult);
    expect(err).toBeInstanceOf(ProcessorUnavailableError);
    expect((err as Error).message).toMatch(/PartiallyAuthorised/);
  });

  test("amounts cross in Adyen's minor units (CLP ×100, IDR ÷100) and BIF is refused, not guessed", async () => {
    answer = authorised;
    await adapter().authorize(request({ amount: 1500, currency: 'clp' }));
    expect(seen[0]!.body.amount).toEqual({ currency: 'CLP', value: 150000 });
    await adapter().authorize(request({ amount: 1_000_000, currency: 'idr' }));
    expect(seen[1]!.body.amount).toEqual({ currency: 'IDR', value: 10_000 });
    await expect(adapter().authorize(request({ amount: 1050, currency: 'idr' }))).rejects.toMatchObject({
      code: 'amount_invalid',
    });
    await expect(adapter().authorize(request({ amount: 1000, currency: 'bif' }))).rejects.toMatchObject({
      code: 'currency_not_supported',
    });
    expect(seen).toHaveLength(2);
  });

  test('payment methods: unknown test ids, Stripe tokens, live mode, stored Adyen tokens', async () => {
    answer = authorised;
    await expect(
      adapter().authorize(request({ paymentMethod: 'pm_card_nonexistent' })),
    ).rejects.toMatchObject({
      code: 'payment_method_unknown',
    });
    await expect(adapter().authorize(request({ paymentMethod: 'pm_1Nabcdef' }))).rejects.toMatchObject({
      code: 'payment_method_not_supported',
    });
    const live = adapter({ environment: 'live', liveEndpointUrlPrefix: 'abc-Paystep' });
    await expect(live.authorize(request())).rejects.toMatchObject({
      code: 'test_payment_method_in_live_mode',
    });
    await expect(
      adapter().authorize(request({ paymentMethod: 'adyen:8415718415172200' })),
    ).rejects.toMatchObject({
      code: 'customer_required',
    });
    expect(seen).toHaveLength(0);
    await adapter().authorize(
      request({ paymentMethod: 'adyen:8415718415172200', customer: { id: 'cus_9' } }),
    );
    expect(seen[0]!.body).toMatchObject({
      paymentMethod: { type: 'scheme', storedPaymentMethodId: '8415718415172200' },
      shopperReference: 'cus_9',
      recurringProcessingModel: 'CardOnFile',
      shopperInteraction: 'Ecommerce',
    });
  });

  test('a 422 about the card data is a decline; other 4xx are request errors; idempotency keys fit 64', async () => {
    answer = () => ({
      status: 422,
      body: { status: 422, errorCode: '101', message: 'Invalid card number', errorType: 'validation' },
    });
    expect(await adapter().authorize(request())).toMatchObject({
      outcome: 'declined',
      rawStatus: '422/101',
      failure: { code: 'incorrect_number', processor_code: 'validation/101' },
    });
    answer = () => ({
      status: 422,
      body: { status: 422, errorCode: '137', message: 'Invalid amount specified', errorType: 'validation' },
    });
    const err = await adapter()
      .authorize(request())
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AdyenApiError);
    expect(err).toMatchObject({ code: 'adyen_137', status: 422, errorType: 'validation' });
    answer = () => ({
      status: 401,
      body: {
        status: 401,
        errorCode: '000',
        message: 'HTTP Status Response - Unauthorized',
        errorType: 'security',
      },
    });
    await expect(adapter().authorize(request())).rejects.toMatchObject({
      name: 'ProcessorRequestError',
      code: 'authentication',
    });

    answer = authorised;
    const long = `pay_${'x'.repeat(70)}:authorize:1`;
    await adapter().authorize(request({ idempotencyKey: long }));
    const sent = seen.at(-1)!.headers['idempotency-key'] as string;
    expect(sent.length).toBeLessThanOrEqual(64);
    expect(sent).toBe(adyenIdempotencyKey(long));
    expect(adyenIdempotencyKey(long)).toBe(adyenIdempotencyKey(long));
    expect(adyenIdempotencyKey('short')).toBe('short');
  });

  test('no answer, 5xx, 429, 409, key in use (704), a reset connection: the outcome is unknown (retry with the same key)', async () => {
    for (const a of [
      {
        status: 500,
        body: {
          status: 500,
          errorCode: '905',
          message: 'Payment details are not supported',
          errorType: 'configuration',
        },
      },
      { status: 503, body: 'Service Unavailable' },
      { status: 429, body: { status: 429, message: 'Too many requests' } },
      { status: 409, body: { status: 409, message: 'Request in progress' } },
      {
        status: 422,
        body: {
          status: 422,
          errorCode: '704',
          message: 'request already processed or in progress',
          errorType: 'validation',
        },
      },
      'reset' as const,
    ]) {
      answer = () => a;
      const err = await adapter()
        .authorize(request())
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProcessorUnavailableError);
    }
    answer = () => 'hang';
    const started = Date.now();
    const err = await adapter({ timeoutMs: 300 })
      .authorize(request())
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProcessorUnavailableError);
    expect((err as Error).message).toMatch(/no answer within 300 ms/);
    expect(Date.now() - started).toBeLessThan(2000);
    const refused = await adapter({ apiBase: 'http://127.0.0.1:9' })
      .authorize(request())
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ProcessorUnavailableError);
  });

  test("the library's own client errors translate the same way", () => {
    const httpException = Object.assign(new Error('HTTP Exception: 422'), {
      statusCode: 422,
      responseBody: JSON.stringify({
        status: 422,
        errorCode: '167',
        message: 'Original pspReference required',
        errorType: 'validation',
      }),
    });
    expect(adyenError(httpException, 'capture')).toMatchObject({ code: 'adyen_167', status: 422 });
    expect(adyenError(Object.assign(new Error('boom'), { statusCode: 502 }), 'capture')).toBeInstanceOf(
      ProcessorUnavailableError,
    );
    expect(adyenError(new Error('socket hang up'), 'capture')).toBeInstanceOf(ProcessorUnavailableError);
  });
});

describe('modifications (asynchronous: received now, the outcome by webhook)', () => {
  const P = 'PSPMODIFIED00001';
  beforeAll(() => {
    payments[P] = { paymentId: 'pay_mod', amount: 5000, currency: 'clp', captureMethod: 'manual' };
  });
  const received = (s: Seen): Answer => ({
    status: 201,
    body: {
      merchantAccount: 'PaystepECOM',
      paymentPspReference: P,
      pspReference: `MOD${seen.length}`,
      reference: s.body.reference,
      status: 'received',
      ...(s.body.amount ? { amount: s.body.amount } : {}),
    },
  });

  test('capture: the currency comes from paystep, the result is received and pending', async () => {
    answer = received;
    const r = await adapter().capture(P, 3000, 'pay_mod:capture');
    expect(r).toEqual({
      processorReference: P,
      amountCaptured: 3000,
      rawStatus: 'received',
      pending: true,
      modificationReference: 'MOD1',
    });
    expect(seen[0]).toMatchObject({
      path: `/v72/payments/${P}/captures`,
      body: {
        merchantAccount: 'PaystepECOM',
        amount: { currency: 'CLP', value: 300000 },
        reference: 'pay_mod:capture',
      },
    });
    expect(seen[0]!.headers['idempotency-key']).toBe('pay_mod:capture');
    expect((await adapter().capture(P, undefined, 'k2')).amountCaptured).toBe(5000);
  });

  test('cancel and refund', async () => {
    answer = received;
    expect(await adapter().cancel(P, 'pay_mod:cancel')).toMatchObject({
      processorReference: P,
      rawStatus: 'received',
      pending: true,
    });
    expect(seen[0]!.path).toBe(`/v72/payments/${P}/cancels`);
    const r = await adapter().refund(P, 1000, 're_1:refund', 'requested_by_customer');
    expect(r).toEqual({ refundReference: 'MOD2', status: 'pending', amount: 1000 });
    expect(seen[1]).toMatchObject({
      path: `/v72/payments/${P}/refunds`,
      body: {
        amount: { currency: 'CLP', value: 100000 },
        merchantRefundReason: 'CUSTOMER REQUEST',
        reference: 're_1:refund',
      },
    });
  });

  test('a refused modification is a request error; without paystep state capture is not supported', async () => {
    answer = () => ({
      status: 422,
      body: {
        status: 422,
        errorCode: '167',
        message: 'Original pspReference required for this operation',
        errorType: 'validation',
      },
    });
    await expect(adapter().capture(P, 100, 'k')).rejects.toBeInstanceOf(ProcessorRequestError);
    await expect(adapter({ state: undefined }).capture(P, 100, 'k')).rejects.toMatchObject({
      code: 'not_supported',
    });
    await expect(adapter().capture('PSPUNKNOWN', 100, 'k')).rejects.toMatchObject({ code: 'not_found' });
  });
});

describe('retrieve: from the notification facts paystep stored', () => {
  const P = 'PSPRETRIEVE00001';
  const fact = (over: Partial<ConnectorFact> & Pick<ConnectorFact, 'kind'>): ConnectorFact =>
    ({
      processor: 'adyen',
      id: `f${Math.random()}`,
      at: '2026-11-29T10:00:00.000Z',
      raw_event: 'AUTHORISATION',
      success: true,
      amount: { value: 2000, currency: 'eur' },
      live: false,
      reference: P,
      merchantReference: 'pay_r',
      event: 'authorised',
      ...over,
    }) as ConnectorFact;

  beforeAll(() => {
    payments[P] = { paymentId: 'pay_r', amount: 2000, currency: 'eur', captureMethod: 'manual' };
  });

  test('authorised, then captured and refunded; a refund by its own reference', async () => {
    facts = [fact({ kind: 'payment' })];
    expect(await adapter().retrieve(P)).toMatchObject({
      status: 'authorized',
      amount: 2000,
      currency: 'eur',
      amountCaptured: 0,
    });
    facts.push(
      fact({
        kind: 'payment',
        event: 'captured',
        raw_event: 'CAPTURE',
        modificationReference: 'C1',
      } as Partial<ConnectorFact> & { kind: 'payment' }),
      fact({
        kind: 'refund',
        reference: 'R1',
        paymentReference: P,
        event: 'succeeded',
        raw_event: 'REFUND',
        amount: { value: 500, currency: 'eur' },
      } as Partial<ConnectorFact> & { kind: 'refund' }),
    );
    expect(await adapter().retrieve(P)).toMatchObject({
      status: 'captured',
      amountCaptured: 2000,
      amountRefunded: 500,
      rawStatus: 'CAPTURE',
    });
    expect(await adapter().retrieveRefund('R1')).toEqual({
      refundReference: 'R1',
      status: 'succeeded',
      amount: 500,
    });
    expect(await adapter().retrieveRefund('R2')).toEqual({
      refundReference: 'R2',
      status: 'pending',
      amount: 0,
    });
    expect(seen).toHaveLength(0); // Adyen is never asked: it has no API to read a payment
  });

  test('nothing to answer from is said plainly (not_supported), never guessed', async () => {
    facts = [];
    await expect(adapter().retrieve(P)).rejects.toMatchObject({
      code: 'not_supported',
      message: expect.stringMatching(/no notification/),
    });
    await expect(adapter().retrieve('PSPNOBODY')).rejects.toMatchObject({ code: 'not_supported' });
    await expect(adapter({ state: undefined }).retrieve(P)).rejects.toMatchObject({ code: 'not_supported' });
    await expect(adapter({ state: undefined }).retrieveRefund('R1')).rejects.toMatchObject({
      code: 'not_supported',
    });
  });
});

describe('redirect completion and configuration', () => {
  test('completeRedirect sends the redirectResult to /payments/details and maps the answer', async () => {
    answer = (s) =>
      s.path === '/v72/payments/details'
        ? {
            status: 200,
            body: {
              pspReference: 'PSP3DSDONE000001',
              resultCode: 'Authorised',
              merchantReference: 'pay_3ds',
            },
          }
        : { status: 404, body: {} };
    const r = await adapter().completeRedirect('X6XtfGC3!Y…', {
      paymentId: 'pay_3ds',
      amount: 1000,
      captureMethod: 'manual',
    });
    expect(r).toMatchObject({ outcome: 'authorized', processorReference: 'PSP3DSDONE000001' });
    expect(seen[0]!.body).toEqual({ details: { redirectResult: 'X6XtfGC3!Y…' } });
  });

  test('options from the environment', () => {
    expect(
      adyenOptionsFromEnv({
        ADYEN_API_KEY: 'k',
        ADYEN_MERCHANT_ACCOUNT: 'M',
        ADYEN_API_BASE: 'http://127.0.0.1:1',
        ADYEN_TIMEOUT_MS: '500',
      }),
    ).toEqual({
      apiKey: 'k',
      merchantAccount: 'M',
      environment: 'test',
      apiBase: 'http://127.0.0.1:1',
      timeoutMs: 500,
    });
    expect(() => adyenOptionsFromEnv({ ADYEN_MERCHANT_ACCOUNT: 'M' })).toThrow(/ADYEN_API_KEY/);
    expect(() =>
      adyenOptionsFromEnv({ ADYEN_API_KEY: 'k', ADYEN_MERCHANT_ACCOUNT: 'M', ADYEN_ENVIRONMENT: 'prod' }),
    ).toThrow(/test or live/);
    expect(() => new AdyenAdapter({ apiKey: 'k', merchantAccount: 'M', environment: 'live' })).toThrow(
      /liveEndpointUrlPrefix/,
    );
  });
});
