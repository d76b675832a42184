/**
 * Connector contract: payments. The same scenarios for every connector (harness.ts), through
 * `ProcessorAdapter` only, with paystep's test payment method ids (docs/decisions/0004): automatic
 * and manual capture, partial capture, cancel, declines mapped into the same paystep codes,
 * authentication required, retrieve, and idempotency (the same key twice is one operation).
 *
 * Asynchronous processors (Adyen answers captures and cancels `received` and settles them by
 * notification) are read back with `retrieve` until the outcome is there: the contract is the
 * eventual state, not the first answer.
 */
import { ProcessorRequestError } from '../../lambdas/connectors/types.ts';
import { describeContract, eventually, referenceOf, targetCan, testIf } from './harness.ts';

describeContract('payments', (fx, target) => {
  const withOutcomes = testIf(targetCan(target, 'outcomes'));
  const onSimulator = testIf(targetCan(target, 'simulator'));

  test('automatic capture: pm_card_visa is captured in full, with its card', async () => {
    const { result } = await fx().authorize({ amount: 2000 });
    expect(result).toMatchObject({ outcome: 'captured', amountCaptured: 2000 });
    if (result.outcome !== 'captured') return;
    expect(result.card).toMatchObject({ brand: 'visa' });
    expect(result.card?.last4).toMatch(/^\d{4}$/);
  });

  withOutcomes(
    'retrieve: an automatically captured payment reads back captured, in its currency',
    async () => {
      const { result } = await fx().authorize({ amount: 2100 });
      const r = await eventually(
        'the payment to read back captured',
        () => fx().adapter.retrieve(referenceOf(result)),
        (x) => x.status === 'captured',
      );
      expect(r).toMatchObject({
        processorReference: referenceOf(result),
        status: 'captured',
        amount: 2100,
        amountCaptured: 2100,
        amountRefunded: 0,
        currency: fx().currency,
      });
    },
  );

  test('manual capture: authorized with nothing captured', async () => {
    const { result } = await fx().authorize({ captureMethod: 'manual', amount: 1500 });
    expect(result).toMatchObject({ outcome: 'authorized', amountCaptured: 0 });
  });

  withOutcomes(
    'manual capture: authorized reads back authorized; capture takes the full amount',
    async () => {
      const { req, result } = await fx().authorize({ captureMethod: 'manual', amount: 1500 });
      const ref = referenceOf(result);
      await eventually(
        'authorized',
        () => fx().adapter.retrieve(ref),
        (x) => x.status === 'authorized',
      );
      const c = await fx().adapter.capture(ref, undefined, `${req.paymentId}:capture`);
      expect(c).toMatchObject({ processorReference: ref, amountCaptured: 1500 });
      const r = await eventually(
        'captured',
        () => fx().adapter.retrieve(ref),
        (x) => x.status === 'captured',
      );
      expect(r).toMatchObject({ amount: 1500, amountCaptured: 1500 });
    },
  );

  withOutcomes('partial capture: capturing 1200 of 2000 leaves the payment captured at 1200', async () => {
    const { req, result } = await fx().authorize({ captureMethod: 'manual', amount: 2000 });
    const ref = referenceOf(result);
    await eventually(
      'authorized',
      () => fx().adapter.retrieve(ref),
      (x) => x.status === 'authorized',
    );
    const c = await fx().adapter.capture(ref, 1200, `${req.paymentId}:capture`);
    expect(c.amountCaptured).toBe(1200);
    const r = await eventually(
      'captured',
      () => fx().adapter.retrieve(ref),
      (x) => x.status === 'captured',
    );
    // The released remainder is not a refund: nothing was refunded (Stripe shows the remainder in its
    // charge's amount_refunded; the connector must not count it).
    expect(r).toMatchObject({ amount: 2000, amountCaptured: 1200, amountRefunded: 0 });
  });

  withOutcomes('cancel: an authorization is canceled and reads back canceled', async () => {
    const { req, result } = await fx().authorize({ captureMethod: 'manual', amount: 900 });
    const ref = referenceOf(result);
    await eventually(
      'authorized',
      () => fx().adapter.retrieve(ref),
      (x) => x.status === 'authorized',
    );
    const c = await fx().adapter.cancel(ref, `${req.paymentId}:cancel`);
    expect(c.processorReference).toBe(ref);
    const r = await eventually(
      'canceled',
      () => fx().adapter.retrieve(ref),
      (x) => x.status === 'canceled',
    );
    expect(r.amountCaptured).toBe(0);
  });

  // The same paystep code, category and retryability on every connector (the decline taxonomy).
  test.each([
    ['pm_card_visa_chargeDeclinedInsufficientFunds', 'insufficient_funds', 'soft_decline', true],
    ['pm_card_chargeDeclinedExpiredCard', 'expired_card', 'hard_decline', false],
    ['pm_card_visa_chargeDeclined', 'generic_decline', 'soft_decline', true],
  ] as const)('decline: %s → %s', async (paymentMethod, code, category, retryable) => {
    const { result } = await fx().authorize({ paymentMethod });
    expect(result.outcome).toBe('declined');
    if (result.outcome !== 'declined') return;
    expect(result.failure).toMatchObject({ code, category, retryable });
    // Words support can read out, and the processor's own code for the record.
    for (const field of ['message', 'explanation', 'recommended_action', 'processor_code'] as const)
      expect(result.failure[field].length).toBeGreaterThan(3);
  });

  test('authentication required: pm_card_authenticationRequired asks for customer action', async () => {
    const { result } = await fx().authorize({ paymentMethod: 'pm_card_authenticationRequired' });
    expect(result.outcome).toBe('requires_action');
    expect(referenceOf(result)).toBeTruthy();
  });

  test('an unknown test payment method id is refused as a request error, not a decline', async () => {
    await expect(fx().authorize({ paymentMethod: 'pm_card_doesNotExist' })).rejects.toBeInstanceOf(
      ProcessorRequestError,
    );
  });

  test('idempotency: the same request and key twice answer the same payment', async () => {
    const req = fx().request({ amount: 1300 });
    const a = await fx().authorizeRequest(req);
    const b = await fx().authorizeRequest(req);
    expect(referenceOf(b)).toBe(referenceOf(a));
    expect(b.outcome).toBe(a.outcome);
  });

  onSimulator('idempotency: the same key twice is one payment and one capture at the processor', async () => {
    const before = await fx().operations!();
    const req = fx().request({ amount: 1400, captureMethod: 'manual' });
    const a = await fx().authorizeRequest(req);
    await fx().authorizeRequest(req);
    expect((await fx().operations!()) - before).toBe(1);
    const ref = referenceOf(a);
    await eventually(
      'authorized',
      () => fx().adapter.retrieve(ref),
      (x) => x.status === 'authorized',
    );
    await fx().adapter.capture(ref, 1000, `${req.paymentId}:capture`);
    await fx().adapter.capture(ref, 1000, `${req.paymentId}:capture`);
    expect((await fx().operations!()) - before).toBe(2);
    const r = await eventually(
      'captured',
      () => fx().adapter.retrieve(ref),
      (x) => x.status === 'captured',
    );
    expect(r.amountCaptured).toBe(1000);
  });
});
