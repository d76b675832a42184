/**
 * Approval rollup items (docs/routing.md "Approval rollups"; attribute layout in
 * lambdas/analytics/rollup-format.ts), in the main table: `pk = ROLLUP#<merchant>`,
 * `sk = DAY#YYYY-MM-DD`, `kind = approval_rollup` (the stream's rollup
 * maintenance only looks at `kind = payment`, so these writes never feed back into rollups).
 *
 * Exactly once: `applyRollupDeltas` adds a stream batch's deltas to one item with one UpdateItem
 * that also sets `s|<shard>` to the batch's last sequence number for that item, on condition that
 * the recorded one is absent or lower than the batch's first. Records of a shard arrive in order
 * and every applied batch covered every record of that item up to its last one, so when the
 * condition fails the item already holds the records up to the recorded number: the ones after it
 * (a redelivered batch that grew) are applied on condition that the recorded number is unchanged.
 */
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { conditionalUpdate, conditionalWrite } from './conditional.ts';
import { queryPages } from './pages.ts';
import { seqAttribute } from '../analytics/rollup-format.ts';

export const ROLLUP_KIND = 'approval_rollup';

const table = () => config.tableName('main');

export const dayKey = (merchantId: string, day: string) => ({ pk: `ROLLUP#${merchantId}`, sk: `DAY#${day}` });

/** One stream record's deltas to one rollup item. */
export interface RecordDelta {
  /** Padded sequence number (rollup-format.ts `paddedSequence`). */
  seq: string;
  counters: [string, number][];
  /** Attributes set once (`k|id`: a combination's values). */
  once: [string, string][];
}

/** Expression length kept under DynamoDB's 4 KB limit: a longer batch is written in several parts. */
const MAX_EXPRESSION = 3_000;

function expressionLength(d: RecordDelta): number {
  return d.counters.length * 16 + d.once.length * 40;
}

/** Consecutive runs of deltas whose update expression fits. */
function parts(deltas: RecordDelta[]): RecordDelta[][] {
  const out: RecordDelta[][] = [];
  let cur: RecordDelta[] = [];
  let len = 0;
  for (const d of deltas) {
    const l = expressionLength(d);
    if (cur.length && len + l > MAX_EXPRESSION) {
      out.push(cur);
      cur = [];
      len = 0;
    }
    cur.push(d);
    len += l;
  }
  if (cur.length) out.push(cur);
  return out;
}

async function recordedSequence(key: Record<string, string>, shard: string): Promise<string | undefined> {
  const out = await clients.ddb().send(
    new GetCommand({
      TableName: table(),
      Key: key,
      ConsistentRead: true,
      ProjectionExpression: '#s',
      ExpressionAttributeNames: { '#s': seqAttribute(shard) },
    }),
  );
  const v = out.Item?.[seqAttribute(shard)];
  return typeof v === 'string' ? v : undefined;
}

/** One UpdateItem: the summed deltas, on condition about the shard's recorded sequence number. */
function write(
  key: Record<string, string>,
  merchantId: string,
  shard: string,
  deltas: RecordDelta[],
  recorded: string | undefined | 'unknown',
): Promise<false | { created: boolean }> | undefined {
  const sums = new Map<string, number>();
  const once = new Map<string, string>();
  for (const d of deltas) {
    for (const [n, v] of d.counters) sums.set(n, (sums.get(n) ?? 0) + v);
    for (const [n, v] of d.once) once.set(n, v);
  }
  const adds = [...sums].filter(([, v]) => v !== 0);
  if (!adds.length) return undefined; // nothing changes (e.g., a payment's outcome did not change)
  const names: Record<string, string> = { '#s': seqAttribute(shard), '#kind': 'kind', '#m': 'merchant_id' };
  const values: Record<string, unknown> = {
    ':last': deltas.at(-1)!.seq,
    ':kind': ROLLUP_KIND,
    ':m': merchantId,
  };
  const set = ['#s = :last', '#kind = :kind', '#m = :m'];
  let i = 0;
  for (const [n, v] of once) {
    names[`#o${i}`] = n;
    values[`:o${i}`] = v;
    set.push(`#o${i} = if_not_exists(#o${i}, :o${i})`);
    i++;
  }
  const add = adds.map(([n, v], j) => {
    names[`#a${j}`] = n;
    values[`:a${j}`] = v;
    return `#a${j} :a${j}`;
  });
  let condition: string;
  if (recorded === 'unknown') {
    condition = 'attribute_not_exists(#s) OR #s < :first';
    values[':first'] = deltas[0]!.seq;
  } else if (recorded === undefined) condition = 'attribute_not_exists(#s)';
  else {
    condition = '#s = :recorded';
    values[':recorded'] = recorded;
  }
  return conditionalUpdate(
    new UpdateCommand({
      TableName: table(),
      Key: key,
      UpdateExpression: `SET ${set.join(', ')} ADD ${add.join(', ')}`,
      ConditionExpression: condition,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
      ReturnValues: 'UPDATED_OLD',
    }),
  ).then((old) => (old === undefined ? false : { created: old.kind === undefined }));
}

