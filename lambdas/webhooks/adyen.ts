/**
 * POST /webhooks/adyen (no merchant auth: Adyen signs each notification item instead). Fast and
 * dumb on purpose, like POST /webhooks/stripe:
 *
 * 1. parse the batch and verify every `NotificationRequestItem`'s HMAC signature under the
 *    `adyen-hmac-key` secret (hex; two, comma-separated, while rotating) and its merchant account
 *    (lambdas/connectors/adyen/notifications.ts) → 401 and nothing stored if any item fails
 *    (Adyen retries the batch; a forged item never gets in), 400 if the body is not a batch;
 * 2. store each fact once, by its id: under its references for the connector's `retrieve`
 *    (lambdas/store/processor-facts.ts), and as a webhook event (the fact as its body) for
 *    processing, listing and replay (lambdas/store/webhook-events.ts);
 * 3. queue each new (or not yet processed) event for lambdas/webhooks/process.ts and answer
 *    `[accepted]`.
 *
 * A failure to store or queue answers 500, so Adyen delivers again (stores are idempotent).
 */
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { ConnectorFact } from '../connectors/facts.ts';
import { config } from '../shared/config.ts';
import { json } from '../shared/http.ts';
import { logger } from '../shared/logger.ts';
import { getSecret } from '../shared/secrets.ts';
import { storeFact } from '../store/processor-facts.ts';
import { recordWebhookEvent } from '../store/webhook-events.ts';
import { EVENT_TTL_DAYS } from './policy.ts';
import { enqueueWebhookEvent } from './stripe.ts';

const MAX_BODY_BYTES = 1 << 20;

export type AdyenReceiveResult =
  | { status: 200; facts: { id: string; duplicate: boolean }[] }
  | { status: 400 | 401; code: string; message: string };

/** Verifies a notification batch, stores its facts once and queues them. `raw`: the body as received. */
export async function receiveAdyenNotification(raw: string): Promise<AdyenReceiveResult> {
  if (Buffer.byteLength(raw) > MAX_BODY_BYTES)
    return { status: 400, code: 'body_too_large', message: 'Request body exceeds 1 MB.' };
  const hmacKeys = (await getSecret('adyen-hmac-key'))
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);
  // Imported on first use: @adyen/api-library (its HMAC validator) is slow to load, and the local
  // runtime loads every handler at start.
  const { AdyenNotificationError, parseAdyenNotification } =
    await import('../connectors/adyen/notifications.ts');
  let parsed;
  try {
    parsed = parseAdyenNotification(raw, {
      hmacKeys,
      merchantAccounts: [config.adyen().merchantAccount],
    });
  } catch (err) {
    if (err instanceof AdyenNotificationError)
      return { status: 400, code: 'malformed', message: err.message };
    throw err;
  }
  if (!parsed.response) {
    const refused = parsed.items.find((i) => !i.verified);
    return {
      status: 401,
      code: refused?.rejection ?? 'bad_signature',
      message: `Notification item ${refused?.index ?? 0} is not signed by a configured HMAC key for a configured merchant account; nothing was stored.`,
    };
  }
  const out: { id: string; duplicate: boolean }[] = [];
  for (const fact of parsed.facts) out.push({ id: fact.id, duplicate: !(await store(fact)) });
  return { status: 200, facts: out };
}

/** Stores one fact and queues it unless it is already processed; true when it was new. */
async function store(fact: ConnectorFact): Promise<boolean> {
  await storeFact(fact);
  const at = Date.parse(fact.at);
  const { created, record } = await recordWebhookEvent(
    {
      processor: 'adyen',
      id: fact.id,
      type: fact.raw_event,
      created: Number.isFinite(at) ? Math.floor(at / 1000) : Math.floor(Date.now() / 1000),
      livemode: fact.live,
      raw: JSON.stringify(fact),
    },
    EVENT_TTL_DAYS,
  );
  // As for Stripe: a duplicate is queued again only while it is not processed (the first queueing
  // may have failed after the fact was stored: this delivery is Adyen's retry of it).
  if (created || record.status === 'received') await enqueueWebhookEvent('adyen', fact.id);
  return created;
}

export const handler = middy<APIGatewayProxyEvent, APIGatewayProxyResult>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .handler(async (event) => {
    const raw = event.isBase64Encoded
      ? Buffer.from(event.body ?? '', 'base64').toString('utf8')
      : (event.body ?? '');
    try {
      const r = await receiveAdyenNotification(raw);
      if (r.status !== 200) {
        logger.warn('adyen notification refused', { code: r.code });
        return json(r.status, {
          error: {
            type: r.status === 401 ? 'authentication_error' : 'invalid_request_error',
            code: r.code,
            message: r.message,
          },
        });
      }
      logger.info('adyen notification received', { facts: r.facts });
      // Adyen wants `[accepted]` as the body of its 2xx.
      return { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: '[accepted]' };
    } catch (err) {
      logger.error('adyen notification could not be stored or queued', { error: err as Error });
      return json(500, {
        error: {
          type: 'api_error',
          code: 'internal_error',
          message: 'The notification could not be stored; retry.',
        },
      });
    }
  });
