/**
 * A merchant's webhook endpoints as the fan-out of every merchant event reads them
 * (lambdas/events/delivery.ts `fanOut`), kept per container for ENDPOINTS_CACHE_MS, so a merchant
 * event costs no Query of the endpoints (issue #11: 2 of a payment's DynamoDB calls).
 *
 * Delay, documented in docs/merchant-events.md: an endpoint created or deleted through this
 * container (the API's handlers; the local runtime runs every function in one process) is seen at
 * once. Another container (another Lambda instance in AWS) sees a new endpoint within
 * ENDPOINTS_CACHE_MS: the events created in the first ENDPOINTS_CACHE_MS after an endpoint's
 * registration may not be sent to it (they stay listed, and `POST /v1/events/{id}/redeliver`,
 * which reads the endpoints afresh, sends them); a deleted endpoint may still be sent the events
 * of the next ENDPOINTS_CACHE_MS. Retries and manual redeliveries read the endpoint itself.
 */
import { containerCache } from './container-cache.ts';

export const ENDPOINTS_CACHE_MS = 5_000;

const cache = containerCache(ENDPOINTS_CACHE_MS);

/** `load()` for the merchant, or what this container loaded within ENDPOINTS_CACHE_MS. */
export function cachedEndpoints<T>(merchantId: string, load: () => Promise<T>): Promise<T> {
  return cache.get(merchantId, load);
}

/** Forgets the merchant's endpoints (one was created or deleted here), or every merchant's. */
export function forgetEndpoints(merchantId?: string): void {
  cache.forget(merchantId);
}
