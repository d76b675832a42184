/**
 * The Stripe adapter: paystep's ProcessorAdapter on the official `stripe` SDK (PaymentIntents).
 *
 * - authorize = create + confirm one PaymentIntent (`confirm: true`), card only
 *   (`automatic_payment_methods` without redirects, so no `return_url` is needed: the pinned API
 *   version replaced `payment_method_types` by `allowed_payment_method_types`; this works with both), `capture_method` automatic or
 *   manual, metadata `paystep_payment_id` / `merchant_id`. The latest charge is expanded for card
 *   details and the authorization deadline.
 * - Every mutating call carries the caller's idempotency key: a retry of the same attempt (by the SDK
 *   or by the workflow) can never charge twice.
 * - Outcomes: a card error is an answer (`declined`, mapped by declines.ts); connection errors,
 *   timeouts, 5xx, 409 (same key still executing) and 429 throw ProcessorUnavailableError (retry with
 *   the same key); any other refusal throws ProcessorRequestError (do not retry).
 * - The SDK client is built by client.ts (API version pinned to the SDK's own `Stripe.API_VERSION`,
 *   so responses have the shapes the SDK's types describe); `client` shares it with disputes.ts.
 *
 * Point it at the local simulator with `apiBase: 'http://127.0.0.1:PORT'` (lib/local/processors/
 * stripe-simulator.ts); leave it unset for api.stripe.com.
 */
import Stripe from 'stripe';
import { config as paystepConfig } from '../../shared/config.ts';
import { type StripeClientOptions, createStripeClient } from './client.ts';
import { mapStripeDecline } from './declines.ts';
import {
  neverSent,
  ProcessorRequestError,
  ProcessorUnavailableError,
  ProcessorUnreachableError,
  type AuthorizeRequest,
  type AuthorizeResult,
  type CancelResult,
  type CaptureResult,
  type CardDetails,
  type Failure,
  type ProcessorAdapter,
  type RefundResult,
  type RetrieveResult,
} from '../types.ts';

/** The client's options (client.ts; the key needs PaymentIntents and Refunds write access), and: */
export interface StripeAdapterOptions extends StripeClientOptions {
  /**
   * Where a customer returns after 3-D Secure. When set, a PaymentIntent that needs authentication has a
   * `redirect_to_url` next action and authorize() returns its URL as `nextActionUrl`.
   */
  returnUrl?: string;
}

type PaymentIntent = Stripe.PaymentIntent;
type Charge = Stripe.Charge;

const NAME = 'stripe';

export class StripeAdapter implements ProcessorAdapter {
  readonly name = NAME;
  private readonly stripe: Stripe;
  private readonly returnUrl?: string;

  /**
   * Requests the SDK sent per idempotency key of the authorizations in flight (`authorize`), counted
   * by one listener: a listener per call added more than ten to the client's emitter when more than
   * ten authorizations were in flight at once (the local runtime under load), and Node warned of a
   * leak.
   */
  private readonly sentByKey = new Map<string, { sent: number; calls: number }>();

  constructor(options: StripeAdapterOptions) {
    this.stripe = createStripeClient(options, 'StripeAdapter');
    this.returnUrl = options.returnUrl;
    this.stripe.on('request', (e: Stripe.RequestEvent) => {
      const counter = e.idempotency_key ? this.sentByKey.get(e.idempotency_key) : undefined;
      if (counter) counter.sent++;
    });
  }

  /** The SDK client (for the connector's other parts, e.g. disputes: one client per adapter). */
  get client(): Stripe {
    return this.stripe;
  }

  async authorize(req: AuthorizeRequest): Promise<AuthorizeResult> {
    const metadata: Record<string, string> = {
      paystep_payment_id: req.paymentId,
      merchant_id: req.merchantId,
    };
    if (req.customer?.id) metadata.paystep_customer_id = req.customer.id;
    const params: Stripe.PaymentIntentCreateParams = {
      amount: req.amount,
      currency: req.currency,
      payment_method: req.paymentMethod,
      // Cards only, and no redirect-based methods, so confirming needs no return_url (unless configured).
      automatic_payment_methods: this.returnUrl
        ? { enabled: true }
        : { enabled: true, allow_redirects: 'never' },
      capture_method: req.captureMethod,
      confirm: true,
      metadata,
      expand: ['latest_charge'],
    };
    if (req.description) params.description = req.description;
    if (this.returnUrl) params.return_url = this.returnUrl;
    let pi: PaymentIntent;
    // How many requests the SDK sent for this call: it retries a reset connection once even with
    // no network retries, and then a refused connection says nothing about the first request.
    const key = req.idempotencyKey;
    const counter = this.sentByKey.get(key) ?? { sent: 0, calls: 0 };
    counter.calls++;
    this.sentByKey.set(key, counter);
    try {
      // No SDK retries for an authorization: the workflow retries it. Made once, a refused
      // connection proves nothing reached Stripe, and the payment may fail over (docs/routing.md).
      pi = await this.stripe.paymentIntents.create(params, {
        idempotencyKey: req.idempotencyKey,
        maxNetworkRetries: 0,
      });
    } catch (err) {
      if (err instanceof Stripe.errors.StripeCardError) return this.declined(err);
      const why =
        err instanceof Stripe.errors.StripeConnectionError && counter.sent === 1 ? neverSent(err) : undefined;
      if (why) throw new ProcessorUnreachableError(NAME, `Stripe authorize: ${why}`, { cause: err });
      throw this.translate(err, 'authorize');
    } finally {
      if (--counter.calls === 0) this.sentByKey.delete(key);
    }
    return this.authorizeResult(pi);
  }

