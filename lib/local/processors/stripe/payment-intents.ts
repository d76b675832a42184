/**
 * PaymentIntents: create (with `confirm`), confirm, capture (partial capture releases the rest),
 * cancel, 3-D Secure, and the Charges that result from them.
 */
import { randomBase62 } from '../../../../lambdas/shared/ids.ts';
import { SimError, invalid, refused, docUrl, type StripeErrorBody } from './errors.ts';
import { Reader } from './form.ts';
import { AUTHORIZATION_WINDOW_SECONDS, CURRENCIES, formatMoney } from './money.ts';
import { PI_STATUSES_CANCELABLE, PI_STATUSES_CONFIRMABLE, clone, type RequestContext } from './model.ts';
import { DECLINES, TEST_PAYMENT_METHODS, type Behavior, type Decline } from './test-cards.ts';
import type { StripeObject } from './types.ts';
import { StripeDisputes } from './disputes.ts';

export abstract class StripePaymentIntents extends StripeDisputes {
  /**
   * Completes the 3-D Secure step of a PaymentIntent in `requires_action`, as the customer would on the
   * page `next_action` points at: `succeed` goes on to the charge, `fail` leaves it in
   * `requires_payment_method` with `payment_intent_authentication_failure`.
   */
  authenticate(paymentIntentId: string, outcome: 'succeed' | 'fail'): StripeObject {
    const ctx = this.internalContext();
    const pi = this.get('payment_intent', paymentIntentId);
    if (!pi) throw new Error(`no such payment_intent: ${paymentIntentId}`);
    if (pi.status !== 'requires_action') throw new Error(`payment_intent ${pi.id} is ${String(pi.status)}`);
    const pm = this.get('payment_method', pi.payment_method as string) as StripeObject;
    if (outcome === 'succeed') {
      this.chargeSucceeded(pi, pm, ctx);
    } else {
      Object.assign(pi, {
        status: 'requires_payment_method',
        next_action: null,
        payment_method: null,
        last_payment_error: {
          type: 'invalid_request_error',
          code: 'payment_intent_authentication_failure',
          doc_url: docUrl('payment_intent_authentication_failure'),
          message:
            'The provided PaymentMethod has failed authentication. You can provide payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent again.',
          payment_method: clone(pm),
        },
      });
      this.save('payment_intent', pi);
      this.emit(ctx, 'payment_intent.payment_failed', pi);
    }
    this.dispatch(ctx.events);
    return clone(pi);
  }

  // --- endpoints -------------------------------------------------------------------------------

