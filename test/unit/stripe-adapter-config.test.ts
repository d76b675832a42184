/**
 * Configuring the Stripe adapter: stripeAdapterFromEnv against the simulator, and the same flow
 * against real Stripe test mode when STRIPE_SECRET_KEY holds a test key (skipped otherwise: no
 * network here).
 */
import { randomUUID } from 'node:crypto';
import { StripeAdapter, stripeAdapterFromEnv } from '../../lambdas/connectors/stripe/adapter.ts';
import { type AuthorizeRequest } from '../../lambdas/connectors/types.ts';
import { KEY, url, authorizeRequest, authorized, useStripeSimulator } from '../fixtures/stripe-simulator.ts';

useStripeSimulator();

test('stripeAdapterFromEnv needs STRIPE_SECRET_KEY and honours STRIPE_API_BASE', async () => {
  expect(() => stripeAdapterFromEnv({})).toThrow(/STRIPE_SECRET_KEY/);
  const a = stripeAdapterFromEnv({
    STRIPE_SECRET_KEY: KEY,
    STRIPE_API_BASE: url,
    STRIPE_MAX_NETWORK_RETRIES: '0',
  });
  expect(authorized(await a.authorize(authorizeRequest())).outcome).toBe('captured');
  expect(() => stripeAdapterFromEnv({ STRIPE_SECRET_KEY: KEY, STRIPE_TIMEOUT_MS: 'soon' })).toThrow(
    /STRIPE_TIMEOUT_MS/,
  );
});

// --- Real Stripe test mode: the same flow, when a test key is available (not here: no network). ---
const realKey = process.env.STRIPE_SECRET_KEY;
(realKey?.startsWith('sk_test_') || realKey?.startsWith('rk_test_') ? describe : describe.skip)(
  'against real Stripe test mode',
  () => {
    const real = () => new StripeAdapter({ secretKey: realKey!, maxNetworkRetries: 2, timeoutMs: 20_000 });
    const req = (over: Partial<AuthorizeRequest> = {}) =>
      authorizeRequest({ idempotencyKey: `paystep-unit-${randomUUID()}`, ...over });

    test('automatic capture, replay, refund', async () => {
      const a = real();
      const first = req();
      const r = authorized(await a.authorize(first));
      expect(r).toMatchObject({
        outcome: 'captured',
        amountCaptured: 1000,
        card: { brand: 'visa', last4: '4242' },
      });
      expect(authorized(await a.authorize(first)).processorReference).toBe(r.processorReference);
      const refund = await a.refund(r.processorReference, 400, `paystep-unit-${randomUUID()}`);
      expect(refund).toMatchObject({ status: 'succeeded', amount: 400 });
      expect(await a.retrieve(r.processorReference)).toMatchObject({
        status: 'captured',
        amountRefunded: 400,
      });
    }, 60_000);

    test('manual capture, partial', async () => {
      const a = real();
      const r = authorized(await a.authorize(req({ captureMethod: 'manual' })));
      expect(r.outcome).toBe('authorized');
      expect(
        (await a.capture(r.processorReference, 600, `paystep-unit-${randomUUID()}`)).amountCaptured,
      ).toBe(600);
    }, 60_000);

    test('decline and authentication', async () => {
      const a = real();
      const d = await a.authorize(req({ paymentMethod: 'pm_card_visa_chargeDeclinedInsufficientFunds' }));
      expect(d).toMatchObject({ outcome: 'declined', failure: { code: 'insufficient_funds' } });
      const t = await a.authorize(req({ paymentMethod: 'pm_card_authenticationRequired' }));
      expect(t.outcome).toBe('requires_action');
      await a.cancel(t.processorReference!, `paystep-unit-${randomUUID()}`);
    }, 60_000);
  },
);
