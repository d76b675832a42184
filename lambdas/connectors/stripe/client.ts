/**
 * The one place paystep builds a `stripe` SDK client: the payments adapter, the disputes client
 * and the payouts source all get theirs here, so the pinned API version, telemetry, app info and
 * the way STRIPE_API_BASE (the local simulator; unset in AWS) is applied cannot drift apart.
 *
 * The API version is pinned to the SDK's own (`Stripe.API_VERSION`), so responses have the shapes
 * the SDK's types describe.
 */
import Stripe from 'stripe';

export interface StripeClientOptions {
  /** `sk_test_…` / `sk_live_…` (or a restricted key with the access the caller needs). */
  secretKey: string;
  /** Another API origin, e.g. the simulator's `http://127.0.0.1:12111`. Default: api.stripe.com. */
  apiBase?: string;
  /** Per-request timeout in ms (default 10 000). */
  timeoutMs?: number;
  /** Retries the SDK makes itself on network errors, 409 and 5xx, with the same idempotency key (default 2). */
  maxNetworkRetries?: number;
}

/** A configured SDK client; `who` names the caller in configuration errors. */
export function createStripeClient(options: StripeClientOptions, who = 'Stripe client'): Stripe {
  if (!options.secretKey) throw new Error(`${who}: secretKey is required`);
  const config: Stripe.StripeConfig = {
    apiVersion: Stripe.API_VERSION,
    maxNetworkRetries: options.maxNetworkRetries ?? 2,
    timeout: options.timeoutMs ?? 10_000,
    telemetry: false,
    appInfo: { name: 'paystep' },
  };
  if (options.apiBase) {
    const u = new URL(options.apiBase);
    if (u.protocol !== 'http:' && u.protocol !== 'https:')
      throw new Error(`${who}: apiBase must be an http(s) URL, got ${options.apiBase}`);
    config.host = u.hostname;
    config.protocol = u.protocol === 'http:' ? 'http' : 'https';
    config.port = u.port || (u.protocol === 'http:' ? 80 : 443);
  }
  return new Stripe(options.secretKey, config);
}
