/**
 * Merchant events, webhook endpoints and deliveries in DynamoDB (table `main`).
 *
 *   pk EVENT#<evt>  sk EVENT                           the event { id, type, created, merchant_id, data }
 *       gsi1pk MERCHANT#<merchant>#EVENTS  gsi1sk <created ms, 13 digits>#<stream order>#<evt>   newest first
 *       gsi2pk EVENTS#<object id>  gsi2sk <created ms, 13 digits>#<stream order>#<evt>   the events of one
 *         payment, refund or dispute (the console's payment page)
 *   pk EVENT#<evt>  sk DELIVERY#<we>                   its delivery to one endpoint { status, attempt_count, … }
 *   pk EVENT#<evt>  sk DELIVERY#<we>#ATTEMPT#<nnnn>    one attempt { at, http_status, latency_ms, error, manual }
 *   pk WEBHOOK_ENDPOINT#<we>  sk WEBHOOK_ENDPOINT      an endpoint { url, enabled_events, secret_sealed, status }
 *       gsi1pk MERCHANT#<merchant>#WEBHOOK_ENDPOINTS  gsi1sk <created ms>#<we>
 *
 * Events, deliveries and attempts expire after 30 days (TTL `expires_at`). An endpoint's signing
 * secret must be usable to sign (an HMAC key cannot be hashed), so it is stored encrypted:
 * `secret_sealed`, AES-256-GCM under a key from the `webhook-secrets-key` secret (Secrets Manager
 * in AWS, the data dir's secret store locally; lambdas/shared/secrets.ts), bound to the endpoint
 * and merchant ids. Only the create call and the delivery consumer open it; it is returned only by
 * the create call and never logged. Endpoints stored before encryption (a plaintext `secret`
 * attribute) still work and are sealed the first time a delivery reads them.
 * Writes are single-item and conditional: an event is stored once per id, an attempt number is
 * recorded once per delivery.
 */
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { WEBHOOK_SECRETS_KEY } from '../../lib/topology/events.ts';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { newId, randomBase62 } from '../shared/ids.ts';
import { isSealedValue, openValue, sealValue, type SealedValue } from '../shared/secrets.ts';
import type { EventDraft, MerchantEvent } from '../events/derive.ts';
import type { DeliveryStatus } from '../events/policy.ts';
import { conditionalWrite, putIfAbsent } from './conditional.ts';
import { forgetEndpoints } from './endpoints-cache.ts';
import { updateExpression } from './expressions.ts';
import { cursorPage, indexQuery, queryAll, queryPageOutputs, queryPages, startKeyOf } from './pages.ts';

const table = () => config.tableName('main');
const RETENTION_SECONDS = 30 * 24 * 3600;
const ms13 = (ms: number) => String(ms).padStart(13, '0');

const eventKey = (id: string) => ({ pk: `EVENT#${id}`, sk: 'EVENT' });
const deliveryKey = (eventId: string, endpointId: string) => ({
  pk: `EVENT#${eventId}`,
  sk: `DELIVERY#${endpointId}`,
});
const attemptKey = (eventId: string, endpointId: string, attempt: number) => ({
  pk: `EVENT#${eventId}`,
  sk: `DELIVERY#${endpointId}#ATTEMPT#${String(attempt).padStart(4, '0')}`,
});
const endpointKey = (id: string) => ({ pk: `WEBHOOK_ENDPOINT#${id}`, sk: 'WEBHOOK_ENDPOINT' });

export const EVENT_ID = /^evt_[0-9A-Za-z]{10,40}$/;
export const ENDPOINT_ID = /^we_[0-9A-Za-z]{10,40}$/;

// ---------------------------------------------------------------- events

export interface StoredEvent extends MerchantEvent {
  merchant_id: string;
  object_kind: string;
  object_id: string;
}

const toEvent = (item: Record<string, unknown>): StoredEvent => ({
  id: item.id as string,
  object: 'event',
  type: item.type as string,
  created: item.created as number,
  data: item.data as MerchantEvent['data'],
  merchant_id: item.merchant_id as string,
  object_kind: item.object_kind as string,
  object_id: item.object_id as string,
});

/** The envelope a merchant receives (without internal attributes). */
export const publicEvent = (e: MerchantEvent): MerchantEvent => ({
  id: e.id,
  object: 'event',
  type: e.type,
  created: e.created,
  data: e.data,
});

