import { jest } from '@jest/globals';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ScheduleDef } from '../../lib/topology.ts';
import { readJsonFile, writeFileAtomic } from '../../lib/local/files.ts';
import {
  LocalScheduler,
  parseScheduleExpression,
  type LocalSchedulerOptions,
  type ScheduleStatus,
} from '../../lib/local/scheduler.ts';

const D = (s: string) => new Date(s);
const nextIso = (expr: string, after: string) =>
  parseScheduleExpression(expr).next(D(after))?.toISOString() ?? null;
/** The first `n` occurrences after `after`. */
const series = (expr: string, after: string, n: number) => {
  const s = parseScheduleExpression(expr);
  const out: string[] = [];
  let d: Date | null = D(after);
  while (out.length < n && (d = s.next(d))) out.push(d.toISOString());
  return out;
};

describe('parseScheduleExpression', () => {
  test('rate forms are aligned on the period and strictly after', () => {
    expect(series('rate(1 minute)', '2025-01-01T00:00:30Z', 2)).toEqual([
      '2025-01-01T00:01:00.000Z',
      '2025-01-01T00:02:00.000Z',
    ]);
    expect(series('rate(5 minutes)', '2025-01-01T00:05:00Z', 2)).toEqual([
      '2025-01-01T00:10:00.000Z',
      '2025-01-01T00:15:00.000Z',
    ]);
    expect(nextIso('rate(1 hour)', '2025-01-01T10:59:59.999Z')).toBe('2025-01-01T11:00:00.000Z');
    expect(series('rate(6 hours)', '2025-01-01T01:00:00Z', 2)).toEqual([
      '2025-01-01T06:00:00.000Z',
      '2025-01-01T12:00:00.000Z',
    ]);
    expect(nextIso('rate(1 day)', '2025-01-01T03:00:00Z')).toBe('2025-01-02T00:00:00.000Z');
    const threeDays = series('rate(3 days)', '2025-01-01T00:00:00Z', 2).map((t) => Date.parse(t));
    expect(threeDays[1]! - threeDays[0]!).toBe(3 * 86_400_000);
    expect(threeDays[0]! % (3 * 86_400_000)).toBe(0);
    expect(parseScheduleExpression('rate(1 hour)').prev(D('2025-01-01T11:00:00Z'))?.toISOString()).toBe(
      '2025-01-01T10:00:00.000Z',
    );
  });

  test('cron: AWS day-of-week numbers 1-7 = SUN-SAT', () => {
    // 2025-01-01 is a Wednesday.
    expect(series('cron(0 12 ? * 2 *)', '2025-01-01T00:00:00Z', 3)).toEqual([
      '2025-01-06T12:00:00.000Z',
      '2025-01-13T12:00:00.000Z',
      '2025-01-20T12:00:00.000Z',
    ]);
    expect(nextIso('cron(0 0 ? * 1 *)', '2025-01-01T00:00:00Z')).toBe('2025-01-05T00:00:00.000Z'); // Sunday
    expect(nextIso('cron(0 0 ? * 7 *)', '2025-01-01T00:00:00Z')).toBe('2025-01-04T00:00:00.000Z'); // Saturday
    expect(series('cron(0 0 ? * 2-6 *)', '2025-01-03T01:00:00Z', 2)).toEqual([
      '2025-01-06T00:00:00.000Z',
      '2025-01-07T00:00:00.000Z',
    ]);
    // 2/2 = MON, WED, FRI (a naive shift of the step start would give SUN too).
    expect(series('cron(0 0 ? * 2/2 *)', '2025-01-03T01:00:00Z', 4)).toEqual([
      '2025-01-06T00:00:00.000Z',
      '2025-01-08T00:00:00.000Z',
      '2025-01-10T00:00:00.000Z',
      '2025-01-13T00:00:00.000Z',
    ]);
  });

  test('cron: ?, names, L, #, W', () => {
    expect(series('cron(0 3 * * ? *)', '2025-01-01T03:00:00Z', 2)).toEqual([
      '2025-01-02T03:00:00.000Z',
      '2025-01-03T03:00:00.000Z',
    ]);
    // From Friday 10:00: next weekday 09:30 is Monday.
    expect(nextIso('cron(30 9 ? * MON-FRI *)', '2025-01-03T10:00:00Z')).toBe('2025-01-06T09:30:00.000Z');
    expect(nextIso('cron(0 0 1 JAN ? *)', '2025-02-01T00:00:00Z')).toBe('2026-01-01T00:00:00.000Z');
    expect(nextIso('cron(*/15 * * * ? *)', '2025-01-01T00:00:00Z')).toBe('2025-01-01T00:15:00.000Z');
    expect(nextIso('cron(0 0 L * ? *)', '2025-02-01T00:00:00Z')).toBe('2025-02-28T00:00:00.000Z');
    expect(nextIso('cron(0 0 ? * 6L *)', '2025-01-01T00:00:00Z')).toBe('2025-01-31T00:00:00.000Z'); // last Friday
    expect(nextIso('cron(0 0 ? * 2#1 *)', '2025-01-07T00:00:00Z')).toBe('2025-02-03T00:00:00.000Z'); // 1st Monday
    expect(nextIso('cron(0 0 ? * L *)', '2025-01-01T00:00:00Z')).toBe('2025-01-04T00:00:00.000Z'); // Saturday
    // 2025-02-15 is a Saturday: nearest weekday is Friday the 14th.
    expect(nextIso('cron(0 0 15W * ? *)', '2025-02-01T00:00:00Z')).toBe('2025-02-14T00:00:00.000Z');
    // 2025-02-01 is a Saturday: 1W does not leave the month, so Monday the 3rd.
    expect(nextIso('cron(0 0 1W * ? *)', '2025-01-31T00:00:00Z')).toBe('2025-02-03T00:00:00.000Z');
    // 2025-05-31 is a Saturday.
    expect(nextIso('cron(0 0 LW * ? *)', '2025-05-01T00:00:00Z')).toBe('2025-05-30T00:00:00.000Z');
  });

  test('cron: the year field is honoured', () => {
    expect(series('cron(0 0 1 1 ? 2030)', '2025-06-01T00:00:00Z', 2)).toEqual(['2030-01-01T00:00:00.000Z']);
    expect(nextIso('cron(0 0 1 1 ? 2030)', '2030-01-01T00:00:00Z')).toBeNull();
    expect(nextIso('cron(0 12 1 * ? 2027-2028)', '2025-06-01T00:00:00Z')).toBe('2027-01-01T12:00:00.000Z');
    expect(nextIso('cron(0 12 1 * ? 2027-2028)', '2028-11-15T00:00:00Z')).toBe('2028-12-01T12:00:00.000Z');
    expect(nextIso('cron(0 12 1 * ? 2027-2028)', '2028-12-01T12:00:00Z')).toBeNull();
    expect(series('cron(0 0 1 JAN ? 2030/5)', '2025-01-01T00:00:00Z', 2)).toEqual([
      '2030-01-01T00:00:00.000Z',
      '2035-01-01T00:00:00.000Z',
    ]);
    expect(nextIso('cron(0 0 29 2 ? *)', '2025-01-01T00:00:00Z')).toBe('2028-02-29T00:00:00.000Z');
  });

  test('at() fires once', () => {
    const at = parseScheduleExpression('at(2030-05-01T10:00:00)');
    expect(at.next(D('2025-01-01T00:00:00Z'))?.toISOString()).toBe('2030-05-01T10:00:00.000Z');
    expect(at.next(D('2030-05-01T10:00:00Z'))).toBeNull();
  });

  test.each([
    ['rate(1 minutes)', /singular/],
    ['rate(2 hour)', /plural/],
    ['rate(0 minutes)', /at least 1/],
    ['rate(30 seconds)', /minute\(s\), hour\(s\) or day\(s\)/],
    ['cron(0 12 * * *)', /6 fields/],
    ['cron(0 12 * * 2 *)', /exactly one of day-of-month and day-of-week/],
    ['cron(0 12 ? * ? *)', /exactly one of day-of-month and day-of-week/],
    ['cron(0 12 ? * 0 *)', /day-of-week "0"/],
    ['cron(0 12 ? * 8 *)', /day-of-week "8"/],
    ['cron(60 12 * * ? *)', /60/],
    ['cron(0 0 * * ? 1969)', /year/],
    ['cron(0 0 * * ? 2200)', /year/],
    ['cron(0 0 3W,5 * ? *)', /W/],
    ['at(2025-02-30T00:00:00)', /not a valid date/],
    ['at(2025-02-01 00:00:00)', /yyyy-mm-dd/],
    ['every day', /rate\(\.\.\.\), cron\(\.\.\.\) or at\(\.\.\.\)/],
  ])('%s is rejected with a message naming it', (expr, reason) => {
    let error: Error | undefined;
    try {
      parseScheduleExpression(expr);
    } catch (err) {
      error = err as Error;
    }
    expect(error).toBeInstanceOf(Error);
    expect(error!.message).toContain(`"${expr}"`);
    expect(error!.message).toMatch(reason);
  });
});

