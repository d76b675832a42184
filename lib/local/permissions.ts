/**
 * The local runtime enforces `uses` as AWS does (issue #12): what a function may call, and which
 * resource names it is given.
 *
 * In AWS each function has its own role, whose policy lib/stack.ts builds from the topology (the
 * grants of lib/function.ts for each `uses` entry, plus what its event sources grant), and its own
 * environment, with variables only for what it uses. Locally every handler runs in one process and
 * shares the SDK clients of lambdas/shared/aws.ts, so without this module a function missing a grant
 * passes every test and fails only after deploy. Here:
 *
 * - Policies. `functionPolicy` and `stateMachinePolicy` rebuild each role's statements with the same
 *   actions CDK grants, on local ARNs; test/infra/permissions.test.ts checks them, statement by
 *   statement, against the synthesized template.
 * - Who calls. `LocalLambdas` runs each invocation in an AsyncLocalStorage context naming the
 *   function (`runAsFunction`). Requests a function makes to a local service are attributed to it:
 *   node:http requests (the AWS SDK's) by their connection (on `http.client.request.created`, the
 *   client socket's port pair is mapped to the function; a keep-alive socket is re-mapped, or
 *   cleared, by every request it carries, so a socket reused outside any invocation is not
 *   attributed), fetch requests by an `x-paystep-function` header added on `undici:request:create`.
 *   Handler code is unchanged and knows nothing of this. A request made outside any invocation (the
 *   CLI, tests, the runtime itself) has no caller and is allowed.
 * - Checks. Each local service (DynamoDB proxy, queues, buckets, Step Functions) maps a request to
 *   IAM actions and resources and answers a denied one with the service's own AccessDenied error
 *   (`User: … is not authorized to perform: dynamodb:PutItem on resource: …`). The Step Functions
 *   engine checks the tasks it runs (Lambda invoke, SQS send) against the state machine's policy.
 * - Environment. While a function runs, `process.env` hides the resource variables (`envVarFor`) of
 *   what it does not use, as its AWS environment would not have them: `config.tableName('main')`
 *   fails with the same ConfigError as in AWS. Secrets have no local service (their values come
 *   through the environment), so this is how a secret missing from `uses` fails, as it does in AWS.
 *
 * Not covered: work a handler module starts outside any invocation (e.g. at import) is not
 * attributed; module-level state is shared by functions (one Lambda container each in AWS).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import diagnosticsChannel from 'node:diagnostics_channel';
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { envVarFor, type Topology } from '../topology.ts';

export const LOCAL_REGION = 'local';
export const LOCAL_ACCOUNT = '000000000000';
/** Header naming the calling function (added to fetch requests; honoured on any request). */
export const CALLER_HEADER = 'x-paystep-function';

export interface Statement {
  /** IAM actions, `*` and `?` wildcards allowed (`s3:GetObject*`). */
  actions: string[];
  /** ARNs, wildcards allowed. */
  resources: string[];
}

/** One IAM authorization a request needs. */
export interface Access {
  action: string;
  resource: string;
}

