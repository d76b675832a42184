/**
 * What the console shows a person, found walking issue 13's "Done when" with demo data
 * (scripts/demo-data.ts): amounts in the currency, times in UTC minutes, statuses and reasons in
 * words, never minor units, ISO text or the processor's status codes.
 */
import { explainDispute } from '../../lambdas/disputes/model.ts';
import { disputeStatusText, dueText } from '../../lambdas/console/pages/disputes.ts';
import { entryDetails, withoutAction } from '../../lambdas/console/pages/payment.ts';
import { riskReason, riskReasons } from '../../lambdas/console/pages/parts.ts';
import { exceptionReason } from '../../lambdas/console/pages/exception-text.ts';

test('timeline details: amounts in the currency, durations in ms, ISO times in UTC, lists as lists', () => {
  expect(
    entryDetails(
      { type: 'created', at: 'x', amount: 8419, currency: 'eur', capture_method: 'automatic' },
      'usd',
    ),
  ).toBe('amount: 84.19 EUR · currency: eur · capture method: automatic');
  // A refund entry has no currency of its own: the payment's.
  expect(entryDetails({ type: 'refund', refund_id: 're_1', amount: 2000, event: 'requested' }, 'usd')).toBe(
    'refund id: re_1 · amount: 20.00 USD · event: requested',
  );
  expect(entryDetails({ type: 'attempt', latency_ms: 172, started: '2026-11-30T01:20:28.123Z' }, 'usd')).toBe(
    'latency: 172 ms · started: 2026-11-30 01:20:28 UTC',
  );
  expect(entryDetails({ type: 'workflow', event: 'routed', processors: ['adyen', 'stripe'] }, 'usd')).toBe(
    'event: routed · processors: adyen, stripe',
  );
  expect(entryDetails({ type: 'risk', decision: 'allow', reasons: [] }, 'usd')).toBe(
    'decision: allow · reasons: none',
  );
  expect(
    entryDetails({
      type: 'risk',
      decision: 'review',
      reasons: ['amount 1207200 usd is above the review limit 1000000'],
    }),
  ).toBe('decision: review · reasons: amount 12072.00 USD is above the review limit 10000.00 USD');
});

test('risk reasons name amounts in the currency; other reasons are kept', () => {
  expect(riskReason('amount 1207300 eur is above the review limit 1000000')).toBe(
    'amount 12073.00 EUR is above the review limit 10000.00 EUR',
  );
  expect(riskReason('amount 5000 jpy is above the review limit 1000')).toBe(
    'amount 5000 JPY is above the review limit 1000 JPY',
  );
  expect(
    riskReasons([
      'customer country KP is on the review list',
      'customer made 11 payments this hour (limit 10)',
    ]),
  ).toBe('customer country KP is on the review list; customer made 11 payments this hour (limit 10)');
});

test('the explanation does not repeat the recommended action listed below it', () => {
  const action = 'Ask the customer to check the expiry date they entered, or to use another card.';
  expect(withoutAction(`The card has expired. ${action}`, action)).toBe('The card has expired.');
  expect(withoutAction('Payment of 10.00 USD is captured.', action)).toBe(
    'Payment of 10.00 USD is captured.',
  );
  expect(withoutAction(action, action)).toBe(action);
  expect(withoutAction('Anything.', undefined)).toBe('Anything.');
});

test('dispute statuses in words, and the deadline in the explanation in UTC minutes', () => {
  expect(disputeStatusText('warning_needs_response')).toBe('inquiry, needs a response');
  expect(disputeStatusText('warning_under_review')).toBe('inquiry, under review');
  expect(disputeStatusText('needs_response')).toBe('needs a response');
  expect(disputeStatusText('under_review')).toBe('under review');
  expect(disputeStatusText('lost')).toBe('lost');
  const d = {
    status: 'warning_needs_response' as const,
    evidence_due_by: 1_796_260_855,
    reason: 'fraudulent',
  };
  const text = explainDispute(d, dueText);
  expect(text).toContain('Answer with evidence by 2026-12-03 01:20 UTC to stop it');
  expect(text).not.toMatch(/\d{4}-\d{2}-\d{2}T/);
  // The API keeps ISO 8601.
  expect(explainDispute(d)).toContain('by 2026-12-03T01:20:55.000Z');
});

test('reconciliation exception reasons name amounts in the currency', () => {
  expect(exceptionReason('charge settled for 19398 but paystep captured 19397 (difference 1)', 'usd')).toBe(
    'charge settled for 193.98 USD but paystep captured 193.97 USD (difference 0.01 USD)',
  );
  expect(
    exceptionReason('payout po_1 paid 1129941 but its 143 lines net to 1129942 (difference -1)', 'usd'),
  ).toBe('payout po_1 paid 11299.41 USD but its 143 lines net to 11299.42 USD (difference -0.01 USD)');
  expect(exceptionReason('fee 60 on a 1000 charge; the fee schedule says 59 (difference 1)', 'eur')).toBe(
    'fee 0.60 EUR on a 10.00 EUR charge; the fee schedule says 0.59 EUR (difference 0.01 EUR)',
  );
  expect(
    exceptionReason('refunds settled for payment pay_1 reach 1500, above the 1000 captured', 'usd'),
  ).toBe('refunds settled for payment pay_1 reach 15.00 USD, above the 10.00 USD captured');
  expect(exceptionReason('refunds settled for payment pay_1 reach 500 but paystep refunded 400', 'usd')).toBe(
    'refunds settled for payment pay_1 reach 5.00 USD but paystep refunded 4.00 USD',
  );
  expect(
    exceptionReason(
      'captured 1050 on 2026-11-01; no payout paid it by 2026-11-09 (settlement delay 7 days)',
      'usd',
    ),
  ).toBe('captured 10.50 USD on 2026-11-01; no payout paid it by 2026-11-09 (settlement delay 7 days)');
  expect(exceptionReason('line txn_1 is listed twice', 'usd')).toBe('line txn_1 is listed twice');
});
