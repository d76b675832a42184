/**
 * Local Step Functions: the same ASL files run by aws-local-stepfunctions, behind an endpoint that
 * speaks the Step Functions API (AWS JSON 1.0) for the calls paystep makes, so handlers use
 * `@aws-sdk/client-sfn` unchanged.
 *
 * Durability (docs/decisions/0002-local-step-functions.md): every execution start, every task
 * result (success, failure, dispatched callback, wait deadline) and every end is appended to a
 * journal before the workflow moves on. After a restart each RUNNING execution is re-driven from
 * its start with its recorded task results replayed instead of invoking the tasks again, so the
 * execution resumes where it was: completed tasks are not repeated, a Wait keeps its original
 * deadline, a callback task keeps its token and is not dispatched twice. Only a task that was in
 * flight at the crash runs again (at-least-once, as a Lambda retry would in AWS).
 *
 * Memory and disk do not grow with history: only running executions are held in memory and in the
 * journal. A finished execution moves to the archive (lib/local/execution-archive.ts: its record
 * compressed on disk, a summary of about 200 bytes in memory) and DescribeExecution,
 * GetExecutionHistory and ListExecutions read it from there. The journal is compacted to the
 * running executions' records at start and, while the runtime runs, whenever it has grown to many
 * times that (JOURNAL_COMPACT_MIN_LINES).
 *
 * This module runs executions (start, replay after a restart, tasks, waits, callback tokens, their
 * end) and answers the API operations; around it: the execution model, errors and tokens
 * (stepfunctions-model.ts), the journal's replay and compaction records (stepfunctions-journal.ts),
 * the history derived from the interpreter's events (stepfunctions-history.ts), running one Task or
 * Wait state (stepfunctions-tasks.ts), the Lambda and SQS task integrations
 * (stepfunctions-integrations.ts) and the HTTP endpoint (stepfunctions-api.ts).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { StateMachine } from 'aws-local-stepfunctions';
import type { StateMachineDefinition } from 'aws-local-stepfunctions';
import { compileDefinition } from './asl.ts';
import type { AslDefinition, CompiledDefinition } from './asl.ts';
import { validateDefinition } from './asl-validation.ts';
import { ExecutionArchive, type FinishedRecord } from './execution-archive.ts';
import { Journal } from './journal.ts';
import { createLogger, type Logger } from './log.ts';
import type { LocalPermissions } from './permissions.ts';
import { listenOn } from './ports.ts';
import { serveStepFunctionsApi } from './stepfunctions-api.ts';
import { historyFromEventLogs } from './stepfunctions-history.ts';
import { finishedRecord, journalRecordsOf, replayJournal } from './stepfunctions-journal.ts';
import { runTask, type TaskHost } from './stepfunctions-tasks.ts';
import {
  LOCAL_ACCOUNT,
  LOCAL_REGION,
  SfnApiError,
  TaskError,
  decodeToken,
  machineArnOfExecution,
  type Execution,
  type ExecutionStatus,
  type HistoryEvent,
  type JournalRecord,
  type Live,
  type Memo,
  type PendingToken,
} from './stepfunctions-model.ts';

export {
  LOCAL_ACCOUNT,
  LOCAL_REGION,
  MAX_TIMER_MS,
  SfnApiError,
  TaskError,
  sleepUntil,
  type ExecutionStatus,
  type HistoryEvent,
} from './stepfunctions-model.ts';

export interface LocalStateMachineDef {
  name: string;
  /** Definition with substitutions already applied. */
  definition: AslDefinition;
  type: 'STANDARD' | 'EXPRESS';
}

export interface StepFunctionsOptions {
  dataDir: string;
  machines: LocalStateMachineDef[];
  /** Physical name of a state machine (ARN suffix). */
  physicalName?: (name: string) => string;
  /** Invokes a function by name or ARN; throws the handler's error. */
  invokeFunction: (functionNameOrArn: string, payload: unknown) => Promise<unknown>;
  /** `arn:aws:states:::sqs:sendMessage` integration. */
  sendMessage?: (queueUrl: string, body: string) => Promise<{ MessageId: string; MD5OfMessageBody?: string }>;
  /** Wait states, retry intervals, task timeouts and heartbeats run this many times faster. */
  timeScale?: number;
  logger?: Logger;
  /**
   * Checks API callers' grants and each task against its state machine's role
   * (lib/local/permissions.ts); none when absent.
   */
  permissions?: LocalPermissions;
  /** Lines after which the journal may be compacted while running (default JOURNAL_COMPACT_MIN_LINES). */
  journalCompactMinLines?: number;
}

