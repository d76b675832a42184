/**
 * Delivering merchant events to webhook endpoints, through the `merchant-events` queue.
 *
 * Messages:
 * - `event.created {event_id}` (from the stream consumer): opens a delivery per enabled endpoint
 *   of the merchant subscribed to the event's type and makes each first attempt.
 * - `delivery.attempt {event_id, endpoint_id, attempt?, manual?, wait_seconds?}`: one attempt of one
 *   delivery (a retry, or a manual redelivery). Waits longer than SQS's 15-minute delay are
 *   chained: the message is sent again with the rest of the wait until none is left.
 *
 * Each delivery (event × endpoint) is tracked on its own: the run that opens it (conditional put)
 * owns its first attempt, which a repeated `event.created` (the stream consumer sends one again
 * for a redelivered record) leaves alone unless the claim ran out (the owner died: see
 * DELIVERY_CLAIM_SECONDS); an attempt number is recorded once (conditional write), a finished
 * delivery is not attempted again automatically, and one endpoint's
 * failure never redelivers to endpoints that succeeded. Delivery is at least once: a crash between
 * the POST and its record makes the attempt again, so merchants deduplicate by event id.
 * Neither secrets nor payloads nor URLs are logged (endpoint and event ids only).
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { logger } from '../shared/logger.ts';
import {
  ensureDelivery,
  getDelivery,
  getEndpoint,
  getEvent,
  listEndpoints,
  markRetryScheduled,
  publicEvent,
  putAttempt,
  recordAttempt,
  abandonDelivery,
  endpointSigningSecret,
  takeOverDelivery,
  DELIVERY_CLAIM_SECONDS,
  type Delivery,
  type StoredEndpoint,
  type StoredEvent,
} from '../store/merchant-events.ts';
import { cachedEndpoints } from '../store/endpoints-cache.ts';
import { afterAttempt, DELIVERY_TIMEOUT_MS, eventMatches, queueHop } from './policy.ts';
import { SIGNATURE_HEADER, signPayload } from './signature.ts';

export const QUEUE = 'merchant-events';

export type DeliveryMessage =
  | {
      type: 'event.created';
      event_id: string;
      /**
       * The event as stored (lambdas/store/merchant-events.ts `putEvent`), when it is small enough
       * to travel in the message (MAX_INLINE_EVENT_BYTES): the fan-out then needs no read of it. An
       * event never changes once stored (its id is derived from what it says), so the copy is the event.
       */
      event?: StoredEvent;
      /**
       * When the event was known stored (epoch ms, taken after its put returned): the fan-out may
       * use endpoints this container read after it (lambdas/store/endpoints-cache.ts).
       */
      stored_ms?: number;
    }
  | {
      type: 'delivery.attempt';
      event_id: string;
      endpoint_id: string;
      /** The attempt number of an automatic retry; a manual redelivery takes the next free one. */
      attempt?: number;
      manual?: boolean;
      /** Wait still to do before the attempt (seconds), beyond this message's own delay. */
      wait_seconds?: number;
    };

export async function sendMessage(msg: DeliveryMessage, delaySeconds = 0): Promise<void> {
  await clients.sqs().send(
    new SendMessageCommand({
      QueueUrl: config.queueUrl(QUEUE),
      MessageBody: JSON.stringify(msg),
      DelaySeconds: delaySeconds > 0 ? delaySeconds : undefined,
    }),
  );
}

/** Sends an attempt message that arrives after `seconds` (chained through 15-minute hops). */
export async function scheduleAttempt(
  msg: Omit<Extract<DeliveryMessage, { type: 'delivery.attempt' }>, 'type' | 'wait_seconds'>,
  seconds: number,
): Promise<void> {
  const hop = queueHop(seconds);
  await sendMessage(
    {
      type: 'delivery.attempt',
      ...msg,
      ...(hop.remainingSeconds > 0 ? { wait_seconds: hop.remainingSeconds } : {}),
    },
    hop.delaySeconds,
  );
}

