/**
 * The AWS stack, checked on its synthesized CloudFormation template: what matters for a payment platform
 * (streams, point-in-time recovery, dead-letter queues, encryption, TLS, logging, tracing, auth) and that
 * everything the topology declares is there. Bundling is skipped (see synth.ts); one synth per file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Validations } from 'aws-cdk-lib';
import type { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { deployedAslText } from '../../lib/asl-definition.ts';
import { cdkInventory } from '../../lib/inventory.ts';
import {
  aslPlaceholders,
  KIND_KEY,
  NAME_KEY,
  pascal,
  PaystepStack,
  PROJECT_ROOT,
  SCHEDULER_DLQ,
} from '../../lib/stack.ts';
import { dlqName, envVarFor, topology } from '../../lib/topology.ts';
import type { Topology } from '../../lib/topology.ts';
import { newApp, synthPaystep } from './synth.ts';
import type { StackTemplates } from './synth.ts';

type Resource = {
  Type: string;
  Properties: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
} & Record<string, unknown>;

/** The parent stack with its nested stacks (the API, the alarms): see synth.ts. */
let template: Template;
let resources: Record<string, Resource>;
let parts: StackTemplates;

beforeAll(() => {
  parts = synthPaystep();
  template = parts.all;
  resources = template.toJSON().Resources as Record<string, Resource>;
});

const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
/** Logical id of the resource standing for a topology entry (Metadata paystep:kind / paystep:name). */
const logicalIdOf = (kind: string, name: string): string => {
  const found = Object.entries(resources).filter(
    ([, r]) => r.Metadata?.[KIND_KEY] === kind && r.Metadata?.[NAME_KEY] === name,
  );
  expect(found.map(([id]) => id)).toHaveLength(1);
  return found[0]![0];
};
const getAtt = (id: string, attr = 'Arn') => ({ 'Fn::GetAtt': [id, attr] });
const statements = (policy: Resource) =>
  (
    policy.Properties.PolicyDocument as {
      Statement: { Effect: string; Action: string | string[]; Resource: unknown }[];
    }
  ).Statement;
const policiesOfRole = (roleId: string) =>
  ofType('AWS::IAM::Policy')
    .filter(([, p]) => JSON.stringify(p.Properties.Roles) === JSON.stringify([{ Ref: roleId }]))
    .flatMap(([, p]) => statements(p));
const roleOfFunction = (fnId: string) =>
  (resources[fnId]!.Properties.Role as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0];
const asArray = <T>(x: T | T[]) => (Array.isArray(x) ? x : [x]);

describe('inventory read back from the template', () => {
  test('holds exactly the functions, routes, state machines, tables, queues, buckets, schedules and secrets of the topology', () => {
    const inv = cdkInventory(template);
    const sorted = (o: object) => Object.keys(o).sort();
    expect(inv.functions).toEqual(sorted(topology.functions));
    expect(inv.routes).toEqual(topology.routes.map((r) => `${r.method} ${r.path}`).sort());
    expect(inv.stateMachines).toEqual(sorted(topology.stateMachines));
    expect(inv.tables).toEqual(sorted(topology.tables));
    expect(inv.queues).toEqual(sorted(topology.queues));
    expect(inv.deadLetterQueues).toEqual(Object.keys(topology.queues).map(dlqName).sort());
    expect(inv.buckets).toEqual(sorted(topology.buckets));
    expect(inv.schedules).toEqual(sorted(topology.schedules));
    expect(inv.secrets).toEqual(sorted(topology.secrets));
  });

  test('routes reach the function and auth the topology names, behind the topology authorizer', () => {
    const inv = cdkInventory(template.toJSON());
    expect(inv.authorizer).toBe(topology.authorizer.function);
    expect(inv.routeTargets).toEqual(
      topology.routes
        .map((r) => ({ route: `${r.method} ${r.path}`, function: r.function, auth: r.auth }))
        .sort((a, b) => a.route.localeCompare(b.route)),
    );
  });

  test('event sources connect the topology stream and queue consumers', () => {
    const expected = [
      ...Object.entries(topology.tables).flatMap(([n, t]) =>
        t.stream ? [`table:${n} -> ${t.stream.consumer}`] : [],
      ),
      ...Object.entries(topology.queues).flatMap(([n, q]) =>
        q.consumer ? [`queue:${n} -> ${q.consumer}`] : [],
      ),
    ].sort();
    expect(cdkInventory(template).eventSources).toEqual(expected);
  });
});

