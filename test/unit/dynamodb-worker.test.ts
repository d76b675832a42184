/**
 * The local DynamoDB's storage engine in a worker thread (lib/local/dynamodb-worker.ts) against the
 * same engine on the main thread (`worker: false`, PAYSTEP_DYNAMODB_WORKER=0): the same answers,
 * byte for byte; records that join delivery before the caller has its answer, across the threads;
 * consumer errors, log lines and stats that cross; stops with deliveries in flight; a data dir that
 * one mode wrote and the other reopens. (Every other DynamoDB and stream test runs the default, the
 * worker.)
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { stoppedAfterEach, tempDirs } from '../fixtures/temp-dirs.ts';
import { LocalDynamo, type StreamFailure } from '../../lib/local/dynamodb.ts';
import type { TableDef } from '../../lib/topology.ts';

const tables: Record<string, TableDef> = {
  main: {
    partitionKey: { name: 'pk', type: 'S' },
    sortKey: { name: 'sk', type: 'S' },
    globalIndexes: [{ name: 'gsi1', partitionKey: { name: 'gsi1pk', type: 'S' } }],
    stream: { consumer: 'router', batchSize: 25, maxRetries: 1, failureQueue: 'failures' },
  },
};
const TableName = 'paystep-main';

const running = stoppedAfterEach<LocalDynamo>();
const tempDir = tempDirs('paystep-ddb-worker-');

async function open(
  dataDir: string,
  worker: boolean,
  deliver: (event: DynamoDBStreamEvent) => Promise<unknown>,
  logLines?: Record<string, unknown>[],
) {
  const failures: StreamFailure[] = [];
  const logger = pino(
    { level: 'info', base: { svc: 'dynamodb' } },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        logLines?.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        cb();
      },
    }),
  );
  const dyn = new LocalDynamo({
    dataDir,
    tables,
    tableName: (n) => `paystep-${n}`,
    deliver: (_fn, event) => deliver(event),
    sendToFailureQueue: async (_queue, body) => {
      failures.push(JSON.parse(body) as StreamFailure);
    },
    timeScale: 1000,
    logger,
    worker,
  });
  const endpoint = await dyn.start();
  running.push(dyn);
  const client = new DynamoDBClient({
    endpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
  return { dyn, doc: DynamoDBDocumentClient.from(client), failures };
}

const ok = async () => undefined;

/** Raw requests through the proxy's request function: status and body, request ids aside. */
async function answers(dyn: LocalDynamo): Promise<{ status: number; body: string }[]> {
  const call = async (op: string, input: unknown) => {
    const reply = await dyn.handleRequest({
      method: 'POST',
      url: '/',
      headers: {
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': `DynamoDB_20120810.${op}`,
        authorization:
          'AWS4-HMAC-SHA256 Credential=local/20240101/local/dynamodb/aws4_request, SignedHeaders=host, Signature=local',
        'x-amz-date': '20240101T000000Z',
      },
      body: Buffer.from(typeof input === 'string' ? input : JSON.stringify(input)),
      caller: undefined,
    });
    return { status: reply.status, body: reply.body.toString('utf8') };
  };
  const item = (sk: string, n: number) => ({
    pk: { S: 'a' },
    sk: { S: sk },
    gsi1pk: { S: 'g' },
    n: { N: String(n) },
    // Larger than Node's pool for small buffers: the answer's bytes move without a copy.
    pad: { S: 'x'.repeat(5000) },
  });
  return [
    await call('PutItem', { TableName, Item: item('1', 1) }),
    await call('PutItem', { TableName, Item: item('2', 2), ReturnValues: 'ALL_OLD' }),
    await call('PutItem', {
      TableName,
      Item: item('1', 3),
      ConditionExpression: 'attribute_not_exists(pk)',
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    }),
    await call('UpdateItem', {
      TableName,
      Key: { pk: { S: 'a' }, sk: { S: '2' } },
      UpdateExpression: 'ADD n :one',
      ExpressionAttributeValues: { ':one': { N: '1' } },
      ReturnValues: 'ALL_NEW',
    }),
    await call('Query', {
      TableName,
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :g',
      ExpressionAttributeValues: { ':g': { S: 'g' } },
    }),
    await call('GetItem', { TableName, Key: { pk: { S: 'a' } } }),
    await call('PutItem', '{not json'),
    await call('DescribeTable', { TableName: 'missing' }),
  ];
}

test('the worker answers every request byte for byte as the engine on the main thread', async () => {
  const inWorker = await answers((await open(tempDir(), true, ok)).dyn);
  const inThread = await answers((await open(tempDir(), false, ok)).dyn);
  expect(inWorker.map((a) => a.status)).toEqual([200, 200, 400, 200, 200, 400, 400, 400]);
  expect(inWorker[2]?.body).toContain('ConditionalCheckFailedException');
  expect(JSON.parse(inWorker[4]?.body ?? '{}')).toMatchObject({ Count: 2 });
  expect(inWorker).toEqual(inThread);
});

