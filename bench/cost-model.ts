/**
 * The AWS cost and scale model of `npm run bench:cost` (docs/performance.md "AWS cost and scale"):
 * pure arithmetic, no I/O. Billable units per payment (measured by bench/cost.ts) → dollars per
 * million payments per service; units per payment and default quotas → the highest sustained
 * payments per second of one account-region and the quota that binds first.
 *
 * Prices: on-demand, US East (N. Virginia), as published on the pages named below, read on
 * 2026-11-29 (the stored copies the search tool returned that day). Free tiers are left out: at a
 * million payments they are noise, and they are per account, not per payment.
 */

export const PRICE_REGION = 'us-east-1';
export const PRICES_READ_ON = '2026-11-29';

/** Dollars per unit (not per million): multiply by units. */
export const PRICES = {
  /** Standard workflows, per state transition ($0.025 per 1,000). https://aws.amazon.com/step-functions/pricing/ */
  sfnStateTransition: 0.025 / 1000,
  /** Lambda requests ($0.20 per million). https://aws.amazon.com/lambda/pricing/ */
  lambdaRequest: 0.2 / 1e6,
  /** Lambda duration, Arm (lib/function.ts deploys ARM_64), first 7.5 billion GB-s a month. https://aws.amazon.com/lambda/pricing/ */
  lambdaGbSecondArm: 0.0000133334,
  /** DynamoDB on-demand write request unit ($0.625 per million). https://aws.amazon.com/dynamodb/pricing/on-demand/ */
  ddbWriteRequestUnit: 0.625 / 1e6,
  /** DynamoDB on-demand read request unit ($0.125 per million). https://aws.amazon.com/dynamodb/pricing/on-demand/ */
  ddbReadRequestUnit: 0.125 / 1e6,
  /**
   * DynamoDB Streams read request units ($0.02 per 100,000) — but GetRecords made by a Lambda
   * trigger are free, and paystep reads its stream only through Lambda (the stream router).
   * https://aws.amazon.com/dynamodb/pricing/on-demand/
   */
  ddbStreamReadRequestUnit: 0,
  /** SQS standard queue requests ($0.40 per million, per 64 KB chunk). https://aws.amazon.com/sqs/pricing/ */
  sqsRequest: 0.4 / 1e6,
  /** S3 Standard PUT, COPY, POST, LIST ($0.005 per 1,000). https://aws.amazon.com/s3/pricing/ */
  s3WriteRequest: 0.005 / 1000,
  /** S3 Standard GET, SELECT and others ($0.0004 per 1,000). https://aws.amazon.com/s3/pricing/ */
  s3ReadRequest: 0.0004 / 1000,
  /** EventBridge Scheduler invocations ($1.00 per million after 14 million free). https://aws.amazon.com/eventbridge/pricing/ */
  schedulerInvocation: 1 / 1e6,
  /** CloudWatch Logs ingestion, Standard class ($0.50 per GB). https://aws.amazon.com/cloudwatch/pricing/ */
  logsIngestedByte: 0.5 / 2 ** 30,
  /** API Gateway REST API requests (lib/stack.ts builds a RestApi; $3.50 per million, first 333 million). https://aws.amazon.com/api-gateway/pricing/ */
  apiRequest: 3.5 / 1e6,
  /** X-Ray traces recorded ($5.00 per million; functions run with Tracing.ACTIVE, 1 req/s + 5 % sampled by default). https://aws.amazon.com/xray/pricing/ */
  xrayTrace: 5 / 1e6,
} as const;

/** Billable units per payment, as measured (fractions: averages over the run). */
export interface Units {
  sfnTransitions: number;
  lambdaRequests: number;
  lambdaGbSeconds: number;
  ddbReadUnits: number;
  ddbWriteUnits: number;
  ddbStreamReadRequests: number;
  sqsRequests: number;
  s3WriteRequests: number;
  s3ReadRequests: number;
  schedulerInvocations: number;
  logBytes: number;
  apiRequests: number;
  /** Traces X-Ray records: requests entering at API Gateway and the scheduler, times the sampling rate. */
  xrayTraces: number;
}

export interface CostLine {
  service: string;
  /** What is counted, per payment. */
  unit: string;
  perPayment: number;
  /** Dollars per million payments. */
  usdPerMillion: number;
  share: number;
}

