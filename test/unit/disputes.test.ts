/**
 * The dispute state machine, pure: which processor change wins (forward-only, duplicates and stale
 * events ignored, balance effects merged whatever the order), how a Stripe dispute object reads
 * (the Stripe dispute connector's `factsFromStripe`),
 * and what a dispute means for its payment's status.
 */
import {
  canMoveDispute,
  decide,
  DISPUTE_STATUSES,
  DISPUTE_TRANSITIONS,
  eventFingerprint,
  finalStatus,
  financeTotals,
  isClosed,
  mergeBalance,
  paymentStep,
  remindAt,
  REMINDER_LEAD_SECONDS,
  summarize,
  type BalanceEffect,
  type DisputeStatus,
} from '../../lambdas/disputes/model.ts';
import { factsFromStripe, stripeStatus } from '../../lambdas/connectors/stripe/disputes.ts';

const stripeDispute = (over: Record<string, unknown> = {}) => ({
  id: 'dp_1TestDispute',
  object: 'dispute',
  amount: 1050,
  balance_transactions: [
    {
      id: 'txn_w',
      object: 'balance_transaction',
      amount: -1050,
      fee: 1500,
      net: -2550,
      currency: 'usd',
      reporting_category: 'dispute',
      created: 100,
    },
  ],
  charge: 'ch_1',
  created: 100,
  currency: 'usd',
  evidence: { uncategorized_text: null, product_description: 'A lamp', enhanced_evidence: {} },
  evidence_details: { due_by: 100 + 7 * 86400, has_evidence: true, submission_count: 0, past_due: false },
  payment_intent: 'pi_1',
  payment_method_details: {
    card: { brand: 'visa', case_type: 'chargeback', network_reason_code: '10.4' },
    type: 'card',
  },
  reason: 'fraudulent',
  status: 'needs_response',
  ...over,
});

const view = (
  status: DisputeStatus,
  processor_updated = 100,
  extra: Partial<{ applied: string[]; balance: string[] }> = {},
) => ({
  status,
  processor_updated,
  applied_events: extra.applied ?? [],
  balance_ids: extra.balance ?? [],
});
const incoming = (
  status: DisputeStatus,
  eventCreated = 100,
  fingerprint = 'fp',
  balance_ids: string[] = [],
) => ({
  status,
  eventCreated,
  fingerprint,
  balance_ids,
});

describe('dispute transitions', () => {
  test('closed statuses are terminal; nothing moves back to an inquiry once it is a chargeback', () => {
    for (const s of ['won', 'lost', 'accepted', 'warning_closed'] as const) {
      expect(isClosed(s)).toBe(true);
      for (const to of DISPUTE_STATUSES) expect(canMoveDispute(s, to)).toBe(false);
    }
    for (const from of ['needs_response', 'under_review'] as const)
      for (const to of ['warning_needs_response', 'warning_under_review', 'warning_closed'] as const)
        expect(canMoveDispute(from, to)).toBe(false);
    expect(canMoveDispute('under_review', 'needs_response')).toBe(false);
    expect(canMoveDispute('warning_under_review', 'needs_response')).toBe(true); // escalation
  });

  test('the graph has no cycles (forward-only)', () => {
    const seen = new Set<string>();
    const visit = (s: DisputeStatus, path: DisputeStatus[]) => {
      expect(path).not.toContain(s);
      for (const n of DISPUTE_TRANSITIONS[s]) visit(n, [...path, s]);
      seen.add(s);
    };
    visit('warning_needs_response', []);
    visit('needs_response', []);
    expect(seen.size).toBe(DISPUTE_STATUSES.length);
  });

  test('Stripe statuses map to paystep statuses; a lost the merchant asked for is accepted', () => {
    const mapped = (s: string, accepted: boolean) => finalStatus(stripeStatus(s), accepted);
    expect(mapped('needs_response', false)).toBe('needs_response');
    expect(mapped('lost', false)).toBe('lost');
    expect(mapped('lost', true)).toBe('accepted');
    expect(mapped('warning_closed', true)).toBe('warning_closed');
    expect(mapped('prevented', false)).toBeUndefined();
    expect(mapped('accepted', false)).toBeUndefined(); // not a Stripe status
  });
});

