/**
 * The store's shared helpers against a local DynamoDB: pagination (pages.ts), the cursor listing,
 * conditional writes (conditional.ts) and the update-expression builder (expressions.ts).
 */
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../../lambdas/shared/aws.ts';
import { conditionalUpdate, conditionalWrite, isConditionFailure } from '../../lambdas/store/conditional.ts';
import { allOf, statusIn, updateExpression } from '../../lambdas/store/expressions.ts';
import {
  cursorPage,
  queryAll,
  queryPageOutputs,
  queryPages,
  scanPages,
  startKeyOf,
} from '../../lambdas/store/pages.ts';
import { startLocalTable, type LocalTable } from './store-local-table.ts';

let t: LocalTable;
const N = 23;
const ms13 = (n: number) => String(n).padStart(13, '0');

beforeAll(async () => {
  t = await startLocalTable();
  for (let i = 0; i < N; i++)
    await clients.ddb().send(
      new PutCommand({
        TableName: t.name,
        Item: {
          pk: 'PAGES',
          sk: `ITEM#${String(i).padStart(3, '0')}`,
          n: i,
          even: i % 2 === 0,
          gsi1pk: 'LIST#pages',
          gsi1sk: `${ms13(1_000 + i)}#it${i}`,
        },
      }),
    );
});
afterAll(async () => t?.stop());

describe('pages', () => {
  const byPk = { TableName: () => t.name, KeyConditionExpression: 'pk = :p' };
  const query = (limit: number) => ({
    TableName: byPk.TableName(),
    KeyConditionExpression: byPk.KeyConditionExpression,
    ExpressionAttributeValues: { ':p': 'PAGES' },
    Limit: limit,
  });

  test('queryPages follows LastEvaluatedKey across pages of a small Limit, in order, each item once', async () => {
    const seen: number[] = [];
    for await (const it of queryPages(query(5))) seen.push(it.n as number);
    expect(seen).toEqual(Array.from({ length: N }, (_, i) => i));
    let pages = 0;
    for await (const page of queryPageOutputs(query(5))) {
      pages++;
      expect((page.Items ?? []).length).toBeLessThanOrEqual(5);
    }
    expect(pages).toBeGreaterThanOrEqual(Math.ceil(N / 5));
    expect((await queryAll(query(4))).map((it) => it.n)).toEqual(seen);
  });

  test('a filter that drops items on some pages still reaches the end', async () => {
    const evens = await queryAll({
      ...query(3),
      FilterExpression: 'even = :t',
      ExpressionAttributeValues: { ':p': 'PAGES', ':t': true },
    });
    expect(evens.map((it) => it.n)).toEqual(Array.from({ length: 12 }, (_, i) => i * 2));
  });

  test('scanPages reads the whole table with a small Limit', async () => {
    let n = 0;
    for await (const it of scanPages({ TableName: t.name, Limit: 4 })) if (it.pk === 'PAGES') n++;
    expect(n).toBe(N);
  });

  test('a caller that stops early stops the reads (break ends the generator)', async () => {
    const got: number[] = [];
    for await (const it of queryPages(query(2))) {
      got.push(it.n as number);
      if (got.length === 3) break;
    }
    expect(got).toEqual([0, 1, 2]);
  });
});

describe('cursorPage', () => {
  const listing = () => ({
    TableName: t.name,
    IndexName: 'gsi1',
    KeyConditionExpression: 'gsi1pk = :pk',
    ExpressionAttributeValues: { ':pk': 'LIST#pages' },
  });
  const map = (it: Record<string, unknown>) => it.n as number;

  test('newest first, page after page from the last item, has_more until the end', async () => {
    const seen: number[] = [];
    let after: Record<string, unknown> | undefined;
    for (let round = 0; round < 10; round++) {
      const page = await cursorPage(listing(), { limit: 10, after, map });
      seen.push(...page.data);
      if (!page.hasMore) break;
      after = await startKeyOf(t.name, {
        pk: 'PAGES',
        sk: `ITEM#${String(page.data.at(-1)).padStart(3, '0')}`,
      });
    }
    expect(seen).toEqual(Array.from({ length: N }, (_, i) => N - 1 - i));
  });

  test('keep drops items without shortening the page; maxPages stops with where to continue', async () => {
    const evens = await cursorPage(listing(), { limit: 4, map, keep: (it) => it.even === true });
    expect(evens).toEqual({ data: [22, 20, 18, 16], hasMore: true });
    const none = await cursorPage(
      { ...listing(), Limit: 2 },
      {
        limit: 3,
        map,
        keep: () => false,
        maxPages: 2,
        resumeAfter: (last) => String(last.sk),
      },
    );
    expect(none).toEqual({ data: [], hasMore: true, nextStartingAfter: 'ITEM#019' });
    const last = await cursorPage(listing(), { limit: 50, map });
    expect(last.hasMore).toBe(false);
    expect(last.data).toHaveLength(N);
  });
});