  async capture(
    reference: string,
    amount: number | undefined,
    idempotencyKey: string,
  ): Promise<CaptureResult> {
    const params: Stripe.PaymentIntentCaptureParams = {};
    if (amount !== undefined) params.amount_to_capture = amount;
    try {
      const pi = await this.stripe.paymentIntents.capture(reference, params, { idempotencyKey });
      return { processorReference: pi.id, amountCaptured: pi.amount_received, rawStatus: pi.status };
    } catch (err) {
      throw this.translate(err, 'capture');
    }
  }

  async cancel(reference: string, idempotencyKey: string): Promise<CancelResult> {
    try {
      const pi = await this.stripe.paymentIntents.cancel(reference, {}, { idempotencyKey });
      return { processorReference: pi.id, rawStatus: pi.status };
    } catch (err) {
      throw this.translate(err, 'cancel');
    }
  }

  async refund(
    reference: string,
    amount: number,
    idempotencyKey: string,
    reason?: 'duplicate' | 'fraudulent' | 'requested_by_customer',
  ): Promise<RefundResult> {
    const params: Stripe.RefundCreateParams = { payment_intent: reference, amount };
    if (reason) params.reason = reason;
    try {
      const r = await this.stripe.refunds.create(params, { idempotencyKey });
      return toRefundResult(r);
    } catch (err) {
      throw this.translate(err, 'refund');
    }
  }

  async retrieveRefund(refundReference: string): Promise<RefundResult> {
    try {
      const r = await this.stripe.refunds.retrieve(refundReference);
      return toRefundResult(r);
    } catch (err) {
      throw this.translate(err, 'retrieve refund');
    }
  }

  async retrieve(reference: string): Promise<RetrieveResult> {
    let pi: PaymentIntent;
    try {
      pi = await this.stripe.paymentIntents.retrieve(reference, { expand: ['latest_charge'] });
    } catch (err) {
      throw this.translate(err, 'retrieve');
    }
    const charge = expandedCharge(pi);
    const err = pi.last_payment_error;
    const out: RetrieveResult = {
      processorReference: pi.id,
      status: retrieveStatus(pi.status),
      amount: pi.amount,
      amountCaptured: pi.amount_received,
      // Stripe counts the uncaptured remainder of a partial capture (and a canceled authorization)
      // in amount_refunded; only what was refunded of the captured amount is a refund.
      amountRefunded: charge
        ? Math.max(0, charge.amount_refunded - (charge.amount - charge.amount_captured))
        : 0,
      currency: pi.currency,
      rawStatus: pi.status,
    };
    if (err && pi.status === 'requires_payment_method') {
      out.failure = this.mapDecline(err.code, err.decline_code, err.message);
    }
    return out;
  }

  mapDecline(code: string | undefined, declineCode?: string, message?: string): Failure {
    return mapStripeDecline(code, declineCode, message);
  }

  // --- helpers -----------------------------------------------------------------------------------

  private authorizeResult(pi: PaymentIntent): AuthorizeResult {
    const charge = expandedCharge(pi);
    switch (pi.status) {
      case 'requires_capture':
      case 'succeeded': {
        const card = charge ? cardOfCharge(charge) : undefined;
        const captureBefore = charge?.payment_method_details?.card?.capture_before ?? undefined;
        return {
          outcome: pi.status === 'succeeded' ? 'captured' : 'authorized',
          processorReference: pi.id,
          amountCaptured: pi.amount_received,
          ...(captureBefore ? { captureBefore } : {}),
          ...(card ? { card } : {}),
          rawStatus: pi.status,
        };
      }
      case 'requires_action': {
        const next = pi.next_action;
        const url =
          next?.redirect_to_url?.url ??
          (typeof (next?.use_stripe_sdk as { stripe_js?: unknown } | undefined)?.stripe_js === 'string'
            ? ((next?.use_stripe_sdk as { stripe_js: string }).stripe_js as string)
            : undefined);
        return {
          outcome: 'requires_action',
          processorReference: pi.id,
          rawStatus: pi.status,
          ...(url ? { nextActionUrl: url } : {}),
        };
      }
      case 'processing':
        return { outcome: 'processing', processorReference: pi.id, rawStatus: pi.status };
      case 'requires_payment_method': {
        // Confirmed but failed without a card error (e.g. authentication failed): a decline.
        const e = pi.last_payment_error;
        return {
          outcome: 'declined',
          processorReference: pi.id,
          rawStatus: pi.status,
          failure: this.mapDecline(e?.code, e?.decline_code, e?.message),
        };
      }
      default:
        throw new ProcessorRequestError(
          NAME,
          `PaymentIntent ${pi.id} has unexpected status ${pi.status} after confirmation`,
          'unexpected_status',
        );
    }
  }

