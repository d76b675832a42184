/**
 * The platform end to end on the embedded runtime: a merchant created through the CLI code path
 * calls the API; the ping workflow records to DynamoDB, the stream feeds the reports queue, the
 * queue consumer writes to the bucket and resumes the workflow with its task token.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON bodies are checked by assertions
type Json = Record<string, any>;

describe('local runtime, end to end', () => {
  let dir: string;
  let rt: Runtime;
  let key: string;
  let merchantId: string;

  const api = async (method: string, p: string, body?: unknown, apiKey = key) => {
    const res = await fetch(`${rt.url}${p}`, {
      method,
      headers: {
        authorization: `Bearer ${apiKey}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as Json };
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-it-'));
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 100, scheduler: false });
    const m = await createMerchant('Acme');
    key = m.apiKey;
    merchantId = m.merchant.id;
  });
  afterAll(async () => {
    await rt?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const waitForStatus = async (id: string, status: string, ms = 15000) => {
    const end = Date.now() + ms;
    for (;;) {
      const r = await api('GET', `/v1/ping/${id}`);
      if (r.body.status === status) return r;
      if (Date.now() > end) throw new Error(`ping ${id} stayed ${r.body.status}`);
      await new Promise((res) => setTimeout(res, 25));
    }
  };

  test('a ping travels API → workflow → table → stream → queue → bucket → task token → complete', async () => {
    const started = await api('POST', '/v1/ping', { message: 'hello' });
    expect(started.status).toBe(202);
    expect(started.body.id).toMatch(/^png_[0-9A-Za-z]{22}$/);
    const done = await waitForStatus(started.body.id, 'complete');
    expect(done.body.report_key).toMatch(
      new RegExp(`^${merchantId}/pings/\\d{4}-\\d{2}-\\d{2}/${started.body.id}\\.json$`),
    );
    const file = path.join(dir, 'buckets', 'paystep-reports', done.body.report_key);
    const report = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(report).toMatchObject({ id: started.body.id, merchant: merchantId, message: 'hello' });
    const exec = await rt.stepFunctions.waitForExecution(started.body.execution_arn);
    expect(exec.status).toBe('SUCCEEDED');
    const history = rt.stepFunctions
      .getExecutionHistory({ executionArn: started.body.execution_arn })
      .events.map((e) => e.type);
    expect(history).toEqual(
      expect.arrayContaining(['TaskStateEntered', 'WaitStateEntered', 'TaskSucceeded', 'ExecutionSucceeded']),
    );
  });

  test('authentication: missing, malformed and unknown keys get 401 in the API error shape', async () => {
    const none = await fetch(`${rt.url}/v1/ping/png_x`);
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ error: { type: 'authentication_error' } });
    expect((await api('GET', '/v1/ping/png_x', undefined, 'sk_test_' + 'A'.repeat(32))).status).toBe(401);
    expect((await api('GET', '/v1/ping/png_x', undefined, 'nonsense')).status).toBe(401);
  });

  test("another merchant's ping is a 404, and bad input is a 400 naming the problem", async () => {
    const started = await api('POST', '/v1/ping', {});
    const other = await createMerchant('Other');
    const seen = await api('GET', `/v1/ping/${started.body.id}`, undefined, other.apiKey);
    expect(seen.status).toBe(404);
    expect(seen.body.error).toMatchObject({ type: 'not_found', code: 'resource_missing' });

    const bad = await api('POST', '/v1/ping', { message: 'x'.repeat(201) });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ type: 'invalid_request_error', param: 'message' });
    const raw = await fetch(`${rt.url}/v1/ping`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: '{oops',
    });
    expect(raw.status).toBe(400);
    expect(((await raw.json()) as Json).error.code).toBe('invalid_json');
    const unknownRoute = await api('GET', '/v1/nothing');
    expect(unknownRoute.status).toBe(404);
    await waitForStatus(started.body.id, 'complete');
  });
});
