/**
 * The task input contract (lambdas/shared/task-input.ts): the workflows' Lambda tasks parse their event
 * with a zod schema; invalid input fails with InvalidTaskInput, named for the retry policies and the
 * workflows' Catch, before the handler touches a table or a processor.
 */
import { z } from 'zod';
import {
  InvalidTaskInput,
  parseTaskInput,
  prefixedId,
  taskHandler,
  taskToken,
} from '../../lambdas/shared/task-input.ts';
import { handler as holdPayment } from '../../lambdas/payments/steps/hold.ts';
import { handler as cancelPayment } from '../../lambdas/payments/steps/cancel.ts';
import { handler as reconcilePayment } from '../../lambdas/payments/steps/reconcile.ts';
import { handler as finishRefund } from '../../lambdas/refunds/steps/finish.ts';
import { handler as disputeStep } from '../../lambdas/disputes/steps/step.ts';
import { handler as disputeHold } from '../../lambdas/disputes/steps/hold.ts';
import { handler as prepareReconciliation } from '../../lambdas/reconciliation/prepare.ts';
import { handler as completePing } from '../../lambdas/ping/complete.ts';

const Schema = z.object({
  payment_id: prefixedId('pay'),
  token: taskToken,
  amount: z.number().int().optional(),
});

/** The rejection of `p`, which must be an InvalidTaskInput. */
async function invalid(p: Promise<unknown>): Promise<InvalidTaskInput> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InvalidTaskInput);
  return err as InvalidTaskInput;
}

describe('parseTaskInput / taskHandler', () => {
  test('valid input comes back parsed and typed; unknown keys are dropped', () => {
    expect(parseTaskInput('t', Schema, { payment_id: 'pay_1', token: 'tok', extra: 1 })).toEqual({
      payment_id: 'pay_1',
      token: 'tok',
    });
  });

  test('invalid input is an InvalidTaskInput naming the task and every problem, never the values', () => {
    let err: unknown;
    try {
      parseTaskInput('payment-hold', Schema, { payment_id: 're_1', token: 'secret-token', amount: 'ten' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidTaskInput);
    const e = err as InvalidTaskInput;
    expect(e.name).toBe('InvalidTaskInput'); // the Error the workflows see
    expect(e.task).toBe('payment-hold');
    expect(e.issues.map((i) => i.path)).toEqual(['payment_id', 'amount']);
    expect(e.message).toMatch(/^payment-hold: invalid task input: payment_id: expected a pay_… id; amount: /);
    expect(e.message).not.toContain('secret-token');
    expect(e.message).not.toContain('re_1');
  });

  test('an event that is not an object is refused as a whole', () => {
    for (const event of [null, undefined, 'pay_1', 42, []]) {
      expect(() => parseTaskInput('t', Schema, event)).toThrow(InvalidTaskInput);
    }
    expect(() => parseTaskInput('t', Schema, null)).toThrow(/\(input\): /);
  });

  test('taskHandler rejects before the handler runs, and passes the parsed input when valid', async () => {
    const seen: unknown[] = [];
    const handler = taskHandler('t', Schema, async (input) => {
      seen.push(input);
      return input.payment_id;
    });
    await invalid(handler({ payment_id: 'pay_1' }));
    expect(seen).toEqual([]);
    await expect(handler({ payment_id: 'pay_1', token: 'x' })).resolves.toBe('pay_1');
    expect(seen).toEqual([{ payment_id: 'pay_1', token: 'x' }]);
  });
});

describe('workflow task handlers refuse bad input before any I/O', () => {
  // No table, queue or processor exists in this test: a handler that got past its input check would
  // fail with a different error.
  test.each([
    ['payment-hold: no token', holdPayment, { payment_id: 'pay_1', kind: 'capture' }, 'token'],
    ['payment-hold: unknown wait', holdPayment, { payment_id: 'pay_1', kind: 'refund', token: 't' }, 'kind'],
    ['payment-cancel: a refund id', cancelPayment, { payment_id: 're_1', reason: 'duplicate' }, 'payment_id'],
    ['payment-cancel: unknown reason', cancelPayment, { payment_id: 'pay_1', reason: 'bored' }, 'reason'],
    ['payment-reconcile: unknown reason', reconcilePayment, { payment_id: 'pay_1', reason: 'x' }, 'reason'],
    ['refund-finish: pending is not final', finishRefund, { refund_id: 're_1', status: 'pending' }, 'status'],
    ['refund-finish: flag without id', finishRefund, { needs_attention: { Error: 'X' } }, 'refund_id'],
    ['dispute-step: unknown action', disputeStep, { dispute_id: 'dp_1', action: 'win' }, 'action'],
    [
      'dispute-step: escalation without reason',
      disputeStep,
      { dispute_id: 'dp_1', action: 'escalate' },
      'reason',
    ],
    [
      'dispute-hold: seq as text',
      disputeHold,
      { dispute_id: 'dp_1', wait: 'evidence', token: 't', seen_seq: '3' },
      'seen_seq',
    ],
    ['reconciliation-prepare: no source', prepareReconciliation, { processor: 'stripe' }, 'source'],
    [
      'reconciliation-prepare: unknown source kind',
      prepareReconciliation,
      { processor: 'stripe', source: { kind: 'email' } },
      'source.kind',
    ],
    ['ping-complete: no report key', completePing, { ping_id: 'png_1', report: {} }, 'report.report_key'],
  ] as const)('%s', async (_, handler, event, path) => {
    const err = await invalid((handler as (e: unknown) => Promise<unknown>)(event));
    expect(err.issues.map((i) => i.path)).toContain(path);
  });
});