describe('decide: which change wins', () => {
  test('first sight creates; a newer status applies; an older one never overwrites it', () => {
    expect(decide(undefined, incoming('needs_response'))).toEqual({ kind: 'create' });
    expect(decide(view('needs_response'), incoming('under_review', 101))).toEqual({
      kind: 'update',
      statusChanged: true,
    });
    expect(decide(view('won', 200), incoming('needs_response', 100))).toEqual({
      kind: 'ignore',
      why: 'regression',
    });
    expect(decide(view('under_review', 150), incoming('needs_response', 160))).toEqual({
      kind: 'ignore',
      why: 'regression',
    });
  });

  test('same status: applies when not older, ignored when older', () => {
    expect(decide(view('needs_response', 100), incoming('needs_response', 100))).toEqual({
      kind: 'update',
      statusChanged: false,
    });
    expect(decide(view('needs_response', 100), incoming('needs_response', 99))).toEqual({
      kind: 'ignore',
      why: 'stale',
    });
  });

  test('a redelivered event is a duplicate, even when it would otherwise apply', () => {
    expect(
      decide(view('needs_response', 100, { applied: ['fp'] }), incoming('needs_response', 100, 'fp')),
    ).toEqual({
      kind: 'ignore',
      why: 'duplicate',
    });
  });

  test('a stale event that carries unseen balance transactions merges only those', () => {
    expect(
      decide(
        view('won', 300, { balance: ['txn_w'] }),
        incoming('needs_response', 100, 'x', ['txn_w', 'txn_r']),
      ),
    ).toEqual({ kind: 'finance_only' });
    expect(
      decide(view('won', 300, { balance: ['txn_w'] }), incoming('needs_response', 100, 'x', ['txn_w'])),
    ).toEqual({
      kind: 'ignore',
      why: 'regression',
    });
  });
});

describe('factsFromStripe', () => {
  test('reads the fields paystep keeps, evidence without nulls, balance effects', () => {
    const f = factsFromStripe(stripeDispute())!;
    expect(f).toMatchObject({
      processor_reference: 'dp_1TestDispute',
      processor: 'stripe',
      charge: 'ch_1',
      payment_reference: 'pi_1',
      paystep_payment_id: null,
      amount: 1050,
      currency: 'usd',
      reason: 'fraudulent',
      status: 'needs_response',
      processor_status: 'needs_response',
      evidence_due_by: 100 + 7 * 86400,
      network_reason_code: '10.4',
      evidence: { product_description: 'A lamp' },
      has_evidence: true,
      submission_count: 0,
    });
    expect(f.balance_transactions).toEqual([
      {
        id: 'txn_w',
        amount: -1050,
        fee: 1500,
        net: -2550,
        currency: 'usd',
        reporting_category: 'dispute',
        created: 100,
      },
    ]);
  });

  test('an expanded PaymentIntent gives the paystep payment id; due_by 0 means no deadline', () => {
    const f = factsFromStripe(
      stripeDispute({
        payment_intent: { id: 'pi_2', object: 'payment_intent', metadata: { paystep_payment_id: 'pay_X' } },
        evidence_details: { due_by: 0 },
      }),
    )!;
    expect(f.payment_reference).toBe('pi_2');
    expect(f.paystep_payment_id).toBe('pay_X');
    expect(f.evidence_due_by).toBeNull();
  });

  test('not a dispute → undefined', () => {
    expect(
      factsFromStripe({ id: 'ch_1', object: 'charge', amount: 1, currency: 'usd', status: 'x' }),
    ).toBeUndefined();
    expect(factsFromStripe({ object: 'dispute' })).toBeUndefined();
  });
});

describe('finance', () => {
  const w: BalanceEffect = {
    id: 'a',
    amount: -1050,
    fee: 1500,
    net: -2550,
    currency: 'usd',
    reporting_category: 'dispute',
    created: 1,
  };
  const r: BalanceEffect = {
    id: 'b',
    amount: 1050,
    fee: -1500,
    net: 2550,
    currency: 'usd',
    reporting_category: 'dispute_reversal',
    created: 2,
  };

  test('withdrawn, reinstated and fees are summed as positive amounts', () => {
    expect(financeTotals([w, r])).toEqual({
      funds_withdrawn_amount: 1050,
      funds_reinstated_amount: 1050,
      dispute_fee: 1500,
      dispute_fee_returned: 1500,
    });
    expect(financeTotals([])).toEqual({
      funds_withdrawn_amount: 0,
      funds_reinstated_amount: 0,
      dispute_fee: 0,
      dispute_fee_returned: 0,
    });
  });

  test('balance transactions only accumulate, whatever order they are seen in', () => {
    expect(mergeBalance([r], [w])).toEqual([w, r]);
    expect(mergeBalance([w, r], [w])).toEqual([w, r]);
    expect(mergeBalance([w, r], [])).toEqual([w, r]);
  });
});

