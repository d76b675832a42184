/**
 * The local stand-in for Amazon EventBridge Scheduler: fires the topology's `schedules` at their
 * target functions.
 *
 * Expressions (`parseScheduleExpression`), all in UTC like a schedule without a time zone:
 * - `rate(1 minute | N minutes | 1 hour | N hours | 1 day | N days)`. Occurrences are aligned on
 *   multiples of the period since the Unix epoch (rate(1 hour) fires on the hour, rate(1 day) at
 *   00:00 UTC). AWS anchors a rate on the schedule's creation time instead; aligning on the epoch
 *   keeps occurrences identical across restarts, which the no-double-fire rule relies on.
 * - `cron(minutes hours day-of-month month day-of-week year)`: exactly one of day-of-month and
 *   day-of-week must be `?`; day-of-week is numbered 1-7 = SUN-SAT as in AWS (converted to
 *   cron-parser's 0-6) or named SUN-SAT; months 1-12 or JAN-DEC; `L` (last day of the month;
 *   `L` alone in day-of-week is Saturday, `nL` the last such weekday of the month), `n#k` (k-th
 *   such weekday), `nW` and `LW` (nearest weekday, within the month) in day-of-month; the year
 *   field (1970-2199) takes `*`, values, ranges, lists and steps.
 * - `at(yyyy-mm-ddThh:mm:ss)`: once.
 *
 * The scheduler (`LocalScheduler`):
 * - Event: the schedule's `input` (default `{}`), with the context attributes EventBridge
 *   Scheduler substitutes resolved inside the input's text: `<aws.scheduler.schedule-arn>`
 *   (`arn:aws:scheduler:<AWS_REGION|us-east-1>:000000000000:schedule/default/paystep-<name>`),
 *   `<aws.scheduler.scheduled-time>` (the occurrence's time, `2025-01-01T03:00:00Z`, virtual when
 *   time is scaled), `<aws.scheduler.execution-id>` (a new UUID per attempt) and
 *   `<aws.scheduler.attempt-number>` (1 for the first attempt). Nothing else is added: a handler
 *   that wants the scheduled time puts `<aws.scheduler.scheduled-time>` in the schedule's input.
 * - Time scaling: with `timeScale` S the scheduler runs on a virtual clock that starts at the real
 *   time of `start()` and runs S times faster (virtual = start + (real - start) × S). Every time
 *   it reports (status, scheduled-time) is virtual; with S = 1 it is the wall clock.
 * - Durability: `${dataDir}/scheduler.json` records per schedule the occurrence up to which
 *   everything was handled, and it is written (atomically) BEFORE the target is invoked: an
 *   occurrence is never fired twice, even across a crash (at-most-once, where AWS is
 *   at-least-once). A schedule seen for the first time (or whose expression changed) starts at
 *   the time it is first seen: nothing before it is owed.
 * - Missed occurrences: whenever several occurrences are due at once (the runtime was down, the
 *   event loop stalled, or time runs faster than the timers), only the most recent one is fired,
 *   once; the older ones are logged and dropped. So after downtime a schedule makes at most ONE
 *   catch-up invocation (like a flexible time window), carrying that occurrence's scheduled time.
 *   If the recorded occurrence lies in the future of the clock (an earlier run used a larger
 *   timeScale), occurrences up to it are not fired again: delete scheduler.json to reset.
 * - Failures: a failed invocation (rejected promise) is retried up to 3 times after 30 s, 60 s and
 *   120 s of virtual time (so divided by the time scale), then logged as an error and recorded in
 *   `status()`. It never throws out of the scheduler. `stop()` cancels pending retries.
 * - Overlap: an occurrence that comes due while the previous invocation of the same schedule
 *   (retries included, or a `runNow`) is still running is skipped and logged.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { CronExpressionParser } from 'cron-parser';
import type { ScheduleDef } from '../topology.ts';
import { readJsonFile, writeFileAtomic } from './files.ts';
import { createLogger, type Logger } from './log.ts';

// ---------------------------------------------------------------------------------------------
// Expressions
// ---------------------------------------------------------------------------------------------

export interface ParsedSchedule {
  readonly expression: string;
  readonly kind: 'rate' | 'cron' | 'at';
  /** First occurrence strictly after `after`, or null when there is none. */
  next(after: Date): Date | null;
  /** Last occurrence strictly before `before`, or null when there is none. */
  prev(before: Date): Date | null;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const MIN_YEAR = 1970;
