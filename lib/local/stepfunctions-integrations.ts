/**
 * The service integrations of the local Step Functions' Task states (lib/local/stepfunctions.ts):
 * invoking a Lambda function and sending an SQS message, each checked first against the state
 * machine's role as AWS would (lib/local/permissions.ts).
 */
import type { Access } from './permissions.ts';
import { WAIT_RESOURCE } from './asl.ts';
import type { StepFunctionsOptions } from './stepfunctions.ts';
import { LOCAL_ACCOUNT, LOCAL_REGION, TaskError } from './stepfunctions-model.ts';

/** What a task's call needs from the runtime. */
export type TaskIntegrationOptions = Pick<
  StepFunctionsOptions,
  'invokeFunction' | 'sendMessage' | 'permissions'
>;

/** The state machine's role must allow what a task calls, as in AWS (lib/stack.ts grants it). */
function authorizeTask(opts: TaskIntegrationOptions, machine: string, access: Access, error: string): void {
  const denial = opts.permissions?.denied({ stateMachine: machine }, [access]);
  if (denial) throw new TaskError(error, denial);
}

/**
 * Calls what a Task state names: `lambda:invoke`, a function ARN or `sqs:sendMessage` (the
 * `.waitForTaskToken` and `.sync` suffixes dispatch the same call); anything else is a States.Runtime
 * error.
 */
export async function dispatchTask(
  opts: TaskIntegrationOptions,
  machine: string,
  resource: string,
  input: unknown,
): Promise<unknown> {
  const r = resource.replace(/\.waitForTaskToken$/, '').replace(/\.sync(:2)?$/, '');
  const functionArn = (name: string) =>
    name.startsWith('arn:') ? name : `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:${name}`;
  if (r === 'arn:aws:states:::lambda:invoke') {
    const p = input as { FunctionName: string; Payload?: unknown };
    const access = { action: 'lambda:InvokeFunction', resource: functionArn(String(p.FunctionName)) };
    authorizeTask(opts, machine, access, 'Lambda.AWSLambdaException');
    const payload = await opts.invokeFunction(p.FunctionName, p.Payload ?? {});
    return { ExecutedVersion: '$LATEST', Payload: payload ?? null, StatusCode: 200 };
  }
  if (/^arn:aws:lambda:[^:]+:[^:]+:function:/.test(r)) {
    authorizeTask(
      opts,
      machine,
      { action: 'lambda:InvokeFunction', resource: r },
      'Lambda.AWSLambdaException',
    );
    return opts.invokeFunction(r, input);
  }
  if (r === 'arn:aws:states:::sqs:sendMessage') {
    if (!opts.sendMessage) throw new TaskError('States.Runtime', 'no queue service');
    const p = input as { QueueUrl: string; MessageBody: unknown };
    const queue = String(p.QueueUrl).split('/').pop() ?? '';
    const access = {
      action: 'sqs:SendMessage',
      resource: `arn:aws:sqs:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${queue}`,
    };
    authorizeTask(opts, machine, access, 'SQS.AmazonSQSException');
    const body = typeof p.MessageBody === 'string' ? p.MessageBody : JSON.stringify(p.MessageBody);
    return opts.sendMessage(p.QueueUrl, body);
  }
  if (r === WAIT_RESOURCE) return input;
  throw new TaskError('States.Runtime', `resource ${resource} is not supported by the local runtime`);
}
