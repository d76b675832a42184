/**
 * Checkout API `/payments` and `/payments/details` (v72), card payments only.
 *
 * - `paymentMethod`: `{type:"scheme", number, expiryMonth, expiryYear, cvc, holderName}` with one
 *   of Adyen's test cards (test-cards.ts), the same with `encryptedCardNumber: "test_<number>"`
 *   etc. (Adyen's unencrypted test values), or `{type:"scheme", storedPaymentMethodId}` with the
 *   `shopperReference` it was stored for. `storePaymentMethod: true` (with `shopperReference`)
 *   stores the card and answers its id in `additionalData` (`tokenization.storedPaymentMethodId`,
 *   `recurring.recurringDetailReference`).
 * - Capture: `additionalData.manualCapture: "true"` → manual; otherwise `captureDelayHours`
 *   (0: immediate, N: automatic capture after N hours); otherwise the merchant account's setting
 *   (`captureMode` option, default immediate, as a new Adyen merchant account).
 * - Outcomes: `Authorised`, `Refused`/`Error` with `refusalReason` and `refusalReasonCode`,
 *   `Received` (code 13: the outcome follows as an AUTHORISATION notification), `RedirectShopper`
 *   (3-D Secure card; `ChallengeShopper` with a `threeDS2` action when the request asks for native
 *   3DS2) whose page is served by the simulator, then `/payments/details`.
 * - Every final outcome is also sent as an AUTHORISATION notification.
 */
import { randomBytes } from 'node:crypto';
import {
  C,
  AdyenError,
  errors,
  type AuthOutcome,
  type CaptureMode,
  type CardInfo,
  type Json,
  type Magic,
  type Payment,
  type SimContext,
  type StoredMethod,
} from './model.ts';
import type { Modifications } from './modifications.ts';
import {
  GENERIC_REFUSAL,
  TEST_CARDS,
  TEST_EXPIRY,
  cardInfo,
  findTestCard,
  luhnValid,
  readTestValues,
  responseByCode,
  type TestCard,
  type TestResponse,
} from './test-cards.ts';

export interface PaymentsOptions {
  /** The merchant account's capture setting (default immediate). */
  captureMode?: 'immediate' | 'manual';
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const testValue = (v: unknown): string | undefined => {
  const s = str(v);
  if (s === undefined) return undefined;
  if (!s.startsWith('test_')) throw errors.undecryptable();
  return s.slice(5);
};

export class Payments {
  private readonly ctx: SimContext;
  private readonly mods: Modifications;
  private readonly opts: PaymentsOptions;

  constructor(ctx: SimContext, mods: Modifications, opts: PaymentsOptions = {}) {
    this.ctx = ctx;
    this.mods = mods;
    this.opts = opts;
    ctx.timers.on<{ psp: string }>('pending-authorisation', ({ psp }) => {
      this.resolvePending(psp, 'authorised');
    });
  }

  get(psp: string): Payment | undefined {
    return this.ctx.store.get<Payment>(C.payment, psp);
  }

