/**
 * Ops signals in AWS (lib/stack/alarms.ts), checked on the synthesized templates: one alarm per signal
 * the topology calls for (so a new state machine, queue or function gets its alarms), each notifying
 * the alarm topic and naming its runbook; the topic (encrypted, TLS only, output); the dashboard.
 * One synth per file (see synth.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { METRIC, METRICS_NAMESPACE } from '../../lambdas/shared/metrics.ts';
import { ALARM_KINDS } from '../../lib/stack/alarms.ts';
import { KIND_KEY, NAME_KEY, PROJECT_ROOT, SCHEDULER_DLQ } from '../../lib/stack.ts';
import { dlqName, topology } from '../../lib/topology.ts';
import { synthPaystep } from './synth.ts';

type Resource = {
  Type: string;
  Properties: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
} & Record<string, unknown>;

/** The parent stack with its nested stacks (see synth.ts). */
let resources: Record<string, Resource>;

beforeAll(() => {
  resources = synthPaystep().all.toJSON().Resources as Record<string, Resource>;
});

const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const logicalIdOf = (kind: string, name: string): string => {
  const found = Object.entries(resources).filter(
    ([, r]) => r.Metadata?.[KIND_KEY] === kind && r.Metadata?.[NAME_KEY] === name,
  );
  expect(found.map(([id]) => id)).toHaveLength(1);
  return found[0]![0];
};
const getAtt = (id: string, attr = 'Arn') => ({ 'Fn::GetAtt': [id, attr] });
const statements = (r: Resource) =>
  (r.Properties.PolicyDocument as { Statement: { Effect: string; Action: unknown }[] }).Statement;

