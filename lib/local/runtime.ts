/**
 * The embedded runtime: the whole topology on one machine, in one process.
 *
 *   gateway (HTTP, the API)        → in-process handlers (lib/local/lambda.ts)
 *   DynamoDB (dynalite + streams)  → stream consumer handlers
 *   Step Functions (ASL files)     → task handlers, task tokens, scaled time
 *   queues (SQS API)               → consumer handlers, DLQs
 *   buckets (S3 API, folders)      ← handlers write reports
 *   scheduler                      → scheduled handlers
 *
 * Handlers reach the services through the AWS SDK, pointed here by AWS_ENDPOINT_URL_<SERVICE>.
 * Data lives in `dataDir`; one runtime per data dir (a lock file names the running one, which is
 * also how the CLI finds it).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  dlqName,
  envVarFor,
  topology as defaultTopology,
  validateTopology,
  type Topology,
} from '../topology.ts';
import { substitute, type AslDefinition } from './asl.ts';
import { LocalBuckets } from './buckets.ts';
import { LocalDynamo } from './dynamodb.ts';
import { LocalGateway } from './gateway.ts';
import { LocalLambdas } from './lambda.ts';
import { createLogger, type Logger } from './log.ts';
import { LocalPermissions } from './permissions.ts';
import { LocalQueues } from './queues.ts';
import { LocalScheduler } from './scheduler.ts';
import { LocalStepFunctions } from './stepfunctions.ts';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { resetClients } from '../../lambdas/shared/aws.ts';
import { applyLogLevel, powertoolsLevel } from '../../lambdas/shared/logger.ts';
import { resetProcessors } from '../../lambdas/connectors/registry.ts';
import { StripeSimulator } from './processors/stripe-simulator.ts';
import { StripeWebhookSender, webhookControlsFromEnv } from './processors/stripe-webhook-sender.ts';
import { AdyenSimulator } from './processors/adyen/simulator.ts';
import { releasePort, reservePort } from './ports.ts';
import {
  ADYEN_LOCAL_API_KEY,
  ADYEN_LOCAL_HMAC_KEY,
  ADYEN_LOCAL_MERCHANT_ACCOUNT,
} from '../topology/processors.ts';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface RuntimeOptions {
  dataDir: string;
  /** Gateway port; 0 picks a free one. */
  port?: number;
  host?: string;
  /** Wait states, retries, timeouts, visibility timeouts and schedules run this many times faster. */
  timeScale?: number;
  /** Run the topology's schedules (default true). */
  scheduler?: boolean;
  /** Serve the HTTP gateway (default true; the CLI runs without it). */
  gateway?: boolean;
  topology?: Topology;
  logger?: Logger;
}

export interface LocalInventory {
  functions: string[];
  routes: string[];
  stateMachines: string[];
  tables: string[];
  queues: string[];
  deadLetterQueues: string[];
  buckets: string[];
  schedules: string[];
}

export interface RuntimeInfo {
  pid: number;
  url: string | null;
  dataDir: string;
  startedAt: string;
  endpoints: {
    dynamodb: string;
    stepfunctions: string;
    sqs: string;
    s3: string;
    /** The Stripe simulator (its `/_sim/*` controls; also serves its API). */
    stripe?: string;
    /** The Adyen simulator (its `/_sim/*` controls; also serves its API). */
    adyen?: string;
    /**
     * Where paystep's connectors send processor requests: the simulators' API doors, which a
     * `down` fault closes so that connections are refused (docs/simulators.md).
     */
    stripeApi?: string;
    adyenApi?: string;
  };
}

export class RuntimeStartError extends Error {
  override name = 'RuntimeStartError';
}

export const physicalName = (name: string) => `paystep-${name}`;

