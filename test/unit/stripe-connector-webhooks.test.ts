/**
 * The Stripe connector's webhook part (lambdas/connectors/stripe/webhooks.ts): a signed request is
 * verified and split into the same processor-neutral facts Adyen's notifications give
 * (lambdas/connectors/facts.ts); a stored event gives the same facts again; the receive route and
 * the consumer see no Stripe names.
 */
import Stripe from 'stripe';
import {
  stripeFacts,
  stripeWebhookFormat,
  stripeWebhookReceiver,
  type StripeEventLike,
} from '../../lambdas/connectors/stripe/webhooks.ts';
import { refundState, type PaymentFact } from '../../lambdas/connectors/facts.ts';

const SECRET = 'whsec_unit_current';
const OLD = 'whsec_unit_previous';
const sign = (body: string, secret = SECRET) =>
  Stripe.webhooks.generateTestHeaderString({ payload: body, secret });
const request = (body: string, signature?: string) => ({
  body,
  header: (n: string) => (n.toLowerCase() === 'stripe-signature' ? signature : undefined),
});

let n = 0;
const event = (type: string, object: Record<string, unknown>, created = 1_700_000_000): StripeEventLike => ({
  id: `evt_unit${++n}`,
  type,
  created,
  livemode: false,
  data: { object },
});
const md = { paystep_payment_id: 'pay_0123456789abcdef' };

describe('Stripe webhook receiver', () => {
  const receiver = stripeWebhookReceiver([SECRET, OLD]);

  test('a signed event verifies (under either secret while rotating) and is stored as received', () => {
    const body = JSON.stringify(
      event('payment_intent.succeeded', {
        id: 'pi_1',
        status: 'succeeded',
        amount: 1050,
        amount_received: 1050,
        currency: 'EUR',
        metadata: md,
      }),
      null,
      2,
    );
    for (const secret of [SECRET, OLD]) {
      const v = receiver.verify(request(body, sign(body, secret)));
      expect(v.ok).toBe(true);
      if (!v.ok) return;
      expect(v.events).toHaveLength(1);
      const [e] = v.events;
      expect(e).toMatchObject({ type: 'payment_intent.succeeded', created: 1_700_000_000, live: false });
      expect(e!.stored).toBe(body); // the signed bytes, not a re-serialization
      expect(e!.facts).toEqual([
        expect.objectContaining({
          kind: 'payment',
          processor: 'stripe',
          id: `stripe:${e!.id}`,
          reference: 'pi_1',
          merchantReference: md.paystep_payment_id,
          event: 'captured',
          processorStatus: 'succeeded',
          success: true,
          amount: { value: 1050, currency: 'eur' },
          at: new Date(1_700_000_000_000).toISOString(),
          raw_event: 'payment_intent.succeeded',
        }),
      ]);
      // The consumer reads the same facts back from what was stored.
      expect(stripeWebhookFormat.facts(e!.stored)).toEqual(e!.facts);
    }
    expect(JSON.parse(receiver.acknowledge([{ id: 'evt_x', duplicate: true }]).body)).toEqual({
      received: true,
      id: 'evt_x',
      duplicate: true,
    });
  });

  test('forged, unsigned and non-event bodies are refused with 400 and a code', () => {
    const body = JSON.stringify(event('customer.created', { id: 'cus_1' }));
    const refused = (r: ReturnType<typeof receiver.verify>) => (r.ok ? undefined : [r.status, r.code]);
    expect(refused(receiver.verify(request(body, sign(body, 'whsec_other'))))).toEqual([
      400,
      'signature_invalid',
    ]);
    expect(refused(receiver.verify(request(body.replace('cus_1', 'cus_2'), sign(body))))).toEqual([
      400,
      'signature_invalid',
    ]);
    expect(refused(receiver.verify(request(body)))).toEqual([400, 'signature_missing']);
    expect(refused(receiver.verify(request('{nope', sign('{nope'))))).toEqual([400, 'invalid_json']);
    const notEvent = JSON.stringify({ id: 'cus_1', object: 'customer' });
    expect(refused(receiver.verify(request(notEvent, sign(notEvent))))).toEqual([400, 'invalid_event']);
  });
});

