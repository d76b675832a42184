/**
 * The AWS side of paystep, built only from `lib/topology.ts`.
 *
 * Everything below iterates over the topology: adding a function, route, table, queue, bucket, secret,
 * state machine or schedule there adds it here, with the same defaults (see `PaystepFunction` for the
 * function defaults). Each resource carries CloudFormation Metadata `paystep:kind` / `paystep:name`, which
 * `cdkInventory()` (lib/inventory.ts) reads back from the synthesized template for the parity test.
 *
 * The REST API (lib/stack/api.ts) and the alarms and dashboard (lib/stack/alarms.ts) are nested stacks,
 * so that each stays well under CloudFormation's 500 resources (docs/architecture.md "Stack size").
 *
 * cdk-nag (AwsSolutions) is registered in bin/paystep.ts. Findings are fixed where the service allows it;
 * the rest are acknowledged on the resource that raises them, with the reason next to the code.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CfnOutput, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { CfnResource, StackProps } from 'aws-cdk-lib';
import { Rule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { RestApi } from 'aws-cdk-lib/aws-apigateway';
import { AttributeType, BillingMode, StreamViewType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq, SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { CfnSchedule } from 'aws-cdk-lib/aws-scheduler';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import type { CfnBucket } from 'aws-cdk-lib/aws-s3';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { DefinitionBody, LogLevel, StateMachine, StateMachineType } from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { deployedAslText } from './asl-definition.ts';
import { PaystepFunction } from './function.ts';
import { AlarmsStack } from './stack/alarms.ts';
import { ApiStack } from './stack/api.ts';
import { acknowledge, mark, pascal, PROJECT_ROOT } from './stack/common.ts';
import { acknowledgeGeneratedWildcards } from './stack/wildcards.ts';
import { dlqName, topology as defaultTopology, validateTopology } from './topology.ts';
import type { KeyDef, Topology } from './topology.ts';
import { config as handlerConfig } from '../lambdas/shared/config.ts';

export { cdkInventory } from './inventory.ts';
export type { CdkInventory } from './inventory.ts';
export { GATEWAY_ERRORS } from './stack/api.ts';
export { KIND_KEY, NAME_KEY, pascal, PROJECT_ROOT } from './stack/common.ts';

/** Name of the queue that receives schedule invocations EventBridge Scheduler could not deliver. */
export const SCHEDULER_DLQ = 'scheduler-dlq';

export interface PaystepStackProps extends StackProps {
  /** Defaults to the topology of `lib/topology.ts`; tests may pass a variant. */
  topology?: Topology;
}

const attributeType = (k: KeyDef) => (k.type === 'N' ? AttributeType.NUMBER : AttributeType.STRING);
const key = (k: KeyDef) => ({ name: k.name, type: attributeType(k) });

/** `${Name}` placeholders of an ASL document. */
export function aslPlaceholders(asl: string): string[] {
  return [...new Set([...asl.matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]!))].sort();
}

export class PaystepStack extends Stack {
  readonly functions = new Map<string, PaystepFunction>();
  readonly tables = new Map<string, Table>();
  readonly queues = new Map<string, Queue>();
  readonly deadLetterQueues = new Map<string, Queue>();
  readonly buckets = new Map<string, Bucket>();
  readonly secrets = new Map<string, Secret>();
  readonly stateMachines = new Map<string, StateMachine>();
  /** The dead-letter queue of EventBridge Scheduler (when the topology has schedules). */
  schedulerDlq?: Queue;
  readonly apiStack: ApiStack;
  readonly api: RestApi;
  readonly alarmsStack: AlarmsStack;