export class Runtime {
  readonly options: Required<Omit<RuntimeOptions, 'logger' | 'topology'>>;
  readonly topology: Topology;
  readonly log: Logger;
  lambdas!: LocalLambdas;
  dynamo!: LocalDynamo;
  queues!: LocalQueues;
  buckets!: LocalBuckets;
  stepFunctions!: LocalStepFunctions;
  scheduler?: LocalScheduler;
  gateway?: LocalGateway;
  url: string | null = null;
  endpoints!: RuntimeInfo['endpoints'];
  /** The Stripe simulator, unless STRIPE_SECRET_KEY points paystep at real Stripe. */
  stripe?: StripeSimulator;
  /** Delivers the simulator's events as signed webhooks to POST /webhooks/stripe (test controls). */
  stripeWebhooks?: StripeWebhookSender;
  /** The Adyen simulator (notifications to POST /webhooks/adyen), unless ADYEN_API_KEY points at Adyen. */
  adyen?: AdyenSimulator;
  private readonly started: (() => Promise<void>)[] = [];
  private lockFile: string;

  constructor(opts: RuntimeOptions) {
    this.topology = opts.topology ?? defaultTopology;
    this.options = {
      dataDir: path.resolve(opts.dataDir),
      port: opts.port ?? 3000,
      host: opts.host ?? '127.0.0.1',
      timeScale: opts.timeScale ?? 1,
      scheduler: opts.scheduler ?? true,
      gateway: opts.gateway ?? true,
    };
    this.log = opts.logger ?? createLogger('paystep');
    this.lockFile = path.join(this.options.dataDir, 'runtime.json');
  }

  async start(): Promise<this> {
    const problems = validateTopology(this.topology);
    if (problems.length)
      throw new RuntimeStartError(`the topology is inconsistent:\n  ${problems.join('\n  ')}`);
    if (!(this.options.timeScale > 0))
      throw new RuntimeStartError(`PAYSTEP_TIME_SCALE must be a positive number`);
    this.prepareDataDir();
    try {
      await this.startServices();
    } catch (err) {
      await this.stop().catch(() => undefined);
      throw err;
    }
    return this;
  }

  private prepareDataDir(): void {
    const dir = this.options.dataDir;
    try {
      fs.mkdirSync(dir, { recursive: true });
      const probe = path.join(dir, `.write-test-${process.pid}`);
      fs.writeFileSync(probe, 'ok');
      fs.rmSync(probe);
    } catch (err) {
      throw new RuntimeStartError(
        `data dir ${dir} is not writable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); set PAYSTEP_DATA_DIR to a writable folder`,
      );
    }
    const other = readRuntimeInfo(dir);
    if (other && other.pid !== process.pid)
      throw new RuntimeStartError(
        `another paystep runtime (pid ${other.pid}${other.url ? `, ${other.url}` : ''}) is using ${dir}; stop it or set PAYSTEP_DATA_DIR to another folder`,
      );
  }