  /** POST /payments. */
  create(body: Json): Json {
    const { ctx } = this;
    const merchantAccount = this.merchant(body.merchantAccount);
    const amount = body.amount;
    if (!isObject(amount) || amount.value === undefined) throw errors.noAmount();
    if (typeof amount.value !== 'number' || !Number.isInteger(amount.value) || amount.value < 0)
      throw errors.invalidAmount();
    if (typeof amount.currency !== 'string' || !/^[A-Z]{3}$/.test(amount.currency))
      throw errors.unsupportedCurrency();
    const reference = str(body.reference);
    if (!reference) throw errors.noReference();
    const pm = body.paymentMethod;
    if (!isObject(pm)) throw errors.required('paymentMethod');
    const type = str(pm.type) ?? 'scheme';
    if (type !== 'scheme' && type !== 'card') throw errors.unsupportedMethod(type);
    const additional = isObject(body.additionalData) ? body.additionalData : {};
    const shopperReference = str(body.shopperReference);

    let card: CardInfo;
    let magic: Magic;
    let threeDS: boolean;
    let refusal: TestResponse | undefined;
    let raw: string | undefined;
    let storedId: string | undefined;
    const storedRef = str(pm.storedPaymentMethodId) ?? str(pm.recurringDetailReference);
    if (storedRef) {
      const stored = ctx.store.get<StoredMethod>(C.storedMethod, storedRef);
      if (!stored || stored.shopperReference !== shopperReference) throw errors.storedNotFound();
      card = stored.card;
      magic = stored.magic;
      const test = readTestValues(stored.card.holderName, additional.RequestedTestAcquirerResponseCode);
      refusal = test.response;
      raw = test.raw;
      storedId = stored.id;
      const contAuth =
        body.shopperInteraction === 'ContAuth' ||
        body.recurringProcessingModel === 'Subscription' ||
        body.recurringProcessingModel === 'UnscheduledCardOnFile';
      threeDS = !contAuth && findTestCardByInfo(card)?.threeDS === true;
    } else {
      const number = str(pm.number) ?? testValue(pm.encryptedCardNumber);
      if (!number) throw errors.required('paymentMethod.number');
      const month = str(pm.expiryMonth) ?? testValue(pm.encryptedExpiryMonth);
      const year = str(pm.expiryYear) ?? testValue(pm.encryptedExpiryYear);
      const cvc = str(pm.cvc) ?? testValue(pm.encryptedSecurityCode);
      if (!luhnValid(number)) throw errors.invalidCard();
      const test = findTestCard(number);
      if (!test) throw errors.invalidCard();
      if (!month || !year || !/^\d{1,2}$/.test(month) || !/^\d{4}$/.test(year) || +month < 1 || +month > 12)
        throw errors.invalidExpiry();
      const holderName = str(pm.holderName);
      card = cardInfo(test, month.padStart(2, '0'), year, holderName);
      const values = readTestValues(holderName, additional.RequestedTestAcquirerResponseCode);
      magic = values.magic;
      refusal = values.response;
      raw = values.raw;
      threeDS = test.threeDS;
      // Adyen's test platform refuses a test card with another expiry or CVC (generic refusal).
      if (
        card.expiryMonth !== TEST_EXPIRY.month ||
        year !== TEST_EXPIRY.year ||
        (cvc !== undefined && cvc !== test.cvc)
      )
        refusal = GENERIC_REFUSAL;
    }

    const manual = additional.manualCapture === 'true' || additional.manualCapture === true;
    let captureMode: CaptureMode = this.opts.captureMode ?? 'immediate';
    let captureDelayHours: number | undefined;
    if (manual) captureMode = 'manual';
    else if (typeof body.captureDelayHours === 'number') {
      captureDelayHours = body.captureDelayHours;
      captureMode = captureDelayHours > 0 ? 'delayed' : 'immediate';
    }

    const payment: Payment = {
      pspReference: ctx.newPsp(),
      merchantAccount,
      merchantReference: reference,
      amount: { value: amount.value, currency: amount.currency },
      status: 'authorised',
      resultCode: 'Authorised',
      card,
      magic,
      captureMode,
      ...(captureDelayHours !== undefined ? { captureDelayHours } : {}),
      authorisedValue: 0,
      capturedValue: 0,
      refundedValue: 0,
      captures: 0,
      cancelled: false,
      ...(shopperReference ? { shopperReference } : {}),
      ...(storedId ? { storedPaymentMethodId: storedId } : {}),
      ...(refusal ? { test: { code: refusal.code, raw } } : {}),
      createdAt: ctx.now(),
    };

    const wantsStore =
      body.storePaymentMethod === true || (body.enableRecurring === true && shopperReference !== undefined);
    if (wantsStore && !shopperReference) throw errors.required('shopperReference');

    if (threeDS && refusal?.code !== 13) {
      const returnUrl = str(body.returnUrl);
      if (!returnUrl) throw errors.required('returnUrl');
      const threeDSRequest = isObject(body.authenticationData)
        ? body.authenticationData.threeDSRequestData
        : undefined;
      const native = isObject(threeDSRequest) && threeDSRequest.nativeThreeDS === 'preferred';
      const token = randomBytes(12).toString('base64url');
      payment.status = 'redirect';
      payment.resultCode = native ? 'ChallengeShopper' : 'RedirectShopper';
      payment.redirect = { token, returnUrl, native };
      if (wantsStore) payment.storeRequested = true;
      ctx.store.put(C.redirect, token, { psp: payment.pspReference });
      ctx.store.put(C.payment, payment.pspReference, payment);
      return this.response(payment);
    }

    this.decide(payment, refusal, raw);
    if (wantsStore && payment.status === 'authorised') this.storeMethod(payment);
    return this.finish(payment);
  }

  /** POST /payments/details: completes a 3-D Secure step. */
  details(body: Json): Json {
    const details = body.details;
    if (!isObject(details)) throw errors.required('details');
    const result = str(details.redirectResult) ?? str(details.threeDSResult);
    if (!result) throw errors.required('details.redirectResult');
    const decoded = decodeResult(result);
    const ref = decoded ? this.ctx.store.get<{ psp: string }>(C.redirect, decoded.token) : undefined;
    const payment = ref ? this.get(ref.psp) : undefined;
    if (!decoded || !payment?.redirect || payment.redirect.outcome !== decoded.outcome)
      throw new AdyenError(422, '000', 'Invalid payload provided', 'validation');
    if (payment.status !== 'redirect') return this.response(payment); // already completed
    if (decoded.outcome === 'authenticated') {
      const test = payment.test;
      this.decide(payment, test ? responseByCode(test.code) : undefined, test?.raw);
      if (payment.storeRequested && authorised(payment)) this.storeMethod(payment);
    } else if (decoded.outcome === 'failed') {
      this.decide(payment, responseByCode(11), undefined);
    } else {
      payment.status = 'cancelled';
      payment.resultCode = 'Cancelled';
    }
    return this.finish(payment);
  }

