/**
 * The AWS side of paystep, built only from `lib/topology.ts`.
 *
 * Everything below iterates over the topology: adding a function, route, table, queue, bucket, secret,
 * state machine or schedule there adds it here, with the same defaults (see `PaystepFunction` for the
 * function defaults). Each resource carries CloudFormation Metadata `paystep:kind` / `paystep:name`, which
 * `cdkInventory()` (lib/inventory.ts) reads back from the synthesized template for the parity test.
 *
 * cdk-nag (AwsSolutions) is registered in bin/paystep.ts. Findings are fixed where the service allows it;
 * the rest are acknowledged on the resource that raises them, with the reason next to the code.
 */
import { Rule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CfnOutput, CfnResource, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type { StackProps } from 'aws-cdk-lib';
import {
  AccessLogFormat,
  AuthorizationType,
  EndpointType,
  IdentitySource,
  LambdaIntegration,
  LogGroupLogDestination,
  RequestAuthorizer,
  ResponseType,
  RestApi,
} from 'aws-cdk-lib/aws-apigateway';
import type { Method } from 'aws-cdk-lib/aws-apigateway';
import { AttributeType, BillingMode, StreamViewType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { CfnPolicy, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq, SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { CfnSchedule } from 'aws-cdk-lib/aws-scheduler';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import type { CfnBucket } from 'aws-cdk-lib/aws-s3';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { DefinitionBody, LogLevel, StateMachine, StateMachineType } from 'aws-cdk-lib/aws-stepfunctions';
import { rules as nagRules } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import type { Construct } from 'constructs';
import { deployedAslText } from './asl-definition.ts';
import { PaystepFunction } from './function.ts';
import { dlqName, topology as defaultTopology, validateTopology } from './topology.ts';
import type { KeyDef, Topology } from './topology.ts';
import { config as handlerConfig } from '../lambdas/shared/config.ts';

export { cdkInventory } from './inventory.ts';
export type { CdkInventory } from './inventory.ts';

/** Project root: entries and ASL files in the topology are relative to it. */
export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Metadata keys put on every resource that stands for a topology entry (read by `cdkInventory`). */
export const KIND_KEY = 'paystep:kind';
export const NAME_KEY = 'paystep:name';

/** Name of the queue that receives schedule invocations EventBridge Scheduler could not deliver. */
export const SCHEDULER_DLQ = 'scheduler-dlq';

/**
 * API Gateway's own responses (authorizer refusals, unknown routes, throttling, body validation) in the
 * paystep error shape `{"error":{"type","code","message"}}`. Without `message`, API Gateway's message is used.
 */
export const GATEWAY_ERRORS: {
  type: ResponseType;
  statusCode?: string;
  errorType: string;
  code: string;
  message?: string;
}[] = [
  // Missing header, or the authorizer said "Unauthorized" or returned a Deny: the key is missing or wrong.
  {
    type: ResponseType.UNAUTHORIZED,
    statusCode: '401',
    errorType: 'authentication_error',
    code: 'invalid_api_key',
    message: 'Missing or invalid API key (Authorization: Bearer <key>).',
  },
  {
    type: ResponseType.ACCESS_DENIED,
    statusCode: '401',
    errorType: 'authentication_error',
    code: 'invalid_api_key',
    message: 'Missing or invalid API key (Authorization: Bearer <key>).',
  },
  // API Gateway answers an unknown path or method with 403 "Missing Authentication Token"; paystep says 404.
  {
    type: ResponseType.MISSING_AUTHENTICATION_TOKEN,
    statusCode: '404',
    errorType: 'not_found',
    code: 'route_not_found',
    message: 'No such route.',
  },
  {
    type: ResponseType.THROTTLED,
    statusCode: '429',
    errorType: 'rate_limit_error',
    code: 'rate_limited',
    message: 'Too many requests; retry later.',
  },
  { type: ResponseType.DEFAULT_4XX, errorType: 'invalid_request_error', code: 'invalid_request' },
  { type: ResponseType.DEFAULT_5XX, errorType: 'api_error', code: 'internal_error' },
];

export interface PaystepStackProps extends StackProps {
  /** Defaults to the topology of `lib/topology.ts`; tests may pass a variant. */
  topology?: Topology;
}

/** `ping-start` → `PingStart`: construct ids that read well in logical ids. */
export const pascal = (name: string): string =>
  name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('');

const attributeType = (k: KeyDef) => (k.type === 'N' ? AttributeType.NUMBER : AttributeType.STRING);
const key = (k: KeyDef) => ({ name: k.name, type: attributeType(k) });

/** Marks the resource behind `construct` as the topology entry `kind`/`name`. */
function mark(construct: IConstruct, kind: string, name: string): void {
  const cfn = construct instanceof CfnResource ? construct : construct.node.defaultChild;
  if (!(cfn instanceof CfnResource))
    throw new Error(`cannot mark ${construct.node.path}: no CloudFormation resource`);
  cfn.addMetadata(KIND_KEY, kind);
  cfn.addMetadata(NAME_KEY, name);
}

/** Acknowledges a cdk-nag finding on one construct (and its children), with the reason. */
function acknowledge(construct: IConstruct, id: string, reason: string): void {
  Validations.of(construct).acknowledge({ id, reason });
}

/** Actions AWS offers no resource-level permissions for, which CDK grants on `*`. */
const UNSCOPABLE_ACTIONS = new Set([
  // Tracing.ACTIVE (Lambda) and tracingEnabled (Step Functions)
  'xray:PutTraceSegments',
  'xray:PutTelemetryRecords',
  'xray:GetSamplingRules',
  'xray:GetSamplingTargets',
  // Step Functions logging to CloudWatch Logs (log delivery APIs)
  'logs:CreateLogDelivery',
  'logs:GetLogDelivery',
  'logs:UpdateLogDelivery',
  'logs:DeleteLogDelivery',
  'logs:ListLogDeliveries',
  'logs:PutResourcePolicy',
  'logs:DescribeResourcePolicies',
  'logs:DescribeLogGroups',
  // DynamoDB stream event source mapping
  'dynamodb:ListStreams',
]);

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
  readonly api: RestApi;

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
    this.api = this.buildApi(t);
    this.buildSchedules(t);

    new CfnOutput(this, 'ApiUrl', { value: this.api.url, description: 'Base URL of the paystep API' });
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

    this.acknowledgeGeneratedWildcards();
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

  private buildApi(t: Topology): RestApi {
    const accessLogs = new LogGroup(this, 'ApiAccessLogs', { retention: RetentionDays.ONE_MONTH });
    const api = new RestApi(this, 'Api', {
      restApiName: 'paystep',
      description: 'paystep public API',
      endpointTypes: [EndpointType.REGIONAL],
      cloudWatchRole: false,
      deployOptions: {
        stageName: 'prod',
        accessLogDestination: new LogGroupLogDestination(accessLogs),
        accessLogFormat: AccessLogFormat.jsonWithStandardFields(),
        tracingEnabled: true,
        metricsEnabled: true,
        throttlingRateLimit: t.api.throttle.rateLimit,
        throttlingBurstLimit: t.api.throttle.burstLimit,
      },
    });
    mark(api, 'api', 'paystep');
    acknowledge(
      api.deploymentStage,
      'AwsSolutions-APIG3',
      'No WAF web ACL yet: every merchant route needs an API key checked by the authorizer, the stage is ' +
        'throttled, and webhooks are signature-verified. A regional web ACL is a per-account deployment choice.',
    );
    acknowledge(
      api.deploymentStage,
      'AwsSolutions-APIG6',
      'Execution logging needs the account-wide API Gateway CloudWatch role, which this stack must not own ' +
        '(one per account and region). JSON access logs and X-Ray traces are on for the stage.',
    );

    for (const r of GATEWAY_ERRORS) {
      const message = r.message === undefined ? '$context.error.messageString' : JSON.stringify(r.message);
      const body = `{"error":{"type":"${r.errorType}","code":"${r.code}","message":${message}}}`;
      api.addGatewayResponse(`${pascal(r.type.responseType.toLowerCase())}Response`, {
        type: r.type,
        statusCode: r.statusCode,
        templates: { 'application/json': body },
      });
    }

    const validator = api.addRequestValidator('RequestValidator', {
      requestValidatorName: 'body-and-parameters',
      validateRequestBody: true,
      validateRequestParameters: true,
    });

    const authorizerFn = this.fn(t.authorizer.function);
    const authorizer = new RequestAuthorizer(this, 'MerchantAuthorizer', {
      authorizerName: 'merchant-api-key',
      handler: authorizerFn.fn,
      identitySources: [IdentitySource.header('Authorization')],
      resultsCacheTtl: Duration.seconds(t.authorizer.cacheTtlSeconds),
    });

    const integrations = new Map<string, LambdaIntegration>();
    for (const route of t.routes) {
      const f = this.fn(route.function);
      let integration = integrations.get(route.function);
      if (!integration) {
        // One invoke permission per function, scoped to this API (any of its methods), rather than
        // one per method: a function serving several routes (GET and POST of a resource, the ops
        // actions) would otherwise cost a resource per route, and the stack must stay under
        // CloudFormation's 500 resources. The API is paystep's own; its routes are the topology's.
        integration = new LambdaIntegration(f.fn, { proxy: true, scopePermissionToMethod: false });
        integrations.set(route.function, integration);
      }
      const resource = api.root.resourceForPath(route.path);
      const pathParams = [...route.path.matchAll(/\{([^}+]+)\+?\}/g)].map((m) => m[1]!);
      const requestParameters = Object.fromEntries(pathParams.map((p) => [`method.request.path.${p}`, true]));
      const method: Method = resource.addMethod(route.method, integration, {
        requestValidator: validator,
        requestParameters,
        ...(route.auth !== 'none'
          ? { authorizer, authorizationType: AuthorizationType.CUSTOM }
          : { authorizationType: AuthorizationType.NONE }),
      });
      acknowledge(
        method,
        'AwsSolutions-COG4',
        'paystep authenticates merchants with their API keys through a Lambda request authorizer, not ' +
          'Cognito user pools (machine-to-machine API, Stripe-like).',
      );
      if (route.auth === 'none')
        acknowledge(
          method,
          'AwsSolutions-APIG4',
          `${route.method} ${route.path} is called by a payment processor, which cannot hold a merchant key; ` +
            'the handler verifies the signature of the raw body instead.',
        );
    }
    return api;
  }

  private buildSchedules(t: Topology): void {
    if (Object.keys(t.schedules).length === 0) return;
    const dlq = this.newQueue(`${pascal(SCHEDULER_DLQ)}Queue`, { retentionPeriod: Duration.days(14) });
    mark(dlq, 'internal-queue', SCHEDULER_DLQ);
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

  /**
   * IAM5 (wildcards) findings that CDK grants generate, acknowledged one by one (cdk-nag v3 has no prefix
   * match) only when they match a known, scoped pattern below. Anything else stays a finding and fails synth.
   * Runs last, when every grant of the constructor has been made.
   */
  private acknowledgeGeneratedWildcards(): void {
    const logicalIds = (kind: 'table' | 'bucket' | 'stateMachine') => {
      const source = kind === 'table' ? this.tables : kind === 'bucket' ? this.buckets : this.stateMachines;
      return [...source.values()].map((c) => this.getLogicalId(c.node.defaultChild as CfnResource));
    };
    const tables = logicalIds('table');
    const buckets = logicalIds('bucket');
    const stateMachines = logicalIds('stateMachine');

    const reasonFor = (finding: string): string | undefined => {
      const bucketActions = ['s3:GetObject*', 's3:GetBucket*', 's3:List*', 's3:DeleteObject*', 's3:Abort*'];
      if (bucketActions.some((a) => finding === `Action::${a}`))
        return 'Generated by Bucket.grantReadWrite (object read/write/delete of one paystep bucket); the matching resource is that bucket only.';
      for (const b of buckets)
        if (finding === `Resource::<${b}.Arn>/*`)
          return 'Generated by Bucket.grantReadWrite: objects of this one bucket (report keys are not known in advance).';
      for (const tb of tables)
        if (finding === `Resource::<${tb}.Arn>/index/*`)
          return 'Generated by Table.grantReadWriteData: the global secondary indexes of this one table.';
      for (const name of this.stateMachines.keys())
        if (new RegExp(`^Resource::arn:.+:states:.+:execution:${this.stackName}-${name}:\\*$`).test(finding))
          return 'Generated by StateMachine.grantExecution (describe, history, stop): executions of this one state machine, named by its fixed name (execution names are payment/refund ids, not known in advance).';
      for (const sm of stateMachines)
        if (
          /^Resource::arn:.+:states:.+:execution:/.test(finding) &&
          finding.includes(`"Ref":"${sm}"`) &&
          finding.endsWith(':*')
        )
          return 'Generated by StateMachine.grantExecution (describe, history, stop): executions of this one state machine (execution names are not known in advance).';
      return undefined;
    };

    for (const node of this.node.findAll()) {
      if (!(node instanceof CfnPolicy)) continue;
      const findings = nagRules.iam.IAMNoWildcardPermissions(node);
      if (!Array.isArray(findings)) continue;
      for (const finding of findings) {
        const reason = finding === 'Resource::*' ? this.reasonForStar(node) : reasonFor(finding);
        if (reason) acknowledge(node, `AwsSolutions-IAM5[${finding}]`, reason);
      }
    }
  }

  /**
   * A `Resource::*` finding is acknowledged only when every action granted on `*` is one that supports no
   * resource-level permission (tracing, log delivery); otherwise it stays a finding.
   */
  private reasonForStar(policy: CfnPolicy): string | undefined {
    const doc = this.resolve(policy.policyDocument) as {
      Statement?: { Effect: string; Action: string | string[]; Resource: unknown }[];
    };
    const onStar = new Set<string>();
    for (const s of doc.Statement ?? []) {
      const resources = Array.isArray(s.Resource) ? s.Resource : [s.Resource];
      if (s.Effect !== 'Allow' || !resources.includes('*')) continue;
      for (const a of Array.isArray(s.Action) ? s.Action : [s.Action]) onStar.add(a);
    }
    if ([...onStar].some((a) => !UNSCOPABLE_ACTIONS.has(a))) return undefined;
    return (
      `${[...onStar].sort().join(', ')} support no resource-level permissions (X-Ray tracing, CloudWatch ` +
      'Logs delivery of Step Functions, DynamoDB ListStreams); nothing else in this policy is granted on "*".'
    );
  }
}
