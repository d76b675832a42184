/**
 * `paystep simulator fault` against a running runtime (started in this process, as `npm start`
 * would be): the shared fault vocabulary mapped onto the Stripe simulator, a payment failing or
 * succeeding as the fault says, `none` clearing it; the Adyen simulator taking the vocabulary as
 * is; no runtime, or no Adyen simulator in it, is a failure (1); a wrong value is a usage error (2).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { CommanderError, type Command } from 'commander';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { buildProgram, UsageError } from '../../lib/cli/main.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { AdyenSimulator } from '../../lib/local/processors/adyen/simulator.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- CLI output is checked by assertions
type Json = Record<string, any>;

let rt: Runtime;
let dir: string;
let emptyDir: string;
let key: string;

/** Runs the command as `main` would (same exit codes), capturing stdout. */
async function paystep(
  args: string[],
  dataDir = dir,
): Promise<{ code: number; stdout: string; error: string }> {
  let stdout = '';
  const program = buildProgram((s) => (stdout += s));
  const quiet = (c: Command): void => {
    c.configureOutput({ writeErr: () => undefined, outputError: () => undefined });
    c.commands.forEach(quiet);
  };
  quiet(program); // the error is checked from what is thrown
  try {
    await program.parseAsync(['--data-dir', dataDir, ...args], { from: 'user' });
    return { code: 0, stdout, error: '' };
  } catch (err) {
    const code = err instanceof CommanderError || err instanceof UsageError ? 2 : 1;
    return { code, stdout, error: (err as Error).message.replace(/^error: /, '') };
  }
}

const fault = async (...args: string[]): Promise<Json> => {
  const r = await paystep(['simulator', 'fault', ...args]);
  expect(r).toMatchObject({ code: 0, error: '' });
  return JSON.parse(r.stdout) as Json;
};

