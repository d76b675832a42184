/**
 * Configuration the stores and handlers read (lambdas/shared/config.ts): defaults, values read
 * when asked (not at import), and a clear ConfigError for a malformed value.
 */
import { config, ConfigError } from '../../lambdas/shared/config.ts';
import { riskConfigFromEnv } from '../../lambdas/domain/risk.ts';

const VARS = [
  'PAYSTEP_SYNC_WAIT_MS',
  'PAYSTEP_SWEEP_AFTER_SECONDS',
  'PAYSTEP_PROCESSOR_TIMEOUT_MS',
  'PAYSTEP_PROCESSOR_NETWORK_RETRIES',
  'PAYSTEP_KEY_MODE',
  'STRIPE_API_BASE',
];
const saved = Object.fromEntries(VARS.map((k) => [k, process.env[k]]));
afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

test('defaults when unset or empty; the environment is read on every call', () => {
  for (const k of VARS) delete process.env[k];
  expect(config.syncWaitMs()).toBe(8000);
  expect(config.sweepAfterSeconds()).toBe(900);
  expect(config.processorTimeoutMs()).toBe(10_000);
  expect(config.processorNetworkRetries()).toBe(1);
  expect(config.apiKeyMode()).toBe('test');
  expect(config.stripeApiBase()).toBeUndefined();
  process.env.STRIPE_API_BASE = '';
  expect(config.stripeApiBase()).toBeUndefined();
  process.env.PAYSTEP_SWEEP_AFTER_SECONDS = '0';
  process.env.PAYSTEP_PROCESSOR_NETWORK_RETRIES = '0';
  process.env.STRIPE_API_BASE = 'http://127.0.0.1:4010';
  expect(config.sweepAfterSeconds()).toBe(0);
  expect(config.processorNetworkRetries()).toBe(0);
  expect(config.stripeApiBase()).toBe('http://127.0.0.1:4010');
});

test('a malformed value is a ConfigError naming the variable', () => {
  const cases: [string, string, () => unknown][] = [
    ['PAYSTEP_SYNC_WAIT_MS', 'soon', config.syncWaitMs],
    ['PAYSTEP_SWEEP_AFTER_SECONDS', '-1', config.sweepAfterSeconds],
    ['PAYSTEP_PROCESSOR_TIMEOUT_MS', '0', config.processorTimeoutMs],
    ['PAYSTEP_PROCESSOR_NETWORK_RETRIES', '1.5', config.processorNetworkRetries],
    ['PAYSTEP_KEY_MODE', 'prod', config.apiKeyMode],
    ['STRIPE_API_BASE', 'localhost:4010', config.stripeApiBase],
  ];
  for (const [name, value, read] of cases) {
    process.env[name] = value;
    expect(read).toThrow(ConfigError);
    expect(read).toThrow(name);
  }
});

test('risk settings: parsed, defaulted, validated', () => {
  expect(riskConfigFromEnv({})).toEqual({
    amountLimits: {},
    defaultAmountLimit: 1_000_000,
    velocityLimit: 10,
    blockedCountries: ['KP', 'IR', 'SY', 'CU'],
  });
  expect(
    riskConfigFromEnv({ PAYSTEP_RISK_AMOUNT_LIMITS: 'USD:500, eur:7', PAYSTEP_RISK_BLOCKED_COUNTRIES: '' }),
  ).toMatchObject({ amountLimits: { usd: 500, eur: 7 }, blockedCountries: [] });
  expect(() => riskConfigFromEnv({ PAYSTEP_RISK_AMOUNT_LIMITS: 'usd=500' })).toThrow(
    /PAYSTEP_RISK_AMOUNT_LIMITS/,
  );
  expect(() => riskConfigFromEnv({ PAYSTEP_RISK_VELOCITY_LIMIT: 'ten' })).toThrow(ConfigError);
  expect(() => riskConfigFromEnv({ PAYSTEP_RISK_BLOCKED_COUNTRIES: 'KP,Iran' })).toThrow(/IRAN/);
});

test('stripe settings from the environment alone', () => {
  expect(() => config.stripe({})).toThrow(/STRIPE_SECRET_KEY/);
  expect(config.stripe({ STRIPE_SECRET_KEY: 'sk_test_x', STRIPE_MAX_NETWORK_RETRIES: '0' })).toEqual({
    secretKey: 'sk_test_x',
    apiBase: undefined,
    timeoutMs: undefined,
    maxNetworkRetries: 0,
    returnUrl: undefined,
  });
  expect(() => config.stripe({ STRIPE_SECRET_KEY: 'sk_test_x', STRIPE_TIMEOUT_MS: 'soon' })).toThrow(
    /STRIPE_TIMEOUT_MS/,
  );
});
