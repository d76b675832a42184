/**
 * The Adyen simulator with `@adyen/api-library` as the client (only its transport replaced, as
 * the connector does): authorisations, refusals, pending and 3-D Secure outcomes, stored cards,
 * modifications and their notifications, errors in Adyen's shape, idempotency and faults.
 */
import { randomUUID } from 'node:crypto';
import { CheckoutAPI, Client, EnvironmentEnum, HttpClientException, Types } from '@adyen/api-library';
import { AdyenSimulator } from '../../lib/local/processors/adyen/simulator.ts';
import { TEST_CARDS, luhnValid } from '../../lib/local/processors/adyen/test-cards.ts';
import type { NotificationRequestItem } from '../../lib/local/processors/adyen/notifications.ts';

const MERCHANT = 'PaystepTestMerchant';
const API_KEY = 'AQE_test_paystep_unit';
const HMAC_KEY = '44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056';
const SCHEME = Types.checkout.CardDetails.TypeEnum.Scheme;

type Transport = NonNullable<ConstructorParameters<typeof Client>[1]>;

/** The connector's kind of transport: the library's request, sent to the simulator instead. */
function transport(base: string): Transport {
  return {
    async request(endpoint, json, config, _apiKeyRequired, options = {}) {
      const headers: Record<string, string> = { 'Content-Type': 'application/json' };
      if (config.apiKey) headers['X-API-Key'] = config.apiKey;
      if (options.idempotencyKey) headers['Idempotency-Key'] = options.idempotencyKey;
      const res = await fetch(endpoint.replace(/^https:\/\/[^/]+/, base), {
        method: options.method ?? 'POST',
        headers,
        body: typeof json === 'string' ? json : new Uint8Array(json),
      });
      const text = await res.text();
      if (res.ok) return text;
      const apiError = JSON.parse(text) as { errorCode?: string };
      throw new HttpClientException({
        message: `HTTP ${res.status}`,
        statusCode: res.status,
        errorCode: apiError.errorCode,
        responseBody: text,
        apiError,
      });
    },
  };
}

/** Notification items as they are delivered, with a wait for the ones a test expects. */
class Inbox {
  readonly items: NotificationRequestItem[] = [];
  private waiters: {
    pred: (i: NotificationRequestItem) => boolean;
    resolve: (i: NotificationRequestItem) => void;
  }[] = [];

  receive(items: NotificationRequestItem[]): void {
    for (const item of items) {
      this.items.push(item);
      this.waiters = this.waiters.filter((w) => (w.pred(item) ? (w.resolve(item), false) : true));
    }
  }

  wait(pred: (i: NotificationRequestItem) => boolean): Promise<NotificationRequestItem> {
    const found = this.items.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => this.waiters.push({ pred, resolve }));
  }

  event(eventCode: string, pspOrOriginal: string): Promise<NotificationRequestItem> {
    return this.wait(
      (i) =>
        i.eventCode === eventCode &&
        (i.pspReference === pspOrOriginal || i.originalReference === pspOrOriginal),
    );
  }
}

let sim: AdyenSimulator;
let base: string;
let checkout: CheckoutAPI;
let inbox: Inbox;
const made: NotificationRequestItem[] = [];
const madeWaiters: { pred: (i: NotificationRequestItem) => boolean; resolve: () => void }[] = [];

beforeAll(async () => {
  inbox = new Inbox();
  sim = new AdyenSimulator({
    hmacKeyHex: HMAC_KEY,
    merchantAccount: MERCHANT,
    apiKey: API_KEY,
    timeScale: 1_000_000,
    settlementEveryMs: 0,
    delays: { defensePeriod: 1e15 },
    notify: {
      callback: (_raw, body) => {
        inbox.receive(body.notificationItems.map((n) => n.NotificationRequestItem));
        return { status: 200, body: '[accepted]' };
      },
    },
    onNotification: (item) => {
      made.push(item);
      for (const w of madeWaiters.splice(0))
        if (w.pred(item)) w.resolve();
        else madeWaiters.push(w);
    },
  });
  base = await sim.start(0);
  checkout = new CheckoutAPI(
    new Client({ apiKey: API_KEY, environment: EnvironmentEnum.TEST }, transport(base)),
  );
});

afterAll(async () => {
  await sim.stop();
});

afterEach(() => {
  sim.faults.reset();
});