describe('files', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'paystep-files-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('writeFileAtomic creates parents, replaces content, leaves no temporary file', () => {
    const file = join(dir, 'a', 'b', 'x.json');
    writeFileAtomic(file, '{"v":1}');
    writeFileAtomic(file, Buffer.from('{"v":2}'));
    expect(readFileSync(file, 'utf8')).toBe('{"v":2}');
    expect(readdirSync(join(dir, 'a', 'b'))).toEqual(['x.json']);
  });

  test('readJsonFile: fallback only when missing; corrupt file names the file', () => {
    const file = join(dir, 'state.json');
    expect(readJsonFile(file, { empty: true })).toEqual({ empty: true });
    writeFileSync(file, '{"a":1}');
    expect(readJsonFile(file, {})).toEqual({ a: 1 });
    writeFileSync(file, '{"a":');
    expect(() => readJsonFile(file, {})).toThrow(file);
    mkdirSync(join(dir, 'adir'));
    expect(() => readJsonFile(join(dir, 'adir'), {})).toThrow(/EISDIR/);
  });
});

interface Call {
  fn: string;
  event: Record<string, unknown>;
}

describe('LocalScheduler', () => {
  let dataDir: string;
  let schedulers: LocalScheduler[];
  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'paystep-scheduler-'));
    schedulers = [];
  });
  afterEach(async () => {
    for (const s of schedulers) await s.stop();
    jest.useRealTimers();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const daily: ScheduleDef = {
    description: 'daily',
    expression: 'cron(0 3 * * ? *)',
    target: { function: 'report' },
    input: { day: '<aws.scheduler.scheduled-time>' },
  };

  /** A scheduler recording its invocations; `impl` decides each call's outcome. */
  function make(
    schedules: Record<string, ScheduleDef>,
    opts: Partial<LocalSchedulerOptions> & { impl?: (call: Call, n: number) => Promise<unknown> } = {},
  ) {
    const calls: Call[] = [];
    const { impl, ...rest } = opts;
    const scheduler = new LocalScheduler({
      dataDir,
      schedules,
      invoke: (fn, event) => {
        const call = { fn, event: event as Record<string, unknown> };
        calls.push(call);
        return impl ? impl(call, calls.length) : Promise.resolve({ ok: true });
      },
      ...rest,
    });
    schedulers.push(scheduler);
    return { scheduler, calls };
  }
  const statusOf = (s: LocalScheduler, name: string) =>
    s.status().find((x) => x.name === name) as ScheduleStatus;
  const advance = (ms: number) => jest.advanceTimersByTimeAsync(ms);

  test('time scaling (real time): rate(1 hour) at timeScale 36000 fires about every 100 ms', async () => {
    const { scheduler, calls } = make(
      {
        hourly: {
          description: 'h',
          expression: 'rate(1 hour)',
          target: { function: 'f' },
          input: { at: '<aws.scheduler.scheduled-time>' },
        },
      },
      { timeScale: 36_000 },
    );
    scheduler.start();
    await new Promise((r) => setTimeout(r, 550));
    await scheduler.stop();
    expect(calls.length).toBeGreaterThanOrEqual(4);
    expect(calls.length).toBeLessThanOrEqual(6);
    const times = calls.map((c) => Date.parse(c.event.at as string));
    for (const t of times) expect(t % 3_600_000).toBe(0);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBe(3_600_000);
  });

  test('virtual clock (injected time): timeScale 86400 fires a daily schedule each real second', async () => {
    jest.useFakeTimers({ now: D('2025-01-01T00:00:00Z') });
    const { scheduler, calls } = make({ daily }, { timeScale: 86_400 });
    scheduler.start();
    await advance(3000);
    expect(calls.map((c) => c.event.day)).toEqual([
      '2025-01-01T03:00:00Z',
      '2025-01-02T03:00:00Z',
      '2025-01-03T03:00:00Z',
    ]);
    expect(statusOf(scheduler, 'daily').nextFireTime).toBe('2025-01-04T03:00:00.000Z');
  });

  test('event: input with the Scheduler context attributes resolved; default {}', async () => {
    jest.useFakeTimers({ now: D('2025-01-01T00:00:30Z') });
    const { scheduler, calls } = make({
      withInput: {
        description: 'x',
        expression: 'rate(1 minute)',
        target: { function: 'f1' },
        input: {
          kind: 'sweep',
          nested: { label: 'run at <aws.scheduler.scheduled-time> #<aws.scheduler.attempt-number>' },
          arn: '<aws.scheduler.schedule-arn>',
          id: '<aws.scheduler.execution-id>',
        },
      },
      bare: { description: 'y', expression: 'rate(1 minute)', target: { function: 'f2' } },
    });
    scheduler.start();
    await advance(30_000);
    const withInput = calls.find((c) => c.fn === 'f1')!;
    expect(withInput.event).toEqual({
      kind: 'sweep',
      nested: { label: 'run at 2025-01-01T00:01:00Z #1' },
      arn: expect.stringMatching(
        /^arn:aws:scheduler:[a-z0-9-]+:000000000000:schedule\/default\/paystep-withInput$/,
      ),
      id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/),
    });
    expect(calls.find((c) => c.fn === 'f2')!.event).toEqual({});
  });

  test('restart: no double fire, one catch-up for missed occurrences, none for a new schedule', async () => {
    jest.useFakeTimers({ now: D('2025-01-01T02:59:00Z') });
    const stateFile = join(dataDir, 'scheduler.json');
    const persistedAtCall: unknown[] = [];
    const impl = async () => {
      persistedAtCall.push(JSON.parse(readFileSync(stateFile, 'utf8')).schedules.daily.lastFireTime);
      return 'done';
    };
    const a = make({ daily }, { impl });
    a.scheduler.start();
    await advance(120_000);
    expect(a.calls.map((c) => c.event.day)).toEqual(['2025-01-01T03:00:00Z']);
    // Recorded before the target ran.
    expect(persistedAtCall).toEqual(['2025-01-01T03:00:00.000Z']);
    await a.scheduler.stop();

    // The clock is behind the recorded occurrence (as after a time-scaled run): not fired again.
    jest.setSystemTime(D('2025-01-01T02:59:30Z'));
    const b = make({ daily });
    b.scheduler.start();
    await advance(120_000);
    expect(b.calls).toHaveLength(0);
    await b.scheduler.stop();

    // Down from 01-01 03:01 to 01-05 12:00: four occurrences missed, one catch-up (the latest).
    jest.setSystemTime(D('2025-01-05T12:00:00Z'));
    const c = make({ daily });
    c.scheduler.start();
    await advance(0);
    expect(c.calls.map((x) => x.event.day)).toEqual(['2025-01-05T03:00:00Z']);
    await advance(14 * 3_600_000); // to 01-06 02:00
    expect(c.calls).toHaveLength(1);
    await advance(3_600_000); // 01-06 03:00
    expect(c.calls.map((x) => x.event.day)).toEqual(['2025-01-05T03:00:00Z', '2025-01-06T03:00:00Z']);
    expect(statusOf(c.scheduler, 'daily')).toMatchObject({
      lastFireTime: '2025-01-06T03:00:00.000Z',
      nextFireTime: '2025-01-07T03:00:00.000Z',
      lastResult: { ok: true, scheduledTime: '2025-01-06T03:00:00.000Z', attempts: 1, manual: false },
    });

    // A schedule never run before owes nothing from before its first start.
    rmSync(stateFile);
    const d = make({ daily });
    d.scheduler.start();
    await advance(60_000);
    expect(d.calls).toHaveLength(0);
  });

  test('an at() schedule fires once, also across a restart', async () => {
    jest.useFakeTimers({ now: D('2025-01-01T00:00:00Z') });
    const once: ScheduleDef = {
      description: 'o',
      expression: 'at(2025-01-01T00:01:00)',
      target: { function: 'f' },
    };
    const a = make({ once });
    a.scheduler.start();
    await advance(120_000);
    expect(a.calls).toHaveLength(1);
    await a.scheduler.stop();
    jest.setSystemTime(D('2025-01-01T00:00:00Z'));
    const b = make({ once });
    b.scheduler.start();
    await advance(120_000);
    expect(b.calls).toHaveLength(0);
    expect(statusOf(b.scheduler, 'once').nextFireTime).toBeNull();
  });

  test('a failing target is retried 3 times with backoff, then recorded; the schedule goes on', async () => {
    jest.useFakeTimers({ now: D('2025-01-01T00:59:00Z') });
    const { scheduler, calls } = make(
      { hourly: { description: 'h', expression: 'rate(1 hour)', target: { function: 'f' } } },
      { impl: () => Promise.reject(new Error('boom')) },
    );
    scheduler.start();
    await advance(60_000);
    expect(calls).toHaveLength(1);
    await advance(29_999);
    expect(calls).toHaveLength(1);
    await advance(1);
    expect(calls).toHaveLength(2);
    expect(calls[1]!.event).toEqual({});
    await advance(60_000);
    expect(calls).toHaveLength(3);
    await advance(120_000);
    expect(calls).toHaveLength(4);
    await advance(20 * 60_000);
    expect(calls).toHaveLength(4);
    expect(statusOf(scheduler, 'hourly')).toMatchObject({
      running: false,
      lastFireTime: '2025-01-01T01:00:00.000Z',
      lastResult: { ok: false, attempts: 4, error: 'boom', scheduledTime: '2025-01-01T01:00:00.000Z' },
    });
    const persisted = JSON.parse(readFileSync(join(dataDir, 'scheduler.json'), 'utf8'));
    expect(persisted.schedules.hourly.lastResult).toMatchObject({ ok: false, error: 'boom' });
    await advance(36 * 60_000 + 40_000); // 02:00:10
    expect(calls).toHaveLength(5);
    expect(statusOf(scheduler, 'hourly').lastFireTime).toBe('2025-01-01T02:00:00.000Z');
  });

  test('retry backoff is scaled by timeScale; a later success is recorded', async () => {
    jest.useFakeTimers({ now: D('2025-01-01T00:59:00Z') });
    const { scheduler, calls } = make(
      { hourly: { description: 'h', expression: 'rate(1 hour)', target: { function: 'f' } } },
      {
        timeScale: 60,
        impl: (_c, n) => (n < 3 ? Promise.reject(new Error(`fail ${n}`)) : Promise.resolve('ok')),
      },
    );
    scheduler.start();
    await advance(1000); // 60 virtual seconds
    expect(calls).toHaveLength(1);
    await advance(499);
    expect(calls).toHaveLength(1);
    await advance(1); // 30 virtual seconds
    expect(calls).toHaveLength(2);
    await advance(1000); // 60 virtual seconds
    expect(calls).toHaveLength(3);
    expect(calls.map((c) => c.fn)).toEqual(['f', 'f', 'f']);
    expect(statusOf(scheduler, 'hourly').lastResult).toMatchObject({ ok: true, attempts: 3 });
  });

  test('overlap: an occurrence due while the previous one runs is skipped; stop() waits', async () => {
    jest.useFakeTimers({ now: D('2025-01-01T00:00:30Z') });
    const releases: (() => void)[] = [];
    const { scheduler, calls } = make(
      { minutely: { description: 'm', expression: 'rate(1 minute)', target: { function: 'f' } } },
      { impl: () => new Promise<void>((resolve) => releases.push(resolve)) },
    );
    try {
      scheduler.start();
      await advance(30_000); // 00:01 fires
      expect(calls).toHaveLength(1);
      await advance(120_000); // 00:02 and 00:03 skipped
      expect(calls).toHaveLength(1);
      expect(statusOf(scheduler, 'minutely')).toMatchObject({ running: true, skipped: 2 });
      releases[0]!();
      await advance(60_000); // 00:04 fires
      expect(calls).toHaveLength(2);
      expect(statusOf(scheduler, 'minutely').lastFireTime).toBe('2025-01-01T00:04:00.000Z');

      let stopped = false;
      const stopping = scheduler.stop().then(() => (stopped = true));
      await advance(0);
      expect(stopped).toBe(false);
      releases[1]!();
      await stopping;
      expect(stopped).toBe(true);
      expect(statusOf(scheduler, 'minutely').lastResult).toMatchObject({ ok: true });
    } finally {
      for (const release of releases) release(); // never leave stop() waiting
    }
  });

  test('runNow invokes once and returns the result or throws; status records it', async () => {
    const fixed = Date.parse('2025-01-01T00:00:00Z');
    let fail = false;
    const { scheduler, calls } = make(
      {
        weekly: {
          description: 'w',
          expression: 'cron(0 12 ? * 2 *)',
          target: { function: 'wk' },
          input: { at: '<aws.scheduler.scheduled-time>' },
        },
      },
      {
        now: () => fixed,
        impl: () => (fail ? Promise.reject(new Error('nope')) : Promise.resolve({ rows: 3 })),
      },
    );
    expect(statusOf(scheduler, 'weekly')).toMatchObject({
      expression: 'cron(0 12 ? * 2 *)',
      target: 'wk',
      nextFireTime: '2025-01-06T12:00:00.000Z',
      lastFireTime: null,
      lastResult: null,
    });
    await expect(scheduler.runNow('weekly')).resolves.toEqual({ rows: 3 });
    expect(calls).toEqual([{ fn: 'wk', event: { at: '2025-01-01T00:00:00Z' } }]);
    expect(statusOf(scheduler, 'weekly')).toMatchObject({
      lastFireTime: null,
      lastResult: { ok: true, manual: true },
    });
    fail = true;
    await expect(scheduler.runNow('weekly')).rejects.toThrow('nope');
    expect(calls).toHaveLength(2);
    expect(statusOf(scheduler, 'weekly').lastResult).toMatchObject({
      ok: false,
      manual: true,
      error: 'nope',
    });
    await expect(scheduler.runNow('missing')).rejects.toThrow(/Unknown schedule "missing"/);
  });

  test('constructor: invalid expression names the schedule; corrupt state names the file', () => {
    expect(() =>
      make({ bad: { description: 'b', expression: 'cron(0 3 * * * *)', target: { function: 'f' } } }),
    ).toThrow(/Schedule "bad": Invalid schedule expression "cron\(0 3 \* \* \* \*\)"/);
    writeFileSync(join(dataDir, 'scheduler.json'), '{ not json');
    expect(() => make({ daily })).toThrow(join(dataDir, 'scheduler.json'));
  });
});