  private async startServices(): Promise<void> {
    const t = this.topology;
    const { dataDir, timeScale } = this.options;
    const log = this.log;

    // Endpoints are fixed before anything starts, so that every handler, whichever service
    // calls it first, finds every other service.
    const ports = await Promise.all(Array.from({ length: 8 }, () => reservePort()));
    // Reservations not taken over by a service (a failed start, a real processor) are let go at stop.
    this.started.push(() => Promise.all(ports.map(releasePort)).then(() => undefined));
    const [dynamoPort, sfnPort, sqsPort, s3Port, stripePort, adyenPort, stripeApiPort, adyenApiPort] =
      ports as [number, number, number, number, number, number, number, number];
    this.endpoints = {
      dynamodb: `http://127.0.0.1:${dynamoPort}`,
      stepfunctions: `http://127.0.0.1:${sfnPort}`,
      sqs: `http://127.0.0.1:${sqsPort}`,
      s3: `http://127.0.0.1:${s3Port}`,
    };
    const realStripe = Boolean(process.env.STRIPE_SECRET_KEY);
    if (!realStripe) {
      this.endpoints.stripe = `http://127.0.0.1:${stripePort}`;
      this.endpoints.stripeApi = `http://127.0.0.1:${stripeApiPort}`;
    }
    const realAdyen = Boolean(process.env.ADYEN_API_KEY);
    if (!realAdyen) {
      this.endpoints.adyen = `http://127.0.0.1:${adyenPort}`;
      this.endpoints.adyenApi = `http://127.0.0.1:${adyenApiPort}`;
    }
    if (realStripe) await Promise.all([releasePort(stripePort), releasePort(stripeApiPort)]);
    if (realAdyen) await Promise.all([releasePort(adyenPort), releasePort(adyenApiPort)]);
    this.setEnvironment();
    resetClients();
    resetProcessors();

    if (!realStripe) {
      const webhooks = new StripeWebhookSender({
        url: () => (this.url ? `${this.url}/webhooks/stripe` : null),
        secret: () => process.env[envVarFor.secretValue('stripe-webhook-secret')] ?? '',
        timeScale,
        logger: log.child({ svc: 'stripe-webhooks' }),
        ...webhookControlsFromEnv(process.env),
      });
      this.stripeWebhooks = webhooks;
      this.started.push(() => webhooks.stop());
      this.stripe = new StripeSimulator({
        dataDir,
        logger: log.child({ svc: 'stripe-simulator' }),
        onEvent: (e) => webhooks.send(e),
      });
      await this.stripe.start(stripePort, stripeApiPort);
      this.started.push(() => this.stripe!.stop());
    } else {
      log.warn('STRIPE_SECRET_KEY is set: payments go to Stripe itself, not the simulator');
    }

    if (!realAdyen) {
      this.adyen = new AdyenSimulator({
        dataDir,
        timeScale,
        // The simulator signs with the first of the webhook's keys and accepts paystep's API key.
        // (A topology without the Adyen secrets, e.g. a test's, gets the local test values.)
        hmacKeyHex: (process.env[envVarFor.secretValue('adyen-hmac-key')] || ADYEN_LOCAL_HMAC_KEY)
          .split(',')[0]!
          .trim(),
        merchantAccount: process.env.ADYEN_MERCHANT_ACCOUNT || ADYEN_LOCAL_MERCHANT_ACCOUNT,
        apiKey: process.env[envVarFor.secretValue('adyen-api-key')] || ADYEN_LOCAL_API_KEY,
        notify: () => (this.url ? `${this.url}/webhooks/adyen` : null),
        notificationControls: webhookControlsFromEnv(process.env),
        logger: log.child({ svc: 'adyen-simulator' }),
      });
      await this.adyen.start(adyenPort, adyenApiPort);
      this.started.push(() => this.adyen!.stop());
    } else {
      log.warn(
        'ADYEN_API_KEY is set: Adyen payments go to Adyen itself (its test or live environment), not the simulator',
      );
    }

    // Each function may use only what its `uses` grants, as in AWS (lib/local/permissions.ts).
    const permissions = new LocalPermissions(t, physicalName);
    this.started.push(async () => permissions.close());
    this.lambdas = new LocalLambdas({
      root: PROJECT_ROOT,
      functions: t.functions,
      physicalName,
      logger: log.child({ svc: 'lambda' }),
      permissions,
    });
    await this.lambdas.loadAll();
    const invoke = (fn: string, event: unknown) => this.lambdas.invoke(fn, event);

    this.buckets = new LocalBuckets({
      dataDir,
      buckets: Object.keys(t.buckets).map(physicalName),
      // Object-created triggers, as S3 → EventBridge delivers them in AWS (asynchronously).
      onObjectCreated: (bucket, key, size) => {
        const name = Object.keys(t.buckets).find((b) => physicalName(b) === bucket);
        for (const trigger of (name && t.buckets[name]!.onObjectCreated) || []) {
          if (!key.startsWith(trigger.prefix)) continue;
          const event = {
            version: '0',
            source: 'aws.s3',
            'detail-type': 'Object Created',
            time: new Date().toISOString(),
            region: 'local',
            detail: { bucket: { name: bucket }, object: { key, size }, reason: 'PutObject' },
          };
          invoke(trigger.function, event).catch((err: Error) =>
            log.error({ fn: trigger.function, key, err: err.message }, 'object-created trigger failed'),
          );
        }
      },
      logger: log.child({ svc: 's3' }),
      permissions,
    });
    await this.buckets.start(s3Port);
    this.started.push(() => this.buckets.stop());

    const queueDefs = Object.entries(t.queues).flatMap(([name, q]) => [
      {
        name: physicalName(name),
        consumer: q.consumer,
        batchSize: q.batchSize,
        visibilityTimeoutSeconds: q.visibilityTimeoutSeconds,
        maxReceiveCount: q.maxReceiveCount,
        dlq: physicalName(dlqName(name)),
      },
      {
        name: physicalName(dlqName(name)),
        visibilityTimeoutSeconds: q.visibilityTimeoutSeconds,
        maxReceiveCount: 1_000_000,
      },
    ]);
    this.queues = new LocalQueues({
      dataDir,
      queues: queueDefs,
      invoke,
      timeScale,
      logger: log.child({ svc: 'sqs' }),
      permissions,
    });

    this.dynamo = new LocalDynamo({
      dataDir,
      tables: t.tables,
      tableName: physicalName,
      deliver: (fn, event) => invoke(fn, event),
      sendToFailureQueue: async (queue, body) => {
        await this.queues.sendLocal(physicalName(queue), body);
      },
      timeScale,
      logger: log.child({ svc: 'dynamodb' }),
      permissions,
    });

    const machines = Object.entries(t.stateMachines).map(([name, sm]) => {
      const file = path.join(PROJECT_ROOT, sm.file);
      const values: Record<string, string> = {};
      for (const [k, s] of Object.entries(sm.substitutions)) {
        if ('functionArn' in s) values[k] = this.lambdas.arn(s.functionArn);
        else if ('tableName' in s) values[k] = physicalName(s.tableName);
        else if ('queueUrl' in s) values[k] = this.queueUrl(s.queueUrl);
        else values[k] = physicalName(s.bucketName);
      }
      let definition: AslDefinition;
      try {
        definition = JSON.parse(substitute(fs.readFileSync(file, 'utf8'), values, sm.file)) as AslDefinition;
      } catch (err) {
        throw new RuntimeStartError(`${sm.file}: ${(err as Error).message}`);
      }
      return { name, definition, type: sm.type };
    });
    this.stepFunctions = new LocalStepFunctions({
      dataDir,
      machines,
      physicalName,
      invokeFunction: invoke,
      sendMessage: async (url, body) => {
        const id = await this.queues.sendLocal(url.split('/').pop()!, body);
        return { MessageId: String(id) };
      },
      timeScale,
      logger: log.child({ svc: 'stepfunctions' }),
      permissions,
    });

    await this.dynamo.start(dynamoPort);
    this.started.push(() => this.dynamo.stop());
    await this.stepFunctions.start(sfnPort);
    this.started.push(() => this.stepFunctions.stop());
    await this.queues.start(sqsPort);
    this.started.push(() => this.queues.stop());

    if (this.options.scheduler && Object.keys(t.schedules).length) {
      this.scheduler = new LocalScheduler({
        dataDir,
        schedules: t.schedules,
        invoke,
        timeScale,
        logger: log.child({ svc: 'scheduler' }),
      });
      this.scheduler.start();
      this.started.push(() => this.scheduler!.stop());
    }
    // No request of this process runs yet, so every open idempotency claim was held by a process
    // that is gone (a crash): free them, so retries resume at once instead of waiting out the lock.
    const { releaseClaimsBefore } = await import('../../lambdas/store/idempotency.ts');
    const freed = await releaseClaimsBefore(Date.now());
    if (freed) log.info({ freed }, 'freed idempotency claims left by the previous run');
    if (this.options.gateway) {
      this.gateway = new LocalGateway({ topology: t, invoke, logger: log.child({ svc: 'gateway' }) });
      this.url = await this.gateway.start(this.options.port, this.options.host).catch((err: Error) => {
        throw new RuntimeStartError(err.message);
      });
      this.started.push(() => this.gateway!.stop());
      // Where Adyen's 3-D Secure page sends the shopper back: this runtime's return route
      // (GET /v1/payments/{id}/return), unless the environment names another.
      // Only on a fixed port: the URL is part of Adyen's authorisation request, so a retry after a
      // restart on another port (port 0) would send the same idempotency key with another body.
      const mine = process.env.ADYEN_RETURN_URL?.trim();
      if (this.options.port !== 0 && (!mine || mine === runtimeReturnUrl)) {
        runtimeReturnUrl = `${this.url}/v1/payments/{payment_id}/return`;
        process.env.ADYEN_RETURN_URL = runtimeReturnUrl;
        this.started.push(async () => {
          if (process.env.ADYEN_RETURN_URL === runtimeReturnUrl) delete process.env.ADYEN_RETURN_URL;
        });
      }
    }
    const info: RuntimeInfo = {
      pid: process.pid,
      url: this.url,
      dataDir,
      startedAt: new Date().toISOString(),
      endpoints: this.endpoints,
    };
    fs.writeFileSync(this.lockFile, JSON.stringify(info, null, 2) + '\n');
  }