test.each([true, false])(
  'records join delivery before the caller has its answer; streamStats is exact (worker: %s)',
  async (worker) => {
    // A consumer that never answers: every record stays pending, in order.
    const { dyn, doc } = await open(tempDir(), worker, () => new Promise(() => undefined));
    for (let i = 0; i < 5; i++)
      await doc.send(new PutCommand({ TableName, Item: { pk: `p${i}`, sk: 'a', v: i } }));
    const [stats] = dyn.streamStats();
    expect(stats).toMatchObject({ table: 'main', physicalName: TableName, recordsCaptured: 5 });
    expect(stats?.shards.reduce((n, s) => n + s.pending, 0)).toBe(5);
    expect(stats?.lastSequenceNumber).toBe('5'.padStart(21, '0'));
    // A stop with deliveries in flight does not wait for them.
    await dyn.stop();
    running.splice(running.indexOf(dyn), 1);
    expect(dyn.streamStats()).toEqual([]);
    await dyn.drain();
  },
);

test("a consumer's error crosses to the worker as it was thrown; the record goes to the failure queue", async () => {
  const delivered: DynamoDBRecord[] = [];
  const { dyn, doc, failures } = await open(tempDir(), true, async (event) => {
    delivered.push(...event.Records);
    const err = new Error('no such merchant');
    err.name = 'MerchantError';
    throw err;
  });
  await doc.send(new PutCommand({ TableName, Item: { pk: 'x', sk: 'a' } }));
  await dyn.drain();
  expect(delivered).toHaveLength(2); // first try and maxRetries: 1
  expect(failures).toHaveLength(1);
  expect(failures[0]).toMatchObject({
    table: TableName,
    retries: 1,
    error: 'MerchantError: no such merchant',
    records: [{ eventName: 'INSERT', dynamodb: { Keys: { pk: { S: 'x' }, sk: { S: 'a' } } } }],
  });
  expect(dyn.streamStats()[0]).toMatchObject({ recordsFailed: 1, recordsDelivered: 0 });
});

test('a data dir written by one mode is reopened by the other: items, indexes and the stream go on', async () => {
  const dir = tempDir();
  const logLines: Record<string, unknown>[] = [];
  const seen: DynamoDBRecord[] = [];
  const consumer = async (event: DynamoDBStreamEvent) => {
    seen.push(...event.Records);
  };
  const first = await open(dir, false, consumer);
  await first.doc.send(new PutCommand({ TableName, Item: { pk: 'm', sk: 'a', gsi1pk: 'g', v: 1 } }));
  await first.dyn.drain();
  await first.dyn.stop();
  running.splice(running.indexOf(first.dyn), 1);

  const second = await open(dir, true, consumer, logLines);
  // The engine's log lines are written by the main thread's logger, with its bindings.
  expect(logLines).toContainEqual(
    expect.objectContaining({ svc: 'dynamodb', table: TableName, msg: 'stream opened', pending: 0 }),
  );
  expect(second.dyn.indexCheck).toBeNull(); // the first stop was clean
  await second.doc.send(
    new UpdateCommand({
      TableName,
      Key: { pk: 'm', sk: 'a' },
      UpdateExpression: 'SET v = :v',
      ExpressionAttributeValues: { ':v': 2 },
    }),
  );
  const q = await second.doc.send(
    new QueryCommand({
      TableName,
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :g',
      ExpressionAttributeValues: { ':g': 'g' },
    }),
  );
  expect(q.Items).toEqual([{ pk: 'm', sk: 'a', gsi1pk: 'g', v: 2 }]);
  await second.dyn.drain();
  expect(seen.map((r) => [r.eventName, r.dynamodb?.SequenceNumber])).toEqual([
    ['INSERT', '1'.padStart(21, '0')],
    ['MODIFY', '2'.padStart(21, '0')],
  ]);
});

test('a start that cannot open the store fails, and the process goes on', async () => {
  const dir = tempDir();
  await open(dir, true, ok);
  // LevelDB's lock: one store per data dir. (On the main thread dynalite throws its error out of a
  // callback, which ends the process; the worker's start fails instead.)
  const other = new LocalDynamo({
    dataDir: dir,
    tables,
    tableName: (n) => `paystep-${n}`,
    deliver: ok,
    sendToFailureQueue: ok,
    logger: pino({ level: 'silent' }),
    worker: true,
  });
  expect(await other.start().then(String, (err: Error) => err.message)).toBe('Database is closed');
  expect(other.accepting()).toBe(false);
  expect(other.streamStats()).toEqual([]);
  await other.stop();
});
