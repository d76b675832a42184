import {
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
  SQSServiceException,
  type Message,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalQueues, md5OfMessageAttributes, type LocalQueuesOptions } from '../../lib/local/queues.ts';

type Handler = (event: SQSEvent) => Promise<SQSBatchResponse | void>;

const md5 = (s: string) => createHash('md5').update(s, 'utf8').digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dataDir: string;
let queues: LocalQueues | undefined;
let sqs: SQSClient;
let endpoint: string;
/** Every consumer invocation: function name and the event it got. */
let calls: { fn: string; event: SQSEvent; at: number }[];
let handler: Handler;

async function startQueues(
  defs: LocalQueuesOptions['queues'],
  extra: Partial<LocalQueuesOptions> = {},
): Promise<LocalQueues> {
  const q = new LocalQueues({
    dataDir,
    queues: defs,
    invoke: async (fn, event) => {
      calls.push({ fn, event: event as SQSEvent, at: Date.now() });
      return handler(event as SQSEvent);
    },
    ...extra,
  });
  endpoint = await q.start();
  sqs = new SQSClient({
    endpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  queues = q;
  return q;
}

async function restart(defs: LocalQueuesOptions['queues'], extra: Partial<LocalQueuesOptions> = {}) {
  sqs.destroy();
  await queues!.stop();
  return startQueues(defs, extra);
}

const url = (name: string) => `${endpoint}/000000000000/${name}`;

/** What a consumer saw, per invocation: [body, ApproximateReceiveCount] of each record. */
const seen = () =>
  calls.map((c) => c.event.Records.map((r) => [r.body, r.attributes.ApproximateReceiveCount]));

async function errorOf(p: Promise<unknown>): Promise<SQSServiceException> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SQSServiceException) return e;
    throw e;
  }
  throw new Error('expected the request to fail');
}

beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-queues-'));
  calls = [];
  handler = async () => undefined;
});

