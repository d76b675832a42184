/**
 * The Task and Wait states of the local Step Functions (lib/local/stepfunctions.ts), as their
 * execution runs them: each task's memo key (state name, a hash of its input, the how-many-th call
 * with that input), replay of recorded outcomes after a restart, dispatch through the service
 * integrations (stepfunctions-integrations.ts), callback tokens and heartbeats, task timeouts and
 * Wait deadlines, and the history events of each.
 */
import { createHash } from 'node:crypto';
import type { TaskSpec } from './asl.ts';
import { dispatchTask, type TaskIntegrationOptions } from './stepfunctions-integrations.ts';
import {
  LOCAL_REGION,
  TaskError,
  replaceToken,
  sleepUntil,
  type Execution,
  type JournalRecord,
  type Memo,
  type PendingToken,
} from './stepfunctions-model.ts';

/** What running a task needs from the executions (LocalStepFunctions hands these over). */
export interface TaskHost {
  /** Wait states, task timeouts and heartbeats run this many times faster. */
  readonly timeScale: number;
  readonly opts: TaskIntegrationOptions;
  /** Callback tokens awaited now. */
  readonly tokens: Map<string, PendingToken>;
  pushEvent(e: Execution, type: string, details: Record<string, unknown>): void;
  /** Records a task's outcome (or a Wait's deadline) in the execution and the journal. */
  record(e: Execution, key: string, v: Memo): void;
  append(r: JournalRecord): void;
  heartbeatTimer(token: string, ms: number): NodeJS.Timeout;
  dropToken(token: string): void;
}

const sha = (s: string) => createHash('sha256').update(s).digest('base64url').slice(0, 16);

/**
 * Runs one Task state (a Wait state too: the compiler turns it into a task): a result recorded by an
 * earlier run is replayed, otherwise the task is dispatched (once for a callback task, which then
 * waits for its token), bounded by its timeout, and its outcome recorded before the workflow moves
 * on. History events are written along the way.
 */
export async function runTask(
  host: TaskHost,
  e: Execution,
  spec: TaskSpec,
  input: unknown,
  counters: Map<string, number>,
  signal: AbortSignal,
): Promise<unknown> {
  const base = `${spec.stateName}|${sha(JSON.stringify(input ?? null))}`;
  const n = counters.get(base) ?? 0;
  counters.set(base, n + 1);
  const key = `${base}|${n}`;
  // Let the interpreter's event log (consumed asynchronously) catch up, so the history reads
  // StateEntered before the task's own events.
  await new Promise((r) => setImmediate(r));

  if (spec.originalType === 'Wait') return runWait(host, e, key, input as Record<string, unknown>, signal);

  const isCallback = spec.resource.endsWith('.waitForTaskToken');
  const resourceType = spec.resource.startsWith('arn:aws:states:::') ? spec.resource.split(':')[5] : 'lambda';
  // Like AWS Standard workflows: no task timeout unless the definition sets one (a Lambda task is
  // still bounded by the function's own timeout, enforced by the in-process invoker).
  const timeoutSeconds = spec.timeoutSeconds;
  host.pushEvent(e, 'TaskScheduled', {
    taskScheduledEventDetails: {
      resourceType,
      resource: spec.resource.replace(/^arn:aws:states:::[^:]+:/, '') || spec.resource,
      region: LOCAL_REGION,
      parameters: JSON.stringify(input ?? null),
      timeoutInSeconds: timeoutSeconds,
      heartbeatInSeconds: spec.heartbeatSeconds,
    },
  });

  const recorded = e.memo.get(key);
  let outcome: Memo;
  if (recorded && 'ok' in recorded) {
    outcome = recorded;
  } else {
    host.pushEvent(e, 'TaskStarted', {
      taskStartedEventDetails: { resourceType, resource: spec.resource },
    });
    outcome = await executeTask(host, e, spec, key, input, isCallback, timeoutSeconds, signal);
    if (signal.aborted) throw new TaskError('States.Runtime', 'execution stopped');
    host.record(e, key, outcome);
  }
  if ('ok' in outcome && outcome.ok) {
    host.pushEvent(e, 'TaskSucceeded', {
      taskSucceededEventDetails: {
        resourceType,
        resource: spec.resource,
        output: JSON.stringify(outcome.result ?? null),
      },
    });
    return outcome.result;
  }
  const f = outcome as { error: string; cause: string };
  host.pushEvent(e, f.error === 'States.Timeout' ? 'TaskTimedOut' : 'TaskFailed', {
    [f.error === 'States.Timeout' ? 'taskTimedOutEventDetails' : 'taskFailedEventDetails']: {
      resourceType,
      resource: spec.resource,
      error: f.error,
      cause: f.cause,
    },
  });
  throw new TaskError(f.error, f.cause);
}

