/**
 * The open-items index: payments and refunds that have not reached a final status, listed on
 * `gsi2` (sparse) so the sweeper reads them instead of scanning the whole table.
 *
 *   gsi2pk OPEN#<kind>#<shard 0..7>  gsi2sk <ms of the status change, 13 digits>#<id>
 *
 * An item carries the two keys exactly while its status is open (payment `processing`,
 * `requires_action`, `authorized`; refund `pending`): the same conditional write that sets the
 * status sets or removes them (`openIndex`, used by lambdas/store/payments.ts and refunds.ts), so
 * the index never lists an item in a status it does not have. `pending_review` is not listed: the
 * review window is the payment workflow's own wait, not the sweeper's (it has a partition of its own
 * for the console's reviews queue: `waitingForReview`). The partition is one of 8
 * shards by a hash of the id, so no partition is hot.
 *
 * Items written before the index existed have no keys: `backfillOpenIndex` adds them once (the
 * sweeper runs it until the marker item `pk MIGRATION sk open-items-index` exists; delete the
 * marker to run it again). An item written without keys by code older than the index after that
 * gets them at its next status change.
 */
import { createHash } from 'node:crypto';
import { GetCommand, PutCommand, UpdateCommand, type ScanCommandInput } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { logger } from '../shared/logger.ts';
import { conditionalWrite } from './conditional.ts';
import { updateExpression } from './expressions.ts';
import { indexQuery, queryPageOutputs, queryPages, scanPages } from './pages.ts';

export type OpenKind = 'payment' | 'refund';

/** The statuses in which an item is listed. */
export const OPEN_STATUSES: Readonly<Record<OpenKind, readonly string[]>> = {
  payment: ['processing', 'requires_action', 'authorized'],
  refund: ['pending'],
};

export const OPEN_INDEX = 'gsi2';
const OPEN_SHARDS = 8;
const KEY_ATTRIBUTES = ['gsi2pk', 'gsi2sk'];
const table = () => config.tableName('main');
const MARKER = { pk: 'MIGRATION', sk: 'open-items-index' };

const shardOf = (id: string) => createHash('sha256').update(id).digest()[0]! % OPEN_SHARDS;
const partition = (kind: OpenKind, shard: number) => `OPEN#${kind}#${shard}`;

/**
 * Payments held for a manual review are listed on the same index under one partition of their
 * own (`REVIEWS#waiting`, oldest first by when they were held), for the console's reviews queue:
 * the write that holds the payment lists it and the write that moves it on takes it off, like the
 * open items. Reviews wait for a person, so they are few. Not read by the sweeper.
 */
const REVIEW_PARTITION = 'REVIEWS#waiting';

/** The index keys of an open item. */
export const openIndexKeys = (kind: OpenKind, id: string, atMs: number) => ({
  gsi2pk: partition(kind, shardOf(id)),
  gsi2sk: `${String(atMs).padStart(13, '0')}#${id}`,
});

/**
 * What a write that puts the item in `status` does to the index: the keys to set (an open
 * status) or the attributes to remove (any other).
 */
export function openIndex(
  kind: OpenKind,
  id: string,
  status: string,
  atMs: number,
): { set: Record<string, string>; remove: string[] } {
  if (OPEN_STATUSES[kind].includes(status)) return { set: openIndexKeys(kind, id, atMs), remove: [] };
  if (kind === 'payment' && status === 'pending_review')
    return {
      set: { gsi2pk: REVIEW_PARTITION, gsi2sk: `${String(atMs).padStart(13, '0')}#${id}` },
      remove: [],
    };
  return { set: {}, remove: KEY_ATTRIBUTES };
}

