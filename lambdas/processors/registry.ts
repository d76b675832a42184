/**
 * The configured processors, by name. Stripe's key comes from the `stripe-secret-key` secret
 * (Secrets Manager in AWS; locally the runtime passes STRIPE_SECRET_KEY or the simulator's key);
 * STRIPE_API_BASE points the SDK at the local simulator and is unset in AWS.
 */
import { config } from '../shared/config.ts';
import { getSecret } from '../shared/secrets.ts';
import { StripeAdapter } from './stripe.ts';
import type { ProcessorAdapter } from './types.ts';

const adapters = new Map<string, { secret: string; adapter: ProcessorAdapter }>();

export const availableProcessors = (): string[] => ['stripe'];

/**
 * The adapter for a processor. The secret is re-read through the (5-minute) secret cache on every
 * call and the adapter rebuilt when it changed, so a key put into Secrets Manager after deploy, or
 * a rolled key, takes effect without waiting for containers to recycle.
 */
export async function processor(name: string): Promise<ProcessorAdapter> {
  if (name !== 'stripe') throw new Error(`processor ${name} is not configured`);
  const secretKey = await getSecret('stripe-secret-key');
  const cached = adapters.get(name);
  if (cached && cached.secret === secretKey) return cached.adapter;
  const adapter = new StripeAdapter({
    secretKey,
    apiBase: config.stripeApiBase(),
    timeoutMs: config.processorTimeoutMs(),
    // The workflow retries technical failures with backoff; the SDK adds quick retries of its own.
    maxNetworkRetries: config.processorNetworkRetries(),
  });
  adapters.set(name, { secret: secretKey, adapter });
  return adapter;
}

/** Forgets adapters (the local runtime calls it when it restarts the simulator on a new port). */
export function resetProcessors(): void {
  adapters.clear();
}