// The actions CDK grants (aws-cdk-lib 2.x), as lib/function.ts and lib/stack.ts use them.
/** Table.grantReadWriteData */
export const TABLE_READ_WRITE = [
  'dynamodb:BatchGetItem',
  'dynamodb:GetRecords',
  'dynamodb:GetShardIterator',
  'dynamodb:Query',
  'dynamodb:GetItem',
  'dynamodb:Scan',
  'dynamodb:ConditionCheckItem',
  'dynamodb:BatchWriteItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:DescribeTable',
];
/** Queue.grantSendMessages */
export const QUEUE_SEND = ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'];
/** Queue.grantConsumeMessages (an SQS event source grants it to its consumer). */
export const QUEUE_CONSUME = [
  'sqs:ReceiveMessage',
  'sqs:ChangeMessageVisibility',
  'sqs:GetQueueUrl',
  'sqs:DeleteMessage',
  'sqs:GetQueueAttributes',
];
/** Bucket.grantReadWrite */
export const BUCKET_READ_WRITE = [
  's3:GetObject*',
  's3:GetBucket*',
  's3:List*',
  's3:DeleteObject*',
  's3:PutObject',
  's3:PutObjectLegalHold',
  's3:PutObjectRetention',
  's3:PutObjectTagging',
  's3:PutObjectVersionTagging',
  's3:Abort*',
];
/** PaystepFunction.useStateMachine, on the state machine. */
export const STATE_MACHINE_USE = [
  'states:StartExecution',
  'states:SendTaskSuccess',
  'states:SendTaskFailure',
  'states:SendTaskHeartbeat',
  'states:DescribeStateMachine',
  'states:ListExecutions',
];
/** PaystepFunction.useStateMachine, on its executions. */
export const EXECUTION_USE = [
  'states:DescribeExecution',
  'states:DescribeStateMachineForExecution',
  'states:GetExecutionHistory',
  'states:StopExecution',
];
/** Secret.grantRead */
export const SECRET_READ = ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'];
/** Table.grantStreamRead (a DynamoDB event source grants it to its consumer), on the stream. */
export const STREAM_READ = ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator'];

/** Local ARNs of topology resources, by topology name. */
export function localArns(physicalName: (name: string) => string) {
  const prefix = (service: string) => `arn:aws:${service}:${LOCAL_REGION}:${LOCAL_ACCOUNT}`;
  return {
    table: (n: string) => `${prefix('dynamodb')}:table/${physicalName(n)}`,
    stream: (n: string) => `${prefix('dynamodb')}:table/${physicalName(n)}/stream/local`,
    queue: (n: string) => `${prefix('sqs')}:${physicalName(n)}`,
    bucket: (n: string) => `arn:aws:s3:::${physicalName(n)}`,
    stateMachine: (n: string) => `${prefix('states')}:stateMachine:${physicalName(n)}`,
    executions: (n: string) => `${prefix('states')}:execution:${physicalName(n)}:*`,
    secret: (n: string) => `${prefix('secretsmanager')}:secret:${physicalName(n)}`,
    function: (n: string) => `${prefix('lambda')}:function:${physicalName(n)}`,
  };
}

/** The statements of a function's role (data-plane grants; logs and X-Ray left out). */
export function functionPolicy(t: Topology, fn: string, physicalName: (name: string) => string): Statement[] {
  const def = t.functions[fn];
  if (!def) throw new Error(`no function ${fn} in the topology`);
  const arn = localArns(physicalName);
  const out: Statement[] = [];
  const uses = def.uses ?? {};
  for (const x of uses.tables ?? [])
    out.push({
      actions: TABLE_READ_WRITE,
      // As CDK's grantReadWriteData: the indexes only when the table has some.
      resources: t.tables[x]?.globalIndexes?.length
        ? [arn.table(x), `${arn.table(x)}/index/*`]
        : [arn.table(x)],
    });
  for (const x of uses.queues ?? []) out.push({ actions: QUEUE_SEND, resources: [arn.queue(x)] });
  for (const x of uses.buckets ?? [])
    out.push({ actions: BUCKET_READ_WRITE, resources: [arn.bucket(x), `${arn.bucket(x)}/*`] });
  for (const x of uses.stateMachines ?? []) {
    out.push({ actions: STATE_MACHINE_USE, resources: [arn.stateMachine(x)] });
    out.push({ actions: EXECUTION_USE, resources: [arn.executions(x)] });
  }
  for (const x of uses.secrets ?? []) out.push({ actions: SECRET_READ, resources: [arn.secret(x)] });
  // Event sources (lib/stack.ts buildEventSources).
  for (const [name, q] of Object.entries(t.queues))
    if (q.consumer === fn) out.push({ actions: QUEUE_CONSUME, resources: [arn.queue(name)] });
  for (const [name, table] of Object.entries(t.tables)) {
    if (table.stream?.consumer !== fn) continue;
    out.push({ actions: STREAM_READ, resources: [arn.stream(name)] });
    out.push({ actions: ['dynamodb:ListStreams'], resources: ['*'] });
    out.push({ actions: QUEUE_SEND, resources: [arn.queue(table.stream.failureQueue)] });
  }
  return out;
}