  private declined(err: InstanceType<typeof Stripe.errors.StripeCardError>): AuthorizeResult {
    const pi = err.payment_intent as PaymentIntent | undefined;
    const pm = err.payment_method as Stripe.PaymentMethod | undefined;
    const card = pm?.card ? cardOfPaymentMethod(pm.card) : undefined;
    return {
      outcome: 'declined',
      ...(pi?.id ? { processorReference: pi.id, rawStatus: pi.status } : {}),
      failure: this.mapDecline(err.code, err.decline_code, err.message),
      ...(card ? { card } : {}),
    };
  }

  /** Any SDK error → ProcessorUnavailableError (outcome unknown, retry same key) or ProcessorRequestError. */
  private translate(err: unknown, operation: string): Error {
    const E = Stripe.errors;
    if (
      err instanceof E.StripeConnectionError ||
      err instanceof E.StripeRateLimitError ||
      err instanceof E.StripeAPIError
    ) {
      const status = (err as { statusCode?: number }).statusCode;
      return new ProcessorUnavailableError(
        NAME,
        `Stripe ${operation} failed: ${err.type}${status ? ` ${status}` : ''}: ${err.message}`,
        { cause: err },
      );
    }
    if (err instanceof E.StripeError) {
      const status = err.statusCode;
      if (status === undefined || status >= 500 || status === 409 || status === 429) {
        return new ProcessorUnavailableError(
          NAME,
          `Stripe ${operation} failed: ${err.type}: ${err.message}`,
          {
            cause: err,
          },
        );
      }
      const code =
        err instanceof E.StripeIdempotencyError ? 'idempotency_error' : (err.code ?? err.rawType ?? err.type);
      return new ProcessorRequestError(
        NAME,
        `Stripe ${operation} refused (${status}): ${err.message}`,
        code,
        {
          cause: err,
        },
      );
    }
    // Not an SDK error: whether the request reached Stripe is unknown.
    return new ProcessorUnavailableError(
      NAME,
      `Stripe ${operation} failed: ${(err as Error)?.message ?? err}`,
      {
        cause: err,
      },
    );
  }
}

function expandedCharge(pi: PaymentIntent): Charge | undefined {
  return pi.latest_charge && typeof pi.latest_charge === 'object' ? pi.latest_charge : undefined;
}

function cardOfCharge(ch: Charge): CardDetails | undefined {
  const c = ch.payment_method_details?.card;
  if (!c) return undefined;
  return compact({
    brand: c.brand ?? undefined,
    last4: c.last4 ?? undefined,
    country: c.country ?? undefined,
    exp_month: c.exp_month,
    exp_year: c.exp_year,
  });
}

function cardOfPaymentMethod(c: Stripe.PaymentMethod.Card): CardDetails {
  return compact({
    brand: c.brand,
    last4: c.last4,
    country: c.country ?? undefined,
    exp_month: c.exp_month,
    exp_year: c.exp_year,
  });
}

function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== null)) as T;
}

function toRefundResult(r: Stripe.Refund): RefundResult {
  return {
    refundReference: r.id,
    status: refundStatus(r.status),
    amount: r.amount,
    ...(r.failure_reason ? { failureReason: r.failure_reason } : {}),
  };
}

function refundStatus(s: string | null): RefundResult['status'] {
  switch (s) {
    case 'succeeded':
    case 'failed':
    case 'canceled':
    case 'pending':
      return s;
    default:
      // requires_action (some non-card methods) and unknown statuses: not final yet.
      return 'pending';
  }
}

function retrieveStatus(s: Stripe.PaymentIntent.Status): RetrieveResult['status'] {
  switch (s) {
    case 'requires_capture':
      return 'authorized';
    case 'succeeded':
      return 'captured';
    case 'requires_action':
      return 'requires_action';
    case 'processing':
      return 'processing';
    case 'canceled':
      return 'canceled';
    default:
      // requires_payment_method, requires_confirmation: no successful attempt (yet).
      return 'requires_payment_method';
  }
}

/**
 * The adapter from the environment: STRIPE_SECRET_KEY (required), STRIPE_API_BASE (the simulator's
 * URL; unset for api.stripe.com), optional STRIPE_TIMEOUT_MS, STRIPE_MAX_NETWORK_RETRIES and
 * STRIPE_RETURN_URL (read and validated in lambdas/shared/config.ts).
 */
export function stripeAdapterFromEnv(env?: NodeJS.ProcessEnv): StripeAdapter {
  return new StripeAdapter(paystepConfig.stripe(env));
}