const TERMINAL: ExecutionStatus[] = ['SUCCEEDED', 'FAILED', 'ABORTED', 'TIMED_OUT'];
/** The journal is compacted while running once it has this many lines and 4 times its live ones. */
export const JOURNAL_COMPACT_MIN_LINES = 20_000;

export class LocalStepFunctions {
  private readonly opts: StepFunctionsOptions;
  private readonly log: Logger;
  private readonly timeScale: number;
  private readonly machines = new Map<
    string,
    { def: LocalStateMachineDef; arn: string; compiled: CompiledDefinition; sm: StateMachine }
  >();
  private readonly executions = new Map<string, Execution>();
  private readonly live = new Map<string, Live>();
  private readonly tokens = new Map<string, PendingToken>();
  private readonly waiters = new Map<string, (() => void)[]>();
  private readonly journal: Journal<JournalRecord>;
  private readonly archive: ExecutionArchive<HistoryEvent>;
  /** Lines in the journal file (to decide when to compact it). */
  private journalLines = 0;
  private compactScheduled = false;
  private historyBuffer: JournalRecord[] = [];
  private flushScheduled = false;
  private server?: http.Server;
  private stopping = false;
  private readonly taskHost: TaskHost;

  constructor(opts: StepFunctionsOptions) {
    this.opts = opts;
    this.timeScale = opts.timeScale ?? 1;
    if (!(this.timeScale > 0)) throw new Error(`time scale must be a positive number, got ${opts.timeScale}`);
    this.log = opts.logger ?? createLogger('stepfunctions');
    this.taskHost = {
      timeScale: this.timeScale,
      opts,
      tokens: this.tokens,
      pushEvent: (e, type, details) => this.pushEvent(e, type, details),
      record: (e, key, v) => this.record(e, key, v),
      append: (r) => this.append(r),
      heartbeatTimer: (token, ms) => this.heartbeatTimer(token, ms),
      dropToken: (token) => this.dropToken(token),
    };
    this.journal = new Journal(path.join(opts.dataDir, 'stepfunctions', 'executions.jsonl'));
    this.archive = new ExecutionArchive(path.join(opts.dataDir, 'stepfunctions'));
    const physical = opts.physicalName ?? ((n: string) => `paystep-${n}`);
    for (const def of opts.machines) {
      // Validate the definition as written (what AWS would accept), then run the compiled form.
      validateDefinition(def.definition);
      const compiled = compileDefinition(def.definition, this.timeScale);
      const sm = new StateMachine(compiled.definition as unknown as StateMachineDefinition, {
        validationOptions: { noValidate: true },
      });
      const arn = `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stateMachine:${physical(def.name)}`;
      this.machines.set(arn, { def, arn, compiled, sm });
    }
  }

  machineNames(): string[] {
    return [...this.machines.values()].map((m) => m.def.name);
  }

  stateMachineArn(name: string): string {
    for (const m of this.machines.values()) if (m.def.name === name) return m.arn;
    throw new Error(`unknown state machine ${name}`);
  }

  /** Loads the journal, re-drives executions that were running, and serves the API. */
  async start(port = 0): Promise<string> {
    this.recover();
    const server = http.createServer(
      (req, res) => void serveStepFunctionsApi(this, this.opts.permissions, this.log, req, res),
    );
    this.server = server;
    await listenOn(server, port);
    const addr = server.address() as { port: number };
    this.opts.permissions?.serve(`http://127.0.0.1:${addr.port}`);
    return `http://127.0.0.1:${addr.port}`;
  }