const MAX_YEAR = 2199;

class InvalidExpression extends Error {}

/** Parses an EventBridge Scheduler expression; throws an Error naming the expression if invalid. */
export function parseScheduleExpression(expr: string): ParsedSchedule {
  if (typeof expr !== 'string') throw new Error(`Invalid schedule expression ${String(expr)}: not a string`);
  const m = /^\s*(rate|cron|at)\((.*)\)\s*$/s.exec(expr);
  try {
    if (!m) throw new InvalidExpression('expected rate(...), cron(...) or at(...)');
    const kind = m[1] as 'rate' | 'cron' | 'at';
    const body = m[2]!.trim();
    const engine = kind === 'rate' ? parseRate(body) : kind === 'cron' ? parseCron(body) : parseAt(body);
    return {
      expression: expr,
      kind,
      next: (after) => toDate(engine(after.getTime(), 1)),
      prev: (before) => toDate(engine(before.getTime(), -1)),
    };
  } catch (err) {
    throw new Error(`Invalid schedule expression "${expr}": ${(err as Error).message}`, { cause: err });
  }
}

type Engine = (from: number, dir: 1 | -1) => number | null;

const toDate = (t: number | null) => (t === null ? null : new Date(t));

function parseRate(body: string): Engine {
  const m = /^(\d+)\s+(minute|minutes|hour|hours|day|days)$/.exec(body);
  if (!m) throw new InvalidExpression('expected rate(value unit) with unit minute(s), hour(s) or day(s)');
  const value = Number(m[1]);
  const unit = m[2]!;
  if (!Number.isSafeInteger(value) || value < 1)
    throw new InvalidExpression('the rate value must be at least 1');
  const plural = unit.endsWith('s');
  if (value === 1 && plural)
    throw new InvalidExpression(`a value of 1 takes the singular unit (1 ${unit.slice(0, -1)})`);
  if (value > 1 && !plural)
    throw new InvalidExpression(`a value above 1 takes the plural unit (${value} ${unit}s)`);
  const period = value * (unit.startsWith('minute') ? MINUTE : unit.startsWith('hour') ? HOUR : DAY);
  return (from, dir) =>
    dir > 0 ? (Math.floor(from / period) + 1) * period : (Math.ceil(from / period) - 1) * period;
}

function parseAt(body: string): Engine {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/.exec(body);
  if (!m) throw new InvalidExpression('expected at(yyyy-mm-ddThh:mm:ss)');
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const t = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(t);
  if (
    back.getUTCFullYear() !== y ||
    back.getUTCMonth() !== mo - 1 ||
    back.getUTCDate() !== d ||
    back.getUTCHours() !== h ||
    back.getUTCMinutes() !== mi ||
    back.getUTCSeconds() !== s
  ) {
    throw new InvalidExpression(`${body} is not a valid date and time`);
  }
  return (from, dir) => (dir > 0 ? (t > from ? t : null) : t < from ? t : null);
}

/** The allowed years of a cron year field. */
class YearSet {
  readonly #allowed: boolean[] = [];
  constructor(field: string) {
    for (const item of field.split(',')) {
      const m = /^(\*|\d{4})(?:-(\d{4}))?(?:\/(\d+))?$/.exec(item);
      if (!m) throw new InvalidExpression(`invalid year field "${field}"`);
      const star = m[1] === '*';
      if (star && m[2]) throw new InvalidExpression(`invalid year field "${field}"`);
      const lo = star ? MIN_YEAR : Number(m[1]);
      const hi = star ? MAX_YEAR : m[2] ? Number(m[2]) : m[3] ? MAX_YEAR : lo;
      const step = m[3] ? Number(m[3]) : 1;
      if (lo < MIN_YEAR || hi > MAX_YEAR) {
        throw new InvalidExpression(`year field "${field}" outside ${MIN_YEAR}-${MAX_YEAR}`);
      }
      if (lo > hi) throw new InvalidExpression(`year range ${lo}-${hi} is reversed`);
      if (step < 1) throw new InvalidExpression(`invalid year step in "${field}"`);
      for (let y = lo; y <= hi; y += step) this.#allowed[y - MIN_YEAR] = true;
    }
  }
  has(y: number): boolean {
    return this.#allowed[y - MIN_YEAR] === true;
  }
  /** Nearest allowed year strictly after (dir 1) or before (dir -1) `y`. */
  step(y: number, dir: 1 | -1): number | null {
    for (
      let c = Math.max(MIN_YEAR - 1, Math.min(MAX_YEAR + 1, y)) + dir;
      c >= MIN_YEAR && c <= MAX_YEAR;
      c += dir
    ) {
      if (this.has(c)) return c;
    }
    return null;
  }
}

const DAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

/** AWS day-of-week (1-7 = SUN-SAT, names) to cron-parser's (0-6). */
function convertDayOfWeek(field: string): string {
  if (field === '?' || field === '*') return '*';
  const day = (token: string): number => {
    const name = DAY_NAMES.indexOf(token.toUpperCase());
    if (name >= 0) return name;
    const n = /^\d+$/.test(token) ? Number(token) : NaN;
    if (!(n >= 1 && n <= 7)) throw new InvalidExpression(`invalid day-of-week "${token}" (1-7 = SUN-SAT)`);
    return n - 1;
  };
  const D = '(\\d+|[A-Za-z]{3})';
  return field
    .split(',')
    .map((item) => {
      if (item === 'L') return '6';
      let m = new RegExp(`^${D}L$`).exec(item);
      if (m) return `${day(m[1]!)}L`;
      m = new RegExp(`^${D}#(\\d+)$`).exec(item);
      if (m) return `${day(m[1]!)}#${m[2]}`;
      m = /^\*\/(\d+)$/.exec(item);
      if (m) return `0-6/${m[1]}`;
      m = new RegExp(`^${D}(?:-${D})?(?:/(\\d+))?$`).exec(item);
      if (!m) throw new InvalidExpression(`invalid day-of-week "${item}"`);
      const lo = day(m[1]!);
      const hi = m[2] !== undefined ? day(m[2]) : m[3] !== undefined ? 6 : undefined;
      if (hi !== undefined && lo > hi) throw new InvalidExpression(`day-of-week range "${item}" is reversed`);
      return `${lo}${hi !== undefined ? `-${hi}` : ''}${m[3] !== undefined ? `/${m[3]}` : ''}`;
    })
    .join(',');
}

function parseCron(body: string): Engine {
  const fields = body.split(/\s+/);
  if (fields.length !== 6) {
    throw new InvalidExpression(
      `expected 6 fields (minutes hours day-of-month month day-of-week year), got ${fields.length}`,
    );
  }
  const [minute, hour, dom, month, dow, year] = fields as [string, string, string, string, string, string];
  if ((dom === '?') === (dow === '?')) {
    throw new InvalidExpression('exactly one of day-of-month and day-of-week must be "?"');
  }
  if (!/^[0-9LW,\-*?/]+$/.test(dom)) throw new InvalidExpression(`invalid day-of-month "${dom}"`);
  const years = new YearSet(year);
  let weekday: number | 'L' | undefined;
  if (dom.includes('W')) {
    const w = /^(\d{1,2}|L)W$/.exec(dom);
    if (!w) throw new InvalidExpression(`invalid day-of-month "${dom}": W takes the form nW or LW`);
    weekday = w[1] === 'L' ? 'L' : Number(w[1]);
    if (weekday !== 'L' && (weekday < 1 || weekday > 31))
      throw new InvalidExpression(`invalid day-of-month "${dom}"`);
  }
  const cronDom = dom === '?' || weekday !== undefined ? '*' : dom;
  const spec = `0 ${minute} ${hour} ${cronDom} ${month} ${convertDayOfWeek(dow)}`;
  let months: Set<number>;
  try {
    months = new Set(CronExpressionParser.parse(spec, { tz: 'UTC' }).fields.month.values.map(Number));
  } catch (err) {
    throw new InvalidExpression((err as Error).message);
  }
  const step = (from: number, dir: 1 | -1): number | null => {
    try {
      const it = CronExpressionParser.parse(spec, { currentDate: new Date(from), tz: 'UTC' });
      return (dir > 0 ? it.next() : it.prev()).getTime();
    } catch {
      return null; // no occurrence within cron-parser's search limit
    }
  };
  if (weekday !== undefined) return weekdayEngine(weekday, months, years, step);
  return (from, dir) => {
    let cursor = from;
    for (let i = 0; i < 1000; i++) {
      const t = step(cursor, dir);
      if (t === null) return null;
      const y = new Date(t).getUTCFullYear();
      if (years.has(y)) return t;
      const ny = years.step(y, dir);
      if (ny === null) return null;
      cursor = dir > 0 ? Date.UTC(ny, 0, 1) - 1 : Date.UTC(ny + 1, 0, 1);
    }
    return null;
  };
}

