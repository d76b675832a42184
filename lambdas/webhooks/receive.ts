/**
 * POST /webhooks/{processor} (no merchant auth: the processor signs the request instead), one
 * route for every processor; `/webhooks/stripe` and `/webhooks/adyen` are the URLs merchants
 * configured at the processors. Fast and dumb on purpose, so the processor gets its 2xx well
 * within a second:
 *
 * 1. the processor must be one paystep knows and has enabled (config.processors(),
 *    PAYSTEP_PROCESSORS) → 404 naming it otherwise;
 * 2. its connector verifies the raw request (the body exactly as received, decoded from base64 if
 *    needed, never re-serialized) and splits it into events (lambdas/connectors/webhooks.ts):
 *    Stripe's `Stripe-Signature` (400 and nothing stored if it fails), Adyen's per-item HMAC
 *    (401 and nothing stored if any item fails; 400 if the body is not a batch);
 * 3. each event is stored once, by its id: its facts under their references
 *    (lambdas/store/processor-facts.ts, what a connector without a read API answers `retrieve`
 *    from) and the event itself for processing, listing and replay (lambdas/store/webhook-events.ts);
 * 4. an event that changes nothing (its payment already shows what it says: the usual case) is
 *    settled at once — its payment read, its timeline entry written once per event — and stored
 *    processed; each other new (or not yet processed) event is queued for
 *    lambdas/webhooks/process.ts. The connector says what to answer (Stripe: JSON; Adyen:
 *    `[accepted]`).
 *
 * A failure to store or queue answers 500, so the processor delivers again (stores are
 * idempotent; a retry finds the stored event and queues it again while it is not processed).
 */
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import {
  webhookReceiver,
  type ReceivedEvent,
  type WebhookAck,
  type WebhookReceiver,
} from '../connectors/webhooks.ts';
import { config } from '../shared/config.ts';
import { json } from '../shared/http.ts';
import { logger } from '../shared/logger.ts';
import { storeFact } from '../store/processor-facts.ts';
import { MAX_STORED_RAW_BYTES, recordWebhookEvent } from '../store/webhook-events.ts';
import { settlePassively } from './facts.ts';
import { EVENT_TTL_DAYS } from './policy.ts';
import { enqueueWebhookEvent } from './queue.ts';

const MAX_BODY_BYTES = 1 << 20;

export type ReceiveResult =
  | { status: 200; events: { id: string; type: string; duplicate: boolean }[]; ack: WebhookAck }
  | { status: 400 | 401 | 404; code: string; message: string };

/** A processor name as it may be echoed: a word (never a card number, never markup). */
const NAME = /^[a-z][a-z0-9_-]{0,31}$/;

function notFound(processor: string): ReceiveResult {
  return {
    status: 404,
    code: 'processor_not_found',
    message: NAME.test(processor)
      ? `No webhook endpoint for processor "${processor}": it is not a processor paystep knows, or it is not enabled (PAYSTEP_PROCESSORS: ${config.processors().join(', ')}).`
      : 'No webhook endpoint for that processor: the name in the path is not a processor name.',
  };
}

/**
 * Verifies a request to POST /webhooks/{processor}, stores its events once and queues them.
 * `raw` is the body exactly as received; `header` reads a request header (case-insensitive).
 */
export async function receiveWebhook(
  processor: string,
  raw: string,
  header: (name: string) => string | undefined,
  opts: { nowMs?: number } = {},
): Promise<ReceiveResult> {
  if (!(config.processors() as readonly string[]).includes(processor)) return notFound(processor);
  const receiver = await webhookReceiver(processor);
  if (!receiver) return notFound(processor);
  if (Buffer.byteLength(raw) > MAX_BODY_BYTES)
    return { status: 400, code: 'body_too_large', message: 'Request body exceeds 1 MB.' };
  const verdict = receiver.verify({ body: raw, header }, opts);
  if (!verdict.ok) return verdict;
  const events: { id: string; type: string; duplicate: boolean }[] = [];
  for (const e of verdict.events)
    events.push({ id: e.id, type: e.type, duplicate: !(await store(receiver, e)) });
  return { status: 200, events, ack: receiver.acknowledge(events) };
}

/**
 * Stores one event (and its facts) once and queues it unless it is already processed; true when
 * new. An event that changes nothing (the common case: the synchronous path already applied what
 * it says) is settled here and stored processed, never queued: its payment read once and its
 * timeline entry written once per event (lambdas/webhooks/facts.ts `settlePassively`), before the
 * event is stored, so a crash in between leaves the processor's retry to store it (and find the
 * entry written).
 */
async function store(receiver: WebhookReceiver, e: ReceivedEvent): Promise<boolean> {
  const processor = receiver.processor;
  const settleable = Buffer.byteLength(e.stored) <= MAX_STORED_RAW_BYTES;
  // Facts first, so a stored event always has them; a settled event's only where they are read
  // back (`storesSettledFacts`).
  if (receiver.storesSettledFacts || !settleable) for (const fact of e.facts) await storeFact(fact);
  const outcome = settleable
    ? await settlePassively(e.facts, { id: e.id, type: e.type, created: e.created })
    : undefined;
  if (!outcome && !receiver.storesSettledFacts && settleable)
    for (const fact of e.facts) await storeFact(fact);
  const { created, record } = await recordWebhookEvent(
    { processor, id: e.id, type: e.type, created: e.created, livemode: e.live, raw: e.stored },
    EVENT_TTL_DAYS,
    outcome,
  );
  if (created && outcome) return true;
  // A duplicate is queued again only while it is not processed (the first queueing may have failed
  // after the event was stored: this delivery is the processor's retry of it).
  if (created || record.status === 'received') await enqueueWebhookEvent(processor, e.id);
  return created;
}

function header(event: APIGatewayProxyEvent) {
  return (name: string): string | undefined => {
    for (const [k, v] of Object.entries(event.headers ?? {}))
      if (k.toLowerCase() === name.toLowerCase()) return v ?? undefined;
    return undefined;
  };
}

const ERROR_TYPE = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  404: 'invalid_request_error',
};

export const handler = middy<APIGatewayProxyEvent, APIGatewayProxyResult>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .handler(async (event) => {
    const processor = event.pathParameters?.processor ?? '';
    const raw = event.isBase64Encoded
      ? Buffer.from(event.body ?? '', 'base64').toString('utf8')
      : (event.body ?? '');
    try {
      const r = await receiveWebhook(processor, raw, header(event));
      if (r.status !== 200) {
        logger.warn('webhook refused', { processor: NAME.test(processor) ? processor : '?', code: r.code });
        return json(r.status, {
          error: {
            type: ERROR_TYPE[r.status],
            code: r.code,
            message: r.message,
            ...(r.status === 404 ? { param: 'processor' } : {}),
          },
        });
      }
      logger.info('webhook received', { processor, events: r.events });
      return { statusCode: 200, headers: { 'content-type': r.ack.contentType }, body: r.ack.body };
    } catch (err) {
      logger.error('webhook could not be stored or queued', { processor, error: err as Error });
      return json(500, {
        error: {
          type: 'api_error',
          code: 'internal_error',
          message: 'The event could not be stored; retry.',
        },
      });
    }
  });