/** The statements of a state machine's role (lib/stack.ts buildStateMachines; logs and X-Ray left out). */
export function stateMachinePolicy(
  t: Topology,
  machine: string,
  physicalName: (name: string) => string,
): Statement[] {
  const def = t.stateMachines[machine];
  if (!def) throw new Error(`no state machine ${machine} in the topology`);
  const arn = localArns(physicalName);
  const out: Statement[] = [];
  for (const s of Object.values(def.substitutions)) {
    if ('functionArn' in s)
      out.push({ actions: ['lambda:InvokeFunction'], resources: [arn.function(s.functionArn)] });
    else if ('tableName' in s)
      out.push({
        actions: TABLE_READ_WRITE,
        resources: [arn.table(s.tableName), `${arn.table(s.tableName)}/index/*`],
      });
    else if ('queueUrl' in s) out.push({ actions: QUEUE_SEND, resources: [arn.queue(s.queueUrl)] });
    else
      out.push({
        actions: BUCKET_READ_WRITE,
        resources: [arn.bucket(s.bucketName), `${arn.bucket(s.bucketName)}/*`],
      });
  }
  return out;
}

const patterns = new Map<string, RegExp>();
function matches(pattern: string, value: string, ignoreCase: boolean): boolean {
  const id = `${ignoreCase ? 'i' : 's'}${pattern}`;
  let re = patterns.get(id);
  if (!re) {
    const body = pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.');
    re = new RegExp(`^${body}$`, ignoreCase ? 'is' : 's');
    patterns.set(id, re);
  }
  return re.test(value);
}

/** IAM evaluation of identity statements (all Allow): true when one allows the action on the resource. */
export function allows(statements: Statement[], access: Access): boolean {
  return statements.some(
    (s) =>
      s.actions.some((a) => matches(a, access.action, true)) &&
      s.resources.some((r) => matches(r, access.resource, false)),
  );
}

export type Principal = { function: string } | { stateMachine: string };

/** The policies of one runtime's topology; the local services ask it. */
export class LocalPermissions {
  readonly topology: Topology;
  readonly physicalName: (name: string) => string;
  private readonly policies = new Map<string, Statement[]>();
  private readonly hidden = new Map<string, Set<string>>();
  private readonly ports = new Set<number>();

  constructor(topology: Topology, physicalName: (name: string) => string) {
    this.topology = topology;
    this.physicalName = physicalName;
    installCallerTracking();
  }

  policy(p: Principal): Statement[] {
    const id = 'function' in p ? `f:${p.function}` : `s:${p.stateMachine}`;
    let statements = this.policies.get(id);
    if (!statements) {
      statements =
        'function' in p
          ? functionPolicy(this.topology, p.function, this.physicalName)
          : stateMachinePolicy(this.topology, p.stateMachine, this.physicalName);
      this.policies.set(id, statements);
    }
    return statements;
  }

  /**
   * The AWS message of the first access the principal lacks, or undefined when all are allowed. A
   * caller that is no function of this topology (another runtime's) is not checked.
   */
  denied(p: Principal, accesses: Access[]): string | undefined {
    if ('function' in p ? !this.topology.functions[p.function] : !this.topology.stateMachines[p.stateMachine])
      return undefined;
    const statements = this.policy(p);
    for (const access of accesses) {
      if (allows(statements, access)) continue;
      const role =
        'function' in p
          ? `assumed-role/${this.physicalName(p.function)}-role/${this.physicalName(p.function)}`
          : `assumed-role/${this.physicalName(p.stateMachine)}-role/${this.physicalName(p.stateMachine)}`;
      const what = 'function' in p ? `function ${p.function}` : `state machine ${p.stateMachine}`;
      return (
        `User: arn:aws:sts::${LOCAL_ACCOUNT}:${role} is not authorized to perform: ${access.action} on ` +
        `resource: ${access.resource} because no identity-based policy allows the ${access.action} action ` +
        `(paystep: ${what} is not granted this in lib/topology; ${'function' in p ? 'add the resource to its uses' : 'name it in its substitutions'})`
      );
    }
    return undefined;
  }