/** `nW` / `LW`: the weekday nearest to day n (or the last day) of each month, within that month. */
function weekdayEngine(
  target: number | 'L',
  months: Set<number>,
  years: YearSet,
  step: (from: number, dir: 1 | -1) => number | null,
): Engine {
  const weekdayOf = (y: number, m: number): number | null => {
    const last = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
    const day = target === 'L' ? last : target;
    if (day > last) return null;
    const wd = new Date(Date.UTC(y, m, day)).getUTCDay();
    if (wd === 6) return day === 1 ? 3 : day - 1;
    if (wd === 0) return day === last ? day - 2 : day + 1;
    return day;
  };
  return (from, dir) => {
    const start = new Date(
      Math.min(Math.max(from, Date.UTC(MIN_YEAR - 1, 11, 1)), Date.UTC(MAX_YEAR + 1, 0, 1)),
    );
    let y = start.getUTCFullYear();
    let m = start.getUTCMonth();
    while (y >= MIN_YEAR - 1 && y <= MAX_YEAR + 1) {
      const day = years.has(y) && months.has(m + 1) ? weekdayOf(y, m) : null;
      if (day !== null) {
        const dayStart = Date.UTC(y, m, day);
        const dayEnd = dayStart + DAY;
        if (dir > 0 && dayEnd > from) {
          const t = step(Math.max(from, dayStart - 1), 1);
          if (t !== null && t < dayEnd) return t;
        } else if (dir < 0 && dayStart < from) {
          const t = step(Math.min(from, dayEnd), -1);
          if (t !== null && t >= dayStart) return t;
        }
      }
      m += dir;
      if (m > 11) [y, m] = [y + 1, 0];
      if (m < 0) [y, m] = [y - 1, 11];
    }
    return null;
  };
}

// ---------------------------------------------------------------------------------------------
// Scheduler
// ---------------------------------------------------------------------------------------------

export const SCHEDULER_STATE_FILE = 'scheduler.json';
/** Virtual delays before the retries of a failed invocation (divided by the time scale). */
export const RETRY_DELAYS_MS: readonly number[] = [30_000, 60_000, 120_000];
/** Longest real timer; the clock is re-read at least this often. */
const MAX_TIMER_MS = 60_000;

export interface LocalSchedulerOptions {
  dataDir: string;
  schedules: Record<string, ScheduleDef>;
  invoke: (functionName: string, event: unknown) => Promise<unknown>;
  /** Virtual seconds per real second (default 1). */
  timeScale?: number;
  /** Real clock, epoch ms (default Date.now). */
  now?: () => number;
  logger?: Logger;
}

export interface ScheduleResult {
  ok: boolean;
  /** The occurrence's scheduled time (for `runNow`, the time of the run); virtual ISO. */
  scheduledTime: string;
  /** When the last attempt ended; virtual ISO. */
  finishedAt: string;
  attempts: number;
  /** Started by `runNow`. */
  manual: boolean;
  /** Message of the last attempt's error when `ok` is false. */
  error?: string;
}

export interface ScheduleStatus {
  name: string;
  expression: string;
  target: string;
  /** Virtual ISO time of the next occurrence (null: none, e.g. a past at()). */
  nextFireTime: string | null;
  /** Virtual ISO scheduled time of the last occurrence fired (manual runs excluded). */
  lastFireTime: string | null;
  lastResult: ScheduleResult | null;
  /** An invocation of this schedule is in progress. */
  running: boolean;
  /** Occurrences skipped since start() (overlap, or dropped because a later one was due too). */
  skipped: number;
}