/**
 * Stores an event unless an event with its id exists. Returns the stored event (the existing one
 * if it was stored before) and whether this call created it.
 */
export async function putEvent(
  draft: EventDraft,
  nowMs = Date.now(),
): Promise<{ created: boolean; event: StoredEvent }> {
  const item = {
    ...eventKey(draft.event.id),
    kind: 'merchant_event',
    ...draft.event,
    merchant_id: draft.merchantId,
    object_kind: draft.objectKind,
    object_id: draft.objectId,
    gsi1pk: `MERCHANT#${draft.merchantId}#EVENTS`,
    gsi1sk: `${ms13(nowMs)}#${draft.order}#${draft.event.id}`,
    gsi2pk: `EVENTS#${draft.objectId}`,
    gsi2sk: `${ms13(nowMs)}#${draft.order}#${draft.event.id}`,
    expires_at: draft.event.created + RETENTION_SECONDS,
  };
  if (await putIfAbsent(table(), item)) return { created: true, event: toEvent(item) };
  const existing = await getEvent(draft.event.id);
  if (!existing) throw new Error(`event ${draft.event.id} exists and cannot be read`);
  return { created: false, event: existing };
}

export async function getEvent(id: string): Promise<StoredEvent | undefined> {
  if (!EVENT_ID.test(id)) return undefined;
  const out = await clients
    .ddb()
    .send(new GetCommand({ TableName: table(), Key: eventKey(id), ConsistentRead: true }));
  return out.Item ? toEvent(out.Item) : undefined;
}

/** The event if it belongs to the merchant (another merchant's event reads as missing). */
export async function getMerchantEvent(merchantId: string, id: string): Promise<StoredEvent | undefined> {
  const e = await getEvent(id);
  return e && e.merchant_id === merchantId ? e : undefined;
}

export interface EventListFilters {
  type?: string;
  limit: number;
  startingAfter?: string;
}

/** Newest first; cursor pagination with `starting_after` (an event id of the previous page). */
export async function listEvents(
  merchantId: string,
  f: EventListFilters,
): Promise<{ data: StoredEvent[]; hasMore: boolean }> {
  let after: Record<string, unknown> | undefined;
  if (f.startingAfter) {
    if (!(await getMerchantEvent(merchantId, f.startingAfter))) return { data: [], hasMore: false };
    after = await startKeyOf(table(), eventKey(f.startingAfter));
  }
  return cursorPage(
    {
      TableName: table(),
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :pk',
      FilterExpression: f.type ? '#type = :type' : undefined,
      ExpressionAttributeNames: f.type ? { '#type': 'type' } : undefined,
      ExpressionAttributeValues: {
        ':pk': `MERCHANT#${merchantId}#EVENTS`,
        ...(f.type ? { ':type': f.type } : {}),
      },
    },
    { limit: f.limit, after, map: toEvent },
  );
}

/** The events sent about one object (payment, refund, dispute…), oldest first (at most `limit`). */
export async function eventsOfObject(objectId: string, limit = 200): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  for await (const page of queryPageOutputs(
    { ...indexQuery(table(), `EVENTS#${objectId}`, 'gsi2'), Limit: limit },
    1,
  ))
    out.push(...(page.Items ?? []).map(toEvent));
  return out;
}

// ---------------------------------------------------------------- endpoints

export interface WebhookEndpoint {
  id: string;
  object: 'webhook_endpoint';
  merchant_id: string;
  url: string;
  enabled_events: string[];
  description: string | null;
  status: 'enabled' | 'disabled';
  created: number;
}

/** An endpoint as stored: its signing secret sealed, or (stored before encryption) in plaintext. */
export interface StoredEndpoint extends WebhookEndpoint {
  /** Opened only by `endpointSigningSecret`. Not enumerable: never serialized or logged by accident. */
  readonly storedSecret: { sealed: SealedValue } | { plaintext: string } | undefined;
}

