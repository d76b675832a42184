/**
 * What the billing stores (customers, plans, subscriptions, invoices) share: one item per object
 * in table `main`, listed per merchant on gsi1 newest first, with a timeline under the same pk.
 *
 *   pk <KIND>#<id>  sk <KIND>                 the object (plus created_ms and gsi keys)
 *   pk <KIND>#<id>  sk EVENT#<ms>#<rand>      timeline entries (subscriptions and invoices)
 *   gsi1pk MERCHANT#<merchant>#<KIND>S  gsi1sk <created ms, 13 digits>#<id>
 *
 * Every write but the first bumps `version` (merchant events are keyed by it); status writes are
 * conditional on the allowed previous statuses, given by the caller from the transition tables
 * (lambdas/domain/subscription.ts).
 */
import { randomBytes } from 'node:crypto';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { conditionalUpdate, putIfAbsent } from './conditional.ts';
import { allOf, statusIn, updateExpression, type Condition } from './expressions.ts';
import { withoutInternal } from './items.ts';
import { cursorPage, queryAll, startKeyOf, type CursorPage } from './pages.ts';

type Item = Record<string, unknown>;
const table = () => config.tableName('main');
const INTERNAL = ['created_ms'];

export type BillingKind = 'customer' | 'plan' | 'subscription' | 'invoice';
const upper = (k: BillingKind) => k.toUpperCase();
export const objectKey = (kind: BillingKind, id: string) => ({ pk: `${upper(kind)}#${id}`, sk: upper(kind) });

export const fromItem = <T>(item: Item): T => withoutInternal(item, INTERNAL) as T;

/** Stores a new object; false when it exists already (a retried request or step wrote it). */
export function putObject(
  kind: BillingKind,
  obj: { id: string; merchant_id: string; created: number },
  createdMs = obj.created * 1000,
): Promise<boolean> {
  return putIfAbsent(table(), {
    ...objectKey(kind, obj.id),
    kind,
    ...obj,
    created_ms: createdMs,
    gsi1pk: `MERCHANT#${obj.merchant_id}#${upper(kind)}S`,
    gsi1sk: `${String(createdMs).padStart(13, '0')}#${obj.id}`,
  });
}

export async function getItem(kind: BillingKind, id: string): Promise<Item | undefined> {
  const out = await clients
    .ddb()
    .send(new GetCommand({ TableName: table(), Key: objectKey(kind, id), ConsistentRead: true }));
  return out.Item;
}

export async function getObject<T>(kind: BillingKind, id: string): Promise<T | undefined> {
  const item = await getItem(kind, id);
  return item ? fromItem<T>(item) : undefined;
}

/** The object if it belongs to the merchant: another merchant's object reads as missing. */
export async function getMerchantObject<T>(kind: BillingKind, merchantId: string, id: string) {
  const item = await getItem(kind, id);
  return item && item.merchant_id === merchantId ? fromItem<T>(item) : undefined;
}

export interface ObjectUpdate {
  set?: Item;
  remove?: string[];
  /** Only from these statuses (the guarded transition); omitted: any. */
  fromStatuses?: readonly string[];
  /** Extra condition, with its own `#c…`/`:c…` placeholders. */
  condition?: Condition;
  add?: Item;
}

/**
 * Updates the object (bumping `version`, setting `updated`) if it exists and the condition holds;
 * the new object, or undefined when the condition failed (nothing written).
 */
export async function updateObject<T>(
  kind: BillingKind,
  id: string,
  u: ObjectUpdate,
): Promise<T | undefined> {
  if (u.fromStatuses?.length === 0) return undefined;
  const condition = allOf(
    u.fromStatuses ? statusIn(u.fromStatuses) : { expression: 'attribute_exists(pk)' },
    u.condition,
  );
  const update = updateExpression(
    { ...(u.set ?? {}), updated: Math.floor(Date.now() / 1000) },
    u.remove ?? [],
    {
      add: { version: 1, ...(u.add ?? {}) },
      condition,
    },
  )!;
  const out = await conditionalUpdate(
    new UpdateCommand({ TableName: table(), Key: objectKey(kind, id), ...update, ReturnValues: 'ALL_NEW' }),
  );
  return out ? fromItem<T>(out) : undefined;
}

export interface ListOptions {
  limit: number;
  startingAfter?: string;
  /** Attribute equality filters (undefined values ignored). */
  equals?: Record<string, string | undefined>;
  /** Maps an id (the cursor) to whether it is the merchant's. */
}

/** The merchant's objects of a kind, newest first, with cursor pagination (`starting_after`). */
export async function listObjects<T>(
  kind: BillingKind,
  merchantId: string,
  o: ListOptions,
): Promise<CursorPage<T>> {
  let after: Item | undefined;
  if (o.startingAfter) {
    const previous = await getItem(kind, o.startingAfter);
    if (!previous || previous.merchant_id !== merchantId) return { data: [], hasMore: false };
    after = await startKeyOf(table(), objectKey(kind, o.startingAfter));
  }
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = { ':pk': `MERCHANT#${merchantId}#${upper(kind)}S` };
  const filters: string[] = [];
  Object.entries(o.equals ?? {}).forEach(([k, v], i) => {
    if (v === undefined) return;
    names[`#f${i}`] = k;
    values[`:f${i}`] = v;
    filters.push(`#f${i} = :f${i}`);
  });
  return cursorPage<T>(
    {
      TableName: table(),
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :pk',
      FilterExpression: filters.length ? filters.join(' AND ') : undefined,
      ExpressionAttributeNames: filters.length ? names : undefined,
      ExpressionAttributeValues: values,
    },
    {
      limit: o.limit,
      after,
      map: (it) => fromItem<T>(it),
      maxPages: 10,
      resumeAfter: (last) => String(last.pk).slice(upper(kind).length + 1),
    },
  );
}

export interface TimelineEntry {
  at: string;
  type: string;
  [k: string]: unknown;
}

/** Adds an entry to the object's timeline (what happened and why, in words). */
export async function addTimeline(
  kind: BillingKind,
  id: string,
  entry: Omit<TimelineEntry, 'at'>,
): Promise<void> {
  const ms = Date.now();
  await clients.ddb().send(
    new PutCommand({
      TableName: table(),
      Item: {
        pk: `${upper(kind)}#${id}`,
        sk: `EVENT#${String(ms).padStart(13, '0')}#${randomBytes(4).toString('hex')}`,
        kind: `${kind}_event`,
        at: new Date(ms).toISOString(),
        ...entry,
      },
    }),
  );
}

export async function timeline(kind: BillingKind, id: string): Promise<TimelineEntry[]> {
  const items = await queryAll({
    TableName: table(),
    KeyConditionExpression: 'pk = :pk AND begins_with(sk, :e)',
    ExpressionAttributeValues: { ':pk': `${upper(kind)}#${id}`, ':e': 'EVENT#' },
  });
  return items.map(({ pk: _pk, sk: _sk, kind: _kind, ...rest }) => rest as TimelineEntry);
}