/**
 * Adds the deltas (one shard's records for this item, in sequence order) exactly once, whatever
 * was applied before from that shard. Returns the number of UpdateItem calls that wrote.
 */
export async function applyRollupDeltas(
  key: Record<string, string>,
  merchantId: string,
  shard: string,
  deltas: RecordDelta[],
): Promise<number> {
  let written = 0;
  for (const part of parts(deltas)) {
    let recorded: string | undefined | 'unknown' = 'unknown';
    let pending = part;
    for (let attempt = 0; ; attempt++) {
      const ok = await write(key, merchantId, shard, pending, recorded);
      if (ok === undefined) break;
      if (ok) {
        written++;
        // A new day's item: the day before yesterday's no longer needs its 5-minute counters.
        if (ok.created) await dropBuckets(merchantId, dayBefore(String(key.sk).slice('DAY#'.length), 2));
        break;
      }
      // Already applied up to the recorded number: apply only what comes after it.
      if (attempt >= 5) throw new Error(`rollup ${key.pk} ${key.sk}: shard ${shard} keeps moving`);
      recorded = await recordedSequence(key, shard);
      const after = recorded;
      pending = after === undefined ? part : part.filter((d) => d.seq > after);
      if (!pending.length) break;
    }
  }
  return written;
}

/** The day rollup items of a merchant from `from` to `to` (YYYY-MM-DD, both included). */
export function dayRollups(
  merchantId: string,
  from: string,
  to: string,
): AsyncGenerator<Record<string, unknown>> {
  return queryPages({
    TableName: table(),
    ConsistentRead: true,
    KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
    ExpressionAttributeValues: { ':pk': `ROLLUP#${merchantId}`, ':lo': `DAY#${from}`, ':hi': `DAY#${to}` },
  });
}

/**
 * Of each day item (`days`, YYYY-MM-DD), only the attributes named (the minute counters the home
 * page shows): one GetItem per day, so the read returns a few hundred bytes of a larger item.
 */
export async function dayRollupAttributes(
  merchantId: string,
  days: string[],
  attributes: string[],
): Promise<Map<string, Record<string, unknown>>> {
  const names = Object.fromEntries(attributes.map((a, i) => [`#a${i}`, a]));
  const out = new Map<string, Record<string, unknown>>();
  await Promise.all(
    days.map(async (day) => {
      const r = await clients.ddb().send(
        new GetCommand({
          TableName: table(),
          Key: dayKey(merchantId, day),
          ProjectionExpression: Object.keys(names).join(', '),
          ExpressionAttributeNames: names,
        }),
      );
      if (r.Item) out.set(day, r.Item);
    }),
  );
  return out;
}

const dayBefore = (day: string, n: number) =>
  new Date(Date.parse(`${day}T00:00:00Z`) - n * 86_400_000).toISOString().slice(0, 10);

/** Attribute names REMOVEd per UpdateItem (the expression stays far under 4 KB). */
const REMOVE_CHUNK = 100;

/**
 * Removes the 5-minute counters (`m|…`) of a merchant's day item: only the home page's last hour
 * reads them, from today's and yesterday's items, and they are most of an item's size, which every
 * read of a range of days (analytics) carries. The stream router calls it for the day before
 * yesterday when it creates a day's item; `paystep analytics rebuild` for older items (with the
 * `item` it has just read: not read again). Returns how many it removed. REMOVE and the
 * router's ADDs commute; a late delta may add one back.
 */
export async function dropBuckets(
  merchantId: string,
  day: string,
  item?: Record<string, unknown>,
): Promise<number> {
  const key = dayKey(merchantId, day);
  const current =
    item ??
    (await clients.ddb().send(new GetCommand({ TableName: table(), Key: key, ConsistentRead: true }))).Item;
  const names = Object.keys(current ?? {}).filter((n) => n.startsWith('m|'));
  for (let i = 0; i < names.length; i += REMOVE_CHUNK) {
    const chunk = names.slice(i, i + REMOVE_CHUNK);
    await conditionalWrite(
      new UpdateCommand({
        TableName: table(),
        Key: key,
        UpdateExpression: `REMOVE ${chunk.map((_, j) => `#r${j}`).join(', ')}`,
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: Object.fromEntries(chunk.map((n, j) => [`#r${j}`, n])),
      }),
    );
  }
  return names.length;
}