  /** The calling function of a request to a local service, if it came from one of this topology. */
  callerOf(req: IncomingMessage): string | undefined {
    const fn = callerOf(req);
    return fn && this.topology.functions[fn] ? fn : undefined;
  }

  /** Denial message for a request's caller, or undefined (allowed, or no caller). */
  check(req: IncomingMessage, accesses: () => Access[]): string | undefined {
    const fn = this.callerOf(req);
    return fn ? this.denied({ function: fn }, accesses()) : undefined;
  }

  /** Requests functions make to this endpoint are attributed to them (call when a service listens). */
  serve(endpoint: string): void {
    const port = Number(new URL(endpoint).port);
    this.ports.add(port);
    servedPorts.set(port, (servedPorts.get(port) ?? 0) + 1);
  }

  /** Forgets the endpoints of this runtime (at stop). */
  close(): void {
    for (const port of this.ports) {
      const n = (servedPorts.get(port) ?? 1) - 1;
      if (n > 0) servedPorts.set(port, n);
      else servedPorts.delete(port);
    }
    this.ports.clear();
  }

  /** Resource variables a function must not see: those of the topology resources it does not use. */
  hiddenEnv(fn: string): Set<string> {
    let hidden = this.hidden.get(fn);
    if (!hidden) {
      const t = this.topology;
      const uses = t.functions[fn]?.uses ?? {};
      const all = [
        ...Object.keys(t.tables).map((x) => [envVarFor.table(x), uses.tables?.includes(x)] as const),
        ...Object.keys(t.queues).map((x) => [envVarFor.queue(x), uses.queues?.includes(x)] as const),
        ...Object.keys(t.buckets).map((x) => [envVarFor.bucket(x), uses.buckets?.includes(x)] as const),
        ...Object.keys(t.stateMachines).map(
          (x) => [envVarFor.stateMachine(x), uses.stateMachines?.includes(x)] as const,
        ),
        ...Object.keys(t.secrets).flatMap((x) => [
          [envVarFor.secret(x), uses.secrets?.includes(x)] as const,
          [envVarFor.secretValue(x), uses.secrets?.includes(x)] as const,
        ]),
      ];
      hidden = new Set(all.filter(([, used]) => !used).map(([name]) => name));
      this.hidden.set(fn, hidden);
    }
    return hidden;
  }
}

// -------------------------------------------------------------------------------------------------
// Invocation context and environment

interface Invocation {
  fn: string;
  hiddenEnv: Set<string>;
}

const invocation = new AsyncLocalStorage<Invocation>();

/** Runs `body` as function `fn`: its requests are attributed to it and its environment is its own. */
export function runAsFunction<T>(fn: string, permissions: LocalPermissions, body: () => T): T {
  installEnvView();
  return invocation.run({ fn, hiddenEnv: permissions.hiddenEnv(fn) }, body);
}

/** The function whose invocation this code runs in, if any. */
export function currentFunction(): string | undefined {
  return invocation.getStore()?.fn;
}

const ENV_VIEW = Symbol.for('paystep.envView');

/**
 * Replaces `process.env` (once per process) with a view that, inside an invocation, hides the
 * variables its function does not get in AWS. Outside invocations it is `process.env` itself.
 */
function installEnvView(): void {
  const env = process.env as NodeJS.ProcessEnv & { [ENV_VIEW]?: true };
  if (env[ENV_VIEW]) return;
  const real = process.env;
  const hidden = (key: string | symbol) =>
    typeof key === 'string' && invocation.getStore()?.hiddenEnv.has(key) === true;
  process.env = new Proxy(real, {
    get: (target, key) => (key === ENV_VIEW ? true : hidden(key) ? undefined : Reflect.get(target, key)),
    has: (target, key) => !hidden(key) && Reflect.has(target, key),
    ownKeys: (target) => Reflect.ownKeys(target).filter((k) => !hidden(k)),
    getOwnPropertyDescriptor: (target, key) =>
      hidden(key) ? undefined : Reflect.getOwnPropertyDescriptor(target, key),
    // Straight to the real environment: an ordinary set through the proxy would redefine an
    // existing variable with a partial descriptor, which process.env refuses (a second runtime
    // in the same process, or a test changing a variable, would throw).
    set: (target, key, value) => Reflect.set(target, key, value),
  });
}

