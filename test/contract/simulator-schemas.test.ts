/**
 * Both simulators against their processor's published API description (issue #8, item 8): every
 * response body paystep relies on — objects, lists, errors, webhook/notification bodies — is
 * validated against the schemas vendored from the SDKs the connectors pin (vendor/openapi/, see its
 * README), with unknown fields refused; statuses and the headers the SDKs act on are asserted.
 *
 * Requests go over raw HTTP (not through the SDKs) so that the bodies checked are the bytes the
 * simulator sent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AdyenSimulator } from '../../lib/local/processors/adyen/simulator.ts';
import type { NotificationRequestItem } from '../../lib/local/processors/adyen/notifications.ts';
import { StripeSimulator, type StripeEvent } from '../../lib/local/processors/stripe-simulator.ts';
import { SchemaChecker } from './schema-check.ts';

const installed = (p: string): string =>
  (
    JSON.parse(
      fs.readFileSync(path.resolve(import.meta.dirname, '../../node_modules', p, 'package.json'), 'utf8'),
    ) as {
      version: string;
    }
  ).version;

describe('the vendored schemas are those of the installed SDKs', () => {
  test.each([
    ['stripe', 'stripe'],
    ['adyen', '@adyen/api-library'],
  ] as const)('%s: %s', (processor, pkg) => {
    const vendored = new SchemaChecker(processor).schemas['x-packages'][pkg];
    // An SDK upgrade changes the API version: run `node scripts/vendor-openapi.ts` and re-check.
    expect(vendored).toBe(installed(pkg));
  });
});

// ---------------------------------------------------------------------------------------------
// Stripe

describe(
  'Stripe simulator against Stripe API ' + new SchemaChecker('stripe').schemas['x-api-version'],
  () => {
    const KEY = 'sk_test_paystep_schema';
    const schema = new SchemaChecker('stripe');
    const events: StripeEvent[] = [];
    let sim: StripeSimulator;
    let base: string;
    const problems: string[] = [];

    interface Answer {
      status: number;
      headers: Headers;
      body: Record<string, unknown>;
    }

    async function call(
      method: 'GET' | 'POST',
      path: string,
      params: Record<string, string> = {},
      headers: Record<string, string> = {},
    ): Promise<Answer> {
      const form = new URLSearchParams(params).toString();
      const url = method === 'GET' && form ? `${base}${path}?${form}` : `${base}${path}`;
      const res = await fetch(url, {
        method,
        headers: {
          Authorization: `Bearer ${KEY}`,
          ...(method === 'POST' ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {}),
          ...headers,
        },
        body: method === 'POST' ? form : undefined,
      });
      return {
        status: res.status,
        headers: res.headers,
        body: (await res.json()) as Record<string, unknown>,
      };
    }

    /** Validates a 200 answer against `root`, or an error answer against `error`. */
    function valid(root: string, a: Answer): Record<string, unknown> {
      const ok = a.status === 200;
      problems.push(...schema.check(ok ? root : 'error', a.body));
      // Every error but a 429 says whether the SDK should retry it.
      if (!ok && a.status !== 429) expect(a.headers.get('stripe-should-retry')).toMatch(/^(true|false)$/);
      return a.body;
    }

    async function pay(pm: string, extra: Record<string, string> = {}): Promise<Answer> {
      return call('POST', '/v1/payment_intents', {
        amount: '2500',
        currency: 'usd',
        confirm: 'true',
        payment_method: pm,
        'payment_method_types[]': 'card',
        ...extra,
      });
    }

    beforeAll(async () => {
      sim = new StripeSimulator({
        onEvent: (e) => void events.push(e),
        asyncRefundDelayMs: 10,
        disputes: { createDelayMs: 10, decisionDelayMs: 10 },
        payoutEveryMs: 0,
      });
      base = await sim.start(0);
    });
    afterAll(async () => {
      await sim.stop();
    });
    afterEach(() => {
      sim.faults.reset();
      expect(problems.splice(0)).toEqual([]);
    });

    test('payment intents: automatic capture, manual and partial capture, cancel, 3-D Secure', async () => {
      const paid = valid('payment_intent', await pay('pm_card_visa'));
      expect(paid.status).toBe('succeeded');
      valid('payment_intent', await call('GET', `/v1/payment_intents/${String(paid.id)}`));
      const expanded = valid(
        'payment_intent',
        await call('GET', `/v1/payment_intents/${String(paid.id)}`, { 'expand[]': 'latest_charge' }),
      );
      expect(typeof expanded.latest_charge).toBe('object');
      valid('charge', await call('GET', `/v1/charges/${String(paid.latest_charge)}`));

      const held = valid('payment_intent', await pay('pm_card_visa', { capture_method: 'manual' }));
      expect(held.status).toBe('requires_capture');
      const partial = valid(
        'payment_intent',
        await call('POST', `/v1/payment_intents/${String(held.id)}/capture`, { amount_to_capture: '1500' }),
      );
      expect(partial).toMatchObject({ status: 'succeeded', amount_received: 1500 });
      // As on Stripe, the uncaptured remainder is refunded.
      const charge = valid('charge', await call('GET', `/v1/charges/${String(partial.latest_charge)}`));
      expect(charge).toMatchObject({
        amount: 2500,
        amount_captured: 1500,
        amount_refunded: 1000,
        refunded: false,
      });

      const toCancel = valid('payment_intent', await pay('pm_card_visa', { capture_method: 'manual' }));
      const canceled = valid(
        'payment_intent',
        await call('POST', `/v1/payment_intents/${String(toCancel.id)}/cancel`, {
          cancellation_reason: 'requested_by_customer',
        }),
      );
      expect(canceled.status).toBe('canceled');

      const threeDs = valid(
        'payment_intent',
        await pay('pm_card_authenticationRequired', { return_url: 'https://shop.example/back' }),
      );
      expect(threeDs.status).toBe('requires_action');
      const created = valid(
        'payment_intent',
        await call('POST', '/v1/payment_intents', { amount: '900', currency: 'eur' }),
      );
      const confirmed = valid(
        'payment_intent',
        await call('POST', `/v1/payment_intents/${String(created.id)}/confirm`, {
          payment_method: 'pm_card_mastercard',
          return_url: 'https://shop.example/back',
        }),
      );
      expect(confirmed.status).toBe('succeeded');
    });

    test.each([
      ['pm_card_visa_chargeDeclined', 'card_declined', 'generic_decline'],
      ['pm_card_visa_chargeDeclinedInsufficientFunds', 'card_declined', 'insufficient_funds'],
      ['pm_card_visa_chargeDeclinedLostCard', 'card_declined', 'lost_card'],
      ['pm_card_visa_chargeDeclinedStolenCard', 'card_declined', 'stolen_card'],
      ['pm_card_chargeDeclinedExpiredCard', 'expired_card', 'expired_card'],
      ['pm_card_chargeDeclinedIncorrectCvc', 'incorrect_cvc', 'incorrect_cvc'],
      ['pm_card_chargeDeclinedProcessingError', 'processing_error', 'processing_error'],
      ['pm_card_chargeDeclinedFraudulent', 'card_declined', 'fraudulent'],
      ['pm_card_visa_chargeDeclinedVelocityLimitExceeded', 'card_declined', 'card_velocity_exceeded'],
    ])('decline %s: 402 card_error %s / %s', async (pm, code, declineCode) => {
      const a = await pay(pm);
      expect(a.status).toBe(402);
      expect(a.headers.get('stripe-should-retry')).toBe('false');
      const error = valid('error', a).error as Record<string, unknown>;
      expect(error).toMatchObject({ type: 'card_error', code, decline_code: declineCode });
      const pi = error.payment_intent as Record<string, unknown>;
      expect(pi.status).toBe('requires_payment_method');
      valid('payment_intent', await call('GET', `/v1/payment_intents/${String(pi.id)}`));
      valid('charge', await call('GET', `/v1/charges/${String(error.charge)}`));
    });

    test('insufficient funds: the decline detail Stripe sends', async () => {
      const a = await pay('pm_card_visa_chargeDeclinedInsufficientFunds');
      const error = valid('error', a).error as Record<string, unknown>;
      expect(error).toMatchObject({
        code: 'card_declined',
        decline_code: 'insufficient_funds',
        message: 'Your card has insufficient funds.',
        advice_code: 'try_again_later',
        network_decline_code: '51',
      });
      const charge = valid('charge', await call('GET', `/v1/charges/${String(error.charge)}`));
      expect(charge).toMatchObject({
        failure_code: 'card_declined',
        outcome: {
          network_status: 'declined_by_network',
          network_decline_code: '51',
          reason: 'insufficient_funds',
          type: 'issuer_declined',
        },
      });
    });

    test('refunds: create, retrieve, list; asynchronous ones settle', async () => {
      const paid = valid('payment_intent', await pay('pm_card_visa'));
      const refund = valid(
        'refund',
        await call('POST', '/v1/refunds', { payment_intent: String(paid.id), amount: '500' }),
      );
      expect(refund.status).toBe('succeeded');
      valid('refund', await call('GET', `/v1/refunds/${String(refund.id)}`));
      valid('refund', await call('POST', '/v1/refunds', { charge: String(paid.latest_charge) }));
      const list = valid(
        'refund_list',
        await call('GET', '/v1/refunds', { payment_intent: String(paid.id) }),
      );
      expect((list.data as unknown[]).length).toBe(2);
      expect(list).toMatchObject({ object: 'list', has_more: false, url: '/v1/refunds' });
      const byCharge = valid(
        'refund_list',
        await call('GET', '/v1/refunds', { charge: String(paid.latest_charge), limit: '1' }),
      );
      expect(byCharge).toMatchObject({ has_more: true });
      expect((byCharge.data as unknown[]).length).toBe(1);

      const pending = valid('payment_intent', await pay('pm_card_pendingRefund'));
      const p = valid('refund', await call('POST', '/v1/refunds', { payment_intent: String(pending.id) }));
      expect(p.status).toBe('pending');
      const failing = valid('payment_intent', await pay('pm_card_refundFail'));
      valid('refund', await call('POST', '/v1/refunds', { payment_intent: String(failing.id) }));
      for (const r of sim.settleAsyncRefunds()) problems.push(...schema.check('refund', r));
      // Above the refundable amount: Stripe's error.
      const over = await call('POST', '/v1/refunds', { payment_intent: String(paid.id), amount: '1' });
      expect(over.status).toBe(400);
      valid('error', over);
    });

    test('disputes: created, retrieved, listed, evidence, closed', async () => {
      const paid = valid('payment_intent', await pay('pm_card_createDispute'));
      const charge = String(paid.latest_charge);
      let disputeId: string | undefined;
      for (let i = 0; i < 100 && !disputeId; i++) {
        await new Promise((r) => setTimeout(r, 20));
        disputeId = sim.disputes({ charge })[0]?.id;
      }
      expect(disputeId).toBeDefined();
      const d = valid('dispute', await call('GET', `/v1/disputes/${disputeId!}`));
      expect(d.status).toBe('needs_response');
      expect((d.evidence_details as Record<string, unknown>).submission_method).toBe('not_submitted');
      const list = valid('dispute_list', await call('GET', '/v1/disputes', { charge }));
      expect((list.data as { id: string }[]).map((x) => x.id)).toEqual([disputeId]);
      valid('dispute_list', await call('GET', '/v1/disputes', { payment_intent: String(paid.id) }));
      valid('dispute_list', await call('GET', '/v1/disputes'));
      const staged = valid(
        'dispute',
        await call('POST', `/v1/disputes/${disputeId!}`, {
          'evidence[product_description]': 'A lamp',
          submit: 'false',
        }),
      );
      expect(staged.status).toBe('needs_response');
      const submitted = valid(
        'dispute',
        await call('POST', `/v1/disputes/${disputeId!}`, {
          'evidence[uncategorized_text]': 'winning_evidence',
        }),
      );
      expect(submitted.status).toBe('under_review');
      expect((submitted.evidence_details as Record<string, unknown>).submission_method).toBe('manual');
      // Not answerable any more: Stripe's error, with a code from its list (or none).
      const again = await call('POST', `/v1/disputes/${disputeId!}/close`);
      expect(again.status).toBe(400);
      valid('error', again);

      const other = valid('payment_intent', await pay('pm_card_createDisputeInquiry'));
      let inquiry: string | undefined;
      for (let i = 0; i < 100 && !inquiry; i++) {
        await new Promise((r) => setTimeout(r, 20));
        inquiry = sim.disputes({ charge: String(other.latest_charge) })[0]?.id;
      }
      const closed = valid('dispute', await call('POST', `/v1/disputes/${inquiry!}/close`));
      expect(closed.status).toBe('warning_closed');
      for (const x of sim.disputes()) problems.push(...schema.check('dispute', x));
    });

    test('payouts, balance transactions and the balance', async () => {
      valid('payment_intent', await pay('pm_card_visa'));
      const balance = valid('balance', await call('GET', '/v1/balance'));
      expect(balance).toMatchObject({ object: 'balance', livemode: false });
      const pending = (balance.pending as { amount: number; currency: string }[]).find(
        (b) => b.currency === 'usd',
      );
      expect(pending?.amount).toBeGreaterThan(0);
      const [payout] = sim.createPayout({ includePending: true, currency: 'usd' });
      expect(payout).toBeDefined();
      valid('payout', await call('GET', `/v1/payouts/${payout!.id}`));
      const payouts = valid('payout_list', await call('GET', '/v1/payouts', { limit: '3' }));
      expect((payouts.data as { id: string }[])[0]?.id).toBe(payout!.id);
      const txns = valid(
        'balance_transaction_list',
        await call('GET', '/v1/balance_transactions', { payout: payout!.id, 'expand[]': 'data.source' }),
      );
      expect((txns.data as unknown[]).length).toBeGreaterThan(0);
      const after = valid('balance', await call('GET', '/v1/balance'));
      expect(after.pending).toEqual(
        expect.arrayContaining([expect.objectContaining({ currency: 'usd', amount: 0 })]),
      );
    });

    test.each([
      ['no API key', () => fetch(`${base}/v1/payment_intents/pi_x`).then(answer), 401, undefined],
      [
        'a key that is not a test key',
        () => call('GET', '/v1/payment_intents/pi_x', {}, { Authorization: 'Bearer sk_live_nope' }),
        401,
        undefined,
      ],
      [
        'an unknown parameter',
        () => call('POST', '/v1/payment_intents', { amount: '1', nope: '1' }),
        400,
        'parameter_unknown',
      ],
      [
        'a missing parameter',
        () => call('POST', '/v1/payment_intents', { currency: 'usd' }),
        400,
        'parameter_missing',
      ],
      [
        'an invalid boolean',
        () => call('POST', '/v1/payment_intents', { amount: '100', currency: 'usd', confirm: 'maybe' }),
        400,
        undefined,
      ],
      [
        'an invalid integer',
        () => call('POST', '/v1/payment_intents', { amount: 'ten', currency: 'usd' }),
        400,
        'parameter_invalid_integer',
      ],
      ['an unknown object', () => call('GET', '/v1/payment_intents/pi_nope'), 404, 'resource_missing'],
      ['an unknown URL', () => call('GET', '/v1/nothing'), 404, undefined],
      [
        'capture of a payment that is not capturable',
        async () => {
          const pi = (await pay('pm_card_visa')).body;
          return call('POST', `/v1/payment_intents/${String(pi.id)}/capture`);
        },
        400,
        'payment_intent_unexpected_state',
      ],
    ] as const)('error: %s', async (_what, run, status, code) => {
      const a = await run();
      expect(a.status).toBe(status);
      const error = valid('error', a).error as Record<string, unknown>;
      expect(error.code).toBe(code);
      expect(a.headers.get('stripe-should-retry')).toBe('false');
    });

    async function answer(res: Response): Promise<Answer> {
      return {
        status: res.status,
        headers: res.headers,
        body: (await res.json()) as Record<string, unknown>,
      };
    }

    test('idempotency errors, rate limits and 500s carry Stripe-Should-Retry as Stripe sends it', async () => {
      const key = { 'Idempotency-Key': `schema-${Date.now()}` };
      valid(
        'payment_intent',
        await call('POST', '/v1/payment_intents', { amount: '100', currency: 'usd' }, key),
      );
      const mismatch = await call('POST', '/v1/payment_intents', { amount: '200', currency: 'usd' }, key);
      expect(mismatch.status).toBe(400);
      expect((valid('error', mismatch).error as Record<string, unknown>).type).toBe('idempotency_error');
      expect(mismatch.headers.get('stripe-should-retry')).toBe('false');

      sim.faults.set({ rateLimitNext: 1 });
      const limited = await call('POST', '/v1/payment_intents', { amount: '100', currency: 'usd' });
      expect(limited.status).toBe(429);
      expect((valid('error', limited).error as Record<string, unknown>).code).toBe('rate_limit');

      // A 500 before the API ran (nothing stored): a retry may succeed.
      sim.faults.set({ failNext: 1 });
      const before = await call('POST', '/v1/payment_intents', { amount: '100', currency: 'usd' });
      expect(before.status).toBe(500);
      expect(before.headers.get('stripe-should-retry')).toBe('true');
      expect((valid('error', before).error as Record<string, unknown>).type).toBe('api_error');

      // A 500 while the API ran: stored for the key and replayed; Stripe tells the SDK not to retry.
      const k2 = { 'Idempotency-Key': `schema-500-${Date.now()}` };
      sim.faults.set({ failStoredNext: 1 });
      const during = await call('POST', '/v1/payment_intents', { amount: '100', currency: 'usd' }, k2);
      expect(during.status).toBe(500);
      expect(during.headers.get('stripe-should-retry')).toBe('false');
      valid('error', during);
      const replay = await call('POST', '/v1/payment_intents', { amount: '100', currency: 'usd' }, k2);
      expect(replay.status).toBe(500);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.headers.get('stripe-should-retry')).toBe('false');
      expect(replay.body).toEqual(during.body);
    });

    test('the check refuses what Stripe would not send', async () => {
      const pi = (await pay('pm_card_visa')).body;
      expect(schema.check('payment_intent', pi)).toEqual([]);
      expect(schema.check('payment_intent', { ...pi, surprise: 1 })).toEqual([
        'payment_intent/: unknown field "surprise"',
      ]);
      expect(schema.check('payment_intent', { ...pi, status: 'done' })).toEqual([
        'payment_intent/status: "done" is not one of the API\'s values',
      ]);
      const { client_secret: _omitted, ...missing } = pi;
      expect(schema.check('payment_intent', missing)).toEqual([
        "payment_intent/: must have required property 'client_secret'",
      ]);
      expect(schema.check('error', { error: { type: 'card_error', code: 'api_key_invalid' } })).toEqual([
        'error/error/code: "api_key_invalid" is not one of the API\'s values',
      ]);
    });

    test('every event the simulator sent is a Stripe event of its type', () => {
      expect(events.length).toBeGreaterThan(20);
      const seen = new Set<string>();
      for (const e of events) {
        const root = `event_${e.type.replace(/\./g, '_')}`;
        if (!(root in schema.schemas['x-roots'])) {
          problems.push(`event type ${e.type} has no vendored schema`);
          continue;
        }
        seen.add(e.type);
        problems.push(...schema.check(root, e));
      }
      expect([...seen].sort()).toEqual(
        expect.arrayContaining([
          'charge.captured',
          'charge.dispute.created',
          'charge.dispute.funds_withdrawn',
          'charge.failed',
          'charge.refunded',
          'charge.succeeded',
          'payment_intent.payment_failed',
          'payment_intent.succeeded',
          'payout.paid',
          'refund.created',
          'refund.updated',
        ]),
      );
    });
  },
);

