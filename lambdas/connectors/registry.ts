/**
 * The configured processors, by name, and which of them new payments may use.
 *
 * - Stripe (lambdas/connectors/stripe/): its key comes from the `stripe-secret-key` secret (Secrets Manager in AWS; locally the
 *   runtime passes STRIPE_SECRET_KEY or the simulator's key); STRIPE_API_BASE points the SDK at the
 *   local simulator and is unset in AWS.
 * - Adyen (lambdas/connectors/adyen/): its key from the `adyen-api-key` secret, the rest from
 *   config.adyen() (ADYEN_MERCHANT_ACCOUNT, ADYEN_API_BASE …). Adyen has no API to read a payment,
 *   so its adapter reads paystep's records (`AdyenStateSource`): the payment behind a pspReference
 *   (remembered when Adyen answers the authorisation) and the verified notification facts stored
 *   by POST /webhooks/adyen (lambdas/store/processor-facts.ts).
 *
 * `availableProcessors()` is config.processors() (PAYSTEP_PROCESSORS): new payments go to the
 * first, or to the one they name. `processor(name)` serves any known processor, enabled or not, so
 * payments made before a processor was disabled can still be captured, refunded and checked.
 */
import type { AdyenAdapterOptions, AdyenStateSource } from './adyen/adapter.ts';
import { config } from '../shared/config.ts';
import { getSecret } from '../shared/secrets.ts';
import { getPayment } from '../store/payments.ts';
import { listFacts, paymentIdForReference, rememberReference } from '../store/processor-facts.ts';
import { StripeAdapter } from './stripe/adapter.ts';
import type { AuthorizeRequest, AuthorizeResult, ProcessorAdapter } from './types.ts';
import type { DisputeConnector } from './disputes.ts';
import { stripeDisputeConnector } from './stripe/disputes.ts';

const adapters = new Map<string, { secret: string; adapter: ProcessorAdapter }>();

/** The enabled processors, the default first. */
export const availableProcessors = (): string[] => config.processors();

/** paystep's records, as the Adyen connector reads them. */
const adyenState: AdyenStateSource = {
  async payment(pspReference) {
    const id = await paymentIdForReference('adyen', pspReference);
    const p = id ? await getPayment(id) : undefined;
    if (!p) return undefined;
    return { paymentId: p.id, amount: p.amount, currency: p.currency, captureMethod: p.capture_method };
  },
  facts: (pspReference) => listFacts('adyen', pspReference),
};

/**
 * The Adyen adapter, which remembers which payment a pspReference belongs to as soon as Adyen
 * names it. Its module (and @adyen/api-library, slow to load) is imported on first use only, so
 * handlers and CLI commands that never call Adyen do not pay for it.
 */
async function adyenAdapter(options: AdyenAdapterOptions): Promise<ProcessorAdapter> {
  const { AdyenAdapter } = await import('./adyen/adapter.ts');
  const adapter = new AdyenAdapter({ ...options, state: adyenState });
  const authorize = adapter.authorize.bind(adapter);
  adapter.authorize = async (req: AuthorizeRequest): Promise<AuthorizeResult> => {
    const r = await authorize(req);
    if (r.processorReference) await rememberReference('adyen', r.processorReference, req.paymentId);
    return r;
  };
  return adapter;
}

async function build(
  name: string,
): Promise<{ secret: string; make: () => ProcessorAdapter | Promise<ProcessorAdapter> }> {
  switch (name) {
    case 'stripe': {
      const secretKey = await getSecret('stripe-secret-key');
      return {
        secret: secretKey,
        make: () =>
          new StripeAdapter({
            secretKey,
            apiBase: config.stripeApiBase(),
            timeoutMs: config.processorTimeoutMs(),
            // The workflow retries technical failures with backoff; the SDK adds quick retries of its own.
            maxNetworkRetries: config.processorNetworkRetries(),
          }),
      };
    }
    case 'adyen': {
      const apiKey = await getSecret('adyen-api-key');
      const c = config.adyen();
      return {
        secret: apiKey,
        make: () =>
          adyenAdapter({
            apiKey,
            merchantAccount: c.merchantAccount,
            environment: c.environment,
            ...(c.liveEndpointUrlPrefix ? { liveEndpointUrlPrefix: c.liveEndpointUrlPrefix } : {}),
            ...(c.apiBase ? { apiBase: c.apiBase } : {}),
            ...(c.returnUrl ? { returnUrl: c.returnUrl } : {}),
            timeoutMs: config.processorTimeoutMs(),
          }),
      };
    }
    default:
      throw new Error(`processor ${name} is not configured`);
  }
}

/**
 * The adapter for a processor. The secret is re-read through the (5-minute) secret cache on every
 * call and the adapter rebuilt when it changed, so a key put into Secrets Manager after deploy, or
 * a rolled key, takes effect without waiting for containers to recycle.
 */
export async function processor(name: string): Promise<ProcessorAdapter> {
  const { secret, make } = await build(name);
  const cached = adapters.get(name);
  if (cached && cached.secret === secret) return cached.adapter;
  const adapter = await make();
  adapters.set(name, { secret, adapter });
  return adapter;
}

/** Forgets adapters (the local runtime calls it when it restarts the simulator on a new port). */
export function resetProcessors(): void {
  adapters.clear();
  disputeConnectors.clear();
}

// --- Disputes ------------------------------------------------------------------------------------

const disputeConnectors = new Map<string, { secret: string; connector: DisputeConnector }>();

/**
 * The dispute connector of a processor (lambdas/connectors/disputes.ts), configured as its payments
 * adapter is: Stripe's on the adapter's own SDK client; Adyen's with the `adyen-api-key` secret and
 * config.adyen(), reading the dispute's stored notification facts (Adyen has no API to read a
 * dispute) and the payment behind a pspReference. Rebuilt when the secret changes.
 */
export async function disputes(name: string): Promise<DisputeConnector> {
  switch (name) {
    case 'stripe': {
      const adapter = await processor('stripe');
      if (!(adapter instanceof StripeAdapter)) throw new Error('processor stripe is not the Stripe adapter');
      return stripeDisputeConnector(adapter);
    }
    case 'adyen': {
      const apiKey = await getSecret('adyen-api-key');
      const cached = disputeConnectors.get(name);
      if (cached && cached.secret === apiKey) return cached.connector;
      const c = config.adyen();
      const { AdyenDisputeConnector } = await import('./adyen/disputes.ts');
      const connector = new AdyenDisputeConnector({
        apiKey,
        merchantAccount: c.merchantAccount,
        environment: c.environment,
        ...(c.liveEndpointUrlPrefix ? { liveEndpointUrlPrefix: c.liveEndpointUrlPrefix } : {}),
        ...(c.apiBase ? { apiBase: c.apiBase } : {}),
        timeoutMs: config.processorTimeoutMs(),
        state: {
          facts: (reference) => listFacts('adyen', reference),
          paymentId: (reference) => paymentIdForReference('adyen', reference),
        },
      });
      disputeConnectors.set(name, { secret: apiKey, connector });
      return connector;
    }
    default:
      throw new Error(`processor ${name} is not configured`);
  }
}
