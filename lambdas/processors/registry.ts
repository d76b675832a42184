/**
 * The configured processors, by name. Stripe's key comes from the `stripe-secret-key` secret
 * (Secrets Manager in AWS; locally the runtime passes STRIPE_SECRET_KEY or the simulator's key);
 * STRIPE_API_BASE points the SDK at the local simulator and is unset in AWS.
 */
import { getSecret } from '../shared/secrets.ts';
import { StripeAdapter } from './stripe.ts';
import type { ProcessorAdapter } from './types.ts';

const adapters = new Map<string, Promise<ProcessorAdapter>>();

export const availableProcessors = (): string[] => ['stripe'];

export function processor(name: string): Promise<ProcessorAdapter> {
  let a = adapters.get(name);
  if (!a) {
    if (name !== 'stripe') throw new Error(`processor ${name} is not configured`);
    a = getSecret('stripe-secret-key').then(
      (secretKey) =>
        new StripeAdapter({
          secretKey,
          apiBase: process.env.STRIPE_API_BASE || undefined,
          timeoutMs: Number(process.env.PAYSTEP_PROCESSOR_TIMEOUT_MS || 10_000),
          // The workflow retries technical failures with backoff; the SDK adds quick retries of its own.
          maxNetworkRetries: Number(process.env.PAYSTEP_PROCESSOR_NETWORK_RETRIES ?? 1),
        }),
    );
    a.catch(() => adapters.delete(name));
    adapters.set(name, a);
  }
  return a;
}

/** Forgets adapters (the local runtime calls it when it restarts the simulator on a new port). */
export function resetProcessors(): void {
  adapters.clear();
}