export interface PostResult {
  ok: boolean;
  httpStatus: number | null;
  latencyMs: number;
  error: string | null;
}

/** POSTs a signed body to `url`; never throws (a failure is a result). Redirects are failures. */
export async function postWebhook(
  url: string,
  body: string,
  secret: string,
  timeoutMs = DELIVERY_TIMEOUT_MS,
): Promise<PostResult> {
  const started = performance.now();
  const latency = () => Math.round(performance.now() - started);
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Paystep-Webhooks/1.0',
        [SIGNATURE_HEADER]: signPayload(body, secret),
      },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    const latencyMs = latency();
    await res.body?.cancel().catch(() => undefined);
    const ok = res.status >= 200 && res.status < 300;
    return { ok, httpStatus: res.status, latencyMs, error: ok ? null : `HTTP ${res.status}` };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const error =
      e.name === 'TimeoutError' || e.name === 'AbortError'
        ? `timed out after ${timeoutMs} ms`
        : `connection failed${e.cause?.code ? ` (${e.cause.code})` : ''}`;
    return { ok: false, httpStatus: null, latencyMs: latency(), error };
  }
}

/** An event up to this size goes in its `event.created` message (one 64 KB SQS request unit). */
export const MAX_INLINE_EVENT_BYTES = 60_000;

/** The `event.created` message of a stored event: the event itself when small enough, else its id. */
export function eventCreatedMessage(event: StoredEvent, storedMs = Date.now()): DeliveryMessage {
  const inline = Buffer.byteLength(JSON.stringify(event)) <= MAX_INLINE_EVENT_BYTES;
  return { type: 'event.created', event_id: event.id, ...(inline ? { event } : {}), stored_ms: storedMs };
}

/**
 * Fan-out of a new event: opens and attempts a delivery per subscribed, enabled endpoint. `inline`
 * is the event as its message carried it (read from the store otherwise).
 */
export async function fanOut(eventId: string, inline?: StoredEvent, storedMs?: number): Promise<void> {
  const event = inline?.id === eventId ? inline : await getEvent(eventId);
  if (!event) {
    logger.warn('event to deliver not found', { eventId });
    return;
  }
  // A read of the endpoints made after the event was stored serves it (lambdas/store/endpoints-cache.ts).
  const merchantId = event.merchant_id;
  const endpoints = (await cachedEndpoints(merchantId, storedMs, () => listEndpoints(merchantId))).filter(
    (e) => e.status === 'enabled' && eventMatches(e.enabled_events, event.type),
  );
  const results = await Promise.allSettled(
    endpoints.map(async (endpoint) => {
      // Opening the delivery is the claim on its first attempt: the run that opened it makes it.
      const opened = await ensureDelivery(event, endpoint);
      if (opened) return attempt({ event, endpoint, n: 1, manual: false, delivery: opened });
      // A repeated fan-out (a stream record or a message delivered again): the delivery is
      // followed up if it moved on, and attempt 1 is left to its owner while the claim lasts.
      const d = await getDelivery(event.id, endpoint.id);
      if (!d) return;
      if (d.status === 'pending' && d.attempt_count === 0) {
        const now = Math.floor(Date.now() / 1000);
        if (now < d.updated + DELIVERY_CLAIM_SECONDS || !(await takeOverDelivery(d, now))) return;
        return attempt({ event, endpoint, n: 1, manual: false, delivery: { ...d, updated: now } });
      }
      return attempt({ event, endpoint, n: 1, manual: false, delivery: d });
    }),
  );
  const failed = results.filter((r) => r.status === 'rejected');
  // Deliveries that did not fail are recorded: a repeated fan-out skips them.
  if (failed.length) throw (failed[0] as PromiseRejectedResult).reason;
}

