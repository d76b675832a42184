/**
 * Ops signals in AWS, where people already look (issue #13 item 4): CloudWatch alarms declared from the
 * topology, one SNS topic they notify, and one dashboard of the same signals. In a nested stack of its
 * own: one alarm per function signal alone is two per function, which the parent stack (CloudFormation's
 * 500 resources, docs/architecture.md "Stack size") has no room for.
 *
 * Every alarm follows from the topology: a new state machine, queue or function gets its alarms without
 * a line here. What each alarm means and what to do: docs/architecture.md "Alarms and dashboard" and
 * docs/runbooks/alarms.md (the anchor is in each alarm's description).
 */
import { Duration, NestedStack } from 'aws-cdk-lib';
import type { NestedStackProps } from 'aws-cdk-lib';
import type { RestApi } from 'aws-cdk-lib/aws-apigateway';
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  MathExpression,
  Metric,
  Stats,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { IMetric, IWidget } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { METRIC, METRICS_NAMESPACE } from '../../lambdas/shared/metrics.ts';
import type { PaystepFunction } from '../function.ts';
import type { Topology } from '../topology.ts';
import { mark, pascal } from './common.ts';

/** The kinds of alarm, each with its runbook section (docs/runbooks/alarms.md#<kind>). */
export const ALARM_KINDS = [
  'executions-failed',
  'executions-timed-out',
  'executions-aborted',
  'dead-letter-queue',
  'function-errors',
  'function-throttles',
  'api-5xx-rate',
  'api-latency-p99',
  'stream-iterator-age',
  'needs-attention',
  'reconciliation-exceptions',
] as const;
export type AlarmKind = (typeof ALARM_KINDS)[number];

/** Thresholds, in one place (docs/architecture.md "Alarms and dashboard" explains them). */
export const THRESHOLDS = {
  /** Share of API requests answered 5xx, over 5 minutes, in 2 of 3 periods. */
  api5xxRate: 0.01,
  /** p99 latency of the API (ms), over 5 minutes, in 3 of 3 periods. */
  apiLatencyP99Ms: 3000,
  /** Age of the oldest stream record not yet processed (ms), in 3 of 3 periods of 5 minutes. */
  iteratorAgeMs: 60_000,
};

const FIVE_MINUTES = Duration.minutes(5);
const RUNBOOK = 'docs/runbooks/alarms.md';

export interface AlarmsStackProps extends NestedStackProps {
  topology: Topology;
  /** Prefix of the alarm and dashboard names (the parent stack's name). */
  namePrefix: string;
  functions: ReadonlyMap<string, PaystepFunction>;
  stateMachines: ReadonlyMap<string, StateMachine>;
  /** Every dead-letter queue, by its name (the topology queues' DLQs and the scheduler's). */
  deadLetterQueues: ReadonlyMap<string, IQueue>;
  api: RestApi;
  /** An e-mail address subscribed to the topic (`cdk deploy -c alarmEmail=…`). */
  alarmEmail?: string;
}

interface AlarmSpec {
  kind: AlarmKind;
  /** What the alarm watches: a state machine, queue, function … name, or `paystep`. */
  subject: string;
  summary: string;
  metric: IMetric;
  threshold: number;
  comparison?: ComparisonOperator;
  evaluationPeriods?: number;
  datapointsToAlarm?: number;
  treatMissingData?: TreatMissingData;
}

/** A business metric of lambdas/shared/metrics.ts (dimension `service` only). */
const business = (metricName: string, statistic: string, period = FIVE_MINUTES) =>
  new Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service: 'paystep' },
    statistic,
    period,
  });

/** All values of a business metric, one line per combination of `dimensions` (a SEARCH). */
const search = (metricName: string, dimensions: string[], label: string) =>
  new MathExpression({
    expression: `SEARCH('{${METRICS_NAMESPACE},${[...dimensions, 'service'].sort().join(',')}} MetricName="${metricName}"', 'Sum', 300)`,
    usingMetrics: {},
    label,
    period: FIVE_MINUTES,
  });

