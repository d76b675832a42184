import { mkdtempSync, rmSync } from 'node:fs';
import type http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  CreateTableCommand,
  DynamoDBClient,
  ListTablesCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { openDynalite } from '../../lib/local/dynalite.ts';
import { until } from '../fixtures/api.ts';

interface Iter {
  next(): Promise<unknown>;
}

// Every Query, Scan and ListTables reads a LevelDB iterator; one left open pins LevelDB's files and
// memtables (the data dir and the RSS grew with every query), so each must be closed once answered.
test('the LevelDB iterators of queries, scans and table listings are closed, read to the end or not', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'paystep-dynalite-it-'));
  const { server, store } = openDynalite({ path: dir, createTableMs: 0 });
  const db = store.db as unknown as { keys(o?: unknown): Iter; values(o?: unknown): Iter };
  const opened: Iter[] = [];
  for (const m of ['keys', 'values'] as const) {
    const original = db[m].bind(db);
    db[m] = (o?: unknown) => {
      const it = original(o);
      opened.push(it);
      return it;
    };
  }
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = new DynamoDBClient({
    endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  try {
    await client.send(
      new CreateTableCommand({
        TableName: 'items',
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    await waitUntilTableExists({ client, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { TableName: 'items' });
    for (let i = 0; i < 20; i++)
      await client.send(
        new PutItemCommand({ TableName: 'items', Item: { pk: { S: 'p' }, sk: { S: `s${i}` } } }),
      );
    opened.length = 0;
    const limited = await client.send(
      new QueryCommand({
        TableName: 'items',
        KeyConditionExpression: 'pk = :p',
        ExpressionAttributeValues: { ':p': { S: 'p' } },
        Limit: 2,
      }),
    );
    expect(limited.Items).toHaveLength(2); // stopped before the end of the range
    const all = await client.send(
      new QueryCommand({
        TableName: 'items',
        KeyConditionExpression: 'pk = :p',
        ExpressionAttributeValues: { ':p': { S: 'p' } },
      }),
    );
    expect(all.Items).toHaveLength(20);
    expect((await client.send(new ScanCommand({ TableName: 'items', Limit: 3 }))).Items).toHaveLength(3);
    expect((await client.send(new ListTablesCommand({}))).TableNames).toEqual(['items']);
    expect(opened.length).toBeGreaterThanOrEqual(4);
    for (const it of opened)
      await until('the iterator closed', () =>
        it.next().then(
          () => false,
          (err: { code?: string }) => err.code === 'LEVEL_ITERATOR_NOT_OPEN',
        ),
      );
  } finally {
    client.destroy();
    await new Promise<void>((r) => (server as http.Server).close(() => r()));
    await new Promise<void>((r) => (store.db as unknown as { close(cb: () => void): void }).close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
});
