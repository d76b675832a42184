/**
 * The Adyen adapter: paystep's `ProcessorAdapter` (lambdas/connectors/types.ts, unchanged) on
 * `@adyen/api-library`'s `Client` and Checkout API (`PaymentsApi`, `ModificationsApi`, v72).
 * docs/connectors.md describes the decisions below for operators and connector authors.
 *
 * authorize — `POST /payments`: `reference` = the paystep payment id, the merchant account, the
 *   amount (converted to Adyen's minor units, amounts.ts), the payment method (a paystep test id
 *   mapped by test-methods.ts in test mode; `adyen:<storedPaymentMethodId>` with the customer as
 *   `shopperReference`), `Idempotency-Key` = the caller's key (hashed to Adyen's 64-character limit
 *   when longer). Outcomes by `resultCode`: Authorised → `authorized` (manual) or `captured`
 *   (automatic); Refused / Error / Cancelled → `declined` (declines.ts); RedirectShopper /
 *   IdentifyShopper / ChallengeShopper → `requires_action`; Pending / Received → `processing`.
 *   PartiallyAuthorised (paystep never asks for partial authorisation) and result codes of flows
 *   paystep does not start are thrown as `AdyenUnexpectedResult`, a ProcessorUnavailableError, so
 *   the payment is never failed while Adyen may hold funds: the workflow checks, then flags it.
 *   A 422 about the card data (101 invalid number, 102 unknown brand, 103 CVC length) is a decline.
 *
 * Capture — Adyen's model: capture is a merchant-account setting (immediate, delayed, manual) that
 *   a request overrides. paystep decides per payment, so every request says it: manual →
 *   `additionalData.manualCapture = "true"`; automatic → `captureDelayHours: 0` (captured at once
 *   whatever the account's delay). An automatic capture is reported `captured` with the full amount:
 *   Adyen captures it without a further request (and without a CAPTURE webhook unless enabled).
 *
 * Modifications are asynchronous — `/payments/{psp}/captures|cancels|refunds` answer `received`;
 *   the outcome comes by webhook (CAPTURE / CAPTURE_FAILED, CANCELLATION, REFUND / REFUND_FAILED).
 *   Capture and cancel return their result with `pending: true` and Adyen's modification reference
 *   (`ModificationOutcome`, connectors/modifications.ts): the payment workflow keeps the payment
 *   authorized with the modification pending and waits for the `captured` / `capture_failed` /
 *   `canceled` fact (docs/states.md, "Pending capture and cancel"). Refunds fit the interface as
 *   they are: `status: 'pending'`, settled by the REFUND webhook.
 *
 * retrieve — Adyen has no "get payment" API (`/payments/details` only completes an action the
 *   shopper took; replaying `/payments` with the same key answers only the authorisation). So the
 *   connector keeps no state and answers `retrieve` / `retrieveRefund` from the notification facts
 *   paystep stored, through an injected `AdyenStateSource`, folded by facts.ts `paymentState`.
 *   Without a source, or without any fact for the payment, `retrieve` throws ProcessorRequestError
 *   `not_supported` (callers then flag for attention; nothing is guessed). `retrieveRefund` of a
 *   refund with no fact yet is `pending` (Adyen accepted it; its outcome has not arrived).
 *   Capture and refund also need the payment's currency (Adyen's modification amounts carry it and
 *   the interface passes only a number): the source provides it.
 */
import { createHash } from 'node:crypto';
import { CheckoutAPI, Client, EnvironmentEnum, type Types } from '@adyen/api-library';
import {
  ProcessorRequestError,
  ProcessorUnavailableError,
  type AuthorizeRequest,
  type AuthorizeResult,
  type CancelResult,
  type CaptureResult,
  type Failure,
  type ProcessorAdapter,
  type RefundResult,
  type RetrieveResult,
} from '../../connectors/types.ts';
import { paymentState, refundState, type ConnectorFact } from '../facts.ts';
import { fromAdyenAmount, toAdyenAmount } from './amounts.ts';
import {
  cardFromAdditionalData,
  mapAdyenDecline,
  mapAdyenRefusal,
  type AdyenCardAnalytics,
  type AdyenFailure,
} from './declines.ts';
import { ADYEN_TEST_METHODS, adyenTestPaymentMethod, isTestMethodId } from './test-methods.ts';
import { AdyenApiError, AdyenTransport, adyenError } from './transport.ts';

