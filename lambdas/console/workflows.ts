/**
 * What the console reads about workflow executions, through the Step Functions API (the SDK
 * client of lambdas/shared/aws.ts: AWS, or the local runtime's endpoint): ListExecutions,
 * DescribeExecution, GetExecutionHistory, StopExecution. The ASL definitions are bundled with the
 * console (JSON imports), so the graph is drawn from the same files both runtimes run.
 * `visitsOf` (history → the states visited, their input/output and timing) is pure.
 */
import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  StopExecutionCommand,
  type DescribeExecutionCommandOutput,
  type ExecutionListItem,
  type ExecutionStatus,
  type HistoryEvent,
} from '@aws-sdk/client-sfn';
import billingAsl from '../../statemachines/billing.asl.json' with { type: 'json' };
import disputeAsl from '../../statemachines/dispute.asl.json' with { type: 'json' };
import paymentAsl from '../../statemachines/payment.asl.json' with { type: 'json' };
import pingAsl from '../../statemachines/ping.asl.json' with { type: 'json' };
import reconciliationAsl from '../../statemachines/reconciliation.asl.json' with { type: 'json' };
import refundAsl from '../../statemachines/refund.asl.json' with { type: 'json' };
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import type { AslLike } from './graph.ts';

export const MACHINES = ['payment', 'refund', 'dispute', 'billing', 'reconciliation', 'ping'] as const;
export type Machine = (typeof MACHINES)[number];

export const DEFINITIONS: Record<Machine, AslLike> = {
  payment: paymentAsl as unknown as AslLike,
  refund: refundAsl as unknown as AslLike,
  dispute: disputeAsl as unknown as AslLike,
  billing: billingAsl as unknown as AslLike,
  reconciliation: reconciliationAsl as unknown as AslLike,
  ping: pingAsl as unknown as AslLike,
};

/** The statuses the executions screen filters by: Step Functions' own, and RUNNING waiting on a task token. */
export const EXECUTION_FILTERS = [
  'RUNNING',
  'WAITING',
  'FAILED',
  'TIMED_OUT',
  'ABORTED',
  'SUCCEEDED',
] as const;
export type ExecutionFilter = (typeof EXECUTION_FILTERS)[number];

export const isMachine = (v: unknown): v is Machine => (MACHINES as readonly unknown[]).includes(v);

/** The state machine's ARN, or undefined when this function was not given it. */
export function machineArn(m: Machine): string | undefined {
  try {
    return config.stateMachineArn(m);
  } catch {
    return undefined;
  }
}

/** Which of paystep's state machines an execution (or state machine) ARN belongs to. */
export function machineOf(arn: string): Machine | undefined {
  const parts = arn.split(':');
  const physical = parts[5] === 'execution' || parts[5] === 'stateMachine' ? parts[6] : undefined;
  if (!physical) return undefined;
  return MACHINES.find((m) => machineArn(m)?.split(':')[6] === physical);
}

export function executionArnOf(machine: Machine, name: string): string | undefined {
  const arn = machineArn(machine);
  return arn ? `${arn.replace(':stateMachine:', ':execution:')}:${name}` : undefined;
}

/** The execution's page in the AWS console (region from AWS_REGION, else the ARN); none locally. */
export function awsConsoleUrl(
  arn: string,
  awsRegion: string | null = config.awsRegion() ?? null,
): string | null {
  const region = awsRegion || arn.split(':')[3];
  if (!region || region === 'local' || arn.split(':')[3] === 'local') return null;
  return `https://${region}.console.aws.amazon.com/states/home?region=${region}#/v2/executions/details/${encodeURIComponent(arn)}`;
}

/**
 * The payment an execution works on, from its name: a payment workflow is named after its payment
 * (`pay_…`, or `pay_…-r<n>` when the sweeper re-drove it).
 */
export function paymentIdOfExecution(machine: Machine | undefined, name: string): string | undefined {
  if (machine !== 'payment') return undefined;
  const m = /^(pay_[0-9A-Za-z]{10,40})(-r\d+)?$/.exec(name);
  return m?.[1];
}

// ---------------------------------------------------------------- history → visits (pure)

export interface StateVisit {
  name: string;
  /** Task, Choice, Wait, Pass, Map, Parallel, Succeed, Fail (from the event type). */
  type: string;
  entered: Date | null;
  exited: Date | null;
  durationMs: number | null;
  /** JSON text as the history holds it. */
  input: string | null;
  output: string | null;
  /** The last task error in the state (caught, retried or fatal). */
  error: string | null;
  cause: string | null;
  /** Task attempts made in the state (more than 1: retried). */
  attempts: number;
}

export interface ExecutionPath {
  visits: StateVisit[];
  /** States where the execution failed (a Fail state, or where a failed/timed-out/aborted execution stopped). */
  failed: string[];
  /** The state a running execution is in. */
  current?: string;
  /** A running execution waits on a task token (a callback: a review, a capture, a customer…). */
  waitingForToken: boolean;
}

function detailsOf(ev: HistoryEvent): Record<string, unknown> {
  for (const [k, v] of Object.entries(ev))
    if (k.endsWith('EventDetails') && v && typeof v === 'object') return v as Record<string, unknown>;
  return {};
}

const str = (v: unknown) => (typeof v === 'string' ? v : null);
const time = (d: unknown): Date | null =>
  d instanceof Date ? d : typeof d === 'number' ? new Date(d * 1000) : null;

