/**
 * Processor health in use (docs/routing.md "Processor health") on the local runtime: attempts
 * recorded as atomic per-minute counts in the `health` table, the breaker tripping on technical
 * failures (never on declines) and opening a `suspected` incident, routing refused while it is
 * open and probing after the cooldown, an open incident refusing the processor, and the status
 * through GET /v1/processors and `paystep processors`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { buildProgram } from '../../lib/cli/main.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { admitProcessor, processorStatuses, recordAttempt } from '../../lambdas/processors/health.ts';
import { declareIncident, resolveIncident } from '../../lambdas/incidents/service.ts';
import { runningIncident } from '../../lambdas/store/incidents.ts';
import { DEFAULT_BREAKER_POLICY } from '../../lambdas/domain/processor-health.ts';
import { apiClient, type Json } from '../fixtures/api.ts';

let rt: Runtime;
let dir: string;
let call: ReturnType<typeof apiClient>;

beforeAll(async () => {
  process.env.PAYSTEP_CIRCUIT_BREAKER = 'on'; // off by default in tests (test/setup-env.ts)
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-health-'));
  rt = await startRuntime({ dataDir: dir, port: 0, scheduler: false });
  call = apiClient(() => rt.url!, (await createMerchant('Health')).apiKey);
});

afterAll(async () => {
  delete process.env.PAYSTEP_CIRCUIT_BREAKER;
  await rt?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const status = async (name: string) => (await processorStatuses()).find((p) => p.name === name)!;

test('declines and approvals are healthy: counted, the breaker stays closed', async () => {
  // 40 attempts at once: atomic counters lose none.
  await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      recordAttempt('adyen', i % 4 === 0 ? 'declined' : 'approved', 80 + i),
    ),
  );
  const s = await status('adyen');
  expect(s).toMatchObject({ status: 'operational', breaker: { state: 'closed' }, incident: null });
  expect(s.health).toMatchObject({
    attempts: 40,
    technical_error_rate: 0,
    approval_rate: 0.75,
    p95_latency_ms: 200,
  });
  expect(await admitProcessor('adyen')).toEqual({ allowed: true });
});

test('technical failures trip the breaker, which opens a suspected incident and refuses until the cooldown', async () => {
  const t0 = Date.now();
  let opened;
  for (let i = 0; i < DEFAULT_BREAKER_POLICY.consecutiveFailures; i++)
    opened = (await recordAttempt('stripe', i % 2 ? 'timeout' : 'error', 10_000, t0 + i)) ?? opened;
  expect(opened).toEqual({ from: 'closed', to: 'open', reason: '5 technical failures in a row' });
  const incident = await runningIncident('stripe');
  expect(incident).toMatchObject({
    status: 'suspected',
    reason: 'circuit breaker opened: 5 technical failures in a row',
  });
  expect((await status('stripe')).status).toBe('down');

  expect(await admitProcessor('stripe', t0 + 1000)).toMatchObject({
    allowed: false,
    reason: expect.stringContaining('circuit breaker open'),
  });
  // After the cooldown: probes go through, and enough successes close it.
  const later = t0 + DEFAULT_BREAKER_POLICY.cooldownMs + 10;
  for (let i = 0; i < DEFAULT_BREAKER_POLICY.probes; i++)
    expect((await admitProcessor('stripe', later)).allowed).toBe(true);
  expect((await admitProcessor('stripe', later)).allowed).toBe(false); // probes under way
  let closed;
  for (let i = 0; i < DEFAULT_BREAKER_POLICY.probes; i++)
    closed = (await recordAttempt('stripe', 'approved', 100, later + i)) ?? closed;
  expect(closed).toMatchObject({ from: 'half_open', to: 'closed' });
  // One failure after closing does not reopen it on the old window's failures.
  expect(await recordAttempt('stripe', 'error', 100, later + 50)).toBeUndefined();
  expect((await status('stripe')).breaker.state).toBe('closed');
  expect((await status('stripe')).status).toBe('degraded'); // the suspected incident is still for ops to decide
  await declareIncident('stripe', 'confirmed by ops', 'test');
  expect(await admitProcessor('stripe')).toMatchObject({
    allowed: false,
    reason: expect.stringContaining(`incident ${incident!.id}`),
  });
  await resolveIncident(incident!.id, 'test');
  expect(await admitProcessor('stripe')).toEqual({ allowed: true });
});

test('GET /v1/processors and paystep processors show the same', async () => {
  const r = await call('GET', '/v1/processors');
  expect(r.status).toBe(200);
  expect(r.body.data.map((p: Json) => p.name)).toEqual(['stripe', 'adyen']);
  expect(r.body.data[1]).toMatchObject({
    object: 'processor',
    enabled: true,
    capabilities: { modifications: 'asynchronous' },
  });

  let stdout = '';
  await buildProgram((s) => (stdout += s)).parseAsync(['--data-dir', dir, 'processors', '--table'], {
    from: 'user',
  });
  const lines = stdout.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^processor\s+enabled\s+status\s+breaker\s+incident\s+attempts/);
  expect(lines[2]).toMatch(/^adyen\s+yes\s+operational\s+closed\s+-\s+40\s/);
});
