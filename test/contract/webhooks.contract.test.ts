/**
 * Connector contract: incoming webhooks, the same for every connector (harness.ts). A genuine
 * delivery the simulator sent (signed as the processor signs) verifies as paystep's route verifies
 * it; the same delivery with its amount changed and the signature kept is rejected; a verified
 * delivery parses, with the connector's own receiver (lambdas/connectors/webhooks.ts), into
 * processor-neutral facts (lambdas/connectors/facts.ts) about the payment, each with a stable id (a
 * redelivery is the same fact), and the facts of every delivery about a payment fold to its state
 * whatever their order.
 */
import { paymentState, type ConnectorFact } from '../../lambdas/connectors/facts.ts';
import {
  describeContract,
  eventually,
  referenceOf,
  targetCan,
  testIf,
  type ContractFixture,
} from './harness.ts';

async function capturedPayment(fx: ContractFixture) {
  const { req, result } = await fx.authorize({ amount: 2300 });
  expect(result.outcome).toBe('captured');
  return { req, ref: referenceOf(result) };
}

describeContract('webhooks', (fx, target) => {
  const onSimulator = testIf(targetCan(target, 'simulator'));
  onSimulator('a genuine signed delivery about a payment verifies', async () => {
    const { ref } = await capturedPayment(fx());
    const d = await fx().webhookAbout!(ref);
    expect(fx().verifyWebhook(d)).toEqual({ ok: true });
  });

  onSimulator('a forged delivery (amount changed, signature kept) is rejected', async () => {
    const { ref } = await capturedPayment(fx());
    const d = await fx().webhookAbout!(ref);
    const forged = fx().forgeWebhook(d);
    expect(forged.body).not.toBe(d.body);
    const v = fx().verifyWebhook(forged);
    expect(v.ok).toBe(false);
    expect(v.reason).toMatch(/signature/);
  });

  onSimulator('an unsigned delivery is rejected', async () => {
    const { ref } = await capturedPayment(fx());
    const d = await fx().webhookAbout!(ref);
    const body = d.body.replace(/"hmacSignature"\s*:\s*"[^"]*"/g, '"hmacSignature":""');
    const headers = Object.fromEntries(Object.entries(d.headers).filter(([k]) => k !== 'stripe-signature'));
    expect(fx().verifyWebhook({ body, headers }).ok).toBe(false);
  });

  onSimulator('a verified delivery parses into facts about the payment, with stable ids', async () => {
    const { req, ref } = await capturedPayment(fx());
    const d = await fx().webhookAbout!(ref);
    const facts = fx().parseWebhook(d);
    const fact = facts.find(
      (f): f is Extract<ConnectorFact, { kind: 'payment' }> => f.kind === 'payment' && f.reference === ref,
    );
    // Stripe's first event about a payment and Adyen's AUTHORISATION say different stages of it:
    // each is a payment fact about this payment, naming paystep's payment.
    expect(fact).toMatchObject({
      kind: 'payment',
      processor: fx().name,
      reference: ref,
      merchantReference: req.paymentId,
    });
    expect(fact!.id).toBeTruthy();
    // A redelivery is the same fact (stored once by its id).
    expect(
      fx()
        .parseWebhook(d)
        .map((f) => f.id),
    ).toEqual(facts.map((f) => f.id));
  });

  onSimulator('a refund delivery parses into a refund fact about its payment', async () => {
    const { ref } = await capturedPayment(fx());
    const r = await fx().adapter.refund(ref, 800, `${ref}:refund:hook`);
    const d = await fx().webhookAbout!(r.refundReference);
    const facts = fx().parseWebhook(d);
    expect(facts).toContainEqual(
      expect.objectContaining({
        kind: 'refund',
        reference: r.refundReference,
        paymentReference: ref,
        event: 'succeeded',
        amount: { value: 800, currency: fx().currency },
      }),
    );
    await eventually(
      'refund settled',
      () => fx().adapter.retrieveRefund(r.refundReference),
      (x) => x.status === 'succeeded',
    );
  });

  onSimulator("every delivery about a payment, in any order, folds to the payment's state", async () => {
    const { req, result } = await fx().authorize({ amount: 2400, captureMethod: 'manual' });
    const ref = referenceOf(result);
    await eventually(
      'authorized',
      () => fx().adapter.retrieve(ref),
      (x) => x.status === 'authorized',
    );
    await fx().adapter.capture(ref, 1800, `${req.paymentId}:capture`);
    const ctx = { amount: 2400, currency: fx().currency, captureMethod: 'manual' as const };
    const facts = await eventually(
      'the deliveries of the capture',
      async () => (await fx().webhooksAbout!(ref)).flatMap((d) => fx().parseWebhook(d)),
      (fs) => paymentState(ref, fs, ctx)?.status === 'captured',
    );
    const ids = facts.map((f) => f.id);
    for (const order of [facts, [...facts].reverse()])
      expect(paymentState(ref, order, ctx)).toMatchObject({
        processorReference: ref,
        status: 'captured',
        amountCaptured: 1800,
        currency: fx().currency,
      });
    expect(new Set(ids).size).toBe(ids.length);
  });
});
