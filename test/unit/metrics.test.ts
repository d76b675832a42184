/**
 * Business metrics (lambdas/shared/metrics.ts): EMF lines in namespace `paystep` with only
 * low-cardinality dimensions; on stdout in AWS (Powertools' own console), on stderr locally and only
 * when the function log level shows info lines, never on stdout (the CLI's stdout is its result);
 * and, where a fact is recorded, once per fact: a replayed step emits nothing.
 */
import type { Payment } from '../../lambdas/domain/payment.ts';
import type { AuthorizeResult } from '../../lambdas/connectors/types.ts';
import { recordAuthorizeResult } from '../../lambdas/payments/steps/outcome.ts';
import {
  disputeChanged,
  METRIC,
  METRICS_NAMESPACE,
  openReconciliationExceptions,
  paymentMovedOn,
  paymentOutcome,
  refundEnded,
  sweeperEscalations,
} from '../../lambdas/shared/metrics.ts';
import { createPayment } from '../../lambdas/store/payments.ts';
import { startLocalTable, type LocalTable } from './store-local-table.ts';
import { paymentItem } from '../fixtures/payments.ts';

interface Emf {
  _aws: {
    CloudWatchMetrics: {
      Namespace: string;
      Dimensions: string[][];
      Metrics: { Name: string; Unit: string }[];
    }[];
  };
  [key: string]: unknown;
}

/** What one metric line says: its name, value and dimensions (besides the EMF envelope). */
function read(line: string) {
  const emf = JSON.parse(line) as Emf;
  const [directive] = emf._aws.CloudWatchMetrics;
  const [metric] = directive!.Metrics;
  const dimensions = Object.fromEntries(directive!.Dimensions[0]!.map((d) => [d, emf[d]]));
  return {
    namespace: directive!.Namespace,
    name: metric!.Name,
    unit: metric!.Unit,
    value: emf[metric!.Name],
    dimensions,
  };
}

/** Lines written to stdout and stderr while `fn` runs (nothing reaches the terminal). */
async function capture(fn: () => unknown): Promise<{ stdout: string[]; stderr: string[] }> {
  const out = { stdout: [] as string[], stderr: [] as string[] };
  const originals = { stdout: process.stdout.write, stderr: process.stderr.write };
  for (const stream of ['stdout', 'stderr'] as const)
    process[stream].write = ((chunk: string | Uint8Array) => {
      out[stream].push(...String(chunk).split('\n').filter(Boolean));
      return true;
    }) as typeof process.stdout.write;
  try {
    await fn();
  } finally {
    process.stdout.write = originals.stdout;
    process.stderr.write = originals.stderr;
  }
  return out;
}

const ENV = [
  'AWS_LAMBDA_FUNCTION_NAME',
  'POWERTOOLS_DEV',
  'POWERTOOLS_LOG_LEVEL',
  'POWERTOOLS_METRICS_DISABLED',
] as const;
const saved = Object.fromEntries(ENV.map((k) => [k, process.env[k]]));
function setEnv(env: Partial<Record<(typeof ENV)[number], string>>) {
  for (const k of ENV) {
    if (env[k] === undefined) delete process.env[k];
    else process.env[k] = env[k];
  }
}
afterAll(() => setEnv(saved as Record<string, string>));

/** A Lambda function: its name set, no POWERTOOLS_DEV, Powertools' log level INFO (lib/function.ts). */
const AWS = { AWS_LAMBDA_FUNCTION_NAME: 'Paystep-PaymentAuthorize', POWERTOOLS_LOG_LEVEL: 'INFO' };
const LOCAL_INFO = { POWERTOOLS_DEV: 'true', POWERTOOLS_LOG_LEVEL: 'INFO' };