const pay = async (syncWaitMs = 5000): Promise<Json> => {
  process.env.PAYSTEP_SYNC_WAIT_MS = String(syncWaitMs);
  const res = await fetch(`${rt.url}/v1/payments`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${key}`,
      'content-type': 'application/json',
      'idempotency-key': randomUUID(),
    },
    // Stripe named: the faults below open Stripe's circuit breaker, and routing would send the
    // next payments to Adyen instead (docs/routing.md); this file is about Stripe's faults.
    body: JSON.stringify({
      amount: 1050,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      processor: 'stripe',
    }),
  });
  return (await res.json()) as Json;
};

const get = async (p: string): Promise<Json> =>
  (await (await fetch(`${rt.url}${p}`, { headers: { authorization: `Bearer ${key}` } })).json()) as Json;

const until = async <T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms = 20_000) => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** A payment that the fault keeps from an answer: `processing`, its workflow gives up (needs attention). */
async function expectHeldBack(): Promise<void> {
  const before = rt.stripe!.stats().paymentIntentsCreated;
  const p = await pay(300);
  expect(p.status).toBe('processing');
  const arn = (await get(`/v1/payments/${p.id}/timeline`)).workflow.execution_arn as string;
  expect(await rt.stepFunctions.waitForExecution(arn, 20_000)).toMatchObject({
    status: 'FAILED',
    error: 'NeedsAttention',
  });
  expect((await get(`/v1/payments/${p.id}`)).status).toBe('processing');
  expect(rt.stripe!.stats().paymentIntentsCreated).toBe(before); // nothing happened at Stripe
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-simcli-'));
  emptyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-simcli-empty-'));
  process.env.PAYSTEP_PROCESSOR_TIMEOUT_MS = '500';
  process.env.PAYSTEP_PROCESSOR_NETWORK_RETRIES = '0';
  process.env.PAYSTEP_SYNC_WAIT_MS = '300';
  rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 1000, scheduler: false });
  key = (await createMerchant('Faulty')).apiKey;
});

afterAll(async () => {
  await rt?.stop();
  delete process.env.PAYSTEP_PROCESSOR_TIMEOUT_MS;
  delete process.env.PAYSTEP_PROCESSOR_NETWORK_RETRIES;
  delete process.env.PAYSTEP_SYNC_WAIT_MS;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(emptyDir, { recursive: true, force: true });
});

describe('paystep simulator fault --processor stripe', () => {
  afterEach(() => rt.stripe!.faults.reset());

  test('error and down hold payments back; none clears; without --mode it prints the faults', async () => {
    expect(await fault('--processor', 'stripe')).toEqual({
      processor: 'stripe',
      mode: 'none',
      rate: 1,
      stripe: {},
    });
    expect((await pay()).status).toBe('captured');

    expect(await fault('--processor', 'stripe', '--mode', 'error')).toEqual({
      processor: 'stripe',
      mode: 'error',
      rate: 1,
      stripe: { failRate: 1 },
    });
    await expectHeldBack();

    // down replaces error (a mode replaces every fault).
    expect(await fault('--processor', 'stripe', '--mode', 'down', '--rate', '1')).toMatchObject({
      mode: 'down',
      rate: 1,
      stripe: { downRate: 1 },
    });
    expect(rt.stripe!.faults.get()).toEqual({ downRate: 1 });
    await expectHeldBack();
    expect(await fault('--processor', 'stripe')).toMatchObject({ mode: 'down', rate: 1 });

    expect(await fault('--processor', 'stripe', '--mode', 'none')).toEqual({
      processor: 'stripe',
      mode: 'none',
      rate: 1,
      stripe: {},
    });
    expect((await pay()).status).toBe('captured');

    expect(await fault('--processor', 'stripe', '--mode', 'error', '--rate', '0.25')).toMatchObject({
      mode: 'error',
      rate: 0.25,
      stripe: { failRate: 0.25 },
    });
  });

  test('slow answers after the latency; timeout-after-processing charges without answering until cleared', async () => {
    expect(await fault('--processor', 'stripe', '--mode', 'slow', '--latency-ms', '250')).toEqual({
      processor: 'stripe',
      mode: 'slow',
      rate: 1,
      latencyMs: 250,
      stripe: { latencyMs: 250 },
    });
    const started = Date.now();
    expect((await pay()).status).toBe('captured');
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(await fault('--processor', 'stripe', '--mode', 'slow')).toMatchObject({ latencyMs: 2000 });

    expect(await fault('--processor', 'stripe', '--mode', 'timeout-after-processing')).toMatchObject({
      mode: 'timeout-after-processing',
      rate: 1,
      stripe: { timeoutRate: 1 },
    });
    const before = rt.stripe!.stats().paymentIntentsCreated;
    const p = await pay(300);
    expect(p.status).toBe('processing');
    // Stripe charged (the effect happened), but paystep has no answer.
    await until('the charge at Stripe', () =>
      rt.stripe!.stats().paymentIntentsCreated > before ? true : undefined,
    );
    expect((await get(`/v1/payments/${p.id}`)).status).toBe('processing');
    await fault('--processor', 'stripe', '--mode', 'none');
    const done = await until('the payment to settle', async () => {
      const now = await get(`/v1/payments/${p.id}`);
      return now.status === 'processing' ? undefined : now;
    });
    expect(done.status).toBe('captured');
    expect(rt.stripe!.stats().paymentIntentsCreated - before).toBe(1); // the retry found the same charge
  });
});

describe('paystep simulator fault: failures and usage errors', () => {
  test('no runtime on the data dir: exit 1, saying to start one; nothing on stdout', async () => {
    const r = await paystep(['simulator', 'fault', '--processor', 'stripe', '--mode', 'down'], emptyDir);
    expect(r.code).toBe(1);
    expect(r.error).toMatch(/^no paystep runtime is running on .* \(start one with npm start/);
    expect(r.stdout).toBe('');
    expect(fs.existsSync(path.join(emptyDir, 'runtime.json'))).toBe(false);
  });

  test('wrong values: exit 2 naming the value, nothing changed', async () => {
    const cases: [string[], RegExp][] = [
      [['--processor', 'paypal'], /^unknown processor 'paypal' \(expected: stripe, adyen\)$/],
      [
        ['--processor', 'stripe', '--mode', 'broken'],
        /^unknown fault mode 'broken' \(expected: none, down, slow, error, timeout-after-processing\)$/,
      ],
      [
        ['--processor', 'stripe', '--mode', 'error', '--rate', '1.5'],
        /^--rate: '1.5' is not a number from 0 to 1$/,
      ],
      [
        ['--processor', 'stripe', '--mode', 'error', '--rate', 'half'],
        /^--rate: 'half' is not a number from 0 to 1$/,
      ],
      [
        ['--processor', 'stripe', '--mode', 'slow', '--latency-ms', '-5'],
        /^--latency-ms: '-5' is not an integer from 0 to 600000$/,
      ],
      [['--processor', 'stripe', '--rate', '0.5'], /^--rate and --latency-ms need --mode$/],
      [['--processor', 'stripe', '--mode', 'error', '--latency-ms', '10'], /'error'/],
      [['--processor', 'stripe', '--mode', 'slow', '--rate', '0.5'], /'0.5'/],
      [['--mode', 'down'], /required option '--processor <name>' not specified/],
    ];
    for (const [args, message] of cases) {
      const r = await paystep(['simulator', 'fault', ...args]);
      expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code: 2, stdout: '' });
      expect(r.error).toMatch(message);
    }
    expect(rt.stripe!.faults.get()).toEqual({});
  });
});

describe('paystep simulator fault --processor adyen', () => {
  let sim: AdyenSimulator;
  let fake: string;
  /** A runtime.json of this process with the given Adyen endpoint (or none). */
  const writeInfo = (adyen?: string) => {
    const endpoints: Record<string, string | undefined> = { ...rt.endpoints, adyen };
    if (!adyen) delete endpoints.adyen;
    fs.writeFileSync(
      path.join(fake, 'runtime.json'),
      JSON.stringify({
        pid: process.pid,
        url: null,
        dataDir: fake,
        startedAt: new Date().toISOString(),
        endpoints,
      }),
    );
  };

  beforeAll(async () => {
    fake = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-simcli-adyen-'));
    sim = new AdyenSimulator({
      hmacKeyHex: '00'.repeat(32),
      merchantAccount: 'PaystepTest',
      apiKey: 'adyen-test-key',
      settlementEveryMs: 0,
    });
  });
  afterAll(async () => {
    await sim.stop();
    fs.rmSync(fake, { recursive: true, force: true });
  });

  test('a runtime without the Adyen simulator: exit 1', async () => {
    writeInfo();
    const r = await paystep(['simulator', 'fault', '--processor', 'adyen', '--mode', 'down'], fake);
    expect(r).toEqual({ code: 1, stdout: '', error: 'adyen simulator is not running in this runtime' });
  });

  test('the Adyen simulator takes the vocabulary as is', async () => {
    const base = await sim.start(0);
    writeInfo(base);
    const run = async (...args: string[]) => {
      const r = await paystep(['simulator', 'fault', '--processor', 'adyen', ...args], fake);
      expect(r).toMatchObject({ code: 0, error: '' });
      return JSON.parse(r.stdout) as Json;
    };
    expect(await run('--mode', 'error', '--rate', '1')).toEqual({
      processor: 'adyen',
      mode: 'error',
      rate: 1,
    });
    const res = await fetch(`${base}/v72/payments`, {
      method: 'POST',
      headers: { 'x-api-key': 'adyen-test-key', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(res.status).toBe(500);
    expect(await run('--mode', 'timeout-after-processing', '--rate', '0.5', '--latency-ms', '100')).toEqual({
      processor: 'adyen',
      mode: 'timeout-after-processing',
      rate: 0.5,
      latencyMs: 100,
    });
    expect(sim.faults.get()).toEqual({ mode: 'timeout-after-processing', rate: 0.5, latencyMs: 100 });
    expect(await run()).toEqual({
      processor: 'adyen',
      mode: 'timeout-after-processing',
      rate: 0.5,
      latencyMs: 100,
    });
    expect(await run('--mode', 'none')).toEqual({ processor: 'adyen', mode: 'none', rate: 1 });
    expect(sim.faults.get()).toEqual({ mode: 'none', rate: 1 });
  });
});