// -------------------------------------------------------------------------------------------------
// Attribution of requests

/** Ports of the local services, with how many runtimes serve each (tests may run several). */
const servedPorts = new Map<number, number>();
/** `<client port>:<server port>` of loopback connections to local services → the function using it. */
const connections = new Map<string, { socket: Socket; fn: string }>();
/** The function of the request a client socket carries now (undefined: none). */
const carrying = new WeakMap<Socket, { fn: string | undefined; key?: string }>();
const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);
let tracking = false;

/** Maps a connection to a local service to the function of the request it carries, or clears it. */
function attribute(socket: Socket): void {
  if (!socket.remoteAddress || !LOOPBACK.has(socket.remoteAddress)) return;
  if (!servedPorts.has(socket.remotePort ?? -1)) return;
  const key = `${socket.localPort}:${socket.remotePort}`;
  const state = carrying.get(socket);
  if (state) state.key = key;
  const fn = state?.fn;
  if (fn) connections.set(key, { socket, fn });
  else if (connections.get(key)?.socket === socket) connections.delete(key);
}

/** A request was given a socket: every request re-maps its connection (one request at a time). */
function carry(socket: Socket, fn: string | undefined): void {
  const state = carrying.get(socket);
  if (state) state.fn = fn;
  else {
    carrying.set(socket, { fn });
    // Once per socket: its first request may be written before it connects.
    if (socket.connecting) socket.once('connect', () => attribute(socket));
    socket.once('close', () => {
      const key = carrying.get(socket)?.key;
      if (key && connections.get(key)?.socket === socket) connections.delete(key);
    });
  }
  if (!socket.connecting) attribute(socket);
}

/**
 * Subscribes `fn` to a diagnostics channel, replacing the subscriber an earlier copy of this
 * module left there: channels are per process, while a test runner may load this module once per
 * test file.
 */
function subscribeOnce(name: string, fn: (message: unknown) => void): void {
  const channel = diagnosticsChannel.channel(name) as diagnosticsChannel.Channel & {
    paystepSubscriber?: (message: unknown) => void;
  };
  if (channel.paystepSubscriber) channel.unsubscribe(channel.paystepSubscriber);
  channel.subscribe(fn);
  channel.paystepSubscriber = fn;
}

function installCallerTracking(): void {
  if (tracking) return;
  tracking = true;
  subscribeOnce('http.client.request.created', (message) => {
    const request = (message as { request: ClientRequest }).request;
    const fn = invocation.getStore()?.fn;
    request.once('socket', (socket: Socket) => carry(socket, fn));
  });
  subscribeOnce('undici:request:create', (message) => {
    const request = (message as { request: { origin?: string | URL; addHeader(k: string, v: string): void } })
      .request;
    const fn = invocation.getStore()?.fn;
    if (!fn || !request.origin) return;
    try {
      const url = new URL(String(request.origin));
      if (LOOPBACK.has(url.hostname.replace(/^\[|\]$/g, '')) && servedPorts.has(Number(url.port)))
        request.addHeader(CALLER_HEADER, fn);
    } catch {
      // not a URL we serve
    }
  });
}

/** The function a request to a local service comes from (header first, then its connection). */
export function callerOf(req: IncomingMessage): string | undefined {
  const header = req.headers[CALLER_HEADER];
  if (typeof header === 'string' && header) return header;
  const socket = req.socket;
  return connections.get(`${socket.remotePort}:${socket.localPort}`)?.fn;
}

// -------------------------------------------------------------------------------------------------
// Requests → IAM actions and resources