let seq = 0;
function paymentRequest(
  card: Partial<Types.checkout.CardDetails> = {},
  over: Partial<Types.checkout.PaymentRequest> = {},
): Types.checkout.PaymentRequest {
  seq++;
  return {
    merchantAccount: MERCHANT,
    reference: `order-${seq}`,
    amount: { currency: 'EUR', value: 1000 },
    returnUrl: 'https://shop.example/return',
    paymentMethod: {
      type: SCHEME,
      number: '4111111111111111',
      expiryMonth: '03',
      expiryYear: '2030',
      cvc: '737',
      holderName: 'J. Smith',
      ...card,
    },
    ...over,
  };
}

const manual = { additionalData: { manualCapture: 'true' } };

async function apiError(p: Promise<unknown>): Promise<HttpClientException> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(HttpClientException);
    return err as HttpClientException;
  }
  throw new Error('expected the request to fail');
}

describe('payments', () => {
  test('a test card is authorised, with card details in additionalData', async () => {
    const res = await checkout.PaymentsApi.payments(paymentRequest());
    expect(res.resultCode).toBe('Authorised');
    expect(res.pspReference).toMatch(/^[0-9A-Z]{16}$/);
    expect(res.merchantReference).toBe(`order-${seq}`);
    expect(res.amount).toEqual({ currency: 'EUR', value: 1000 });
    expect(res.additionalData).toMatchObject({
      cardBin: '411111',
      cardSummary: '1111',
      cardIssuingCountry: 'NL',
      paymentMethod: 'visa',
      expiryDate: '3/2030',
    });
    expect(res.additionalData?.authCode).toMatch(/^\d{6}$/);
    const auth = await inbox.event('AUTHORISATION', res.pspReference!);
    expect(auth.success).toBe('true');
    // Immediate capture (the merchant account's default): captured at once, no CAPTURE notification.
    expect(sim.payments.get(res.pspReference!)?.capturedValue).toBe(1000);
  });

  test.each(TEST_CARDS.map((c) => [c.brand, c.number.slice(-4), c] as const))(
    'test card %s …%s is valid and accepted with its CVC',
    async (_brand, _last4, card) => {
      expect(luhnValid(card.number)).toBe(true);
      const res = await checkout.PaymentsApi.payments(paymentRequest({ number: card.number, cvc: card.cvc }));
      expect(res.resultCode).toBe(card.threeDS ? 'RedirectShopper' : 'Authorised');
      expect(res.additionalData).toMatchObject({
        cardSummary: card.number.slice(-4),
        paymentMethod: card.brand,
      });
    },
  );

  test.each([
    ['holder name', { holderName: 'NOT_ENOUGH_BALANCE' }, {}, 'Refused', 'Not enough balance', '12'],
    ['holder name', { holderName: 'CARD_EXPIRED' }, {}, 'Refused', 'Expired Card', '6'],
    ['holder name', { holderName: 'FRAUD' }, {}, 'Refused', 'FRAUD', '20'],
    [
      'acquirer code',
      {},
      { additionalData: { RequestedTestAcquirerResponseCode: '24' } },
      'Refused',
      'CVC Declined',
      '24',
    ],
    [
      'acquirer code',
      {},
      { additionalData: { RequestedTestAcquirerResponseCode: '4' } },
      'Error',
      'Acquirer Error',
      '4',
    ],
    ['wrong CVC', { cvc: '123' }, {}, 'Refused', 'Refused', '2'],
  ])('%s %j %j → %s %s (%s)', async (_how, card, over, resultCode, reason, code) => {
    const res = await checkout.PaymentsApi.payments(paymentRequest(card, over));
    expect(res).toMatchObject({ resultCode, refusalReason: reason, refusalReasonCode: code });
    const auth = await inbox.event('AUTHORISATION', res.pspReference!);
    expect(auth).toMatchObject({ success: 'false', reason });
  });

  test('Received (code 13) is decided later by an AUTHORISATION notification', async () => {
    const res = await checkout.PaymentsApi.payments(paymentRequest({ holderName: 'PENDING' }));
    expect(res.resultCode).toBe('Received');
    const auth = await inbox.event('AUTHORISATION', res.pspReference!);
    expect(auth.success).toBe('true');
    expect(sim.payments.get(res.pspReference!)?.status).toBe('authorised');
  });

  test('3-D Secure: RedirectShopper to the simulator page, then /payments/details', async () => {
    const res = await checkout.PaymentsApi.payments(paymentRequest({ number: '4917610000000000' }));
    expect(res.resultCode).toBe('RedirectShopper');
    const action = res.action as { type: string; url: string; method: string };
    expect(action).toMatchObject({ type: 'redirect', method: 'GET' });
    expect(action.url.startsWith(`${base}/_sim/3ds/`)).toBe(true);
    const page = await fetch(action.url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('3-D Secure');
    const back = await fetch(`${action.url}/complete?outcome=authenticated`, { redirect: 'manual' });
    expect(back.status).toBe(302);
    const location = new URL(back.headers.get('location')!);
    expect(location.origin + location.pathname).toBe('https://shop.example/return');
    const redirectResult = location.searchParams.get('redirectResult')!;
    const done = await checkout.PaymentsApi.paymentsDetails({ details: { redirectResult } });
    expect(done).toMatchObject({ resultCode: 'Authorised', pspReference: res.pspReference });

    const failed = await checkout.PaymentsApi.payments(paymentRequest({ number: '5454545454545454' }));
    const token = (failed.action as { url: string }).url.split('/').pop()!;
    const answer = (await (
      await fetch(`${base}/_sim/3ds/${token}`, {
        method: 'POST',
        body: JSON.stringify({ outcome: 'failed' }),
      })
    ).json()) as { redirectResult: string };
    const refused = await checkout.PaymentsApi.paymentsDetails({
      details: { redirectResult: answer.redirectResult },
    });
    expect(refused).toMatchObject({ resultCode: 'Refused', refusalReasonCode: '11' });
  });

  test('a stored card pays again by storedPaymentMethodId for its shopper only', async () => {
    const first = await checkout.PaymentsApi.payments(
      paymentRequest({}, { shopperReference: 'shopper-1', storePaymentMethod: true }),
    );
    const id = first.additionalData?.['tokenization.storedPaymentMethodId'];
    expect(id).toMatch(/^[0-9A-Z]{16}$/);
    const again = await checkout.PaymentsApi.payments({
      ...paymentRequest(),
      paymentMethod: { type: SCHEME, storedPaymentMethodId: id },
      shopperReference: 'shopper-1',
      shopperInteraction: Types.checkout.PaymentRequest.ShopperInteractionEnum.ContAuth,
      recurringProcessingModel:
        Types.checkout.PaymentRequest.RecurringProcessingModelEnum.UnscheduledCardOnFile,
    });
    expect(again).toMatchObject({ resultCode: 'Authorised', additionalData: { cardSummary: '1111' } });
    const other = await apiError(
      checkout.PaymentsApi.payments({
        ...paymentRequest(),
        paymentMethod: { type: SCHEME, storedPaymentMethodId: id },
        shopperReference: 'shopper-2',
      }),
    );
    expect(other).toMatchObject({ statusCode: 422, errorCode: '803' });
  });

  test('captureDelayHours captures automatically after the delay', async () => {
    const res = await checkout.PaymentsApi.payments(paymentRequest({}, { captureDelayHours: 2 }));
    expect(sim.payments.get(res.pspReference!)?.capturedValue).toBe(0);
    await sim.settled();
    expect(sim.payments.get(res.pspReference!)?.capturedValue).toBe(1000);
  });
});

describe('modifications', () => {
  test('manual capture: a partial capture releases the rest; refunds never exceed the captured amount', async () => {
    const auth = await checkout.PaymentsApi.payments(paymentRequest({}, manual));
    const psp = auth.pspReference!;
    const capture = await checkout.ModificationsApi.captureAuthorisedPayment(psp, {
      merchantAccount: MERCHANT,
      amount: { currency: 'EUR', value: 600 },
      reference: 'capture-1',
    });
    expect(capture).toMatchObject({
      status: 'received',
      paymentPspReference: psp,
      merchantAccount: MERCHANT,
      reference: 'capture-1',
      amount: { currency: 'EUR', value: 600 },
    });
    expect(capture.pspReference).not.toBe(psp);
    const captured = await inbox.event('CAPTURE', capture.pspReference);
    expect(captured).toMatchObject({
      success: 'true',
      originalReference: psp,
      merchantReference: 'capture-1',
    });
    expect(captured.amount).toEqual({ currency: 'EUR', value: 600 });

    const second = await checkout.ModificationsApi.captureAuthorisedPayment(psp, {
      merchantAccount: MERCHANT,
      amount: { currency: 'EUR', value: 400 },
    });
    expect((await inbox.event('CAPTURE', second.pspReference)).success).toBe('false');

    const tooMuch = await checkout.ModificationsApi.refundCapturedPayment(psp, {
      merchantAccount: MERCHANT,
      amount: { currency: 'EUR', value: 700 },
    });
    expect(tooMuch.status).toBe('received');
    expect(await inbox.event('REFUND', tooMuch.pspReference)).toMatchObject({
      success: 'false',
      reason: 'Insufficient balance on payment',
    });
    const refund = await checkout.ModificationsApi.refundCapturedPayment(psp, {
      merchantAccount: MERCHANT,
      amount: { currency: 'EUR', value: 600 },
      reference: 'refund-1',
    });
    expect(await inbox.event('REFUND', refund.pspReference)).toMatchObject({
      success: 'true',
      merchantReference: 'refund-1',
    });
  });

  test('cancel before capture succeeds; after capture it fails', async () => {
    const auth = await checkout.PaymentsApi.payments(paymentRequest({}, manual));
    const cancel = await checkout.ModificationsApi.cancelAuthorisedPaymentByPspReference(auth.pspReference!, {
      merchantAccount: MERCHANT,
    });
    expect(cancel).toMatchObject({ status: 'received', paymentPspReference: auth.pspReference });
    expect((await inbox.event('CANCELLATION', cancel.pspReference)).success).toBe('true');
    const late = await checkout.ModificationsApi.captureAuthorisedPayment(auth.pspReference!, {
      merchantAccount: MERCHANT,
      amount: { currency: 'EUR', value: 1000 },
    });
    expect((await inbox.event('CAPTURE', late.pspReference)).success).toBe('false');

    const autoCaptured = await checkout.PaymentsApi.payments(paymentRequest());
    const tooLate = await checkout.ModificationsApi.cancelAuthorisedPaymentByPspReference(
      autoCaptured.pspReference!,
      {
        merchantAccount: MERCHANT,
      },
    );
    expect((await inbox.event('CANCELLATION', tooLate.pspReference)).success).toBe('false');
  });

  test('reversal cancels an uncaptured payment and refunds a captured one', async () => {
    const open = await checkout.PaymentsApi.payments(paymentRequest({}, manual));
    const r1 = await checkout.ModificationsApi.refundOrCancelPayment(open.pspReference!, {
      merchantAccount: MERCHANT,
    });
    expect(
      (await inbox.event('CANCEL_OR_REFUND', r1.pspReference)).additionalData['modification.action'],
    ).toBe('cancel');
    const captured = await checkout.PaymentsApi.payments(paymentRequest());
    const r2 = await checkout.ModificationsApi.refundOrCancelPayment(captured.pspReference!, {
      merchantAccount: MERCHANT,
    });
    expect(
      (await inbox.event('CANCEL_OR_REFUND', r2.pspReference)).additionalData['modification.action'],
    ).toBe('refund');
  });

  test('holder names "capture failed" and "refund failed": success, then …_FAILED', async () => {
    const auth = await checkout.PaymentsApi.payments(
      paymentRequest({ holderName: 'capture failed' }, manual),
    );
    const capture = await checkout.ModificationsApi.captureAuthorisedPayment(auth.pspReference!, {
      merchantAccount: MERCHANT,
      amount: { currency: 'EUR', value: 1000 },
    });
    expect((await inbox.event('CAPTURE', capture.pspReference)).success).toBe('true');
    expect((await inbox.event('CAPTURE_FAILED', capture.pspReference)).originalReference).toBe(
      auth.pspReference,
    );

    const paid = await checkout.PaymentsApi.payments(paymentRequest({ holderName: 'refund failed' }));
    const refund = await checkout.ModificationsApi.refundCapturedPayment(paid.pspReference!, {
      merchantAccount: MERCHANT,
      amount: { currency: 'EUR', value: 500 },
    });
    expect((await inbox.event('REFUND', refund.pspReference)).success).toBe('true');
    await inbox.event('REFUND_FAILED', refund.pspReference);
    expect(sim.payments.get(paid.pspReference!)?.refundedValue).toBe(0);
  });
});

describe('errors, idempotency and faults', () => {
  test("errors come in Adyen's shape and statuses", async () => {
    const badKey = new CheckoutAPI(
      new Client({ apiKey: 'wrong', environment: EnvironmentEnum.TEST }, transport(base)),
    );
    const e401 = await apiError(badKey.PaymentsApi.payments(paymentRequest()));
    expect(e401.statusCode).toBe(401);
    expect(JSON.parse(e401.responseBody!)).toMatchObject({
      status: 401,
      errorCode: '000',
      errorType: 'security',
    });
    expect(
      await apiError(checkout.PaymentsApi.payments({ ...paymentRequest(), merchantAccount: 'Other' })),
    ).toMatchObject({
      statusCode: 403,
      errorCode: '901',
    });
    const e422 = await apiError(checkout.PaymentsApi.payments({ ...paymentRequest(), reference: '' }));
    expect(JSON.parse(e422.responseBody!)).toMatchObject({
      status: 422,
      errorCode: '130',
      errorType: 'validation',
    });
    expect(JSON.parse(e422.responseBody!).pspReference).toMatch(/^[0-9A-Z]{16}$/);
    // Not a valid card number (Luhn), and not a test card.
    expect(
      await apiError(checkout.PaymentsApi.payments(paymentRequest({ number: '4111111111111112' }))),
    ).toMatchObject({
      statusCode: 422,
      errorCode: '101',
    });
    const unknown = await apiError(
      checkout.ModificationsApi.captureAuthorisedPayment('NOSUCHPAYMENT000', {
        merchantAccount: MERCHANT,
        amount: { currency: 'EUR', value: 1 },
      }),
    );
    expect(unknown).toMatchObject({ statusCode: 422, errorCode: '167' });
  });

  test('Idempotency-Key: same body replays the first answer; another body is refused', async () => {
    const key = randomUUID();
    const req = paymentRequest();
    const before = sim.stats().payments;
    const a = await checkout.PaymentsApi.payments(req, { idempotencyKey: key });
    const b = await checkout.PaymentsApi.payments(req, { idempotencyKey: key });
    expect(b.pspReference).toBe(a.pspReference);
    expect(sim.stats().payments).toBe(before + 1);
    const other = await apiError(
      checkout.PaymentsApi.payments(
        { ...req, amount: { currency: 'EUR', value: 999 } },
        { idempotencyKey: key },
      ),
    );
    expect(other).toMatchObject({ statusCode: 422, errorCode: '704' });
  });

  test('fault modes: error and down process nothing; slow answers; the HTTP control validates', async () => {
    const before = sim.stats().payments;
    sim.faults.set({ mode: 'error', count: 1 });
    expect(await apiError(checkout.PaymentsApi.payments(paymentRequest()))).toMatchObject({
      statusCode: 500,
    });
    sim.faults.set({ mode: 'down', count: 1 });
    await expect(checkout.PaymentsApi.payments(paymentRequest())).rejects.toThrow();
    expect(sim.stats().payments).toBe(before);
    sim.faults.set({ mode: 'slow', latencyMs: 20 });
    expect((await checkout.PaymentsApi.payments(paymentRequest())).resultCode).toBe('Authorised');
    sim.faults.set({ mode: 'error', rate: 0 });
    expect((await checkout.PaymentsApi.payments(paymentRequest())).resultCode).toBe('Authorised');

    const post = (b: unknown) => fetch(`${base}/_sim/faults`, { method: 'POST', body: JSON.stringify(b) });
    expect((await post({ mode: 'sideways' })).status).toBe(400);
    expect((await post({ mode: 'error', rate: 2 })).status).toBe(400);
    expect(await (await post({ mode: 'down', rate: 0.5, latencyMs: 10 })).json()).toEqual({
      mode: 'down',
      rate: 0.5,
      latencyMs: 10,
    });
    expect(await (await fetch(`${base}/_sim/faults`, { method: 'DELETE' })).json()).toEqual({
      mode: 'none',
      rate: 1,
    });
  });

  test('timeout-after-processing: processed but unanswered; the retry with the same key gets the result', async () => {
    const key = randomUUID();
    const req = paymentRequest();
    sim.faults.set({ mode: 'timeout-after-processing', count: 1 });
    const aborter = new AbortController();
    const processed = new Promise<void>((resolve) =>
      madeWaiters.push({
        pred: (i) => i.eventCode === 'AUTHORISATION' && i.merchantReference === req.reference,
        resolve,
      }),
    );
    const hung = fetch(`${base}/v72/payments`, {
      method: 'POST',
      headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json', 'Idempotency-Key': key },
      body: JSON.stringify(req),
      signal: aborter.signal,
    });
    await processed;
    aborter.abort();
    await expect(hung).rejects.toThrow();
    const retry = await checkout.PaymentsApi.payments(req, { idempotencyKey: key });
    const original = made.find(
      (i) => i.eventCode === 'AUTHORISATION' && i.merchantReference === req.reference,
    )!;
    expect(retry.pspReference).toBe(original.pspReference);
  });
});