interface PersistedSchedule {
  expression: string;
  /** Virtual time the scheduler first ran the schedule: nothing before it is owed. */
  registeredAt: string | null;
  /** Every occurrence at or before this (virtual) time has been fired or deliberately skipped. */
  handledThrough: string | null;
  lastFireTime: string | null;
  lastResult: ScheduleResult | null;
}

interface PersistedState {
  version: 1;
  schedules: Record<string, PersistedSchedule>;
}

interface Entry {
  name: string;
  def: ScheduleDef;
  parsed: ParsedSchedule;
  nextDue: number | null;
  running: number;
  skipped: number;
}

const iso = (t: number) => new Date(t).toISOString();
/** EventBridge Scheduler's format of <aws.scheduler.scheduled-time>: seconds precision. */
const awsTime = (t: number) => new Date(Math.floor(t / 1000) * 1000).toISOString().replace('.000Z', 'Z');

export class LocalScheduler {
  readonly #invoke: LocalSchedulerOptions['invoke'];
  readonly #scale: number;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #stateFile: string;
  readonly #entries = new Map<string, Entry>();
  readonly #state: PersistedState;
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #sleeps = new Set<{ timer: NodeJS.Timeout; resolve: (completed: boolean) => void }>();
  #timer: NodeJS.Timeout | undefined;
  #started = false;
  #startReal = 0;

  constructor(options: LocalSchedulerOptions) {
    const scale = options.timeScale ?? 1;
    if (!(Number.isFinite(scale) && scale > 0))
      throw new Error(`timeScale must be a positive number, got ${scale}`);
    this.#scale = scale;
    this.#invoke = options.invoke;
    this.#now = options.now ?? (() => Date.now());
    this.#log = (options.logger ?? createLogger()).child({ component: 'scheduler' });
    this.#stateFile = join(options.dataDir, SCHEDULER_STATE_FILE);
    for (const [name, def] of Object.entries(options.schedules)) {
      let parsed: ParsedSchedule;
      try {
        parsed = parseScheduleExpression(def.expression);
      } catch (err) {
        throw new Error(`Schedule "${name}": ${(err as Error).message}`, { cause: err });
      }
      this.#entries.set(name, { name, def, parsed, nextDue: null, running: 0, skipped: 0 });
    }
    const state = readJsonFile<PersistedState>(this.#stateFile, { version: 1, schedules: {} });
    if (state?.version !== 1 || typeof state.schedules !== 'object' || state.schedules === null) {
      throw new Error(`Unrecognised scheduler state in ${this.#stateFile} (expected version 1)`);
    }
    this.#state = state;
  }

  /** Starts the virtual clock and the timers; fires at most one catch-up occurrence per schedule. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#startReal = this.#now();
    const now = this.#virtualNow();
    for (const entry of this.#entries.values()) {
      let rec = this.#state.schedules[entry.name];
      if (rec && rec.expression !== entry.def.expression) {
        this.#log.info(
          { schedule: entry.name, was: rec.expression },
          'schedule expression changed: starts afresh',
        );
        rec = { ...rec, expression: entry.def.expression, registeredAt: null, handledThrough: null };
      }
      rec ??= {
        expression: entry.def.expression,
        registeredAt: null,
        handledThrough: null,
        lastFireTime: null,
        lastResult: null,
      };
      // First run of this schedule: nothing before now is owed.
      if (!rec.registeredAt && !rec.handledThrough) rec.registeredAt = iso(now);
      this.#state.schedules[entry.name] = rec;
      const cursor = Date.parse((rec.handledThrough ?? rec.registeredAt)!);
      if (cursor > now) {
        this.#log.warn(
          { schedule: entry.name, handledThrough: iso(cursor) },
          'recorded occurrences lie ahead of the clock (earlier run with a larger timeScale?); they are not fired again',
        );
      }
      entry.nextDue = entry.parsed.next(new Date(cursor))?.getTime() ?? null;
      entry.skipped = 0;
    }
    this.#persist();
    this.#log.info({ schedules: this.#entries.size, timeScale: this.#scale }, 'scheduler started');
    this.#tick(true);
  }

  /** Stops the timers, cancels pending retries and waits for the invocations in progress. */
  async stop(): Promise<void> {
    this.#started = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const sleep of this.#sleeps) {
      clearTimeout(sleep.timer);
      sleep.resolve(false);
    }
    this.#sleeps.clear();
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
    this.#persist();
  }