  /** Stops serving; running executions stay RUNNING in the journal and resume at the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const l of this.live.values()) l.controller.abort();
    for (const l of this.live.values()) l.abort();
    await Promise.allSettled([...this.live.values()].map((l) => l.done));
    for (const t of this.tokens.values()) if (t.heartbeat?.timer) clearTimeout(t.heartbeat.timer);
    this.tokens.clear();
    this.flushHistory();
    this.journal.close();
    this.archive.close();
    if (this.server) {
      const closed = new Promise<void>((r) => this.server!.close(() => r()));
      this.server.closeAllConnections();
      await closed;
    }
  }

  // ---------------------------------------------------------------- recovery

  private recover(): void {
    this.archive.load();
    replayJournal(this.journal.load(), (arn) => this.archive.has(arn), this.executions);
    // Finished executions the journal still holds (a journal written before the archive, or one
    // whose archive write was cut short before its index line) move to the archive.
    for (const e of this.executions.values()) {
      if (e.status === 'RUNNING') continue;
      this.archive.add(finishedRecord(e));
      this.executions.delete(e.arn);
    }
    for (const e of this.executions.values()) {
      e.run += 1;
      e.history = [];
    }
    this.rewriteJournal();
    for (const e of [...this.executions.values()]) {
      if (!this.machines.has(this.machineArnOf(e))) {
        this.finish(e, 'FAILED', undefined, 'States.Runtime', `state machine ${e.machine} no longer exists`);
        continue;
      }
      this.log.info({ execution: e.arn, resumedTasks: e.memo.size }, 'resuming execution after restart');
      this.launch(e);
    }
  }

  private machineArnOf(e: { arn: string }): string {
    return machineArnOfExecution(e.arn);
  }

  /** Replaces the journal with the running executions' records (start, run, history, memo). */
  private rewriteJournal(): void {
    this.historyBuffer = []; // every buffered event is in its execution's history
    const records = journalRecordsOf(this.executions.values());
    this.journal.rewrite(records);
    this.journalLines = records.length;
  }

  /** Compacts the journal while running once it is mostly lines of finished executions. */
  private maybeCompact(): void {
    const min = this.opts.journalCompactMinLines ?? JOURNAL_COMPACT_MIN_LINES;
    if (this.compactScheduled || this.journalLines < min) return;
    let live = 0;
    for (const e of this.executions.values()) live += 2 + e.history.length + e.memo.size + e.dispatched.size;
    if (this.journalLines < 4 * live) return;
    this.compactScheduled = true;
    setImmediate(() => {
      this.compactScheduled = false;
      if (this.stopping) return;
      try {
        this.rewriteJournal();
      } catch (err) {
        this.log.error({ err }, 'cannot compact the executions journal; it stays as it is');
      }
    });
  }

  private append(r: JournalRecord): void {
    this.journal.append(r);
    this.journalLines++;
  }

  /** A running execution (in memory) or a finished one (read from the archive). */
  private lookup(arn: string | undefined): Execution | FinishedRecord<HistoryEvent> {
    if (!arn || !arn.startsWith('arn:aws:states:'))
      throw new SfnApiError('InvalidArn', `Invalid Arn: '${arn}'`);
    const e = this.executions.get(arn) ?? this.archive.read(arn);
    if (!e) throw new SfnApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${arn}'`);
    return e;
  }

  // ---------------------------------------------------------------- API

  startExecution(req: { stateMachineArn?: string; name?: string; input?: string }): {
    executionArn: string;
    startDate: number;
  } {
    const m = this.machines.get(req.stateMachineArn ?? '');
    if (!m)
      throw new SfnApiError(
        'StateMachineDoesNotExist',
        `State Machine Does Not Exist: '${req.stateMachineArn}'`,
      );
    const name = req.name ?? randomUUID();
    if (!/^[A-Za-z0-9_-]{1,80}$/.test(name)) throw new SfnApiError('InvalidName', `Invalid Name: '${name}'`);
    const input = req.input ?? '{}';
    try {
      JSON.parse(input);
    } catch {
      throw new SfnApiError('InvalidExecutionInput', 'Invalid State Machine Execution Input: not valid JSON');
    }
    const arn = m.arn.replace(':stateMachine:', ':execution:') + `:${name}`;
    if (this.archive.has(arn))
      throw new SfnApiError('ExecutionAlreadyExists', `Execution Already Exists: '${arn}'`);
    const existing = this.executions.get(arn);
    if (existing) {
      // Standard workflows: the same name and input while running is idempotent; anything else is a conflict.
      if (existing.status === 'RUNNING' && existing.input === input)
        return { executionArn: arn, startDate: existing.startDate / 1000 };
      throw new SfnApiError('ExecutionAlreadyExists', `Execution Already Exists: '${arn}'`);
    }
    if (this.stopping) throw new SfnApiError('ServiceUnavailable', 'the local runtime is shutting down', 503);
    const e: Execution = {
      arn,
      machine: m.def.name,
      name,
      input,
      status: 'RUNNING',
      startDate: Date.now(),
      run: 1,
      history: [],
      memo: new Map(),
      dispatched: new Set(),
    };
    this.executions.set(arn, e);
    this.append({ t: 'start', arn, machine: e.machine, name, input, startDate: e.startDate });
    this.append({ t: 'run', arn, run: 1 });
    this.launch(e);
    return { executionArn: arn, startDate: e.startDate / 1000 };
  }