/** One attempt message: waits on if the wait is not over, else attempts the delivery. */
export async function attemptFromMessage(
  msg: Extract<DeliveryMessage, { type: 'delivery.attempt' }>,
): Promise<void> {
  if (msg.wait_seconds && msg.wait_seconds > 0) {
    await scheduleAttempt(
      { event_id: msg.event_id, endpoint_id: msg.endpoint_id, attempt: msg.attempt, manual: msg.manual },
      msg.wait_seconds,
    );
    return;
  }
  const event = await getEvent(msg.event_id);
  if (!event) return; // expired
  const endpoint = await getEndpoint(msg.endpoint_id);
  await attempt({
    event,
    endpoint,
    endpointId: msg.endpoint_id,
    n: msg.attempt ?? 0,
    manual: msg.manual === true,
  });
}

/**
 * Attempt `n` of the delivery of `event` to `endpoint`, unless it was made already (a repeated
 * message) or the delivery is finished and this is not a manual redelivery. A manual redelivery
 * is the next attempt, whatever its number.
 */
async function attempt(p: {
  event: StoredEvent;
  endpoint: StoredEndpoint | undefined;
  endpointId?: string;
  n: number;
  manual: boolean;
  /** The delivery as this run just wrote or read it (read here otherwise). */
  delivery?: Delivery;
}): Promise<void> {
  const { event, manual } = p;
  const endpointId = p.endpoint?.id ?? p.endpointId!;
  const d = p.delivery ?? (await getDelivery(event.id, endpointId));
  if (!d) return;
  const n = manual ? d.attempt_count + 1 : p.n;
  if (d.attempt_count >= n) {
    await resumeSchedule(event.id, endpointId);
    return;
  }
  if (d.status !== 'pending' && !manual) return;
  const endpoint = p.endpoint;
  if (!endpoint || endpoint.merchant_id !== event.merchant_id) {
    await abandonDelivery(event.id, endpointId, 'endpoint deleted');
    return;
  }
  const at = new Date();
  const secret = await endpointSigningSecret(endpoint);
  const result = await postWebhook(endpoint.url, JSON.stringify(publicEvent(event)), secret);
  await putAttempt(
    event.id,
    endpointId,
    {
      attempt: n,
      at: at.toISOString(),
      http_status: result.httpStatus,
      latency_ms: result.latencyMs,
      error: result.error,
      manual,
    },
    event.created,
  );
  const next = afterAttempt(d.status, n, result.ok);
  const recorded = await recordAttempt(event.id, endpointId, n, {
    status: next.status,
    httpStatus: result.httpStatus,
    error: result.error,
    retryInSeconds: next.retryInSeconds,
    delivered: result.ok,
  });
  logger.info('webhook attempt', {
    eventId: event.id,
    endpointId,
    attempt: n,
    manual,
    httpStatus: result.httpStatus,
    latencyMs: result.latencyMs,
    outcome: next.status,
  });
  if (!recorded) return; // another run recorded attempt n and owns what follows
  if (next.retryInSeconds !== undefined) {
    await scheduleAttempt(
      { event_id: event.id, endpoint_id: endpointId, attempt: n + 1 },
      next.retryInSeconds,
    );
    await markRetryScheduled(event.id, endpointId, n + 1);
  }
}

/**
 * A run that found its attempt already recorded: if that attempt failed and its retry message was
 * never sent (the run that recorded it stopped before sending), send it now.
 */
async function resumeSchedule(eventId: string, endpointId: string): Promise<void> {
  const d = await getDelivery(eventId, endpointId);
  if (!d || d.status !== 'pending' || d.retry_delay_seconds === null) return;
  const next = d.attempt_count + 1;
  if (d.retry_scheduled >= next) return;
  await scheduleAttempt({ event_id: eventId, endpoint_id: endpointId, attempt: next }, d.retry_delay_seconds);
  await markRetryScheduled(eventId, endpointId, next);
}
