/**
 * Issue #12 on the embedded runtime: the reported 500s (deep nesting hashed before validation, a
 * 5,000-character path id reaching DynamoDB) are 4xx in the API's error shape; card numbers are
 * refused before anything is stored; amounts follow each currency's exponent; and merchant
 * webhook signing secrets are encrypted at rest: the plaintext is nowhere in the data dir, and an
 * endpoint stored in plaintext before encryption still signs its deliveries and is sealed on read.
 */
import fs from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { createOpsKey } from '../../lambdas/store/ops-keys.ts';
import { clients } from '../../lambdas/shared/aws.ts';
import { config } from '../../lambdas/shared/config.ts';
import { verifyPaystepSignature } from '../../lambdas/events/signature.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by assertions
type Json = Record<string, any>;

const PAN = '4242424242424242';

/** Every file under `dir` whose bytes contain `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const out: string[] = [];
  const bytes = Buffer.from(needle, 'utf8');
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    if (fs.readFileSync(file).includes(bytes)) out.push(path.relative(dir, file));
  }
  return out;
}

describe('bounded input and secrets at rest on the local runtime', () => {
  let dir: string;
  let rt: Runtime;
  let key: string;
  let merchantId: string;
  let server: Server;
  let hooks: string;
  /** Resolves each waiter when a webhook arrives at its path. */
  const waiting = new Map<string, (r: { raw: string; signature: string }) => void>();

  const call = async (
    method: string,
    p: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: Json }> => {
    const res = await fetch(`${rt.url}${p}`, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(method === 'POST' ? { 'idempotency-key': randomUUID() } : {}),
        ...headers,
      },
      body: typeof body === 'string' ? body : body !== undefined ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as Json };
  };
  const payment = (extra: Json = {}) => ({
    amount: 1050,
    currency: 'usd',
    payment_method: 'pm_card_visa',
    ...extra,
  });

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.writeHead(200).end('ok');
        waiting.get(req.url ?? '')?.({
          raw: Buffer.concat(chunks).toString('utf8'),
          signature: String(req.headers['paystep-signature']),
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    hooks = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-input-'));
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 1000, scheduler: false });
    const m = await createMerchant('Acme');
    key = m.apiKey;
    merchantId = m.merchant.id;
  });
  afterAll(async () => {
    await rt?.stop();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the reported 500s: deep nesting and a 5,000-character path id are 4xx errors', async () => {
    const deep = '{"metadata":'.repeat(5000) + '{}' + '}'.repeat(5000);
    const r = await call('POST', '/v1/payments', deep);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ type: 'invalid_request_error', code: 'body_too_deep' });
    const arrays = await call('POST', '/v1/refunds', '['.repeat(100_000) + ']'.repeat(100_000));
    expect(arrays.body.error.code).toBe('body_too_deep');

    for (const p of [
      `/v1/ping/${'p'.repeat(5000)}`,
      `/v1/payments/${'x'.repeat(5000)}`,
      `/v1/payments/${PAN}`,
    ]) {
      const long = await call('GET', p);
      expect(long.status).toBe(404);
      expect(long.body.error).toMatchObject({ type: 'not_found', code: 'resource_missing' });
      expect(JSON.stringify(long.body)).not.toContain(PAN);
    }
    const longCursor = await call('GET', `/v1/payments?starting_after=${'x'.repeat(5000)}`);
    expect(longCursor.body.error).toMatchObject({ code: 'parameter_invalid', param: 'starting_after' });
  });

  test('a card number is refused before the request is claimed or stored', async () => {
    const idem = randomUUID();
    const refused = await call('POST', '/v1/payments', payment({ payment_method: PAN }), {
      'idempotency-key': idem,
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ code: 'card_number_refused', param: 'payment_method' });
    expect(refused.body.error.message).toMatch(/never accepts or stores card numbers/);
    const inMetadata = await call(
      'POST',
      '/v1/payments',
      payment({ metadata: { note: '4242 4242 4242 4242' } }),
    );
    expect(inMetadata.body.error).toMatchObject({ code: 'card_number_refused', param: 'metadata.note' });
    // Nothing was stored under the key: the same key now takes the corrected request.
    const ok = await call('POST', '/v1/payments', payment(), { 'idempotency-key': idem });
    expect(ok.status).toBe(201);
    const list = await call('GET', '/v1/payments');
    expect(list.body.data.map((p: Json) => p.id)).toEqual([ok.body.id]);
    expect(filesContaining(dir, PAN)).toEqual([]);
  });

  test('a card number in the Idempotency-Key, a path id or a billing customer field: refused, never echoed or stored', async () => {
    const PAN2 = '4000056655665556'; // its own number: the data dir is searched for it below
    const inKey = await call('POST', '/v1/payments', payment(), { 'idempotency-key': PAN2 });
    expect(inKey.status).toBe(400);
    expect(inKey.body.error).toMatchObject({ code: 'card_number_refused', param: 'Idempotency-Key' });
    const grouped = await call(
      'POST',
      '/v1/refunds',
      { payment: 'pay_x' },
      { 'idempotency-key': `k-${PAN2}-1` },
    );
    expect(grouped.body.error).toMatchObject({ code: 'card_number_refused', param: 'Idempotency-Key' });

    for (const p of [
      `/v1/payments/pay_${PAN2}`,
      `/v1/customers/cus_${PAN2}`,
      `/v1/payments/pay_${PAN2}/timeline`,
    ]) {
      const r = await call('GET', p);
      expect(r.status).toBe(404);
      expect(r.body.error).toMatchObject({ code: 'resource_missing' });
      expect(JSON.stringify(r.body)).not.toContain(PAN2);
    }

    const customer = { email: 'a@example.com', payment_method: 'pm_card_visa' };
    for (const [field, body] of [
      ['name', { ...customer, name: `Card ${PAN2}` }],
      ['email', { ...customer, email: `${PAN2}@example.com` }],
      ['payment_method', { ...customer, payment_method: PAN2 }],
      ['metadata.note', { ...customer, metadata: { note: PAN2.replace(/(\d{4})(?=\d)/g, '$1 ') } }],
    ] as const) {
      const r = await call('POST', '/v1/customers', body);
      expect([r.status, r.body.error?.code, r.body.error?.param]).toEqual([
        400,
        'card_number_refused',
        field,
      ]);
    }
    const created = await call('POST', '/v1/customers', customer);
    expect(created.status).toBeLessThan(300);
    const updated = await call('POST', `/v1/customers/${created.body.id}`, { name: PAN2 });
    expect([updated.status, updated.body.error?.code]).toEqual([400, 'card_number_refused']);
    await rt.dynamo.drain();
    expect(filesContaining(dir, PAN2)).toEqual([]);
  });

  test('no merchant API key or ops key is in the data dir in plaintext', async () => {
    const { apiKey } = await createMerchant('Keys');
    const { key: opsKey } = await createOpsKey('audit-keys');
    expect((await call('GET', '/v1/payments', undefined, { authorization: `Bearer ${apiKey}` })).status).toBe(
      200,
    );
    await rt.dynamo.drain();
    expect(filesContaining(dir, apiKey)).toEqual([]);
    expect(filesContaining(dir, opsKey)).toEqual([]);
  });

  test('charsets, forbidden keys and wrong types are 400s naming the problem', async () => {
    const latin1 = await call('POST', '/v1/payments', JSON.stringify(payment()), {
      'content-type': 'application/json; charset=latin1',
    });
    expect([latin1.status, latin1.body.error.code]).toEqual([400, 'unsupported_charset']);
    const proto = await call('POST', '/v1/payments', '{"amount":1050,"__proto__":{"admin":true}}');
    expect(proto.body.error).toMatchObject({ code: 'parameter_invalid', param: '__proto__' });
    const wrongType = await call('POST', '/v1/payments', payment({ amount: '1050' }));
    expect(wrongType.body.error).toMatchObject({ code: 'parameter_invalid', param: 'amount' });
    const events = await call('POST', '/v1/webhook_endpoints', {
      url: `${hooks}/x`,
      enabled_events: ['payment.exploded'],
    });
    expect(events.body.error).toMatchObject({ code: 'parameter_invalid', param: 'enabled_events.0' });
  });

  test('amounts follow the currency: zero- and three-decimal limits hold end to end', async () => {
    expect(
      (await call('POST', '/v1/payments', payment({ currency: 'jpy', amount: 99_999_999 }))).status,
    ).toBe(201);
    const kwd = await call('POST', '/v1/payments', payment({ currency: 'kwd', amount: 1235 }));
    expect(kwd.body.error).toMatchObject({ code: 'amount_invalid', param: 'amount' });
    const kwdMax = await call('POST', '/v1/payments', payment({ currency: 'kwd', amount: 99_999_999 }));
    expect(kwdMax.body.error).toMatchObject({ param: 'amount' });
    expect((await call('POST', '/v1/payments', payment({ currency: 'bhd', amount: 1230 }))).status).toBe(201);
    const iqd = await call('POST', '/v1/payments', payment({ currency: 'iqd', amount: 1000 }));
    expect(iqd.body.error).toMatchObject({ code: 'parameter_invalid', param: 'currency' });
  });

  test('a webhook signing secret is stored encrypted: its plaintext is nowhere in the data dir', async () => {
    const created = await call('POST', '/v1/webhook_endpoints', {
      url: `${hooks}/sealed`,
      enabled_events: ['*'],
    });
    expect(created.status).toBe(201);
    const secret = created.body.secret as string;
    expect(secret).toMatch(/^whsec_[0-9A-Za-z]{32}$/);
    const item = (
      await clients.ddb().send(
        new GetCommand({
          TableName: config.tableName('main'),
          Key: { pk: `WEBHOOK_ENDPOINT#${created.body.id}`, sk: 'WEBHOOK_ENDPOINT' },
        }),
      )
    ).Item!;
    expect(item.secret).toBeUndefined();
    expect(item.secret_sealed).toMatchObject({ v: 1, alg: 'A256GCM' });

    // Deliveries are signed with it.
    const delivered = new Promise<{ raw: string; signature: string }>((resolve) =>
      waiting.set('/sealed', resolve),
    );
    expect((await call('POST', '/v1/payments', payment())).status).toBe(201);
    const hook = await delivered;
    expect(verifyPaystepSignature(hook.raw, hook.signature, secret)).toBe(true);

    // The scan does see what is stored (the endpoint's id and URL), but not the secret.
    expect(filesContaining(dir, created.body.id as string).length).toBeGreaterThan(0);
    expect(filesContaining(dir, secret)).toEqual([]);
    expect(filesContaining(dir, secret.slice('whsec_'.length))).toEqual([]);
  });

  test('an endpoint stored in plaintext before encryption still signs, and is sealed when read', async () => {
    const id = `we_legacy${randomUUID().replace(/-/g, '').slice(0, 16)}`;
    const legacySecret = `whsec_legacy${randomUUID().replace(/-/g, '')}`;
    const now = Date.now();
    await clients.ddb().send(
      new PutCommand({
        TableName: config.tableName('main'),
        Item: {
          pk: `WEBHOOK_ENDPOINT#${id}`,
          sk: 'WEBHOOK_ENDPOINT',
          kind: 'webhook_endpoint',
          id,
          object: 'webhook_endpoint',
          merchant_id: merchantId,
          url: `${hooks}/legacy`,
          enabled_events: ['payment.captured'],
          description: null,
          status: 'enabled',
          secret: legacySecret,
          created: Math.floor(now / 1000),
          gsi1pk: `MERCHANT#${merchantId}#WEBHOOK_ENDPOINTS`,
          gsi1sk: `${String(now).padStart(13, '0')}#${id}`,
        },
      }),
    );
    const delivered = new Promise<{ raw: string; signature: string }>((resolve) =>
      waiting.set('/legacy', resolve),
    );
    expect((await call('POST', '/v1/payments', payment())).status).toBe(201);
    const hook = await delivered;
    expect(verifyPaystepSignature(hook.raw, hook.signature, legacySecret)).toBe(true);
    const item = (
      await clients.ddb().send(
        new GetCommand({
          TableName: config.tableName('main'),
          Key: { pk: `WEBHOOK_ENDPOINT#${id}`, sk: 'WEBHOOK_ENDPOINT' },
          ConsistentRead: true,
        }),
      )
    ).Item!;
    expect(item.secret).toBeUndefined();
    expect(item.secret_sealed).toMatchObject({ v: 1, alg: 'A256GCM' });
    expect((await call('GET', `/v1/webhook_endpoints/${id}`)).body).not.toHaveProperty('secret');
  });
});