async function executeTask(
  host: TaskHost,
  e: Execution,
  spec: TaskSpec,
  key: string,
  input: unknown,
  isCallback: boolean,
  timeoutSeconds: number | undefined,
  signal: AbortSignal,
): Promise<Memo> {
  let timer: NodeJS.Timeout | undefined;
  const work = (async (): Promise<unknown> => {
    if (!isCallback) return dispatchTask(host.opts, e.machine, spec.resource, input);
    const token = Buffer.from(JSON.stringify({ a: e.arn, k: key })).toString('base64url');
    const resumed = new Promise<unknown>((resolve, reject) => {
      const p: PendingToken = { arn: e.arn, key, resolve, reject };
      if (spec.heartbeatSeconds) {
        const ms = (spec.heartbeatSeconds * 1000) / host.timeScale;
        p.heartbeat = { ms, timer: host.heartbeatTimer(token, ms) };
      }
      host.tokens.set(token, p);
      signal.addEventListener('abort', () => reject(new TaskError('States.Runtime', 'execution stopped')), {
        once: true,
      });
    });
    // Observed by the race below; never an unhandled rejection, even when the runtime stops
    // (abort) while the task is still being dispatched.
    resumed.catch(() => undefined);
    if (!e.dispatched.has(key)) {
      await dispatchTask(host.opts, e.machine, spec.resource, replaceToken(input, token));
      e.dispatched.add(key);
      host.append({ t: 'disp', arn: e.arn, key });
    }
    // A completion may have arrived while the runtime was down, or during dispatch.
    const early = e.memo.get(key);
    if (early && 'ok' in early) {
      host.tokens.delete(token);
      if (early.ok) return early.result;
      throw new TaskError(early.error, early.cause);
    }
    return resumed;
  })();
  const limits: Promise<never>[] = [];
  if (timeoutSeconds !== undefined) {
    limits.push(
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new TaskError('States.Timeout', `task did not finish within ${timeoutSeconds} s`)),
          (timeoutSeconds * 1000) / host.timeScale,
        );
      }),
    );
  }
  try {
    const result = await Promise.race([work, ...limits]);
    return { ok: true, result };
  } catch (err) {
    const x = err as Error & { errorType?: string };
    if (x instanceof TaskError) return { ok: false, error: x.name, cause: x.message };
    // A Lambda function error: Error is the errorType, Cause the Lambda error payload.
    const errorType = x.name && x.name !== 'Error' ? x.name : (x.constructor?.name ?? 'Error');
    return {
      ok: false,
      error: errorType,
      cause: JSON.stringify({ errorType, errorMessage: x.message ?? String(err) }),
    };
  } finally {
    clearTimeout(timer);
    for (const [t, p] of host.tokens) if (p.arn === e.arn && p.key === key) host.dropToken(t);
  }
}

/** A Wait state: its deadline is recorded the first time, so a restarted execution keeps it. */
async function runWait(
  host: TaskHost,
  e: Execution,
  key: string,
  params: Record<string, unknown>,
  signal: AbortSignal,
): Promise<unknown> {
  let recorded = e.memo.get(key);
  if (!recorded || !('deadline' in recorded)) {
    const now = Date.now();
    let realMs = 0;
    if (typeof params.seconds === 'number') realMs = (params.seconds * 1000) / host.timeScale;
    else if (typeof params.timestamp === 'string') {
      const at = Date.parse(params.timestamp);
      if (Number.isNaN(at))
        throw new TaskError('States.Runtime', `Wait timestamp is not a timestamp: ${params.timestamp}`);
      realMs = Math.max(0, at - now) / host.timeScale;
    } else if ('seconds' in params || 'timestamp' in params) {
      throw new TaskError(
        'States.Runtime',
        'Wait SecondsPath/TimestampPath did not resolve to a number/timestamp',
      );
    }
    recorded = { deadline: now + realMs };
    host.record(e, key, recorded);
  }
  await sleepUntil(recorded.deadline, signal);
  if (signal.aborted) throw new TaskError('States.Runtime', 'execution stopped');
  return params.input;
}