  protected createPaymentIntent(p: Reader, ctx: RequestContext): StripeObject {
    p.allow([
      'amount',
      'currency',
      'confirm',
      'payment_method',
      'payment_method_types',
      'allowed_payment_method_types',
      'excluded_payment_method_types',
      'automatic_payment_methods',
      'capture_method',
      'customer',
      'description',
      'metadata',
      'return_url',
      'off_session',
      'error_on_requires_action',
      'expand',
      // accepted and ignored: they do not change what the simulator models
      'receipt_email',
      'statement_descriptor',
      'statement_descriptor_suffix',
      'setup_future_usage',
      'shipping',
      'payment_method_options',
      'transfer_group',
      'confirmation_method',
      'use_stripe_sdk',
      'radar_options',
    ]);
    const amount = p.positiveInteger('amount');
    if (amount === undefined) throw invalid('Missing required param: amount.', 'amount', 'parameter_missing');
    const currencyRaw = p.string('currency');
    if (!currencyRaw) throw invalid('Missing required param: currency.', 'currency', 'parameter_missing');
    const currency = currencyRaw.toLowerCase();
    if (!CURRENCIES.has(currency)) {
      throw invalid(
        `Invalid currency: ${currencyRaw}. Stripe currently supports these currencies: ${[...CURRENCIES].join(', ')}`,
        'currency',
      );
    }
    this.checkAmount(amount, currency, 'amount');
    const captureMethod =
      p.oneOf('capture_method', ['automatic', 'automatic_async', 'manual']) ?? 'automatic_async';
    const confirm = p.boolean('confirm') ?? false;
    const description = p.string('description') ?? null;
    const metadata = p.metadata() ?? {};
    const customer = p.string('customer') || null;
    const returnUrl = p.string('return_url');
    const offSession = p.boolean('off_session') ?? false;
    const errorOnRequiresAction = p.boolean('error_on_requires_action') ?? false;
    const expand = p.expand();

    const types = this.paymentMethodTypes(p);
    const apm = p.object('automatic_payment_methods');
    if (types && apm) {
      throw invalid(
        `You may only specify one of these parameters: automatic_payment_methods, ${types.param}.`,
        'automatic_payment_methods',
        'parameters_exclusive',
      );
    }
    let automatic: { enabled: boolean; allow_redirects: string } | null = null;
    if (apm) {
      const r = new Reader(apm);
      for (const k of Object.keys(apm)) {
        if (k !== 'enabled' && k !== 'allow_redirects') {
          throw invalid(
            `Received unknown parameter: automatic_payment_methods[${k}]`,
            `automatic_payment_methods[${k}]`,
            'parameter_unknown',
          );
        }
      }
      automatic = {
        enabled: r.boolean('enabled') ?? false,
        allow_redirects: r.oneOf('allow_redirects', ['always', 'never']) ?? 'always',
      };
    } else if (!types) {
      automatic = { enabled: true, allow_redirects: 'always' };
    }
    if (!types && automatic && !automatic.enabled) {
      throw invalid(
        'Missing required param: allowed_payment_method_types.',
        'allowed_payment_method_types',
        'parameter_missing',
      );
    }
    if (confirm) this.checkConfirmable(automatic, returnUrl);
    if (expand.length) this.checkExpand(expand, ['latest_charge', 'payment_method']);
    const pm = this.resolvePaymentMethod(p.string('payment_method'));
    if (confirm && !pm) {
      throw invalid(
        "You cannot confirm this PaymentIntent because it's missing a payment method. Update the payment method and then confirm it again.",
        'payment_method',
        'payment_intent_unexpected_state',
      );
    }

    // Validation done: from here the endpoint executes and its result is stored.
    const id = `pi_${randomBase62(24)}`;
    const pi: StripeObject = {
      id,
      object: 'payment_intent',
      allowed_payment_method_types: types?.param === 'allowed_payment_method_types' ? types.list : null,
      amount,
      amount_capturable: 0,
      amount_details: { tip: {} },
      amount_received: 0,
      application: null,
      application_fee_amount: null,
      automatic_payment_methods: automatic,
      canceled_at: null,
      cancellation_reason: null,
      capture_method: captureMethod,
      client_secret: `${id}_secret_${randomBase62(25)}`,
      confirmation_method: 'automatic',
      created: this.seconds(),
      currency,
      customer,
      customer_account: null,
      description,
      excluded_payment_method_types: null,
      last_payment_error: null,
      latest_charge: null,
      livemode: false,
      managed_payments: null,
      metadata,
      next_action: null,
      on_behalf_of: null,
      payment_method: pm ? this.materialize(pm).id : null,
      payment_method_configuration_details: null,
      payment_method_options: {
        card: {
          installments: null,
          mandate_options: null,
          network: null,
          request_three_d_secure: 'automatic',
        },
      },
      payment_method_types: ['card'],
      payment_record: null,
      processing: null,
      receipt_email: null,
      review: null,
      setup_future_usage: null,
      shipping: null,
      source: null,
      statement_descriptor: null,
      statement_descriptor_suffix: null,
      status: pm ? 'requires_confirmation' : 'requires_payment_method',
      transfer_data: null,
      transfer_group: null,
    };
    this.counters.paymentIntentsCreated++;
    this.save('payment_intent', pi);
    this.emit(ctx, 'payment_intent.created', pi);
    if (confirm) this.runConfirmation(pi, ctx, { returnUrl, offSession, errorOnRequiresAction });
    return this.expanded(pi, expand);
  }

