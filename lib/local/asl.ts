/**
 * Preparing an ASL definition for the local interpreter (aws-local-stepfunctions).
 *
 * The file under statemachines/ is the one deployed to AWS; locally it is first validated as it is,
 * then compiled into an equivalent definition that lets the runtime own time and tasks:
 * - every Task is dispatched to the runtime (which invokes the in-process handler, enforces
 *   TimeoutSeconds/HeartbeatSeconds on the scaled clock, and records the result durably);
 * - `$$.Task.Token` in Parameters becomes a placeholder that the runtime replaces with a token it
 *   mints when the task starts (the interpreter has no per-task context object);
 * - every Wait becomes a Task on the runtime's clock, so Seconds/Timestamp/SecondsPath/
 *   TimestampPath are honoured and compressed by PAYSTEP_TIME_SCALE; InputPath/OutputPath kept;
 * - Retry IntervalSeconds and MaxDelaySeconds are divided by the time scale (backoff kept).
 * The definition it receives is already the deployed one: named retry policies expanded by
 * lib/asl-definition.ts, the loader shared with the CDK stack.
 * See docs/decisions/0002-local-step-functions.md.
 */
import type { AslDefinition, AslState, Json } from '../asl-definition.ts';

export type { AslDefinition, AslState } from '../asl-definition.ts';
// The local runtime loads definitions through the loader shared with lib/stack.ts (retry policies
// expanded, then `${Name}` filled): runtime.ts imports `substitute` from here.
export { substitute } from '../asl-definition.ts';

export const TASK_TOKEN_PLACEHOLDER = '__paystep_task_token__';
export const WAIT_RESOURCE = 'arn:aws:states:::paystep:wait';
/**
 * Replaces the interpreter's own task timeout (60 s by default; AWS has none) with the longest a
 * Node timer can wait (~24.8 days); the runtime enforces the definition's real TimeoutSeconds.
 */
const UNLIMITED_SECONDS = 2_147_483;

export interface TaskSpec {
  stateName: string;
  /** Type of the state in the original definition (`Task` or `Wait`). */
  originalType: 'Task' | 'Wait';
  resource: string;
  timeoutSeconds?: number;
  timeoutSecondsPath?: string;
  heartbeatSeconds?: number;
}

export interface CompiledDefinition {
  definition: AslDefinition;
  tasks: Map<string, TaskSpec>;
  /** Original type of every state by name (for history events). */
  stateTypes: Map<string, string>;
}

function replaceTokenRefs(value: Json): Json {
  if (Array.isArray(value)) return value.map(replaceTokenRefs);
  if (value && typeof value === 'object') {
    const out: Record<string, Json> = {};
    for (const [k, v] of Object.entries(value)) {
      if (k.endsWith('.$') && v === '$$.Task.Token') out[k.slice(0, -2)] = TASK_TOKEN_PLACEHOLDER;
      else out[k] = replaceTokenRefs(v);
    }
    return out;
  }
  return value;
}

export function compileDefinition(source: AslDefinition, timeScale: number): CompiledDefinition {
  const definition = structuredClone(source);
  const tasks = new Map<string, TaskSpec>();
  const stateTypes = new Map<string, string>();

  const visit = (machine: { States: Record<string, AslState> }) => {
    for (const [name, state] of Object.entries(machine.States)) {
      if (stateTypes.has(name)) throw new Error(`state name "${name}" is used twice in the definition`);
      stateTypes.set(name, state.Type);
      if (state.Type === 'Task') {
        for (const k of ['TimeoutSecondsPath', 'HeartbeatSecondsPath'])
          if (state[k] !== undefined)
            throw new Error(
              `state "${name}": ${k} is not supported by the local runtime; use ${k.replace('Path', '')}`,
            );
        tasks.set(name, {
          stateName: name,
          originalType: 'Task',
          resource: String(state.Resource),
          timeoutSeconds: typeof state.TimeoutSeconds === 'number' ? state.TimeoutSeconds : undefined,
          timeoutSecondsPath:
            typeof state.TimeoutSecondsPath === 'string' ? state.TimeoutSecondsPath : undefined,
          heartbeatSeconds: typeof state.HeartbeatSeconds === 'number' ? state.HeartbeatSeconds : undefined,
        });
        delete state.TimeoutSecondsPath;
        delete state.HeartbeatSeconds;
        delete state.HeartbeatSecondsPath;
        state.TimeoutSeconds = UNLIMITED_SECONDS;
        if (state.Parameters !== undefined) state.Parameters = replaceTokenRefs(state.Parameters);
      } else if (state.Type === 'Wait') {
        const params: Record<string, Json> = { 'input.$': '$' };
        if (state.Seconds !== undefined) params.seconds = state.Seconds;
        else if (state.SecondsPath !== undefined) params['seconds.$'] = state.SecondsPath;
        else if (state.Timestamp !== undefined) params.timestamp = state.Timestamp;
        else if (state.TimestampPath !== undefined) params['timestamp.$'] = state.TimestampPath;
        const task: AslState = { Type: 'Task', Resource: WAIT_RESOURCE, Parameters: params };
        task.TimeoutSeconds = UNLIMITED_SECONDS;
        for (const k of ['InputPath', 'OutputPath', 'Next', 'End', 'Comment'])
          if (state[k] !== undefined) task[k] = state[k] as Json;
        machine.States[name] = task;
        tasks.set(name, { stateName: name, originalType: 'Wait', resource: WAIT_RESOURCE });
      }
      if (Array.isArray(state.Retry) && timeScale !== 1) {
        for (const r of state.Retry as Record<string, Json>[]) {
          r.IntervalSeconds = (typeof r.IntervalSeconds === 'number' ? r.IntervalSeconds : 1) / timeScale;
          if (typeof r.MaxDelaySeconds === 'number') r.MaxDelaySeconds = r.MaxDelaySeconds / timeScale;
        }
      }
      if (state.Type === 'Parallel' && Array.isArray(state.Branches))
        for (const b of state.Branches as unknown as AslDefinition[]) visit(b);
      if (state.Type === 'Map') {
        const inner = (state.ItemProcessor ?? state.Iterator) as unknown as AslDefinition | undefined;
        if (inner) visit(inner);
      }
    }
  };
  visit(definition);
  return { definition, tasks, stateTypes };
}