describe('the payment follows its dispute', () => {
  test('an open chargeback withdraws: money status → disputed, remembered', () => {
    for (const s of ['captured', 'settled', 'partially_refunded'] as const)
      expect(paymentStep({ status: 'needs_response' }, s)).toEqual({ to: 'disputed', from: s, remember: s });
    expect(paymentStep({ status: 'needs_response' }, 'disputed')).toBeUndefined();
  });

  test('won → back to the remembered money status; lost and accepted → charged_back', () => {
    expect(paymentStep({ status: 'won', payment_status_before: 'settled' }, 'disputed')).toEqual({
      to: 'settled',
      from: 'disputed',
    });
    expect(paymentStep({ status: 'won', payment_status_before: null }, 'disputed')).toEqual({
      to: 'captured',
      from: 'disputed',
    });
    expect(paymentStep({ status: 'won' }, 'captured')).toBeUndefined();
    expect(paymentStep({ status: 'lost' }, 'disputed')).toEqual({ to: 'charged_back', from: 'disputed' });
    expect(paymentStep({ status: 'accepted' }, 'disputed')).toEqual({ to: 'charged_back', from: 'disputed' });
    // Lost before the payment was ever moved: through disputed first.
    expect(paymentStep({ status: 'lost' }, 'captured')).toEqual({
      to: 'disputed',
      from: 'captured',
      remember: 'captured',
    });
    expect(paymentStep({ status: 'lost' }, 'charged_back')).toBeUndefined();
  });

  test('inquiries move no money; refunded or failed payments are left alone', () => {
    for (const s of ['warning_needs_response', 'warning_under_review', 'warning_closed'] as const)
      expect(paymentStep({ status: s }, 'captured')).toBeUndefined();
    expect(paymentStep({ status: 'needs_response' }, 'refunded')).toBeUndefined();
    expect(paymentStep({ status: 'lost' }, 'failed')).toBeUndefined();
  });
});

describe('workflow summary and reminder point', () => {
  test('the reminder is due 3 days before the deadline, never before the dispute was recorded', () => {
    expect(REMINDER_LEAD_SECONDS).toBe(3 * 86400);
    expect(remindAt(1_000_000, 10)).toBe(1_000_000 - 3 * 86400);
    expect(remindAt(100_000, 90_000)).toBe(90_000);
    expect(remindAt(null, 42)).toBe(42);
  });

  test('summarize gives phase, kind, responded and an ISO timestamp for the Wait state', () => {
    expect(summarize({ id: 'dp_x', status: 'warning_under_review', status_seq: 3, remind_at: 0 })).toEqual({
      dispute_id: 'dp_x',
      status: 'warning_under_review',
      phase: 'open',
      kind: 'inquiry',
      responded: true,
      seq: 3,
      remind_at: '1970-01-01T00:00:00.000Z',
    });
    expect(summarize({ id: 'dp_x', status: 'accepted', status_seq: 2, remind_at: 0 })).toMatchObject({
      phase: 'closed',
      kind: 'chargeback',
      responded: false,
    });
  });

  test('event fingerprints: same delivery, same print; key order does not matter', () => {
    const a = eventFingerprint('charge.dispute.created', 1, { a: 1, b: [1, { c: 2 }] });
    expect(eventFingerprint('charge.dispute.created', 1, { b: [1, { c: 2 }], a: 1 })).toBe(a);
    expect(eventFingerprint('charge.dispute.updated', 1, { a: 1, b: [1, { c: 2 }] })).not.toBe(a);
    expect(eventFingerprint('charge.dispute.created', 2, { a: 1, b: [1, { c: 2 }] })).not.toBe(a);
  });
});