  queueUrl(name: string): string {
    return `${this.endpoints.sqs}/000000000000/${physicalName(name)}`;
  }

  private setEnvironment(): void {
    Object.assign(process.env, runtimeEnvironment(this.topology, this.endpoints, this.options.dataDir));
    applyLogLevel(); // the handlers' logger was made before this environment (lambdas/shared/logger.ts)
  }

  /**
   * What this runtime actually serves, asked of the running services themselves (tables from
   * ListTables, queues from ListQueues, buckets from ListBuckets, …), in topology names. The parity
   * test compares it with the CDK template.
   */
  async inventory(): Promise<LocalInventory> {
    const creds = { region: 'local', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };
    const strip = (n: string) => (n.startsWith('paystep-') ? n.slice('paystep-'.length) : n);
    const ddb = new DynamoDBClient({ ...creds, endpoint: this.endpoints.dynamodb });
    const sqs = new SQSClient({ ...creds, endpoint: this.endpoints.sqs });
    const s3 = new S3Client({ ...creds, endpoint: this.endpoints.s3, forcePathStyle: true });
    try {
      const tables = (await ddb.send(new ListTablesCommand({}))).TableNames ?? [];
      const queueUrls = (await sqs.send(new ListQueuesCommand({}))).QueueUrls ?? [];
      const buckets = (await s3.send(new ListBucketsCommand({}))).Buckets ?? [];
      const queues = queueUrls.map((u) => strip(u.split('/').pop()!));
      return {
        functions: this.lambdas.names().sort(),
        routes: (this.gateway?.routeKeys() ?? []).sort(),
        stateMachines: this.stepFunctions.machineNames().sort(),
        tables: tables.map(strip).sort(),
        queues: queues.filter((q) => !q.endsWith('-dlq')).sort(),
        deadLetterQueues: queues.filter((q) => q.endsWith('-dlq')).sort(),
        buckets: buckets.map((b) => strip(b.Name!)).sort(),
        schedules: (this.scheduler?.status() ?? []).map((x) => x.name).sort(),
      };
    } finally {
      ddb.destroy();
      sqs.destroy();
      s3.destroy();
    }
  }