afterEach(async () => {
  sqs?.destroy();
  await queues?.stop();
  queues = undefined;
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const plain = { name: 'work', visibilityTimeoutSeconds: 30, maxReceiveCount: 5 };

describe('SQS API through @aws-sdk/client-sqs', () => {
  test('send, receive and delete; MD5 and system attributes as SQS reports them', async () => {
    await startQueues([plain]);
    expect((await sqs.send(new GetQueueUrlCommand({ QueueName: 'work' }))).QueueUrl).toBe(url('work'));

    const before = Date.now();
    const sent = await sqs.send(
      new SendMessageCommand({
        QueueUrl: url('work'),
        MessageBody: '{"pay":"pay_1"}',
        MessageAttributes: { kind: { DataType: 'String', StringValue: 'capture' } },
      }),
    );
    expect(sent.MD5OfMessageBody).toBe(md5('{"pay":"pay_1"}'));
    expect(sent.MD5OfMessageAttributes).toBe(
      md5OfMessageAttributes({ kind: { DataType: 'String', StringValue: 'capture' } }),
    );

    const got = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url('work'),
        MaxNumberOfMessages: 10,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    expect(got.Messages).toHaveLength(1);
    const m = got.Messages![0]!;
    expect(m.MessageId).toBe(sent.MessageId);
    expect(m.Body).toBe('{"pay":"pay_1"}');
    expect(m.MD5OfBody).toBe(md5('{"pay":"pay_1"}'));
    expect(m.MessageAttributes).toEqual({ kind: { DataType: 'String', StringValue: 'capture' } });
    expect(m.Attributes!.ApproximateReceiveCount).toBe('1');
    expect(Number(m.Attributes!.SentTimestamp)).toBeGreaterThanOrEqual(before);
    expect(Number(m.Attributes!.ApproximateFirstReceiveTimestamp)).toBeGreaterThanOrEqual(
      Number(m.Attributes!.SentTimestamp),
    );

    // In flight: a second receive sees nothing.
    expect((await sqs.send(new ReceiveMessageCommand({ QueueUrl: url('work') }))).Messages ?? []).toEqual([]);
    const attrs = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url('work'),
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    expect(attrs.Attributes).toEqual({
      ApproximateNumberOfMessages: '0',
      ApproximateNumberOfMessagesNotVisible: '1',
    });

    await sqs.send(new DeleteMessageCommand({ QueueUrl: url('work'), ReceiptHandle: m.ReceiptHandle }));
    expect(queues!.stats('work')).toMatchObject({ total: 0, visible: 0, inFlight: 0 });
  });

  test('the legacy AttributeNames parameter selects system attributes too', async () => {
    await startQueues([plain]);
    await sqs.send(new SendMessageCommand({ QueueUrl: url('work'), MessageBody: 'x' }));
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url('work'), AttributeNames: ['All'] }));
    expect(got.Messages![0]!.Attributes).toEqual({
      ApproximateReceiveCount: '1',
      ApproximateFirstReceiveTimestamp: expect.stringMatching(/^\d+$/),
      SentTimestamp: expect.stringMatching(/^\d+$/),
      SenderId: '000000000000',
    });
    // Without attribute names, no attributes are returned.
    await sqs.send(new SendMessageCommand({ QueueUrl: url('work'), MessageBody: 'y' }));
    const bare = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url('work') }));
    expect(bare.Messages![0]!.Attributes).toBeUndefined();
  });

  test('batch send, batch delete, queue attributes and purge', async () => {
    await startQueues([plain]);
    const sent = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: url('work'),
        Entries: ['a', 'b', 'c'].map((b) => ({ Id: `id-${b}`, MessageBody: b })),
      }),
    );
    expect(sent.Successful!.map((s) => [s.Id, s.MD5OfMessageBody])).toEqual([
      ['id-a', md5('a')],
      ['id-b', md5('b')],
      ['id-c', md5('c')],
    ]);
    expect(sent.Failed ?? []).toEqual([]);

    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url('work'), MaxNumberOfMessages: 2 }));
    expect(got.Messages!.map((m) => m.Body)).toEqual(['a', 'b']);
    const all = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url('work'), AttributeNames: ['All'] }),
    );
    expect(all.Attributes).toMatchObject({
      ApproximateNumberOfMessages: '1',
      ApproximateNumberOfMessagesNotVisible: '2',
      VisibilityTimeout: '30',
      QueueArn: 'arn:aws:sqs:local:000000000000:work',
    });

    const del = await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: url('work'),
        Entries: got.Messages!.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle })),
      }),
    );
    expect(del.Successful!.map((s) => s.Id)).toEqual(['d0', 'd1']);
    expect(queues!.stats('work').total).toBe(1);

    await sqs.send(new PurgeQueueCommand({ QueueUrl: url('work') }));
    expect(queues!.stats('work').total).toBe(0);
  });

  test('errors use the JSON protocol shape the SDK maps to its exception classes', async () => {
    await startQueues([plain]);
    const noQueue = await errorOf(
      sqs.send(new SendMessageCommand({ QueueUrl: url('nope'), MessageBody: 'x' })),
    );
    expect(noQueue.name).toBe('QueueDoesNotExist');
    expect(noQueue.$metadata.httpStatusCode).toBe(400);
    const noName = await errorOf(sqs.send(new GetQueueUrlCommand({ QueueName: 'nope' })));
    expect(noName.name).toBe('QueueDoesNotExist');
    const badHandle = await errorOf(
      sqs.send(new DeleteMessageCommand({ QueueUrl: url('work'), ReceiptHandle: 'not-a-handle' })),
    );
    expect(badHandle.name).toBe('ReceiptHandleIsInvalid');
    const tooMany = await errorOf(
      sqs.send(new ReceiveMessageCommand({ QueueUrl: url('work'), MaxNumberOfMessages: 11 })),
    );
    expect(tooMany.name).toBe('InvalidParameterValue');

    const res = await fetch(endpoint, {
      method: 'POST',
      headers: { 'x-amz-target': 'AmazonSQS.SendMessage', 'content-type': 'application/x-amz-json-1.0' },
      body: JSON.stringify({ QueueUrl: url('nope'), MessageBody: 'x' }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-amzn-query-error')).toBe('AWS.SimpleQueueService.NonExistentQueue;Sender');
    expect(await res.json()).toEqual({
      __type: 'com.amazonaws.sqs#QueueDoesNotExist',
      message: 'The specified queue does not exist.',
    });
  });

  test('a queue URL with another host still names the queue by its path', async () => {
    await startQueues([plain]);
    const sent = await sqs.send(
      new SendMessageCommand({
        QueueUrl: 'http://sqs.elsewhere.invalid/000000000000/work',
        MessageBody: 'x',
      }),
    );
    // The client's endpoint is explicit, so the request went to the local server.
    expect(sent.MD5OfMessageBody).toBe(md5('x'));
    expect(queues!.stats('work').total).toBe(1);
  });

  test('an expired visibility timeout redelivers with a higher receive count and a new receipt handle', async () => {
    // 1 s visibility (unscaled): the receive right after the first must fall inside it even on a
    // loaded machine (at 100 ms it did not, once, in a loaded CI run).
    await startQueues([{ ...plain, visibilityTimeoutSeconds: 1 }]);
    await sqs.send(new SendMessageCommand({ QueueUrl: url('work'), MessageBody: 'again' }));
    const receive = (wait = 0) =>
      sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: url('work'),
          WaitTimeSeconds: wait,
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }),
      );
    const first = (await receive()).Messages![0]!;
    expect(first.Attributes!.ApproximateReceiveCount).toBe('1');
    expect((await receive()).Messages ?? []).toEqual([]);

    // The long poll (20 s) is woken when the message becomes visible again (after ~1 s), not at its end.
    const t0 = Date.now();
    const second = (await receive(20)).Messages![0]!;
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(second.MessageId).toBe(first.MessageId);
    expect(second.Attributes!.ApproximateReceiveCount).toBe('2');
    expect(second.ReceiptHandle).not.toBe(first.ReceiptHandle);

    // A stale receipt handle succeeds but does not delete (SQS semantics); the latest one does.
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url('work'), ReceiptHandle: first.ReceiptHandle }));
    expect(queues!.stats('work').total).toBe(1);
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url('work'), ReceiptHandle: second.ReceiptHandle }));
    expect(queues!.stats('work').total).toBe(0);
  });

  test('ChangeMessageVisibility to 0 makes a message visible at once', async () => {
    await startQueues([plain]);
    await sqs.send(new SendMessageCommand({ QueueUrl: url('work'), MessageBody: 'x' }));
    const m = (await sqs.send(new ReceiveMessageCommand({ QueueUrl: url('work') }))).Messages![0]!;
    await sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: url('work'),
        ReceiptHandle: m.ReceiptHandle,
        VisibilityTimeout: 0,
      }),
    );
    const again = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url('work') }));
    expect(again.Messages!.map((x: Message) => x.MessageId)).toEqual([m.MessageId]);
  });

  test('a long poll returns as soon as a message arrives', async () => {
    await startQueues([plain]);
    const t0 = Date.now();
    const polling = sqs.send(new ReceiveMessageCommand({ QueueUrl: url('work'), WaitTimeSeconds: 10 }));
    await sleep(50);
    queues!.sendLocal('work', 'late');
    const got = await polling;
    expect(got.Messages!.map((m) => m.Body)).toEqual(['late']);
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

describe('consumers (Lambda SQS event source mapping)', () => {
  const reports = {
    name: 'reports',
    consumer: 'report-writer',
    batchSize: 10,
    visibilityTimeoutSeconds: 30,
    maxReceiveCount: 3,
  };

  test('a batch is delivered as a real-shaped SQSEvent and deleted on success', async () => {
    await startQueues([reports]);
    const ids = ['one', 'two', 'three'].map((b) =>
      queues!.sendLocal('reports', b, { messageAttributes: { n: { DataType: 'Number', StringValue: '7' } } }),
    );
    await queues!.drain({ timeoutMs: 5000 });

    expect(calls).toHaveLength(1);
    expect(calls[0]!.fn).toBe('report-writer');
    const records = calls[0]!.event.Records;
    expect(records.map((r) => r.messageId)).toEqual(ids);
    expect(records.map((r) => r.body)).toEqual(['one', 'two', 'three']);
    const r = records[0]!;
    expect(r).toMatchObject({
      md5OfBody: md5('one'),
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:local:000000000000:reports',
      awsRegion: 'local',
      messageAttributes: {
        n: { stringValue: '7', stringListValues: [], binaryListValues: [], dataType: 'Number' },
      },
    });
    expect(r.receiptHandle).toEqual(expect.any(String));
    expect(r.attributes.ApproximateReceiveCount).toBe('1');
    expect(r.attributes.SenderId).toEqual(expect.any(String));
    expect(Number(r.attributes.SentTimestamp)).toBeGreaterThan(0);
    expect(Number(r.attributes.ApproximateFirstReceiveTimestamp)).toBeGreaterThanOrEqual(
      Number(r.attributes.SentTimestamp),
    );
    expect(queues!.stats('reports')).toMatchObject({ total: 0, batchesInFlight: 0 });
  });

  test('messages sent through the SDK reach the consumer', async () => {
    await startQueues([reports]);
    await sqs.send(new SendMessageCommand({ QueueUrl: url('reports'), MessageBody: 'via-sdk' }));
    await queues!.drain({ timeoutMs: 5000 });
    expect(seen()).toEqual([[['via-sdk', '1']]]);
  });

  test('a partial batch failure redelivers only the failed message', async () => {
    await startQueues([{ ...reports, visibilityTimeoutSeconds: 1 }], { timeScale: 20 });
    handler = async (event) => {
      const failed = event.Records.filter(
        (r) => r.body === 'b' && r.attributes.ApproximateReceiveCount === '1',
      );
      return { batchItemFailures: failed.map((r) => ({ itemIdentifier: r.messageId })) };
    };
    for (const b of ['a', 'b', 'c']) queues!.sendLocal('reports', b);
    await queues!.drain({ timeoutMs: 5000 });
    expect(seen()).toEqual([
      [
        ['a', '1'],
        ['b', '1'],
        ['c', '1'],
      ],
      [['b', '2']],
    ]);
  });

  test('a thrown error redelivers the whole batch after the visibility timeout', async () => {
    await startQueues([{ ...reports, visibilityTimeoutSeconds: 1 }], { timeScale: 20 });
    let first = true;
    handler = async () => {
      if (first) {
        first = false;
        throw new Error('database unavailable');
      }
    };
    for (const b of ['a', 'b']) queues!.sendLocal('reports', b);
    await queues!.drain({ timeoutMs: 5000 });
    expect(seen()).toEqual([
      [
        ['a', '1'],
        ['b', '1'],
      ],
      [
        ['a', '2'],
        ['b', '2'],
      ],
    ]);
    // Redelivered only after the (scaled) visibility timeout of 50 ms, not at once.
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(45);
  });

  test('batchItemFailures naming an unknown message fails the whole batch, as Lambda does', async () => {
    await startQueues([{ ...reports, visibilityTimeoutSeconds: 1 }], { timeScale: 20 });
    let first = true;
    handler = async () => {
      if (!first) return;
      first = false;
      return { batchItemFailures: [{ itemIdentifier: 'no-such-id' }] };
    };
    for (const b of ['a', 'b']) queues!.sendLocal('reports', b);
    await queues!.drain({ timeoutMs: 5000 });
    expect(seen()).toEqual([
      [
        ['a', '1'],
        ['b', '1'],
      ],
      [
        ['a', '2'],
        ['b', '2'],
      ],
    ]);
  });

  test('after maxReceiveCount receives the next receive moves the message to the DLQ', async () => {
    await startQueues(
      [
        { ...reports, visibilityTimeoutSeconds: 1, maxReceiveCount: 3, dlq: 'reports-dlq' },
        { name: 'reports-dlq', visibilityTimeoutSeconds: 30, maxReceiveCount: 3 },
      ],
      { timeScale: 50 },
    );
    handler = async () => {
      throw new Error('always fails');
    };
    const id = queues!.sendLocal('reports', 'poison');
    await queues!.drain({ timeoutMs: 5000 });

    expect(seen()).toEqual([[['poison', '1']], [['poison', '2']], [['poison', '3']]]);
    expect(queues!.stats('reports').total).toBe(0);
    expect(queues!.stats('reports-dlq')).toMatchObject({ total: 1, visible: 1 });

    const dead = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url('reports-dlq'), MessageSystemAttributeNames: ['All'] }),
    );
    expect(dead.Messages!.map((m) => [m.MessageId, m.Body])).toEqual([[id, 'poison']]);
    expect(dead.Messages![0]!.Attributes).toMatchObject({
      ApproximateReceiveCount: '1',
      DeadLetterQueueSourceArn: 'arn:aws:sqs:local:000000000000:reports',
    });
    const policy = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url('reports'), AttributeNames: ['RedrivePolicy'] }),
    );
    expect(JSON.parse(policy.Attributes!.RedrivePolicy!)).toEqual({
      deadLetterTargetArn: 'arn:aws:sqs:local:000000000000:reports-dlq',
      maxReceiveCount: 3,
    });
  });

  test('redrive also applies to receives through the API', async () => {
    await startQueues([
      { ...plain, visibilityTimeoutSeconds: 0, maxReceiveCount: 1, dlq: 'work-dlq' },
      { name: 'work-dlq', visibilityTimeoutSeconds: 30, maxReceiveCount: 1 },
    ]);
    queues!.sendLocal('work', 'once');
    expect((await sqs.send(new ReceiveMessageCommand({ QueueUrl: url('work') }))).Messages).toHaveLength(1);
    // Visible again at once (timeout 0), but a second receive would exceed maxReceiveCount 1.
    expect((await sqs.send(new ReceiveMessageCommand({ QueueUrl: url('work') }))).Messages ?? []).toEqual([]);
    expect(queues!.stats('work').total).toBe(0);
    expect(queues!.stats('work-dlq').total).toBe(1);
  });

  test('timeScale compresses the visibility timeout: 30 s at 1000x redelivers within a second', async () => {
    await startQueues([{ ...reports, visibilityTimeoutSeconds: 30 }], { timeScale: 1000 });
    let attempts = 0;
    handler = async () => {
      attempts++;
      if (attempts === 1) throw new Error('transient');
    };
    queues!.sendLocal('reports', 'x');
    const t0 = Date.now();
    await queues!.drain({ timeoutMs: 1000 });
    expect(attempts).toBe(2);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(25);
    expect(seen()).toEqual([[['x', '1']], [['x', '2']]]);
  });

  test('batches respect batchSize and up to consumerConcurrency run at once', async () => {
    await startQueues([{ ...reports, batchSize: 2 }], { consumerConcurrency: 2 });
    let running = 0;
    let maxRunning = 0;
    handler = async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await sleep(40);
      running--;
    };
    for (let i = 0; i < 7; i++) queues!.sendLocal('reports', `m${i}`);
    await queues!.drain({ timeoutMs: 5000 });
    expect(calls.map((c) => c.event.Records.length)).toEqual([2, 2, 2, 1]);
    expect(calls.flatMap((c) => c.event.Records.map((r) => r.body)).sort()).toEqual(
      ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6'].sort(),
    );
    expect(maxRunning).toBe(2);
  });

  test('stop waits for the batch in flight, which can still send, and acknowledges it', async () => {
    const defs = [reports, plain];
    await startQueues(defs);
    let finished = false;
    handler = async () => {
      await sleep(100);
      // A handler finishing during shutdown can still send through the SDK.
      await sqs.send(new SendMessageCommand({ QueueUrl: url('work'), MessageBody: 'follow-up' }));
      finished = true;
    };
    queues!.sendLocal('reports', 'slow');
    while (calls.length === 0) await sleep(5);
    await queues!.stop();
    expect(finished).toBe(true);
    // Acknowledged before stopping: nothing comes back after a restart, and the follow-up was kept.
    sqs.destroy();
    calls = [];
    await startQueues(defs);
    await sleep(50);
    expect(calls).toEqual([]);
    expect(queues!.stats('reports').total).toBe(0);
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url('work') }));
    expect(got.Messages!.map((m) => m.Body)).toEqual(['follow-up']);
  });
});

