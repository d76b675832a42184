/**
 * A merchant's processor order (`paystep merchant update ID --processors adyen,stripe`) on the local
 * runtime (one runtime for the file; Stripe and Adyen both enabled): a payment that names no
 * processor goes to the merchant's first enabled choice, one that names a processor goes there,
 * and the timeline says which processor was chosen and why. Unknown names are refused.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { buildProgram, UsageError } from '../../lib/cli/main.ts';
import { createMerchant, getMerchant } from '../../lambdas/store/merchants.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by assertions
type Json = Record<string, any>;

describe("a merchant's processor order", () => {
  let dir: string;
  let rt: Runtime;

  const cli = async (...args: string[]) => {
    let text = '';
    await buildProgram((s) => (text += s)).parseAsync(['--data-dir', dir, ...args], { from: 'user' });
    return text;
  };
  const call = async (key: string, method: string, p: string, body?: unknown) => {
    const headers: Record<string, string> = { authorization: `Bearer ${key}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method === 'POST') headers['idempotency-key'] = randomUUID();
    const res = await fetch(`${rt.url}${p}`, {
      method,
      headers,
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as Json };
  };
  const routed = async (key: string, paymentId: string) => {
    const t = await call(key, 'GET', `/v1/payments/${paymentId}/timeline`);
    return (t.body.events as Json[]).find((e) => e.type === 'workflow' && e.event === 'routed');
  };
  const pay = (key: string, extra: Json = {}) =>
    call(key, 'POST', '/v1/payments', {
      amount: 1200,
      currency: 'eur',
      payment_method: 'pm_card_visa',
      ...extra,
    });

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-merchant-processors-'));
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 1000, scheduler: false });
  });
  afterAll(async () => {
    await rt?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('adyen,stripe: payments without `processor` go to Adyen; an explicit processor overrides', async () => {
    const { merchant, apiKey } = await createMerchant('Adyen First');
    const printed = JSON.parse(await cli('merchant', 'update', merchant.id, '--processors', 'adyen, stripe'));
    expect(printed).toEqual({ ...merchant, processors: ['adyen', 'stripe'] });
    expect(JSON.stringify(printed)).not.toMatch(/api_key|hash|sk_/);
    expect((await getMerchant(merchant.id))?.processors).toEqual(['adyen', 'stripe']);

    const byDefault = await pay(apiKey);
    expect(byDefault.status).toBe(201);
    expect(byDefault.body).toMatchObject({ status: 'captured', processor: 'adyen' });
    expect(await routed(apiKey, byDefault.body.id)).toMatchObject({
      processor: 'adyen',
      processors: ['adyen', 'stripe'],
      reason: 'merchant default',
    });

    const explicit = await pay(apiKey, { processor: 'stripe' });
    expect(explicit.body).toMatchObject({ status: 'captured', processor: 'stripe' });
    expect(await routed(apiKey, explicit.body.id)).toMatchObject({
      processor: 'stripe',
      reason: 'explicit',
    });
  });

  test('a merchant without an order gets the platform default (the first enabled processor)', async () => {
    const { apiKey } = await createMerchant('Platform Default');
    const r = await pay(apiKey);
    expect(r.body).toMatchObject({ status: 'captured', processor: 'stripe' });
    expect(await routed(apiKey, r.body.id)).toMatchObject({
      processor: 'stripe',
      processors: ['stripe', 'adyen'],
      reason: 'platform default',
    });
  });

  test('an unknown or disabled processor, or an unknown merchant, is a usage error; nothing changes', async () => {
    const { merchant } = await createMerchant('Refused');
    const attempt = cli('merchant', 'update', merchant.id, '--processors', 'adyen,worldpay');
    await expect(attempt).rejects.toThrow(UsageError);
    await expect(cli('merchant', 'update', merchant.id, '--processors', 'adyen,worldpay')).rejects.toThrow(
      /"worldpay" is not an enabled processor \(enabled: stripe, adyen\)/,
    );
    expect((await getMerchant(merchant.id))?.processors).toBeUndefined();
    await expect(cli('merchant', 'update', 'mch_nope', '--processors', 'adyen')).rejects.toThrow(
      /no merchant mch_nope/,
    );
  });

  test('a merchant created before the merchants index existed is put on it the first time it is read', async () => {
    const { allMerchants, merchantForApiKey } = await import('../../lambdas/store/merchants.ts');
    const { clients } = await import('../../lambdas/shared/aws.ts');
    const { config } = await import('../../lambdas/shared/config.ts');
    const { UpdateCommand } = await import('@aws-sdk/lib-dynamodb');
    const listed = async () => {
      const ids: string[] = [];
      for await (const m of allMerchants()) ids.push(m.id);
      return ids;
    };
    const older = await createMerchant('From before the index');
    // As an item written by an earlier version: no index keys.
    await clients.ddb().send(
      new UpdateCommand({
        TableName: config.tableName('main'),
        Key: { pk: `MERCHANT#${older.merchant.id}`, sk: 'MERCHANT' },
        UpdateExpression: 'REMOVE gsi1pk, gsi1sk',
      }),
    );
    expect(await listed()).not.toContain(older.merchant.id);
    expect((await merchantForApiKey(older.apiKey))?.id).toBe(older.merchant.id);
    expect(await listed()).toContain(older.merchant.id);
    // Read again: nothing changes (the write is conditional, done once).
    await getMerchant(older.merchant.id);
    expect((await listed()).filter((id) => id === older.merchant.id)).toHaveLength(1);
  });
});
