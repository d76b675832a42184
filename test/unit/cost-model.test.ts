/**
 * The pure arithmetic of `npm run bench:cost` (bench/cost-model.ts): units → dollars per million
 * payments, request units from item sizes, GB-seconds, and quotas → payments per second.
 */
import {
  costPerMillion,
  DEFAULT_QUOTAS,
  gbSeconds,
  PRICES,
  requestUnits,
  throughputLimits,
  type ScaleInput,
  type Units,
} from '../../bench/cost-model.ts';

const zero: Units = {
  sfnTransitions: 0,
  lambdaRequests: 0,
  lambdaGbSeconds: 0,
  ddbReadUnits: 0,
  ddbWriteUnits: 0,
  ddbStreamReadRequests: 0,
  sqsRequests: 0,
  s3WriteRequests: 0,
  s3ReadRequests: 0,
  schedulerInvocations: 0,
  logBytes: 0,
  apiRequests: 0,
  xrayTraces: 0,
};

describe('costPerMillion', () => {
  test('published unit prices give the published price per million payments', () => {
    const { lines, totalUsdPerMillion } = costPerMillion({
      ...zero,
      sfnTransitions: 1, // $0.025 per 1,000 → $25 per million
      ddbWriteUnits: 1, // $0.625 per million
      ddbReadUnits: 1, // $0.125 per million
      lambdaRequests: 1, // $0.20 per million
      apiRequests: 1, // $3.50 per million
    });
    const by = Object.fromEntries(lines.map((l) => [l.service, l.usdPerMillion]));
    expect(by['Step Functions (Standard)']).toBeCloseTo(25, 9);
    expect(by['DynamoDB writes']).toBeCloseTo(0.625, 9);
    expect(by['DynamoDB reads']).toBeCloseTo(0.125, 9);
    expect(by['Lambda requests']).toBeCloseTo(0.2, 9);
    expect(by['API Gateway (REST)']).toBeCloseTo(3.5, 9);
    expect(totalUsdPerMillion).toBeCloseTo(25 + 0.625 + 0.125 + 0.2 + 3.5, 9);
  });

  test('lines are sorted largest first and their shares add up to 1', () => {
    const { lines } = costPerMillion({ ...zero, sfnTransitions: 7, lambdaGbSeconds: 2.5, ddbWriteUnits: 80 });
    expect(lines[0]!.service).toBe('Step Functions (Standard)');
    for (let i = 1; i < lines.length; i++)
      expect(lines[i]!.usdPerMillion).toBeLessThanOrEqual(lines[i - 1]!.usdPerMillion);
    expect(lines.reduce((s, l) => s + l.share, 0)).toBeCloseTo(1, 9);
    // 2.5 GB-s per payment at the Arm price: $33.33 per million payments.
    expect(lines.find((l) => l.service === 'Lambda duration (Arm)')!.usdPerMillion).toBeCloseTo(33.3335, 3);
  });

  test('a GB of logs per million payments costs the ingestion price; stream reads by Lambda are free', () => {
    const { lines } = costPerMillion({ ...zero, logBytes: 2 ** 30 / 1e6, ddbStreamReadRequests: 40 });
    const by = Object.fromEntries(lines.map((l) => [l.service, l.usdPerMillion]));
    expect(by['CloudWatch Logs']).toBeCloseTo(0.5, 9);
    expect(by['DynamoDB Streams']).toBe(0);
    expect(PRICES.ddbStreamReadRequestUnit).toBe(0);
  });

  test('nothing used costs nothing', () => {
    expect(costPerMillion(zero).totalUsdPerMillion).toBe(0);
    expect(costPerMillion(zero).lines.every((l) => l.share === 0)).toBe(true);
  });
});

describe('requestUnits and gbSeconds', () => {
  test('writes per started KB, reads per started 4 KB, eventually consistent half, transactions double', () => {
    expect(requestUnits('write', 1)).toBe(1);
    expect(requestUnits('write', 1024)).toBe(1);
    expect(requestUnits('write', 1025)).toBe(2);
    expect(requestUnits('write', 3000, { transactional: true })).toBe(6);
    expect(requestUnits('read', 4096, { consistent: true })).toBe(1);
    expect(requestUnits('read', 4097, { consistent: true })).toBe(2);
    expect(requestUnits('read', 8000)).toBe(1);
    expect(requestUnits('read', 100, { transactional: true })).toBe(2);
  });

  test('GB-seconds: memory in GB times the duration rounded up to the millisecond', () => {
    expect(gbSeconds(1024, 1000)).toBe(1);
    expect(gbSeconds(512, 100.2)).toBeCloseTo(0.0505, 9);
    expect(gbSeconds(256, 0.1)).toBeCloseTo(0.00025, 9);
  });
});

describe('throughputLimits', () => {
  const input: ScaleInput = {
    sfnStartExecutions: 1.2,
    sfnTransitions: 8,
    sfnTaskTokenCalls: 0.2,
    lambdaSeconds: 2,
    apiRequests: 4,
    ddbWriteUnits: 80,
    ddbReadUnits: 40,
    hottestKeyWriteUnits: 2,
    hottestKeyReadUnits: 0,
  };

  test('each quota divided by what a payment uses of it; the lowest binds first', () => {
    const limits = throughputLimits(input);
    const by = Object.fromEntries(limits.map((l) => [l.quota, l.paymentsPerSecond]));
    expect(by['Step Functions StartExecution (refill/s)']).toBeCloseTo(300 / 1.2, 9);
    expect(by['Step Functions state transitions (refill/s)']).toBeCloseTo(1500 / 8, 9);
    expect(by['Lambda concurrent executions']).toBeCloseTo(500, 9); // 1,000 / 2 s per payment
    expect(by['API Gateway account throttle (rps)']).toBeCloseTo(2500, 9);
    expect(by['DynamoDB table write units/s']).toBeCloseTo(500, 9);
    expect(by['DynamoDB hottest partition key, writes']).toBeCloseTo(500, 9);
    expect(by['DynamoDB hottest partition key, reads']).toBe(Infinity);
    expect(limits[0]!.quota).toBe('Step Functions state transitions (refill/s)');
    for (let i = 1; i < limits.length; i++)
      expect(limits[i]!.paymentsPerSecond).toBeGreaterThanOrEqual(limits[i - 1]!.paymentsPerSecond);
  });

  test('raising the binding quota moves the bind to the next one', () => {
    const raised = throughputLimits(input, { ...DEFAULT_QUOTAS, sfnStateTransitionsPerSecond: 5000 });
    expect(raised[0]!.quota).toBe('Step Functions StartExecution (refill/s)');
    expect(raised[0]!.paymentsPerSecond).toBeCloseTo(250, 9);
  });
});
