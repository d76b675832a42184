import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalStepFunctions } from '../../lib/local/stepfunctions.ts';
import type { AslDefinition } from '../../lib/local/asl.ts';
import { until } from '../fixtures/api.ts';

const fnArn = (n: string) => `arn:aws:lambda:local:000000000000:function:${n}`;

/** A task, then a callback task (so that an execution can be left running). */
const definition = (): AslDefinition => ({
  StartAt: 'Charge',
  States: {
    Charge: { Type: 'Task', Resource: fnArn('charge'), ResultPath: '$.charge', Next: 'Approve' },
    Approve: {
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
      Parameters: { FunctionName: fnArn('notify'), Payload: { 'token.$': '$$.Task.Token', 'id.$': '$.id' } },
      ResultPath: '$.approval',
      End: true,
    },
  },
});

const MACHINE = 'arn:aws:states:local:000000000000:stateMachine:paystep-pay';
const execArn = (name: string) => `arn:aws:states:local:000000000000:execution:paystep-pay:${name}`;

describe('local Step Functions: finished executions leave memory', () => {
  let dir: string;
  let sfn: LocalStepFunctions;
  const tokens = new Map<string, string>();
  const charges: string[] = [];

  const make = async (journalCompactMinLines?: number) => {
    sfn = new LocalStepFunctions({
      dataDir: dir,
      machines: [{ name: 'pay', type: 'STANDARD', definition: definition() }],
      journalCompactMinLines,
      invokeFunction: async (arn, payload) => {
        const p = payload as { id: string; token: string };
        if (arn.endsWith(':charge')) charges.push(p.id);
        else tokens.set(p.id, p.token);
        return { charged: true };
      },
    });
    await sfn.start();
  };

  /** Starts `name` and waits for its callback; completes it unless `leaveRunning`. */
  const run = async (name: string, leaveRunning = false) => {
    const { executionArn } = sfn.startExecution({
      stateMachineArn: MACHINE,
      name,
      input: JSON.stringify({ id: name }),
    });
    await until(`the callback of ${name}`, () => tokens.has(name));
    if (leaveRunning) return executionArn;
    sfn.sendTaskSuccess({ taskToken: tokens.get(name), output: '{"approved":true}' });
    await sfn.waitForExecution(executionArn);
    return executionArn;
  };

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfn-archive-'));
    tokens.clear();
    charges.length = 0;
  });
  afterEach(async () => {
    await sfn.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a finished execution is described, listed and has its history from disk, before and after a restart', async () => {
    await make();
    const done = await run('pay_1');
    const running = await run('pay_2', true);
    const stats = sfn.memoryStats();
    expect(stats).toMatchObject({ executions: 1, finishedSummaries: 1, historyEvents: expect.any(Number) });
    const check = () => {
      const d = sfn.describeExecution({ executionArn: done });
      expect(d).toMatchObject({ name: 'pay_1', status: 'SUCCEEDED', input: '{"id":"pay_1"}' });
      expect(JSON.parse(d.output!)).toEqual({
        id: 'pay_1',
        charge: { charged: true },
        approval: { approved: true },
      });
      const types = sfn
        .getExecutionHistory({ executionArn: done, maxResults: 1000 })
        .events.map((e) => e.type);
      expect(types[0]).toBe('ExecutionStarted');
      expect(types.at(-1)).toBe('ExecutionSucceeded');
      expect(types).toContain('TaskSucceeded');
      const list = sfn.listExecutions({ stateMachineArn: MACHINE }).executions;
      expect(list.map((e) => [e.name, e.status]).sort()).toEqual([
        ['pay_1', 'SUCCEEDED'],
        ['pay_2', 'RUNNING'],
      ]);
      expect(
        sfn.listExecutions({ stateMachineArn: MACHINE, statusFilter: 'SUCCEEDED' }).executions,
      ).toHaveLength(1);
      expect(() =>
        sfn.startExecution({ stateMachineArn: MACHINE, name: 'pay_1', input: '{"id":"pay_1"}' }),
      ).toThrow(expect.objectContaining({ name: 'ExecutionAlreadyExists' }));
      // A token of a finished execution answers as AWS does for a completed task.
      expect(() => sfn.sendTaskSuccess({ taskToken: tokens.get('pay_1'), output: '{}' })).toThrow(
        expect.objectContaining({ name: 'TaskTimedOut' }),
      );
    };
    check();
    await sfn.stop();
    await make();
    check();
    // The running one resumed without charging again, and finishes into the archive.
    expect(charges).toEqual(['pay_1', 'pay_2']);
    sfn.sendTaskSuccess({ taskToken: tokens.get('pay_2'), output: '{"approved":true}' });
    expect((await sfn.waitForExecution(running)).status).toBe('SUCCEEDED');
    expect(sfn.memoryStats()).toMatchObject({ executions: 0, finishedSummaries: 2 });
  });

  test('the journal is compacted while running, and a restart after it resumes what was running', async () => {
    await make(20);
    const waiting = await run('pay_w', true);
    for (let i = 0; i < 8; i++) await run(`pay_${i}`);
    await new Promise((r) => setImmediate(r));
    const lines = fs
      .readFileSync(path.join(dir, 'stepfunctions', 'executions.jsonl'), 'utf8')
      .trim()
      .split('\n');
    // Only the running execution's lines (and the end lines of the ones finished since) are left.
    const arns = new Set(lines.map((l) => (JSON.parse(l) as { arn: string }).arn));
    expect(arns.has(waiting)).toBe(true);
    expect(arns.size).toBeLessThan(5); // 9 executions ran: the finished ones left
    expect(lines.length).toBeLessThan(80); // ~14 lines an execution without compaction
    expect(sfn.memoryStats()).toMatchObject({ executions: 1, finishedSummaries: 8 });
    await sfn.stop();
    await make(20);
    expect(charges.filter((c) => c === 'pay_w')).toHaveLength(1);
    sfn.sendTaskSuccess({ taskToken: tokens.get('pay_w'), output: '{"approved":true}' });
    expect((await sfn.waitForExecution(waiting)).status).toBe('SUCCEEDED');
    expect(sfn.describeExecution({ executionArn: execArn('pay_3') }).status).toBe('SUCCEEDED');
  });

  test('a record or index line cut short by a crash is dropped, and an older journal moves into the archive', async () => {
    await make();
    await run('pay_1');
    await sfn.stop();
    const sfDir = path.join(dir, 'stepfunctions');
    // A crash while writing a record, before its index line; and one while writing an index line.
    fs.appendFileSync(path.join(sfDir, 'finished.dat'), Buffer.from([1, 2, 3, 4, 5]));
    fs.appendFileSync(path.join(sfDir, 'finished.idx.jsonl'), '{"arn":"arn:aws:states:local:0000');
    // A data dir written before the archive: a finished execution with its history in the journal.
    const old = execArn('pay_old');
    const ev = (id: number, type: string) => ({ id, previousEventId: id - 1, timestamp: 1000 + id, type });
    const journal = [
      { t: 'start', arn: old, machine: 'pay', name: 'pay_old', input: '{"id":"pay_old"}', startDate: 1000 },
      { t: 'run', arn: old, run: 1 },
      { t: 'ev', arn: old, run: 1, ev: ev(1, 'ExecutionStarted') },
      { t: 'ev', arn: old, run: 1, ev: ev(2, 'ExecutionSucceeded') },
      { t: 'end', arn: old, status: 'SUCCEEDED', stopDate: 2000, output: '{"ok":true}' },
    ];
    fs.appendFileSync(
      path.join(sfDir, 'executions.jsonl'),
      journal.map((r) => JSON.stringify(r) + '\n').join(''),
    );
    await make();
    expect(sfn.describeExecution({ executionArn: execArn('pay_1') }).status).toBe('SUCCEEDED');
    expect(sfn.describeExecution({ executionArn: old })).toMatchObject({
      status: 'SUCCEEDED',
      output: '{"ok":true}',
    });
    expect(sfn.getExecutionHistory({ executionArn: old }).events.map((e) => e.type)).toEqual([
      'ExecutionStarted',
      'ExecutionSucceeded',
    ]);
    expect(sfn.memoryStats()).toMatchObject({ executions: 0, finishedSummaries: 2, journalLines: 0 });
    await run('pay_2');
    await sfn.stop();
    await make();
    expect(
      sfn
        .listExecutions({ stateMachineArn: MACHINE })
        .executions.map((e) => e.name)
        .sort(),
    ).toEqual(['pay_1', 'pay_2', 'pay_old']);
  });
});