  /** The shopper's answer on the 3-D Secure page: returns the `redirectResult` for /payments/details. */
  authenticate(tokenOrPsp: string, outcome: AuthOutcome): { redirectResult: string; returnUrl: string } {
    const ref = this.ctx.store.get<{ psp: string }>(C.redirect, tokenOrPsp);
    const payment = this.get(ref?.psp ?? tokenOrPsp);
    if (!payment?.redirect) throw new Error(`no payment waiting for authentication: ${tokenOrPsp}`);
    if (payment.status === 'redirect') {
      payment.redirect.outcome = outcome;
      this.ctx.store.put(C.payment, payment.pspReference, payment);
    }
    const done = payment.redirect.outcome ?? outcome;
    return {
      redirectResult: encodeResult(payment.redirect.token, done),
      returnUrl: payment.redirect.returnUrl,
    };
  }

  /** Decides a Received (pending) payment now (normally after `delays.pendingAuthorisation`). */
  resolvePending(psp: string, outcome: 'authorised' | 'refused'): Payment {
    const payment = this.get(psp);
    if (!payment) throw new Error(`no payment ${psp}`);
    if (payment.status !== 'received') return payment;
    for (const t of this.ctx.timers.list<{ psp: string }>('pending-authorisation'))
      if (t.data.psp === psp) this.ctx.timers.cancel(t.id);
    this.decide(payment, outcome === 'refused' ? GENERIC_REFUSAL : undefined, undefined, true);
    this.finish(payment);
    return payment;
  }

  // ----------------------------------------------------------------------------------------------

  private merchant(v: unknown): string {
    const m = str(v);
    if (!m) throw errors.required('merchantAccount');
    if (!this.ctx.merchantAccounts.includes(m)) throw errors.invalidMerchant();
    return m;
  }

  /** Sets the authorisation outcome on the payment. */
  private decide(
    payment: Payment,
    refusal: TestResponse | undefined,
    raw: string | undefined,
    final = false,
  ): void {
    if (refusal?.resultCode === 'Received' && !final) {
      payment.status = 'received';
      payment.resultCode = 'Received';
      return;
    }
    if (!refusal || refusal.resultCode === 'Received' || refusal.resultCode === 'Authorised') {
      payment.status = 'authorised';
      payment.resultCode = 'Authorised';
      payment.authCode = String(100000 + (randomBytes(3).readUIntBE(0, 3) % 900000));
      payment.authorisedValue = payment.amount.value;
      return;
    }
    payment.status = refusal.resultCode === 'Error' ? 'error' : 'refused';
    payment.resultCode = refusal.resultCode;
    payment.refusalReason = refusal.refusalReason;
    payment.refusalReasonCode = String(refusal.code);
    payment.refusalReasonRaw = raw ?? refusal.holderName;
  }

  /** Stores the payment, notifies, captures when automatic; returns the response. */
  private finish(payment: Payment): Json {
    const { ctx } = this;
    ctx.store.put(C.payment, payment.pspReference, payment);
    if (payment.status === 'received') {
      ctx.timers.after('pending-authorisation', ctx.delays.pendingAuthorisation, {
        psp: payment.pspReference,
      });
      return this.response(payment);
    }
    if (payment.status !== 'cancelled') this.notifyAuthorisation(payment);
    if (payment.status === 'authorised') {
      if (payment.captureMode === 'immediate') this.mods.automaticCapture(payment);
      else if (payment.captureMode === 'delayed')
        ctx.timers.after('delayed-capture', (payment.captureDelayHours ?? 0) * 3600_000, {
          psp: payment.pspReference,
        });
    }
    return this.response(payment);
  }

  private storeMethod(payment: Payment): void {
    const id = this.ctx.newPsp();
    const method: StoredMethod = {
      id,
      shopperReference: payment.shopperReference!,
      card: payment.card,
      magic: payment.magic,
      createdAt: this.ctx.now(),
    };
    this.ctx.store.put(C.storedMethod, id, method);
    payment.storedPaymentMethodId = id;
    payment.storedNow = true;
  }

