/**
 * One error base class: paystep's errors are PaystepErrors with their own name, a code where they
 * have one, and the underlying error as `cause`.
 */
import { ApiError, PaystepError } from '../../lambdas/shared/errors.ts';
import { ConfigError } from '../../lambdas/shared/config.ts';
import { InvalidTaskInput } from '../../lambdas/shared/task-input.ts';
import { ProcessorRequestError, ProcessorUnavailableError } from '../../lambdas/connectors/types.ts';
import { TransitionRejected } from '../../lambdas/store/payments.ts';
import { RefundRejected } from '../../lambdas/store/refunds.ts';
import { DisputeConflict } from '../../lambdas/store/disputes.ts';
import { PaymentDeclined } from '../../lambdas/payments/steps/outcome.ts';

test('each is a PaystepError (and an Error) with its own name and code', () => {
  const cases: [Error, string, string | undefined][] = [
    [new ApiError(404, 'not_found', 'resource_missing', 'No such payment'), 'ApiError', 'resource_missing'],
    [new ConfigError('environment variable X is not set'), 'ConfigError', 'config_error'],
    [new TransitionRejected('pay_1', 'captured', 'failed'), 'TransitionRejected', 'transition_rejected'],
    [new RefundRejected('amount_too_large', 'too much'), 'RefundRejected', 'amount_too_large'],
    [
      new InvalidTaskInput('payment-screen', [{ path: 'payment_id', message: 'required' }]),
      'InvalidTaskInput',
      undefined,
    ],
    [new ProcessorUnavailableError('stripe', 'timeout'), 'ProcessorUnavailable', undefined],
    [
      new ProcessorRequestError('stripe', 'refused', 'charge_already_refunded'),
      'ProcessorRequestError',
      'charge_already_refunded',
    ],
    [new DisputeConflict('changed'), 'DisputeConflict', undefined],
    [new PaymentDeclined('insufficient_funds'), 'PaymentDeclined', undefined],
  ];
  for (const [err, name, code] of cases) {
    expect(err).toBeInstanceOf(PaystepError);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe(name);
    expect((err as PaystepError).code).toBe(code);
    expect(String(err)).toMatch(new RegExp(`^${name}: `));
  }
});

test('the cause is kept (ErrorOptions), and absent when none was given', () => {
  const sdk = new Error('socket hang up');
  const wrapped = new ProcessorUnavailableError('stripe', 'network error', { cause: sdk });
  expect(wrapped.cause).toBe(sdk);
  expect(new PaystepError('x', { code: 'y', cause: sdk })).toMatchObject({ code: 'y', cause: sdk });
  expect('cause' in new ConfigError('x')).toBe(false);
  const api = new ApiError(502, 'api_error', 'capture_failed', 'The processor failed', undefined, {
    cause: sdk,
  });
  expect(api.cause).toBe(sdk);
  expect(api.toJSON()).toEqual({
    error: { type: 'api_error', code: 'capture_failed', message: 'The processor failed' },
  });
});