  /** Waits until streams, queues and executions have nothing left to do (tests, CLI). */
  async settle(timeoutMs = 20_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      await this.dynamo.drain();
      await this.queues.drain({ timeoutMs: Math.max(1, end - Date.now()) });
      if (this.stepFunctions.runningCount() === 0) {
        await this.dynamo.drain();
        await this.queues.drain();
        if (this.stepFunctions.runningCount() === 0) return;
      }
      if (Date.now() > end) throw new Error('runtime did not settle in time');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Stops everything in reverse order; in-flight work resumes at the next start. */
  async stop(): Promise<void> {
    while (this.started.length) {
      const stop = this.started.pop()!;
      try {
        await stop();
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'error while stopping');
      }
    }
    const info = readRuntimeInfo(this.options.dataDir);
    if (info?.pid === process.pid) fs.rmSync(this.lockFile, { force: true });
  }
}

/** Environment of every handler: the same variable names the CDK stack sets. */
/** The ADYEN_RETURN_URL a runtime of this process set (so the next runtime may replace it). */
let runtimeReturnUrl: string | undefined;

export function runtimeEnvironment(
  t: Topology,
  endpoints: RuntimeInfo['endpoints'],
  dataDir: string,
): Record<string, string> {
  const queueUrl = (name: string) => `${endpoints.sqs}/000000000000/${physicalName(name)}`;
  const env: Record<string, string> = {
    AWS_REGION: 'local',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
    AWS_ENDPOINT_URL_SFN: endpoints.stepfunctions,
    AWS_ENDPOINT_URL_SQS: endpoints.sqs,
    AWS_ENDPOINT_URL_S3: endpoints.s3,
    // The Stripe SDK talks to the local simulator unless the operator configured real Stripe.
    STRIPE_API_BASE: endpoints.stripeApi ?? endpoints.stripe ?? '',
    // Likewise Adyen.
    ADYEN_API_BASE: endpoints.adyenApi ?? endpoints.adyen ?? '',
    POWERTOOLS_SERVICE_NAME: 'paystep',
    POWERTOOLS_LOG_LEVEL: powertoolsLevel(
      process.env.PAYSTEP_LOG_LEVEL ?? (process.env.JEST_WORKER_ID ? 'silent' : 'warn'),
    ),
    POWERTOOLS_DEV: 'true',
  };
  for (const name of Object.keys(t.tables)) env[envVarFor.table(name)] = physicalName(name);
  for (const name of Object.keys(t.queues)) env[envVarFor.queue(name)] = queueUrl(name);
  for (const name of Object.keys(t.buckets)) env[envVarFor.bucket(name)] = physicalName(name);
  for (const name of Object.keys(t.stateMachines))
    env[envVarFor.stateMachine(name)] =
      `arn:aws:states:local:000000000000:stateMachine:${physicalName(name)}`;
  // Deployment settings (lib/topology.ts `config`; the CDK stack takes them from its context).
  for (const def of Object.values(t.config ?? {})) env[def.env] = process.env[def.env] || def.localDefault;
  const secrets = loadOrCreateSecrets(dataDir, t);
  for (const [name, value] of Object.entries(secrets)) env[envVarFor.secretValue(name)] = value;
  for (const [fn, def] of Object.entries(t.functions)) {
    for (const [k, v] of Object.entries(def.env ?? {})) {
      // One process hosts every function, so a variable must mean the same for all of them.
      if (env[k] !== undefined && env[k] !== v)
        throw new RuntimeStartError(
          `function ${fn} sets ${k}=${v}, but another function sets it to ${env[k]}`,
        );
      env[k] = v;
    }
  }
  return env;
}