/** Payments waiting for a review decision, oldest first, `limit` at a time (`after`: the previous page's `next`). */
export async function waitingForReview(o: {
  limit: number;
  after?: string;
}): Promise<{ items: Record<string, unknown>[]; next?: string }> {
  const items: Record<string, unknown>[] = [];
  for await (const page of queryPageOutputs({
    TableName: table(),
    IndexName: OPEN_INDEX,
    KeyConditionExpression: o.after ? 'gsi2pk = :pk AND gsi2sk > :after' : 'gsi2pk = :pk',
    ExpressionAttributeValues: { ':pk': REVIEW_PARTITION, ...(o.after ? { ':after': o.after } : {}) },
    Limit: o.limit + 1,
  })) {
    items.push(...(page.Items ?? []));
    if (items.length > o.limit) break;
  }
  const shown = items.slice(0, o.limit);
  return { items: shown, next: items.length > o.limit ? String(shown.at(-1)!.gsi2sk) : undefined };
}

/**
 * How many payments wait for a review decision (of one merchant, if given): the reviews queue's
 * partition counted by DynamoDB (`Select: COUNT`), so the console's home page reads index entries
 * only, and at most `cap` matches or `maxReads` entries (one merchant's, filtered, among every
 * merchant's): past either, `capped` (there may be more).
 */
export async function countWaitingForReview(
  cap: number,
  merchantId?: string,
  maxReads = 5 * cap,
): Promise<{ count: number; capped: boolean }> {
  let n = 0;
  let read = 0;
  let more = false;
  for await (const page of queryPageOutputs({
    TableName: table(),
    IndexName: OPEN_INDEX,
    KeyConditionExpression: 'gsi2pk = :pk',
    ExpressionAttributeValues: { ':pk': REVIEW_PARTITION, ...(merchantId ? { ':m': merchantId } : {}) },
    ...(merchantId ? { FilterExpression: 'merchant_id = :m' } : {}),
    Select: 'COUNT',
    Limit: Math.min(cap + 1, maxReads),
  })) {
    n += page.Count ?? 0;
    read += page.ScannedCount ?? 0;
    more = page.LastEvaluatedKey !== undefined;
    if (n > cap || read >= maxReads) break;
  }
  return { count: Math.min(n, cap), capped: n > cap || more };
}

/** A Scan for the open items of `kinds`; `unlistedOnly`: those without index keys. */
function openScan(kinds: readonly OpenKind[], unlistedOnly: boolean): ScanCommandInput {
  const values: Record<string, unknown> = {};
  const terms = kinds.map((kind, k) => {
    values[`:k${k}`] = kind;
    const statuses = OPEN_STATUSES[kind].map((s, i) => {
      values[`:k${k}s${i}`] = s;
      return `:k${k}s${i}`;
    });
    return `kind = :k${k} AND #s IN (${statuses.join(', ')})`;
  });
  // DynamoDB refuses redundant parentheses: only an OR of several kinds needs them.
  const open = terms.length === 1 ? terms[0]! : terms.map((t) => `(${t})`).join(' OR ');
  return {
    TableName: table(),
    FilterExpression: unlistedOnly
      ? `${terms.length === 1 ? open : `(${open})`} AND attribute_not_exists(gsi2pk)`
      : open,
    ExpressionAttributeNames: { '#s': 'status' },
    ExpressionAttributeValues: values,
  };
}

const isMissingIndex = (err: unknown) =>
  (err as { name?: string } | null)?.name === 'ValidationException' &&
  /specified index/.test((err as Error).message);

/**
 * Every open item of a kind (whole items: the index projects all attributes), shard by shard. A
 * table created before the index (a local data dir from an older version: the local runtime
 * cannot add an index to an existing table) is scanned instead, with a warning.
 */
export async function* openItems(kind: OpenKind): AsyncGenerator<Record<string, unknown>> {
  for (let shard = 0; shard < OPEN_SHARDS; shard++) {
    try {
      yield* queryPages(indexQuery(table(), partition(kind, shard), OPEN_INDEX));
    } catch (err) {
      if (shard > 0 || !isMissingIndex(err)) throw err;
      logger.warn('the main table has no open-items index (gsi2): scanning it instead', { table: table() });
      yield* scanPages(openScan([kind], false));
      return;
    }
  }
}