  protected confirmPaymentIntent(p: Reader, ctx: RequestContext, id: string): StripeObject {
    p.allow([
      'payment_method',
      'payment_method_types',
      'allowed_payment_method_types',
      'excluded_payment_method_types',
      'capture_method',
      'return_url',
      'off_session',
      'error_on_requires_action',
      'expand',
      'receipt_email',
      'setup_future_usage',
      'shipping',
      'payment_method_options',
      'use_stripe_sdk',
      'radar_options',
    ]);
    const pi = this.mustGet('payment_intent', id, 'intent', 404);
    const returnUrl = p.string('return_url');
    const offSession = p.boolean('off_session') ?? false;
    const errorOnRequiresAction = p.boolean('error_on_requires_action') ?? false;
    const captureMethod = p.oneOf('capture_method', ['automatic', 'automatic_async', 'manual']);
    const types = this.paymentMethodTypes(p);
    const expand = p.expand();
    if (expand.length) this.checkExpand(expand, ['latest_charge', 'payment_method']);
    const pm = this.resolvePaymentMethod(p.string('payment_method'));
    if (!PI_STATUSES_CONFIRMABLE.includes(pi.status as string)) {
      throw refused(
        `You cannot confirm this PaymentIntent because it has a status of ${String(pi.status)}. Only a PaymentIntent with one of the following statuses may be confirmed: ${PI_STATUSES_CONFIRMABLE.join(', ')}.`,
        undefined,
        'payment_intent_unexpected_state',
      );
    }
    if (!pm && !pi.payment_method) {
      throw invalid(
        "You cannot confirm this PaymentIntent because it's missing a payment method. Update the payment method and then confirm it again.",
        'payment_method',
        'payment_intent_unexpected_state',
      );
    }
    if (!types)
      this.checkConfirmable(
        pi.automatic_payment_methods as { enabled: boolean; allow_redirects: string } | null,
        returnUrl,
      );
    if (pm) pi.payment_method = this.materialize(pm).id;
    if (captureMethod) pi.capture_method = captureMethod;
    if (types?.param === 'allowed_payment_method_types') pi.allowed_payment_method_types = types.list;
    if (pi.status === 'requires_action') {
      // Confirming again while authentication is pending changes nothing.
      this.save('payment_intent', pi);
      return this.expanded(pi, expand);
    }
    this.runConfirmation(pi, ctx, { returnUrl, offSession, errorOnRequiresAction });
    return this.expanded(pi, expand);
  }

  protected capturePaymentIntent(p: Reader, ctx: RequestContext, id: string): StripeObject {
    p.allow([
      'amount_to_capture',
      'expand',
      'metadata',
      'final_capture',
      'statement_descriptor',
      'statement_descriptor_suffix',
      'application_fee_amount',
    ]);
    const pi = this.mustGet('payment_intent', id, 'intent', 404);
    const requested = p.positiveInteger('amount_to_capture');
    const metadata = p.metadata();
    const expand = p.expand();
    if (expand.length) this.checkExpand(expand, ['latest_charge', 'payment_method']);
    if (pi.status !== 'requires_capture') {
      throw refused(
        `This PaymentIntent could not be captured because it has a status of ${String(pi.status)}. Only a PaymentIntent with one of the following statuses may be captured: requires_capture.`,
        undefined,
        'payment_intent_unexpected_state',
      );
    }
    const capturable = pi.amount_capturable as number;
    const amount = requested ?? capturable;
    if (amount > capturable) {
      throw refused(
        `The amount to capture (${formatMoney(amount, pi.currency as string)}) must be less than or equal to the amount capturable (${formatMoney(capturable, pi.currency as string)}).`,
        'amount_to_capture',
        'amount_too_large',
      );
    }
    const ch = this.get('charge', pi.latest_charge as string) as StripeObject;
    const txn = this.balanceTransaction(
      ch.id,
      'charge',
      amount,
      pi.currency as string,
      pi.description as string | null,
    );
    // As on Stripe, the uncaptured remainder of a partial capture is refunded (released).
    const released = (ch.amount as number) - amount;
    Object.assign(ch, {
      captured: true,
      amount_captured: amount,
      amount_refunded: released,
      balance_transaction: txn.id,
    });
    Object.assign(pi, {
      status: 'succeeded',
      amount_received: amount,
      amount_capturable: 0,
      ...(metadata ? { metadata: { ...(pi.metadata as object), ...metadata } } : {}),
    });
    this.counters.captures++;
    this.save('charge', ch);
    this.save('payment_intent', pi);
    this.scheduleDisputeCreation(ch);
    this.emit(ctx, 'charge.captured', ch);
    this.emit(ctx, 'payment_intent.succeeded', pi);
    return this.expanded(pi, expand);
  }