type PaymentRequest = Types.checkout.PaymentRequest;
type PaymentResponse = Types.checkout.PaymentResponse;

const NAME = 'adyen';
/** Adyen's limit on an `Idempotency-Key`. */
const MAX_KEY = 64;
/** Prefix of a live Adyen token in `payment_method`: `adyen:<storedPaymentMethodId>`. */
export const STORED_PREFIX = 'adyen:';

/** What the connector needs from paystep's own records (it keeps no state of its own). */
export interface AdyenStateSource {
  /** The paystep payment behind a pspReference: its currency and amount, and how it is captured. */
  payment(
    pspReference: string,
  ): Promise<
    { paymentId: string; amount: number; currency: string; captureMethod: 'automatic' | 'manual' } | undefined
  >;
  /**
   * The verified notification facts stored for a pspReference: facts whose `reference` is it, and
   * facts of its refunds and disputes (`paymentReference`). Any order.
   */
  facts(pspReference: string): Promise<readonly ConnectorFact[]>;
}

export interface AdyenAdapterOptions {
  /** The API credential's key (`x-api-key`). */
  apiKey: string;
  merchantAccount: string;
  /** `test` (default) accepts paystep's test ids; `live` only `adyen:` tokens. */
  environment?: 'test' | 'live';
  /** Live only: the prefix of the merchant's live endpoints (Customer Area → Developers → API URLs). */
  liveEndpointUrlPrefix?: string;
  /** Another API origin (the simulator), e.g. `http://127.0.0.1:12112`; unset: Adyen. */
  apiBase?: string;
  /** Per-request timeout in ms (default 10 000). */
  timeoutMs?: number;
  /**
   * Where the shopper returns after a redirect (3-D Secure). Adyen requires one on every payment.
   * `{payment_id}` is replaced by the paystep payment id, e.g.
   * `https://api.example.com/v1/payments/{payment_id}/return` (paystep's return route).
   */
  returnUrl?: string;
  /** paystep's records for capture, refund and retrieve (see AdyenStateSource). */
  state?: AdyenStateSource;
}

/** A capture or cancel Adyen accepted (`received`); its outcome comes by webhook (ModificationOutcome). */
export interface AdyenModificationResult {
  pending: true;
  /** Adyen's pspReference of the modification itself (webhooks carry it as `pspReference`). */
  modificationReference: string;
}

/** `AuthorizeResult` with the card's analytics fields (declines.ts), kept as the payment's `card_analytics`. */
export type AdyenAuthorizeResult = AuthorizeResult & { analytics?: AdyenCardAnalytics };

/** Adyen answered with a result paystep did not ask for: the outcome is not a decline; check, then flag. */
export class AdyenUnexpectedResult extends ProcessorUnavailableError {
  readonly resultCode?: string;
  constructor(message: string, resultCode?: string) {
    super(NAME, message);
    this.resultCode = resultCode;
  }
}

const DEFAULT_RETURN_URL = 'https://localhost/paystep/adyen/return';
/** 422 error codes about the card data itself: a decline, not a bad request. */
const CARD_DATA_ERRORS: Readonly<Record<string, string>> = { '101': '8', '102': '8', '103': '24' };

/**
 * Adyen allows 64 characters in a header; a longer key, or one with characters a header cannot
 * carry, is replaced by a digest of itself (the same key always gives the same digest).
 */
export function adyenIdempotencyKey(key: string): string {
  if (key.length <= MAX_KEY && /^[\x21-\x7e]+$/.test(key)) return key;
  return `ps1-${createHash('sha256').update(key).digest('base64url')}`;
}

