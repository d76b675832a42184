/**
 * Webhook ingestion policy, shared by the handlers and the topology (lib/topology/webhooks.ts), so
 * that the queue's redrive and the consumer's idea of "last attempt" cannot disagree.
 */

/** Stripe's own default: a signature older than this is refused (replay protection). */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

/** Receives of a queued event before SQS moves it to the dead-letter queue (`webhooks-dlq`). */
export const MAX_RECEIVES = 8;

/** First retry of a parked event (unknown object), doubled on every receive, capped. */
export const RETRY_BASE_SECONDS = 10;
export const RETRY_MAX_SECONDS = 900;

/**
 * How long one delivery may hold an event before another may take it over (crash recovery): more
 * than the consumer's timeout (30 s), less than the queue's visibility timeout (60 s), so the
 * redelivery of a crashed message finds the lease expired.
 */
export const LEASE_SECONDS = 45;

/** Stored raw events are kept this long (DynamoDB TTL). */
export const EVENT_TTL_DAYS = 90;

/** Visibility delay before the next receive, after `receiveCount` receives: 10 s, 20 s, 40 s … 15 min. */
export function retryDelaySeconds(receiveCount: number): number {
  const n = Math.max(1, Math.floor(receiveCount));
  return Math.min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (n - 1));
}