/** The states an execution went through, in order, from its history (oldest event first). */
export function visitsOf(
  events: readonly HistoryEvent[],
  status: string | undefined,
  def?: AslLike,
): ExecutionPath {
  const visits: StateVisit[] = [];
  const open: StateVisit[] = [];
  let lastTask: { type: string; resource: string } | undefined;
  for (const ev of events) {
    const type = ev.type ?? '';
    const d = detailsOf(ev);
    if (type.endsWith('StateEntered')) {
      const v: StateVisit = {
        name: String(d.name ?? ''),
        type: type.slice(0, -'StateEntered'.length),
        entered: time(ev.timestamp),
        exited: null,
        durationMs: null,
        input: str(d.input),
        output: null,
        error: null,
        cause: null,
        attempts: 0,
      };
      visits.push(v);
      open.push(v);
    } else if (type.endsWith('StateExited')) {
      const k = open.map((o) => o.name).lastIndexOf(String(d.name ?? ''));
      if (k < 0) continue;
      const [v] = open.splice(k, 1);
      v!.exited = time(ev.timestamp);
      v!.output = str(d.output);
      if (v!.entered && v!.exited) v!.durationMs = v!.exited.getTime() - v!.entered.getTime();
    } else if (type.startsWith('Task') || type.startsWith('LambdaFunction')) {
      const v = open.at(-1);
      if (type === 'TaskScheduled' || type === 'LambdaFunctionScheduled') {
        if (v) v.attempts++;
        lastTask = { type, resource: String(d.resource ?? '') };
      } else if (type === 'TaskStarted') {
        lastTask = { type, resource: String(d.resource ?? lastTask?.resource ?? '') };
      } else {
        lastTask = undefined;
        if ((type.endsWith('Failed') || type.endsWith('TimedOut')) && v) {
          v.error = str(d.error) ?? (type.endsWith('TimedOut') ? 'States.Timeout' : 'failed');
          v.cause = str(d.cause);
        }
      }
    }
  }
  const types = new Map(Object.entries(def?.States ?? {}).map(([n, s]) => [n, s.Type]));
  const failed = new Set(visits.filter((v) => (types.get(v.name) ?? v.type) === 'Fail').map((v) => v.name));
  const stoppedIn = open.at(-1)?.name;
  if (stoppedIn && (status === 'FAILED' || status === 'TIMED_OUT' || status === 'ABORTED'))
    failed.add(stoppedIn);
  const running = status === 'RUNNING';
  return {
    visits,
    failed: [...failed],
    current: running ? stoppedIn : undefined,
    waitingForToken: running && !!lastTask && /waitForTaskToken/.test(lastTask.resource),
  };
}

// ---------------------------------------------------------------- API calls

/** The execution, or undefined when there is none by that ARN. */
export async function describeExecution(arn: string): Promise<DescribeExecutionCommandOutput | undefined> {
  try {
    return await clients.sfn().send(new DescribeExecutionCommand({ executionArn: arn }));
  } catch (err) {
    const name = (err as Error).name;
    if (name === 'ExecutionDoesNotExist' || name === 'InvalidArn') return undefined;
    throw err;
  }
}

/** The execution's history, oldest first, at most `maxEvents` (the newest are dropped beyond). */
export async function executionHistory(arn: string, maxEvents = 5000): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let nextToken: string | undefined;
  do {
    const page = await clients
      .sfn()
      .send(new GetExecutionHistoryCommand({ executionArn: arn, maxResults: 1000, nextToken }));
    events.push(...(page.events ?? []));
    nextToken = page.nextToken;
  } while (nextToken && events.length < maxEvents);
  return events;
}

/** Whether a running execution waits on a task token now (its latest events). */
export async function isWaitingForToken(arn: string): Promise<boolean> {
  const page = await clients
    .sfn()
    .send(new GetExecutionHistoryCommand({ executionArn: arn, maxResults: 4, reverseOrder: true }));
  const latest = (page.events ?? []).find((e) => (e.type ?? '').startsWith('Task'));
  if (!latest || (latest.type !== 'TaskScheduled' && latest.type !== 'TaskStarted')) return false;
  return /waitForTaskToken/.test(String(detailsOf(latest).resource ?? ''));
}

export interface ExecutionRow extends ExecutionListItem {
  machine: Machine;
  waiting?: boolean;
}

/**
 * One page of a state machine's executions, newest first, by status (WAITING: running and
 * waiting on a task token, checked on each running execution of the page).
 */
export async function listExecutionsPage(o: {
  machine: Machine;
  status?: ExecutionFilter;
  limit: number;
  nextToken?: string;
}): Promise<{ rows: ExecutionRow[]; nextToken?: string }> {
  const arn = machineArn(o.machine);
  if (!arn) return { rows: [] };
  const statusFilter: ExecutionStatus | undefined =
    o.status === 'WAITING' ? 'RUNNING' : (o.status as ExecutionStatus | undefined);
  const page = await clients.sfn().send(
    new ListExecutionsCommand({
      stateMachineArn: arn,
      statusFilter,
      maxResults: o.limit,
      nextToken: o.nextToken,
    }),
  );
  let rows: ExecutionRow[] = (page.executions ?? []).map((e) => ({ ...e, machine: o.machine }));
  await Promise.all(
    rows
      .filter((r) => r.status === 'RUNNING' && r.executionArn)
      .map(async (r) => {
        r.waiting = await isWaitingForToken(r.executionArn!).catch(() => false);
      }),
  );
  if (o.status === 'WAITING') rows = rows.filter((r) => r.waiting);
  return { rows, nextToken: page.nextToken };
}

export async function stopExecution(arn: string, cause: string): Promise<void> {
  await clients.sfn().send(
    new StopExecutionCommand({
      executionArn: arn,
      error: 'StoppedByOperator',
      cause: cause.slice(0, 32_000),
    }),
  );
}
