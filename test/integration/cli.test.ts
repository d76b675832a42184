/**
 * The `paystep` command as people run it: a separate process (bin/paystep-cli.js), against a
 * runtime running on its data dir or one it starts in-process. stdout carries the result only
 * (it parses as JSON, or is the report as stored); logs and errors go to stderr, errors as one
 * line naming the bad value, never a stack trace; exit codes 0 (done), 1 (failed, or found a
 * failure), 2 (usage). One runtime serves the whole file; a second, empty data dir has none.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { PROJECT_ROOT, startRuntime, type Runtime } from '../../lib/local/runtime.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- CLI output is checked by assertions
type Json = Record<string, any>;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let rt: Runtime;
let dir: string;
let emptyDir: string;

/** Runs the CLI in a child process (asynchronously: the runtime in this process must keep serving). */
function paystep(
  args: string[],
  opts: { dataDir?: string; env?: Record<string, string> } = {},
): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, PAYSTEP_LOG_LEVEL: 'warn', ...opts.env };
  delete env.JEST_WORKER_ID; // as a person runs it, not as a test worker
  delete env.POWERTOOLS_LOG_LEVEL;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(PROJECT_ROOT, 'bin/paystep-cli.js'), '--data-dir', opts.dataDir ?? dir, ...args],
      { env, maxBuffer: 16 << 20 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const json = (r: Run): Json => {
  try {
    return JSON.parse(r.stdout) as Json;
  } catch {
    throw new Error(`stdout is not JSON (exit ${r.code}):\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
};
const NO_STACK = /\n\s+at /;

/** Two CLI processes at a time (the machine has two cores). */
async function inPairs<T>(jobs: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = [];
  for (let i = 0; i < jobs.length; i += 2)
    results.push(...(await Promise.all(jobs.slice(i, i + 2).map((j) => j()))));
  return results;
}
const today = () => new Date().toISOString().slice(0, 10);

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-cli-'));
  emptyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-cli-empty-'));
  rt = await startRuntime({ dataDir: dir, port: 0, scheduler: false });
});

afterAll(async () => {
  await rt?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(emptyDir, { recursive: true, force: true });
});

describe('paystep (the CLI as a process)', () => {
  test('wrong command lines are refused with exit 2 and one line naming the value, nothing on stdout', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['reconcile', 'sync', '--processor', 'paypal'],
        /^paystep: unknown processor 'paypal' \(expected: stripe\)$/,
      ],
      [['reconcile', 'list'], /^paystep: required option '--processor <name>' not specified$/],
      [
        ['report', 'run', 'weekly', '--date', '2026-01-02'],
        /^paystep: unknown report 'weekly' \(expected: transactions, summary, performance, subscriptions\)$/,
      ],
      [['report', 'run', 'summary', '--date', '2026-13-45'], /^paystep: --date: '2026-13-45' is not a date/],
      [['report', 'show', 'summary', '--date', '2026-02-30'], /^paystep: --date: '2026-02-30' is not a date/],
      [['report', 'run', 'summary'], /^paystep: required option '--date <date>' not specified$/],
      [
        ['webhooks', 'list', '--status', 'stuck'],
        /^paystep: unknown status 'stuck' \(expected: parked, failed\)$/,
      ],
      [
        ['executions', 'list', '--status', 'DONE'],
        /^paystep: unknown status 'DONE' \(expected: RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED\)$/,
      ],
      [
        ['executions', 'list', '--state-machine', 'checkout'],
        /^paystep: unknown state machine 'checkout' \(expected: .*payment.*\)$/,
      ],
      [
        ['executions', 'list', '--limit', 'many'],
        /^paystep: --limit: 'many' is not an integer from 1 to 1000$/,
      ],
      [['merchant', 'create'], /^paystep: required option '--name <name>' not specified$/],
      [
        ['refund', 'create', '--payment', 'pay_x', '--reason', 'bored'],
        /^paystep: unknown refund reason 'bored'/,
      ],
      [['frobnicate'], /^paystep: unknown command 'frobnicate'$/],
    ];
    // Refused before anything starts: the empty data dir stays without a runtime.
    const runs = await inPairs(
      cases.map(
        ([args]) =>
          () =>
            paystep(args, { dataDir: emptyDir }),
      ),
    );
    runs.forEach((r, i) => {
      const [args, message] = cases[i]!;
      expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code: 2, stdout: '' });
      expect(r.stderr.split('\n')[0]).toMatch(message);
      expect(r.stderr).not.toMatch(NO_STACK);
    });
    expect(fs.readdirSync(emptyDir)).toEqual([]);
  }, 90_000); // thirteen CLI processes, two at a time: slow on a loaded 2-core machine

  test('status: JSON and exit 0 with a runtime; JSON, a message and exit 1 without', async () => {
    const [up, down] = await Promise.all([paystep(['status']), paystep(['status'], { dataDir: emptyDir })]);
    expect(up.code).toBe(0);
    expect(json(up)).toMatchObject({ running: true, pid: process.pid, url: rt.url });
    expect(down.code).toBe(1);
    expect(json(down)).toEqual({ running: false, dataDir: path.resolve(emptyDir) });
    expect(down.stderr).toBe(
      `paystep: no paystep runtime is running on ${path.resolve(emptyDir)} (start one with npm start)\n`,
    );
  });

  test('a payment workflow, seen with executions list and show; a report run, then shown', async () => {
    const m = json(await paystep(['merchant', 'create', '--name', 'Acme']));
    expect(m).toMatchObject({
      id: expect.stringMatching(/^mch_/),
      api_key: expect.stringMatching(/^sk_test_/),
    });
    const res = await fetch(`${rt.url}/v1/payments`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${m.api_key}`,
        'idempotency-key': randomUUID(),
        'content-type': 'application/json',
      },
      body: JSON.stringify({ amount: 1050, currency: 'usd', payment_method: 'pm_card_visa' }),
    });
    const payment = (await res.json()) as Json;
    expect(payment.status).toBe('captured');
    const arn =
      rt.stepFunctions.stateMachineArn('payment').replace(':stateMachine:', ':execution:') + `:${payment.id}`;
    await rt.stepFunctions.waitForExecution(arn);

    const [list, failed, shown, byArn, missing] = await Promise.all([
      paystep(['executions', 'list', '--state-machine', 'payment', '--status', 'succeeded', '--limit', '5']),
      paystep(['executions', 'list', '--status', 'FAILED']),
      paystep(['executions', 'show', payment.id]),
      paystep(['executions', 'show', arn, '--full']),
      paystep(['executions', 'show', 'pay_nothing']),
    ]);
    expect(list.code).toBe(0);
    expect(json(list).data).toEqual([
      {
        name: payment.id,
        state_machine: 'payment',
        status: 'SUCCEEDED',
        start_date: expect.any(String),
        stop_date: expect.any(String),
        execution_arn: arn,
      },
    ]);
    expect(json(failed)).toEqual({ object: 'list', data: [] });

    const x = json(shown);
    expect(x).toMatchObject({
      name: payment.id,
      state_machine: 'payment',
      status: 'SUCCEEDED',
      input: { payment_id: payment.id },
      output: expect.objectContaining({ payment_id: payment.id }),
      error: null,
      execution_arn: arn,
    });
    expect(x.states.map((s: Json) => s.state)).toEqual(
      expect.arrayContaining(['Screen for risk', 'Authorize with processor']),
    );
    for (const s of x.states) {
      expect(Date.parse(s.entered_at)).toBeGreaterThanOrEqual(Date.parse(x.start_date));
      expect(Date.parse(s.exited_at)).toBeGreaterThanOrEqual(Date.parse(s.entered_at));
    }
    expect(x.history[0]).toMatchObject({ id: 1, type: 'ExecutionStarted' });
    expect(x.history.at(-1)).toMatchObject({ type: 'ExecutionSucceeded' });
    expect(x.history.filter((e: Json) => e.type === 'TaskStateEntered').map((e: Json) => e.state)).toContain(
      'Screen for risk',
    );
    const full = json(byArn);
    expect(full.history.length).toBe(x.history.length);
    expect(full.history[0].details.input).toEqual({ payment_id: payment.id });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^paystep: no execution 'pay_nothing'/);

    const run = await paystep(['report', 'run', 'transactions', '--date', today(), '--merchant', m.id]);
    expect(run.code).toBe(0);
    expect(json(run)).toMatchObject({ report: 'transactions', date: today(), merchants: 1 });
    expect(run.stderr).toMatch(/transactions \[█+\] 1\/1 merchants/); // progress on stderr
    const [csv, asJson, none] = await Promise.all([
      paystep(['report', 'show', 'transactions', '--date', today(), '--merchant', m.id]),
      paystep(['report', 'show', 'transactions', '--date', today(), '--format', 'json']),
      paystep(['report', 'show', 'summary', '--date', '2001-01-01']),
    ]);
    expect(csv.code).toBe(0);
    expect(csv.stdout.split('\r\n')[0]).toMatch(/^entry_id,occurred_at,type,merchant_id/);
    expect(csv.stdout).toContain(payment.id);
    expect(json(asJson)).toMatchObject({ merchant_id: m.id, date: today() });
    expect(none.code).toBe(1);
    expect(none.stderr).toBe(
      'paystep: no summary report for 2001-01-01 in the reports bucket; paystep report run summary --date 2001-01-01 makes it\n',
    );
  });

  test('with the runtime in-process, its logs go to stderr and stdout is only the result', async () => {
    const inProcess = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-cli-inproc-'));
    try {
      const r = await paystep(['merchant', 'create', '--name', 'Verbose'], {
        dataDir: inProcess,
        env: { PAYSTEP_LOG_LEVEL: 'debug' },
      });
      expect(r.code).toBe(0);
      expect(r.stdout.trim().split('\n')).toHaveLength(1);
      expect(json(r)).toMatchObject({ name: 'Verbose' });
      expect(r.stderr).toMatch(/"msg":"buckets started"/);
      expect(fs.existsSync(path.join(inProcess, 'runtime.json'))).toBe(false); // stopped again
    } finally {
      fs.rmSync(inProcess, { recursive: true, force: true });
    }
  });

  test('a reader that leaves early (paystep … | head -1) ends the output quietly, not with a stack', async () => {
    const child = spawn(
      process.execPath,
      [path.join(PROJECT_ROOT, 'bin/paystep-cli.js'), '--data-dir', dir, 'executions', 'list'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout.destroy(); // the reader is gone before the first byte
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  });

  test('every command is in the README CLI table and has a --help description, and the reverse', async () => {
    const { buildProgram } = await import('../../lib/cli/main.ts');
    // A command runs if it has no subcommands, or an action of its own as well (`analytics` and
    // `analytics rebuild`).
    const hasAction = (c: Command) => Boolean((c as unknown as { _actionHandler?: unknown })._actionHandler);
    const leaves = (c: Command, prefix: string[] = []): { path: string; description: string }[] =>
      c.commands.length
        ? [
            ...(prefix.length && hasAction(c)
              ? [{ path: prefix.join(' '), description: c.description() }]
              : []),
            ...c.commands.flatMap((sub) => leaves(sub, [...prefix, sub.name()])),
          ]
        : [{ path: prefix.join(' '), description: c.description() }];
    const commands = leaves(buildProgram(() => undefined));
    for (const c of commands)
      expect({ command: c.path, described: c.description.length > 10 }).toEqual({
        command: c.path,
        described: true,
      });

    const readme = fs.readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8');
    const table = readme.slice(
      readme.indexOf('## CLI'),
      readme.indexOf('\n## ', readme.indexOf('## CLI') + 1),
    );
    const documented = new Set<string>();
    for (const [, cell] of table.matchAll(/^\| `paystep ([^`]+)`/gm)) {
      const words = cell!
        .split(' ')
        .filter((w, i, all) => all.slice(0, i + 1).every((x) => /^[a-z][a-z\\|-]*$/.test(x)));
      const last = words.pop()!;
      for (const alt of last.split('\\|')) documented.add([...words, alt].join(' '));
    }
    expect([...documented].sort()).toEqual(commands.map((c) => c.path).sort());

    // Help is printed to the result stream, required options marked.
    let help = '';
    await expect(
      buildProgram((str) => (help += str)).parseAsync(['report', 'run', '--help'], { from: 'user' }),
    ).rejects.toMatchObject({ code: 'commander.helpDisplayed' });
    expect(help).toMatch(/--date <date> +the day \(yyyy-mm-dd, UTC\) \(required\)/);
  });
});
