/**
 * The local DynamoDB survives being killed mid-write (issue #12): a child process writes items with
 * index keys through the proxy (test/fixtures/dynamodb-crash-writer.ts) and is SIGKILLed at a
 * seeded random point; the store is then reopened on the same data dir and checked:
 *
 * - every entry of every index is the item GetItem returns, with the same attributes, and every
 *   item is in exactly the indexes its attributes put it in (the check at start found nothing to
 *   repair: item and index writes are atomic);
 * - every acknowledged write is there (an item is in the state of its last acknowledged write, or of
 *   the one write in flight at the kill);
 * - the stream has exactly one record per change that survived: per item, each record's old image
 *   is the previous record's new image, and the last new image is the item.
 *
 * Rounds accumulate on one data dir, so later rounds update and delete items of earlier ones.
 * PAYSTEP_CRASH_SEED and PAYSTEP_CRASH_ROUNDS change the run.
 */
import { fork } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import {
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { openDynalite } from '../../lib/local/dynalite.ts';
import { LocalDynamo } from '../../lib/local/dynamodb.ts';
import { PROJECT_ROOT } from '../../lib/local/runtime.ts';
import {
  CRASH_TABLE,
  CRASH_TABLES,
  prng,
  type Item,
  type WriterMessage,
} from '../fixtures/dynamodb-crash-writer.ts';

const SEED = Number(process.env.PAYSTEP_CRASH_SEED ?? 20261129);
const ROUNDS = Number(process.env.PAYSTEP_CRASH_ROUNDS ?? 5);
const WRITER = path.join(PROJECT_ROOT, 'test/fixtures/dynamodb-crash-writer.ts');

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'paystep-ddb-crash-'));
  dirs.push(dir);
  return dir;
}