  describeExecution(req: { executionArn?: string }) {
    const e = this.lookup(req.executionArn);
    return {
      executionArn: e.arn,
      stateMachineArn: this.machineArnOf(e),
      name: e.name,
      status: e.status,
      startDate: e.startDate / 1000,
      stopDate: e.stopDate !== undefined ? e.stopDate / 1000 : undefined,
      input: e.input,
      inputDetails: { included: true },
      output: e.output,
      outputDetails: e.output !== undefined ? { included: true } : undefined,
      error: e.error,
      cause: e.cause,
    };
  }

  listExecutions(req: {
    stateMachineArn?: string;
    statusFilter?: ExecutionStatus;
    maxResults?: number;
    nextToken?: string;
  }) {
    if (!this.machines.has(req.stateMachineArn ?? ''))
      throw new SfnApiError(
        'StateMachineDoesNotExist',
        `State Machine Does Not Exist: '${req.stateMachineArn}'`,
      );
    const rows: { arn: string; status: ExecutionStatus; startDate: number; stopDate?: number }[] = [];
    const prefix = req.stateMachineArn!.replace(':stateMachine:', ':execution:') + ':';
    const wanted = (arn: string, status: ExecutionStatus) =>
      arn.startsWith(prefix) && (!req.statusFilter || status === req.statusFilter);
    for (const e of this.executions.values()) if (wanted(e.arn, e.status)) rows.push(e);
    for (const [arn, f] of this.archive.summaries)
      if (wanted(arn, f.status))
        rows.push({ arn, status: f.status, startDate: f.startDate, stopDate: f.stopDate });
    const all = rows.sort((a, b) => b.startDate - a.startDate || (a.arn < b.arn ? -1 : 1));
    const start = req.nextToken ? Number(Buffer.from(req.nextToken, 'base64url').toString()) : 0;
    const max = Math.min(req.maxResults || 100, 1000);
    const page = all.slice(start, start + max);
    return {
      executions: page.map((e) => ({
        executionArn: e.arn,
        stateMachineArn: this.machineArnOf(e),
        name: e.arn.slice(e.arn.lastIndexOf(':') + 1),
        status: e.status,
        startDate: e.startDate / 1000,
        stopDate: e.stopDate !== undefined ? e.stopDate / 1000 : undefined,
      })),
      nextToken:
        start + max < all.length ? Buffer.from(String(start + max)).toString('base64url') : undefined,
    };
  }

  getExecutionHistory(req: {
    executionArn?: string;
    maxResults?: number;
    nextToken?: string;
    reverseOrder?: boolean;
  }) {
    const e = this.lookup(req.executionArn);
    this.flushHistory();
    const events = req.reverseOrder ? [...e.history].reverse() : e.history;
    const start = req.nextToken ? Number(Buffer.from(req.nextToken, 'base64url').toString()) : 0;
    const max = Math.min(req.maxResults || 100, 1000);
    return {
      events: events
        .slice(start, start + max)
        .map((ev): HistoryEvent => ({ ...ev, timestamp: ev.timestamp / 1000 })),
      nextToken:
        start + max < events.length ? Buffer.from(String(start + max)).toString('base64url') : undefined,
    };
  }

  stopExecution(req: { executionArn?: string; error?: string; cause?: string }) {
    const e = this.lookup(req.executionArn);
    if (e.status === 'RUNNING' && 'memo' in e) {
      this.pushEvent(e, 'ExecutionAborted', {
        executionAbortedEventDetails: { error: req.error, cause: req.cause },
      });
      this.finish(e, 'ABORTED', undefined, req.error, req.cause);
      const l = this.live.get(e.arn);
      l?.controller.abort();
      l?.abort();
    }
    return { stopDate: (e.stopDate ?? Date.now()) / 1000 };
  }

  sendTaskSuccess(req: { taskToken?: string; output?: string }) {
    let output: unknown;
    try {
      output = JSON.parse(req.output ?? '');
    } catch {
      throw new SfnApiError('InvalidOutput', 'Invalid Output: not valid JSON');
    }
    this.completeToken(req.taskToken, { ok: true, result: output });
    return {};
  }

