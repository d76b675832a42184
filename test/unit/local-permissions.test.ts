/**
 * The local runtime enforces `uses` (issue #12, lib/local/permissions.ts): a function calling a
 * table, queue, bucket, state machine or secret missing from its `uses` fails as it would in AWS, a
 * granted one works, and calls made outside any invocation (tests, CLI, the runtime) are not checked.
 *
 * The handlers are one probe (test/fixtures/permissions/probe.ts) declared twice with different
 * `uses`: `granted` has every resource, `bare` none. The probe is told the resource names in its
 * event, so that a call reaches the service even without the environment variable.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../../lambdas/shared/aws.ts';
import { allows, type Statement } from '../../lib/local/permissions.ts';
import { Runtime } from '../../lib/local/runtime.ts';
import { topology as paystep, type Topology } from '../../lib/topology.ts';
import type { ProbeEvent, ProbeResult, ProbeTokens } from '../fixtures/permissions/probe.ts';

const PROBE = 'test/fixtures/permissions/probe.ts';
const all = {
  tables: ['main'],
  queues: ['work'],
  buckets: ['files'],
  stateMachines: ['flow'],
  secrets: ['token'],
};

const topology: Topology = {
  functions: {
    granted: { entry: PROBE, description: 'uses everything', uses: all },
    bare: { entry: PROBE, description: 'uses nothing', uses: {} },
    task: { entry: PROBE, description: 'the task of the flow state machine' },
  },
  authorizer: { function: 'bare', cacheTtlSeconds: 0 },
  routes: [],
  stateMachines: {
    flow: {
      file: 'test/fixtures/permissions/flow.asl.json',
      type: 'STANDARD',
      description: 'a callback task',
      substitutions: { TaskFunctionArn: { functionArn: 'task' } },
    },
    unlisted: {
      file: 'test/fixtures/permissions/unlisted.asl.json',
      type: 'STANDARD',
      description: 'invokes a function its role does not name',
      substitutions: {},
    },
  },
  tables: { main: { ...paystep.tables.main!, stream: undefined } },
  queues: { work: { description: 'a queue', visibilityTimeoutSeconds: 30, maxReceiveCount: 3 } },
  buckets: { files: { description: 'a bucket' } },
  schedules: {},
  secrets: {
    token: { description: 'a secret', source: { generated: { length: 16 } }, rotation: 'not rotated (test)' },
  },
  api: { throttle: { rateLimit: 10, burstLimit: 10 } },
};

let rt: Runtime;
let dir: string;
const probe = (fn: 'granted' | 'bare', event: ProbeEvent) =>
  rt.lambdas.invoke(fn, event) as Promise<ProbeResult>;
const denied = (action: string, resource: string) => ({
  ok: false,
  error: expect.stringMatching(/^AccessDenied/),
  message: expect.stringContaining(`is not authorized to perform: ${action} on resource: ${resource}`),
});

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-permissions-'));
  rt = await new Runtime({ dataDir: dir, port: 0, gateway: false, scheduler: false, topology }).start();
});
afterAll(async () => {
  await rt?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('a function may use only what its `uses` grants', () => {
  test('DynamoDB: AccessDeniedException for a table it does not use; the granted function reads and writes', async () => {
    expect(await probe('bare', { action: 'put-item', table: 'paystep-main' })).toEqual(
      denied('dynamodb:PutItem', 'arn:aws:dynamodb:local:000000000000:table/paystep-main'),
    );
    const message = (
      (await probe('bare', { action: 'get-item', table: 'paystep-main' })) as { message: string }
    ).message;
    expect(message).toContain('function bare is not granted this');
    expect(await probe('granted', { action: 'put-item' })).toEqual({ ok: true });
    expect(await probe('granted', { action: 'get-item' })).toEqual({
      ok: true,
      value: { pk: 'probe', sk: 'probe' },
    });
  });

  test('its environment has no variable for what it does not use, as in AWS (ConfigError before any call)', async () => {
    expect(await probe('bare', { action: 'put-item' })).toEqual({
      ok: false,
      error: 'ConfigError',
      message: 'environment variable PAYSTEP_TABLE_MAIN is not set',
    });
    const bare = (await probe('bare', { action: 'env' })) as { value: string[] };
    const granted = (await probe('granted', { action: 'env' })) as { value: string[] };
    const resources = [
      'PAYSTEP_TABLE_MAIN',
      'PAYSTEP_QUEUE_WORK_URL',
      'PAYSTEP_BUCKET_FILES',
      'PAYSTEP_STATE_MACHINE_FLOW_ARN',
      'PAYSTEP_SECRET_TOKEN',
    ];
    expect(granted.value).toEqual(expect.arrayContaining(resources));
    for (const v of resources) expect(bare.value).not.toContain(v);
    // Outside an invocation the environment is whole.
    expect(process.env.PAYSTEP_TABLE_MAIN).toBe('paystep-main');
  });

  test('secrets: a secret it does not use is not there (ConfigError, as in AWS); a granted one is', async () => {
    expect(await probe('bare', { action: 'secret', name: 'token' })).toMatchObject({
      ok: false,
      error: 'ConfigError',
      message: expect.stringContaining('secret token: neither PAYSTEP_SECRET_TOKEN'),
    });
    expect(await probe('granted', { action: 'secret', name: 'token' })).toEqual({ ok: true, value: 16 });
  });

  test('SQS: AccessDenied for a queue it does not send to; the granted function sends', async () => {
    const queueUrl = rt.queueUrl('work');
    expect(await probe('bare', { action: 'send-message', queueUrl })).toEqual(
      denied('sqs:SendMessage', 'arn:aws:sqs:local:000000000000:paystep-work'),
    );
    expect(await probe('granted', { action: 'send-message' })).toEqual({ ok: true });
    expect(rt.queues.stats('paystep-work').total).toBe(1);
  });

  test('S3: AccessDenied for a bucket it does not use, also for a 2 MiB upload (Expect: 100-continue) and fetch', async () => {
    expect(await probe('bare', { action: 'put-object', bucket: 'paystep-files' })).toEqual(
      denied('s3:PutObject', 'arn:aws:s3:::paystep-files/probe.txt'),
    );
    expect(
      await probe('bare', { action: 'put-object', bucket: 'paystep-files', size: 2 * 1024 * 1024 }),
    ).toEqual(denied('s3:PutObject', 'arn:aws:s3:::paystep-files/probe.txt'));
    expect(await probe('granted', { action: 'put-object' })).toEqual({ ok: true });
    expect(
      await probe('bare', { action: 'fetch-object', bucket: 'paystep-files', key: 'probe.txt' }),
    ).toMatchObject({
      ok: false,
      error: 'HTTP 403',
      message: expect.stringContaining('s3:GetObject on resource: arn:aws:s3:::paystep-files/probe.txt'),
    });
    expect(
      await probe('granted', { action: 'fetch-object', bucket: 'paystep-files', key: 'probe.txt' }),
    ).toEqual({
      ok: true,
      value: 'xxxxx',
    });
  });

  test('Step Functions: start and task tokens need the state machine in `uses`', async () => {
    const stateMachineArn = rt.stepFunctions.stateMachineArn('flow');
    expect(await probe('bare', { action: 'start-execution', stateMachineArn })).toEqual(
      denied('states:StartExecution', stateMachineArn),
    );
    const tokens = globalThis as { paystepProbeTokens?: ProbeTokens };
    const token = new Promise<string>((resolve) => (tokens.paystepProbeTokens = { onToken: resolve }));
    const started = (await probe('granted', { action: 'start-execution' })) as { ok: true; value: string };
    expect(started.ok).toBe(true);
    const taskToken = await token;
    expect(await probe('bare', { action: 'send-task-success', token: taskToken })).toEqual(
      denied('states:SendTaskSuccess', stateMachineArn),
    );
    expect(await probe('granted', { action: 'send-task-success', token: taskToken })).toEqual({ ok: true });
    expect((await rt.stepFunctions.waitForExecution(started.value)).status).toBe('SUCCEEDED');
  });

  test("a task goes by the state machine's role: a function it does not name fails the task (Lambda.AWSLambdaException)", async () => {
    const { executionArn } = rt.stepFunctions.startExecution({
      stateMachineArn: rt.stepFunctions.stateMachineArn('unlisted'),
      input: '{}',
    });
    const done = await rt.stepFunctions.waitForExecution(executionArn);
    expect(done).toMatchObject({
      status: 'FAILED',
      error: 'Lambda.AWSLambdaException',
      cause: expect.stringContaining(
        'is not authorized to perform: lambda:InvokeFunction on resource: arn:aws:lambda:local:000000000000:function:paystep-bare',
      ),
    });
  });

  test('calls outside any invocation are not checked, even on a connection a denied function used', async () => {
    expect(await probe('bare', { action: 'get-item', table: 'paystep-main' })).toMatchObject({ ok: false });
    // The same SDK client (and its keep-alive connection) the handlers share.
    const got = await clients
      .ddb()
      .send(new GetCommand({ TableName: 'paystep-main', Key: { pk: 'probe', sk: 'probe' } }));
    expect(got.Item).toEqual({ pk: 'probe', sk: 'probe' });
    expect(await probe('granted', { action: 'get-item' })).toMatchObject({ ok: true });
  });
});

describe('policy evaluation', () => {
  const statements: Statement[] = [
    {
      actions: ['s3:GetObject*', 'sqs:SendMessage'],
      resources: ['arn:aws:s3:::b/*', 'arn:aws:sqs:local:1:q'],
    },
  ];
  test.each([
    ['s3:GetObject', 'arn:aws:s3:::b/k', true],
    ['s3:getobjectversion', 'arn:aws:s3:::b/a/b', true], // actions ignore case
    ['s3:GetObject', 'arn:aws:s3:::bb/k', false],
    ['s3:PutObject', 'arn:aws:s3:::b/k', false],
    ['sqs:SendMessage', 'arn:aws:sqs:local:1:q', true],
    ['sqs:SendMessage', 'arn:aws:sqs:local:1:q2', false],
  ])('%s on %s: %s', (action, resource, expected) => {
    expect(allows(statements, { action, resource })).toBe(expected);
  });
});

describe('the environment view (each function sees only its own variables)', () => {
  test('a variable the process already has can still be changed once the view is installed', async () => {
    // Only the real process.env refuses a partial redefinition, so this runs in a plain node.
    const { execFileSync } = await import('node:child_process');
    const script = [
      "import { runAsFunction } from './lib/local/permissions.ts';",
      "process.env.PAYSTEP_VIEW_PROBE = 'before';",
      "runAsFunction('fn', { hiddenEnv: () => new Set(['HIDDEN_ONE']) }, () => undefined);",
      "process.env.PAYSTEP_VIEW_PROBE = 'after';",
      "process.env.HIDDEN_ONE = 'x';",
      "let hidden = 'unset';",
      "runAsFunction('fn', { hiddenEnv: () => new Set(['HIDDEN_ONE']) }, () => { hidden = String(process.env.HIDDEN_ONE); });",
      'console.log(JSON.stringify({ probe: process.env.PAYSTEP_VIEW_PROBE, hidden, outside: process.env.HIDDEN_ONE }));',
    ].join('\n');
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: path.resolve(import.meta.dirname, '..', '..'),
      encoding: 'utf8',
    });
    expect(JSON.parse(out)).toEqual({ probe: 'after', hidden: 'undefined', outside: 'x' });
  });
});
