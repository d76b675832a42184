/**
 * Processor events received by webhook, stored raw, once (table `main`).
 *
 *   pk WEBHOOK#<processor>#<event id>  sk WEBHOOK       the event (kind 'webhook_event')
 *   gsi1pk WEBHOOKS#<processor>#<status>  gsi1sk <created, 10 digits>#<event id>
 *                                                      only while parked or failed (sparse: ops lists)
 *
 * Statuses: `received` (stored, queued) → `processed` (its domain action done, or nothing to do:
 * an event the receiver settled itself is stored `processed`, lambdas/webhooks/receive.ts);
 * `parked` (it concerns an object paystep does not know yet: retried with growing delays);
 * `failed` (retries exhausted, the queue moved it to the dead-letter queue; `paystep webhooks
 * replay` queues it again). `raw` is the body exactly as received (the signed bytes, as text).
 *
 * Processing is claimed with a lease (`lease_until`), so two deliveries of the same event (a
 * duplicate webhook, an SQS redelivery) never run its actions at the same time, and a processed
 * event is never processed again.
 */
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { conditionalUpdate, conditionalWrite, putIfAbsent } from './conditional.ts';
import { updateExpression } from './expressions.ts';
import { queryPages } from './pages.ts';

export type WebhookEventStatus = 'received' | 'processed' | 'parked' | 'failed';

export interface WebhookEventRecord {
  processor: string;
  id: string;
  type: string;
  /** The event's own creation time at the processor (epoch seconds). */
  created: number;
  livemode: boolean;
  /** The body exactly as received. */
  raw: string;
  status: WebhookEventStatus;
  /** Processing attempts so far. */
  attempts: number;
  /** What processing did: applied, recorded, ignored, … (once processed). */
  outcome?: string;
  /** Why the last attempt did not finish (parked, failed). */
  last_error?: string;
  received_at: number;
  processed_at?: number;
  lease_until?: number;
  /** The delivery (SQS message id) holding the lease. */
  lease_holder?: string;
  expires_at: number;
}

const table = () => config.tableName('main');
const key = (processor: string, id: string) => ({ pk: `WEBHOOK#${processor}#${id}`, sk: 'WEBHOOK' });
const listKey = (processor: string, status: WebhookEventStatus) => `WEBHOOKS#${processor}#${status}`;
const sortKey = (created: number, id: string) => `${String(Math.max(0, created)).padStart(10, '0')}#${id}`;
const nowSeconds = () => Math.floor(Date.now() / 1000);

function toRecord(item: Record<string, unknown>): WebhookEventRecord {
  const { pk: _pk, sk: _sk, kind: _kind, gsi1pk: _g1, gsi1sk: _g2, ...rest } = item;
  return rest as unknown as WebhookEventRecord;
}

export interface NewWebhookEvent {
  processor: string;
  id: string;
  type: string;
  created: number;
  livemode: boolean;
  raw: string;
}

/**
 * Stores the event unless it is already there. Returns the stored record and whether this call
 * created it (false: a duplicate delivery of the same event id).
 */
/** DynamoDB items are at most 400 KB; a larger event is kept as a stub and surfaced as failed. */
export const MAX_STORED_RAW_BYTES = 350_000;

export async function recordWebhookEvent(
  e: NewWebhookEvent,
  ttlDays: number,
  /** The event was settled by the receiver (nothing to apply): stored `processed` with this outcome. */
  settled?: string,
): Promise<{ created: boolean; record: WebhookEventRecord }> {
  const now = nowSeconds();
  const size = Buffer.byteLength(e.raw);
  const tooLarge = size > MAX_STORED_RAW_BYTES;
  const record: WebhookEventRecord = {
    ...e,
    ...(tooLarge
      ? {
          raw: JSON.stringify({ id: e.id, type: e.type, created: e.created, truncated: true }),
          status: 'failed' as const,
          last_error: `event too large to store (${size} bytes): handle it from the processor's dashboard`,
        }
      : settled
        ? { status: 'processed' as const, outcome: settled, processed_at: now }
        : { status: 'received' as const }),
    attempts: settled && !tooLarge ? 1 : 0,
    received_at: now,
    expires_at: now + ttlDays * 86400,
  };
  const listed = tooLarge ? { gsi1pk: listKey(e.processor, 'failed'), gsi1sk: sortKey(e.created, e.id) } : {};
  const created = await putIfAbsent(table(), {
    ...key(e.processor, e.id),
    kind: 'webhook_event',
    ...record,
    ...listed,
  });
  if (created) return { created: true, record };
  const existing = await getWebhookEvent(e.processor, e.id);
  if (!existing) throw new Error(`webhook event ${e.processor}/${e.id} exists and cannot be read`);
  return { created: false, record: existing };
}

export async function getWebhookEvent(
  processor: string,
  id: string,
): Promise<WebhookEventRecord | undefined> {
  const out = await clients
    .ddb()
    .send(new GetCommand({ TableName: table(), Key: key(processor, id), ConsistentRead: true }));
  return out.Item ? toRecord(out.Item) : undefined;
}

