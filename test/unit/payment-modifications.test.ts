/**
 * Pending capture and cancel, pure parts (docs/states.md, "Pending capture and cancel"): the
 * modification table stays inside the transition table, the workflow's outcome names a pending
 * modification, the API shows it (and refuses another while it is pending), and what is kept of a
 * card for analytics can never hold a card number.
 */
import { storableAnalytics } from '../../lambdas/connectors/analytics.ts';
import { pendingOf } from '../../lambdas/connectors/modifications.ts';
import { canTransition, explain, MODIFICATIONS, type Payment } from '../../lambdas/domain/payment.ts';
import { workflowOutcome } from '../../lambdas/payments/modification-outcome.ts';
import { presentModification, presentPayment, refuseWhilePending } from '../../lambdas/payments/present.ts';
import { ApiError } from '../../lambdas/shared/errors.ts';

const payment = (over: Partial<Payment> = {}): Payment => ({
  id: 'pay_0123456789abcdef',
  object: 'payment',
  merchant_id: 'mer_1',
  amount: 3000,
  currency: 'eur',
  status: 'authorized',
  amount_captured: 0,
  amount_refunded: 0,
  capture_method: 'manual',
  payment_method: 'pm_card_visa',
  processor: 'adyen',
  processor_reference: 'ABCDEFGHIJKLMNOP',
  failure: null,
  order_id: null,
  customer: null,
  channel: null,
  description: null,
  metadata: {},
  card: { brand: 'visa', last4: '1111', country: 'NL' },
  capture_before: null,
  cancellation_reason: null,
  review: null,
  execution_arn: null,
  created: 1,
  updated: 1,
  version: 1,
  ...over,
});

const pendingCapture = {
  action: 'capture' as const,
  state: 'pending' as const,
  amount: 2000,
  idempotency_key: 'pay_0123456789abcdef:capture',
  requested_at: 1_764_000_000,
  reference: 'MODPSP0000000001',
};

describe('modifications in the transition table', () => {
  test.each(Object.entries(MODIFICATIONS))('%s: from → succeeded is an allowed transition', (_a, m) => {
    expect(canTransition(m.from, m.succeeded)).toBe(true);
  });
  test('a capture whose authorization lapsed may end canceled', () => {
    expect(canTransition(MODIFICATIONS.capture.from, 'canceled')).toBe(true);
  });
});

describe('the workflow outcome and the API', () => {
  test('a pending capture or cancel is named for the Choices; otherwise the status', () => {
    expect(workflowOutcome(payment())).toBe('authorized');
    expect(workflowOutcome(payment({ pending_modification: pendingCapture }))).toBe('capture_requested');
    expect(
      workflowOutcome(
        payment({ pending_modification: { ...pendingCapture, action: 'cancel', reason: 'duplicate' } }),
      ),
    ).toBe('cancel_requested');
    expect(workflowOutcome(payment({ status: 'captured', pending_modification: null }))).toBe('captured');
  });

  test('the API shows the pending modification, never the idempotency key, nor card analytics', () => {
    const p = payment({
      pending_modification: pendingCapture,
      card_analytics: { bin: '411111', issuer_country: 'NL', issuer_name: 'Bank' },
    });
    const shown = presentPayment(p);
    expect(shown.pending_modification).toEqual({
      type: 'capture',
      status: 'pending',
      amount: 2000,
      requested: 1_764_000_000,
      processor_reference: 'MODPSP0000000001',
    });
    expect(JSON.stringify(shown)).not.toMatch(/idempotency|411111|card_analytics/);
    expect(shown.card).toEqual({ brand: 'visa', last4: '1111', country: 'NL' });
    expect(
      presentModification(payment({ status: 'captured', pending_modification: pendingCapture })),
    ).toBeNull();
    expect(explain(p)).toMatch(/capture of €20\.00|capture of 20\.00|capture of EUR/);
  });

  test('another capture or cancel is refused while one is pending; an unanswered one may be repeated', () => {
    const err = (() => {
      try {
        refuseWhilePending(payment({ pending_modification: pendingCapture }), 'capture');
      } catch (e) {
        return e as ApiError;
      }
    })();
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 409, code: 'modification_pending' });
    expect(() => refuseWhilePending(payment({ pending_modification: pendingCapture }), 'cancel')).toThrow(
      ApiError,
    );
    expect(() =>
      refuseWhilePending(
        payment({ pending_modification: { ...pendingCapture, state: 'requested' } }),
        'capture',
      ),
    ).not.toThrow();
    expect(() => refuseWhilePending(payment(), 'cancel')).not.toThrow();
  });

  test('a connector answer is pending only when it says so', () => {
    expect(pendingOf({ pending: true, modificationReference: 'X' })).toEqual({ reference: 'X' });
    expect(pendingOf({ pending: true })).toEqual({});
    expect(pendingOf({ pending: false })).toBeUndefined();
    expect(pendingOf({})).toBeUndefined();
  });
});

describe('card analytics kept', () => {
  test('known fields only, a BIN of 6–8 digits, a country code', () => {
    expect(
      storableAnalytics({
        bin: '411111',
        issuer_bin: '41111111',
        issuer_country: 'NL',
        issuer_name: 'Test Bank',
        funding: 'credit',
        variant: 'visa',
        cardSummary: '1111',
        extra: 'x',
      }),
    ).toEqual({
      bin: '411111',
      issuer_bin: '41111111',
      issuer_country: 'NL',
      issuer_name: 'Test Bank',
      funding: 'credit',
      variant: 'visa',
    });
  });
  test('never a card number, wherever it is put', () => {
    const pan = '4111111111111111';
    expect(
      storableAnalytics({ bin: pan, issuer_bin: pan, issuer_name: `card ${pan}`, variant: pan }),
    ).toBeUndefined();
    expect(storableAnalytics({ issuer_country: 'nl' })).toBeUndefined();
    expect(storableAnalytics(undefined)).toBeUndefined();
    expect(storableAnalytics('411111')).toBeUndefined();
  });
});