  /**
   * Invokes a schedule's target now (once, no retry) and returns its result or throws its error.
   * The result is recorded in status(); the schedule's occurrences are not affected, except that
   * one coming due while this runs is skipped as an overlap.
   */
  async runNow(name: string): Promise<unknown> {
    const entry = this.#entries.get(name);
    if (!entry) {
      throw new Error(
        `Unknown schedule "${name}" (known: ${[...this.#entries.keys()].join(', ') || 'none'})`,
      );
    }
    const scheduled = this.#virtualNow();
    entry.running++;
    const run = (async () => {
      try {
        const result = await this.#invoke(entry.def.target.function, this.#event(entry, scheduled, 1));
        this.#record(entry, { ok: true, scheduledTime: iso(scheduled), attempts: 1, manual: true });
        return result;
      } catch (err) {
        this.#record(entry, {
          ok: false,
          scheduledTime: iso(scheduled),
          attempts: 1,
          manual: true,
          error: errorMessage(err),
        });
        throw err;
      } finally {
        entry.running--;
      }
    })();
    this.#track(run);
    return run;
  }

  status(): ScheduleStatus[] {
    const now = this.#virtualNow();
    return [...this.#entries.values()].map((entry) => {
      const rec = this.#state.schedules[entry.name];
      let next = entry.nextDue;
      if (!this.#started) {
        const recorded = rec && rec.expression === entry.def.expression && rec.handledThrough;
        const from = recorded ? Math.max(now, Date.parse(recorded)) : now;
        next = entry.parsed.next(new Date(from))?.getTime() ?? null;
      }
      return {
        name: entry.name,
        expression: entry.def.expression,
        target: entry.def.target.function,
        nextFireTime: next === null ? null : iso(next),
        lastFireTime: rec?.lastFireTime ?? null,
        lastResult: rec?.lastResult ?? null,
        running: entry.running > 0,
        skipped: entry.skipped,
      };
    });
  }

  #virtualNow(): number {
    const real = this.#now();
    return this.#started ? this.#startReal + (real - this.#startReal) * this.#scale : real;
  }

  /** Fires what is due (the latest due occurrence of each schedule) and re-arms the timer. */
  #tick(catchUp = false): void {
    try {
      const now = this.#virtualNow();
      for (const entry of this.#entries.values()) {
        if (entry.nextDue === null || entry.nextDue > now) continue;
        const latest = Math.max(
          entry.nextDue,
          entry.parsed.prev(new Date(now + 1))?.getTime() ?? entry.nextDue,
        );
        if (latest > entry.nextDue) {
          entry.skipped++;
          this.#log.warn(
            { schedule: entry.name, from: iso(entry.nextDue), to: iso(latest) },
            'several occurrences due at once: firing only the latest',
          );
        }
        this.#fire(entry, latest, catchUp);
      }
    } catch (err) {
      this.#log.error({ err }, 'scheduler tick failed');
    }
    this.#arm();
  }

  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#started) return;
    let earliest = Infinity;
    for (const entry of this.#entries.values())
      if (entry.nextDue !== null) earliest = Math.min(earliest, entry.nextDue);
    if (earliest === Infinity) return;
    const delay = Math.min(Math.max(0, (earliest - this.#virtualNow()) / this.#scale), MAX_TIMER_MS);
    this.#timer = setTimeout(() => this.#tick(), Math.ceil(delay));
    this.#timer.unref?.();
  }

  #fire(entry: Entry, scheduled: number, catchUp: boolean): void {
    entry.nextDue = entry.parsed.next(new Date(scheduled))?.getTime() ?? null;
    const rec = this.#state.schedules[entry.name]!;
    rec.handledThrough = iso(scheduled);
    const log = { schedule: entry.name, scheduledTime: iso(scheduled) };
    if (entry.running > 0) {
      entry.skipped++;
      this.#log.warn(log, 'previous invocation still running: occurrence skipped');
      this.#persist();
      return;
    }
    rec.lastFireTime = iso(scheduled);
    if (!this.#persist()) {
      this.#record(entry, {
        ok: false,
        scheduledTime: iso(scheduled),
        attempts: 0,
        manual: false,
        error: 'not invoked: the scheduler state could not be saved',
      });
      return;
    }
    this.#log.info({ ...log, catchUp }, catchUp ? 'firing catch-up occurrence' : 'firing');
    entry.running++;
    this.#track(
      this.#runWithRetries(entry, scheduled).finally(() => {
        entry.running--;
      }),
    );
  }

  async #runWithRetries(entry: Entry, scheduled: number): Promise<void> {
    let error: unknown;
    let attempt = 0;
    while (attempt <= RETRY_DELAYS_MS.length) {
      if (attempt > 0 && !(await this.#sleep(RETRY_DELAYS_MS[attempt - 1]! / this.#scale))) {
        error = new Error(`scheduler stopped before retry (last error: ${errorMessage(error)})`);
        break;
      }
      attempt++;
      try {
        await this.#invoke(entry.def.target.function, this.#event(entry, scheduled, attempt));
        this.#record(entry, { ok: true, scheduledTime: iso(scheduled), attempts: attempt, manual: false });
        return;
      } catch (err) {
        error = err;
        this.#log.warn({ schedule: entry.name, attempt, err }, 'scheduled invocation failed');
      }
    }
    this.#log.error(
      { schedule: entry.name, scheduledTime: iso(scheduled), attempts: attempt, err: error },
      'scheduled invocation failed after retries',
    );
    this.#record(entry, {
      ok: false,
      scheduledTime: iso(scheduled),
      attempts: attempt,
      manual: false,
      error: errorMessage(error),
    });
  }

  #event(entry: Entry, scheduled: number, attempt: number): unknown {
    const region = process.env.AWS_REGION ?? 'us-east-1';
    const values: Record<string, string> = {
      '<aws.scheduler.schedule-arn>': `arn:aws:scheduler:${region}:000000000000:schedule/default/paystep-${entry.name}`,
      '<aws.scheduler.scheduled-time>': awsTime(scheduled),
      '<aws.scheduler.execution-id>': randomUUID(),
      '<aws.scheduler.attempt-number>': String(attempt),
    };
    const text = JSON.stringify(entry.def.input ?? {}).replace(
      /<aws\.scheduler\.(?:schedule-arn|scheduled-time|execution-id|attempt-number)>/g,
      (p) => values[p]!,
    );
    return JSON.parse(text);
  }

  #record(entry: Entry, result: Omit<ScheduleResult, 'finishedAt'>): void {
    const rec = this.#state.schedules[entry.name];
    const full: ScheduleResult = { ...result, finishedAt: iso(this.#virtualNow()) };
    if (rec) rec.lastResult = full;
    else {
      this.#state.schedules[entry.name] = {
        expression: entry.def.expression,
        registeredAt: null,
        handledThrough: null,
        lastFireTime: null,
        lastResult: full,
      };
    }
    this.#persist();
  }

  /** Writes the state file; false (logged) when it cannot. */
  #persist(): boolean {
    try {
      writeFileAtomic(this.#stateFile, `${JSON.stringify(this.#state, null, 2)}\n`);
      return true;
    } catch (err) {
      this.#log.error({ err, file: this.#stateFile }, 'could not save scheduler state');
      return false;
    }
  }

  #track(p: Promise<unknown>): void {
    const tracked = p.then(
      () => undefined,
      () => undefined,
    );
    this.#inFlight.add(tracked);
    void tracked.finally(() => this.#inFlight.delete(tracked));
  }

  /** Resolves true after `ms`, or false when stop() cancels it. */
  #sleep(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const sleep = {
        timer: setTimeout(() => {
          this.#sleeps.delete(sleep);
          resolve(true);
        }, ms),
        resolve,
      };
      this.#sleeps.add(sleep);
    });
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