describe('alarms, alarm topic and dashboard', () => {
  const alarms = () => ofType('AWS::CloudWatch::Alarm');
  const alarmOf = (kind: string, subject: string) => resources[logicalIdOf('alarm', `${kind}/${subject}`)]!;
  const streamConsumers = Object.values(topology.tables).flatMap((t) =>
    t.stream ? [t.stream.consumer] : [],
  );
  const deadLetterQueues = [
    ...Object.keys(topology.queues).map(dlqName),
    ...(Object.keys(topology.schedules).length ? [SCHEDULER_DLQ] : []),
  ];
  /** What the topology calls for: a new state machine, queue or function adds its alarms. */
  const expected = [
    ...Object.keys(topology.stateMachines).flatMap((sm) =>
      ['executions-failed', 'executions-timed-out', 'executions-aborted'].map((k) => `${k}/${sm}`),
    ),
    ...deadLetterQueues.map((q) => `dead-letter-queue/${q}`),
    ...Object.keys(topology.functions).flatMap((f) => [`function-errors/${f}`, `function-throttles/${f}`]),
    'api-5xx-rate/paystep',
    'api-latency-p99/paystep',
    ...streamConsumers.map((f) => `stream-iterator-age/${f}`),
    'needs-attention/sweeper',
    'reconciliation-exceptions/open',
  ];
  const topicId = () => {
    const [[id]] = ofType('AWS::SNS::Topic') as [[string, Resource]];
    return id;
  };

  test('one alarm per signal the topology calls for, and no other', () => {
    expect(alarms()).toHaveLength(
      3 * Object.keys(topology.stateMachines).length +
        Object.keys(topology.queues).length +
        (Object.keys(topology.schedules).length ? 1 : 0) +
        2 * Object.keys(topology.functions).length +
        2 +
        streamConsumers.length +
        2,
    );
    const marked = alarms().map(([, a]) => String(a.Metadata?.[NAME_KEY]));
    expect(marked.sort()).toEqual([...expected].sort());
  });

  test('every alarm notifies the topic when it fires and when it clears, and names its runbook', () => {
    const runbook = fs.readFileSync(path.join(PROJECT_ROOT, 'docs/runbooks/alarms.md'), 'utf8');
    for (const kind of ALARM_KINDS) expect(runbook).toContain(`\n## ${kind}\n`);
    for (const [, a] of alarms()) {
      expect(a.Properties.AlarmActions).toEqual([{ Ref: topicId() }]);
      expect(a.Properties.OKActions).toEqual([{ Ref: topicId() }]);
      const kind = String(a.Metadata?.[NAME_KEY]).split('/')[0]!;
      expect(ALARM_KINDS).toContain(kind);
      expect(a.Properties.AlarmDescription).toContain(`Runbook: docs/runbooks/alarms.md#${kind}`);
      expect(a.Properties.AlarmName).toMatch(new RegExp(`^Paystep-${kind}-`));
    }
  });

  test.each(Object.keys(topology.stateMachines))(
    '%s: failed, timed-out and aborted executions, on the state machine itself',
    (name) => {
      const sm = logicalIdOf('state-machine', name);
      for (const [kind, metric] of [
        ['executions-failed', 'ExecutionsFailed'],
        ['executions-timed-out', 'ExecutionsTimedOut'],
        ['executions-aborted', 'ExecutionsAborted'],
      ] as const)
        expect(alarmOf(kind, name).Properties).toMatchObject({
          Namespace: 'AWS/States',
          MetricName: metric,
          Dimensions: [{ Name: 'StateMachineArn', Value: { Ref: sm } }],
          Statistic: 'Sum',
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          TreatMissingData: 'notBreaching',
        });
    },
  );

  test.each(deadLetterQueues)('%s: any message visible', (name) => {
    const kind = name === SCHEDULER_DLQ ? 'internal-queue' : 'dead-letter-queue';
    expect(alarmOf('dead-letter-queue', name).Properties).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: getAtt(logicalIdOf(kind, name), 'QueueName') }],
      Statistic: 'Maximum',
      Threshold: 1,
    });
  });

  test.each(Object.keys(topology.functions))('%s: errors and throttles', (name) => {
    const fn = logicalIdOf('function', name);
    for (const [kind, metric] of [
      ['function-errors', 'Errors'],
      ['function-throttles', 'Throttles'],
    ] as const)
      expect(alarmOf(kind, name).Properties).toMatchObject({
        Namespace: 'AWS/Lambda',
        MetricName: metric,
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: fn } }],
        Statistic: 'Sum',
        EvaluationPeriods: 3,
        DatapointsToAlarm: 2,
      });
  });

  test('API 5xx rate and p99 latency; stream iterator age of every table stream consumer', () => {
    expect(alarmOf('api-5xx-rate', 'paystep').Properties).toMatchObject({
      Namespace: 'AWS/ApiGateway',
      MetricName: '5XXError',
      Dimensions: [{ Name: 'ApiName', Value: 'paystep' }],
      Statistic: 'Average',
    });
    expect(alarmOf('api-latency-p99', 'paystep').Properties).toMatchObject({
      Namespace: 'AWS/ApiGateway',
      MetricName: 'Latency',
      ExtendedStatistic: 'p99',
    });
    expect(streamConsumers.length).toBeGreaterThan(0);
    for (const f of streamConsumers)
      expect(alarmOf('stream-iterator-age', f).Properties).toMatchObject({
        Namespace: 'AWS/Lambda',
        MetricName: 'IteratorAge',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalIdOf('function', f) } }],
        Statistic: 'Maximum',
      });
  });

  test('business alarms read the metrics the handlers emit (lambdas/shared/metrics.ts)', () => {
    expect(alarmOf('needs-attention', 'sweeper').Properties).toMatchObject({
      Namespace: METRICS_NAMESPACE,
      MetricName: METRIC.sweeperEscalations,
      Dimensions: [{ Name: 'service', Value: 'paystep' }],
      Statistic: 'Sum',
      Threshold: 1,
    });
    expect(alarmOf('reconciliation-exceptions', 'open').Properties).toMatchObject({
      Namespace: METRICS_NAMESPACE,
      MetricName: METRIC.openReconciliationExceptions,
      Dimensions: [{ Name: 'service', Value: 'paystep' }],
      Statistic: 'Maximum',
      TreatMissingData: 'ignore',
    });
  });

  test('the topic: a rotated KMS key CloudWatch may use, TLS only, CloudWatch alarms of this account may publish', () => {
    const topic = resources[topicId()]!;
    const keyId = (topic.Properties.KmsMasterKeyId as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0];
    const key = resources[keyId]!;
    expect(key.Type).toBe('AWS::KMS::Key');
    expect(key.Properties.EnableKeyRotation).toBe(true);
    expect(JSON.stringify(key.Properties.KeyPolicy)).toContain('cloudwatch.amazonaws.com');
    const [[, policy]] = ofType('AWS::SNS::TopicPolicy') as [[string, Resource]];
    expect(policy.Properties.Topics).toEqual([{ Ref: topicId() }]);
    expect(statements(policy)).toContainEqual(
      expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    );
    expect(statements(policy)).toContainEqual(
      expect.objectContaining({
        Effect: 'Allow',
        Action: 'sns:Publish',
        Principal: { Service: 'cloudwatch.amazonaws.com' },
      }),
    );
    expect(ofType('AWS::SNS::Subscription')).toHaveLength(0);
  });

  test('-c alarmEmail=… subscribes that address to the topic', () => {
    const { alarms: nested } = synthPaystep({}, { context: { alarmEmail: 'oncall@example.com' } });
    nested.resourceCountIs('AWS::SNS::Subscription', 1);
    nested.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
    });
  });

  test('one dashboard with the same signals', () => {
    const dashboards = ofType('AWS::CloudWatch::Dashboard');
    expect(dashboards).toHaveLength(1);
    const body = JSON.stringify(dashboards[0]![1].Properties.DashboardBody);
    for (const metric of [
      'ExecutionsStarted',
      'ExecutionsFailed',
      'ExecutionsTimedOut',
      'ExecutionsAborted',
      'ApproximateNumberOfMessagesVisible',
      'Errors',
      'Throttles',
      'Duration',
      '5XXError',
      'Latency',
      'IteratorAge',
      ...Object.values(METRIC),
    ])
      expect(body).toContain(metric);
    for (const sm of Object.keys(topology.stateMachines))
      expect(body).toContain(`"Ref":"${logicalIdOf('state-machine', sm)}"`);
    for (const q of deadLetterQueues)
      expect(body).toContain(
        JSON.stringify(
          getAtt(logicalIdOf(q === SCHEDULER_DLQ ? 'internal-queue' : 'dead-letter-queue', q), 'QueueName'),
        ),
      );
    for (const f of Object.keys(topology.functions))
      expect(body).toContain(`"Ref":"${logicalIdOf('function', f)}"`);
  });
});
