/**
 * Refunds through the Stripe adapter against the Stripe simulator: full, partial up to the captured
 * amount, retried with the same key, and the pending/failing refund test cards with their events.
 */
import { randomUUID } from 'node:crypto';
import { ProcessorRequestError } from '../../lambdas/connectors/types.ts';
import {
  sim,
  authorizeRequest,
  adapter,
  expectRejects,
  eventsOf,
  authorized,
  useStripeSimulator,
} from '../fixtures/stripe-simulator.ts';

useStripeSimulator();

describe('refunds', () => {
  test('full refund', async () => {
    const a = adapter();
    const r = authorized(await a.authorize(authorizeRequest({ amount: 2000 })));
    const refund = await a.refund(r.processorReference, 2000, randomUUID(), 'requested_by_customer');
    expect(refund).toEqual({
      refundReference: expect.stringMatching(/^re_/),
      status: 'succeeded',
      amount: 2000,
    });
    expect(sim.refund(refund.refundReference)).toMatchObject({
      object: 'refund',
      payment_intent: r.processorReference,
      reason: 'requested_by_customer',
      balance_transaction: expect.stringMatching(/^txn_/),
    });
    expect(await a.retrieve(r.processorReference)).toMatchObject({
      amountRefunded: 2000,
      status: 'captured',
    });
    const pi = sim.paymentIntent(r.processorReference)!;
    expect(sim.charge(pi.latest_charge as string)).toMatchObject({ refunded: true, amount_refunded: 2000 });
    expect(await eventsOf(refund.refundReference)).toEqual(['refund.created']);
    expect(await eventsOf(pi.latest_charge as string)).toEqual(['charge.succeeded', 'charge.refunded']);
    const again = await expectRejects(a.refund(r.processorReference, 1, randomUUID()), ProcessorRequestError);
    expect(again.code).toBe('charge_already_refunded');
  });

  test('partial refunds add up to the captured amount; more is refused', async () => {
    const a = adapter();
    const r = authorized(await a.authorize(authorizeRequest({ captureMethod: 'manual', amount: 1000 })));
    const uncaptured = await expectRejects(
      a.refund(r.processorReference, 100, randomUUID()),
      ProcessorRequestError,
    );
    expect(uncaptured.message).toMatch(/not been captured/);
    await a.capture(r.processorReference, 800, randomUUID());

    const over = await expectRejects(
      a.refund(r.processorReference, 801, randomUUID()),
      ProcessorRequestError,
    );
    expect(over.message).toMatch(
      /Refund amount \(\$8\.01\) is greater than unrefunded amount on charge \(\$8\.00\)/,
    );
    expect((await a.refund(r.processorReference, 300, randomUUID())).amount).toBe(300);
    expect((await a.refund(r.processorReference, 500, randomUUID())).amount).toBe(500);
    const more = await expectRejects(a.refund(r.processorReference, 1, randomUUID()), ProcessorRequestError);
    expect(more.code).toBe('charge_already_refunded');
    expect(await a.retrieve(r.processorReference)).toMatchObject({
      amountCaptured: 800,
      amountRefunded: 800,
    });
    expect(sim.stats().refunds).toBeGreaterThanOrEqual(2);
  });

  test('a refund retried with the same key is one refund', async () => {
    const a = adapter();
    const r = authorized(await a.authorize(authorizeRequest()));
    const key = randomUUID();
    const one = await a.refund(r.processorReference, 400, key);
    const two = await a.refund(r.processorReference, 400, key);
    expect(two.refundReference).toBe(one.refundReference);
    expect(await a.retrieve(r.processorReference)).toMatchObject({ amountRefunded: 400 });
  });

  test('pm_card_pendingRefund: pending, then succeeded; pm_card_refundFail: succeeded, then failed', async () => {
    const a = adapter();
    const pending = authorized(
      await a.authorize(authorizeRequest({ paymentMethod: 'pm_card_pendingRefund' })),
    );
    const p = await a.refund(pending.processorReference, 1000, randomUUID());
    expect(p.status).toBe('pending');
    const failing = authorized(await a.authorize(authorizeRequest({ paymentMethod: 'pm_card_refundFail' })));
    const f = await a.refund(failing.processorReference, 1000, randomUUID());
    expect(f.status).toBe('succeeded');

    sim.settleAsyncRefunds();
    expect(sim.refund(p.refundReference)).toMatchObject({ status: 'succeeded' });
    expect(sim.refund(f.refundReference)).toMatchObject({
      status: 'failed',
      failure_reason: 'expired_or_canceled_card',
      failure_balance_transaction: expect.stringMatching(/^txn_/),
    });
    expect(await a.retrieve(failing.processorReference)).toMatchObject({ amountRefunded: 0 });
    expect(await eventsOf(f.refundReference)).toEqual([
      'refund.created',
      'refund.updated',
      'charge.refund.updated',
      'refund.failed',
    ]);
  });
});