  protected cancelPaymentIntent(p: Reader, ctx: RequestContext, id: string): StripeObject {
    p.allow(['cancellation_reason', 'expand']);
    const pi = this.mustGet('payment_intent', id, 'intent', 404);
    const reason = p.oneOf('cancellation_reason', [
      'duplicate',
      'fraudulent',
      'requested_by_customer',
      'abandoned',
    ]);
    const expand = p.expand();
    if (expand.length) this.checkExpand(expand, ['latest_charge', 'payment_method']);
    if (!PI_STATUSES_CANCELABLE.includes(pi.status as string)) {
      throw refused(
        `You cannot cancel this PaymentIntent because it has a status of ${String(pi.status)}. Only a PaymentIntent with one of the following statuses may be canceled: ${PI_STATUSES_CANCELABLE.join(', ')}.`,
        undefined,
        'payment_intent_unexpected_state',
      );
    }
    if (pi.status === 'requires_capture') {
      // The authorization is released: the uncaptured charge is refunded in full.
      const ch = this.get('charge', pi.latest_charge as string) as StripeObject;
      Object.assign(ch, { amount_refunded: ch.amount, refunded: true });
      this.save('charge', ch);
    }
    Object.assign(pi, {
      status: 'canceled',
      canceled_at: this.seconds(),
      cancellation_reason: reason ?? null,
      amount_capturable: 0,
      next_action: null,
    });
    this.save('payment_intent', pi);
    this.emit(ctx, 'payment_intent.canceled', pi);
    return this.expanded(pi, expand);
  }

  // --- payment flow ----------------------------------------------------------------------------

  protected runConfirmation(
    pi: StripeObject,
    ctx: RequestContext,
    opts: { returnUrl?: string; offSession: boolean; errorOnRequiresAction: boolean },
  ): void {
    this.counters.confirms++;
    const pm = this.get('payment_method', pi.payment_method as string) as StripeObject;
    const testCard = this.simOf(pm.id)?.testCard;
    const behavior: Behavior = this.faults.takeDecline()
      ? { kind: 'decline', decline: DECLINES.processing }
      : (testCard && TEST_PAYMENT_METHODS[testCard]?.behavior) || { kind: 'succeed' };
    if (opts.returnUrl) this.store.setSim(pi.id, { ...this.simOf(pi.id), returnUrl: opts.returnUrl });

    if (behavior.kind === 'authenticate') {
      if (opts.offSession) {
        this.chargeFailed(pi, pm, ctx, {
          code: 'authentication_required',
          decline_code: 'authentication_required',
          message: 'Your card was declined. This transaction requires authentication.',
          advice_code: 'try_again_later',
        });
      }
      if (opts.errorOnRequiresAction) {
        this.paymentFailed(pi, pm, ctx, {
          code: 'authentication_required',
          decline_code: 'authentication_not_handled',
          message:
            "This payment required an authentication action to complete, but `error_on_requires_action` was set. When you're ready, you can upgrade your integration to handle actions at https://stripe.com/docs/payments/payment-intents/upgrade-to-handle-actions.",
        });
      }
      const pageUrl = `${this.baseUrl}/_sim/3ds/${pi.id}`;
      pi.status = 'requires_action';
      pi.next_action = opts.returnUrl
        ? { type: 'redirect_to_url', redirect_to_url: { return_url: opts.returnUrl, url: pageUrl } }
        : {
            type: 'use_stripe_sdk',
            use_stripe_sdk: {
              type: 'three_d_secure_redirect',
              stripe_js: pageUrl,
              source: `src_${randomBase62(24)}`,
            },
          };
      pi.last_payment_error = null;
      this.save('payment_intent', pi);
      this.emit(ctx, 'payment_intent.requires_action', pi);
      return;
    }
    if (behavior.kind === 'decline') this.chargeFailed(pi, pm, ctx, behavior.decline);
    this.chargeSucceeded(pi, pm, ctx);
  }

