/**
 * The Step Functions API endpoint of the local Step Functions (lib/local/stepfunctions.ts): AWS JSON
 * 1.0 (`X-Amz-Target: AWSStepFunctions.<Operation>`), what `@aws-sdk/client-sfn` speaks, for the
 * operations paystep calls; each request is checked against its caller's grants
 * (lib/local/permissions.ts) and API errors are answered with their `__type`.
 */
import type http from 'node:http';
import type { Logger } from './log.ts';
import { sfnAccesses, type LocalPermissions } from './permissions.ts';
import type { LocalStepFunctions } from './stepfunctions.ts';
import { SfnApiError, decodeToken } from './stepfunctions-model.ts';

/** The operations the endpoint serves. */
export type StepFunctionsApi = Pick<
  LocalStepFunctions,
  | 'startExecution'
  | 'describeExecution'
  | 'listExecutions'
  | 'getExecutionHistory'
  | 'stopExecution'
  | 'sendTaskSuccess'
  | 'sendTaskFailure'
  | 'sendTaskHeartbeat'
>;

/** Answers one Step Functions API request (AWS JSON 1.0) with the operations of `sfn`. */
export async function serveStepFunctionsApi(
  sfn: StepFunctionsApi,
  permissions: LocalPermissions | undefined,
  log: Logger,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  const chunks: Buffer[] = [];
  const target = String(req.headers['x-amz-target'] ?? '');
  const op = target.startsWith('AWSStepFunctions.') ? target.slice('AWSStepFunctions.'.length) : '';
  const send = (status: number, body: unknown, errorType?: string) => {
    const headers: Record<string, string> = { 'content-type': 'application/x-amz-json-1.0' };
    if (errorType) headers['x-amzn-errortype'] = errorType;
    res.writeHead(status, headers).end(JSON.stringify(body));
  };
  try {
    for await (const c of req) chunks.push(c as Buffer);
    const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
    const ops: Record<string, (b: never) => unknown> = {
      StartExecution: (b) => sfn.startExecution(b),
      DescribeExecution: (b) => sfn.describeExecution(b),
      ListExecutions: (b) => sfn.listExecutions(b),
      GetExecutionHistory: (b) => sfn.getExecutionHistory(b),
      StopExecution: (b) => sfn.stopExecution(b),
      SendTaskSuccess: (b) => sfn.sendTaskSuccess(b),
      SendTaskFailure: (b) => sfn.sendTaskFailure(b),
      SendTaskHeartbeat: (b) => sfn.sendTaskHeartbeat(b),
    };
    const fn = ops[op];
    const denial = permissions?.check(req, () =>
      sfnAccesses(
        op,
        (body && typeof body === 'object' ? body : {}) as Record<string, unknown>,
        (token) => decodeToken(token)?.a,
      ),
    );
    if (denial)
      return send(400, { __type: 'AccessDeniedException', message: denial }, 'AccessDeniedException');
    if (!fn)
      return send(
        400,
        { __type: 'UnknownOperationException', message: `operation ${target} is not supported locally` },
        'UnknownOperationException',
      );
    send(200, fn(body as never));
  } catch (err) {
    if (err instanceof SfnApiError)
      return send(err.status, { __type: err.name, message: err.message }, err.name);
    if (err instanceof SyntaxError)
      return send(
        400,
        { __type: 'SerializationException', message: 'request body is not JSON' },
        'SerializationException',
      );
    log.error({ err, op }, 'step functions endpoint failed');
    send(500, { __type: 'InternalFailure', message: 'internal error' }, 'InternalFailure');
  }
}