export type Claim =
  | { state: 'claimed'; record: WebhookEventRecord }
  | { state: 'processed'; record: WebhookEventRecord }
  | { state: 'busy'; record: WebhookEventRecord }
  | { state: 'missing' };

/**
 * Takes the event for processing for `leaseSeconds` (counting the attempt), unless it is already
 * processed or a delivery holds an unexpired lease (`busy`, with its holder). `force` takes it
 * over anyway (the last chance of a message whose earlier receive never released it).
 */
export async function claimWebhookEvent(
  processor: string,
  id: string,
  leaseSeconds: number,
  holder: string,
  force = false,
): Promise<Claim> {
  const now = nowSeconds();
  const values: Record<string, unknown> = {
    ':until': now + leaseSeconds,
    ':holder': holder,
    ':one': 1,
    ':processed': 'processed',
  };
  let condition = 'attribute_exists(pk) AND #s <> :processed';
  if (!force) {
    condition += ' AND (attribute_not_exists(lease_until) OR lease_until < :now)';
    values[':now'] = now;
  }
  const claimed = await conditionalUpdate(
    new UpdateCommand({
      TableName: table(),
      Key: key(processor, id),
      UpdateExpression: 'SET lease_until = :until, lease_holder = :holder ADD attempts :one',
      ConditionExpression: condition,
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: values,
      ReturnValues: 'ALL_NEW',
    }),
  );
  if (claimed) return { state: 'claimed', record: toRecord(claimed) };
  const record = await getWebhookEvent(processor, id);
  if (!record) return { state: 'missing' };
  if (record.status === 'processed') return { state: 'processed', record };
  return { state: 'busy', record };
}

/** Processing finished (its actions are done, or there was nothing to do): never processed again. */
export async function completeWebhookEvent(processor: string, id: string, outcome: string): Promise<void> {
  await clients.ddb().send(
    new UpdateCommand({
      TableName: table(),
      Key: key(processor, id),
      UpdateExpression:
        'SET #s = :processed, outcome = :outcome, processed_at = :now REMOVE lease_until, lease_holder, last_error, gsi1pk, gsi1sk',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':processed': 'processed', ':outcome': outcome, ':now': nowSeconds() },
    }),
  );
}

/**
 * The attempt did not finish: `parked` (unknown object, retried later), `failed` (retries
 * exhausted: listed for ops), or still `received` (a transient error, retried). The lease is
 * released so the next delivery can take it at once.
 */
export async function releaseWebhookEvent(
  processor: string,
  id: string,
  status: Exclude<WebhookEventStatus, 'processed'>,
  error: string,
): Promise<void> {
  const rec = await getWebhookEvent(processor, id);
  if (!rec) return;
  // Parked and failed events are listed for ops (sparse gsi1); the lease is released either way.
  const listed = status === 'parked' || status === 'failed';
  const listing = listed ? { gsi1pk: listKey(processor, status), gsi1sk: sortKey(rec.created, id) } : {};
  await conditionalWrite(
    new UpdateCommand({
      TableName: table(),
      Key: key(processor, id),
      ...updateExpression(
        { status, last_error: error.slice(0, 1000), ...listing },
        ['lease_until', 'lease_holder', ...(listed ? [] : ['gsi1pk', 'gsi1sk'])],
        {
          condition: {
            expression: 'attribute_exists(pk) AND #s <> :processed',
            names: { '#s': 'status' },
            values: { ':processed': 'processed' },
          },
        },
      )!,
    }),
  );
}

/**
 * Back to `received` for another round of processing (ops replay). A processed event is left
 * alone unless `force`. Returns what was done.
 */
export async function resetWebhookEvent(
  processor: string,
  id: string,
  force = false,
): Promise<'reset' | 'missing' | 'processed'> {
  const reset = await conditionalWrite(
    new UpdateCommand({
      TableName: table(),
      Key: key(processor, id),
      UpdateExpression:
        'SET #s = :received REMOVE lease_until, lease_holder, gsi1pk, gsi1sk, outcome, processed_at',
      ConditionExpression: force ? 'attribute_exists(pk)' : 'attribute_exists(pk) AND #s <> :processed',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: force
        ? { ':received': 'received' }
        : { ':received': 'received', ':processed': 'processed' },
    }),
  );
  if (reset) return 'reset';
  return (await getWebhookEvent(processor, id)) ? 'processed' : 'missing';
}

/** Parked or failed events, oldest first. */
export async function listWebhookEvents(
  processor: string,
  status: 'parked' | 'failed',
  limit = 100,
): Promise<WebhookEventRecord[]> {
  const out: WebhookEventRecord[] = [];
  if (limit <= 0) return out;
  for await (const it of queryPages({
    TableName: table(),
    IndexName: 'gsi1',
    KeyConditionExpression: 'gsi1pk = :p',
    ExpressionAttributeValues: { ':p': listKey(processor, status) },
    Limit: limit,
  })) {
    out.push(toRecord(it));
    if (out.length >= limit) break;
  }
  return out;
}