  protected chargeSucceeded(pi: StripeObject, pm: StripeObject, ctx: RequestContext): void {
    const testCard = this.simOf(pm.id)?.testCard;
    const behavior = testCard ? TEST_PAYMENT_METHODS[testCard]?.behavior : undefined;
    const succeed = behavior?.kind === 'succeed' ? behavior : undefined;
    const captured = pi.capture_method !== 'manual';
    const amount = pi.amount as number;
    const currency = pi.currency as string;
    const ch = this.newCharge(pi, pm, {
      status: 'succeeded',
      paid: true,
      captured,
      amount_captured: captured ? amount : 0,
      outcome: {
        advice_code: null,
        network_advice_code: null,
        network_decline_code: null,
        network_status: 'approved_by_network',
        reason: null,
        risk_level: succeed?.risk ?? 'normal',
        risk_score: succeed?.risk === 'elevated' ? 70 : 20,
        seller_message: 'Payment complete.',
        type: 'authorized',
      },
      captureBefore: captured ? undefined : this.seconds() + AUTHORIZATION_WINDOW_SECONDS,
    });
    if (captured) {
      const txn = this.balanceTransaction(ch.id, 'charge', amount, currency, pi.description as string | null);
      ch.balance_transaction = txn.id;
    }
    this.save('charge', ch, {
      testCard,
      ...(succeed?.dispute ? { dispute: succeed.dispute } : {}),
    });
    if (captured) this.scheduleDisputeCreation(ch);
    Object.assign(pi, {
      status: captured ? 'succeeded' : 'requires_capture',
      amount_received: captured ? amount : 0,
      amount_capturable: captured ? 0 : amount,
      latest_charge: ch.id,
      last_payment_error: null,
      next_action: null,
    });
    this.save('payment_intent', pi);
    this.emit(ctx, 'charge.succeeded', ch);
    this.emit(ctx, captured ? 'payment_intent.succeeded' : 'payment_intent.amount_capturable_updated', pi);
  }

  /** An issuer decline or a Radar block: a failed charge, then 402 with the PaymentIntent. */
  protected chargeFailed(pi: StripeObject, pm: StripeObject, ctx: RequestContext, d: Decline): never {
    const blocked = d.blocked === true;
    const ch = this.newCharge(pi, pm, {
      status: 'failed',
      paid: false,
      captured: false,
      amount_captured: 0,
      failure_code: d.code,
      failure_message: d.message,
      outcome: {
        advice_code: d.advice_code ?? null,
        network_advice_code: null,
        network_decline_code: blocked ? null : (d.network_decline_code ?? null),
        network_status: blocked ? 'not_sent_to_network' : 'declined_by_network',
        reason: blocked ? 'highest_risk_level' : d.decline_code,
        risk_level: blocked ? 'highest' : 'normal',
        risk_score: blocked ? 95 : 20,
        seller_message: blocked
          ? 'Stripe blocked this payment as too risky.'
          : d.decline_code === 'generic_decline'
            ? 'The bank did not return any further details with this decline.'
            : `The bank returned the decline code \`${d.decline_code}\`.`,
        type: blocked ? 'blocked' : 'issuer_declined',
      },
    });
    this.save('charge', ch, { testCard: this.simOf(pm.id)?.testCard });
    pi.latest_charge = ch.id;
    this.emit(ctx, 'charge.failed', ch);
    this.paymentFailed(pi, pm, ctx, d, ch.id);
  }