describe('in AWS: one EMF line per fact on stdout', () => {
  beforeEach(() => setEnv(AWS));

  test('a decline: Payments by processor and outcome, Declines by processor and reason', async () => {
    const { stdout, stderr } = await capture(() =>
      paymentOutcome('stripe', 'declined', 'insufficient_funds'),
    );
    expect(stderr).toEqual([]);
    expect(stdout.map(read)).toEqual([
      {
        namespace: METRICS_NAMESPACE,
        name: METRIC.payments,
        unit: 'Count',
        value: 1,
        dimensions: { service: 'paystep', processor: 'stripe', outcome: 'declined' },
      },
      {
        namespace: METRICS_NAMESPACE,
        name: METRIC.declines,
        unit: 'Count',
        value: 1,
        dimensions: { service: 'paystep', processor: 'stripe', reason: 'insufficient_funds' },
      },
    ]);
  });

  test('every helper: its metric name, dimensions and value', async () => {
    const { stdout } = await capture(() => {
      paymentOutcome('adyen', 'approved');
      paymentMovedOn('failover', 'stripe');
      paymentMovedOn('cascade', 'adyen');
      refundEnded('stripe', 'succeeded');
      disputeChanged('adyen', 'opened');
      sweeperEscalations(3);
      openReconciliationExceptions(0);
    });
    expect(stdout.map(read).map(({ name, value, dimensions }) => ({ name, value, dimensions }))).toEqual([
      {
        name: 'Payments',
        value: 1,
        dimensions: { service: 'paystep', processor: 'adyen', outcome: 'approved' },
      },
      { name: 'Approvals', value: 1, dimensions: { service: 'paystep', processor: 'adyen' } },
      { name: 'Failovers', value: 1, dimensions: { service: 'paystep', processor: 'stripe' } },
      { name: 'Cascades', value: 1, dimensions: { service: 'paystep', processor: 'adyen' } },
      {
        name: 'Refunds',
        value: 1,
        dimensions: { service: 'paystep', processor: 'stripe', outcome: 'succeeded' },
      },
      { name: 'Disputes', value: 1, dimensions: { service: 'paystep', processor: 'adyen', event: 'opened' } },
      // The alarms read these two with the `service` dimension only (lib/stack/alarms.ts).
      { name: 'SweeperEscalations', value: 3, dimensions: { service: 'paystep' } },
      { name: 'OpenReconciliationExceptions', value: 0, dimensions: { service: 'paystep' } },
    ]);
  });

  test('a dimension value that is not a code (free text, missing) is written as "other"', async () => {
    const { stdout } = await capture(() => {
      paymentOutcome('stripe', 'declined', 'Your card was declined.');
      refundEnded(undefined, 'failed');
    });
    const [, declines, refunds] = stdout.map(read);
    expect(declines!.dimensions.reason).toBe('other');
    expect(refunds!.dimensions.processor).toBe('other');
  });
});

describe('outside Lambda (local runtime, CLI, tests): stderr, only at the info log level, never stdout', () => {
  test('not in a Lambda function, even without POWERTOOLS_DEV: never stdout', async () => {
    setEnv({ POWERTOOLS_LOG_LEVEL: 'INFO' });
    const { stdout, stderr } = await capture(() => sweeperEscalations(1));
    expect(stdout).toEqual([]);
    expect(stderr.map(read).map((m) => m.name)).toEqual(['SweeperEscalations']);
  });

  test('POWERTOOLS_LOG_LEVEL=INFO: the same EMF lines, on stderr', async () => {
    setEnv(LOCAL_INFO);
    const { stdout, stderr } = await capture(() => paymentOutcome('stripe', 'approved'));
    expect(stdout).toEqual([]);
    expect(stderr.map(read).map((m) => m.name)).toEqual(['Payments', 'Approvals']);
  });

  test.each(['WARN', 'SILENT', undefined])(
    'POWERTOOLS_LOG_LEVEL=%s (npm start, the CLI, tests): nothing',
    async (level) => {
      setEnv({ POWERTOOLS_DEV: 'true', ...(level ? { POWERTOOLS_LOG_LEVEL: level } : {}) });
      const out = await capture(() => paymentOutcome('stripe', 'approved'));
      expect(out).toEqual({ stdout: [], stderr: [] });
    },
  );
});

describe('emitted once per fact, by the write that made it', () => {
  let t: LocalTable;
  beforeAll(async () => {
    t = await startLocalTable();
  });
  afterAll(async () => t?.stop());

  let seq = 0;
  const payment = (): Payment =>
    paymentItem({
      id: `pay_metrics${String(++seq).padStart(8, '0')}`,
      merchant_id: 'mch_metrics',
      amount: 1000,
    });
  const declined: AuthorizeResult = {
    outcome: 'declined',
    processorReference: 'pi_metrics',
    failure: {
      category: 'soft_decline',
      code: 'insufficient_funds',
      processor_code: 'card_declined/insufficient_funds',
      message: 'Your card has insufficient funds.',
      explanation: 'The issuer declined for insufficient funds.',
      recommended_action: 'Ask the customer for another card.',
      retryable: true,
    },
  };
  const captured: AuthorizeResult = {
    outcome: 'captured',
    processorReference: 'pi_metrics_ok',
    amountCaptured: 1000,
    rawStatus: 'succeeded',
  };

  test.each([
    ['a decline', declined, ['Payments', 'Declines']],
    ['an approval', captured, ['Payments', 'Approvals']],
  ] as const)('%s recorded twice (a replayed step) is counted once', async (_, result, names) => {
    setEnv(AWS);
    const p = payment();
    expect(await createPayment(p)).toBe(true);
    const first = await capture(() => recordAuthorizeResult(p, 'stripe', result));
    const replay = await capture(() => recordAuthorizeResult(p, 'stripe', result));
    expect(first.stdout.map(read).map((m) => m.name)).toEqual(names);
    expect(first.stdout.map(read).every((m) => m.dimensions.processor === 'stripe')).toBe(true);
    expect(replay.stdout).toEqual([]);
  });
});
