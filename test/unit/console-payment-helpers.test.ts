/**
 * The pure helpers of the console's payment screens: what the search box was given, amounts typed
 * by people, the refund limit's refusal, the execution history → states visited, which executions
 * can be re-driven, and the payment page's small summaries.
 */
import type { HistoryEvent } from '@aws-sdk/client-sfn';
import type { Payment } from '../../lambdas/domain/payment.ts';
import { redriveRefusal } from '../../lambdas/console/pages/executions.ts';
import { overLimitMessage } from '../../lambdas/console/pages/payment-actions.ts';
import { deliverySummary, entryDetails, executionArnsOf } from '../../lambdas/console/pages/payment.ts';
import { searchInput } from '../../lambdas/console/pages/payments.ts';
import { classifyQuery, majorText, parseMajorAmount } from '../../lambdas/console/pages/parts.ts';
import { ConsoleError } from '../../lambdas/console/types.ts';
import {
  awsConsoleUrl,
  DEFINITIONS,
  paymentIdOfExecution,
  visitsOf,
} from '../../lambdas/console/workflows.ts';
import { operator } from '../fixtures/console.ts';

test('the search box recognizes a payment id, an email, a processor reference, else an order id', () => {
  expect(classifyQuery('pay_0123456789abcdef')).toBe('payment');
  expect(classifyQuery(' Jane.Doe@example.com ')).toBe('email');
  expect(classifyQuery('pi_3PqR0123456789')).toBe('reference');
  expect(classifyQuery('ch_123')).toBe('reference');
  expect(classifyQuery('8815392749201937')).toBe('reference'); // an Adyen pspReference
  expect(classifyQuery('ORDER-2026-0042')).toBe('order');
  expect(classifyQuery('12345')).toBe('order');
});

test('search input: dates are days (to is inclusive), unknown values are refused naming them', () => {
  const s = searchInput({ q: 'a@b.co', status: 'failed', from: '2026-11-01', to: '2026-11-02' });
  expect(s).toMatchObject({ q: 'a@b.co', kind: 'email', status: 'failed' });
  expect(s.fromMs).toBe(Date.parse('2026-11-01T00:00:00Z'));
  expect(s.toMs).toBe(Date.parse('2026-11-03T00:00:00Z'));
  expect(() => searchInput({ status: 'lost' })).toThrow("Unknown status 'lost'.");
  expect(() => searchInput({ from: '1/11/2026' })).toThrow("'1/11/2026' is not a date (YYYY-MM-DD).");
  expect(() => searchInput({ merchant: 'acme' })).toThrow(ConsoleError);
  expect(searchInput({ before: 'nonsense' }).before).toBeUndefined();
});

test('amounts typed in major units become minor units, with the currency decimals', () => {
  expect(parseMajorAmount('12.34', 'usd')).toBe(1234);
  expect(parseMajorAmount('12', 'usd')).toBe(1200);
  expect(parseMajorAmount('1,000.5', 'usd')).toBe(100050);
  expect(parseMajorAmount('500', 'jpy')).toBe(500);
  expect(parseMajorAmount('1.005', 'kwd')).toBe(1005);
  for (const bad of ['', '0', '-1', '1.234', '12.3.4', 'ten', '1e3'])
    expect(parseMajorAmount(bad, 'usd')).toBeUndefined();
  expect(parseMajorAmount('1.5', 'jpy')).toBeUndefined();
  expect(majorText(1234, 'usd')).toBe('12.34');
  expect(majorText(5, 'usd')).toBe('0.05');
});

test('the refund limit: support up to its limit, admin without one, finance none', () => {
  expect(overLimitMessage(operator('support'), 10_000, 'usd')).toBeUndefined();
  expect(overLimitMessage(operator('support'), 10_001, 'usd')).toBe(
    'A refund of 100.01 USD is over your refund limit of 100.00 USD: ask an admin to issue it.',
  );
  expect(overLimitMessage(operator('support', { refund_limit: 500 }), 600, 'eur')).toMatch(
    /limit of 5.00 EUR/,
  );
  expect(overLimitMessage(operator('admin'), 99_999_999, 'usd')).toBeUndefined();
  expect(overLimitMessage(operator('finance'), 1, 'usd')).toBe('Your role cannot issue refunds.');
});

const ev = (id: number, type: string, seconds: number, details: Record<string, unknown> = {}): HistoryEvent =>
  ({ id, type, timestamp: new Date(seconds * 1000), ...details }) as unknown as HistoryEvent;
const entered = (name: string, input: unknown) => ({
  stateEnteredEventDetails: { name, input: JSON.stringify(input) },
});
const exited = (name: string, output: unknown) => ({
  stateExitedEventDetails: { name, output: JSON.stringify(output) },
});

