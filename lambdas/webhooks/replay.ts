/**
 * Ops actions on stored webhook events (the `paystep webhooks` CLI): list the parked or failed
 * ones, and replay one (back to `received` and queued again; processing is idempotent, so a replay
 * of an event that already took effect changes nothing).
 */
import {
  getWebhookEvent,
  listWebhookEvents,
  resetWebhookEvent,
  type WebhookEventRecord,
} from '../store/webhook-events.ts';
import { enqueueWebhookEvent } from './queue.ts';

export interface WebhookEventSummary {
  id: string;
  processor: string;
  type: string;
  status: string;
  attempts: number;
  created: number;
  received_at: number;
  outcome?: string;
  last_error?: string;
}

export const summarize = (r: WebhookEventRecord): WebhookEventSummary => ({
  id: r.id,
  processor: r.processor,
  type: r.type,
  status: r.status,
  attempts: r.attempts,
  created: r.created,
  received_at: r.received_at,
  ...(r.outcome ? { outcome: r.outcome } : {}),
  ...(r.last_error ? { last_error: r.last_error } : {}),
});

export async function listStoredWebhookEvents(
  status: 'parked' | 'failed',
  processor: string,
  limit = 100,
): Promise<WebhookEventSummary[]> {
  return (await listWebhookEvents(processor, status, limit)).map(summarize);
}

/**
 * Queues a stored event again: `replayed`, or `missing` (no such event), or `processed` (it took
 * effect already; `force` replays it anyway — harmless, but it adds timeline entries again).
 */
export async function replayWebhookEvent(
  eventId: string,
  processor: string,
  force = false,
): Promise<{ result: 'replayed' | 'missing' | 'processed'; event?: WebhookEventSummary }> {
  const r = await resetWebhookEvent(processor, eventId, force);
  if (r === 'reset') await enqueueWebhookEvent(processor, eventId);
  const stored = await getWebhookEvent(processor, eventId);
  return { result: r === 'reset' ? 'replayed' : r, ...(stored ? { event: summarize(stored) } : {}) };
}
