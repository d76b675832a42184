/**
 * One construct for every paystep Lambda function, so that runtime, architecture, tracing, logging and
 * bundling are decided once. It also turns a topology `uses` entry into the environment variable the
 * code reads (`envVarFor`) and the least-privilege grant that goes with it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { LogLevel, NodejsFunction, OutputFormat, type ICommandHooks } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { envVarFor } from './topology.ts';
import type { FunctionDef } from './topology.ts';

export const DEFAULT_MEMORY_MB = 512;
export const DEFAULT_TIMEOUT_SECONDS = 10;

/** Node 24, the newest Node LTS that Lambda runs (`nodejs24.x`). */
export const NODE_RUNTIME: Runtime = Runtime.NODEJS_24_X;

/** esbuild banner that gives ESM bundles a `require` for CommonJS dependencies. */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __paystepCreateRequire } from 'node:module'; const require = __paystepCreateRequire(import.meta.url);";

/** Where a function's declared `assets` are copied in its bundle, beside the handler. */
export const BUNDLE_ASSETS_DIR = 'assets';

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Bundling hooks copying the function's `assets` (repository-relative files) into `assets/` beside
 * the bundled handler, where it reads them in AWS (e.g. lambdas/console/assets.ts). Checked here,
 * so a missing file or two files of one name fail the synth, not the first request.
 */
export function assetHooks(projectRoot: string, fn: string, assets: readonly string[]): ICommandHooks {
  const names = new Set<string>();
  for (const a of assets) {
    if (path.isAbsolute(a) || a.split(/[\\/]/).includes('..'))
      throw new Error(`function ${fn}: asset ${a} must be a path inside the repository`);
    if (!fs.existsSync(path.join(projectRoot, a))) throw new Error(`function ${fn}: asset ${a} not found`);
    const base = path.basename(a);
    if (names.has(base)) throw new Error(`function ${fn}: two assets are named ${base}`);
    names.add(base);
  }
  return {
    beforeBundling: () => [],
    beforeInstall: () => [],
    afterBundling: (inputDir: string, outputDir: string) => [
      `mkdir -p ${shellQuote(path.join(outputDir, BUNDLE_ASSETS_DIR))}`,
      ...assets.map(
        (a) =>
          `cp ${shellQuote(path.join(inputDir, a))} ${shellQuote(path.join(outputDir, BUNDLE_ASSETS_DIR, path.basename(a)))}`,
      ),
    ],
  };
}

export interface PaystepFunctionProps {
  /** The function's name in the topology. */
  name: string;
  def: FunctionDef;
  /** Absolute path of the project root (entries in the topology are relative to it). */
  projectRoot: string;
}

export class PaystepFunction extends Construct {
  /** The function's name in the topology. */
  readonly name: string;
  readonly fn: NodejsFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: PaystepFunctionProps) {
    super(scope, id);
    const { name, def, projectRoot } = props;
    this.name = name;

    this.logGroup = new LogGroup(this, 'Logs', { retention: RetentionDays.ONE_MONTH });

    // An explicit role instead of AWSLambdaBasicExecutionRole: it may only write to this function's own
    // log group (the managed policy allows every log group in the account).
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `paystep ${name}`,
    });
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );

    this.fn = new NodejsFunction(this, 'Function', {
      entry: path.join(projectRoot, def.entry),
      handler: 'handler',
      projectRoot,
      depsLockFilePath: path.join(projectRoot, 'package-lock.json'),
      description: def.description,
      runtime: NODE_RUNTIME,
      architecture: Architecture.ARM_64,
      memorySize: def.memoryMb ?? DEFAULT_MEMORY_MB,
      timeout: Duration.seconds(def.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS),
      tracing: Tracing.ACTIVE,
      role: this.role,
      logGroup: this.logGroup,
      environment: {
        ...def.env,
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: 'paystep',
        POWERTOOLS_LOG_LEVEL: 'INFO',
      },
      bundling: {
        format: OutputFormat.ESM,
        target: 'node24',
        mainFields: ['module', 'main'],
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        banner: ESM_REQUIRE_BANNER,
        externalModules: ['@aws-sdk/*'],
        // esbuild's size summary per function made `cdk synth --quiet` print ~200 lines; warnings stay.
        logLevel: LogLevel.WARNING,
        ...(def.assets?.length ? { commandHooks: assetHooks(projectRoot, name, def.assets) } : {}),
      },
    });
  }

  get functionArn(): string {
    return this.fn.functionArn;
  }

  get timeout(): Duration {
    // Always set above.
    return this.fn.timeout ?? Duration.seconds(DEFAULT_TIMEOUT_SECONDS);
  }

  useTable(name: string, table: ITable): void {
    this.fn.addEnvironment(envVarFor.table(name), table.tableName);
    table.grantReadWriteData(this.fn);
  }

  useQueue(name: string, queue: IQueue): void {
    this.fn.addEnvironment(envVarFor.queue(name), queue.queueUrl);
    queue.grantSendMessages(this.fn);
  }

  useBucket(name: string, bucket: IBucket): void {
    this.fn.addEnvironment(envVarFor.bucket(name), bucket.bucketName);
    bucket.grantReadWrite(this.fn);
  }

  /**
   * Start, list, describe, stop and resume (task tokens) executions of the state machine. Written out
   * instead of `grantRead`, which also grants states:DescribeStateMachine and activity reads on `*`.
   */
  useStateMachine(name: string, stateMachine: IStateMachine): void {
    this.fn.addEnvironment(envVarFor.stateMachine(name), stateMachine.stateMachineArn);
    stateMachine.grantStartExecution(this.fn);
    stateMachine.grantTaskResponse(this.fn);
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['states:DescribeStateMachine', 'states:ListExecutions'],
        resources: [stateMachine.stateMachineArn],
      }),
    );
    stateMachine.grantExecution(
      this.fn,
      'states:DescribeExecution',
      'states:DescribeStateMachineForExecution',
      'states:GetExecutionHistory',
      'states:StopExecution',
    );
  }

  useSecret(name: string, secret: ISecret): void {
    this.fn.addEnvironment(envVarFor.secret(name), secret.secretArn);
    secret.grantRead(this.fn);
  }
}