describe('durability', () => {
  test('a restart keeps unacknowledged messages, drops deleted ones and makes in-flight ones visible', async () => {
    const defs = [{ ...plain, visibilityTimeoutSeconds: 600 }];
    await startQueues(defs);
    for (const b of ['a', 'b', 'c', 'd']) {
      await sqs.send(new SendMessageCommand({ QueueUrl: url('work'), MessageBody: b }));
    }
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url('work'), MaxNumberOfMessages: 2 }));
    expect(got.Messages!.map((m) => m.Body)).toEqual(['a', 'b']);
    const a = got.Messages![0]!;
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url('work'), ReceiptHandle: a.ReceiptHandle }));

    await restart(defs);
    expect(queues!.stats('work')).toMatchObject({ total: 3, visible: 3, inFlight: 0 });
    const after = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url('work'),
        MaxNumberOfMessages: 10,
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
      }),
    );
    // b was in flight (600 s visibility) and is visible again, its receive count kept; a stays deleted.
    expect(after.Messages!.map((m) => [m.Body, m.Attributes!.ApproximateReceiveCount])).toEqual([
      ['b', '2'],
      ['c', '1'],
      ['d', '1'],
    ]);
    // Compacted at start: one line per live message.
    const lines = fs
      .readFileSync(path.join(dataDir, 'queues', 'work.jsonl'), 'utf8')
      .trim()
      .split('\n');
    expect(lines.slice(0, 3).map((l) => JSON.parse(l).body)).toEqual(['b', 'c', 'd']);
    expect(lines.filter((l) => JSON.parse(l).op === 'send')).toHaveLength(3);
  });

  test('messages a consumer has not acknowledged are delivered after a restart, exactly the unacked ones', async () => {
    const defs = [
      {
        name: 'reports',
        consumer: 'writer',
        batchSize: 10,
        visibilityTimeoutSeconds: 30,
        maxReceiveCount: 5,
      },
    ];
    await startQueues(defs);
    handler = async (event) => ({
      batchItemFailures: event.Records.filter((r) => r.body === 'keep').map((r) => ({
        itemIdentifier: r.messageId,
      })),
    });
    queues!.sendLocal('reports', 'done');
    queues!.sendLocal('reports', 'keep');
    while (calls.length === 0 || queues!.stats('reports').batchesInFlight > 0) await sleep(5);
    expect(queues!.stats('reports')).toMatchObject({ total: 1, inFlight: 1 });

    calls = [];
    handler = async () => undefined;
    await restart(defs);
    await queues!.drain({ timeoutMs: 5000 });
    expect(seen()).toEqual([[['keep', '2']]]);
  });

  test('redrive counts survive a restart', async () => {
    const defs = [
      { ...plain, visibilityTimeoutSeconds: 0, maxReceiveCount: 2, dlq: 'work-dlq' },
      { name: 'work-dlq', visibilityTimeoutSeconds: 30, maxReceiveCount: 2 },
    ];
    await startQueues(defs);
    queues!.sendLocal('work', 'poison');
    for (let i = 0; i < 2; i++) {
      expect((await sqs.send(new ReceiveMessageCommand({ QueueUrl: url('work') }))).Messages).toHaveLength(1);
    }
    await restart(defs);
    expect((await sqs.send(new ReceiveMessageCommand({ QueueUrl: url('work') }))).Messages ?? []).toEqual([]);
    expect(queues!.stats('work-dlq').total).toBe(1);
    await restart(defs);
    expect(queues!.stats('work-dlq').total).toBe(1);
    expect(queues!.stats('work').total).toBe(0);
  });

  test('the log is compacted while running once it is mostly dead records', async () => {
    await startQueues([plain]);
    const file = path.join(dataDir, 'queues', 'work.jsonl');
    for (let i = 0; i < 1200; i++) queues!.sendLocal('work', `m${i}`);
    await sqs.send(new PurgeQueueCommand({ QueueUrl: url('work') }));
    queues!.sendLocal('work', 'survivor');
    await sleep(20);
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    expect(lines.map((l) => JSON.parse(l).body)).toEqual(['survivor']);
    // Appends continue on the new file, and a restart restores exactly the live messages.
    queues!.sendLocal('work', 'later');
    await restart([plain]);
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url('work'), MaxNumberOfMessages: 10 }));
    expect(got.Messages!.map((m) => m.Body)).toEqual(['survivor', 'later']);
  });

  test('a torn last line (crash mid-write) is skipped, the rest restored', async () => {
    fs.mkdirSync(path.join(dataDir, 'queues'), { recursive: true });
    const good = { op: 'send', id: 'm-1', body: 'kept', md5: md5('kept'), t: Date.now() };
    fs.writeFileSync(
      path.join(dataDir, 'queues', 'work.jsonl'),
      JSON.stringify(good) + '\n{"op":"send","id":"m-2","bo',
    );
    await startQueues([plain]);
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url('work'), MaxNumberOfMessages: 10 }));
    expect(got.Messages!.map((m) => [m.MessageId, m.Body])).toEqual([['m-1', 'kept']]);
  });
});