  private notifyAuthorisation(payment: Payment): void {
    const ok = payment.status === 'authorised';
    const c = payment.card;
    this.ctx.notify({
      eventCode: 'AUTHORISATION',
      success: ok,
      pspReference: payment.pspReference,
      merchantAccountCode: payment.merchantAccount,
      merchantReference: payment.merchantReference,
      amount: payment.amount,
      paymentMethod: c.brand,
      reason: ok
        ? `${payment.authCode}:${c.last4}:${c.expiryMonth}/${c.expiryYear}`
        : (payment.refusalReason ?? ''),
      ...(ok ? { operations: ['CANCEL', 'CAPTURE', 'REFUND'] } : {}),
      additionalData: {
        ...this.cardData(payment),
        ...(ok ? {} : { refusalReasonCode: payment.refusalReasonCode ?? '' }),
      },
    });
  }

  private cardData(payment: Payment): Record<string, string> {
    const c = payment.card;
    const out: Record<string, string> = {
      cardBin: c.bin,
      cardSummary: c.last4,
      cardPaymentMethod: c.brand,
      paymentMethod: c.brand,
      paymentMethodVariant: c.variant,
      cardIssuingCountry: c.issuerCountry,
      issuerCountry: c.issuerCountry,
      fundingSource: c.fundingSource,
      expiryDate: `${Number(c.expiryMonth)}/${c.expiryYear}`,
    };
    if (c.holderName) out.cardHolderName = c.holderName;
    if (payment.authCode && payment.status === 'authorised') out.authCode = payment.authCode;
    if (payment.shopperReference) out.shopperReference = payment.shopperReference;
    return out;
  }

  /** The PaymentResponse for a payment's current state. */
  response(payment: Payment): Json {
    const additionalData: Record<string, string> = {
      ...this.cardData(payment),
      merchantReference: payment.merchantReference,
    };
    if (payment.status === 'authorised') {
      additionalData.authorisedAmountValue = String(payment.amount.value);
      additionalData.authorisedAmountCurrency = payment.amount.currency;
    }
    if (payment.refusalReasonRaw && (payment.status === 'refused' || payment.status === 'error'))
      additionalData.refusalReasonRaw = payment.refusalReasonRaw;
    if (payment.storedNow && payment.storedPaymentMethodId) {
      additionalData['recurring.recurringDetailReference'] = payment.storedPaymentMethodId;
      additionalData['recurring.shopperReference'] = payment.shopperReference ?? '';
      additionalData['tokenization.storedPaymentMethodId'] = payment.storedPaymentMethodId;
      additionalData['tokenization.shopperReference'] = payment.shopperReference ?? '';
      additionalData['tokenization.store.operationType'] = 'created';
    }
    const out: Json = {
      additionalData,
      amount: payment.amount,
      merchantReference: payment.merchantReference,
      paymentMethod: { brand: payment.card.brand, type: 'scheme' },
      pspReference: payment.pspReference,
      resultCode: payment.resultCode,
    };
    if (payment.refusalReason) {
      out.refusalReason = payment.refusalReason;
      out.refusalReasonCode = payment.refusalReasonCode;
    }
    if (payment.status === 'redirect' && payment.redirect) {
      const url = `${this.ctx.baseUrl()}/_sim/3ds/${payment.redirect.token}`;
      out.action = payment.redirect.native
        ? {
            paymentMethodType: 'scheme',
            type: 'threeDS2',
            subtype: 'challenge',
            token: payment.redirect.token,
            url,
          }
        : { paymentMethodType: 'scheme', type: 'redirect', method: 'GET', url };
    }
    return out;
  }
}

/** Read again after `decide` (TypeScript keeps the narrowing of the status from before it). */
const authorised = (payment: Payment): boolean => payment.status === 'authorised';

const TEST_CARDS_BY_PARTS = new Map(
  TEST_CARDS.map((c) => [`${c.number.slice(0, 6)}:${c.number.slice(-4)}`, c]),
);

/** The test card a stored card came from (BIN and last four digits identify it in the table). */
function findTestCardByInfo(card: CardInfo): TestCard | undefined {
  return TEST_CARDS_BY_PARTS.get(`${card.bin}:${card.last4}`);
}

const OUTCOME_CODES: Record<AuthOutcome, string> = { authenticated: 'Y', failed: 'N', cancelled: 'C' };

/** An opaque-looking redirectResult carrying the redirect token and the shopper's answer. */
function encodeResult(token: string, outcome: AuthOutcome): string {
  return Buffer.from(`${token}.${OUTCOME_CODES[outcome]}`).toString('base64url');
}

function decodeResult(result: string): { token: string; outcome: AuthOutcome } | undefined {
  const s = Buffer.from(result, 'base64url').toString('utf8');
  const dot = s.lastIndexOf('.');
  if (dot < 1) return undefined;
  const code = s.slice(dot + 1);
  const outcome = (Object.keys(OUTCOME_CODES) as AuthOutcome[]).find((o) => OUTCOME_CODES[o] === code);
  return outcome ? { token: s.slice(0, dot), outcome } : undefined;
}
