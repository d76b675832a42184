/**
 * `webhooks` queue consumer: processes stored processor events (POST /webhooks/{processor},
 * lambdas/webhooks/receive.ts, and replays queue a pointer `{processor, event_id}`), with partial
 * batch responses.
 *
 * For each message: claim the stored event (a processed event is skipped: duplicates have no
 * second effect; one held by another delivery is retried a little later), read its facts through
 * the processor's connector and apply them (lambdas/webhooks/facts.ts, the same appliers for
 * every processor), mark it processed.
 *
 * Never dropped: an event about an object paystep does not know yet is *parked* (status `parked`)
 * and fails its message, whose next receive is pushed back with a growing delay
 * (ChangeMessageVisibility: 10 s, 20 s, 40 s … 15 min). After MAX_RECEIVES receives SQS moves it
 * to `webhooks-dlq` and the stored event is marked `failed`: `paystep webhooks list --status
 * failed` shows it, `paystep webhooks replay <id>` queues it again.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { ChangeMessageVisibilityCommand } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { logger } from '../shared/logger.ts';
import { claimWebhookEvent, completeWebhookEvent, releaseWebhookEvent } from '../store/webhook-events.ts';
import { PaymentNotReady, type EventInfo } from './payments.ts';
import { LEASE_SECONDS, MAX_RECEIVES, retryDelaySeconds } from './policy.ts';
import { webhookFormat, type WebhookFormat } from '../connectors/webhooks.ts';
import { applyStoredEvent, settlePassively, type EventOutcome } from './facts.ts';
import type { WebhookMessage } from './queue.ts';
import { PaystepError } from '../shared/errors.ts';

/** The event's message failed on purpose: it is retried later (parked, busy or not ready). */
export class EventDeferred extends PaystepError {
  override name = 'EventDeferred';
}

async function deferMessage(record: SQSRecord, seconds: number): Promise<void> {
  try {
    await clients.sqs().send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: config.queueUrl('webhooks'),
        ReceiptHandle: record.receiptHandle,
        VisibilityTimeout: Math.max(0, Math.min(43_200, Math.round(seconds))),
      }),
    );
  } catch (err) {
    // The queue's own visibility timeout still brings it back; only the backoff is lost.
    logger.warn('could not delay the message', { error: (err as Error).message });
  }
}

export type ProcessResult =
  | { state: 'processed'; outcome: EventOutcome }
  | { state: 'skipped'; reason: 'already_processed' | 'missing' | 'busy' }
  | { state: 'deferred'; status: 'parked' | 'failed' | 'received'; delaySeconds: number };

/**
 * Processes one stored event, for delivery number `receiveCount` of its message. Throws only on
 * unexpected errors (after recording them on the event); a deliberate retry is `deferred`.
 */
export async function processWebhookEvent(
  processor: string,
  eventId: string,
  receiveCount: number,
  holder: string,
): Promise<ProcessResult> {
  const format = await webhookFormat(processor);
  if (!format) throw new Error(`no webhook processing for processor ${processor}`);
  const last = receiveCount >= MAX_RECEIVES;
  const claim = await claimWebhookEvent(processor, eventId, LEASE_SECONDS, holder, last);
  if (claim.state === 'missing') return { state: 'skipped', reason: 'missing' };
  if (claim.state === 'processed') return { state: 'skipped', reason: 'already_processed' };
  if (claim.state === 'busy') {
    // Another message of the event (a duplicate) is processing it right now; that message comes
    // back if it does not finish, so this one has nothing to add.
    if (claim.record.lease_holder !== holder) return { state: 'skipped', reason: 'busy' };
    // An earlier receive of this very message still holds it (still running, or it crashed):
    // look again later; the last receive takes it over.
    return { state: 'deferred', status: 'received', delaySeconds: retryDelaySeconds(receiveCount) };
  }
  const attempt = claim.record.attempts;
  let outcome: EventOutcome;
  try {
    const r = claim.record;
    const info = { id: r.id, type: r.type, created: r.created };
    outcome = (await applyPassively(format, r.raw, info)) ?? (await applyStoredEvent(format, r.raw, info));
  } catch (err) {
    const e = err as Error;
    const status = last ? 'failed' : claim.record.status === 'parked' ? 'parked' : 'received';
    await releaseWebhookEvent(processor, eventId, status, `${e.name}: ${e.message}`);
    if (err instanceof PaymentNotReady && !last)
      return {
        state: 'deferred',
        status: 'received',
        delaySeconds: Math.min(5, retryDelaySeconds(receiveCount)),
      };
    throw err;
  }
  if (outcome === 'unknown_object') {
    const status = last ? 'failed' : 'parked';
    await releaseWebhookEvent(
      processor,
      eventId,
      status,
      `unknown object: the event names an object paystep does not have (attempt ${attempt}, receive ${receiveCount} of ${MAX_RECEIVES})`,
    );
    return { state: 'deferred', status, delaySeconds: retryDelaySeconds(receiveCount) };
  }
  await completeWebhookEvent(processor, eventId, outcome);
  return { state: 'processed', outcome };
}

/**
 * The common case, under the claim: an event whose facts all change nothing (the synchronous path
 * already applied what it says; lambdas/webhooks/facts.ts `passiveFact`) costs one read of its
 * payment and one write of its timeline entries, besides the claim and the completion (no reference
 * lookup, no second payment or task-token read). Most such events never get here: the receiver
 * settles them itself (lambdas/webhooks/receive.ts). Undefined when any fact may act: the appliers
 * decide (`applyStoredEvent`).
 */
function applyPassively(
  format: WebhookFormat,
  raw: string,
  info: EventInfo,
): Promise<EventOutcome | undefined> {
  return settlePassively(format.facts(raw), info);
}

async function processRecord(record: SQSRecord): Promise<void> {
  let msg: WebhookMessage;
  try {
    msg = JSON.parse(record.body) as WebhookMessage;
  } catch {
    logger.error('malformed webhook message', { messageId: record.messageId });
    return;
  }
  if (typeof msg?.processor !== 'string' || typeof msg.event_id !== 'string') {
    logger.error('malformed webhook message', { messageId: record.messageId });
    return;
  }
  const receiveCount = Number(record.attributes?.ApproximateReceiveCount ?? 1) || 1;
  const r = await processWebhookEvent(msg.processor, msg.event_id, receiveCount, record.messageId);
  if (r.state === 'skipped') {
    if (r.reason === 'missing') logger.warn('queued webhook event is not stored', { eventId: msg.event_id });
    return;
  }
  if (r.state === 'processed') {
    logger.info('webhook event processed', { eventId: msg.event_id, outcome: r.outcome });
    return;
  }
  logger.info('webhook event deferred', { eventId: msg.event_id, status: r.status, receiveCount });
  await deferMessage(record, r.delaySeconds);
  throw new EventDeferred(`event ${msg.event_id} ${r.status}; retried in ${r.delaySeconds} s`);
}

const batch = new BatchProcessor(EventType.SQS);

export async function handler(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  return processPartialResponse(event, processRecord, batch, {
    context,
    // In queue order: events about one object often arrive together (created + funds_withdrawn);
    // the actions are safe under concurrency, but there is no reason to race them.
    processInParallel: false,
    // A batch whose events are all deferred (parked) is a normal answer, not a failed invocation.
    throwOnFullBatchFailure: false,
  });
}