export class AdyenAdapter implements ProcessorAdapter {
  readonly name = NAME;
  private readonly checkout: CheckoutAPI;
  private readonly merchantAccount: string;
  private readonly live: boolean;
  private readonly returnUrl: string;
  private readonly state?: AdyenStateSource;

  constructor(options: AdyenAdapterOptions) {
    if (!options.apiKey) throw new Error('AdyenAdapter: apiKey is required');
    if (!options.merchantAccount) throw new Error('AdyenAdapter: merchantAccount is required');
    this.live = options.environment === 'live';
    if (this.live && !options.liveEndpointUrlPrefix && !options.apiBase)
      throw new Error('AdyenAdapter: liveEndpointUrlPrefix is required in the live environment');
    const timeout = options.timeoutMs ?? 10_000;
    const client = new Client(
      {
        apiKey: options.apiKey,
        environment: this.live ? EnvironmentEnum.LIVE : EnvironmentEnum.TEST,
        ...(options.liveEndpointUrlPrefix ? { liveEndpointUrlPrefix: options.liveEndpointUrlPrefix } : {}),
        applicationName: 'paystep',
        connectionTimeoutMillis: timeout,
      },
      options.apiBase ? new AdyenTransport({ baseUrl: options.apiBase, timeoutMs: timeout }) : undefined,
    );
    this.checkout = new CheckoutAPI(client);
    this.merchantAccount = options.merchantAccount;
    this.returnUrl = options.returnUrl ?? DEFAULT_RETURN_URL;
    this.state = options.state;
  }

  async authorize(req: AuthorizeRequest): Promise<AdyenAuthorizeResult> {
    const request = this.paymentRequest(req);
    let res: PaymentResponse;
    try {
      res = await this.checkout.PaymentsApi.payments(request, {
        idempotencyKey: adyenIdempotencyKey(req.idempotencyKey),
      });
    } catch (err) {
      const e = adyenError(err, 'authorize');
      if (e instanceof AdyenApiError && e.status === 422 && e.errorCode && CARD_DATA_ERRORS[e.errorCode]) {
        return {
          outcome: 'declined',
          ...(e.pspReference ? { processorReference: e.pspReference } : {}),
          rawStatus: `422/${e.errorCode}`,
          failure: {
            ...mapAdyenRefusal({ resultCode: 'Refused', refusalReasonCode: CARD_DATA_ERRORS[e.errorCode] }),
            processor_code: `validation/${e.errorCode}`,
          },
        };
      }
      throw e;
    }
    return this.authorizeResult(res, req);
  }

  /**
   * Completes a payment after the shopper's redirect (3-D Secure): `POST /payments/details` with
   * the `redirectResult` Adyen appended to the return URL (CompletesRedirect, connectors/redirects.ts).
   * paystep's return route calls it (GET /v1/payments/{id}/return, lambdas/payments/return.ts).
   */
  async completeRedirect(
    redirectResult: string,
    context: { paymentId: string; amount: number; captureMethod: 'automatic' | 'manual' },
  ): Promise<AdyenAuthorizeResult> {
    let res: PaymentResponse;
    try {
      res = (await this.checkout.PaymentsApi.paymentsDetails(
        { details: { redirectResult } },
        { idempotencyKey: adyenIdempotencyKey(`${context.paymentId}:details:${redirectResult}`) },
      )) as PaymentResponse;
    } catch (err) {
      throw adyenError(err, 'payment details');
    }
    return this.authorizeResult(res, context);
  }

