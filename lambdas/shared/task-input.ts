/**
 * The input contract of the Lambda tasks the workflows invoke (statemachines/*.asl.json; docs/states.md,
 * "Task input"). Each task handler declares what it accepts as a zod schema and is wrapped by
 * `taskHandler`, so the event is parsed before any work is done.
 *
 * Input that does not match fails the task with `InvalidTaskInput`: a named error that the retry
 * policies never retry (statemachines/retry-policies.json, `NeverRetried`) and that each workflow routes
 * to its failure or attention path. Input that is wrong once is wrong on every retry, and acting on it
 * could only be a guess. The message names the task and each problem's path, never the values (task
 * input carries task tokens).
 */
import { z } from 'zod';
import { PaystepError } from './errors.ts';

export interface TaskInputIssue {
  /** Dotted path of the offending field (`(input)` for the event itself). */
  path: string;
  message: string;
}

export class InvalidTaskInput extends PaystepError {
  override name = 'InvalidTaskInput';
  readonly task: string;
  readonly issues: TaskInputIssue[];

  constructor(task: string, issues: TaskInputIssue[]) {
    super(`${task}: invalid task input: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
    this.task = task;
    this.issues = issues;
  }
}

/** The event parsed by `schema`, or `InvalidTaskInput` naming `task` (the function's topology name). */
export function parseTaskInput<S extends z.ZodType>(task: string, schema: S, event: unknown): z.output<S> {
  const parsed = schema.safeParse(event);
  if (parsed.success) return parsed.data;
  throw new InvalidTaskInput(
    task,
    parsed.error.issues.map((i) => ({
      path: i.path.map(String).join('.') || '(input)',
      message: i.message,
    })),
  );
}

/**
 * A task handler that accepts only what `schema` describes; `run` receives the parsed (typed) input.
 * Invalid input rejects with `InvalidTaskInput` before `run` is called.
 */
export function taskHandler<S extends z.ZodType, R>(
  task: string,
  schema: S,
  run: (input: z.output<S>) => Promise<R>,
): (event: unknown) => Promise<R> {
  return async (event: unknown) => run(parseTaskInput(task, schema, event));
}

/** An id with its prefix (`pay_…`, `re_…`, `dp_…`, `png_…`; lambdas/shared/ids.ts). */
export const prefixedId = (prefix: string) =>
  z.string().regex(new RegExp(`^${prefix}_[A-Za-z0-9]+$`), `expected a ${prefix}_… id`);

/** A Step Functions task token (`$$.Task.Token`). */
export const taskToken = z.string().min(1);

/** The `{Error, Cause}` a Catch puts at its ResultPath. */
export const caughtError = z.object({ Error: z.string().optional(), Cause: z.string().optional() });