  sendTaskFailure(req: { taskToken?: string; error?: string; cause?: string }) {
    this.completeToken(req.taskToken, { ok: false, error: req.error ?? '', cause: req.cause ?? '' });
    return {};
  }

  sendTaskHeartbeat(req: { taskToken?: string }) {
    const p = this.tokens.get(req.taskToken ?? '');
    if (!p) throw this.tokenError(req.taskToken);
    if (p.heartbeat) {
      clearTimeout(p.heartbeat.timer);
      p.heartbeat.timer = this.heartbeatTimer(req.taskToken!, p.heartbeat.ms);
    }
    return {};
  }

  /** Resolves when the execution has ended (tests and CLI). */
  async waitForExecution(
    arn: string,
    timeoutMs = 30_000,
  ): Promise<ReturnType<LocalStepFunctions['describeExecution']>> {
    const e = this.lookup(arn);
    if (e.status === 'RUNNING') {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`execution ${arn} still running after ${timeoutMs} ms`)),
          timeoutMs,
        );
        const list = this.waiters.get(arn) ?? [];
        list.push(() => {
          clearTimeout(timer);
          resolve();
        });
        this.waiters.set(arn, list);
      });
    }
    return this.describeExecution({ executionArn: arn });
  }

  /** Tokens currently awaited (for tests and ops tooling). */
  pendingTaskTokens(arn?: string): string[] {
    return [...this.tokens.entries()].filter(([, p]) => !arn || p.arn === arn).map(([t]) => t);
  }

  runningCount(): number {
    return this.live.size;
  }

  /** What is held in memory (the soak bench reports it). */
  memoryStats(): Record<string, number> {
    let historyEvents = 0;
    let finished = 0;
    for (const e of this.executions.values()) {
      historyEvents += e.history.length;
      if (e.status !== 'RUNNING') finished++;
    }
    return {
      executions: this.executions.size,
      finishedInMemory: finished,
      finishedSummaries: this.archive.summaries.size,
      archiveBytes: this.archive.bytes,
      journalLines: this.journalLines,
      historyEvents,
      live: this.live.size,
      taskTokens: this.tokens.size,
    };
  }

  // ---------------------------------------------------------------- engine

  private launch(e: Execution): void {
    const m = this.machines.get(this.machineArnOf(e))!;
    const controller = new AbortController();
    const counters = new Map<string, number>();
    const handlers: Record<string, (input: unknown) => Promise<unknown>> = {};
    for (const spec of m.compiled.tasks.values())
      handlers[spec.stateName] = (input) =>
        runTask(this.taskHost, e, spec, input, counters, controller.signal);
    const input = JSON.parse(e.input);
    const run = m.sm.run(input, {
      overrides: { taskResourceLocalHandlers: handlers as never },
      noThrowOnAbort: true,
      context: {
        Execution: {
          Id: e.arn,
          Name: e.name,
          Input: input,
          StartTime: new Date(e.startDate).toISOString(),
          RoleArn: 'arn:aws:iam::000000000000:role/local',
        },
        StateMachine: { Id: m.arn, Name: m.arn.split(':').pop() },
      } as never,
    });
    const events = historyFromEventLogs(
      e,
      m.compiled,
      run.eventLogs as AsyncGenerator<Record<string, unknown>>,
      (ex, type, details) => this.pushEvent(ex, type, details),
    );
    const done = (async () => {
      let output: unknown;
      let failure: { error: string; cause: string } | undefined;
      try {
        output = await run.result;
      } catch (err) {
        failure = { error: 'States.Runtime', cause: String((err as Error).message) };
      }
      const final = await events;
      if (e.status !== 'RUNNING') return; // stopped
      if (this.stopping && controller.signal.aborted) return; // shutdown: stays RUNNING, resumes later
      if (final.type === 'ExecutionSucceeded')
        this.finish(e, 'SUCCEEDED', JSON.stringify(final.output ?? output ?? null));
      else if (final.type === 'ExecutionFailed')
        this.finish(e, 'FAILED', undefined, final.error, final.cause);
      else if (final.type === 'ExecutionTimeout')
        this.finish(e, 'TIMED_OUT', undefined, 'States.Timeout', 'execution timed out');
      else if (failure) this.finish(e, 'FAILED', undefined, failure.error, failure.cause);
      else this.finish(e, 'SUCCEEDED', JSON.stringify(output ?? null));
    })()
      .catch((err) => this.log.error({ execution: e.arn, err }, 'execution bookkeeping failed'))
      .finally(() => this.live.delete(e.arn));
    this.live.set(e.arn, { abort: run.abort, controller, counters, done });
  }

  private completeToken(token: string | undefined, outcome: Memo): void {
    const p = this.tokens.get(token ?? '');
    const running = p && this.executions.get(p.arn);
    if (p && running) {
      const e = running;
      this.record(e, p.key, outcome);
      this.dropToken(token!);
      if ('ok' in outcome && outcome.ok) p.resolve(outcome.result);
      else {
        const f = outcome as { error: string; cause: string };
        p.reject(new TaskError(f.error, f.cause));
      }
      return;
    }
    // Not awaited right now: accept it for a running execution whose callback was dispatched
    // (the runtime restarted and has not replayed up to that task yet).
    const decoded = decodeToken(token);
    const e = decoded && this.executions.get(decoded.a);
    if (e && e.status === 'RUNNING' && e.dispatched.has(decoded.k) && !e.memo.has(decoded.k)) {
      this.record(e, decoded.k, outcome);
      return;
    }
    throw this.tokenError(token);
  }

  private tokenError(token: string | undefined): SfnApiError {
    const decoded = decodeToken(token);
    if (!decoded) return new SfnApiError('InvalidToken', 'Invalid Token');
    if (this.archive.has(decoded.a))
      return new SfnApiError('TaskTimedOut', 'Task Timed Out: the task already completed or timed out');
    const e = this.executions.get(decoded.a);
    if (e && (e.memo.has(decoded.k) || e.status !== 'RUNNING'))
      return new SfnApiError('TaskTimedOut', 'Task Timed Out: the task already completed or timed out');
    return new SfnApiError('TaskDoesNotExist', 'Task Does Not Exist');
  }

  private heartbeatTimer(token: string, ms: number): NodeJS.Timeout {
    return setTimeout(() => {
      const p = this.tokens.get(token);
      if (!p) return;
      this.dropToken(token);
      p.reject(new TaskError('States.HeartbeatTimeout', 'no heartbeat received in time'));
    }, ms);
  }

  private dropToken(token: string): void {
    const p = this.tokens.get(token);
    if (p?.heartbeat?.timer) clearTimeout(p.heartbeat.timer);
    this.tokens.delete(token);
  }

  private record(e: Execution, key: string, v: Memo): void {
    e.memo.set(key, v);
    this.append({ t: 'memo', arn: e.arn, key, v });
  }

  private pushEvent(e: Execution, type: string, details: Record<string, unknown>): void {
    const id = e.history.length + 1;
    const ev: HistoryEvent = { id, previousEventId: id - 1, timestamp: Date.now(), type, ...details };
    e.history.push(ev);
    this.historyBuffer.push({ t: 'ev', arn: e.arn, run: e.run, ev });
    if (type.endsWith('StateEntered') && this.log.isLevelEnabled('info')) {
      const state = (details.stateEnteredEventDetails as { name: string }).name;
      this.log.info({ execution: e.name, machine: e.machine, state }, `${e.machine} ${e.name}: ${state}`);
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flushHistory());
    }
  }

  private flushHistory(): void {
    this.flushScheduled = false;
    const batch = this.historyBuffer;
    this.historyBuffer = [];
    for (const r of batch) this.append(r);
  }

  private finish(
    e: Execution,
    status: ExecutionStatus,
    output?: string,
    error?: string,
    cause?: string,
  ): void {
    if (TERMINAL.includes(e.status)) return;
    Object.assign(e, { status, output, error, cause, stopDate: Date.now() });
    this.flushHistory();
    // Archive first (crash safety: lib/local/execution-archive.ts), then the journal's end line.
    this.archive.add(finishedRecord(e));
    this.append({ t: 'end', arn: e.arn, status, stopDate: e.stopDate!, output, error, cause });
    this.executions.delete(e.arn);
    e.memo.clear();
    e.dispatched.clear();
    e.history = [];
    this.maybeCompact();
    const level = status === 'SUCCEEDED' ? 'info' : 'warn';
    this.log[level](
      { execution: e.name, machine: e.machine, status, error },
      `execution ${status.toLowerCase()}`,
    );
    for (const w of this.waiters.get(e.arn) ?? []) w();
    this.waiters.delete(e.arn);
  }
}