  async capture(
    reference: string,
    amount: number | undefined,
    idempotencyKey: string,
  ): Promise<CaptureResult & AdyenModificationResult> {
    const ctx = await this.context(reference, 'capture');
    const value = amount ?? ctx.amount;
    try {
      const r = await this.checkout.ModificationsApi.captureAuthorisedPayment(
        reference,
        {
          merchantAccount: this.merchantAccount,
          amount: toAdyenAmount(value, ctx.currency),
          reference: idempotencyKey.slice(0, 80),
        },
        { idempotencyKey: adyenIdempotencyKey(idempotencyKey) },
      );
      return {
        processorReference: reference,
        amountCaptured: value,
        rawStatus: r.status,
        pending: true,
        modificationReference: r.pspReference,
      };
    } catch (err) {
      throw adyenError(err, 'capture');
    }
  }

  async cancel(reference: string, idempotencyKey: string): Promise<CancelResult & AdyenModificationResult> {
    try {
      const r = await this.checkout.ModificationsApi.cancelAuthorisedPaymentByPspReference(
        reference,
        { merchantAccount: this.merchantAccount, reference: idempotencyKey.slice(0, 80) },
        { idempotencyKey: adyenIdempotencyKey(idempotencyKey) },
      );
      return {
        processorReference: reference,
        rawStatus: r.status,
        pending: true,
        modificationReference: r.pspReference,
      };
    } catch (err) {
      throw adyenError(err, 'cancel');
    }
  }

  async refund(
    reference: string,
    amount: number,
    idempotencyKey: string,
    reason?: 'duplicate' | 'fraudulent' | 'requested_by_customer',
  ): Promise<RefundResult> {
    const ctx = await this.context(reference, 'refund');
    const refundReason =
      reason === 'duplicate'
        ? 'DUPLICATE'
        : reason === 'fraudulent'
          ? 'FRAUD'
          : reason === 'requested_by_customer'
            ? 'CUSTOMER REQUEST'
            : undefined;
    try {
      const r = await this.checkout.ModificationsApi.refundCapturedPayment(
        reference,
        {
          merchantAccount: this.merchantAccount,
          amount: toAdyenAmount(amount, ctx.currency),
          reference: idempotencyKey.slice(0, 80),
          ...(refundReason
            ? {
                merchantRefundReason:
                  refundReason as Types.checkout.PaymentRefundRequest.MerchantRefundReasonEnum,
              }
            : {}),
        },
        { idempotencyKey: adyenIdempotencyKey(idempotencyKey) },
      );
      // `received`: Adyen accepted it; REFUND / REFUND_FAILED tells the outcome.
      return { refundReference: r.pspReference, status: 'pending', amount };
    } catch (err) {
      throw adyenError(err, 'refund');
    }
  }

  async retrieveRefund(refundReference: string): Promise<RefundResult> {
    if (!this.state) throw notSupported('retrieveRefund', 'no stored notifications are configured');
    const facts = await this.state.facts(refundReference);
    const s = refundState(refundReference, facts);
    if (!s) return { refundReference, status: 'pending', amount: 0 };
    return {
      refundReference,
      status: s.status,
      amount: s.amount,
      ...(s.status === 'failed' && s.reason ? { failureReason: s.reason } : {}),
    };
  }

  async retrieve(reference: string): Promise<RetrieveResult> {
    if (!this.state) throw notSupported('retrieve', 'no stored notifications are configured');
    const [ctx, facts] = await Promise.all([this.state.payment(reference), this.state.facts(reference)]);
    if (!ctx) throw notSupported('retrieve', `paystep has no payment with pspReference ${reference}`);
    const s = paymentState(reference, facts, ctx);
    if (!s)
      throw notSupported(
        'retrieve',
        `no notification has arrived for ${reference} yet; Adyen has no API to read a payment (check the Customer Area)`,
      );
    return s;
  }

  mapDecline(code: string | undefined, declineCode?: string, message?: string): Failure {
    return mapAdyenDecline(code, declineCode, message);
  }

  // --- helpers -----------------------------------------------------------------------------------