/**
 * Lists the open payments and refunds written before the index existed, once: returns how many it
 * listed, or undefined when the marker says it has run. Each item is listed only if it is still in
 * the status it was read in (a conditional write), so a concurrent status change always wins.
 */
export async function backfillOpenIndex(): Promise<number | undefined> {
  const marker = await clients
    .ddb()
    .send(new GetCommand({ TableName: table(), Key: MARKER, ConsistentRead: true }));
  if (marker.Item) return undefined;
  let listed = 0;
  for await (const it of scanPages({
    ...openScan(['payment', 'refund'], true),
    ProjectionExpression: 'pk, sk, kind, id, #s, updated',
  })) {
    const keys = openIndexKeys(it.kind as OpenKind, String(it.id), Number(it.updated ?? 0) * 1000);
    const listedNow = await conditionalWrite(
      new UpdateCommand({
        TableName: table(),
        Key: { pk: it.pk, sk: it.sk },
        ...updateExpression(keys, [], {
          condition: {
            expression: '#s = :was AND attribute_not_exists(gsi2pk)',
            names: { '#s': 'status' },
            values: { ':was': it.status },
          },
        })!,
      }),
    );
    if (listedNow) listed++;
  }
  await clients.ddb().send(
    new PutCommand({
      TableName: table(),
      Item: { ...MARKER, kind: 'migration', done_at: new Date().toISOString(), listed },
    }),
  );
  return listed;
}

/**
 * How many open items of a kind (of one merchant, if given) have been in their status since before
 * `beforeMs` (the oldest of each shard first in the index, so this reads only them), counting at
 * most `cap` (then `capped`: "at least `count`"). The shards are filled evenly (by a hash), so each
 * counts at most its share of the cap (`cap / OPEN_SHARDS`, rounded up) and reads at most one more
 * entry than that, or ten times that for one merchant's items filtered among every merchant's;
 * past that the count is `capped` too (there may be more). A page view reads a bounded number of
 * entries (the home page's cap of 100: at most 112 entries, where a cap per shard read 808).
 * For the console's home page; a table without the index counts nothing (the sweeper's scan
 * fallback is not worth a page view).
 */
export async function countOpenSince(
  kind: OpenKind,
  beforeMs: number,
  cap: number,
  merchantId?: string,
): Promise<{ count: number; capped: boolean }> {
  const before = String(Math.max(0, beforeMs)).padStart(13, '0');
  const share = Math.ceil(cap / OPEN_SHARDS);
  const maxRead = (merchantId ? 10 : 1) * (share + 1);
  let unread = false;
  let over = false;
  const counts = await Promise.all(
    Array.from({ length: OPEN_SHARDS }, async (_, shard) => {
      let n = 0;
      let read = 0;
      try {
        for await (const page of queryPageOutputs({
          TableName: table(),
          IndexName: OPEN_INDEX,
          KeyConditionExpression: 'gsi2pk = :pk AND gsi2sk < :before',
          ExpressionAttributeValues: {
            ':pk': partition(kind, shard),
            ':before': before,
            ...(merchantId ? { ':m': merchantId } : {}),
          },
          ...(merchantId ? { FilterExpression: 'merchant_id = :m' } : {}),
          Select: 'COUNT',
          Limit: maxRead,
        })) {
          n += page.Count ?? 0;
          read += page.ScannedCount ?? 0;
          if (n > share) {
            over = true;
            break;
          }
          if (read >= maxRead && page.LastEvaluatedKey) {
            unread = true;
            break;
          }
        }
      } catch (err) {
        if (!isMissingIndex(err)) throw err;
      }
      return n;
    }),
  );
  const count = counts.reduce((a, b) => a + b, 0);
  return { count: Math.min(count, cap), capped: count > cap || over || unread };
}
