/**
 * Configuration: every environment variable the handlers read is read here, through a typed
 * getter with its default and its validation. Both runtimes set the same variables (resource
 * names from lib/topology.ts `envVarFor`); a missing resource variable is a deployment error and a
 * malformed value a configuration error: either fails the call that needs it with a ConfigError
 * naming the variable, rather than a confusing AWS error or a NaN later.
 *
 * Getters read the environment when called (a lookup and a parse: cheap), never once at import:
 * tests and ops change some variables at run time (the sweeper's quiet periods, the sync wait),
 * and the local runtime hides the resource variables a function does not use while it runs.
 * A variable that is unset or empty takes its default; a list that is set but empty is an empty
 * list.
 */
import { envVarFor } from '../../lib/topology.ts';
import type { RiskConfig } from '../domain/risk.ts';
import { PaystepError, type PaystepErrorOptions } from './errors.ts';

/** A missing or malformed setting: a deployment problem, never retried into success. */
export class ConfigError extends PaystepError {
  override name = 'ConfigError';
  constructor(message: string, options: PaystepErrorOptions = {}) {
    super(message, { code: 'config_error', ...options });
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** The variable's value; undefined when unset or empty. */
function value(name: string, env: Env = process.env): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

function required(name: string, env: Env = process.env): string {
  const v = value(name, env);
  if (v === undefined) throw new ConfigError(`environment variable ${name} is not set`);
  return v;
}

function optionalInteger(name: string, min: number, env: Env = process.env): number | undefined {
  const v = value(name, env);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\s*-?\d+\s*$/.test(v) || !Number.isSafeInteger(n) || n < min)
    throw new ConfigError(
      `environment variable ${name} must be a whole number of at least ${min}, got "${v}"`,
    );
  return n;
}

const integer = (name: string, fallback: number, min = 0, env: Env = process.env): number =>
  optionalInteger(name, min, env) ?? fallback;

function url(name: string, env: Env = process.env): string | undefined {
  const v = value(name, env);
  if (v === undefined) return undefined;
  if (!URL.canParse(v) || !/^https?:$/.test(new URL(v).protocol))
    throw new ConfigError(`environment variable ${name} must be an http(s) URL, got "${v}"`);
  return v;
}

function oneOf<T extends string>(
  name: string,
  allowed: readonly T[],
  fallback: T,
  env: Env = process.env,
): T {
  const v = value(name, env);
  if (v === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(v))
    throw new ConfigError(`environment variable ${name} must be one of ${allowed.join(', ')}, got "${v}"`);
  return v as T;
}

/** A comma-separated list (entries trimmed, empty ones dropped); `fallback` only when unset. */
function list(name: string, fallback: string, env: Env = process.env): string[] {
  return (env[name] ?? fallback)
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

/**
 * The risk rules' settings (lambdas/domain/risk.ts): PAYSTEP_RISK_AMOUNT_LIMITS (`usd:500000,…`,
 * minor units), PAYSTEP_RISK_DEFAULT_AMOUNT_LIMIT (1,000,000), PAYSTEP_RISK_VELOCITY_LIMIT (10),
 * PAYSTEP_RISK_BLOCKED_COUNTRIES (ISO alpha-2, `KP,IR,SY,CU`).
 */
function risk(env: Env = process.env): RiskConfig {
  const amountLimits: Record<string, number> = {};
  for (const part of list('PAYSTEP_RISK_AMOUNT_LIMITS', '', env)) {
    const m = /^([A-Za-z]{3})\s*:\s*(\d+)$/.exec(part);
    if (!m)
      throw new ConfigError(
        `environment variable PAYSTEP_RISK_AMOUNT_LIMITS must list <currency>:<minor units>, got "${part}"`,
      );
    amountLimits[m[1]!.toLowerCase()] = Number(m[2]);
  }
  const blockedCountries = list('PAYSTEP_RISK_BLOCKED_COUNTRIES', 'KP,IR,SY,CU', env).map((c) =>
    c.toUpperCase(),
  );
  const bad = blockedCountries.find((c) => !/^[A-Z]{2}$/.test(c));
  if (bad)
    throw new ConfigError(
      `environment variable PAYSTEP_RISK_BLOCKED_COUNTRIES must list ISO alpha-2 country codes, got "${bad}"`,
    );
  return {
    amountLimits,
    defaultAmountLimit: integer('PAYSTEP_RISK_DEFAULT_AMOUNT_LIMIT', 1_000_000, 0, env),
    velocityLimit: integer('PAYSTEP_RISK_VELOCITY_LIMIT', 10, 0, env),
    blockedCountries,
  };
}

/**
 * A Stripe adapter's settings from the environment alone (no secret store): STRIPE_SECRET_KEY
 * (required), STRIPE_API_BASE, STRIPE_TIMEOUT_MS, STRIPE_MAX_NETWORK_RETRIES, STRIPE_RETURN_URL.
 */
function stripe(env: Env = process.env) {
  return {
    secretKey: required('STRIPE_SECRET_KEY', env),
    apiBase: url('STRIPE_API_BASE', env),
    timeoutMs: optionalInteger('STRIPE_TIMEOUT_MS', 0, env),
    maxNetworkRetries: optionalInteger('STRIPE_MAX_NETWORK_RETRIES', 0, env),
    returnUrl: value('STRIPE_RETURN_URL', env),
  };
}

/** The processors paystep can send a payment to; the first is the default route. */
export const PROCESSOR_NAMES = ['stripe', 'adyen'] as const;
export type ProcessorName = (typeof PROCESSOR_NAMES)[number];

/**
 * The enabled processors, in order (PAYSTEP_PROCESSORS, comma-separated; default `stripe`; the
 * local runtime enables `stripe,adyen`). New payments go to the first unless they name another
 * enabled one; payments already made keep their processor whatever this says.
 */
function processors(env: Env = process.env): ProcessorName[] {
  const names = list('PAYSTEP_PROCESSORS', 'stripe', env);
  const bad = names.find((n) => !(PROCESSOR_NAMES as readonly string[]).includes(n));
  if (bad)
    throw new ConfigError(
      `environment variable PAYSTEP_PROCESSORS must list processors among ${PROCESSOR_NAMES.join(', ')}, got "${bad}"`,
    );
  if (!names.length) throw new ConfigError('environment variable PAYSTEP_PROCESSORS must name a processor');
  return [...new Set(names)] as ProcessorName[];
}

/**
 * The Adyen connector's settings besides its secrets (`adyen-api-key`, `adyen-hmac-key`):
 * ADYEN_MERCHANT_ACCOUNT (required to use Adyen), ADYEN_ENVIRONMENT (`test` | `live`),
 * ADYEN_LIVE_URL_PREFIX (live only), ADYEN_API_BASE (the local simulator; unset in AWS),
 * ADYEN_RETURN_URL (where the shopper comes back after 3-D Secure).
 */
function adyen(env: Env = process.env) {
  return {
    merchantAccount: required('ADYEN_MERCHANT_ACCOUNT', env),
    environment: oneOf('ADYEN_ENVIRONMENT', ['test', 'live'] as const, 'test', env),
    liveEndpointUrlPrefix: value('ADYEN_LIVE_URL_PREFIX', env),
    apiBase: url('ADYEN_API_BASE', env),
    returnUrl: value('ADYEN_RETURN_URL', env),
  };
}

export const config = {
  // Resources (names from lib/topology.ts `envVarFor`; set for what the function `uses`).
  tableName: (table: string) => required(envVarFor.table(table)),
  queueUrl: (queue: string) => required(envVarFor.queue(queue)),
  bucketName: (bucket: string) => required(envVarFor.bucket(bucket)),
  stateMachineArn: (sm: string) => required(envVarFor.stateMachine(sm)),
  /** A secret's value, where the runtime provides it itself (the local runtime). */
  secretValue: (secret: string) => value(envVarFor.secretValue(secret)),
  /** A secret's name or ARN in Secrets Manager (AWS). */
  secretArn: (secret: string) => value(envVarFor.secret(secret)),

  /** How long API handlers wait for a workflow's outcome before answering (ms; 8000). */
  syncWaitMs: () => integer('PAYSTEP_SYNC_WAIT_MS', 8000),
  /** Timeout of one processor request (ms; 10,000). */
  processorTimeoutMs: () => integer('PAYSTEP_PROCESSOR_TIMEOUT_MS', 10_000, 1),
  /** The processor SDK's own quick retries of network errors (1). */
  processorNetworkRetries: () => integer('PAYSTEP_PROCESSOR_NETWORK_RETRIES', 1),
  /** The processor API's base URL (the local simulator); undefined: the processor itself. */
  stripeApiBase: () => url('STRIPE_API_BASE'),
  /**
   * Whether processors' circuit breakers act on their health (PAYSTEP_CIRCUIT_BREAKER, `on` or
   * `off`; on). Off: attempts are still counted and shown, incidents still apply, but no breaker
   * opens or demotes a processor (tests that time requests out on purpose turn it off).
   */
  circuitBreaker: () => oneOf('PAYSTEP_CIRCUIT_BREAKER', ['on', 'off'] as const, 'on') === 'on',
  /** How long a payment or refund is quiet before the sweeper checks it (s; 900). */
  sweepAfterSeconds: () => integer('PAYSTEP_SWEEP_AFTER_SECONDS', 900),
  /** How long a payment waits for the customer's authentication before the sweeper asks (s; 900). */
  sweepAuthAfterSeconds: () => integer('PAYSTEP_SWEEP_AUTH_AFTER_SECONDS', 900),
  /** The mode of new API keys (`sk_test_…` or `sk_live_…`). */
  apiKeyMode: () => oneOf('PAYSTEP_KEY_MODE', ['test', 'live'] as const, 'test'),
  /**
   * Whether the console's cookies are `Secure` (PAYSTEP_CONSOLE_SECURE_COOKIES, `on` or `off`; on).
   * The topology sets it on in AWS (HTTPS) and off locally (http://localhost), lib/topology/console.ts.
   */
  consoleSecureCookies: () => oneOf('PAYSTEP_CONSOLE_SECURE_COOKIES', ['on', 'off'] as const, 'on') === 'on',
  /** The service name on handler log lines. */
  serviceName: () => value('POWERTOOLS_SERVICE_NAME') ?? 'paystep',
  /** The handlers' log level as Powertools reads it (POWERTOOLS_LOG_LEVEL), upper case; '' if unset. */
  logLevel: () => (value('POWERTOOLS_LOG_LEVEL') ?? '').toUpperCase(),
  /** The local runtime's log level (PAYSTEP_LOG_LEVEL, pino names), if set. */
  localLogLevel: () => value('PAYSTEP_LOG_LEVEL'),
  /** The function AWS Lambda runs (AWS_LAMBDA_FUNCTION_NAME), dev mode or not; undefined elsewhere. */
  lambdaFunctionName: () => value('AWS_LAMBDA_FUNCTION_NAME'),
  /**
   * Whether the code runs in AWS Lambda (AWS_LAMBDA_FUNCTION_NAME is set by Lambda), and not in
   * Powertools' dev mode (POWERTOOLS_DEV=true): where EMF metrics go to stdout.
   */
  inLambda: () => value('AWS_LAMBDA_FUNCTION_NAME') !== undefined && value('POWERTOOLS_DEV') !== 'true',
  /** The region AWS gives the function (AWS_REGION); the local runtime sets `local`. */
  awsRegion: () => value('AWS_REGION'),
  /** The DynamoDB endpoint the SDK is pointed at (the local runtime's; unset in AWS). */
  dynamodbEndpoint: () => value('AWS_ENDPOINT_URL_DYNAMODB'),
  processors,
  adyen,
  risk,
  stripe,
};