  constructor(scope: Construct, id: string, props: PaystepStackProps = {}) {
    super(scope, id, props);
    const t = props.topology ?? defaultTopology;
    const problems = validateTopology(t);
    if (problems.length) throw new Error(`invalid topology:\n- ${problems.join('\n- ')}`);

    this.buildBuckets(t);
    this.buildTables(t);
    this.buildQueues(t);
    this.buildSecrets(t);
    this.buildFunctions(t);
    this.buildStateMachines(t);
    this.wireFunctionUses(t);
    this.buildEventSources(t);
    this.buildBucketTriggers(t);
    // The API and the alarms each in a nested stack: CloudFormation's 500 resources per stack
    // (docs/architecture.md "Stack size").
    this.apiStack = new ApiStack(this, 'ApiStack', { topology: t, functions: this.functions });
    this.api = this.apiStack.api;
    this.buildSchedules(t);
    const deadLetterQueues = new Map<string, Queue>(
      [...this.deadLetterQueues].map(([queue, dlq]) => [dlqName(queue), dlq]),
    );
    if (this.schedulerDlq) deadLetterQueues.set(SCHEDULER_DLQ, this.schedulerDlq);
    const alarmEmail: unknown = this.node.tryGetContext('alarmEmail');
    this.alarmsStack = new AlarmsStack(this, 'AlarmsStack', {
      topology: t,
      namePrefix: this.stackName,
      functions: this.functions,
      stateMachines: this.stateMachines,
      deadLetterQueues,
      api: this.api,
      alarmEmail: typeof alarmEmail === 'string' && alarmEmail.trim() ? alarmEmail.trim() : undefined,
    });

    new CfnOutput(this, 'ApiUrl', { value: this.api.url, description: 'Base URL of the paystep API' });
    new CfnOutput(this, 'AlarmTopicArn', {
      value: this.alarmsStack.topic.topicArn,
      description: 'SNS topic every paystep alarm notifies (subscribe on-call to it)',
    });
    new CfnOutput(this, 'DashboardName', {
      value: this.alarmsStack.dashboard.dashboardName,
      description: 'CloudWatch dashboard of the same signals as the alarms',
    });
    for (const [name, bucket] of this.buckets)
      new CfnOutput(this, `${pascal(name)}BucketName`, {
        value: bucket.bucketName,
        description: `Bucket ${name}`,
      });
    for (const [name, sm] of this.stateMachines)
      new CfnOutput(this, `${pascal(name)}StateMachineArn`, {
        value: sm.stateMachineArn,
        description: `State machine ${name}`,
      });

    acknowledgeGeneratedWildcards(this, {
      tables: this.tables.values(),
      buckets: this.buckets.values(),
      stateMachines: this.stateMachines,
    });
  }

  private fn(name: string): PaystepFunction {
    const f = this.functions.get(name);
    if (!f) throw new Error(`unknown function ${name}`);
    return f;
  }

