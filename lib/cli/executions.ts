/**
 * `paystep executions …`: the workflows' executions and what happened in them, step by step, read
 * through the Step Functions API (ListExecutions, DescribeExecution, GetExecutionHistory), which
 * the local runtime serves and AWS serves too.
 *
 *   paystep executions list [--state-machine NAME] [--status STATUS] [--limit N]
 *   paystep executions show NAME_OR_ARN [--state-machine NAME] [--full]
 */
import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  type ExecutionListItem,
  type HistoryEvent,
} from '@aws-sdk/client-sfn';
import type { Command } from 'commander';
import { clients } from '../../lambdas/shared/aws.ts';
import { config } from '../../lambdas/shared/config.ts';
import { topology } from '../topology.ts';
import { resolveDataDir, withRuntime } from './context.ts';
import { CommandFailed, integer, oneOf, UsageError } from './args.ts';

type Out = (s: string) => void;

export const STATE_MACHINES = Object.keys(topology.stateMachines);
export const EXECUTION_STATUSES = ['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED'] as const;
type Status = (typeof EXECUTION_STATUSES)[number];

/** `--status failed` is accepted as FAILED. */
const statusArg = (value: string): Status => {
  try {
    return oneOf('status', EXECUTION_STATUSES)(value.toUpperCase());
  } catch {
    throw new UsageError(`unknown status '${value}' (expected: ${EXECUTION_STATUSES.join(', ')})`);
  }
};

const iso = (d: Date | undefined) => (d ? d.toISOString() : null);
const machineOf = (arn: string | undefined) => {
  const physical = (arn ?? '').split(':')[6] ?? '';
  return STATE_MACHINES.find((m) => config.stateMachineArn(m).split(':')[6] === physical) ?? physical;
};
const executionArnOf = (machine: string, name: string) =>
  `${config.stateMachineArn(machine).replace(':stateMachine:', ':execution:')}:${name}`;
const parsed = (s: string | undefined): unknown => {
  if (s === undefined) return null;
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
};
const notFound = (err: unknown) => (err as Error).name === 'ExecutionDoesNotExist';

export async function listExecutions(opts: { machines: string[]; status?: Status; limit: number }) {
  const found: ExecutionListItem[] = [];
  for (const machine of opts.machines) {
    let nextToken: string | undefined;
    let taken = 0;
    do {
      const page = await clients.sfn().send(
        new ListExecutionsCommand({
          stateMachineArn: config.stateMachineArn(machine),
          statusFilter: opts.status,
          maxResults: Math.min(1000, opts.limit - taken),
          nextToken,
        }),
      );
      const items = page.executions ?? [];
      found.push(...items);
      taken += items.length;
      nextToken = page.nextToken;
    } while (nextToken && taken < opts.limit);
  }
  return found
    .sort((a, b) => (b.startDate?.getTime() ?? 0) - (a.startDate?.getTime() ?? 0))
    .slice(0, opts.limit)
    .map((e) => ({
      name: e.name,
      state_machine: machineOf(e.stateMachineArn),
      status: e.status,
      start_date: iso(e.startDate),
      stop_date: iso(e.stopDate),
      execution_arn: e.executionArn,
    }));
}

/** Every event of an execution's history, oldest first. */
export async function executionHistory(executionArn: string): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let nextToken: string | undefined;
  do {
    const page = await clients
      .sfn()
      .send(new GetExecutionHistoryCommand({ executionArn, maxResults: 1000, nextToken }));
    events.push(...(page.events ?? []));
    nextToken = page.nextToken;
  } while (nextToken);
  return events;
}

/** The `…EventDetails` object of an event (each event type has its own key). */
function detailsOf(ev: HistoryEvent): Record<string, unknown> | undefined {
  for (const [k, v] of Object.entries(ev))
    if (k.endsWith('EventDetails') && v && typeof v === 'object') return v as Record<string, unknown>;
  return undefined;
}