export class AlarmsStack extends NestedStack {
  readonly topic: Topic;
  readonly alarms = new Map<string, Alarm>();
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: AlarmsStackProps) {
    super(scope, id, { description: 'paystep alarms, alarm topic and dashboard', ...props });

    // Encrypted with a key of our own: CloudWatch cannot use the AWS-managed SNS key to publish.
    const key = new Key(this, 'AlarmTopicKey', {
      description: 'paystep alarm topic',
      enableKeyRotation: true,
    });
    key.grant(new ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
    this.topic = new Topic(this, 'AlarmTopic', {
      displayName: 'paystep alarms',
      masterKey: key,
      enforceSSL: true,
    });
    // The topic policy (enforceSSL) replaces the default one: CloudWatch alarms of this account may publish.
    this.topic.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': this.account },
          ArnLike: {
            'aws:SourceArn': `arn:${this.partition}:cloudwatch:${this.region}:${this.account}:alarm:*`,
          },
        },
      }),
    );
    if (props.alarmEmail) this.topic.addSubscription(new EmailSubscription(props.alarmEmail));

    const action = new SnsAction(this.topic);
    for (const spec of this.specs(props)) {
      const name = `${spec.kind}/${spec.subject}`;
      const alarm = new Alarm(this, `${pascal(spec.kind)}${pascal(spec.subject)}Alarm`, {
        alarmName: `${props.namePrefix}-${spec.kind}-${spec.subject}`,
        alarmDescription: `${spec.summary} Runbook: ${RUNBOOK}#${spec.kind}`,
        metric: spec.metric,
        threshold: spec.threshold,
        comparisonOperator: spec.comparison ?? ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: spec.evaluationPeriods ?? 1,
        datapointsToAlarm: spec.datapointsToAlarm,
        treatMissingData: spec.treatMissingData ?? TreatMissingData.NOT_BREACHING,
      });
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
      mark(alarm, 'alarm', name);
      this.alarms.set(name, alarm);
    }

    this.dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: `${props.namePrefix}-ops`,
      defaultInterval: Duration.hours(3),
      widgets: this.widgets(props),
    });
  }

  /** Every alarm, from the topology and the resources built for it. */
  private specs(props: AlarmsStackProps): AlarmSpec[] {
    const t = props.topology;
    const specs: AlarmSpec[] = [];
    for (const [name, sm] of props.stateMachines) {
      const sum = { period: FIVE_MINUTES, statistic: Stats.SUM };
      specs.push(
        {
          kind: 'executions-failed',
          subject: name,
          summary: `An execution of the ${name} workflow failed.`,
          metric: sm.metricFailed(sum),
          threshold: 1,
        },
        {
          kind: 'executions-timed-out',
          subject: name,
          summary: `An execution of the ${name} workflow timed out.`,
          metric: sm.metricTimedOut(sum),
          threshold: 1,
        },
        {
          kind: 'executions-aborted',
          subject: name,
          summary: `An execution of the ${name} workflow was stopped (aborted).`,
          metric: sm.metricAborted(sum),
          threshold: 1,
        },
      );
    }
    for (const [name, queue] of props.deadLetterQueues)
      specs.push({
        kind: 'dead-letter-queue',
        subject: name,
        summary: `Messages are waiting in the dead-letter queue ${name}: their work was given up after retries.`,
        metric: queue.metricApproximateNumberOfMessagesVisible({
          period: FIVE_MINUTES,
          statistic: Stats.MAXIMUM,
        }),
        threshold: 1,
      });
    for (const [name, f] of props.functions)
      specs.push(
        {
          kind: 'function-errors',
          subject: name,
          summary: `The function ${name} failed (uncaught errors, timeouts) in 2 of the last 3 periods of 5 minutes.`,
          metric: f.fn.metricErrors({ period: FIVE_MINUTES, statistic: Stats.SUM }),
          threshold: 1,
          evaluationPeriods: 3,
          datapointsToAlarm: 2,
        },
        {
          kind: 'function-throttles',
          subject: name,
          summary: `Invocations of the function ${name} were throttled in 2 of the last 3 periods of 5 minutes.`,
          metric: f.fn.metricThrottles({ period: FIVE_MINUTES, statistic: Stats.SUM }),
          threshold: 1,
          evaluationPeriods: 3,
          datapointsToAlarm: 2,
        },
      );
    specs.push(
      {
        kind: 'api-5xx-rate',
        subject: 'paystep',
        summary: `More than ${THRESHOLDS.api5xxRate * 100}% of API requests were answered 5xx in 2 of the last 3 periods of 5 minutes.`,
        metric: props.api.metricServerError({ period: FIVE_MINUTES, statistic: Stats.AVERAGE }),
        threshold: THRESHOLDS.api5xxRate,
        comparison: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 3,
        datapointsToAlarm: 2,
      },
      {
        kind: 'api-latency-p99',
        subject: 'paystep',
        summary: `The API's p99 latency was above ${THRESHOLDS.apiLatencyP99Ms} ms for 15 minutes.`,
        metric: props.api.metricLatency({ period: FIVE_MINUTES, statistic: Stats.p(99) }),
        threshold: THRESHOLDS.apiLatencyP99Ms,
        comparison: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 3,
      },
    );
    for (const def of Object.values(t.tables)) {
      if (!def.stream) continue;
      const consumer = props.functions.get(def.stream.consumer)!;
      specs.push({
        kind: 'stream-iterator-age',
        subject: def.stream.consumer,
        summary: `The table stream consumer ${def.stream.consumer} is more than ${THRESHOLDS.iteratorAgeMs / 1000} s behind for 15 minutes.`,
        metric: consumer.fn.metric('IteratorAge', { period: FIVE_MINUTES, statistic: Stats.MAXIMUM }),
        threshold: THRESHOLDS.iteratorAgeMs,
        comparison: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 3,
      });
    }
    specs.push(
      {
        kind: 'needs-attention',
        subject: 'sweeper',
        summary:
          'The sweeper could not resolve a payment, refund or dispute and flagged it for a person (needs_attention).',
        metric: business(METRIC.sweeperEscalations, Stats.SUM),
        threshold: 1,
      },
      {
        kind: 'reconciliation-exceptions',
        subject: 'open',
        summary:
          'The last reconciliation run left exceptions open; the alarm clears at the run that finds none open.',
        metric: business(METRIC.openReconciliationExceptions, Stats.MAXIMUM, Duration.hours(1)),
        threshold: 1,
        // A gauge written at each run: between runs the last state holds.
        treatMissingData: TreatMissingData.IGNORE,
      },
    );
    return specs;
  }

  /** The dashboard: business first, then the API, workflows, queues, functions and the stream. */
  private widgets(props: AlarmsStackProps): IWidget[][] {
    const wide = { width: 12, height: 6 };
    const full = { width: 24, height: 6 };
    const fns = [...props.functions.entries()];
    const fnMetrics = (m: (f: PaystepFunction) => Metric, name: string) =>
      fns.map(([n, f]) => m(f).with({ label: n, period: FIVE_MINUTES, statistic: name }));
    const rows: IWidget[][] = [
      [
        new TextWidget({
          markdown:
            '# paystep\nBusiness metrics (namespace `paystep`, lambdas/shared/metrics.ts), then the platform. ' +
            `Every alarm names its runbook: \`${RUNBOOK}\`.`,
          ...full,
          height: 2,
        }),
      ],
      [
        new GraphWidget({
          title: 'Payments by processor and outcome, approvals by processor',
          left: [
            search(METRIC.payments, ['processor', 'outcome'], 'payments'),
            search(METRIC.approvals, ['processor'], 'approvals'),
          ],
          ...wide,
        }),
        new GraphWidget({
          title: 'Declines by processor and reason',
          left: [search(METRIC.declines, ['processor', 'reason'], 'declines')],
          ...wide,
        }),
      ],
      [
        new GraphWidget({
          title: 'Failovers and cascades (from processor)',
          left: [
            search(METRIC.failovers, ['processor'], 'failovers'),
            search(METRIC.cascades, ['processor'], 'cascades'),
          ],
          ...wide,
        }),
        new GraphWidget({
          title: 'Refunds and disputes',
          left: [
            search(METRIC.refunds, ['processor', 'outcome'], 'refunds'),
            search(METRIC.disputes, ['processor', 'event'], 'disputes'),
          ],
          ...wide,
        }),
      ],
      [
        new GraphWidget({
          title: 'Needs a person: sweeper escalations, open reconciliation exceptions',
          left: [business(METRIC.sweeperEscalations, Stats.SUM).with({ label: 'sweeper escalations' })],
          right: [
            business(METRIC.openReconciliationExceptions, Stats.MAXIMUM, Duration.hours(1)).with({
              label: 'open reconciliation exceptions',
            }),
          ],
          ...full,
        }),
      ],
      [
        new GraphWidget({
          title: 'API 5xx rate and requests',
          left: [
            props.api.metricServerError({
              period: FIVE_MINUTES,
              statistic: Stats.AVERAGE,
              label: '5xx rate',
            }),
          ],
          right: [props.api.metricCount({ period: FIVE_MINUTES, statistic: Stats.SUM, label: 'requests' })],
          ...wide,
        }),
        new GraphWidget({
          title: 'API latency',
          left: [
            props.api.metricLatency({ period: FIVE_MINUTES, statistic: Stats.p(50), label: 'p50' }),
            props.api.metricLatency({ period: FIVE_MINUTES, statistic: Stats.p(99), label: 'p99' }),
          ],
          ...wide,
        }),
      ],
      [...props.stateMachines.entries()].map(
        ([name, sm]) =>
          new GraphWidget({
            title: `Executions: ${name}`,
            left: [
              sm.metricStarted({ label: 'started' }),
              sm.metricSucceeded({ label: 'succeeded' }),
              sm.metricFailed({ label: 'failed' }),
              sm.metricTimedOut({ label: 'timed out' }),
              sm.metricAborted({ label: 'aborted' }),
            ].map((m) => m.with({ period: FIVE_MINUTES, statistic: Stats.SUM })),
            width: Math.max(4, Math.floor(24 / props.stateMachines.size)),
            height: 6,
          }),
      ),
      [
        new GraphWidget({
          title: 'Dead-letter queue depth',
          left: [...props.deadLetterQueues.entries()].map(([name, q]) =>
            q.metricApproximateNumberOfMessagesVisible({
              label: name,
              period: FIVE_MINUTES,
              statistic: Stats.MAXIMUM,
            }),
          ),
          ...wide,
        }),
        new GraphWidget({
          title: 'Stream iterator age (ms)',
          left: Object.values(props.topology.tables).flatMap((def) =>
            def.stream
              ? [
                  props.functions.get(def.stream.consumer)!.fn.metric('IteratorAge', {
                    label: def.stream.consumer,
                    period: FIVE_MINUTES,
                    statistic: Stats.MAXIMUM,
                  }),
                ]
              : [],
          ),
          ...wide,
        }),
      ],
      [
        new GraphWidget({
          title: 'Lambda errors',
          left: fnMetrics((f) => f.fn.metricErrors(), Stats.SUM),
          ...wide,
        }),
        new GraphWidget({
          title: 'Lambda throttles',
          left: fnMetrics((f) => f.fn.metricThrottles(), Stats.SUM),
          ...wide,
        }),
      ],
      [
        new GraphWidget({
          title: 'Lambda duration p99 (ms)',
          left: fnMetrics((f) => f.fn.metricDuration(), Stats.p(99)),
          ...full,
        }),
      ],
    ];
    return rows;
  }
}