  protected paymentFailed(
    pi: StripeObject,
    pm: StripeObject,
    ctx: RequestContext,
    d: Decline,
    chargeId?: string,
  ): never {
    const error: StripeErrorBody = {
      type: 'card_error',
      code: d.code,
      decline_code: d.decline_code,
      doc_url: docUrl(d.code),
      message: d.message,
      ...(d.advice_code ? { advice_code: d.advice_code } : {}),
      ...(d.network_decline_code ? { network_decline_code: d.network_decline_code } : {}),
      ...(d.param ? { param: d.param } : {}),
      ...(chargeId ? { charge: chargeId } : {}),
      payment_method: clone(pm),
    };
    Object.assign(pi, {
      status: 'requires_payment_method',
      payment_method: null,
      next_action: null,
      last_payment_error: clone(error),
    });
    this.save('payment_intent', pi);
    this.emit(ctx, 'payment_intent.payment_failed', pi);
    throw new SimError(402, { ...error, payment_intent: clone(pi) }, true);
  }

  protected newCharge(
    pi: StripeObject,
    pm: StripeObject,
    o: {
      status: string;
      paid: boolean;
      captured: boolean;
      amount_captured: number;
      outcome: Record<string, unknown>;
      failure_code?: string;
      failure_message?: string;
      captureBefore?: number;
    },
  ): StripeObject {
    const card = pm.card as Record<string, unknown>;
    return {
      id: `ch_${randomBase62(24)}`,
      object: 'charge',
      amount: pi.amount,
      amount_captured: o.amount_captured,
      amount_refunded: 0,
      application: null,
      application_fee: null,
      application_fee_amount: null,
      balance_transaction: null,
      billing_details: clone(pm.billing_details),
      calculated_statement_descriptor: 'PAYSTEP',
      captured: o.captured,
      created: this.seconds(),
      currency: pi.currency,
      customer: pi.customer,
      description: pi.description,
      disputed: false,
      failure_balance_transaction: null,
      failure_code: o.failure_code ?? null,
      failure_message: o.failure_message ?? null,
      fraud_details: {},
      livemode: false,
      metadata: clone(pi.metadata),
      on_behalf_of: null,
      outcome: o.outcome,
      paid: o.paid,
      payment_intent: pi.id,
      payment_method: pm.id,
      payment_method_details: {
        card: {
          amount_authorized: o.paid ? pi.amount : null,
          authorization_code: o.paid ? String(100000 + Math.floor(Math.random() * 900000)) : null,
          brand: card.brand,
          ...(o.captureBefore ? { capture_before: o.captureBefore } : {}),
          checks: {
            address_line1_check: null,
            address_postal_code_check: null,
            cvc_check: o.failure_code === 'incorrect_cvc' ? 'fail' : 'pass',
          },
          country: card.country,
          electronic_commerce_indicator: null,
          exp_month: card.exp_month,
          exp_year: card.exp_year,
          extended_authorization: { status: 'disabled' },
          fingerprint: card.fingerprint,
          funding: card.funding,
          incremental_authorization: { status: 'unavailable' },
          installments: null,
          last4: card.last4,
          mandate: null,
          multicapture: { status: 'unavailable' },
          network: card.brand,
          network_token: { used: false },
          network_transaction_id: o.paid ? randomBase62(15) : null,
          overcapture: { maximum_amount_capturable: pi.amount, status: 'unavailable' },
          regulated_status: 'unregulated',
          three_d_secure: null,
          transaction_link_id: null,
          wallet: null,
        },
        type: 'card',
      },
      receipt_email: null,
      receipt_number: null,
      receipt_url: null,
      refunded: false,
      review: null,
      shipping: null,
      source: null,
      source_transfer: null,
      statement_descriptor: null,
      statement_descriptor_suffix: null,
      status: o.status,
      transfer_data: null,
      transfer_group: null,
    };
  }
}