test('history → states visited with input, output, timing, retries and errors; where it failed', () => {
  const events = [
    ev(1, 'ExecutionStarted', 100),
    ev(2, 'TaskStateEntered', 100, entered('Authorize with processor', { payment_id: 'pay_1' })),
    ev(3, 'TaskScheduled', 100, { taskScheduledEventDetails: { resource: 'invoke' } }),
    ev(4, 'TaskFailed', 101, { taskFailedEventDetails: { error: 'ProcessorUnavailable', cause: 'refused' } }),
    ev(5, 'TaskScheduled', 102, { taskScheduledEventDetails: { resource: 'invoke' } }),
    ev(6, 'TaskFailed', 103, {
      taskFailedEventDetails: { error: 'ProcessorUnavailable', cause: 'still refused' },
    }),
    ev(7, 'TaskStateExited', 103, exited('Authorize with processor', { error: 'x' })),
    ev(8, 'FailStateEntered', 103, entered('Outcome unknown', {})),
    ev(9, 'ExecutionFailed', 103, { executionFailedEventDetails: { error: 'NeedsAttention' } }),
  ];
  const path = visitsOf(events, 'FAILED', DEFINITIONS.payment);
  expect(path.visits.map((v) => [v.name, v.type, v.attempts, v.error])).toEqual([
    ['Authorize with processor', 'Task', 2, 'ProcessorUnavailable'],
    ['Outcome unknown', 'Fail', 0, null],
  ]);
  expect(path.visits[0]).toMatchObject({
    durationMs: 3000,
    input: '{"payment_id":"pay_1"}',
    cause: 'still refused',
  });
  expect(path.failed).toEqual(['Outcome unknown']);
  expect(path.current).toBeUndefined();
  expect(path.waitingForToken).toBe(false);
});

test('a running execution waiting on a task token: its current state, waiting', () => {
  const events = [
    ev(1, 'ExecutionStarted', 100),
    ev(2, 'TaskStateEntered', 100, entered('Wait for a review decision', {})),
    ev(3, 'TaskScheduled', 100, { taskScheduledEventDetails: { resource: 'invoke.waitForTaskToken' } }),
    ev(4, 'TaskStarted', 100, {
      taskStartedEventDetails: { resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken' },
    }),
  ];
  const path = visitsOf(events, 'RUNNING');
  expect(path).toMatchObject({ current: 'Wait for a review decision', waitingForToken: true, failed: [] });
  // Stopped there: the state it stopped in is where it failed.
  expect(visitsOf(events, 'ABORTED').failed).toEqual(['Wait for a review decision']);
  expect(visitsOf(events.slice(0, 2), 'RUNNING').waitingForToken).toBe(false);
});

test('executions: the payment of a payment workflow, re-driven ones included; the AWS console link', () => {
  expect(paymentIdOfExecution('payment', 'pay_0123456789abcdef')).toBe('pay_0123456789abcdef');
  expect(paymentIdOfExecution('payment', 'pay_0123456789abcdef-r2')).toBe('pay_0123456789abcdef');
  expect(paymentIdOfExecution('refund', 're_0123456789abcdef')).toBeUndefined();
  const arn = 'arn:aws:states:eu-west-1:123456789012:execution:paystep-payment:pay_0123456789abcdef';
  expect(awsConsoleUrl(arn, null)).toBe(
    `https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/${encodeURIComponent(arn)}`,
  );
  expect(awsConsoleUrl(arn, 'us-east-1')).toMatch(/^https:\/\/us-east-1\.console/);
  expect(awsConsoleUrl('arn:aws:states:local:000000000000:execution:paystep-payment:pay_1', null)).toBeNull();
});

test('re-drive only a payment workflow that ended while its payment still needs one', () => {
  const arn = 'arn:aws:states:local:0:execution:paystep-payment:pay_0123456789abcdef';
  const p = (status: Payment['status'], execution_arn = arn) => ({ status, execution_arn }) as Payment;
  const x = (status: string, machine: 'payment' | 'refund' = 'payment') => ({ arn, machine, status });
  expect(redriveRefusal(x('FAILED'), p('authorized'))).toBeUndefined();
  expect(redriveRefusal(x('TIMED_OUT'), p('processing'))).toBeUndefined();
  expect(redriveRefusal(x('ABORTED'), p('requires_action'))).toBeUndefined();
  expect(redriveRefusal(x('RUNNING'), p('authorized'))).toBe('The execution is still running.');
  expect(redriveRefusal(x('SUCCEEDED'), p('captured'))).toMatch(/succeeded/);
  expect(redriveRefusal(x('FAILED'), p('failed'))).toBe(
    'The payment is failed: it needs no workflow any more.',
  );
  expect(redriveRefusal(x('FAILED'), p('authorized', `${arn}-r1`))).toMatch(
    /newer workflow execution \(pay_0123456789abcdef-r1\)/,
  );
  expect(redriveRefusal(x('FAILED', 'refund'), p('authorized'))).toMatch(/Only payment workflows/);
});

test("the payment page's executions: every one its timeline names, then the current one, once each", () => {
  const a = 'arn:…:pay_1';
  const b = 'arn:…:pay_1-r1';
  const p = { execution_arn: b } as Payment;
  expect(
    executionArnsOf(p, [
      { type: 'workflow', event: 'started', execution_arn: a },
      { type: 'status_changed', status: 'authorized' },
      { type: 'workflow', event: 're-driven', execution_arn: b },
    ]),
  ).toEqual([a, b]);
  expect(executionArnsOf({ execution_arn: a } as Payment, [])).toEqual([a]);
  expect(entryDetails({ type: 'attempt', at: 'x', processor: 'stripe', latency_ms: 12, failure: null })).toBe(
    'processor: stripe · latency: 12 ms',
  );
});

test('delivery summary of a merchant event', () => {
  expect(deliverySummary([])).toBe('no endpoint subscribed');
  expect(
    deliverySummary([
      {
        url: 'https://a.example/h',
        status: 'delivered',
        attempt_count: 1,
        last_http_status: 200,
        last_error: null,
      },
      {
        url: 'https://b.example/h',
        status: 'failed',
        attempt_count: 3,
        last_http_status: null,
        last_error: 'timeout',
      },
    ]),
  ).toBe(
    'delivered — https://a.example/h (HTTP 200, 1 attempt); failed — https://b.example/h (timeout, 3 attempts)',
  );
});
