/**
 * Handler overhead (`--role handler`): payments-create's own time per request in-process, with the
 * AWS clients mocked (aws-sdk-client-mock: `send` answers at once) and, separately, with the real
 * SDK middleware stack over a zero-latency fake transport.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { machineCpuSeconds, round, summarize, type LatencySummary } from '../lib.ts';
import { roundSummary3 } from './summaries.ts';

interface HandlerVariant {
  variant: string;
  iterations: number;
  latencyMs: LatencySummary;
  sdkCallsPerRequest: number;
  cpuUsPerRequest: number;
  /** Cores used by other processes meanwhile (a shared machine makes the tail pessimistic). */
  otherCores?: number;
}

export interface HandlerResult {
  variants: HandlerVariant[];
}

/** `--role handler <iterations>`: payments-create in this process with the AWS clients faked. */
export async function handlerRole(argv: string[]): Promise<number> {
  const iterations = Number(argv[0] ?? 5000);
  let message: { type: 'result'; value?: HandlerResult; error?: string };
  try {
    message = { type: 'result', value: await measureHandler(iterations) };
  } catch (err) {
    message = { type: 'result', error: (err as Error).stack ?? String(err) };
  }
  // Exit once the answer is sent: nothing else should keep this process (or its parent) alive.
  await new Promise<void>((resolve) => process.send!(message, () => resolve()));
  process.exit(0);
}

