/**
 * What "Choose a processor" reads of a merchant on every payment — its current routing
 * configuration (lambdas/store/routing.ts) and its processor order (lambdas/store/merchants.ts) —
 * kept per container for ROUTING_CACHE_MS, so routing costs no read per payment (issue #11: 2 of
 * a payment's DynamoDB calls).
 *
 * Staleness: a change made through this container (the API's PUT /v1/routing, the store's writes
 * in the same process: the local runtime runs every function in one process) forgets the entry
 * at once. Another container (another Lambda instance in AWS, or the CLI's process against the
 * local runtime) may route by the previous configuration for up to ROUTING_CACHE_MS after the
 * change. Every decision records the configuration version it used (`routing_version` on the
 * `routed` timeline entry), so such a payment is traceable; nothing about money depends on it
 * (the processor that takes the payment is recorded before the request leaves).
 */

import { containerCache } from './container-cache.ts';

export const ROUTING_CACHE_MS = 5_000;

const cache = containerCache(ROUTING_CACHE_MS);

/** `load()` for the merchant, or what this container loaded within ROUTING_CACHE_MS. */
export function cachedRoutingSettings<T>(merchantId: string, load: () => Promise<T>): Promise<T> {
  return cache.get(merchantId, load);
}

/** Forgets the merchant's entry (its routing or processor order changed), or every entry. */
export function forgetRoutingSettings(merchantId?: string): void {
  cache.forget(merchantId);
}