  private paymentRequest(req: AuthorizeRequest): PaymentRequest {
    const { paymentMethod, additionalData, stored } = this.paymentMethod(req);
    if (stored && !req.customer?.id)
      throw new ProcessorRequestError(
        NAME,
        'Adyen: a stored payment method (adyen:…) needs the customer id it was stored for (customer.id)',
        'customer_required',
      );
    const request: PaymentRequest = {
      amount: toAdyenAmount(req.amount, req.currency),
      reference: req.paymentId,
      merchantAccount: this.merchantAccount,
      paymentMethod: paymentMethod as PaymentRequest['paymentMethod'],
      // `{payment_id}` in ADYEN_RETURN_URL names the payment: paystep's return route
      // (GET /v1/payments/{id}/return) completes it when the shopper comes back.
      returnUrl: this.returnUrl.replace('{payment_id}', encodeURIComponent(req.paymentId)),
      channel: 'Web' as PaymentRequest['channel'],
      shopperInteraction: 'Ecommerce' as PaymentRequest['shopperInteraction'],
      metadata: { paystep_payment_id: req.paymentId, paystep_merchant_id: req.merchantId },
      additionalData: {
        ...additionalData,
        ...(req.captureMethod === 'manual' ? { manualCapture: 'true' } : {}),
      },
    };
    if (req.captureMethod === 'automatic') request.captureDelayHours = 0;
    if (stored) request.recurringProcessingModel = 'CardOnFile' as PaymentRequest['recurringProcessingModel'];
    if (req.customer?.id) request.shopperReference = req.customer.id;
    if (req.customer?.email) request.shopperEmail = req.customer.email;
    if (req.customer?.country) request.countryCode = req.customer.country.toUpperCase();
    return request;
  }

  private paymentMethod(req: AuthorizeRequest): {
    paymentMethod: Record<string, string>;
    additionalData: Record<string, string>;
    stored: boolean;
  } {
    const pm = req.paymentMethod;
    if (isTestMethodId(pm)) {
      if (this.live)
        throw new ProcessorRequestError(
          NAME,
          `Adyen: the test payment method ${pm} cannot be used in the live environment`,
          'test_payment_method_in_live_mode',
        );
      const m = ADYEN_TEST_METHODS[pm];
      if (!m)
        throw new ProcessorRequestError(
          NAME,
          `Adyen: ${pm} is not one of paystep's test payment methods mapped for Adyen (see docs/connectors.md)`,
          'payment_method_unknown',
        );
      const t = adyenTestPaymentMethod(m);
      return { paymentMethod: t.paymentMethod, additionalData: t.additionalData, stored: false };
    }
    if (pm.startsWith(STORED_PREFIX) && pm.length > STORED_PREFIX.length) {
      return {
        paymentMethod: { type: 'scheme', storedPaymentMethodId: pm.slice(STORED_PREFIX.length) },
        additionalData: {},
        stored: true,
      };
    }
    throw new ProcessorRequestError(
      NAME,
      `Adyen cannot charge payment method "${pm.slice(0, 40)}": send a paystep test id in test mode, or an Adyen token as adyen:<storedPaymentMethodId>`,
      'payment_method_not_supported',
    );
  }