/** One history event, in a few readable fields (`--full`: with its details, JSON decoded). */
function presentEvent(ev: HistoryEvent, full: boolean) {
  const d = detailsOf(ev) ?? {};
  const str = (k: string) => (typeof d[k] === 'string' ? (d[k] as string) : undefined);
  return {
    id: ev.id,
    timestamp: iso(ev.timestamp),
    type: ev.type,
    ...(str('name') !== undefined ? { state: str('name') } : {}),
    ...(typeof d.index === 'number' ? { index: d.index } : {}),
    ...(str('resource') !== undefined ? { resource: str('resource') } : {}),
    ...(str('error') !== undefined ? { error: str('error') } : {}),
    ...(str('cause') !== undefined ? { cause: str('cause') } : {}),
    ...(full
      ? {
          details: Object.fromEntries(
            Object.entries(d).map(([k, v]) =>
              ['input', 'output', 'parameters'].includes(k) && typeof v === 'string'
                ? [k, parsed(v)]
                : [k, v],
            ),
          ),
        }
      : {}),
  };
}

/** Each state entered, when it was left, and how long it took (a Map's iterations: once each). */
export function statesOf(events: HistoryEvent[]) {
  const states: {
    state: string;
    type: string;
    entered_at: string | null;
    exited_at: string | null;
    duration_ms: number | null;
  }[] = [];
  const open: { i: number; at: number }[] = [];
  for (const ev of events) {
    const type = ev.type ?? '';
    const name = detailsOf(ev)?.name as string | undefined;
    if (!name) continue;
    if (type.endsWith('StateEntered')) {
      open.push({ i: states.length, at: ev.timestamp?.getTime() ?? 0 });
      states.push({
        state: name,
        type: type.slice(0, -'StateEntered'.length),
        entered_at: iso(ev.timestamp),
        exited_at: null,
        duration_ms: null,
      });
    } else if (type.endsWith('StateExited')) {
      const k = open.findIndex((o) => states[o.i]!.state === name);
      if (k < 0) continue;
      const [o] = open.splice(k, 1);
      states[o!.i]!.exited_at = iso(ev.timestamp);
      states[o!.i]!.duration_ms = (ev.timestamp?.getTime() ?? o!.at) - o!.at;
    }
  }
  return states;
}

/** An execution by ARN, or by name in one (or any) of the state machines. */
async function findExecution(nameOrArn: string, machines: string[]) {
  if (nameOrArn.startsWith('arn:'))
    return clients.sfn().send(new DescribeExecutionCommand({ executionArn: nameOrArn }));
  const hits = [];
  for (const machine of machines) {
    try {
      hits.push(
        await clients
          .sfn()
          .send(new DescribeExecutionCommand({ executionArn: executionArnOf(machine, nameOrArn) })),
      );
    } catch (err) {
      if (!notFound(err)) throw err;
    }
  }
  if (hits.length > 1)
    throw new UsageError(
      `execution name '${nameOrArn}' is used by ${hits.map((h) => machineOf(h.stateMachineArn)).join(' and ')}; ` +
        `pick one with --state-machine`,
    );
  if (!hits.length)
    throw new CommandFailed(`no execution '${nameOrArn}' (state machines: ${machines.join(', ')})`);
  return hits[0]!;
}

export async function showExecution(nameOrArn: string, opts: { machines: string[]; full: boolean }) {
  let d;
  try {
    d = await findExecution(nameOrArn, opts.machines);
  } catch (err) {
    if (notFound(err)) throw new CommandFailed(`no execution ${nameOrArn}`);
    throw err;
  }
  const events = await executionHistory(d.executionArn!);
  return {
    name: d.name,
    state_machine: machineOf(d.stateMachineArn),
    status: d.status,
    start_date: iso(d.startDate),
    stop_date: iso(d.stopDate),
    duration_ms: d.startDate && d.stopDate ? d.stopDate.getTime() - d.startDate.getTime() : null,
    input: parsed(d.input),
    output: parsed(d.output),
    error: d.error ?? null,
    cause: d.cause ?? null,
    execution_arn: d.executionArn,
    states: statesOf(events),
    history: events.map((ev) => presentEvent(ev, opts.full)),
  };
}