const toEndpoint = (item: Record<string, unknown>): StoredEndpoint => {
  const endpoint: WebhookEndpoint = {
    id: item.id as string,
    object: 'webhook_endpoint',
    merchant_id: item.merchant_id as string,
    url: item.url as string,
    enabled_events: item.enabled_events as string[],
    description: (item.description as string | null | undefined) ?? null,
    status: item.status as WebhookEndpoint['status'],
    created: item.created as number,
  };
  const storedSecret = isSealedValue(item.secret_sealed)
    ? { sealed: item.secret_sealed }
    : typeof item.secret === 'string'
      ? { plaintext: item.secret }
      : undefined;
  return Object.defineProperty(endpoint, 'storedSecret', {
    value: storedSecret,
    enumerable: false,
  }) as StoredEndpoint;
};

/** What the sealed secret is bound to: a sealed value copied onto another endpoint does not open. */
const secretAad = (e: { id: string; merchant_id: string }) => `webhook_endpoint:${e.id}:${e.merchant_id}`;

/**
 * Registers an endpoint with a new signing secret, stored sealed. Returns the endpoint and the
 * secret in plaintext, for the create response only.
 */
export async function createEndpoint(
  merchantId: string,
  input: { url: string; enabled_events: string[]; description?: string },
  nowMs = Date.now(),
): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
  const endpoint: WebhookEndpoint = {
    id: newId('we'),
    object: 'webhook_endpoint',
    merchant_id: merchantId,
    url: input.url,
    enabled_events: input.enabled_events,
    description: input.description ?? null,
    status: 'enabled',
    created: Math.floor(nowMs / 1000),
  };
  const secret = `whsec_${randomBase62(32)}`;
  await clients.ddb().send(
    new PutCommand({
      TableName: table(),
      Item: {
        ...endpointKey(endpoint.id),
        kind: 'webhook_endpoint',
        ...endpoint,
        secret_sealed: await sealValue(WEBHOOK_SECRETS_KEY, secret, secretAad(endpoint)),
        gsi1pk: `MERCHANT#${merchantId}#WEBHOOK_ENDPOINTS`,
        gsi1sk: `${ms13(nowMs)}#${endpoint.id}`,
      },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
  forgetEndpoints(merchantId);
  return { endpoint, secret };
}

/**
 * The endpoint's signing secret in plaintext, for signing a delivery (never log or store it). A
 * plaintext secret stored before encryption is sealed now (migrated on read), once.
 */
export async function endpointSigningSecret(e: StoredEndpoint): Promise<string> {
  const stored = e.storedSecret;
  if (!stored) throw new Error(`webhook endpoint ${e.id} has no signing secret`);
  if ('sealed' in stored) return openValue(WEBHOOK_SECRETS_KEY, stored.sealed, secretAad(e));
  const sealed = await sealValue(WEBHOOK_SECRETS_KEY, stored.plaintext, secretAad(e));
  // Not written if sealed meanwhile by another reader, or deleted: the plaintext read is still the secret.
  await conditionalWrite(
    new UpdateCommand({
      TableName: table(),
      Key: endpointKey(e.id),
      UpdateExpression: 'SET secret_sealed = :sealed REMOVE secret',
      ConditionExpression: 'secret = :plain',
      ExpressionAttributeValues: { ':sealed': sealed, ':plain': stored.plaintext },
    }),
  );
  return stored.plaintext;
}

/** The merchant's endpoints, oldest first. */
export async function listEndpoints(merchantId: string): Promise<StoredEndpoint[]> {
  const items = await queryAll(indexQuery(table(), `MERCHANT#${merchantId}#WEBHOOK_ENDPOINTS`));
  return items.map(toEndpoint);
}

export async function getEndpoint(id: string): Promise<StoredEndpoint | undefined> {
  if (!ENDPOINT_ID.test(id)) return undefined;
  const out = await clients
    .ddb()
    .send(new GetCommand({ TableName: table(), Key: endpointKey(id), ConsistentRead: true }));
  return out.Item ? toEndpoint(out.Item) : undefined;
}

export async function getMerchantEndpoint(
  merchantId: string,
  id: string,
): Promise<StoredEndpoint | undefined> {
  const e = await getEndpoint(id);
  return e && e.merchant_id === merchantId ? e : undefined;
}

/** Deletes the merchant's endpoint; false if there is no such endpoint for this merchant. */
export async function deleteEndpoint(merchantId: string, id: string): Promise<boolean> {
  if (!ENDPOINT_ID.test(id)) return false;
  const deleted = await conditionalWrite(
    new DeleteCommand({
      TableName: table(),
      Key: endpointKey(id),
      ConditionExpression: 'merchant_id = :m',
      ExpressionAttributeValues: { ':m': merchantId },
    }),
  );
  if (deleted) forgetEndpoints(merchantId);
  return deleted;
}

// ---------------------------------------------------------------- deliveries

export interface Delivery {
  event_id: string;
  endpoint_id: string;
  url: string;
  status: DeliveryStatus;
  /** Attempts recorded so far. */
  attempt_count: number;
  created: number;
  updated: number;
  /** When the next automatic attempt is due (epoch seconds), while `pending` after a failure. */
  next_attempt_at: number | null;
  /** The wait before the next automatic attempt, and whether its message was sent. */
  retry_delay_seconds: number | null;
  retry_scheduled: number;
  delivered_at: number | null;
  last_http_status: number | null;
  last_error: string | null;
}

export interface DeliveryAttempt {
  attempt: number;
  at: string;
  http_status: number | null;
  latency_ms: number;
  error: string | null;
  manual: boolean;
}

const toDelivery = (item: Record<string, unknown>): Delivery => ({
  event_id: item.event_id as string,
  endpoint_id: item.endpoint_id as string,
  url: item.url as string,
  status: item.status as DeliveryStatus,
  attempt_count: (item.attempt_count as number | undefined) ?? 0,
  created: item.created as number,
  updated: item.updated as number,
  next_attempt_at: (item.next_attempt_at as number | null | undefined) ?? null,
  retry_delay_seconds: (item.retry_delay_seconds as number | null | undefined) ?? null,
  retry_scheduled: (item.retry_scheduled as number | undefined) ?? 0,
  delivered_at: (item.delivered_at as number | null | undefined) ?? null,
  last_http_status: (item.last_http_status as number | null | undefined) ?? null,
  last_error: (item.last_error as string | null | undefined) ?? null,
});

/**
 * How long the run that opened a delivery (or took it over) owns its first attempt: longer than
 * the `events-deliver` timeout (30 s, lib/topology/events.ts), so an owner still running is never
 * overtaken, and shorter than the queue's visibility timeout (180 s), so the owner's own message,
 * if the owner died, comes back after the claim ran out and takes the delivery over.
 */
export const DELIVERY_CLAIM_SECONDS = 60;

/**
 * Opens the delivery of an event to an endpoint unless it exists. Returns the delivery this call
 * opened (its run owns attempt 1: the claim, `updated` + DELIVERY_CLAIM_SECONDS), or undefined if
 * the delivery existed.
 */
export async function ensureDelivery(
  event: { id: string; created: number },
  endpoint: { id: string; url: string },
): Promise<Delivery | undefined> {
  const now = Math.floor(Date.now() / 1000);
  const item = {
    ...deliveryKey(event.id, endpoint.id),
    kind: 'webhook_delivery',
    event_id: event.id,
    endpoint_id: endpoint.id,
    url: endpoint.url,
    status: 'pending',
    attempt_count: 0,
    retry_scheduled: 0,
    created: now,
    updated: now,
    expires_at: event.created + RETENTION_SECONDS,
  };
  return (await putIfAbsent(table(), item)) ? toDelivery(item) : undefined;
}

/**
 * Takes over a delivery whose first attempt was claimed (opened) by a run that did not make it
 * within the claim: true if this call now owns attempt 1 (one conditional write; false if another
 * run recorded an attempt or took it over first).
 */
export async function takeOverDelivery(
  d: Delivery,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<boolean> {
  return conditionalWrite(
    new UpdateCommand({
      TableName: table(),
      Key: deliveryKey(d.event_id, d.endpoint_id),
      UpdateExpression: 'SET updated = :now',
      ConditionExpression: 'attempt_count = :zero AND updated = :seen AND #status = :pending',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: {
        ':now': nowSeconds,
        ':zero': 0,
        ':seen': d.updated,
        ':pending': 'pending',
      },
    }),
  );
}

export async function getDelivery(eventId: string, endpointId: string): Promise<Delivery | undefined> {
  const out = await clients
    .ddb()
    .send(
      new GetCommand({ TableName: table(), Key: deliveryKey(eventId, endpointId), ConsistentRead: true }),
    );
  return out.Item ? toDelivery(out.Item) : undefined;
}

/** Writes attempt `n` of a delivery (a repeated attempt n overwrites it with its latest outcome). */
export async function putAttempt(
  eventId: string,
  endpointId: string,
  a: DeliveryAttempt,
  eventCreated: number,
): Promise<void> {
  await clients.ddb().send(
    new PutCommand({
      TableName: table(),
      Item: {
        ...attemptKey(eventId, endpointId, a.attempt),
        kind: 'webhook_delivery_attempt',
        endpoint_id: endpointId,
        ...a,
        expires_at: eventCreated + RETENTION_SECONDS,
      },
    }),
  );
}

/**
 * Records that attempt `n` happened and what follows it. Succeeds once per attempt number (the
 * delivery must have recorded exactly n − 1 attempts); false if another run recorded it first.
 */
export async function recordAttempt(
  eventId: string,
  endpointId: string,
  n: number,
  outcome: {
    status: DeliveryStatus;
    httpStatus: number | null;
    error: string | null;
    retryInSeconds?: number;
    delivered: boolean;
  },
): Promise<boolean> {
  const now = Math.floor(Date.now() / 1000);
  const update = updateExpression(
    {
      status: outcome.status,
      attempt_count: n,
      updated: now,
      last_http_status: outcome.httpStatus,
      last_error: outcome.error,
      next_attempt_at: outcome.retryInSeconds !== undefined ? now + outcome.retryInSeconds : null,
      retry_delay_seconds: outcome.retryInSeconds ?? null,
    },
    [],
    {
      setIfAbsent: { delivered_at: outcome.delivered ? now : undefined },
      condition: { expression: 'attempt_count = :prev', values: { ':prev': n - 1 } },
    },
  )!;
  return conditionalWrite(
    new UpdateCommand({ TableName: table(), Key: deliveryKey(eventId, endpointId), ...update }),
  );
}

/** Notes that the message of automatic attempt `n` was sent (so a repeated run does not resend it). */
export async function markRetryScheduled(eventId: string, endpointId: string, n: number): Promise<void> {
  await conditionalWrite(
    new UpdateCommand({
      TableName: table(),
      Key: deliveryKey(eventId, endpointId),
      UpdateExpression: 'SET retry_scheduled = :n',
      ConditionExpression: 'attribute_exists(pk) AND retry_scheduled < :n',
      ExpressionAttributeValues: { ':n': n },
    }),
  );
}

/** Marks a delivery failed without an attempt (its endpoint was deleted). */
export async function abandonDelivery(eventId: string, endpointId: string, reason: string): Promise<void> {
  await conditionalWrite(
    new UpdateCommand({
      TableName: table(),
      Key: deliveryKey(eventId, endpointId),
      UpdateExpression:
        'SET #status = :failed, last_error = :reason, updated = :now, next_attempt_at = :null',
      ConditionExpression: '#status = :pending',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: {
        ':failed': 'failed',
        ':pending': 'pending',
        ':reason': reason,
        ':now': Math.floor(Date.now() / 1000),
        ':null': null,
      },
    }),
  );
}

/** Every delivery of an event with its attempts, in endpoint then attempt order. */
export async function eventDeliveries(
  eventId: string,
): Promise<(Delivery & { attempts: DeliveryAttempt[] })[]> {
  const deliveries = new Map<string, Delivery & { attempts: DeliveryAttempt[] }>();
  const attempts: { endpointId: string; a: DeliveryAttempt }[] = [];
  for await (const it of queryPages({
    TableName: table(),
    KeyConditionExpression: 'pk = :pk AND begins_with(sk, :d)',
    ExpressionAttributeValues: { ':pk': `EVENT#${eventId}`, ':d': 'DELIVERY#' },
    ConsistentRead: true,
  })) {
    if (it.kind === 'webhook_delivery')
      deliveries.set(it.endpoint_id as string, { ...toDelivery(it), attempts: [] });
    else if (it.kind === 'webhook_delivery_attempt')
      attempts.push({
        endpointId: it.endpoint_id as string,
        a: {
          attempt: it.attempt as number,
          at: it.at as string,
          http_status: (it.http_status as number | null | undefined) ?? null,
          latency_ms: it.latency_ms as number,
          error: (it.error as string | null | undefined) ?? null,
          manual: it.manual === true,
        },
      });
  }
  for (const { endpointId, a } of attempts) deliveries.get(endpointId)?.attempts.push(a);
  return [...deliveries.values()];
}