  private buildBuckets(t: Topology): void {
    if (Object.keys(t.buckets).length === 0) return;
    // Server access logs of the data buckets (S3 delivers them with SSE-S3 only).
    const accessLogs = new Bucket(this, 'AccessLogsBucket', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      lifecycleRules: [{ expiration: Duration.days(365) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    mark(accessLogs, 'access-log-bucket', 'access-logs');
    acknowledge(
      accessLogs,
      'AwsSolutions-S1',
      'This is the server access log bucket of the data buckets; logging it into itself would loop.',
    );

    for (const [name, def] of Object.entries(t.buckets)) {
      const bucket = new Bucket(this, `${pascal(name)}Bucket`, {
        encryption: BucketEncryption.S3_MANAGED,
        versioned: true,
        blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
        objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforceSSL: true,
        serverAccessLogsBucket: accessLogs,
        serverAccessLogsPrefix: `${name}/`,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      mark(bucket, 'bucket', name);
      (bucket.node.defaultChild as CfnResource).addMetadata('paystep:description', def.description);
      this.buckets.set(name, bucket);
    }
  }

  private buildTables(t: Topology): void {
    for (const [name, def] of Object.entries(t.tables)) {
      const table = new Table(this, `${pascal(name)}Table`, {
        partitionKey: key(def.partitionKey),
        sortKey: def.sortKey ? key(def.sortKey) : undefined,
        billingMode: BillingMode.PAY_PER_REQUEST,
        // Always on: the stream is how the platform reacts to writes, whether or not a consumer is declared.
        stream: StreamViewType.NEW_AND_OLD_IMAGES,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        timeToLiveAttribute: def.ttlAttribute,
        encryption: TableEncryption.AWS_MANAGED,
        deletionProtection: true,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      for (const gsi of def.globalIndexes ?? [])
        table.addGlobalSecondaryIndex({
          indexName: gsi.name,
          partitionKey: key(gsi.partitionKey),
          sortKey: gsi.sortKey ? key(gsi.sortKey) : undefined,
        });
      mark(table, 'table', name);
      this.tables.set(name, table);
    }
  }

  private newQueue(id: string, props: ConstructorParameters<typeof Queue>[2] = {}): Queue {
    return new Queue(this, id, {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      ...props,
    });
  }

  private buildQueues(t: Topology): void {
    for (const [name, def] of Object.entries(t.queues)) {
      const dlq = this.newQueue(`${pascal(dlqName(name))}Queue`, { retentionPeriod: Duration.days(14) });
      mark(dlq, 'dead-letter-queue', dlqName(name));
      acknowledge(
        dlq,
        'AwsSolutions-SQS3',
        `This is the dead-letter queue of queue ${name}; it has no DLQ itself.`,
      );
      this.deadLetterQueues.set(name, dlq);

      const queue = this.newQueue(`${pascal(name)}Queue`, {
        visibilityTimeout: Duration.seconds(def.visibilityTimeoutSeconds),
        deadLetterQueue: { queue: dlq, maxReceiveCount: def.maxReceiveCount },
      });
      mark(queue, 'queue', name);
      this.queues.set(name, queue);
    }
  }

  private buildSecrets(t: Topology): void {
    for (const [name, def] of Object.entries(t.secrets)) {
      const secret = new Secret(this, `${pascal(name)}Secret`, {
        description: `paystep ${name}: ${def.description}`,
        // Provided secrets start with a random placeholder: the operator puts the real value.
        generateSecretString: {
          excludePunctuation: true,
          passwordLength: 'generated' in def.source ? def.source.generated.length : 32,
        },
        removalPolicy: RemovalPolicy.RETAIN,
      });
      mark(secret, 'secret', name);
      acknowledge(secret, 'AwsSolutions-SMG4', def.rotation);
      this.secrets.set(name, secret);
    }
  }

  /**
   * The topology's deployment settings (`config`) from the CDK context (`-c processors=stripe,adyen
   * -c adyenMerchantAccount=…`), else their AWS defaults; checked here so that a wrong value fails
   * the synth rather than the first payment.
   */
  private deploymentSettings(t: Topology): Record<string, string> {
    const env: Record<string, string> = {};
    for (const def of Object.values(t.config ?? {})) {
      const given: unknown = this.node.tryGetContext(def.context);
      const value = given === undefined ? def.awsDefault : String(given).trim();
      if (value !== '') env[def.env] = value;
    }
    if (env.PAYSTEP_PROCESSORS !== undefined) {
      let processors: string[];
      try {
        processors = handlerConfig.processors(env);
      } catch (err) {
        throw new Error(`context processors: ${(err as Error).message}`, { cause: err });
      }
      if (processors.includes('adyen') && !env.ADYEN_MERCHANT_ACCOUNT)
        throw new Error(
          'context processors enables adyen: set its merchant account too (-c adyenMerchantAccount=<account>)',
        );
    }
    return env;
  }

  private buildFunctions(t: Topology): void {
    const settings = this.deploymentSettings(t);
    for (const [name, def] of Object.entries(t.functions)) {
      const f = new PaystepFunction(this, `${pascal(name)}Function`, {
        name,
        def,
        projectRoot: PROJECT_ROOT,
      });
      for (const [k, v] of Object.entries(settings)) f.fn.addEnvironment(k, v);
      mark(f.fn, 'function', name);
      this.functions.set(name, f);
    }
  }

  private buildStateMachines(t: Topology): void {
    for (const [name, def] of Object.entries(t.stateMachines)) {
      const file = path.join(PROJECT_ROOT, def.file);
      if (!fs.existsSync(file)) throw new Error(`state machine ${name}: ASL file ${def.file} not found`);
      // The shared loader (also the local runtime's): named retry policies expanded.
      const asl = deployedAslText(fs.readFileSync(file, 'utf8'), def.file);
      const missing = aslPlaceholders(asl).filter((p) => !(p in def.substitutions));
      if (missing.length)
        throw new Error(
          `state machine ${name}: ${def.file} uses \${${missing.join('}, ${')}} without a substitution`,
        );

      const logs = new LogGroup(this, `${pascal(name)}StateMachineLogs`, {
        // The /aws/vendedlogs/ prefix keeps CloudWatch Logs resource policies small (Step Functions guidance).
        logGroupName: `/aws/vendedlogs/states/${this.stackName}-${name}`,
        retention: RetentionDays.ONE_MONTH,
      });
      const role = new Role(this, `${pascal(name)}StateMachineRole`, {
        assumedBy: new ServicePrincipal('states.amazonaws.com'),
        description: `paystep state machine ${name}`,
      });

      const substitutions: Record<string, string> = {};
      for (const [placeholder, s] of Object.entries(def.substitutions)) {
        if ('functionArn' in s) {
          const f = this.fn(s.functionArn);
          substitutions[placeholder] = f.functionArn;
          // The exact function (no `:*` qualifier wildcard): workflows invoke $LATEST by ARN.
          role.addToPrincipalPolicy(
            new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [f.functionArn] }),
          );
        } else if ('tableName' in s) {
          const table = this.tables.get(s.tableName)!;
          substitutions[placeholder] = table.tableName;
          table.grantReadWriteData(role);
        } else if ('queueUrl' in s) {
          const queue = this.queues.get(s.queueUrl)!;
          substitutions[placeholder] = queue.queueUrl;
          queue.grantSendMessages(role);
        } else {
          const bucket = this.buckets.get(s.bucketName)!;
          substitutions[placeholder] = bucket.bucketName;
          bucket.grantReadWrite(role);
        }
      }

      const sm = new StateMachine(this, `${pascal(name)}StateMachine`, {
        // A fixed name lets functions refer to the state machine by a constructed ARN (see
        // wireFunctionUses): a task function that also resumes its own workflow would otherwise
        // form a dependency cycle (function → policy → state machine → function).
        stateMachineName: `${this.stackName}-${name}`,
        comment: def.description,
        definitionBody: DefinitionBody.fromString(asl),
        definitionSubstitutions: substitutions,
        stateMachineType: def.type === 'EXPRESS' ? StateMachineType.EXPRESS : StateMachineType.STANDARD,
        role,
        logs: { destination: logs, level: LogLevel.ALL, includeExecutionData: false },
        tracingEnabled: true,
      });
      mark(sm, 'state-machine', name);
      this.stateMachines.set(name, sm);
    }
  }

  private wireFunctionUses(t: Topology): void {
    for (const [name, def] of Object.entries(t.functions)) {
      const f = this.fn(name);
      for (const x of def.uses?.tables ?? []) f.useTable(x, this.tables.get(x)!);
      for (const x of def.uses?.queues ?? []) f.useQueue(x, this.queues.get(x)!);
      for (const x of def.uses?.buckets ?? []) f.useBucket(x, this.buckets.get(x)!);
      for (const x of def.uses?.stateMachines ?? []) {
        // By constructed ARN, not by reference: no deploy-time dependency is needed (the function
        // only calls the state machine at run time, after the stack is deployed).
        if (!this.stateMachines.has(x)) throw new Error(`function ${name} uses unknown state machine ${x}`);
        f.useStateMachine(
          x,
          StateMachine.fromStateMachineName(
            this,
            `${pascal(name)}Uses${pascal(x)}`,
            `${this.stackName}-${x}`,
          ),
        );
      }
      for (const x of def.uses?.secrets ?? []) f.useSecret(x, this.secrets.get(x)!);
    }
  }

  /** `onObjectCreated` triggers: an EventBridge rule on the bucket's "Object Created" events per prefix. */
  private buildBucketTriggers(t: Topology): void {
    for (const [name, def] of Object.entries(t.buckets)) {
      for (const [i, trigger] of (def.onObjectCreated ?? []).entries()) {
        const bucket = this.buckets.get(name)!;
        // Set on the CloudFormation resource itself: the L2 `eventBridgeEnabled` flag would add
        // CDK's notification custom resource (an extra Lambda with a managed policy).
        (bucket.node.defaultChild as CfnBucket).addPropertyOverride(
          'NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled',
          true,
        );
        const rule = new Rule(this, `${pascal(name)}ObjectCreated${i}Rule`, {
          description: `paystep: objects created under ${name}/${trigger.prefix} → ${trigger.function}`,
          eventPattern: {
            source: ['aws.s3'],
            detailType: ['Object Created'],
            detail: { bucket: { name: [bucket.bucketName] }, object: { key: [{ prefix: trigger.prefix }] } },
          },
        });
        rule.addTarget(new LambdaFunction(this.fn(trigger.function).fn, { retryAttempts: 4 }));
        mark(rule, 'bucket-trigger', `${name}:${trigger.prefix}`);
      }
    }
  }

  private buildEventSources(t: Topology): void {
    for (const [name, def] of Object.entries(t.tables)) {
      if (!def.stream) continue;
      const consumer = this.fn(def.stream.consumer);
      consumer.fn.addEventSource(
        new DynamoEventSource(this.tables.get(name)!, {
          startingPosition: StartingPosition.TRIM_HORIZON,
          batchSize: def.stream.batchSize,
          bisectBatchOnError: true,
          reportBatchItemFailures: true,
          retryAttempts: def.stream.maxRetries,
          onFailure: new SqsDlq(this.queues.get(def.stream.failureQueue)!),
          // A tumbling window makes Lambda name the shard in each event (`shardId`): the stream
          // router keeps its approval rollups exactly once per shard (docs/routing.md).
          tumblingWindow: Duration.seconds(1),
        }),
      );
    }
    for (const [name, def] of Object.entries(t.queues)) {
      if (!def.consumer) continue;
      const consumer = this.fn(def.consumer);
      const timeout = consumer.timeout.toSeconds();
      if (def.visibilityTimeoutSeconds < timeout)
        throw new Error(
          `queue ${name}: visibilityTimeoutSeconds (${def.visibilityTimeoutSeconds}) is shorter than the ` +
            `timeout of its consumer ${def.consumer} (${timeout} s); a message would be delivered again while ` +
            `it is still being processed. Raise the queue's visibility timeout (AWS suggests 6x the timeout).`,
        );
      consumer.fn.addEventSource(
        new SqsEventSource(this.queues.get(name)!, {
          batchSize: def.batchSize,
          reportBatchItemFailures: true,
        }),
      );
    }
  }

  private buildSchedules(t: Topology): void {
    if (Object.keys(t.schedules).length === 0) return;
    const dlq = this.newQueue(`${pascal(SCHEDULER_DLQ)}Queue`, { retentionPeriod: Duration.days(14) });
    mark(dlq, 'internal-queue', SCHEDULER_DLQ);
    this.schedulerDlq = dlq;
    acknowledge(
      dlq,
      'AwsSolutions-SQS3',
      'This is the dead-letter queue of EventBridge Scheduler (undeliverable invocations); it has no DLQ itself.',
    );

    for (const [name, def] of Object.entries(t.schedules)) {
      const f = this.fn(def.target.function);
      const role = new Role(this, `${pascal(name)}ScheduleRole`, {
        assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
          conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
        }),
        description: `paystep schedule ${name}`,
      });
      role.addToPrincipalPolicy(
        new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [f.functionArn] }),
      );
      dlq.grantSendMessages(role);

      const schedule = new CfnSchedule(this, `${pascal(name)}Schedule`, {
        description: def.description,
        scheduleExpression: def.expression,
        scheduleExpressionTimezone: 'UTC',
        flexibleTimeWindow: { mode: 'OFF' },
        state: 'ENABLED',
        target: {
          arn: f.functionArn,
          roleArn: role.roleArn,
          input: JSON.stringify(def.input ?? {}),
          retryPolicy: { maximumRetryAttempts: 5, maximumEventAgeInSeconds: 3600 },
          deadLetterConfig: { arn: dlq.queueArn },
        },
      });
      // The role's policy must exist before the first invocation.
      schedule.node.addDependency(role);
      mark(schedule, 'schedule', name);
    }
  }
}
