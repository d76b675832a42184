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

export const ROUTING_CACHE_MS = 5_000;

const entries = new Map<string, { at: number; value: Promise<unknown> }>();

/** `load()` for the merchant, or what this container loaded within ROUTING_CACHE_MS. */
export function cachedRoutingSettings<T>(merchantId: string, load: () => Promise<T>): Promise<T> {
  const now = Date.now();
  const hit = entries.get(merchantId);
  if (hit && now - hit.at < ROUTING_CACHE_MS && now >= hit.at) return hit.value as Promise<T>;
  const value = load();
  const entry = { at: now, value };
  entries.set(merchantId, entry);
  // A failed read is not remembered: the next payment reads again.
  value.catch(() => {
    if (entries.get(merchantId) === entry) entries.delete(merchantId);
  });
  return value;
}

/** Forgets the merchant's entry (its routing or processor order changed), or every entry. */
export function forgetRoutingSettings(merchantId?: string): void {
  if (merchantId === undefined) entries.clear();
  else entries.delete(merchantId);
}
