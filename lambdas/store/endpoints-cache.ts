/**
 * A merchant's webhook endpoints as the fan-out of merchant events reads them
 * (lambdas/events/delivery.ts `fanOut`), kept per container and used again only for an event
 * stored before they were read: such a read sees every endpoint that existed when the event was
 * stored, exactly as a read of its own would, so the cache changes nothing about who is sent what
 * (issue #11: it saves the read for the events that reach the fan-out after another event's read
 * and were stored before it, most of them under load).
 *
 * The event's storing time comes with its `event.created` message (`stored_ms`, taken after the
 * event's put returned); a message without it reads the endpoints. A read is remembered from when
 * it started (what it returns includes every endpoint written before). A failed read is not
 * remembered. Creating or deleting an endpoint here forgets the merchant's entry (an entry only
 * ever serves events stored before its read, so this is tidiness, not correctness).
 */

const entries = new Map<string, { at: number; value: Promise<unknown> }>();

/**
 * `load()` for the merchant, or what this container read of it since `storedMs` (the event was
 * stored before that read began).
 */
export function cachedEndpoints<T>(
  merchantId: string,
  storedMs: number | undefined,
  load: () => Promise<T>,
): Promise<T> {
  const hit = entries.get(merchantId);
  if (hit && storedMs !== undefined && hit.at >= storedMs) return hit.value as Promise<T>;
  const entry = { at: Date.now(), value: load() };
  entries.set(merchantId, entry);
  entry.value.catch(() => {
    if (entries.get(merchantId) === entry) entries.delete(merchantId);
  });
  return entry.value;
}

/** Forgets the merchant's endpoints (one was created or deleted here), or every merchant's. */
export function forgetEndpoints(merchantId?: string): void {
  if (merchantId === undefined) entries.clear();
  else entries.delete(merchantId);
}
