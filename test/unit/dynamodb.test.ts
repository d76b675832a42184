import { appendFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchWriteCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { stoppedAfterEach, tempDirs } from '../fixtures/temp-dirs.ts';
import { LocalDynamo, type StreamFailure } from '../../lib/local/dynamodb.ts';
import type { TableDef } from '../../lib/topology.ts';

const MAX_RETRIES = 3;
const tables: Record<string, TableDef> = {
  main: {
    partitionKey: { name: 'pk', type: 'S' },
    sortKey: { name: 'sk', type: 'S' },
    globalIndexes: [{ name: 'gsi1', partitionKey: { name: 'gsi1pk', type: 'S' } }],
    stream: { consumer: 'router', batchSize: 25, maxRetries: MAX_RETRIES, failureQueue: 'stream-failures' },
  },
  plain: { partitionKey: { name: 'id', type: 'S' } },
};

type Consumer = (event: DynamoDBStreamEvent) => Promise<unknown>;

const running = stoppedAfterEach<LocalDynamo>();
const tempDir = tempDirs('paystep-ddb-');

async function open(
  dataDir: string,
  consumer: Consumer,
  streamJournalCompactMinLines?: number,
  streamResidentRecords?: number,
) {
  const failures: { queue: string; body: StreamFailure }[] = [];
  const delivered: { fn: string; records: DynamoDBRecord[] }[] = [];
  const dyn = new LocalDynamo({
    dataDir,
    tables,
    tableName: (n) => `paystep-${n}`,
    deliver: async (fn, event) => {
      delivered.push({ fn, records: event.Records });
      return consumer(event);
    },
    sendToFailureQueue: async (queue, body) => {
      failures.push({ queue, body: JSON.parse(body) as StreamFailure });
    },
    timeScale: 1000,
    streamJournalCompactMinLines,
    streamResidentRecords,
  });
  const endpoint = await dyn.start();
  running.push(dyn);
  const client = new DynamoDBClient({
    endpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
  const doc = DynamoDBDocumentClient.from(client);
  return { dyn, doc, failures, delivered, endpoint };
}

const ok: Consumer = async () => undefined;
const skOf = (r: DynamoDBRecord) => r.dynamodb?.Keys?.sk?.S;
const seqOf = (r: DynamoDBRecord) => r.dynamodb?.SequenceNumber as string;
const allRecords = (delivered: { records: DynamoDBRecord[] }[]) => delivered.flatMap((d) => d.records);

test('captures INSERT, MODIFY and REMOVE with old and new images; no-op writes and other tables emit nothing', async () => {
  const { dyn, doc, delivered } = await open(tempDir(), ok);
  await doc.send(
    new PutCommand({ TableName: 'paystep-main', Item: { pk: 'p1', sk: 'a', v: 1, tags: ['x'] } }),
  );
  await doc.send(
    new UpdateCommand({
      TableName: 'paystep-main',
      Key: { pk: 'p1', sk: 'a' },
      UpdateExpression: 'SET v = :v',
      ExpressionAttributeValues: { ':v': 2 },
    }),
  );
  // Writes that change nothing produce no record.
  await doc.send(
    new PutCommand({ TableName: 'paystep-main', Item: { pk: 'p1', sk: 'a', v: 2, tags: ['x'] } }),
  );
  await doc.send(new DeleteCommand({ TableName: 'paystep-main', Key: { pk: 'p1', sk: 'missing' } }));
  await doc.send(new DeleteCommand({ TableName: 'paystep-main', Key: { pk: 'p1', sk: 'a' } }));
  await doc.send(new PutCommand({ TableName: 'paystep-plain', Item: { id: 'x', v: 1 } }));
  await dyn.drain();

  expect(delivered.every((d) => d.fn === 'router')).toBe(true);
  const records = allRecords(delivered);
  expect(records.map((r) => r.eventName)).toEqual(['INSERT', 'MODIFY', 'REMOVE']);
  const [ins, mod, rem] = records as [DynamoDBRecord, DynamoDBRecord, DynamoDBRecord];
  const keys = { pk: { S: 'p1' }, sk: { S: 'a' } };
  const v1 = { ...keys, v: { N: '1' }, tags: { L: [{ S: 'x' }] } };
  const v2 = { ...keys, v: { N: '2' }, tags: { L: [{ S: 'x' }] } };
  expect(ins).toMatchObject({
    eventVersion: '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion: 'local',
    eventSourceARN: 'arn:aws:dynamodb:local:000000000000:table/paystep-main/stream/local',
    dynamodb: { Keys: keys, NewImage: v1, StreamViewType: 'NEW_AND_OLD_IMAGES' },
  });
  expect(ins.dynamodb?.OldImage).toBeUndefined();
  expect(ins.eventID).toMatch(/^[0-9a-f]{32}$/);
  expect(ins.dynamodb?.SizeBytes).toBeGreaterThan(0);
  expect(Math.abs((ins.dynamodb?.ApproximateCreationDateTime ?? 0) - Date.now() / 1000)).toBeLessThan(60);
  expect(mod.dynamodb).toMatchObject({ Keys: keys, OldImage: v1, NewImage: v2 });
  expect(rem.dynamodb).toMatchObject({ Keys: keys, OldImage: v2 });
  expect(rem.dynamodb?.NewImage).toBeUndefined();
  const seqs = records.map(seqOf);
  expect(seqs).toEqual(['1', '2', '3'].map((n) => n.padStart(21, '0')));
  // The other table still works through the proxy.
  expect((await doc.send(new GetCommand({ TableName: 'paystep-plain', Key: { id: 'x' } }))).Item).toEqual({
    id: 'x',
    v: 1,
  });
  expect(dyn.streamStats()[0]).toMatchObject({ table: 'main', recordsCaptured: 3, recordsDelivered: 3 });
});

test('200 concurrent ADDs to one item arrive as 200 MODIFY records in order, other items in their own order', async () => {
  const { dyn, doc, delivered } = await open(tempDir(), ok);
  const add = (pk: string) =>
    doc.send(
      new UpdateCommand({
        TableName: 'paystep-main',
        Key: { pk, sk: 'c' },
        UpdateExpression: 'ADD n :one',
        ExpressionAttributeValues: { ':one': 1 },
      }),
    );
  await doc.send(new PutCommand({ TableName: 'paystep-main', Item: { pk: 'hot', sk: 'c', n: 0 } }));
  const writes: Promise<unknown>[] = [];
  for (let i = 0; i < 200; i++) {
    writes.push(add('hot'));
    if (i % 10 === 0) for (let k = 0; k < 10; k++) writes.push(add(`other-${k}`));
  }
  await Promise.all(writes);
  await dyn.drain();

  const byItem = new Map<string, DynamoDBRecord[]>();
  for (const r of allRecords(delivered)) {
    const pk = r.dynamodb?.Keys?.pk?.S as string;
    byItem.set(pk, [...(byItem.get(pk) ?? []), r]);
  }
  const hot = (byItem.get('hot') ?? []).slice(1); // after the INSERT
  expect(hot).toHaveLength(200);
  expect(hot.every((r) => r.eventName === 'MODIFY')).toBe(true);
  expect(hot.map((r) => Number(r.dynamodb?.NewImage?.n?.N))).toEqual(
    Array.from({ length: 200 }, (_, i) => i + 1),
  );
  expect(hot.map((r) => Number(r.dynamodb?.OldImage?.n?.N))).toEqual(
    Array.from({ length: 200 }, (_, i) => i),
  );
  for (let k = 0; k < 10; k++) {
    const rs = byItem.get(`other-${k}`) ?? [];
    expect(rs.map((r) => r.eventName)).toEqual(['INSERT', ...Array(19).fill('MODIFY')]);
    expect(rs.map((r) => Number(r.dynamodb?.NewImage?.n?.N))).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
  }
  // Within each batch, sequence numbers increase.
  for (const d of delivered) {
    const seqs = d.records.map(seqOf);
    expect([...seqs].sort()).toEqual(seqs);
  }
  expect(
    (await doc.send(new GetCommand({ TableName: 'paystep-main', Key: { pk: 'hot', sk: 'c' } }))).Item?.n,
  ).toBe(200);
});

test('a failed conditional write reaches the client as from dynalite and produces no record', async () => {
  const { dyn, doc, delivered, endpoint } = await open(tempDir(), ok);
  await doc.send(new PutCommand({ TableName: 'paystep-main', Item: { pk: 'c1', sk: 'a', status: 'new' } }));
  const failures = [
    doc.send(
      new PutCommand({
        TableName: 'paystep-main',
        Item: { pk: 'c1', sk: 'a', status: 'other' },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    ),
    doc.send(
      new UpdateCommand({
        TableName: 'paystep-main',
        Key: { pk: 'c1', sk: 'a' },
        UpdateExpression: 'SET #s = :s',
        ConditionExpression: '#s = :expected',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':s': 'paid', ':expected': 'authorized' },
      }),
    ),
    doc.send(
      new DeleteCommand({
        TableName: 'paystep-main',
        Key: { pk: 'c1', sk: 'a' },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    ),
  ];
  for (const f of failures)
    await expect(f).rejects.toMatchObject({
      name: 'ConditionalCheckFailedException',
      message: 'The conditional request failed',
      $metadata: { httpStatusCode: 400 },
    });
  // The raw answer is dynalite's: status, body and checksum.
  const res = await fetch(endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': 'DynamoDB_20120810.DeleteItem',
      authorization:
        'AWS4-HMAC-SHA256 Credential=a/20240101/local/dynamodb/aws4_request, SignedHeaders=host, Signature=b',
      'x-amz-date': '20240101T000000Z',
    },
    body: JSON.stringify({
      TableName: 'paystep-main',
      Key: { pk: { S: 'c1' }, sk: { S: 'a' } },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  });
  expect(res.status).toBe(400);
  expect(await res.json()).toEqual({
    __type: 'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException',
    message: 'The conditional request failed',
  });
  expect(res.headers.get('x-amz-crc32')).toMatch(/^\d+$/);
  await dyn.drain();
  expect(allRecords(delivered).map((r) => r.eventName)).toEqual(['INSERT']);
  expect(
    (await doc.send(new GetCommand({ TableName: 'paystep-main', Key: { pk: 'c1', sk: 'a' } }))).Item,
  ).toEqual({
    pk: 'c1',
    sk: 'a',
    status: 'new',
  });
});

/** The first delivery waits for `release`, so the records written meanwhile form the next batch. */
function gated(then: Consumer): { consumer: Consumer; release: () => void } {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let first = true;
  return {
    release,
    consumer: async (event) => {
      if (first) {
        first = false;
        await gate;
        return undefined;
      }
      return then(event);
    },
  };
}

async function writeSeries(doc: DynamoDBDocumentClient, pk: string, sks: string[]) {
  for (const sk of sks) await doc.send(new PutCommand({ TableName: 'paystep-main', Item: { pk, sk } }));
}

test('a partial batch failure redelivers from the failed record only', async () => {
  let failedOnce = false;
  const { consumer, release } = gated(async (event) => {
    const bad = event.Records.find((r) => skOf(r) === 'r4');
    if (bad && !failedOnce) {
      failedOnce = true;
      return { batchItemFailures: [{ itemIdentifier: seqOf(bad) }] };
    }
    return {};
  });
  const { dyn, doc, delivered } = await open(tempDir(), consumer);
  const sks = Array.from({ length: 10 }, (_, i) => `r${i}`);
  await writeSeries(doc, 'pb', sks);
  release();
  await dyn.drain();

  const counts = new Map<string, number>();
  for (const r of allRecords(delivered))
    counts.set(skOf(r) as string, (counts.get(skOf(r) as string) ?? 0) + 1);
  expect(Object.fromEntries(counts)).toEqual({
    r0: 1,
    r1: 1,
    r2: 1,
    r3: 1,
    r4: 2,
    r5: 2,
    r6: 2,
    r7: 2,
    r8: 2,
    r9: 2,
  });
  // The retry starts at the failed record.
  expect(delivered.map((d) => d.records.map(skOf))).toEqual([['r0'], sks.slice(1), sks.slice(4)]);
});

test('a poisoned record goes to the failure queue after maxRetries; records after it are still delivered', async () => {
  const { consumer, release } = gated(async (event) => {
    if (event.Records.some((r) => skOf(r) === 'poison')) throw new Error('cannot route poisoned record');
    return undefined;
  });
  const { dyn, doc, delivered, failures } = await open(tempDir(), consumer);
  const sks = ['r0', 'r1', 'r2', 'poison', 'r4', 'r5', 'r6', 'r7'];
  await writeSeries(doc, 'pz', sks);
  release();
  await dyn.drain();
  await writeSeries(doc, 'pz', ['after']);
  await dyn.drain();

  expect(failures).toHaveLength(1);
  const [failure] = failures as [{ queue: string; body: StreamFailure }];
  expect(failure.queue).toBe('stream-failures');
  expect(failure.body).toMatchObject({ table: 'paystep-main', retries: MAX_RETRIES });
  expect(failure.body.error).toContain('cannot route poisoned record');
  expect(failure.body.records.map(skOf)).toEqual(['poison']);
  expect(failure.body.firstSequenceNumber).toBe(seqOf(failure.body.records[0] as DynamoDBRecord));
  expect(failure.body.lastSequenceNumber).toBe(failure.body.firstSequenceNumber);
  // The poisoned record alone was tried once plus maxRetries times.
  const alone = delivered.filter(
    (d) => d.records.length === 1 && skOf(d.records[0] as DynamoDBRecord) === 'poison',
  );
  expect(alone).toHaveLength(MAX_RETRIES + 1);
  // Every other record was delivered by an invocation that succeeded.
  const succeeded = new Set(
    delivered.filter((d) => !d.records.some((r) => skOf(r) === 'poison')).flatMap((d) => d.records.map(skOf)),
  );
  for (const sk of [...sks.filter((s) => s !== 'poison'), 'after']) expect(succeeded).toContain(sk);
  expect(dyn.streamStats()[0]).toMatchObject({ recordsFailed: 1, recordsDelivered: 8 });
});

test('after a restart, records not checkpointed are delivered, checkpointed ones are not; data persists', async () => {
  const dir = tempDir();
  let hang = false;
  const first = await open(dir, async () => {
    if (hang) await new Promise(() => {}); // in flight at the "crash"
    return undefined;
  });
  await writeSeries(first.doc, 'rs', ['a', 'b', 'c']);
  await first.dyn.drain();
  hang = true;
  await writeSeries(first.doc, 'rs', ['d', 'e']);
  await first.doc.send(new PutCommand({ TableName: 'paystep-plain', Item: { id: 'kept', v: 7 } }));
  while (!allRecords(first.delivered).some((r) => skOf(r) === 'd'))
    await new Promise((r) => setTimeout(r, 5));
  await first.dyn.stop();
  running.splice(running.indexOf(first.dyn), 1);

  const journal = path.join(dir, 'streams', 'main.jsonl');
  const second = await open(dir, ok);
  // Compacted at start: only the two undelivered records remain.
  expect(readFileSync(journal, 'utf8').trim().split('\n')).toHaveLength(2);
  await second.dyn.drain();
  expect(allRecords(second.delivered).map(skOf)).toEqual(['d', 'e']);
  await writeSeries(second.doc, 'rs', ['f']);
  await second.dyn.drain();
  const seqs = allRecords(second.delivered).map(seqOf);
  expect(seqs).toEqual(['4', '5', '6'].map((n) => n.padStart(21, '0')));
  expect(
    (await second.doc.send(new GetCommand({ TableName: 'paystep-main', Key: { pk: 'rs', sk: 'b' } }))).Item,
  ).toEqual({ pk: 'rs', sk: 'b' });
  expect(
    (await second.doc.send(new GetCommand({ TableName: 'paystep-plain', Key: { id: 'kept' } }))).Item,
  ).toEqual({
    id: 'kept',
    v: 7,
  });
  await second.dyn.stop();
  running.splice(running.indexOf(second.dyn), 1);

  // A third start delivers nothing again.
  const third = await open(dir, ok);
  await third.dyn.drain();
  expect(third.delivered).toHaveLength(0);
});

test('the stream journal is compacted while running; a restart delivers what was pending and numbers on', async () => {
  const dir = tempDir();
  let hang = false;
  const first = await open(
    dir,
    async () => {
      if (hang) await new Promise(() => {}); // in flight at the "crash"
      return undefined;
    },
    10,
  );
  const journal = path.join(dir, 'streams', 'main.jsonl');
  const sks = Array.from({ length: 30 }, (_, i) => `c${String(i).padStart(2, '0')}`);
  await writeSeries(first.doc, 'cj', sks);
  await first.dyn.drain();
  await new Promise((r) => setImmediate(r));
  // 30 records were journaled; delivered ones were compacted away while running.
  expect(readFileSync(journal, 'utf8').trim().split('\n').length).toBeLessThan(15);
  hang = true;
  await writeSeries(first.doc, 'cj', ['d1', 'd2']);
  while (!allRecords(first.delivered).some((r) => skOf(r) === 'd1'))
    await new Promise((r) => setTimeout(r, 5));
  await first.dyn.stop();
  running.splice(running.indexOf(first.dyn), 1);

  const second = await open(dir, ok, 10);
  await second.dyn.drain();
  expect(allRecords(second.delivered).map(skOf)).toEqual(['d1', 'd2']);
  await writeSeries(second.doc, 'cj', ['e']);
  await second.dyn.drain();
  // Sequence numbers go on from the last one given, never back.
  expect(allRecords(second.delivered).map(seqOf)).toEqual(['31', '32', '33'].map((n) => n.padStart(21, '0')));
});

test('a backlog waits in the journal, not in memory: delivered once each, in order, across a compaction and a restart', async () => {
  const dir = tempDir();
  const RESIDENT = 4;
  // The consumer holds each batch until `until` lets its last record through.
  let until = 0;
  let wake: (() => void) | undefined;
  const seqNo = (r: DynamoDBRecord) => Number(seqOf(r));
  const consumer: Consumer = async (event) => {
    const last = seqNo(event.Records[event.Records.length - 1]!);
    while (last > until) await new Promise<void>((r) => (wake = r));
  };
  const letThrough = (n: number) => {
    until = n;
    wake?.();
  };
  const memory = (dyn: LocalDynamo) => {
    const [main] = dyn.streamStats();
    return {
      pending: main!.shards.reduce((n, s) => n + s.pending, 0),
      inMemory: Math.max(...main!.shards.map((s) => s.inMemory)),
    };
  };
  const first = await open(dir, consumer, 10, RESIDENT);
  const sks = Array.from({ length: 60 }, (_, i) => `b${String(i).padStart(2, '0')}`);
  await writeSeries(first.doc, 'bk', sks);
  // 60 records captured, at most RESIDENT of them in memory (one shard: one partition key).
  expect(memory(first.dyn)).toEqual({ pending: 60, inMemory: RESIDENT });
  // Deliver up to record 50 (batches of up to RESIDENT records: at least 47 are done); the journal
  // (60 lines) then holds more than 4 times its live records, so the next write compacts it,
  // moving the waiting records' lines.
  letThrough(50);
  while (memory(first.dyn).pending > 13) await new Promise((r) => setTimeout(r, 5));
  await writeSeries(first.doc, 'bk', ['c0', 'c1']);
  await new Promise((r) => setImmediate(r));
  const journal = path.join(dir, 'streams', 'main.jsonl');
  expect(readFileSync(journal, 'utf8').trim().split('\n').length).toBeLessThan(20);
  expect(memory(first.dyn).inMemory).toBeLessThanOrEqual(RESIDENT);
  // Records read back from their new lines.
  letThrough(58);
  while (memory(first.dyn).pending > 5) await new Promise((r) => setTimeout(r, 5));
  await first.dyn.stop(); // the batch in flight and those after it are not done with
  running.splice(running.indexOf(first.dyn), 1);

  const second = await open(dir, ok, 10, 2);
  await second.dyn.drain();
  // Each record delivered, in order; the second run delivers a suffix (from the batch in flight at
  // the stop, delivered again), including all that the first run did not finish.
  const all = [...allRecords(first.delivered), ...allRecords(second.delivered)].map(seqNo);
  expect([...new Set(all)]).toEqual(Array.from({ length: 62 }, (_, i) => i + 1));
  const again = allRecords(second.delivered).map(seqNo);
  expect(again).toEqual(Array.from({ length: again.length }, (_, i) => 63 - again.length + i));
  expect(again[0]).toBeLessThanOrEqual(59);
  expect(allRecords(second.delivered).slice(-2).map(skOf)).toEqual(['c0', 'c1']);
});

test('BatchWriteItem on a stream table is captured item by item', async () => {
  const { dyn, doc, delivered } = await open(tempDir(), ok);
  await doc.send(new PutCommand({ TableName: 'paystep-main', Item: { pk: 'bw', sk: 'old', v: 1 } }));
  const out = await doc.send(
    new BatchWriteCommand({
      RequestItems: {
        'paystep-main': [
          { PutRequest: { Item: { pk: 'bw', sk: 'x', v: 1 } } },
          { PutRequest: { Item: { pk: 'bw', sk: 'old', v: 2 } } },
          { DeleteRequest: { Key: { pk: 'bw', sk: 'none' } } },
        ],
        'paystep-plain': [{ PutRequest: { Item: { id: 'bw' } } }],
      },
    }),
  );
  expect(out.UnprocessedItems).toEqual({});
  await dyn.drain();
  expect(allRecords(delivered).map((r) => `${r.eventName} ${skOf(r)}`)).toEqual([
    'INSERT old',
    'INSERT x',
    'MODIFY old',
  ]);
  expect((await doc.send(new GetCommand({ TableName: 'paystep-plain', Key: { id: 'bw' } }))).Item).toEqual({
    id: 'bw',
  });
  // Duplicate keys are rejected as a whole, as DynamoDB does.
  await expect(
    doc.send(
      new BatchWriteCommand({
        RequestItems: {
          'paystep-main': [
            { PutRequest: { Item: { pk: 'bw', sk: 'dup' } } },
            { DeleteRequest: { Key: { pk: 'bw', sk: 'dup' } } },
          ],
        },
      }),
    ),
  ).rejects.toMatchObject({ name: 'ValidationException' });
  expect(
    (await doc.send(new GetCommand({ TableName: 'paystep-main', Key: { pk: 'bw', sk: 'dup' } }))).Item,
  ).toBe(undefined);
});

test('a write whose outcome was not recorded before a crash is recovered into the stream at start', async () => {
  const dir = tempDir();
  const first = await open(dir, ok);
  await first.doc.send(
    new PutCommand({ TableName: 'paystep-main', Item: { pk: 'cr', sk: 'changed', v: 2 } }),
  );
  await first.doc.send(new PutCommand({ TableName: 'paystep-main', Item: { pk: 'cr', sk: 'same', v: 1 } }));
  await first.dyn.drain();
  await first.dyn.stop();
  running.splice(running.indexOf(first.dyn), 1);
  // Simulate crashes after the intent was journaled: one write reached dynalite, one did not.
  const intent = (sk: string, old: unknown) =>
    JSON.stringify({
      t: 'intent',
      id: `crash-${sk}`,
      lock: `paystep-main/cr/${sk}`,
      keys: { pk: { S: 'cr' }, sk: { S: sk } },
      old,
    }) + '\n';
  const journal = path.join(dir, 'streams', 'main.jsonl');
  appendFileSync(journal, intent('changed', { pk: { S: 'cr' }, sk: { S: 'changed' }, v: { N: '1' } }));
  appendFileSync(journal, intent('same', { pk: { S: 'cr' }, sk: { S: 'same' }, v: { N: '1' } }));

  const second = await open(dir, ok);
  await second.dyn.drain();
  const records = allRecords(second.delivered);
  expect(records).toHaveLength(1);
  expect(records[0]).toMatchObject({
    eventName: 'MODIFY',
    dynamodb: {
      OldImage: { pk: { S: 'cr' }, sk: { S: 'changed' }, v: { N: '1' } },
      NewImage: { pk: { S: 'cr' }, sk: { S: 'changed' }, v: { N: '2' } },
      SequenceNumber: '3'.padStart(21, '0'),
    },
  });
});

test('a record journaled before its write stands at start only if the write landed; a failed write voids it', async () => {
  const dir = tempDir();
  const first = await open(dir, ok);
  await first.doc.send(
    new PutCommand({ TableName: 'paystep-main', Item: { pk: 'pre', sk: 'landed', v: 2 } }),
  );
  await first.doc.send(new PutCommand({ TableName: 'paystep-main', Item: { pk: 'pre', sk: 'lost', v: 1 } }));
  await first.doc.send(
    new PutCommand({ TableName: 'paystep-main', Item: { pk: 'pre', sk: 'failed', v: 1 } }),
  );
  await first.dyn.drain();
  await first.dyn.stop();
  running.splice(running.indexOf(first.dyn), 1);
  // Simulate a crash: records journaled by writes that LevelDB had (landed: the item is v 2) or did
  // not have (lost: the item is still v 1), and one whose write failed (a drop line follows it).
  const journal = path.join(dir, 'streams', 'main.jsonl');
  const rec = (sk: string, seq: number, from: number, to: number) => {
    const keys = { pk: { S: 'pre' }, sk: { S: sk } };
    return (
      JSON.stringify({
        t: 'rec',
        lock: `paystep-main\u0000${JSON.stringify(keys)}`,
        shard: 0,
        seq,
        pre: 1,
        rec: {
          eventID: `e${seq}`,
          eventName: 'MODIFY',
          eventVersion: '1.1',
          eventSource: 'aws:dynamodb',
          awsRegion: 'local',
          eventSourceARN: 'arn',
          dynamodb: {
            Keys: keys,
            OldImage: { ...keys, v: { N: String(from) } },
            NewImage: { ...keys, v: { N: String(to) } },
            SequenceNumber: String(seq).padStart(21, '0'),
            SizeBytes: 1,
            StreamViewType: 'NEW_AND_OLD_IMAGES',
          },
        },
      }) + '\n'
    );
  };
  appendFileSync(journal, rec('landed', 4, 1, 2));
  appendFileSync(journal, rec('lost', 5, 1, 2));
  appendFileSync(journal, rec('failed', 6, 1, 2) + JSON.stringify({ t: 'drop', seq: 6 }) + '\n');

  const second = await open(dir, ok);
  await second.dyn.drain();
  expect(allRecords(second.delivered).map((r) => `${skOf(r)} ${seqOf(r)}`)).toEqual([
    `landed ${'4'.padStart(21, '0')}`,
  ]);
  // Sequence numbers go on after the highest journaled, void ones included.
  await second.doc.send(new PutCommand({ TableName: 'paystep-main', Item: { pk: 'pre', sk: 'lost', v: 3 } }));
  await second.dyn.drain();
  const last = allRecords(second.delivered).at(-1);
  expect(last).toMatchObject({
    eventName: 'MODIFY',
    dynamodb: {
      OldImage: { v: { N: '1' } },
      NewImage: { v: { N: '3' } },
      SequenceNumber: '7'.padStart(21, '0'),
    },
  });
});
