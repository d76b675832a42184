/**
 * What single DynamoDB calls (and one stream-router invocation) cost the idle runtime, wall time and
 * process CPU per call, measured with the handlers' own client (`--unit-costs N`).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Runtime } from '../../lib/local/runtime.ts';
import { round, summarize, type LatencySummary } from '../lib.ts';
import { roundSummary3 } from './summaries.ts';

export interface UnitCost {
  op: string;
  iterations: number;
  /** Wall time per call, sequential calls on an otherwise idle runtime, ms. */
  wallMs: LatencySummary;
  /** Process CPU per call (every thread: main loop, LevelDB, libuv), stream delivery included, ms. */
  cpuMs: number;
}

/**
 * What one DynamoDB call costs the runtime, measured on the idle runtime with the handlers' own
 * client: SDK (marshalling, signing, HTTP) → proxy (for a write: lock, old image, journal, forward,
 * new image, stream record) → dynalite → stream delivery to the stream router.
 */
export async function measureUnitCosts(rt: Runtime, iterations: number): Promise<UnitCost[]> {
  const { clients } = await import('../../lambdas/shared/aws.ts');
  const { GetCommand, PutCommand, UpdateCommand } = await import('@aws-sdk/lib-dynamodb');
  const { config } = await import('../../lambdas/shared/config.ts');
  const TableName = config.tableName('main');
  const ddb = clients.ddb();
  const pk = `BENCH#${randomUUID()}`;
  await ddb.send(
    new PutCommand({
      TableName,
      Item: {
        pk,
        sk: 'PAYMENT',
        kind: 'bench',
        status: 'processing',
        amount: 1050,
        metadata: {},
        version: 1,
      },
    }),
  );
  await rt.settle(30_000);
  let seq = 0;
  const ops: [string, () => Promise<unknown>][] = [
    [
      'GetItem (consistent, like getPayment)',
      () => ddb.send(new GetCommand({ TableName, Key: { pk, sk: 'PAYMENT' }, ConsistentRead: true })),
    ],
    [
      'PutItem of a new item (like addEvent)',
      () =>
        ddb.send(
          new PutCommand({
            TableName,
            Item: {
              pk,
              sk: `EVENT#${String(++seq).padStart(8, '0')}`,
              kind: 'bench_event',
              at: new Date().toISOString(),
              type: 'workflow',
            },
          }),
        ),
    ],
    [
      'UpdateItem with condition (like transition)',
      () =>
        ddb.send(
          new UpdateCommand({
            TableName,
            Key: { pk, sk: 'PAYMENT' },
            UpdateExpression: 'SET #s = :s, updated = :u ADD version :one',
            ConditionExpression: 'attribute_exists(pk)',
            ExpressionAttributeNames: { '#s': 'status' },
            ExpressionAttributeValues: { ':s': 'processing', ':u': ++seq, ':one': 1 },
          }),
        ),
    ],
  ];
  // The proxy's own round trip to dynalite (old and new images of every write), if still reachable.
  const direct = rt.dynamo as unknown as { call?: (op: string, input: unknown) => Promise<unknown> };
  if (typeof direct.call === 'function') {
    const call = direct.call.bind(rt.dynamo);
    ops.push([
      'proxy → dynalite GetItem (no SDK; each write does 2)',
      () =>
        call('GetItem', { TableName, Key: { pk: { S: pk }, sk: { S: 'PAYMENT' } }, ConsistentRead: true }),
    ]);
  }
  const record = {
    eventID: '1',
    eventName: 'INSERT',
    eventVersion: '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion: 'local',
    dynamodb: {
      Keys: { pk: { S: pk }, sk: { S: 'EVENT#1' } },
      NewImage: {
        pk: { S: pk },
        sk: { S: 'EVENT#1' },
        kind: { S: 'payment_event' },
        type: { S: 'workflow' },
      },
      SequenceNumber: '1',
      SizeBytes: 100,
      StreamViewType: 'NEW_AND_OLD_IMAGES',
    },
    eventSourceARN: 'arn:aws:dynamodb:local:000000000000:table/paystep-main/stream/local',
  };
  ops.push([
    'stream-router invocation (1 record; every write makes one)',
    // A shard of its own (the router keeps its rollups exactly once per shard, by sequence number).
    () => rt.lambdas.invoke('stream-router', { Records: [record], shardId: 'shardId-unit-costs' }),
  ]);
  const out: UnitCost[] = [];
  for (const [op, fn] of ops) {
    for (let i = 0; i < 50; i++) await fn();
    await rt.settle(30_000);
    const lat = new Float64Array(iterations);
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < iterations; i++) {
      const t = performance.now();
      await fn();
      lat[i] = performance.now() - t;
    }
    await rt.settle(30_000); // the stream records' delivery is part of a write's cost
    const cpu = process.cpuUsage(cpu0);
    out.push({
      op,
      iterations,
      wallMs: roundSummary3(summarize(lat)),
      cpuMs: round((cpu.user + cpu.system) / 1000 / iterations, 3),
    });
  }
  return out;
}