describe('tables', () => {
  test.each(Object.entries(topology.tables))(
    '%s: on-demand, stream NEW_AND_OLD_IMAGES, point-in-time recovery, TTL, encrypted, retained',
    (name, def) => {
      const table = resources[logicalIdOf('table', name)]!;
      expect(table.Type).toBe('AWS::DynamoDB::Table');
      expect(table.DeletionPolicy).toBe('Retain');
      expect(table.UpdateReplacePolicy).toBe('Retain');
      const p = table.Properties;
      expect(p.BillingMode).toBe('PAY_PER_REQUEST');
      expect(p.StreamSpecification).toEqual({ StreamViewType: 'NEW_AND_OLD_IMAGES' });
      expect(p.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
      expect(p.SSESpecification).toEqual({ SSEEnabled: true });
      if (def.ttlAttribute)
        expect(p.TimeToLiveSpecification).toEqual({ AttributeName: def.ttlAttribute, Enabled: true });
      const keySchema = (pk: { name: string }, sk?: { name: string }) => [
        { AttributeName: pk.name, KeyType: 'HASH' },
        ...(sk ? [{ AttributeName: sk.name, KeyType: 'RANGE' }] : []),
      ];
      expect(p.KeySchema).toEqual(keySchema(def.partitionKey, def.sortKey));
      expect(p.GlobalSecondaryIndexes ?? []).toEqual(
        (def.globalIndexes ?? []).map((g) => ({
          IndexName: g.name,
          KeySchema: keySchema(g.partitionKey, g.sortKey),
          Projection: { ProjectionType: 'ALL' },
        })),
      );
    },
  );

  test('every table in the template is one of the topology (all have PITR, streams and TTL)', () => {
    const tables = ofType('AWS::DynamoDB::Table');
    expect(tables).toHaveLength(Object.keys(topology.tables).length);
    for (const [, t] of tables) {
      expect(t.Properties.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
      expect(t.Properties.StreamSpecification).toEqual({ StreamViewType: 'NEW_AND_OLD_IMAGES' });
    }
  });

  test.each(Object.entries(topology.tables).filter(([, t]) => t.stream))(
    '%s stream: consumer with bisect, partial batch failures, retries, an on-failure queue and a tumbling window (events name their shard: the approval rollups)',
    (name, def) => {
      const s = def.stream!;
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        EventSourceArn: getAtt(logicalIdOf('table', name), 'StreamArn'),
        FunctionName: { Ref: logicalIdOf('function', s.consumer) },
        BatchSize: s.batchSize,
        BisectBatchOnFunctionError: true,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        MaximumRetryAttempts: s.maxRetries,
        StartingPosition: 'TRIM_HORIZON',
        DestinationConfig: { OnFailure: { Destination: getAtt(logicalIdOf('queue', s.failureQueue)) } },
        TumblingWindowInSeconds: 1,
      });
    },
  );
});

