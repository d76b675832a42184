/**
 * The local DynamoDB rejects what DynamoDB rejects, with DynamoDB's errors, whichever way a client
 * reaches it: over HTTP (the proxy's port, as other processes do) and in-process (the SDK request
 * handler the runtime registers for the handlers' clients, lib/local/dynamodb-inprocess.ts). The
 * expected names and messages are DynamoDB's own.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { LocalDynamo } from '../../lib/local/dynamodb.ts';
import { clients, resetClients } from '../../lambdas/shared/aws.ts';
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
const dir = mkdtempSync(path.join(tmpdir(), 'paystep-ddb-conformance-'));
const records: DynamoDBRecord[] = [];
const dyn = new LocalDynamo({
  dataDir: dir,
  tables,
  tableName: (n) => `paystep-${n}`,
  deliver: async (_fn, event) => {
    records.push(...event.Records);
  },
  sendToFailureQueue: async () => undefined,
});
let endpoint = '';
let proxyRequests = 0;
const env = { ...process.env };

beforeAll(async () => {
  endpoint = await dyn.start();
  (dyn as unknown as { proxy: Server }).proxy.on('request', () => proxyRequests++);
  Object.assign(process.env, {
    AWS_REGION: 'local',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_DYNAMODB: endpoint,
  });
  resetClients();
});
afterAll(async () => {
  resetClients();
  process.env = env;
  await dyn.stop();
  rmSync(dir, { recursive: true, force: true });
});

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
const paths: [string, () => DynamoDBClient][] = [
  ['HTTP', () => new DynamoDBClient({ endpoint, region: 'local', credentials, maxAttempts: 1 })],
  [
    'in-process',
    // The handlers' own client: clients.ddb() picks the handler the store registered, and its signer.
    () =>
      new DynamoDBClient({
        endpoint,
        region: 'local',
        credentials,
        maxAttempts: 1,
        requestHandler: clients.ddb().config.requestHandler,
        httpAuthSchemes: clients.ddb().config.httpAuthSchemes,
      }),
  ],
];

test('the handlers’ client reaches the store in-process; a client of its own goes over HTTP', async () => {
  const handler = clients.ddb().config.requestHandler as { metadata?: { handlerProtocol?: string } };
  expect(handler.metadata?.handlerProtocol).toBe('in-process');
  const before = proxyRequests;
  await paths[1]![1]().send(new GetItemCommand({ TableName, Key: { pk: { S: 'x' }, sk: { S: 'x' } } }));
  expect(proxyRequests).toBe(before);
  await paths[0]![1]().send(new GetItemCommand({ TableName, Key: { pk: { S: 'x' }, sk: { S: 'x' } } }));
  expect(proxyRequests).toBe(before + 1);
});

test('in-process requests carry SigV4’s headers with a placeholder signature; other clients sign for real', async () => {
  const seen: Record<string, string>[] = [];
  const capture = (client: DynamoDBClient) =>
    client.middlewareStack.add(
      (next) => async (args) => {
        seen.push({ ...(args.request as { headers: Record<string, string> }).headers });
        return next(args);
      },
      { step: 'finalizeRequest', priority: 'low' },
    );
  const local = paths[1]![1]();
  const http = paths[0]![1]();
  capture(local);
  capture(http);
  const get = new GetItemCommand({ TableName, Key: { pk: { S: 'x' }, sk: { S: 'x' } } });
  await local.send(get);
  await http.send(get);
  const shape =
    /^AWS4-HMAC-SHA256 Credential=local\/\d{8}\/local\/dynamodb\/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$/;
  expect(seen).toHaveLength(2);
  for (const h of seen) {
    expect(h['authorization']).toMatch(shape);
    expect(h['x-amz-date']).toMatch(/^\d{8}T\d{6}Z$/);
  }
  expect(seen[0]!['authorization']).toMatch(/Signature=0{64}$/);
  expect(seen[1]!['authorization']).not.toMatch(/Signature=0{64}$/);
});

describe.each(paths)('over %s', (name, makeClient) => {
  const client = makeClient();
  const pk = `conf-${name}`;
  const key = { pk: { S: pk }, sk: { S: 'A' } };
  const item: Record<string, AttributeValue> = { ...key, status: { S: 'new' }, n: { N: '1' } };

  beforeAll(async () => {
    await client.send(new PutItemCommand({ TableName, Item: item }));
  });

  const rejects = (p: Promise<unknown>, name: string, message?: string | RegExp) =>
    expect(p).rejects.toMatchObject({
      name,
      $metadata: { httpStatusCode: 400 },
      ...(message ? { message: typeof message === 'string' ? message : expect.stringMatching(message) } : {}),
    });

  test('a failed condition: ConditionalCheckFailedException, without the item unless asked for', async () => {
    const put = client.send(
      new PutItemCommand({ TableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }),
    );
    await rejects(put, 'ConditionalCheckFailedException', 'The conditional request failed');
    await expect(put.catch((e: { Item?: unknown }) => e.Item)).resolves.toBeUndefined();
    const asked = [
      new PutItemCommand({
        TableName,
        Item: item,
        ConditionExpression: 'attribute_not_exists(pk)',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
      new UpdateItemCommand({
        TableName,
        Key: key,
        UpdateExpression: 'SET n = n + :one',
        ConditionExpression: '#s = :paid',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':one': { N: '1' }, ':paid': { S: 'paid' } },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
      new DeleteItemCommand({
        TableName,
        Key: key,
        ConditionExpression: 'n > :five',
        ExpressionAttributeValues: { ':five': { N: '5' } },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    ];
    for (const command of asked) {
      const err = await client.send(command as PutItemCommand).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'ConditionalCheckFailedException', Item: item });
    }
    // No item, nothing to return.
    const absent = await client
      .send(
        new UpdateItemCommand({
          TableName,
          Key: { pk: { S: pk }, sk: { S: 'absent' } },
          UpdateExpression: 'SET n = :one',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':one': { N: '1' } },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      )
      .catch((e: unknown) => e);
    expect(absent).toMatchObject({ name: 'ConditionalCheckFailedException' });
    expect((absent as { Item?: unknown }).Item).toBeUndefined();
    await rejects(
      client.send(
        new PutItemCommand({
          TableName,
          Item: item,
          ConditionExpression: 'attribute_not_exists(pk)',
          ReturnValuesOnConditionCheckFailure: 'SOMETIMES' as 'ALL_OLD',
        }),
      ),
      'ValidationException',
      /Value 'SOMETIMES' at 'returnValuesOnConditionCheckFailure' failed to satisfy constraint: Member must satisfy enum value set: \[ALL_OLD, NONE\]/,
    );
  });

  test('validation errors: empty key, missing key, reserved word, unused value, unknown name', async () => {
    await rejects(
      client.send(new PutItemCommand({ TableName, Item: { pk: { S: '' }, sk: { S: 'A' } } })),
      'ValidationException',
      'One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: pk',
    );
    await rejects(
      client.send(new PutItemCommand({ TableName, Item: { pk: { S: pk } } })),
      'ValidationException',
      'One or more parameter values were invalid: Missing the key sk in the item',
    );
    await rejects(
      client.send(
        new UpdateItemCommand({
          TableName,
          Key: key,
          UpdateExpression: 'SET status = :s',
          ExpressionAttributeValues: { ':s': { S: 'paid' } },
        }),
      ),
      'ValidationException',
      'Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: status',
    );
    await rejects(
      client.send(
        new UpdateItemCommand({
          TableName,
          Key: key,
          UpdateExpression: 'SET n = :n',
          ExpressionAttributeValues: { ':n': { N: '2' }, ':unused': { S: 'x' } },
        }),
      ),
      'ValidationException',
      'Value provided in ExpressionAttributeValues unused in expressions: keys: {:unused}',
    );
    await rejects(
      client.send(
        new UpdateItemCommand({
          TableName,
          Key: key,
          UpdateExpression: 'SET #missing = :n',
          ExpressionAttributeValues: { ':n': { N: '2' } },
        }),
      ),
      'ValidationException',
      'Invalid UpdateExpression: An expression attribute name used in the document path is not defined; attribute name: #missing',
    );
  });

  test('the 400 KB item size limit, on put and on update', async () => {
    const big = 'x'.repeat(400 * 1024);
    await rejects(
      client.send(new PutItemCommand({ TableName, Item: { ...key, big: { S: big } } })),
      'ValidationException',
      'Item size has exceeded the maximum allowed size',
    );
    await rejects(
      client.send(
        new UpdateItemCommand({
          TableName,
          Key: key,
          UpdateExpression: 'SET big = :b',
          ExpressionAttributeValues: { ':b': { S: big } },
        }),
      ),
      'ValidationException',
      'Item size to update has exceeded the maximum allowed size',
    );
    // Just under the limit is accepted.
    await client.send(
      new PutItemCommand({
        TableName,
        Item: { pk: { S: pk }, sk: { S: 'big' }, b: { S: 'x'.repeat(399 * 1024) } },
      }),
    );
  });

  test('TransactWriteItems is refused as a whole (dynalite has no transactions): nothing is written', async () => {
    await rejects(
      client.send(
        new TransactWriteItemsCommand({
          TransactItems: [
            { Put: { TableName, Item: { pk: { S: pk }, sk: { S: 'tx' } } } },
            {
              ConditionCheck: { TableName, Key: key, ConditionExpression: 'attribute_not_exists(pk)' },
            },
          ],
        }),
      ),
      'UnknownOperationException',
    );
    const got = await client.send(
      new GetItemCommand({ TableName, Key: { pk: { S: pk }, sk: { S: 'tx' } }, ConsistentRead: true }),
    );
    expect(got.Item).toBeUndefined();
  });

  test('rejected writes leave the item and the stream as they were', async () => {
    await dyn.drain();
    const mine = () =>
      records.filter((r) => r.dynamodb?.Keys?.pk?.S === pk && r.dynamodb?.Keys?.sk?.S === 'A');
    expect(mine().map((r) => r.eventName)).toEqual(['INSERT']);
    const got = await client.send(new GetItemCommand({ TableName, Key: key, ConsistentRead: true }));
    expect(got.Item).toEqual(item);
  });
});