/** DynamoDB: `X-Amz-Target` operation and its JSON input. */
export function dynamodbAccesses(
  op: string,
  input: Record<string, unknown>,
  tableArn: (physical: string) => string,
): Access[] {
  const onTable = (action: string, table: unknown, index?: unknown) => ({
    action,
    resource:
      typeof table === 'string'
        ? `${tableArn(table)}${typeof index === 'string' ? `/index/${index}` : ''}`
        : '*',
  });
  switch (op) {
    case 'BatchGetItem':
    case 'BatchWriteItem': {
      const tables = Object.keys((input.RequestItems as Record<string, unknown> | undefined) ?? {});
      return tables.map((table) => onTable(`dynamodb:${op}`, table));
    }
    case 'TransactWriteItems':
    case 'TransactGetItems': {
      // IAM checks each item's own action.
      const items = Array.isArray(input.TransactItems)
        ? (input.TransactItems as Record<string, unknown>[])
        : [];
      const actions: Record<string, string> = {
        Put: 'PutItem',
        Update: 'UpdateItem',
        Delete: 'DeleteItem',
        ConditionCheck: 'ConditionCheckItem',
        Get: 'GetItem',
      };
      return items.flatMap((item) =>
        Object.entries(item ?? {})
          .filter(([k]) => actions[k])
          .map(([k, v]) => onTable(`dynamodb:${actions[k]}`, (v as { TableName?: unknown })?.TableName)),
      );
    }
    default:
      return [onTable(`dynamodb:${op || 'Unknown'}`, input.TableName, input.IndexName)];
  }
}

/** SQS (JSON protocol): operation and input; batch operations need their single action. */
export function sqsAccesses(
  op: string,
  input: Record<string, unknown>,
  queueArn: (name: string) => string,
): Access[] {
  const action = `sqs:${op.replace(/Batch$/, '')}`;
  let name: string | undefined;
  if (typeof input.QueueUrl === 'string') {
    try {
      name = decodeURIComponent(new URL(input.QueueUrl).pathname.split('/').filter(Boolean).pop() ?? '');
    } catch {
      name = undefined;
    }
  } else if (typeof input.QueueName === 'string') name = input.QueueName;
  return [{ action, resource: name ? queueArn(name) : '*' }];
}

/** S3 (REST): what each local operation needs (lib/local/buckets.ts serves these). */
export function s3Accesses(method: string, bucket: string, key: string, query: URLSearchParams): Access[] {
  if (!bucket) return [{ action: 's3:ListAllMyBuckets', resource: '*' }];
  const bucketArn = `arn:aws:s3:::${bucket}`;
  if (key) {
    const object = `${bucketArn}/${key}`;
    if (method === 'PUT') return [{ action: 's3:PutObject', resource: object }];
    if (method === 'DELETE') return [{ action: 's3:DeleteObject', resource: object }];
    return [{ action: 's3:GetObject', resource: object }];
  }
  if (method === 'PUT') return [{ action: 's3:CreateBucket', resource: bucketArn }];
  if (method === 'DELETE') return [{ action: 's3:DeleteBucket', resource: bucketArn }];
  if (method === 'POST' && query.has('delete'))
    return [{ action: 's3:DeleteObject', resource: `${bucketArn}/*` }];
  if (method === 'GET' && query.has('location'))
    return [{ action: 's3:GetBucketLocation', resource: bucketArn }];
  return [{ action: 's3:ListBucket', resource: bucketArn }];
}

/**
 * Step Functions: operation and input. Task tokens name their execution (`executionOfToken`); the
 * task-response actions are granted on its state machine.
 */
export function sfnAccesses(
  op: string,
  input: Record<string, unknown>,
  executionOfToken: (token: string) => string | undefined,
): Access[] {
  const action = `states:${op}`;
  const machineOf = (execution: string) =>
    execution.replace(':execution:', ':stateMachine:').replace(/:[^:]+$/, '');
  if (typeof input.executionArn === 'string') return [{ action, resource: input.executionArn }];
  if (typeof input.stateMachineArn === 'string') return [{ action, resource: input.stateMachineArn }];
  if (typeof input.taskToken === 'string') {
    const execution = executionOfToken(input.taskToken);
    return [{ action, resource: execution ? machineOf(execution) : '*' }];
  }
  return [{ action, resource: '*' }];
}
