/**
 * Connector contract: refunds, the same for every connector (harness.ts). A refund may answer
 * `pending` (Adyen always does: REFUND / REFUND_FAILED settles it) or `succeeded` at once; the
 * contract is the state `retrieveRefund` and `retrieve` reach: full and partial refunds succeed and
 * add up on the payment, a refund above what was captured never succeeds (refused at once, or
 * failed by the processor), and the same idempotency key twice is one refund.
 */
import { ProcessorRequestError, type RefundResult } from '../../lambdas/connectors/types.ts';
import {
  describeContract,
  eventually,
  referenceOf,
  targetCan,
  testIf,
  type ContractFixture,
} from './harness.ts';

/** A payment captured for `amount` (and only `captured` of it, when given), read back captured. */
async function capturedPayment(fx: ContractFixture, amount: number, captured?: number): Promise<string> {
  const { req, result } = await fx.authorize({
    amount,
    captureMethod: captured === undefined ? 'automatic' : 'manual',
  });
  const ref = referenceOf(result);
  if (captured !== undefined) {
    await eventually(
      'authorized',
      () => fx.adapter.retrieve(ref),
      (x) => x.status === 'authorized',
    );
    await fx.adapter.capture(ref, captured, `${req.paymentId}:capture`);
  }
  await eventually(
    'captured',
    () => fx.adapter.retrieve(ref),
    (x) => x.status === 'captured',
  );
  return ref;
}

const finalRefund = (fx: ContractFixture, r: RefundResult) =>
  eventually(
    `refund ${r.refundReference} to finish`,
    () => fx.adapter.retrieveRefund(r.refundReference),
    (x) => x.status !== 'pending',
  );

describeContract('refunds', (fx, target) => {
  const withOutcomes = testIf(targetCan(target, 'outcomes'));
  const onSimulator = testIf(targetCan(target, 'simulator'));

  withOutcomes('full refund: succeeds and the payment reads back fully refunded', async () => {
    const ref = await capturedPayment(fx(), 2000);
    const r = await fx().adapter.refund(ref, 2000, `${ref}:refund:full`, 'requested_by_customer');
    expect(['pending', 'succeeded']).toContain(r.status);
    expect(r).toMatchObject({ amount: 2000 });
    expect(await finalRefund(fx(), r)).toMatchObject({
      refundReference: r.refundReference,
      status: 'succeeded',
      amount: 2000,
    });
    const p = await eventually(
      'refunded',
      () => fx().adapter.retrieve(ref),
      (x) => x.amountRefunded === 2000,
    );
    expect(p).toMatchObject({ amountCaptured: 2000, amountRefunded: 2000 });
  });

  withOutcomes('partial refunds: two succeed and add up on the payment', async () => {
    const ref = await capturedPayment(fx(), 3000);
    const a = await fx().adapter.refund(ref, 500, `${ref}:refund:a`);
    const b = await fx().adapter.refund(ref, 700, `${ref}:refund:b`);
    expect(a.refundReference).not.toBe(b.refundReference);
    expect((await finalRefund(fx(), a)).status).toBe('succeeded');
    expect((await finalRefund(fx(), b)).status).toBe('succeeded');
    const p = await eventually(
      'refunded',
      () => fx().adapter.retrieve(ref),
      (x) => x.amountRefunded === 1200,
    );
    expect(p).toMatchObject({ status: 'captured', amountCaptured: 3000, amountRefunded: 1200 });
  });

  withOutcomes(
    'never above captured: a refund above the captured amount is refused or fails, never succeeds',
    async () => {
      const ref = await capturedPayment(fx(), 2000, 1200);
      let outcome: string;
      try {
        const r = await fx().adapter.refund(ref, 1500, `${ref}:refund:over`);
        outcome = (await finalRefund(fx(), r)).status;
      } catch (err) {
        // Refused at once: a clean request error (not "unavailable", which would invite a retry).
        expect(err).toBeInstanceOf(ProcessorRequestError);
        outcome = 'refused';
      }
      expect(['refused', 'failed']).toContain(outcome);
      // Nothing was refunded; the captured amount can still be refunded in full.
      expect((await fx().adapter.retrieve(ref)).amountRefunded).toBe(0);
      const ok = await fx().adapter.refund(ref, 1200, `${ref}:refund:rest`);
      expect((await finalRefund(fx(), ok)).status).toBe('succeeded');
    },
  );

  withOutcomes(
    'a refund the processor fails after accepting it (pm_card_refundFail) ends failed, refunding nothing',
    async () => {
      const { result } = await fx().authorize({ amount: 1500, paymentMethod: 'pm_card_refundFail' });
      const ref = referenceOf(result);
      await eventually(
        'captured',
        () => fx().adapter.retrieve(ref),
        (x) => x.status === 'captured',
      );
      const r = await fx().adapter.refund(ref, 500, `${ref}:refund:fails`);
      const failed = await eventually(
        'the refund to fail',
        () => fx().adapter.retrieveRefund(r.refundReference),
        (x) => x.status === 'failed',
        20_000,
      );
      expect(failed).toMatchObject({ refundReference: r.refundReference, status: 'failed' });
      const p = await eventually(
        'nothing refunded',
        () => fx().adapter.retrieve(ref),
        (x) => x.amountRefunded === 0,
      );
      expect(p).toMatchObject({ status: 'captured', amountCaptured: 1500 });
    },
  );

  withOutcomes('retrieveRefund reads a refund back by its own reference', async () => {
    const ref = await capturedPayment(fx(), 1000);
    const r = await fx().adapter.refund(ref, 400, `${ref}:refund:read`);
    const back = await finalRefund(fx(), r);
    expect(back).toMatchObject({ refundReference: r.refundReference, amount: 400, status: 'succeeded' });
  });

  onSimulator('idempotency: the same refund key twice is one refund at the processor', async () => {
    const ref = await capturedPayment(fx(), 1600);
    const before = await fx().operations!();
    const a = await fx().adapter.refund(ref, 600, `${ref}:refund:once`);
    const b = await fx().adapter.refund(ref, 600, `${ref}:refund:once`);
    expect(b.refundReference).toBe(a.refundReference);
    expect((await fx().operations!()) - before).toBe(1);
    await finalRefund(fx(), a);
    const p = await eventually(
      'refunded',
      () => fx().adapter.retrieve(ref),
      (x) => x.amountRefunded > 0,
    );
    expect(p.amountRefunded).toBe(600);
  });
});