/** Attribute maps compared as DynamoDB does: attribute order does not matter. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) out[k] = canonical((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}
const same = (a: unknown, b: unknown) => isDeepStrictEqual(canonical(a ?? null), canonical(b ?? null));
const show = (item: Item | null | undefined) =>
  item ? `w=${item.w?.S} status=${item.status?.S} gsi1pk=${item.gsi1pk?.S ?? '-'}` : 'absent';

/** Runs the writer until `killAt` messages arrived, then SIGKILLs it; returns what it reported. */
async function runWriter(dataDir: string, seed: number, killAt: number): Promise<WriterMessage[]> {
  const child = fork(WRITER, [dataDir, String(seed)], {
    execArgv: [],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    env: { ...process.env, PAYSTEP_LOG_LEVEL: 'silent' },
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const messages: WriterMessage[] = [];
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.on('exit', (_code, signal) => resolve(signal)),
  );
  child.on('message', (m: WriterMessage) => {
    if (m.t === 'ready') return;
    messages.push(m);
    if (messages.length === killAt) child.kill('SIGKILL');
  });
  const signal = await exited;
  if (signal !== 'SIGKILL') throw new Error(`the writer exited on its own (${signal}): ${stderr}`);
  return messages;
}

async function open(dataDir: string, records: DynamoDBRecord[]) {
  const dyn = new LocalDynamo({
    dataDir,
    tables: CRASH_TABLES,
    tableName: (n) => `paystep-${n}`,
    deliver: async (_fn, event) => {
      records.push(...event.Records);
    },
    sendToFailureQueue: async () => {
      throw new Error('no record may fail');
    },
  });
  const endpoint = await dyn.start();
  const client = new DynamoDBClient({
    endpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
  return { dyn, client };
}

async function scanAll(client: DynamoDBClient, indexName?: string): Promise<Item[]> {
  const out: Item[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: CRASH_TABLE,
        ...(indexName ? { IndexName: indexName } : { ConsistentRead: true }),
        ExclusiveStartKey: start,
      }),
    );
    out.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return out;
}

/** Every index entry is its item, and every item is in exactly the indexes it belongs to. */
async function expectIndexesAgree(client: DynamoDBClient, problems: string[]): Promise<Map<string, Item>> {
  const items = new Map((await scanAll(client)).map((i) => [i.pk!.S!, i]));
  for (const gsi of CRASH_TABLES.main!.globalIndexes!) {
    const keyNames = [gsi.partitionKey.name, ...(gsi.sortKey ? [gsi.sortKey.name] : [])];
    const entries = await scanAll(client, gsi.name);
    const seen = new Map<string, number>();
    for (const entry of entries) {
      const pk = entry.pk!.S!;
      seen.set(pk, (seen.get(pk) ?? 0) + 1);
      const got = await client.send(
        new GetItemCommand({
          TableName: CRASH_TABLE,
          Key: { pk: entry.pk!, sk: entry.sk! },
          ConsistentRead: true,
        }),
      );
      if (!got.Item) problems.push(`${gsi.name} lists ${pk} (${show(entry)}) but GetItem finds nothing`);
      else if (!same(got.Item, entry))
        problems.push(
          `${gsi.name} entry of ${pk} (${show(entry)}) differs from the item (${show(got.Item)})`,
        );
    }
    for (const [pk, item] of items) {
      const expected = keyNames.every((k) => item[k] !== undefined) ? 1 : 0;
      if ((seen.get(pk) ?? 0) !== expected)
        problems.push(
          `${pk} (${show(item)}) is listed ${seen.get(pk) ?? 0} times by ${gsi.name}, not ${expected}`,
        );
    }
    // And a query finds what the scan found (the index as handlers read it).
    if (gsi.name === 'gsi1') {
      for (const status of new Set(entries.map((e) => e.gsi1pk!.S!))) {
        const q = await client.send(
          new QueryCommand({
            TableName: CRASH_TABLE,
            IndexName: 'gsi1',
            KeyConditionExpression: 'gsi1pk = :s',
            ExpressionAttributeValues: { ':s': { S: status } },
          }),
        );
        const listed = entries.filter((e) => e.gsi1pk!.S === status).length;
        if ((q.Items ?? []).length !== listed)
          problems.push(`query of ${status} lists ${(q.Items ?? []).length} items, the scan ${listed}`);
      }
    }
  }
  return items;
}

test(`SIGKILLed mid-write ${ROUNDS} times: indexes agree with items, acknowledged writes survive, one stream record per change (seed ${SEED})`, async () => {
  const dir = tempDir();
  const random = prng(SEED);
  /** The state of each item after the last round, as checked. */
  const known = new Map<string, Item | null>();
  /** Per item, the new image of its last stream record (null: removed or never written). */
  const streamed = new Map<string, Item | null>();
  const sequenceNumbers = new Map<string, string>(); // sequence number → eventID
  const problems: string[] = [];
  let writes = 0;

  for (let round = 0; round < ROUNDS && problems.length === 0; round++) {
    const killAt = 1 + Math.floor(random() * 200);
    const messages = await runWriter(dir, SEED * 1000 + round, killAt);

    const records: DynamoDBRecord[] = [];
    const { dyn, client } = await open(dir, records);
    try {
      // The store was killed: the index check ran, and atomic writes left it nothing to repair.
      expect(dyn.indexCheck).not.toBeNull();
      if (dyn.indexCheck!.repaired > 0)
        problems.push(`round ${round}: the index check repaired ${dyn.indexCheck!.examples.join('; ')}`);

      const items = await expectIndexesAgree(client, problems);

      // Acknowledged writes survived; at most the one write in flight per item is undecided.
      const issued = new Map<
        string,
        { before: Item | null; after: Item | null; acked: boolean; w: string }[]
      >();
      for (const m of messages) {
        if (m.t === 'issue') issued.set(m.key, [...(issued.get(m.key) ?? []), { ...m, acked: false }]);
        else if (m.t === 'ack') issued.get(m.key)!.find((x) => x.w === m.w)!.acked = true;
      }
      for (const [key, list] of issued) {
        writes += list.length;
        if (!same(list[0]!.before, known.get(key) ?? null))
          problems.push(
            `round ${round}: the writer saw ${key} as ${show(list[0]!.before)}, not ${show(known.get(key))}`,
          );
        const lastAcked = list.findLastIndex((x) => x.acked);
        if (list.slice(0, lastAcked).some((x) => !x.acked))
          problems.push(`round ${round}: ${key} has two writes in flight`);
        const allowed = [lastAcked >= 0 ? list[lastAcked]!.after : list[0]!.before];
        if (lastAcked + 1 < list.length) allowed.push(list[lastAcked + 1]!.after);
        const now = items.get(key) ?? null;
        if (!allowed.some((a) => same(a, now)))
          problems.push(
            `round ${round}: ${key} is ${show(now)}, expected ${allowed.map(show).join(' or ')} (last acknowledged write ${lastAcked >= 0 ? list[lastAcked]!.w : 'none'})`,
          );
      }
      for (const [key, state] of known)
        if (!issued.has(key) && !same(items.get(key) ?? null, state))
          problems.push(`round ${round}: ${key} changed without a write`);
      known.clear();
      for (const [key, item] of items) known.set(key, item);

      // The stream: every change exactly once, in order per item, ending at the item.
      await dyn.drain();
      const fresh = records
        .filter((r) => {
          const seq = r.dynamodb!.SequenceNumber!;
          const eventID = sequenceNumbers.get(seq);
          if (eventID !== undefined && eventID !== r.eventID)
            problems.push(`round ${round}: sequence number ${seq} names two records`);
          sequenceNumbers.set(seq, r.eventID!);
          return eventID === undefined; // a redelivery is the same record, not another one
        })
        .sort((a, b) => a.dynamodb!.SequenceNumber!.localeCompare(b.dynamodb!.SequenceNumber!));
      for (const r of fresh) {
        const key = r.dynamodb!.Keys!.pk!.S!;
        const oldImage = (r.dynamodb!.OldImage as Item | undefined) ?? null;
        const newImage = (r.dynamodb!.NewImage as Item | undefined) ?? null;
        if (!same(oldImage, streamed.get(key) ?? null))
          problems.push(
            `round ${round}: record ${r.dynamodb!.SequenceNumber} of ${key} starts from ${show(oldImage)}, the previous record ended at ${show(streamed.get(key))} (a record lost or duplicated)`,
          );
        if (same(oldImage, newImage)) problems.push(`round ${round}: record of ${key} changes nothing`);
        streamed.set(key, newImage);
      }
      for (const key of new Set([...streamed.keys(), ...items.keys()]))
        if (!same(streamed.get(key) ?? null, items.get(key) ?? null))
          problems.push(
            `round ${round}: the stream leaves ${key} at ${show(streamed.get(key))}, the table has ${show(items.get(key))} (a record lost)`,
          );
    } finally {
      client.destroy();
      await dyn.stop();
    }
  }
  expect(problems).toEqual([]);
  expect(writes).toBeGreaterThan(ROUNDS);
}, 180_000);

test('the check at start repairs indexes that disagree with their items (data dirs written before atomic writes)', async () => {
  const dir = tempDir();
  const records: DynamoDBRecord[] = [];
  const item = (key: string, status: string): Item => ({
    pk: { S: key },
    sk: { S: 'A' },
    status: { S: status },
    gsi1pk: { S: `status#${status}` },
    gsi1sk: { S: key },
  });
  {
    const { dyn, client } = await open(dir, records);
    for (const key of ['a', 'b', 'c', 'd'])
      await client.send(new PutItemCommand({ TableName: CRASH_TABLE, Item: item(key, 'pending') }));
    client.destroy();
    await dyn.stop();
  }
  expect(existsSync(path.join(dir, 'dynamodb.clean'))).toBe(true);

  // What a crash between dynalite's separate writes left behind, written straight into LevelDB.
  const { store } = openDynalite({ path: path.join(dir, 'dynamodb') });
  const db = store.db;
  const entries = new Map<string, string>(); // item key → its gsi1 entry's LevelDB key
  for await (const [k, v] of db.iterator({
    gte: 'index-global~paystep-main~gsi1~',
    lt: 'index-global~paystep-main~gsi1~\xff',
  }))
    entries.set((v as Item).pk!.S!, k);
  let itemOfC = '';
  for await (const [k, v] of db.iterator({ gte: 'item-paystep-main~', lt: 'item-paystep-main~\xff' }))
    if ((v as Item).pk!.S === 'c') itemOfC = k;
  await db.batch([
    { type: 'del', key: entries.get('a')! }, // a: item stored, its index entry gone
    { type: 'put', key: entries.get('b')!, value: item('b', 'processing') }, // b: entry of a write the item lacks
    { type: 'del', key: itemOfC }, // c: index entry of an item never stored
  ]);
  await db.close();
  rmSync(path.join(dir, 'dynamodb.clean')); // as after a crash

  const { dyn, client } = await open(dir, records);
  try {
    expect(dyn.indexCheck).toMatchObject({ tables: 1, items: 3, indexEntries: 3, repaired: 3 });
    const problems: string[] = [];
    const items = await expectIndexesAgree(client, problems);
    expect(problems).toEqual([]);
    expect([...items.keys()].sort()).toEqual(['a', 'b', 'd']);
    const listed = await client.send(
      new QueryCommand({
        TableName: CRASH_TABLE,
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :s',
        ExpressionAttributeValues: { ':s': { S: 'status#pending' } },
      }),
    );
    expect((listed.Items ?? []).map((i) => i.pk!.S).sort()).toEqual(['a', 'b', 'd']);
  } finally {
    client.destroy();
    await dyn.stop();
  }

  // A clean stop: the next start skips the check.
  const again = await open(dir, records);
  expect(again.dyn.indexCheck).toBeNull();
  again.client.destroy();
  await again.dyn.stop();
});