describe('conditionalWrite / conditionalUpdate', () => {
  const key = { pk: 'COND', sk: 'ONE' };
  const putOnce = () =>
    conditionalWrite(
      new PutCommand({
        TableName: t.name,
        Item: { ...key, v: 1 },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );

  test('true when written, false when the condition failed (nothing written)', async () => {
    expect(await putOnce()).toBe(true);
    expect(await putOnce()).toBe(false);
    const bump = (from: number) =>
      conditionalUpdate(
        new UpdateCommand({
          TableName: t.name,
          Key: key,
          UpdateExpression: 'SET v = :to',
          ConditionExpression: 'v = :from',
          ExpressionAttributeValues: { ':from': from, ':to': from + 1 },
          ReturnValues: 'ALL_NEW',
        }),
      );
    expect(await bump(1)).toMatchObject({ v: 2 });
    expect(await bump(1)).toBeUndefined();
    expect(
      await conditionalUpdate(
        new UpdateCommand({
          TableName: t.name,
          Key: key,
          UpdateExpression: 'SET w = :w',
          ExpressionAttributeValues: { ':w': 1 },
        }),
      ),
    ).toEqual({});
    const del = () =>
      conditionalWrite(
        new DeleteCommand({
          TableName: t.name,
          Key: key,
          ConditionExpression: 'v = :v',
          ExpressionAttributeValues: { ':v': 2 },
        }),
      );
    expect(await del()).toBe(true);
    expect(await del()).toBe(false);
  });

  test('any other error is thrown', async () => {
    const bad = conditionalWrite(
      new UpdateCommand({
        TableName: t.name,
        Key: key,
        UpdateExpression: 'SET v = :missing',
        ConditionExpression: 'attribute_exists(pk)',
      }),
    );
    await expect(bad).rejects.toThrow();
    await bad.catch((err: unknown) => expect(isConditionFailure(err)).toBe(false));
  });
});

describe('updateExpression', () => {
  const key = { pk: 'UPDATE', sk: 'ONE' };
  const get = async () =>
    (await clients.ddb().send(new GetCommand({ TableName: t.name, Key: key, ConsistentRead: true }))).Item!;

  test('SET, REMOVE, ADD, increments, first-write-wins values and map entries, with a condition', async () => {
    await clients.ddb().send(
      new PutCommand({
        TableName: t.name,
        Item: { ...key, status: 'open', count: 5, gone: 'x', settled: {} },
      }),
    );
    const update = updateExpression({ status: 'done', skipped: undefined, nothing: null }, ['gone'], {
      add: { version: 1, tags: new Set(['a']) },
      increment: { count: -2 },
      setIfAbsent: { first_seen: 'd1' },
      setEntries: { settled: { 'line.1': 'po_1' } },
      condition: { expression: '#s = :open', names: { '#s': 'status' }, values: { ':open': 'open' } },
    })!;
    expect(await conditionalWrite(new UpdateCommand({ TableName: t.name, Key: key, ...update }))).toBe(true);
    expect(await get()).toEqual({
      ...key,
      status: 'done',
      nothing: null,
      count: 3,
      version: 1,
      tags: new Set(['a']),
      first_seen: 'd1',
      settled: { 'line.1': 'po_1' },
    });
    // The same update again: the condition fails and nothing changes.
    expect(await conditionalWrite(new UpdateCommand({ TableName: t.name, Key: key, ...update }))).toBe(false);
    const again = updateExpression({}, [], { setIfAbsent: { first_seen: 'd2' }, add: { version: 1 } })!;
    await clients.ddb().send(new UpdateCommand({ TableName: t.name, Key: key, ...again }));
    expect(await get()).toMatchObject({ first_seen: 'd1', version: 2 });
  });

  test('nothing to do is undefined; a condition may not use the builder placeholders', () => {
    expect(updateExpression({ a: undefined })).toBeUndefined();
    expect(updateExpression({}, [], { condition: { expression: 'attribute_exists(pk)' } })).toBeUndefined();
    expect(() =>
      updateExpression({ a: 1 }, [], { condition: { expression: ':u0 = :u0', values: { ':u0': 1 } } }),
    ).toThrow(/clashes/);
    expect(updateExpression({ a: 1 }, ['b'])).toEqual({
      UpdateExpression: 'SET #u0 = :u1 REMOVE #u2',
      ExpressionAttributeNames: { '#u0': 'a', '#u2': 'b' },
      ExpressionAttributeValues: { ':u1': 1 },
    });
    expect(updateExpression({}, ['b'])).toEqual({
      UpdateExpression: 'REMOVE #u0',
      ExpressionAttributeNames: { '#u0': 'b' },
    });
  });

  test('statusIn: the guarded transition moves an existing item from the listed statuses only; allOf adds conditions', async () => {
    const item = { pk: 'UPDATE', sk: 'GUARDED' };
    const move = (
      to: string,
      from: string[],
      extra?: { expression: string; values: Record<string, unknown> },
    ) =>
      conditionalWrite(
        new UpdateCommand({
          TableName: t.name,
          Key: item,
          ...updateExpression({ status: to }, [], { condition: allOf(statusIn(from), extra) })!,
        }),
      );
    // Absent: no transition creates the item.
    expect(await move('open', ['draft'])).toBe(false);
    expect((await clients.ddb().send(new GetCommand({ TableName: t.name, Key: item }))).Item).toBeUndefined();
    await clients.ddb().send(new PutCommand({ TableName: t.name, Item: { ...item, status: 'draft', v: 1 } }));
    expect(await move('paid', ['open'])).toBe(false); // not from draft
    expect(
      await move('open', ['draft', 'uncollectible'], { expression: 'v = :v', values: { ':v': 2 } }),
    ).toBe(false); // the added condition fails
    expect(
      await move('open', ['draft', 'uncollectible'], { expression: 'v = :v', values: { ':v': 1 } }),
    ).toBe(true);
    expect(await move('open', ['draft'])).toBe(false); // done once: moved on
    expect(statusIn(['a'], 'state').names).toEqual({ '#from_status': 'state' });
    expect(() => statusIn([])).toThrow(/no status/);
  });
});