describe('queues', () => {
  test.each(Object.entries(topology.queues))(
    '%s: redrive to its own DLQ, SSE, visibility timeout',
    (name, def) => {
      const dlqId = logicalIdOf('dead-letter-queue', dlqName(name));
      template.hasResource('AWS::SQS::Queue', {
        Metadata: Match.objectLike({ [NAME_KEY]: name, [KIND_KEY]: 'queue' }),
        Properties: Match.objectLike({
          RedrivePolicy: { deadLetterTargetArn: getAtt(dlqId), maxReceiveCount: def.maxReceiveCount },
          VisibilityTimeout: def.visibilityTimeoutSeconds,
          SqsManagedSseEnabled: true,
        }),
      });
    },
  );

  test('every queue in the template is encrypted and refuses requests without TLS', () => {
    const queues = ofType('AWS::SQS::Queue');
    // topology queues + one DLQ each + the scheduler DLQ
    expect(queues).toHaveLength(
      2 * Object.keys(topology.queues).length + (Object.keys(topology.schedules).length ? 1 : 0),
    );
    const policies = ofType('AWS::SQS::QueuePolicy');
    for (const [id, q] of queues) {
      expect(q.Properties.SqsManagedSseEnabled).toBe(true);
      const policy = policies.find(
        ([, p]) => JSON.stringify(p.Properties.Queues) === JSON.stringify([{ Ref: id }]),
      );
      expect(policy).toBeDefined();
      expect(statements(policy![1])).toContainEqual(
        expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
      );
    }
  });

  test.each(Object.entries(topology.queues).filter(([, q]) => q.consumer))(
    '%s: consumer with batch size and partial batch failures',
    (name, def) => {
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        EventSourceArn: getAtt(logicalIdOf('queue', name)),
        FunctionName: { Ref: logicalIdOf('function', def.consumer!) },
        BatchSize: def.batchSize,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
      });
    },
  );

  test('a visibility timeout shorter than the consumer timeout is refused at synth', () => {
    const [queueName, queue] = Object.entries(topology.queues).find(([, q]) => q.consumer)!;
    const variant: Topology = {
      ...topology,
      queues: { ...topology.queues, [queueName]: { ...queue, visibilityTimeoutSeconds: 1 } },
    };
    expect(() => new PaystepStack(newApp(), 'Variant', { topology: variant })).toThrow(
      new RegExp(`queue ${queueName}: visibilityTimeoutSeconds \\(1\\) is shorter than the timeout`),
    );
  });
});