async function measureHandler(iterations: number): Promise<HandlerResult> {
  const { envVarFor } = await import('../../lib/topology.ts');
  const { physicalName } = await import('../../lib/local/runtime.ts');
  const smArn = `arn:aws:states:local:000000000000:stateMachine:${physicalName('payment')}`;
  Object.assign(process.env, {
    AWS_REGION: 'local',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9',
    AWS_ENDPOINT_URL_SFN: 'http://127.0.0.1:9',
    POWERTOOLS_SERVICE_NAME: 'paystep',
    POWERTOOLS_LOG_LEVEL: 'WARN', // as the local runtime runs handlers
    [envVarFor.table('main')]: physicalName('main'),
    [envVarFor.stateMachine('payment')]: smArn,
    // No wait: the one read the handler makes answers `captured` (the mocked GetItem below), as a
    // wait woken by the captured transition would; with 8000 the wait's first poll (500 ms) would
    // be measured instead of the handler.
    PAYSTEP_SYNC_WAIT_MS: '0',
  });
  const { mockClient } = await import('aws-sdk-client-mock');
  const { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } =
    await import('@aws-sdk/lib-dynamodb');
  const { SFNClient, StartExecutionCommand } = await import('@aws-sdk/client-sfn');
  const { marshall } = await import('@aws-sdk/util-dynamodb');
  const { clients, resetClients } = await import('../../lambdas/shared/aws.ts');
  const { handler } = await import('../../lambdas/payments/create.ts');

  const nowS = Math.floor(Date.now() / 1000);
  const item = {
    pk: 'PAYMENT#pay_bench',
    sk: 'PAYMENT',
    kind: 'payment',
    id: 'pay_bench',
    object: 'payment',
    merchant_id: 'mch_bench',
    amount: 1050,
    currency: 'usd',
    status: 'captured',
    amount_captured: 1050,
    amount_refunded: 0,
    capture_method: 'automatic',
    payment_method: 'pm_card_visa',
    processor: 'stripe',
    processor_reference: 'pi_bench',
    failure: null,
    order_id: null,
    customer: null,
    channel: null,
    description: null,
    metadata: {},
    card: { brand: 'visa', last4: '4242', country: 'US' },
    capture_before: null,
    cancellation_reason: null,
    review: null,
    execution_arn: `${smArn.replace(':stateMachine:', ':execution:')}:pay_bench`,
    created: nowS,
    updated: nowS,
    version: 3,
    created_ms: nowS * 1000,
    gsi1pk: 'MERCHANT#mch_bench#PAYMENTS',
    gsi1sk: `${nowS * 1000}#pay_bench`,
  };
  const body = JSON.stringify({ amount: 1050, currency: 'usd', payment_method: 'pm_card_visa' });
  const event = () => ({
    resource: '/v1/payments',
    path: '/v1/payments',
    httpMethod: 'POST',
    headers: {
      Authorization: 'Bearer sk_test_bench',
      'Content-Type': 'application/json',
      'Idempotency-Key': randomUUID(),
    },
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      stage: 'v1',
      requestId: randomUUID(),
      resourcePath: '/v1/payments',
      httpMethod: 'POST',
      authorizer: { principalId: 'mch_bench', merchantId: 'mch_bench' },
    },
    body,
    isBase64Encoded: false,
  });
  const context = {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'paystep-payments-create',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:local:000000000000:function:paystep-payments-create',
    memoryLimitInMB: '512',
    awsRequestId: 'bench',
    logGroupName: '/aws/lambda/paystep-payments-create',
    logStreamName: 'local',
    getRemainingTimeInMillis: () => 15_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
  const invoke = handler as unknown as (
    e: unknown,
    c: unknown,
  ) => Promise<{ statusCode: number; body: string }>;

  const measure = async (variant: string, calls: () => number): Promise<HandlerVariant> => {
    const check = await invoke(event(), context);
    if (check.statusCode !== 201 || !check.body.includes('"captured"'))
      throw new Error(`${variant}: unexpected answer ${check.statusCode} ${check.body.slice(0, 300)}`);
    for (let i = 0; i < Math.min(1000, iterations); i++) await invoke(event(), context); // warm up
    const callsBefore = calls();
    const lat = new Float64Array(iterations);
    const cpu0 = process.cpuUsage();
    const m0 = machineCpuSeconds();
    const w0 = performance.now();
    for (let i = 0; i < iterations; i++) {
      const e = event(); // building the event is the gateway's work, not the handler's
      const t = process.hrtime.bigint();
      await invoke(e, context);
      lat[i] = Number(process.hrtime.bigint() - t) / 1e6;
    }
    const cpu = process.cpuUsage(cpu0);
    const m1 = machineCpuSeconds();
    const wall = (performance.now() - w0) / 1000;
    return {
      variant,
      iterations,
      otherCores:
        m0 && m1
          ? round(Math.max(0, (m1.busy - m0.busy - (cpu.user + cpu.system) / 1e6) / wall), 2)
          : undefined,
      latencyMs: roundSummary3(summarize(lat)),
      sdkCallsPerRequest: round((calls() - callsBefore) / iterations, 2),
      cpuUsPerRequest: round((cpu.user + cpu.system) / iterations, 1),
    };
  };

  // 1. `send` mocked: only the handler's own code (middy, parsing, validation, idempotency and
  //    payment logic, presentation) and the Document client's command objects.
  resetClients();
  const ddbMock = mockClient(DynamoDBDocumentClient);
  const sfnMock = mockClient(SFNClient);
  ddbMock.on(GetCommand).resolves({ Item: item });
  ddbMock.on(PutCommand).resolves({});
  ddbMock.on(UpdateCommand).resolves({});
  sfnMock.on(StartExecutionCommand).resolves({ executionArn: item.execution_arn, startDate: new Date() });
  const mocked = await measure(
    'handler only (SDK send mocked)',
    () => ddbMock.calls().length + sfnMock.calls().length,
  );
  ddbMock.restore();
  sfnMock.restore();

  // 2. The real SDK clients (marshalling, middleware, SigV4 signing, JSON (de)serialisation) over a
  //    transport that answers at once: what each AWS call costs in CPU before any network.
  resetClients();
  let transportCalls = 0;
  const getItemBody = Buffer.from(JSON.stringify({ Item: marshall(item, { removeUndefinedValues: true }) }));
  const startBody = Buffer.from(JSON.stringify({ executionArn: item.execution_arn, startDate: nowS }));
  const empty = Buffer.from('{}');
  const transport = {
    handle: async (request: { headers: Record<string, string> }) => {
      transportCalls++;
      const target = request.headers['x-amz-target'] ?? '';
      const b = target.endsWith('.GetItem')
        ? getItemBody
        : target.endsWith('.StartExecution')
          ? startBody
          : empty;
      return {
        response: {
          statusCode: 200,
          reason: 'OK',
          headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'bench' },
          body: new Uint8Array(b),
        },
      };
    },
    updateHttpClientConfig: () => undefined,
    httpHandlerConfigs: () => ({}),
    destroy: () => undefined,
  };
  (clients.ddb() as unknown as { config: { requestHandler: unknown } }).config.requestHandler = transport;
  (clients.sfn() as unknown as { config: { requestHandler: unknown } }).config.requestHandler = transport;
  const sdk = await measure('handler + AWS SDK clients (zero-latency transport)', () => transportCalls);
  return { variants: [mocked, sdk] };
}