/**
 * Progress of a running execution on stderr, from its history: the state it is in, and how many
 * iterations of its Map are done (`reconciliation stripe-…: Match each chunk · 3/8 chunks`), the
 * total read from the Map state's input by `map.items`. `poll()` may be called often; it reads the
 * history at most once at a time.
 */
export function executionProgress(
  executionArn: string,
  map?: { unit: string; items: (input: unknown) => unknown },
  stream: NodeJS.WriteStream = process.stderr,
) {
  const machineArn = executionArn.replace(':execution:', ':stateMachine:').replace(/:[^:]+$/, '');
  const label = `${machineOf(machineArn)} ${executionArn.split(':').pop()}`;
  let busy = false;
  let stopped = false;
  let last = '';
  const show = (line: string) => {
    if (stopped || line === last) return;
    stream.write(stream.isTTY ? `\r${line}\x1b[K` : `${line}\n`);
    last = line;
  };
  return {
    poll() {
      if (busy) return;
      busy = true;
      executionHistory(executionArn)
        .then((events) => {
          const states = statesOf(events);
          const current = [...states].reverse().find((s) => !s.exited_at) ?? states.at(-1);
          if (!current) return;
          let total: number | undefined;
          let done = 0;
          for (const ev of events) {
            if (ev.type === 'MapStateEntered') {
              const items = map?.items(parsed(ev.stateEnteredEventDetails?.input));
              total = Array.isArray(items) ? items.length : undefined;
              done = 0;
            } else if (ev.type === 'MapIterationSucceeded') done++;
          }
          const outer = states.find((s) => s.type === 'Map' && !s.exited_at);
          const count = outer && total !== undefined ? ` · ${done}/${total} ${map!.unit}` : '';
          show(`${label}: ${outer?.state ?? current.state}${count}`);
        })
        .catch(() => undefined) // progress is best effort; the wait reports the outcome
        .finally(() => (busy = false));
    },
    done() {
      stopped = true;
      if (stream.isTTY && last) stream.write('\n');
    },
  };
}

export function registerExecutionCommands(program: Command, out: Out): void {
  const dataDir = () => resolveDataDir(program.opts().dataDir);
  const machineArg = oneOf('state machine', STATE_MACHINES);
  const executions = program
    .command('executions')
    .description('workflow executions and their history (Step Functions API)');
  executions
    .command('list')
    .description('executions, newest first')
    .option('--state-machine <name>', `one state machine (${STATE_MACHINES.join(' | ')})`, machineArg)
    .option('--status <status>', EXECUTION_STATUSES.join(' | '), statusArg)
    .option('--limit <n>', 'at most this many (1–1000)', integer('--limit', 1, 1000), 50)
    .action(async (opts: { stateMachine?: string; status?: Status; limit: number }) => {
      const data = await withRuntime(dataDir(), () =>
        listExecutions({
          machines: opts.stateMachine ? [opts.stateMachine] : STATE_MACHINES,
          status: opts.status,
          limit: opts.limit,
        }),
      );
      out(`${JSON.stringify({ object: 'list', data }, null, 2)}\n`);
    });
  executions
    .command('show')
    .description(
      'one execution: status, input, output, error, each state entered and exited, and the event history',
    )
    .argument('<name-or-arn>', 'execution name (e.g. a payment id) or ARN')
    .option(
      '--state-machine <name>',
      `look only in this state machine (${STATE_MACHINES.join(' | ')})`,
      machineArg,
    )
    .option('--full', 'include every event’s details (inputs, outputs, parameters)')
    .action(async (nameOrArn: string, opts: { stateMachine?: string; full?: boolean }) => {
      const shown = await withRuntime(dataDir(), () =>
        showExecution(nameOrArn, {
          machines: opts.stateMachine ? [opts.stateMachine] : STATE_MACHINES,
          full: Boolean(opts.full),
        }),
      );
      out(`${JSON.stringify(shown, null, 2)}\n`);
    });
}
