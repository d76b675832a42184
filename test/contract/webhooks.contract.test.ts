/**
 * Connector contract: incoming webhooks, the same for every connector (harness.ts). A genuine
 * delivery the simulator sent (signed as the processor signs) verifies as paystep's route verifies
 * it; the same delivery with its amount changed and the signature kept is rejected; a verified
 * delivery parses into processor-neutral facts (lambdas/connectors/facts.ts) about the payment,
 * with a stable id, so a redelivery is the same fact.
 */
import type { ConnectorFact } from '../../lambdas/connectors/facts.ts';
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
  // Known when the suite is defined: whether this connector parses webhooks into facts yet.
  const parses = target.connector === 'adyen';
  const parsing = testIf(
    targetCan(target, 'simulator') ??
      (parses ? undefined : 'Stripe webhook → facts: lambdas/connectors/stripe/ has no facts parser yet'),
  );

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

  parsing('a verified delivery parses into facts about the payment, with stable ids', async () => {
    const { req, ref } = await capturedPayment(fx());
    const d = await fx().webhookAbout!(ref);
    const facts = fx().parseWebhook!(d);
    const fact = facts.find(
      (f): f is Extract<ConnectorFact, { kind: 'payment' }> => f.kind === 'payment' && f.reference === ref,
    );
    expect(fact).toMatchObject({
      kind: 'payment',
      reference: ref,
      merchantReference: req.paymentId,
      event: 'authorised',
      success: true,
      amount: { value: 2300, currency: fx().currency },
    });
    expect(fact!.id).toBeTruthy();
    // A redelivery is the same fact (stored once by its id).
    expect(fx().parseWebhook!(d).map((f) => f.id)).toEqual(facts.map((f) => f.id));
  });

  parsing('a refund delivery parses into a refund fact about its payment', async () => {
    const { ref } = await capturedPayment(fx());
    const r = await fx().adapter.refund(ref, 800, `${ref}:refund:hook`);
    const d = await fx().webhookAbout!(r.refundReference);
    const facts = fx().parseWebhook!(d);
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
});