describe('Stripe events → facts', () => {
  test('PaymentIntent statuses', () => {
    const of = (status: string, extra: Record<string, unknown> = {}) =>
      (
        stripeFacts(event('payment_intent.updated', { id: 'pi_1', status, metadata: md, ...extra }))[0] as
          PaymentFact | undefined
      )?.event;
    expect(of('succeeded')).toBe('captured');
    expect(of('requires_capture')).toBe('authorised');
    expect(of('requires_action')).toBe('action_required');
    expect(of('processing')).toBe('pending');
    expect(of('requires_confirmation')).toBe('pending');
    expect(of('canceled')).toBe('canceled');
    expect(of('requires_payment_method')).toBe('pending');
    expect(of('requires_payment_method', { last_payment_error: { code: 'card_declined' } })).toBe('refused');
    expect(of('something_new')).toBeUndefined();
  });

  test('a refusal carries the decline in paystep taxonomy; objects without a paystep payment give no fact', () => {
    const [f] = stripeFacts(
      event('payment_intent.payment_failed', {
        id: 'pi_2',
        status: 'requires_payment_method',
        metadata: md,
        last_payment_error: { code: 'card_declined', decline_code: 'insufficient_funds' },
      }),
    ) as PaymentFact[];
    expect(f).toMatchObject({ event: 'refused', success: false, failure: { code: 'insufficient_funds' } });
    expect(stripeFacts(event('payment_intent.succeeded', { id: 'pi_3', status: 'succeeded' }))).toEqual([]);
  });

  test('charges: captured, authorised, refused, with the card', () => {
    const ch = (status: string, captured: boolean) =>
      stripeFacts(
        event('charge.succeeded', {
          id: 'ch_1',
          payment_intent: 'pi_1',
          status,
          captured,
          amount: 500,
          amount_captured: captured ? 500 : 0,
          currency: 'usd',
          metadata: md,
          payment_method_details: { card: { brand: 'visa', last4: '4242', country: 'US' } },
        }),
      )[0] as PaymentFact;
    expect(ch('succeeded', true)).toMatchObject({
      kind: 'payment',
      reference: 'pi_1',
      event: 'captured',
      card: { brand: 'visa', last4: '4242', country: 'US' },
    });
    expect(ch('succeeded', true).modificationReference).toBeUndefined();
    expect(ch('succeeded', false).event).toBe('authorised');
    expect(ch('failed', false).event).toBe('refused');
    expect(ch('pending', false).event).toBe('pending');
  });

  test('refunds: a fact once final; charge.refunded gives one per refund; canceled never counts as refunded', () => {
    const refund = (status: string) => ({
      id: `re_${status}`,
      object: 'refund',
      status,
      amount: 300,
      currency: 'usd',
      payment_intent: 'pi_1',
      ...(status === 'failed' ? { failure_reason: 'expired_or_canceled_card' } : {}),
    });
    expect(stripeFacts(event('refund.created', refund('pending')))).toEqual([]);
    expect(stripeFacts(event('refund.updated', refund('succeeded')))).toEqual([
      expect.objectContaining({
        kind: 'refund',
        reference: 're_succeeded',
        paymentReference: 'pi_1',
        event: 'succeeded',
      }),
    ]);
    expect(stripeFacts(event('refund.failed', refund('failed')))[0]).toMatchObject({
      event: 'failed',
      success: false,
      reason: 'expired_or_canceled_card',
    });
    const canceled = stripeFacts(event('refund.updated', refund('canceled')));
    expect(canceled[0]).toMatchObject({ event: 'canceled', success: false });
    expect(refundState('re_canceled', canceled)?.status).toBe('failed');
    const many = stripeFacts(
      event('charge.refunded', {
        id: 'ch_1',
        payment_intent: 'pi_1',
        refunds: { data: [refund('succeeded'), refund('pending'), refund('failed')] },
      }),
    );
    expect(many.map((f) => [f.reference, f.kind === 'refund' && f.event])).toEqual([
      ['re_succeeded', 'succeeded'],
      ['re_failed', 'failed'],
    ]);
    expect(new Set(many.map((f) => f.id)).size).toBe(2); // one stable id per fact
  });

  test('disputes: event and money by type and status, Stripe status kept', () => {
    const d = (type: string, status: string) =>
      stripeFacts(
        event(type, {
          id: 'du_1',
          object: 'dispute',
          status,
          amount: 1050,
          currency: 'usd',
          payment_intent: 'pi_1',
          reason: 'fraudulent',
          evidence_details: { due_by: 1_700_100_000 },
        }),
      )[0];
    expect(d('charge.dispute.created', 'needs_response')).toMatchObject({
      kind: 'dispute',
      reference: 'du_1',
      paymentReference: 'pi_1',
      event: 'notification_of_chargeback',
      money: 'none',
      processorStatus: 'needs_response',
      reasonCode: 'fraudulent',
      evidenceDueBy: new Date(1_700_100_000_000).toISOString(),
      defendable: true,
    });
    expect(d('charge.dispute.created', 'warning_needs_response')).toMatchObject({
      event: 'request_for_information',
    });
    expect(d('charge.dispute.updated', 'under_review')).toMatchObject({ event: 'information_supplied' });
    expect(d('charge.dispute.funds_withdrawn', 'needs_response')).toMatchObject({
      event: 'chargeback',
      money: 'withdrawn',
    });
    expect(d('charge.dispute.funds_reinstated', 'won')).toMatchObject({
      event: 'chargeback_reversed',
      money: 'returned',
    });
    expect(d('charge.dispute.closed', 'lost')).toMatchObject({
      event: 'prearbitration_lost',
      defendable: false,
    });
    expect(d('charge.dispute.closed', 'won')).toMatchObject({ event: 'prearbitration_won' });
  });

  test('a dispute fact carries the dispute as its event saw it, in paystep terms; a stored event gives it again', () => {
    const object = {
      id: 'du_1',
      object: 'dispute',
      status: 'won',
      amount: 1050,
      currency: 'USD',
      payment_intent: 'pi_1',
      reason: 'fraudulent',
      created: 1_699_000_000,
      evidence_details: { due_by: 1_700_100_000, has_evidence: true, submission_count: 1 },
      balance_transactions: [
        { id: 'txn_w', amount: -1050, fee: 1500, net: -2550, currency: 'usd', created: 1_699_000_100 },
      ],
    };
    const closed = event('charge.dispute.closed', object);
    const [fact] = stripeFacts(closed);
    expect(fact).toMatchObject({
      kind: 'dispute',
      event: 'prearbitration_won',
      dispute: {
        processor: 'stripe',
        processor_reference: 'du_1',
        payment_reference: 'pi_1',
        status: 'won',
        processor_status: 'won',
        amount: 1050,
        currency: 'usd',
        evidence_due_by: 1_700_100_000,
        has_evidence: true,
        submission_count: 1,
        balance_transactions: [{ id: 'txn_w', amount: -1050, fee: 1500 }],
        processor_updated: 1_699_000_100,
      },
    });
    expect(stripeWebhookFormat.facts(JSON.stringify(closed))).toEqual([fact]);
    // Stripe's statuses paystep does not model are read as no status (the applier ignores the change).
    expect(stripeFacts(event('charge.dispute.updated', { ...object, status: 'prevented' }))[0]).toMatchObject(
      {
        dispute: { status: null, processor_status: 'prevented' },
      },
    );
  });

  test('a dispute event whose object is not a readable dispute gives no fact', () => {
    const base = {
      id: 'du_2',
      object: 'dispute',
      status: 'needs_response',
      currency: 'usd',
      payment_intent: 'pi_1',
    };
    expect(stripeFacts(event('charge.dispute.created', base))).toEqual([]); // no amount
    expect(stripeFacts(event('charge.dispute.created', { ...base, amount: 100, object: 'charge' }))).toEqual(
      [],
    );
    expect(stripeFacts(event('charge.dispute.created', { ...base, amount: 100 }))).toHaveLength(1);
  });

  test('events paystep does not use give no fact', () => {
    for (const t of ['customer.created', 'payout.paid', 'invoice.updated'])
      expect(stripeFacts(event(t, { id: 'x_1', metadata: md }))).toEqual([]);
  });
});