  private authorizeResult(
    res: PaymentResponse,
    req: { paymentId: string; amount: number; captureMethod: 'automatic' | 'manual' },
  ): AdyenAuthorizeResult {
    const code = res.resultCode as string | undefined;
    const psp = res.pspReference;
    const { card, analytics } = cardFromAdditionalData(res.additionalData, res.paymentMethod?.brand);
    const extra = { ...(card ? { card } : {}), ...(analytics ? { analytics } : {}) };
    switch (code) {
      case 'Authorised': {
        if (!psp) throw new AdyenUnexpectedResult('Adyen authorised without a pspReference', code);
        const answered = fromAdyenAmount(res.amount);
        const value = answered?.value ?? req.amount;
        return req.captureMethod === 'automatic'
          ? { outcome: 'captured', processorReference: psp, amountCaptured: value, rawStatus: code, ...extra }
          : { outcome: 'authorized', processorReference: psp, amountCaptured: 0, rawStatus: code, ...extra };
      }
      case 'Refused':
      case 'Error':
      case 'Cancelled': {
        const failure: AdyenFailure = mapAdyenRefusal({
          resultCode: code,
          ...(res.refusalReasonCode ? { refusalReasonCode: res.refusalReasonCode } : {}),
          ...(res.refusalReason ? { refusalReason: res.refusalReason } : {}),
          ...(res.additionalData ? { additionalData: res.additionalData } : {}),
        });
        return {
          outcome: 'declined',
          ...(psp ? { processorReference: psp } : {}),
          rawStatus: code,
          failure,
          ...extra,
        };
      }
      case 'RedirectShopper':
      case 'IdentifyShopper':
      case 'ChallengeShopper': {
        const url = (res.action as { url?: string } | null | undefined)?.url;
        return {
          outcome: 'requires_action',
          // Adyen sends the pspReference with the action; the payment id is the fallback key.
          processorReference: psp ?? req.paymentId,
          rawStatus: code,
          ...(url ? { nextActionUrl: url } : {}),
        };
      }
      case 'Pending':
      case 'Received':
        return { outcome: 'processing', processorReference: psp ?? req.paymentId, rawStatus: code };
      default:
        throw new AdyenUnexpectedResult(
          `Adyen answered resultCode ${code ?? '(none)'} for payment ${req.paymentId}${psp ? ` (${psp})` : ''}, which paystep does not ask for; check it in the Customer Area`,
          code,
        );
    }
  }

  private async context(
    reference: string,
    operation: string,
  ): Promise<{ amount: number; currency: string; captureMethod: 'automatic' | 'manual' }> {
    if (!this.state)
      throw notSupported(operation, "the payment's currency is needed and no state source is configured");
    const ctx = await this.state.payment(reference);
    if (!ctx)
      throw new ProcessorRequestError(
        NAME,
        `Adyen ${operation}: paystep has no payment ${reference}`,
        'not_found',
      );
    return ctx;
  }
}

function notSupported(operation: string, why: string): ProcessorRequestError {
  return new ProcessorRequestError(NAME, `Adyen ${operation} is not supported here: ${why}`, 'not_supported');
}

/**
 * Options from the environment: ADYEN_API_KEY, ADYEN_MERCHANT_ACCOUNT (required), ADYEN_ENVIRONMENT
 * (`test` | `live`), ADYEN_LIVE_URL_PREFIX, ADYEN_API_BASE (the simulator; unset in AWS),
 * ADYEN_TIMEOUT_MS, ADYEN_RETURN_URL. To move into lambdas/shared/config.ts with the registry work.
 */
export function adyenOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): AdyenAdapterOptions {
  const need = (k: string) => {
    const v = env[k]?.trim();
    if (!v) throw new Error(`${k} is required for the Adyen connector`);
    return v;
  };
  const environment = (env.ADYEN_ENVIRONMENT ?? 'test').trim();
  if (environment !== 'test' && environment !== 'live')
    throw new Error(`ADYEN_ENVIRONMENT must be test or live, got ${environment}`);
  const timeout = env.ADYEN_TIMEOUT_MS?.trim();
  if (timeout && !/^\d+$/.test(timeout)) throw new Error(`ADYEN_TIMEOUT_MS must be a whole number of ms`);
  const apiBase = env.ADYEN_API_BASE?.trim();
  if (apiBase) new URL(apiBase);
  return {
    apiKey: need('ADYEN_API_KEY'),
    merchantAccount: need('ADYEN_MERCHANT_ACCOUNT'),
    environment,
    ...(env.ADYEN_LIVE_URL_PREFIX?.trim() ? { liveEndpointUrlPrefix: env.ADYEN_LIVE_URL_PREFIX.trim() } : {}),
    ...(apiBase ? { apiBase } : {}),
    ...(timeout ? { timeoutMs: Number(timeout) } : {}),
    ...(env.ADYEN_RETURN_URL?.trim() ? { returnUrl: env.ADYEN_RETURN_URL.trim() } : {}),
  };
}
