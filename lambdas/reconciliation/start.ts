/**
 * Starting reconciliations: one Step Functions execution per run. `startReconciliation` is what
 * the CLI (`paystep reconcile import|sync`) and the scheduled sync call.
 */
import { DescribeExecutionCommand, ExecutionAlreadyExists, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import type { ReconciliationInput } from './prepare.ts';

/** Execution names: 1–80 characters of [A-Za-z0-9-_]. */
export const executionName = (s: string) => s.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 80);

export async function startReconciliation(
  input: ReconciliationInput,
  name: string,
): Promise<{ executionArn: string; started: boolean }> {
  const stateMachineArn = config.stateMachineArn('reconciliation');
  const n = executionName(name);
  try {
    const out = await clients
      .sfn()
      .send(new StartExecutionCommand({ stateMachineArn, name: n, input: JSON.stringify(input) }));
    return { executionArn: out.executionArn!, started: true };
  } catch (err) {
    if (!(err instanceof ExecutionAlreadyExists) && (err as Error).name !== 'ExecutionAlreadyExists')
      throw err;
    return {
      executionArn: `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${n}`,
      started: false,
    };
  }
}

export interface ExecutionOutcome {
  status: string;
  output?: unknown;
  error?: string;
  cause?: string;
}

/** Polls the execution until it ends (or `timeoutMs` passes). */
export async function waitForExecution(
  executionArn: string,
  timeoutMs = 15 * 60_000,
  onPoll?: () => void,
): Promise<ExecutionOutcome> {
  const end = Date.now() + timeoutMs;
  for (let delay = 50; ; delay = Math.min(1000, delay * 2)) {
    const d = await clients.sfn().send(new DescribeExecutionCommand({ executionArn }));
    if (d.status !== 'RUNNING')
      return {
        status: d.status!,
        output: d.output ? JSON.parse(d.output) : undefined,
        error: d.error,
        cause: d.cause,
      };
    if (Date.now() > end) return { status: 'RUNNING' };
    onPoll?.();
    await new Promise((r) => setTimeout(r, delay));
  }
}