/** Dollars per million payments, per service, largest first, with each one's share of the total. */
export function costPerMillion(u: Units): { lines: CostLine[]; totalUsdPerMillion: number } {
  const raw: Omit<CostLine, 'share'>[] = [
    line('Step Functions (Standard)', 'state transitions', u.sfnTransitions, PRICES.sfnStateTransition),
    line('Lambda requests', 'invocations', u.lambdaRequests, PRICES.lambdaRequest),
    line('Lambda duration (Arm)', 'GB-seconds', u.lambdaGbSeconds, PRICES.lambdaGbSecondArm),
    line('DynamoDB writes', 'write request units', u.ddbWriteUnits, PRICES.ddbWriteRequestUnit),
    line('DynamoDB reads', 'read request units', u.ddbReadUnits, PRICES.ddbReadRequestUnit),
    line(
      'DynamoDB Streams',
      'GetRecords (Lambda trigger: free)',
      u.ddbStreamReadRequests,
      PRICES.ddbStreamReadRequestUnit,
    ),
    line('SQS', 'requests', u.sqsRequests, PRICES.sqsRequest),
    line('S3 PUT/LIST', 'requests', u.s3WriteRequests, PRICES.s3WriteRequest),
    line('S3 GET/HEAD', 'requests', u.s3ReadRequests, PRICES.s3ReadRequest),
    line('EventBridge Scheduler', 'invocations', u.schedulerInvocations, PRICES.schedulerInvocation),
    line('CloudWatch Logs', 'bytes ingested', u.logBytes, PRICES.logsIngestedByte),
    line('API Gateway (REST)', 'requests', u.apiRequests, PRICES.apiRequest),
    line('X-Ray', 'traces recorded', u.xrayTraces, PRICES.xrayTrace),
  ];
  const total = raw.reduce((s, l) => s + l.usdPerMillion, 0);
  const lines = raw
    .map((l) => ({ ...l, share: total > 0 ? l.usdPerMillion / total : 0 }))
    .sort((a, b) => b.usdPerMillion - a.usdPerMillion);
  return { lines, totalUsdPerMillion: total };
}

function line(service: string, unit: string, perPayment: number, price: number): Omit<CostLine, 'share'> {
  return { service, unit, perPayment, usdPerMillion: perPayment * price * 1e6 };
}

// ---------------------------------------------------------------------------------------------
// Scale

/**
 * Default quotas of one account in us-east-1 (sustained rates: the token buckets' refill rates;
 * the bucket sizes only absorb bursts).
 */
export const DEFAULT_QUOTAS = {
  /**
   * Step Functions Standard, StartExecution: bucket 1,300, refill 300 per second (us-east-1,
   * us-west-2, eu-west-1; Express: 6,000 and 6,000). https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html,
   * read in the AWS developer guide's source (github.com/awsdocs/aws-step-functions-developer-guide,
   * doc_source/limits-overview.md, commit 28a1c16): the stored copies of the page lacked the tables.
   */
  sfnStartExecutionPerSecond: 300,
  /** Step Functions state transitions (Standard): bucket 5,000, refill 1,500 per second (same regions; same source). */
  sfnStateTransitionsPerSecond: 1500,
  /** Step Functions SendTaskSuccess/Failure/Heartbeat: bucket 3,000, refill 500 per second (same regions; same source). */
  sfnTaskTokenCallsPerSecond: 500,
  /** Lambda concurrent executions per region. https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html */
  lambdaConcurrency: 1000,
  /** API Gateway account-level throttle, requests per second (burst 5,000). https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html */
  apiRequestsPerSecond: 10_000,
  /** DynamoDB on-demand: per table, read and write request units per second (table-level default). https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html */
  ddbTableWriteUnitsPerSecond: 40_000,
  ddbTableReadUnitsPerSecond: 40_000,
  /** DynamoDB per partition (one partition key value at most): 1,000 WCU and 3,000 RCU per second. Same page. */
  ddbPartitionWriteUnitsPerSecond: 1000,
  ddbPartitionReadUnitsPerSecond: 3000,
} as const;

export type Quotas = { -readonly [K in keyof typeof DEFAULT_QUOTAS]: number };