// ---------------------------------------------------------------------------------------------
// Adyen

describe('Adyen simulator against ' + new SchemaChecker('adyen').schemas['x-api-version'], () => {
  const MERCHANT = 'PaystepSchemaMerchant';
  const API_KEY = 'AQE_test_paystep_schema';
  const HMAC_KEY = '44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056';
  const schema = new SchemaChecker('adyen');
  const deliveries: unknown[] = [];
  const items: NotificationRequestItem[] = [];
  const problems: string[] = [];
  let sim: AdyenSimulator;
  let base: string;

  interface Answer {
    status: number;
    headers: Headers;
    body: Record<string, unknown>;
  }

  async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-API-Key': API_KEY, ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
  }

  function valid(root: string, a: Answer, errorRoot = 'checkout_service_error'): Record<string, unknown> {
    problems.push(...schema.check(a.status === 200 ? root : errorRoot, a.body));
    return a.body;
  }

  let seq = 0;
  const payment = (holderName = 'J. Smith', over: Record<string, unknown> = {}) => ({
    merchantAccount: MERCHANT,
    reference: `schema-${++seq}`,
    amount: { currency: 'EUR', value: 2500 },
    returnUrl: 'https://shop.example/return',
    paymentMethod: {
      type: 'scheme',
      number: '4111111111111111',
      expiryMonth: '03',
      expiryYear: '2030',
      cvc: '737',
      holderName,
    },
    ...over,
  });
  const manual = { additionalData: { manualCapture: 'true' } };

  beforeAll(async () => {
    sim = new AdyenSimulator({
      hmacKeyHex: HMAC_KEY,
      merchantAccount: MERCHANT,
      apiKey: API_KEY,
      timeScale: 1_000_000,
      settlementEveryMs: 0,
      delays: { defensePeriod: 1e15 },
      notify: {
        callback: (_raw, body) => {
          deliveries.push(body);
          items.push(...body.notificationItems.map((n) => n.NotificationRequestItem));
          return { status: 200, body: '[accepted]' };
        },
      },
    });
    base = await sim.start(0);
  });
  afterAll(async () => {
    await sim.stop();
  });
  afterEach(() => {
    sim.faults.reset();
    expect(problems.splice(0)).toEqual([]);
  });

  test('payments: authorised, refused, pending, 3-D Secure redirect and details', async () => {
    expect(valid('payment_response', await post('/v72/payments', payment())).resultCode).toBe('Authorised');
    for (const holder of ['NOT_ENOUGH_BALANCE', 'CARD_EXPIRED', 'FRAUD', 'ERROR', 'PENDING']) {
      const a = await post('/v72/payments', payment(holder));
      expect(a.status).toBe(200);
      valid('payment_response', a);
    }
    const redirect = valid(
      'payment_response',
      await post(
        '/v72/payments',
        payment('J. Smith', { paymentMethod: { ...payment().paymentMethod, number: '4917610000000000' } }),
      ),
    );
    expect(redirect.resultCode).toBe('RedirectShopper');
    const token = /\/_sim\/3ds\/([^/?]+)/.exec(String((redirect.action as { url: string }).url))?.[1];
    const shopper = await post(`/_sim/3ds/${token!}`, { outcome: 'authenticated' });
    const details = valid(
      'payment_details_response',
      await post('/v72/payments/details', { details: { redirectResult: shopper.body.redirectResult } }),
    );
    expect(details.resultCode).toBe('Authorised');
  });

  test('modifications: capture, cancel, refund, reversal, standalone cancel', async () => {
    const held = valid('payment_response', await post('/v72/payments', payment('J. Smith', manual)));
    const psp = String(held.pspReference);
    const amount = { currency: 'EUR', value: 1500 };
    const capture = valid(
      'payment_capture_response',
      await post(`/v72/payments/${psp}/captures`, { merchantAccount: MERCHANT, amount, reference: 'cap-1' }),
    );
    expect(capture.status).toBe('received');
    await sim.settled();
    valid(
      'payment_refund_response',
      await post(`/v72/payments/${psp}/refunds`, {
        merchantAccount: MERCHANT,
        amount: { currency: 'EUR', value: 500 },
      }),
    );
    const toCancel = valid('payment_response', await post('/v72/payments', payment('J. Smith', manual)));
    valid(
      'payment_cancel_response',
      await post(`/v72/payments/${String(toCancel.pspReference)}/cancels`, { merchantAccount: MERCHANT }),
    );
    const toReverse = valid('payment_response', await post('/v72/payments', payment()));
    valid(
      'payment_reversal_response',
      await post(`/v72/payments/${String(toReverse.pspReference)}/reversals`, { merchantAccount: MERCHANT }),
    );
    const standalone = valid('payment_response', await post('/v72/payments', payment('J. Smith', manual)));
    valid(
      'standalone_payment_cancel_response',
      await post('/v72/cancels', {
        merchantAccount: MERCHANT,
        paymentReference: String(standalone.reference ?? standalone.merchantReference),
      }),
    );
    await sim.settled();
  });

  test.each([
    ['no API key', () => post('/v72/payments', payment(), { 'X-API-Key': '' }), 401, '000'],
    ['an unparsable body', () => post('/v72/payments', '{nope'), 400, '000'],
    [
      'an unknown merchant account',
      () => post('/v72/payments', payment('J. Smith', { merchantAccount: 'Nope' })),
      403,
      '901',
    ],
    ['no reference', () => post('/v72/payments', { ...payment(), reference: undefined }), 422, '130'],
    ['no amount', () => post('/v72/payments', { ...payment(), amount: undefined }), 422, '100'],
    [
      'an unknown payment',
      () =>
        post('/v72/payments/ABCDEFGHIJKLMNOP/captures', {
          merchantAccount: MERCHANT,
          amount: { currency: 'EUR', value: 1 },
        }),
      422,
      '167',
    ],
  ] as const)('error: %s', async (_what, run, status, code) => {
    const a = await run();
    expect(a.status).toBe(status);
    const body = valid('never', a);
    expect(body).toMatchObject({ status, errorCode: code });
    expect(a.headers.get('pspreference')).toBeTruthy();
  });

  /** The first notification item with this event code about a payment, once delivered. */
  async function notified(eventCode: string, payment: unknown): Promise<NotificationRequestItem> {
    for (let i = 0; i < 500; i++) {
      const found = items.find((x) => x.eventCode === eventCode && x.originalReference === payment);
      if (found) return found;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no ${eventCode} notification for ${String(payment)}`);
  }

  test('disputes: chargeback notifications and the Disputes API answers', async () => {
    const paid = valid('payment_response', await post('/v72/payments', payment('CHARGEBACK')));
    const cb = await notified('CHARGEBACK', paid.pspReference);
    const ds = '/ca/services/DisputeService/v30';
    const disputePspReference = cb.pspReference;
    const reasons = await post(`${ds}/retrieveApplicableDefenseReasons`, {
      disputePspReference,
      merchantAccountCode: MERCHANT,
    });
    valid('defense_reasons_response', reasons, 'disputes_service_error');
    valid(
      'supply_defense_document_response',
      await post(`${ds}/supplyDefenseDocument`, {
        disputePspReference,
        merchantAccountCode: MERCHANT,
        defenseDocuments: [
          { content: 'JVBERi0=', contentType: 'application/pdf', defenseDocumentTypeCode: 'DefenseMaterial' },
        ],
      }),
      'disputes_service_error',
    );
    valid(
      'delete_defense_document_response',
      await post(`${ds}/deleteDisputeDefenseDocument`, {
        disputePspReference,
        merchantAccountCode: MERCHANT,
        defenseDocumentType: 'DefenseMaterial',
      }),
      'disputes_service_error',
    );
    valid(
      'defend_dispute_response',
      await post(`${ds}/defendDispute`, {
        disputePspReference,
        merchantAccountCode: MERCHANT,
        defenseReasonCode: 'SupplyDefenseMaterial',
      }),
      'disputes_service_error',
    );
    const other = valid('payment_response', await post('/v72/payments', payment('CHARGEBACK')));
    const cb2 = await notified('CHARGEBACK', other.pspReference);
    valid(
      'accept_dispute_response',
      await post(`${ds}/acceptDispute`, {
        disputePspReference: cb2.pspReference,
        merchantAccountCode: MERCHANT,
      }),
      'disputes_service_error',
    );
    await notified('DISPUTE_DEFENSE_PERIOD_ENDED', other.pspReference);
  });

  test('every notification delivered is an Adyen notification', async () => {
    sim.settleBatch();
    await notified('REPORT_AVAILABLE', undefined);
    await sim.notifications.idle();
    expect(deliveries.length).toBeGreaterThan(5);
    for (const d of deliveries) problems.push(...schema.check('notification', d));
    const codes = new Set(items.map((i) => i.eventCode));
    expect([...codes]).toEqual(
      expect.arrayContaining([
        'AUTHORISATION',
        'CAPTURE',
        'CANCELLATION',
        'REFUND',
        'CANCEL_OR_REFUND',
        'NOTIFICATION_OF_CHARGEBACK',
        'CHARGEBACK',
        'REPORT_AVAILABLE',
      ]),
    );
  });
});
