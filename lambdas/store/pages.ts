/**
 * Paginated reads: every Query and Scan that may span pages goes through these generators, so no
 * store writes its own `ExclusiveStartKey` loop. Items are yielded one at a time (memory stays
 * flat); `*PageOutputs` yield whole pages for callers that need the page boundary, and
 * `cursorPage` is the one shape of the API's cursor listings (newest first, `starting_after`).
 */
import {
  GetCommand,
  QueryCommand,
  ScanCommand,
  type QueryCommandInput,
  type QueryCommandOutput,
  type ScanCommandInput,
  type ScanCommandOutput,
} from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';

type Item = Record<string, unknown>;

/** Each page of a Query, following LastEvaluatedKey until the end (or `maxPages`). */
export async function* queryPageOutputs(
  input: QueryCommandInput,
  maxPages = Infinity,
): AsyncGenerator<QueryCommandOutput> {
  let start = input.ExclusiveStartKey;
  for (let n = 0; n < maxPages; n++) {
    const out = await clients.ddb().send(new QueryCommand({ ...input, ExclusiveStartKey: start }));
    yield out;
    start = out.LastEvaluatedKey;
    if (!start) return;
  }
}

/** Each page of a Scan, following LastEvaluatedKey until the end. */
export async function* scanPageOutputs(input: ScanCommandInput): AsyncGenerator<ScanCommandOutput> {
  let start = input.ExclusiveStartKey;
  for (;;) {
    const out = await clients.ddb().send(new ScanCommand({ ...input, ExclusiveStartKey: start }));
    yield out;
    start = out.LastEvaluatedKey;
    if (!start) return;
  }
}

/** The Query of one partition of an index (`<index>pk = pk`), in sort-key order. */
export const indexQuery = (tableName: string, pk: string, index = 'gsi1'): QueryCommandInput => ({
  TableName: tableName,
  IndexName: index,
  KeyConditionExpression: `${index}pk = :pk`,
  ExpressionAttributeValues: { ':pk': pk },
});

/** Every item a Query matches, across pages. */
export async function* queryPages(input: QueryCommandInput): AsyncGenerator<Item> {
  for await (const page of queryPageOutputs(input)) yield* (page.Items ?? []) as Item[];
}

/** Every item a Scan matches, across pages. */
export async function* scanPages(input: ScanCommandInput): AsyncGenerator<Item> {
  for await (const page of scanPageOutputs(input)) yield* (page.Items ?? []) as Item[];
}

/** All items of a Query, collected (for result sets known to be small, e.g. one payment's refunds). */
export async function queryAll(input: QueryCommandInput): Promise<Item[]> {
  const out: Item[] = [];
  for await (const it of queryPages(input)) out.push(it);
  return out;
}

/** What a cursor listing returns: a page of the API's `{ data, has_more }` lists. */
export interface CursorPage<T> {
  data: T[];
  hasMore: boolean;
  /** Set when the listing stopped at `maxPages` before filling the page: continue after this id. */
  nextStartingAfter?: string;
}

export interface CursorOptions<T> {
  /** Items per page. */
  limit: number;
  /** Where the previous page ended: the index and table keys of its last item (see `startKeyOf`). */
  after?: Record<string, unknown>;
  /** The API object of an item. */
  map: (item: Item) => T;
  /** Items the query returns that the listing leaves out (besides its FilterExpression). */
  keep?: (item: Item) => boolean;
  /**
   * At most this many Query pages per request, so a filter matching little in a large history
   * cannot make one request read it all; the caller then continues from `nextStartingAfter`,
   * the id `resumeAfter` finds in the last key read.
   */
  maxPages?: number;
  resumeAfter?: (lastEvaluatedKey: Item) => string;
}

/**
 * One page of a cursor listing: newest first (unless `input` says otherwise), read page by page
 * from `after` until `limit` items are kept and one more is known to exist (`hasMore`), or the
 * index ends.
 */
export async function cursorPage<T>(input: QueryCommandInput, o: CursorOptions<T>): Promise<CursorPage<T>> {
  const data: T[] = [];
  let pages = 0;
  const query: QueryCommandInput = {
    ScanIndexForward: false,
    Limit: Math.max(o.limit + 1, 25),
    ...input,
    ExclusiveStartKey: o.after,
  };
  for await (const page of queryPageOutputs(query)) {
    for (const it of (page.Items ?? []) as Item[]) if (!o.keep || o.keep(it)) data.push(o.map(it));
    pages++;
    const next = page.LastEvaluatedKey;
    if (data.length > o.limit || !next) break;
    if (o.maxPages !== undefined && o.resumeAfter && pages >= o.maxPages)
      return { data, hasMore: true, nextStartingAfter: o.resumeAfter(next) };
  }
  return { data: data.slice(0, o.limit), hasMore: data.length > o.limit };
}

/**
 * The keys of an item in the table and in index `index` (`<index>pk`, `<index>sk`): where a
 * cursor listing on that index resumes after it. Undefined if the item is gone.
 */
export async function startKeyOf(
  tableName: string,
  key: Record<string, unknown>,
  index = 'gsi1',
): Promise<Item | undefined> {
  const out = await clients.ddb().send(
    new GetCommand({
      TableName: tableName,
      Key: key,
      ProjectionExpression: `${Object.keys(key).join(', ')}, ${index}pk, ${index}sk`,
    }),
  );
  return out.Item;
}
