import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  SFNClient,
  StartExecutionCommand,
  DescribeExecutionCommand,
  SendTaskSuccessCommand,
  SendTaskFailureCommand,
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { LocalStepFunctions } from '../../lib/local/stepfunctions.ts';
import type { AslDefinition } from '../../lib/local/asl.ts';

const fnArn = (n: string) => `arn:aws:lambda:local:000000000000:function:${n}`;

/** A workflow with a retried task, a callback task, a long wait and a catch. */
const definition = (): AslDefinition => ({
  StartAt: 'Charge',
  States: {
    Charge: {
      Type: 'Task',
      Resource: fnArn('charge'),
      Retry: [{ ErrorEquals: ['TransientError'], IntervalSeconds: 30, MaxAttempts: 3, BackoffRate: 2 }],
      Catch: [{ ErrorEquals: ['CardDeclined'], ResultPath: '$.failure', Next: 'Declined' }],
      ResultPath: '$.charge',
      Next: 'Wait for approval',
    },
    'Wait for approval': {
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
      Parameters: { FunctionName: fnArn('notify'), Payload: { 'token.$': '$$.Task.Token', 'id.$': '$.id' } },
      TimeoutSeconds: 604800,
      ResultPath: '$.approval',
      Next: 'Wait a day',
    },
    'Wait a day': { Type: 'Wait', Seconds: 86400, Next: 'Done' },
    Done: { Type: 'Pass', End: true },
    Declined: { Type: 'Fail', Error: 'Declined', Cause: 'card declined' },
  },
});