export async function startRuntime(opts: RuntimeOptions): Promise<Runtime> {
  return new Runtime(opts).start();
}

/** The runtime that holds `dataDir`, if one is running. A stale lock (dead pid) is ignored. */
export function readRuntimeInfo(dataDir: string): RuntimeInfo | undefined {
  const file = path.join(path.resolve(dataDir), 'runtime.json');
  let info: RuntimeInfo;
  try {
    info = JSON.parse(fs.readFileSync(file, 'utf8')) as RuntimeInfo;
  } catch {
    return undefined;
  }
  try {
    process.kill(info.pid, 0);
    return info;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? info : undefined;
  }
}

function loadOrCreateSecrets(dataDir: string, t: Topology): Record<string, string> {
  const file = path.join(dataDir, 'secrets.json');
  let secrets: Record<string, string> = {};
  if (fs.existsSync(file)) secrets = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, string>;
  let changed = false;
  const out: Record<string, string> = {};
  for (const [name, def] of Object.entries(t.secrets)) {
    if ('provided' in def.source) {
      // Never written to disk: an operator's secret stays in the operator's environment.
      out[name] = process.env[def.source.provided.localEnv] || def.source.provided.localDefault;
      continue;
    }
    if (!secrets[name]) {
      const length = def.source.generated.length;
      secrets[name] = randomBytes(length).toString('base64url').slice(0, length);
      changed = true;
    }
    out[name] = secrets[name];
  }
  if (changed) fs.writeFileSync(file, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600 });
  return out;
}
