/**
 * Delivery policy of merchant webhooks, pure: which URLs an endpoint may have, which events it
 * receives, and when a failed delivery is tried again.
 */

/** Attempts per delivery (the first and up to seven retries), over about a day. */
export const MAX_ATTEMPTS = 8;

/** Seconds to wait after failed attempt n (1-based) before attempt n + 1: 1 min … 12 h (≈ 22.6 h in all). */
export const RETRY_DELAYS_SECONDS = [60, 300, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600] as const;

/** SQS caps DelaySeconds at 15 minutes; longer waits are chained through several messages. */
export const MAX_QUEUE_DELAY_SECONDS = 900;

/** Request timeout of one delivery attempt. */
export const DELIVERY_TIMEOUT_MS = 5000;

/** Endpoints per merchant (as Stripe). */
export const MAX_ENDPOINTS_PER_MERCHANT = 16;

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Why `url` cannot be a webhook endpoint, or undefined if it can. */
export function endpointUrlProblem(url: string): string | undefined {
  if (url.length > 2048) return 'url must be at most 2048 characters';
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'url must be an absolute URL';
  }
  if (u.protocol === 'https:') return undefined;
  if (u.protocol === 'http:' && LOOPBACK_HOSTS.has(u.hostname.toLowerCase())) return undefined;
  return 'url must use https (http is accepted only for 127.0.0.1, localhost and [::1])';
}

const EVENT_PATTERN = /^(\*|[a-z][a-z_]{0,39}\.(\*|[a-z][a-z_]{0,39}))$/;

/** `*`, `<kind>.*` or an exact event type such as `payment.captured`. */
export const isEventPattern = (s: string) => EVENT_PATTERN.test(s);

/** Whether an endpoint subscribed to `patterns` receives an event of `type`. */
export function eventMatches(patterns: readonly string[], type: string): boolean {
  const kind = type.split('.')[0];
  return patterns.some((p) => p === '*' || p === type || p === `${kind}.*`);
}

/**
 * Seconds before the retry that follows failed attempt `attempt`, with up to 10 % jitter (so that
 * the retries of many deliveries to one recovering endpoint do not arrive at once).
 */
export function retryDelaySeconds(attempt: number, random = Math.random): number {
  const base = RETRY_DELAYS_SECONDS[Math.min(attempt, RETRY_DELAYS_SECONDS.length) - 1] ?? 60;
  return Math.round(base * (1 + 0.1 * random()));
}

export type DeliveryStatus = 'pending' | 'succeeded' | 'failed';

/**
 * What a finished attempt means for its delivery. A delivery still `pending` is retried with
 * backoff until MAX_ATTEMPTS; a finished one (a manual redelivery of a succeeded or failed
 * delivery) keeps its status unless the attempt succeeded.
 */
export function afterAttempt(
  before: DeliveryStatus,
  attempt: number,
  ok: boolean,
  random = Math.random,
): { status: DeliveryStatus; retryInSeconds?: number } {
  if (ok) return { status: 'succeeded' };
  if (before !== 'pending') return { status: before };
  if (attempt >= MAX_ATTEMPTS) return { status: 'failed' };
  return { status: 'pending', retryInSeconds: retryDelaySeconds(attempt, random) };
}

/** The first hop of a wait of `seconds` through the queue, and what is left after it. */
export function queueHop(seconds: number): { delaySeconds: number; remainingSeconds: number } {
  const delaySeconds = Math.max(0, Math.min(MAX_QUEUE_DELAY_SECONDS, Math.floor(seconds)));
  return { delaySeconds, remainingSeconds: Math.max(0, Math.floor(seconds) - delaySeconds) };
}