describe('local Step Functions', () => {
  let dir: string;
  let sfn: LocalStepFunctions;
  let client: SFNClient;
  const calls: { fn: string; payload: Record<string, unknown> }[] = [];
  let chargeBehaviour: (n: number) => unknown = () => ({ ok: true });
  const tokens: string[] = [];

  const make = async (timeScale = 86400) => {
    sfn = new LocalStepFunctions({
      dataDir: dir,
      timeScale,
      machines: [{ name: 'pay', type: 'STANDARD', definition: definition() }],
      invokeFunction: async (arn, payload) => {
        const fn = arn.split(':').pop()!;
        calls.push({ fn, payload: payload as Record<string, unknown> });
        if (fn === 'charge') return chargeBehaviour(calls.filter((c) => c.fn === 'charge').length);
        if (fn === 'notify') tokens.push((payload as { token: string }).token);
        return null;
      },
    });
    const endpoint = await sfn.start();
    client = new SFNClient({
      endpoint,
      region: 'local',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    });
  };

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfn-'));
    calls.length = 0;
    tokens.length = 0;
    chargeBehaviour = () => ({ ok: true });
    await make();
  });
  afterEach(async () => {
    await sfn.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const until = async (cond: () => boolean, ms = 5000) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error('condition not met in time');
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const arnOf = () => sfn.stateMachineArn('pay');

  test('a callback task pauses until SendTaskSuccess, then a day-long Wait passes in time-scaled seconds', async () => {
    const { executionArn } = await client.send(
      new StartExecutionCommand({ stateMachineArn: arnOf(), name: 'pay_1', input: '{"id":"pay_1"}' }),
    );
    await until(() => tokens.length === 1);
    const running = await client.send(new DescribeExecutionCommand({ executionArn }));
    expect(running.status).toBe('RUNNING');
    expect(calls.find((c) => c.fn === 'notify')!.payload.id).toBe('pay_1');
    await client.send(new SendTaskSuccessCommand({ taskToken: tokens[0], output: '{"approved":true}' }));
    const started = Date.now();
    const done = await sfn.waitForExecution(executionArn!);
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.output!)).toEqual({
      id: 'pay_1',
      charge: { ok: true },
      approval: { approved: true },
    });
    expect(Date.now() - started).toBeLessThan(3000); // 86400 s at scale 86400 ≈ 1 s
    const history = await client.send(new GetExecutionHistoryCommand({ executionArn }));
    const types = history.events!.map((e) => e.type);
    expect(types[0]).toBe('ExecutionStarted');
    expect(types).toContain('WaitStateEntered');
    expect(types.filter((t) => t === 'TaskSucceeded')).toHaveLength(2);
    expect(types.at(-1)).toBe('ExecutionSucceeded');
    // A token works once.
    await expect(
      client.send(new SendTaskSuccessCommand({ taskToken: tokens[0], output: '{}' })),
    ).rejects.toMatchObject({ name: 'TaskTimedOut' });
  });

  test('SendTaskFailure fails the callback task; Retry backs off on technical errors and Catch routes declines', async () => {
    const { executionArn } = await client.send(
      new StartExecutionCommand({ stateMachineArn: arnOf(), name: 'pay_2', input: '{"id":"pay_2"}' }),
    );
    await until(() => tokens.length === 1);
    await client.send(
      new SendTaskFailureCommand({ taskToken: tokens[0], error: 'Rejected', cause: 'ops said no' }),
    );
    const failed = await sfn.waitForExecution(executionArn!);
    expect(failed).toMatchObject({ status: 'FAILED', error: 'Rejected', cause: 'ops said no' });

    chargeBehaviour = (n) => {
      if (n <= 2) throw Object.assign(new Error('processor 503'), { name: 'TransientError' });
      throw Object.assign(new Error('insufficient funds'), { name: 'CardDeclined' });
    };
    calls.length = 0;
    const r = await client.send(
      new StartExecutionCommand({ stateMachineArn: arnOf(), name: 'pay_3', input: '{"id":"pay_3"}' }),
    );
    const declined = await sfn.waitForExecution(r.executionArn!);
    expect(declined).toMatchObject({ status: 'FAILED', error: 'Declined', cause: 'card declined' });
    expect(calls.filter((c) => c.fn === 'charge')).toHaveLength(3); // 2 retried technical errors, then the decline
  });

  test('execution names are unique; same name and input while running is idempotent', async () => {
    const a = await client.send(
      new StartExecutionCommand({ stateMachineArn: arnOf(), name: 'pay_4', input: '{"id":"pay_4"}' }),
    );
    const b = await client.send(
      new StartExecutionCommand({ stateMachineArn: arnOf(), name: 'pay_4', input: '{"id":"pay_4"}' }),
    );
    expect(b.executionArn).toBe(a.executionArn);
    await expect(
      client.send(
        new StartExecutionCommand({ stateMachineArn: arnOf(), name: 'pay_4', input: '{"id":"other"}' }),
      ),
    ).rejects.toMatchObject({ name: 'ExecutionAlreadyExists' });
    await client.send(
      new StopExecutionCommand({ executionArn: a.executionArn, error: 'Ops', cause: 'test' }),
    );
    expect((await client.send(new DescribeExecutionCommand({ executionArn: a.executionArn }))).status).toBe(
      'ABORTED',
    );
    await expect(
      client.send(
        new StartExecutionCommand({ stateMachineArn: arnOf(), name: 'pay_4', input: '{"id":"pay_4"}' }),
      ),
    ).rejects.toMatchObject({ name: 'ExecutionAlreadyExists' });
    const list = await client.send(new ListExecutionsCommand({ stateMachineArn: arnOf() }));
    expect(list.executions!.map((x) => x.name)).toEqual(['pay_4']);
  });

  test('a restart resumes a waiting execution without repeating finished tasks, and its token still works', async () => {
    const { executionArn } = await client.send(
      new StartExecutionCommand({ stateMachineArn: arnOf(), name: 'pay_5', input: '{"id":"pay_5"}' }),
    );
    await until(() => tokens.length === 1);
    expect(calls.map((c) => c.fn)).toEqual(['charge', 'notify']);
    await sfn.stop();
    await make();
    await until(() => sfn.pendingTaskTokens(executionArn).length === 1);
    expect(calls.map((c) => c.fn)).toEqual(['charge', 'notify']); // nothing ran twice
    await client.send(new SendTaskSuccessCommand({ taskToken: tokens[0], output: '{"approved":true}' }));
    const done = await sfn.waitForExecution(executionArn!);
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.output!).charge).toEqual({ ok: true });
  });

  test('unknown execution and bad input produce Step Functions errors', async () => {
    await expect(
      client.send(
        new DescribeExecutionCommand({
          executionArn: 'arn:aws:states:local:000000000000:execution:paystep-pay:nope',
        }),
      ),
    ).rejects.toMatchObject({ name: 'ExecutionDoesNotExist' });
    await expect(
      client.send(new StartExecutionCommand({ stateMachineArn: arnOf(), name: 'x', input: '{bad' })),
    ).rejects.toMatchObject({ name: 'InvalidExecutionInput' });
    await expect(
      client.send(new SendTaskSuccessCommand({ taskToken: 'garbage', output: '{}' })),
    ).rejects.toMatchObject({ name: 'InvalidToken' });
  });
});