/** What one payment consumes of each rate-limited resource. */
export interface ScaleInput {
  sfnStartExecutions: number;
  sfnTransitions: number;
  sfnTaskTokenCalls: number;
  /** Sum of all Lambda invocation durations per payment, in seconds (concurrency = rate × this). */
  lambdaSeconds: number;
  apiRequests: number;
  ddbWriteUnits: number;
  ddbReadUnits: number;
  /** Write units per payment on the single hottest partition key (one shared by payments: a day's aggregate, a merchant's item). */
  hottestKeyWriteUnits: number;
  hottestKeyReadUnits: number;
}

export interface Limit {
  quota: string;
  /** The quota's value, in its unit. */
  value: number;
  perPayment: number;
  /** Payments per second at which this quota is used up. */
  paymentsPerSecond: number;
  raise: string;
}

/** Payments per second each quota allows, lowest (the binding one) first. */
export function throughputLimits(s: ScaleInput, q: Quotas = { ...DEFAULT_QUOTAS }): Limit[] {
  const lim = (quota: string, value: number, perPayment: number, raise: string): Limit => ({
    quota,
    value,
    perPayment,
    paymentsPerSecond: perPayment > 0 ? value / perPayment : Infinity,
    raise,
  });
  return [
    lim(
      'Step Functions StartExecution (refill/s)',
      q.sfnStartExecutionPerSecond,
      s.sfnStartExecutions,
      'Service Quotas: StartExecution throttle token refill rate',
    ),
    lim(
      'Step Functions state transitions (refill/s)',
      q.sfnStateTransitionsPerSecond,
      s.sfnTransitions,
      'Service Quotas: StateTransition throttle token refill rate (or fewer Standard states)',
    ),
    lim(
      'Step Functions SendTask* (refill/s)',
      q.sfnTaskTokenCallsPerSecond,
      s.sfnTaskTokenCalls,
      'Service Quotas: SendTaskSuccess/Failure throttle token refill rate',
    ),
    lim(
      'Lambda concurrent executions',
      q.lambdaConcurrency,
      s.lambdaSeconds,
      'Service Quotas: Lambda concurrent executions (tens of thousands are granted)',
    ),
    lim(
      'API Gateway account throttle (rps)',
      q.apiRequestsPerSecond,
      s.apiRequests,
      'Support case: API Gateway throttle',
    ),
    lim(
      'DynamoDB table write units/s',
      q.ddbTableWriteUnitsPerSecond,
      s.ddbWriteUnits,
      'Service Quotas: table-level write throughput (on-demand)',
    ),
    lim(
      'DynamoDB table read units/s',
      q.ddbTableReadUnitsPerSecond,
      s.ddbReadUnits,
      'Service Quotas: table-level read throughput (on-demand)',
    ),
    lim(
      'DynamoDB hottest partition key, writes',
      q.ddbPartitionWriteUnitsPerSecond,
      s.hottestKeyWriteUnits,
      'not raisable: shard the key (write sharding) or stop writing it per payment',
    ),
    lim(
      'DynamoDB hottest partition key, reads',
      q.ddbPartitionReadUnitsPerSecond,
      s.hottestKeyReadUnits,
      'not raisable: cache the item or read it eventually consistent',
    ),
  ].sort((a, b) => a.paymentsPerSecond - b.paymentsPerSecond);
}

/** Lambda GB-seconds of one invocation: memory × duration, billed in whole milliseconds. */
export function gbSeconds(memoryMb: number, durationMs: number): number {
  return (memoryMb / 1024) * (Math.ceil(durationMs) / 1000);
}

/**
 * DynamoDB request units of an item of `bytes`: writes 1 per KB, reads 1 per 4 KB (strongly
 * consistent; eventually consistent half), each rounded up; transactional requests twice.
 */
export function requestUnits(
  kind: 'read' | 'write',
  bytes: number,
  opts: { consistent?: boolean; transactional?: boolean } = {},
): number {
  const size = Math.max(1, bytes);
  const base = kind === 'write' ? Math.ceil(size / 1024) : Math.ceil(size / 4096);
  const consistency = kind === 'read' && !opts.consistent && !opts.transactional ? 0.5 : 1;
  return base * consistency * (opts.transactional ? 2 : 1);
}
