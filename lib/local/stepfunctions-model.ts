/**
 * What the local Step Functions (lib/local/stepfunctions.ts) holds and writes: an execution as it
 * runs, its history events, the recorded task results (memo) that let a restarted execution replay
 * instead of re-invoking its tasks, the journal's record types, the errors a task or the API raises,
 * task tokens (which execution and task they resume) and a sleep that outlasts setTimeout's limit.
 */
import { TASK_TOKEN_PLACEHOLDER } from './asl.ts';

export const LOCAL_REGION = 'local';
export const LOCAL_ACCOUNT = '000000000000';

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED' | 'TIMED_OUT';

export interface HistoryEvent {
  id: number;
  previousEventId: number;
  timestamp: number;
  type: string;
  [details: string]: unknown;
}

export type Memo =
  { ok: true; result: unknown } | { ok: false; error: string; cause: string } | { deadline: number };

export interface Execution {
  arn: string;
  machine: string;
  name: string;
  input: string;
  status: ExecutionStatus;
  startDate: number;
  stopDate?: number;
  output?: string;
  error?: string;
  cause?: string;
  run: number;
  history: HistoryEvent[];
  memo: Map<string, Memo>;
  dispatched: Set<string>;
}

export type JournalRecord =
  | { t: 'start'; arn: string; machine: string; name: string; input: string; startDate: number }
  | { t: 'run'; arn: string; run: number }
  | { t: 'ev'; arn: string; run: number; ev: HistoryEvent }
  | { t: 'memo'; arn: string; key: string; v: Memo }
  | { t: 'disp'; arn: string; key: string }
  | {
      t: 'end';
      arn: string;
      status: ExecutionStatus;
      stopDate: number;
      output?: string;
      error?: string;
      cause?: string;
    };

export interface Live {
  abort: () => void;
  controller: AbortController;
  counters: Map<string, number>;
  done: Promise<void>;
}

export interface PendingToken {
  arn: string;
  key: string;
  resolve: (output: unknown) => void;
  reject: (err: TaskError) => void;
  heartbeat?: { ms: number; timer?: NodeJS.Timeout };
}

/** An error as Step Functions sees it: `name` is the ASL error name matched by Retry/Catch. */
export class TaskError extends Error {
  constructor(name: string, cause: string) {
    super(cause);
    this.name = name;
  }
}

/** A Step Functions API error (`__type` on the wire). */
export class SfnApiError extends Error {
  readonly status: number;
  constructor(name: string, message: string, status = 400) {
    super(message);
    this.name = name;
    this.status = status;
  }
}

export function machineArnOfExecution(arn: string): string {
  return arn.replace(':execution:', ':stateMachine:').replace(/:[^:]+$/, '');
}

export function replaceToken(value: unknown, token: string): unknown {
  if (value === TASK_TOKEN_PLACEHOLDER) return token;
  if (Array.isArray(value)) return value.map((v) => replaceToken(v, token));
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaceToken(v, token)]));
  return value;
}

export function decodeToken(token: string | undefined): { a: string; k: string } | undefined {
  if (!token) return undefined;
  try {
    const d = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { a?: unknown; k?: unknown };
    return typeof d.a === 'string' && typeof d.k === 'string' ? { a: d.a, k: d.k } : undefined;
  } catch {
    return undefined;
  }
}

/** The longest delay `setTimeout` keeps (2^31 − 1 ms, 24.8 days): a longer one fires at once. */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * Resolves at `deadline` (epoch ms) or when `signal` aborts. Waits longer than `setTimeout` can
 * hold (a monthly billing period: 30 days) are slept in steps of at most MAX_TIMER_MS; one
 * `setTimeout` of the whole wait would fire after 1 ms (Node's TimeoutOverflowWarning) and a
 * monthly subscription would renew, and be charged, every millisecond.
 */
export function sleepUntil(deadline: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    let t: NodeJS.Timeout | undefined;
    const done = () => {
      if (t) clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const step = () => {
      const remaining = deadline - Date.now();
      if (remaining <= 0 || signal.aborted) return done();
      t = setTimeout(step, Math.min(remaining, MAX_TIMER_MS));
    };
    signal.addEventListener('abort', done, { once: true });
    step();
  });
}