describe('buckets', () => {
  test('every bucket is encrypted, private, retained, and refuses requests without TLS', () => {
    const buckets = ofType('AWS::S3::Bucket');
    expect(buckets.length).toBeGreaterThan(0);
    const policies = ofType('AWS::S3::BucketPolicy');
    for (const [id, b] of buckets) {
      expect(b.DeletionPolicy).toBe('Retain');
      expect(b.Properties.BucketEncryption).toEqual({
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      });
      expect(b.Properties.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      const policy = policies.find(
        ([, p]) => JSON.stringify(p.Properties.Bucket) === JSON.stringify({ Ref: id }),
      );
      expect(policy).toBeDefined();
      expect(statements(policy![1])).toContainEqual(
        expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
      );
    }
  });

  test.each(Object.keys(topology.buckets))(
    '%s: versioned, server access logs to the access-log bucket',
    (name) => {
      const b = resources[logicalIdOf('bucket', name)]!;
      expect(b.Properties.VersioningConfiguration).toEqual({ Status: 'Enabled' });
      expect(b.Properties.LoggingConfiguration).toEqual({
        DestinationBucketName: { Ref: logicalIdOf('access-log-bucket', 'access-logs') },
        LogFilePrefix: `${name}/`,
      });
    },
  );
});

describe('functions', () => {
  test('every Lambda function runs nodejs24.x on arm64 with active tracing and a one-month log group', () => {
    const fns = ofType('AWS::Lambda::Function');
    expect(fns).toHaveLength(Object.keys(topology.functions).length); // no helper/custom-resource functions
    for (const [, f] of fns) {
      expect(f.Properties.Runtime).toBe('nodejs24.x');
      expect(f.Properties.Architectures).toEqual(['arm64']);
      expect(f.Properties.TracingConfig).toEqual({ Mode: 'Active' });
      const logGroupId = (f.Properties.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
      expect(resources[logGroupId]!.Properties.RetentionInDays).toBe(30);
      expect(f.Properties.Handler).toBe('index.handler');
    }
  });

  test.each(Object.entries(topology.functions))(
    '%s: memory, timeout and environment from the topology',
    (name, def) => {
      const f = resources[logicalIdOf('function', name)]!;
      expect(f.Properties.MemorySize).toBe(def.memoryMb ?? 512);
      expect(f.Properties.Timeout).toBe(def.timeoutSeconds ?? 10);
      const env = (f.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(env).toMatchObject({
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: 'paystep',
        POWERTOOLS_LOG_LEVEL: 'INFO',
        ...def.env,
      });
      const u = def.uses ?? {};
      const expected: Record<string, unknown> = {};
      for (const x of u.tables ?? []) expected[envVarFor.table(x)] = { Ref: logicalIdOf('table', x) };
      for (const x of u.queues ?? []) expected[envVarFor.queue(x)] = { Ref: logicalIdOf('queue', x) };
      for (const x of u.buckets ?? []) expected[envVarFor.bucket(x)] = { Ref: logicalIdOf('bucket', x) };
      for (const x of u.stateMachines ?? [])
        expected[envVarFor.stateMachine(x)] = {
          // By name, not by reference (see wireFunctionUses in lib/stack.ts).
          'Fn::Join': ['', expect.arrayContaining([`:stateMachine:Paystep-${x}`])],
        };
      for (const x of u.secrets ?? []) expected[envVarFor.secret(x)] = { Ref: logicalIdOf('secret', x) };
      // Deployment settings (topology `config`) at their AWS defaults; an empty default stays unset.
      for (const c of Object.values(topology.config ?? {}))
        if (c.awsDefault && c.env.startsWith('PAYSTEP_')) expected[c.env] = c.awsDefault;
      expect(env).toMatchObject(expected);
      expect(env.ADYEN_MERCHANT_ACCOUNT).toBeUndefined();
      const paystepVars = Object.keys(env).filter((k) => k.startsWith('PAYSTEP_'));
      expect(paystepVars.sort()).toEqual(Object.keys(expected).sort());
    },
  );

  describe('deployment settings from the CDK context (-c processors=… -c adyenMerchantAccount=…)', () => {
    // The functions that send payments to a processor, receive its notifications or read its state.
    const processorFunctions = [
      'payments-create',
      'payment-route',
      'payment-authorize',
      'payment-capture',
      'webhooks-receive',
    ];
    const envOf = (r: Record<string, Resource>, name: string) => {
      const [, f] = Object.entries(r).find(
        ([, x]) => x.Metadata?.[KIND_KEY] === 'function' && x.Metadata?.[NAME_KEY] === name,
      )!;
      return (f.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    };
    const synthWith = (context: Record<string, string>) => {
      const app = newApp({ context });
      const stack = new PaystepStack(app, 'Settings');
      return Template.fromStack(stack).toJSON().Resources as Record<string, Resource>;
    };

    test('default: Stripe only, no Adyen merchant account', () => {
      for (const name of processorFunctions) {
        expect(envOf(resources, name).PAYSTEP_PROCESSORS).toBe('stripe');
        expect(envOf(resources, name).ADYEN_MERCHANT_ACCOUNT).toBeUndefined();
      }
    });

    test('processors=stripe,adyen with a merchant account: on every function that uses processors', () => {
      const r = synthWith({ processors: 'stripe,adyen', adyenMerchantAccount: 'ShopECOM' });
      for (const name of processorFunctions)
        expect(envOf(r, name)).toMatchObject({
          PAYSTEP_PROCESSORS: 'stripe,adyen',
          ADYEN_MERCHANT_ACCOUNT: 'ShopECOM',
        });
    });

    test('adyen without a merchant account, or an unknown processor, fails the synth', () => {
      expect(() => synthWith({ processors: 'adyen' })).toThrow(/-c adyenMerchantAccount=/);
      expect(() => synthWith({ processors: 'stripe,worldpay' })).toThrow(
        /context processors: .*got "worldpay"/,
      );
    });
  });

  test.each(Object.entries(topology.functions))('%s: grants only for what it uses', (name, def) => {
    const granted = policiesOfRole(roleOfFunction(logicalIdOf('function', name)));
    const actions = new Set(granted.flatMap((s) => asArray(s.Action)));
    const u = def.uses ?? {};
    expect(actions.has('dynamodb:PutItem')).toBe((u.tables ?? []).length > 0);
    expect(actions.has('s3:PutObject')).toBe((u.buckets ?? []).length > 0);
    expect(actions.has('states:StartExecution')).toBe((u.stateMachines ?? []).length > 0);
    expect(actions.has('states:SendTaskSuccess')).toBe((u.stateMachines ?? []).length > 0);
    expect(actions.has('states:StopExecution')).toBe((u.stateMachines ?? []).length > 0);
    expect(actions.has('secretsmanager:GetSecretValue')).toBe((u.secrets ?? []).length > 0);
    const sendsToQueue =
      (u.queues ?? []).length > 0 || Object.values(topology.tables).some((t) => t.stream?.consumer === name); // on-failure destination
    expect(actions.has('sqs:SendMessage')).toBe(sendsToQueue);
  });

  test('nothing is granted on "*" but actions that have no resource-level permissions', () => {
    const allowedOnStar =
      /^(xray:(PutTraceSegments|PutTelemetryRecords|GetSamplingRules|GetSamplingTargets)|logs:(CreateLogDelivery|GetLogDelivery|UpdateLogDelivery|DeleteLogDelivery|ListLogDeliveries|PutResourcePolicy|DescribeResourcePolicies|DescribeLogGroups)|dynamodb:ListStreams)$/;
    for (const [, p] of ofType('AWS::IAM::Policy'))
      for (const s of statements(p))
        if (asArray(s.Resource).includes('*'))
          for (const a of asArray(s.Action)) expect(a).toMatch(allowedOnStar);
    expect(ofType('AWS::IAM::ManagedPolicy')).toHaveLength(0);
    for (const [, r] of ofType('AWS::IAM::Role')) expect(r.Properties.ManagedPolicyArns).toBeUndefined();
  });
});

describe('secrets', () => {
  test.each(Object.entries(topology.secrets))('%s: generated, without punctuation, retained', (name, def) => {
    const s = resources[logicalIdOf('secret', name)]!;
    expect(s.DeletionPolicy).toBe('Retain');
    expect(s.Properties.GenerateSecretString).toEqual({
      ExcludePunctuation: true,
      PasswordLength: 'generated' in def.source ? def.source.generated.length : 32,
    });
  });
});

describe('state machines', () => {
  test.each(Object.entries(topology.stateMachines))(
    '%s: type, logging ALL without execution data, tracing',
    (name, def) => {
      const sm = resources[logicalIdOf('state-machine', name)]!;
      expect(sm.Properties.StateMachineType).toBe(def.type);
      expect(sm.Properties.LoggingConfiguration).toMatchObject({ Level: 'ALL', IncludeExecutionData: false });
      expect(sm.Properties.TracingConfiguration).toEqual({ Enabled: true });
    },
  );

  test.each(Object.entries(topology.stateMachines))(
    '%s: the ASL file, with every ${placeholder} filled by a substitution',
    (name, def) => {
      const sm = resources[logicalIdOf('state-machine', name)]!;
      const asl = fs.readFileSync(path.join(PROJECT_ROOT, def.file), 'utf8');
      expect(typeof sm.Properties.DefinitionString).toBe('string');
      const definition = sm.Properties.DefinitionString as string;
      // The file as the shared loader deploys it (named retry policies expanded, lib/asl-definition.ts).
      expect(JSON.parse(definition)).toEqual(JSON.parse(deployedAslText(asl, def.file)));
      const substitutions = sm.Properties.DefinitionSubstitutions as Record<string, unknown>;
      // The substitutions cover every placeholder (of the file and of the deployed definition) …
      expect(aslPlaceholders(definition)).toEqual(aslPlaceholders(asl));
      for (const p of aslPlaceholders(definition)) expect(Object.keys(substitutions)).toContain(p);
      // … and are what the topology names.
      expect(Object.keys(substitutions).sort()).toEqual(Object.keys(def.substitutions).sort());
      for (const [p, s] of Object.entries(def.substitutions)) {
        if ('functionArn' in s)
          expect(substitutions[p]).toEqual(getAtt(logicalIdOf('function', s.functionArn)));
        if ('tableName' in s) expect(substitutions[p]).toEqual({ Ref: logicalIdOf('table', s.tableName) });
        if ('queueUrl' in s) expect(substitutions[p]).toEqual({ Ref: logicalIdOf('queue', s.queueUrl) });
        if ('bucketName' in s) expect(substitutions[p]).toEqual({ Ref: logicalIdOf('bucket', s.bucketName) });
      }
    },
  );

  test.each(Object.entries(topology.stateMachines))(
    '%s: its role may invoke exactly the functions it names',
    (name, def) => {
      const sm = resources[logicalIdOf('state-machine', name)]!;
      const roleId = (sm.Properties.RoleArn as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0];
      const invoked = policiesOfRole(roleId)
        .filter((s) => asArray(s.Action).includes('lambda:InvokeFunction'))
        .flatMap((s) => asArray(s.Resource));
      const named = Object.values(def.substitutions).flatMap((s) =>
        'functionArn' in s ? [s.functionArn] : [],
      );
      expect(invoked).toHaveLength(new Set(named).size);
      for (const f of named) expect(invoked).toContainEqual(getAtt(logicalIdOf('function', f)));
    },
  );
});

describe('API', () => {
  test('REST API "paystep", stage prod with JSON access logs, tracing and throttling', () => {
    template.hasResourceProperties('AWS::ApiGateway::RestApi', { Name: 'paystep' });
    const [[, stage]] = ofType('AWS::ApiGateway::Stage') as [[string, Resource]];
    expect(stage.Properties.StageName).toBe('prod');
    expect(stage.Properties.TracingEnabled).toBe(true);
    const access = stage.Properties.AccessLogSetting as { DestinationArn: unknown; Format: string };
    expect(access.DestinationArn).toBeDefined();
    expect(Object.keys(JSON.parse(access.Format))).toEqual(expect.arrayContaining(['requestId', 'status']));
    expect(stage.Properties.MethodSettings).toContainEqual(
      expect.objectContaining({
        HttpMethod: '*',
        ResourcePath: '/*',
        ThrottlingRateLimit: topology.api.throttle.rateLimit,
        ThrottlingBurstLimit: topology.api.throttle.burstLimit,
      }),
    );
  });

  test('request authorizer on the Authorization header with the topology cache TTL', () => {
    template.hasResourceProperties('AWS::ApiGateway::Authorizer', {
      Type: 'REQUEST',
      IdentitySource: 'method.request.header.Authorization',
      AuthorizerResultTtlInSeconds: topology.authorizer.cacheTtlSeconds,
    });
  });

  test('every method validates body and parameters; merchant routes use the authorizer, others none', () => {
    const [[validatorId, validator]] = ofType('AWS::ApiGateway::RequestValidator') as [[string, Resource]];
    expect(validator.Properties).toMatchObject({
      ValidateRequestBody: true,
      ValidateRequestParameters: true,
    });
    const [[authorizerId]] = ofType('AWS::ApiGateway::Authorizer') as [[string, Resource]];
    const methods = ofType('AWS::ApiGateway::Method');
    expect(methods).toHaveLength(topology.routes.length);
    for (const [, m] of methods) {
      expect(m.Properties.RequestValidatorId).toEqual({ Ref: validatorId });
      expect((m.Properties.Integration as { Type: string }).Type).toBe('AWS_PROXY');
      if (m.Properties.AuthorizationType === 'CUSTOM')
        expect(m.Properties.AuthorizerId).toEqual({ Ref: authorizerId });
      else expect(m.Properties.AuthorizationType).toBe('NONE');
    }
    const custom = methods.filter(([, m]) => m.Properties.AuthorizationType === 'CUSTOM');
    expect(custom).toHaveLength(topology.routes.filter((r) => r.auth !== 'none').length);
  });

  test('gateway errors use the paystep error shape; refused keys are 401 authentication_error', () => {
    const responses = new Map(
      ofType('AWS::ApiGateway::GatewayResponse').map(([, r]) => [
        r.Properties.ResponseType as string,
        r.Properties,
      ]),
    );
    for (const type of ['DEFAULT_4XX', 'DEFAULT_5XX', 'UNAUTHORIZED', 'ACCESS_DENIED'])
      expect(responses.has(type)).toBe(true);
    for (const [type, r] of responses) {
      const body = (r.ResponseTemplates as Record<string, string>)['application/json']!;
      const rendered = JSON.parse(
        body.replaceAll('$context.error.messageString', '"message from API Gateway"'),
      );
      expect(Object.keys(rendered)).toEqual(['error']);
      expect(rendered.error).toEqual({
        type: expect.any(String),
        code: expect.any(String),
        message: expect.any(String),
      });
      if (type === 'UNAUTHORIZED' || type === 'ACCESS_DENIED') {
        expect(r.StatusCode).toBe('401');
        expect(rendered.error.type).toBe('authentication_error');
      }
    }
  });
});

describe('schedules', () => {
  test.each(Object.entries(topology.schedules))(
    '%s: EventBridge Scheduler, UTC, no flexible window, retries and a DLQ',
    (name, def) => {
      const s = resources[logicalIdOf('schedule', name)]!;
      expect(s.Type).toBe('AWS::Scheduler::Schedule');
      expect(s.Properties).toMatchObject({
        ScheduleExpression: def.expression,
        ScheduleExpressionTimezone: 'UTC',
        FlexibleTimeWindow: { Mode: 'OFF' },
        State: 'ENABLED',
      });
      const target = s.Properties.Target as Record<string, unknown>;
      const fnId = logicalIdOf('function', def.target.function);
      expect(target.Arn).toEqual(getAtt(fnId));
      expect(JSON.parse(target.Input as string)).toEqual(def.input ?? {});
      expect(target.RetryPolicy).toEqual({
        MaximumRetryAttempts: expect.any(Number),
        MaximumEventAgeInSeconds: expect.any(Number),
      });
      expect(target.DeadLetterConfig).toEqual({ Arn: getAtt(logicalIdOf('internal-queue', SCHEDULER_DLQ)) });
      const roleId = (target.RoleArn as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0];
      expect(policiesOfRole(roleId)).toContainEqual(
        expect.objectContaining({ Action: 'lambda:InvokeFunction', Resource: getAtt(fnId) }),
      );
    },
  );
});

describe('outputs', () => {
  test('API URL, alarm topic, dashboard, bucket names and state machine ARNs', () => {
    const outputs = Object.keys(template.toJSON().Outputs as object);
    expect(outputs).toEqual(
      expect.arrayContaining([
        'ApiUrl',
        'AlarmTopicArn',
        'DashboardName',
        ...Object.keys(topology.buckets).map((b) => `${pascal(b)}BucketName`),
        ...Object.keys(topology.stateMachines).map((m) => `${pascal(m)}StateMachineArn`),
      ]),
    );
  });
});

describe('cdk-nag AwsSolutions', () => {
  /** The only rules acknowledged anywhere: a new kind of finding needs a decision, not a blanket pass. */
  const ACKNOWLEDGEABLE = [
    'AwsSolutions-APIG3',
    'AwsSolutions-APIG4',
    'AwsSolutions-APIG6',
    'AwsSolutions-COG4',
    'AwsSolutions-IAM5',
    'AwsSolutions-S1',
    'AwsSolutions-SMG4',
    'AwsSolutions-SQS3',
  ];
  let app: App;
  let stack: PaystepStack;
  let pack: AwsSolutionsChecks;

  beforeAll(() => {
    // A fresh app, as bin/paystep.ts builds it: in cdk-nag v3 the pack is a policy validation plugin.
    app = newApp();
    stack = new PaystepStack(app, 'Paystep');
    pack = new AwsSolutionsChecks(app, { verbose: true, writeSuppressionsToCloudFormation: true });
    Validations.of(app).addPlugins(pack);
  });

  test('no unacknowledged finding, error or warning', () => {
    const report = pack.validateScope(stack);
    const findings = report.violations.map(
      (v) => `${v.severity} ${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
    );
    expect(findings).toEqual([]);
    expect(report.success).toBe(true);
  });

  test('synthesis with the pack registered succeeds; every acknowledgement names its finding and a reason', () => {
    const assembly = app.synth();
    // The parent's template and its nested stacks' (the API, the alarms).
    const templates = [stack, stack.apiStack, stack.alarmsStack].map(
      (s) =>
        JSON.parse(fs.readFileSync(path.join(assembly.directory, s.templateFile), 'utf8')) as {
          Resources: Record<string, Resource>;
        },
    );
    const acknowledged: { id: string; reason: string }[] = [];
    for (const r of templates.flatMap((t) => Object.values(t.Resources))) {
      const nag = r.Metadata?.cdk_nag as { rules_to_suppress: { id: string; reason: string }[] } | undefined;
      acknowledged.push(...(nag?.rules_to_suppress ?? []));
    }
    expect(acknowledged.length).toBeGreaterThan(0);
    for (const a of acknowledged) {
      expect(a.reason.trim().length).toBeGreaterThanOrEqual(10);
      expect(ACKNOWLEDGEABLE).toContain(a.id.replace(/\[.*$/, ''));
    }
    // Wildcards are acknowledged one finding at a time (IAM5[Resource::...]), never as a whole rule.
    expect(acknowledged.filter((a) => a.id === 'AwsSolutions-IAM5')).toEqual([]);
  });
});

describe("room under CloudFormation's limits, per stack", () => {
  // CloudFormation refuses a stack of more than 500 resources, or a template of more than 200
  // parameters (a nested stack receives one per parent resource it refers to). Each stack keeps
  // room for growth (docs/architecture.md "Stack size"): a new function costs the parent a role, a
  // policy, a log group and the function, and the alarms stack two alarms; a new route costs the API
  // stack a method (maybe a resource and an invoke permission). When a guard fails, split again
  // (another nested stack) rather than raise the number.
  const limits = {
    parent: { resources: 420, parameters: 10 },
    api: { resources: 300, parameters: 150 },
    alarms: { resources: 300, parameters: 150 },
  };
  test.each(Object.keys(limits) as (keyof typeof limits)[])('%s stack', (which) => {
    const t = (which === 'parent' ? parts.template : parts[which]).toJSON() as {
      Resources: object;
      Parameters?: object;
    };
    const count = {
      resources: Object.keys(t.Resources).length,
      parameters: Object.keys(t.Parameters ?? {}).length,
    };
    expect({ which, ...count, underLimit: count.resources <= limits[which].resources }).toEqual({
      which,
      ...count,
      underLimit: true,
    });
    expect(count.parameters).toBeLessThanOrEqual(limits[which].parameters);
  });

  test('the API and the alarms are nested stacks of the parent', () => {
    expect(ofType('AWS::CloudFormation::Stack')).toHaveLength(2);
    expect(parts.template.findResources('AWS::ApiGateway::RestApi')).toEqual({});
    expect(parts.template.findResources('AWS::CloudWatch::Alarm')).toEqual({});
    parts.api.resourceCountIs('AWS::ApiGateway::RestApi', 1);
    parts.api.resourceCountIs('AWS::ApiGateway::Method', topology.routes.length);
    // One invoke permission per function behind a route, in the API stack (the authorizer's own
    // permission is made by CDK next to its function, in the parent).
    parts.api.resourceCountIs(
      'AWS::Lambda::Permission',
      new Set(topology.routes.map((r) => r.function)).size,
    );
  });
});
