/**
 * Business metrics, as CloudWatch Embedded Metric Format (EMF) lines written by Powertools Metrics:
 * namespace `paystep`, every metric with the `service` dimension (POWERTOOLS_SERVICE_NAME) and at most
 * the low-cardinality dimensions below (`processor`, `reason`, `outcome`, `event`): never a merchant,
 * payment, refund or dispute id. The alarms and the dashboard (lib/stack/alarms.ts) read these names.
 *
 * Emitted where a fact is decided, once: after the guarded write that made it true (a replayed step
 * whose write changed nothing emits nothing). Each fact is its own EMF line, written at once rather
 * than buffered until the end of the invocation: dimensions differ from fact to fact (one sweep, one
 * reconciliation touches several processors), and the same services run outside a Lambda handler
 * (the CLI, the local runtime), where no middleware would flush a buffer.
 *
 * Where the lines go:
 * - In a Lambda function (AWS_LAMBDA_FUNCTION_NAME, without POWERTOOLS_DEV): standard output
 *   (Powertools' own console), which Lambda sends to the function's log group, where CloudWatch
 *   extracts the metrics.
 * - Anywhere else (the local runtime and the CLI, which set POWERTOOLS_DEV; tests): standard error,
 *   and only when the function log level (POWERTOOLS_LOG_LEVEL, from PAYSTEP_LOG_LEVEL) is set to
 *   show info lines, like any other info line of a function. Never standard output: the CLI's
 *   stdout carries only its result.
 *
 * A metric that cannot be written is logged and dropped: it never fails the payment it describes.
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { config } from './config.ts';
import { logger } from './logger.ts';

export const METRICS_NAMESPACE = 'paystep';

/** Metric names (CloudWatch namespace `paystep`). */
export const METRIC = {
  /** A payment's authorization outcome was recorded (approved or declined); by `processor`, `outcome`. */
  payments: 'Payments',
  /** Approved authorizations; by `processor`. */
  approvals: 'Approvals',
  /** Declined authorizations; by `processor` and `reason` (paystep's decline code). */
  declines: 'Declines',
  /** Refunds that reached an end (`outcome`: succeeded, failed); by `processor`. */
  refunds: 'Refunds',
  /** Dispute changes applied (`event`: opened, won, lost, …); by `processor`. */
  disputes: 'Disputes',
  /** A payment moved to the next processor of its route because the first did not process it. */
  failovers: 'Failovers',
  /** A payment moved to the next processor of its route after a decline (cascade). */
  cascades: 'Cascades',
  /** Items the sweeper could not resolve and flagged for a person (one value per sweep). */
  sweeperEscalations: 'SweeperEscalations',
  /** Reconciliation exceptions still open after a reconciliation run (a gauge: one value per run). */
  openReconciliationExceptions: 'OpenReconciliationExceptions',
} as const;

export type MetricName = (typeof METRIC)[keyof typeof METRIC];

/** Dimension values are codes (processor names, decline codes): anything else is `other`. */
const CODE = /^[A-Za-z0-9_.:-]{1,64}$/;
const dimensionValue = (v: string | undefined): string => (v && CODE.test(v) ? v : 'other');

const INFO_LEVELS = new Set(['TRACE', 'DEBUG', 'INFO']);

/** Writes one EMF line for `value` of `name` with `dimensions` (besides `service`). */
export function emitMetric(
  name: MetricName,
  dimensions: Record<string, string | undefined> = {},
  value = 1,
): void {
  try {
    const local = !config.inLambda();
    if (local && !INFO_LEVELS.has(config.logLevel())) return;
    const metrics = new Metrics({
      namespace: METRICS_NAMESPACE,
      serviceName: config.serviceName(),
      // In AWS a single metric is published (to stdout) as soon as it is added.
      singleMetric: !local,
    });
    for (const [k, v] of Object.entries(dimensions)) metrics.addDimension(k, dimensionValue(v));
    metrics.addMetric(name, MetricUnit.Count, value);
    if (local) {
      process.stderr.write(`${JSON.stringify(metrics.serializeMetrics())}\n`);
      metrics.clearMetrics();
    }
  } catch (err) {
    logger.warn('metric not emitted', { metric: name, error: err as Error });
  }
}

/** A payment's authorization outcome, recorded by the guarded transition that made it. */
export function paymentOutcome(processor: string, outcome: 'approved' | 'declined', reason?: string): void {
  emitMetric(METRIC.payments, { processor, outcome });
  if (outcome === 'approved') emitMetric(METRIC.approvals, { processor });
  else emitMetric(METRIC.declines, { processor, reason });
}

/** A payment moved from `from` to the next processor of its route. */
export function paymentMovedOn(kind: 'failover' | 'cascade', from: string): void {
  emitMetric(kind === 'cascade' ? METRIC.cascades : METRIC.failovers, { processor: from });
}

/** A refund reached its end (`outcome`: succeeded, failed, canceled), by the write that ended it. */
export function refundEnded(processor: string | undefined, outcome: string): void {
  emitMetric(METRIC.refunds, { processor, outcome });
}

/** A dispute was opened (`event`: opened) or changed status (`event`: its new status). */
export function disputeChanged(processor: string | undefined, event: string): void {
  emitMetric(METRIC.disputes, { processor, event });
}

export function sweeperEscalations(count: number): void {
  emitMetric(METRIC.sweeperEscalations, {}, count);
}

export function openReconciliationExceptions(count: number): void {
  emitMetric(METRIC.openReconciliationExceptions, {}, count);
}
