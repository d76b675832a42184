/** Public shapes of webhook endpoints, events and deliveries (docs/api.md, docs/merchant-events.md). */
import type { Delivery, DeliveryAttempt, StoredEvent, WebhookEndpoint } from '../store/merchant-events.ts';
import { publicEvent } from '../store/merchant-events.ts';

/** The endpoint; its `secret` only when given (the create response), never afterwards. */
export function presentEndpoint(e: WebhookEndpoint, secret?: string) {
  return {
    id: e.id,
    object: 'webhook_endpoint',
    url: e.url,
    enabled_events: e.enabled_events,
    description: e.description,
    status: e.status,
    created: e.created,
    ...(secret !== undefined ? { secret } : {}),
  };
}

export const presentEvent = (e: StoredEvent) => publicEvent(e);

export function presentDelivery(d: Delivery & { attempts: DeliveryAttempt[] }) {
  return {
    object: 'webhook_delivery',
    endpoint: d.endpoint_id,
    url: d.url,
    status: d.status,
    attempt_count: d.attempt_count,
    next_attempt_at: d.status === 'pending' ? d.next_attempt_at : null,
    delivered_at: d.delivered_at,
    last_http_status: d.last_http_status,
    last_error: d.last_error,
    attempts: d.attempts.map((a) => ({
      attempt: a.attempt,
      at: a.at,
      http_status: a.http_status,
      latency_ms: a.latency_ms,
      error: a.error,
      manual: a.manual,
    })),
  };
}
