/**
 * The execution history of the local Step Functions (lib/local/stepfunctions.ts) as AWS writes it,
 * derived from the events aws-local-stepfunctions emits while it interprets a definition.
 */
import type { CompiledDefinition } from './asl.ts';
import type { Execution } from './stepfunctions-model.ts';

/**
 * Turns the interpreter's event log into the execution's Step Functions history (state entered and
 * exited with the ASL state type, Map iterations, the execution's end) through `pushEvent`; resolves
 * with how the execution ended.
 */
export async function historyFromEventLogs(
  e: Execution,
  compiled: CompiledDefinition,
  logs: AsyncGenerator<Record<string, unknown>>,
  pushEvent: (e: Execution, type: string, details: Record<string, unknown>) => void,
): Promise<{ type: string; output?: unknown; error?: string; cause?: string }> {
  let final: { type: string; output?: unknown; error?: string; cause?: string } = { type: 'none' };
  for await (const ev of logs) {
    const type = ev.type as string;
    const state = ev.state as { name: string; type: string; input?: unknown; output?: unknown } | undefined;
    const typeOf = (s: { name: string; type: string }) => compiled.stateTypes.get(s.name) ?? s.type;
    if (type === 'ExecutionStarted') {
      pushEvent(e, 'ExecutionStarted', {
        executionStartedEventDetails: { input: e.input, roleArn: 'arn:aws:iam::000000000000:role/local' },
      });
    } else if (type === 'StateEntered' && state) {
      pushEvent(e, `${typeOf(state)}StateEntered`, {
        stateEnteredEventDetails: { name: state.name, input: JSON.stringify(state.input ?? null) },
      });
    } else if (type === 'StateExited' && state) {
      pushEvent(e, `${typeOf(state)}StateExited`, {
        stateExitedEventDetails: { name: state.name, output: JSON.stringify(state.output ?? null) },
      });
    } else if (
      type === 'MapIterationStarted' ||
      type === 'MapIterationSucceeded' ||
      type === 'MapIterationFailed'
    ) {
      const key = `mapIteration${type.slice('MapIteration'.length)}EventDetails`;
      pushEvent(e, type, {
        [key]: { name: (ev.parentState as { name: string }).name, index: ev.index },
      });
    } else if (type === 'ExecutionSucceeded') {
      final = { type, output: ev.output };
      pushEvent(e, 'ExecutionSucceeded', {
        executionSucceededEventDetails: { output: JSON.stringify(ev.output ?? null) },
      });
    } else if (type === 'ExecutionFailed') {
      final = { type, error: String(ev.Error ?? ''), cause: String(ev.Cause ?? '') };
      pushEvent(e, 'ExecutionFailed', {
        executionFailedEventDetails: { error: final.error, cause: final.cause },
      });
    } else if (type === 'ExecutionTimeout') {
      final = { type };
      pushEvent(e, 'ExecutionTimedOut', {
        executionTimedOutEventDetails: { error: 'States.Timeout' },
      });
    } else if (type === 'ExecutionAborted') {
      final = { type };
    }
  }
  return final;
}
