/**
 * POST /webhooks/stripe (no merchant auth: Stripe signs the body instead). Fast and dumb on
 * purpose, so Stripe gets its 2xx well within a second:
 *
 * 1. verify `Stripe-Signature` on the raw body (the API Gateway body string, decoded from base64
 *    if needed, never re-serialized) under the `stripe-webhook-secret` (one or more, comma-
 *    separated, for rotation), with a 300 s timestamp tolerance → 400 and nothing stored if not;
 * 2. store the raw event once, keyed by its id (a duplicate delivery stores nothing new);
 * 3. queue it for processing (lambdas/webhooks/process.ts) and answer 200.
 *
 * A failure to store or queue answers 500, so Stripe delivers again; the retry finds the stored
 * event and queues it again (processing is idempotent).
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { json } from '../shared/http.ts';
import { logger } from '../shared/logger.ts';
import { getSecret } from '../shared/secrets.ts';
import { recordWebhookEvent, type WebhookEventRecord } from '../store/webhook-events.ts';
import { EVENT_TTL_DAYS } from './policy.ts';
import { parseSecretList, verifyStripeSignature } from '../connectors/stripe/signature.ts';

const MAX_BODY_BYTES = 1 << 20;

/** The message put on the `webhooks` queue: a pointer to the stored event. */
export interface WebhookMessage {
  processor: string;
  event_id: string;
}

export type ReceiveResult =
  | { status: 200; duplicate: boolean; event: WebhookEventRecord }
  | { status: 400; code: string; message: string };

const bad = (code: string, message: string): ReceiveResult => ({ status: 400, code, message });

export async function enqueueWebhookEvent(processor: string, eventId: string): Promise<void> {
  const message: WebhookMessage = { processor, event_id: eventId };
  await clients
    .sqs()
    .send(
      new SendMessageCommand({ QueueUrl: config.queueUrl('webhooks'), MessageBody: JSON.stringify(message) }),
    );
}

/** Verifies, stores once and queues a Stripe event. `raw` is the body exactly as received. */
export async function receiveStripeWebhook(
  raw: string,
  signature: string | undefined,
  opts: { nowMs?: number } = {},
): Promise<ReceiveResult> {
  if (Buffer.byteLength(raw) > MAX_BODY_BYTES) return bad('body_too_large', 'Request body exceeds 1 MB.');
  const secrets = parseSecretList(await getSecret('stripe-webhook-secret'));
  const check = verifyStripeSignature(raw, signature, secrets, { nowMs: opts.nowMs });
  if (!check.ok) return bad(check.code, check.message);
  let event: Record<string, unknown>;
  try {
    event = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    return bad('invalid_json', 'The signed body is not valid JSON.');
  }
  const id = event?.id;
  const type = event?.type;
  const created = event?.created;
  const object = (event?.data as { object?: unknown } | undefined)?.object;
  if (
    typeof id !== 'string' ||
    !/^evt_[A-Za-z0-9_]{1,250}$/.test(id) ||
    typeof type !== 'string' ||
    typeof created !== 'number' ||
    !object ||
    typeof object !== 'object'
  )
    return bad('invalid_event', 'The body is not a Stripe event (id evt_…, type, created, data.object).');
  const { created: isNew, record } = await recordWebhookEvent(
    { processor: 'stripe', id, type, created, livemode: event.livemode === true, raw },
    EVENT_TTL_DAYS,
  );
  // Queue a new event; queue a duplicate again only while it is not processed (the first queueing
  // may have failed after the event was stored: this delivery is Stripe's retry of it).
  if (isNew || record.status === 'received') await enqueueWebhookEvent('stripe', id);
  return { status: 200, duplicate: !isNew, event: record };
}

function header(event: APIGatewayProxyEvent, name: string): string | undefined {
  for (const [k, v] of Object.entries(event.headers ?? {}))
    if (k.toLowerCase() === name) return v ?? undefined;
  return undefined;
}

export const handler = middy<APIGatewayProxyEvent, APIGatewayProxyResult>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .handler(async (event) => {
    const raw = event.isBase64Encoded
      ? Buffer.from(event.body ?? '', 'base64').toString('utf8')
      : (event.body ?? '');
    try {
      const r = await receiveStripeWebhook(raw, header(event, 'stripe-signature'));
      if (r.status === 400) {
        logger.warn('webhook refused', { code: r.code });
        return json(400, { error: { type: 'invalid_request_error', code: r.code, message: r.message } });
      }
      logger.info('webhook received', { eventId: r.event.id, type: r.event.type, duplicate: r.duplicate });
      return json(200, { received: true, id: r.event.id, duplicate: r.duplicate });
    } catch (err) {
      logger.error('webhook could not be stored or queued', { error: err as Error });
      return json(500, {
        error: {
          type: 'api_error',
          code: 'internal_error',
          message: 'The event could not be stored; retry.',
        },
      });
    }
  });
