/**
 * Merchant events and webhook endpoints on the embedded runtime, delivered over HTTP to a real
 * local server standing for the merchant: payment state changes become signed events, a failing
 * endpoint is retried with backoff until it answers, every attempt is visible on the event,
 * manual redelivery, no duplicate event from a redelivered stream record, merchant isolation.
 */
import fs from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { verifyPaystepSignature } from '../../lambdas/events/signature.ts';
import type { StreamChange } from '../../lambdas/stream/consumers.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by assertions
type Json = Record<string, any>;

interface Received {
  path: string;
  signature: string | undefined;
  raw: string;
  body: Json;
}

describe('merchant events and webhooks on the local runtime', () => {
  let dir: string;
  let rt: Runtime;
  let keyA: string;
  let keyB: string;
  let merchantA: string;
  let server: Server;
  let hooks: string;
  const received: Received[] = [];
  /** Requests per path and event id, for the endpoint that fails twice before it answers. */
  const seen = new Map<string, number>();

  const call = async (method: string, p: string, body?: unknown, key = keyA) => {
    const headers: Record<string, string> = { authorization: `Bearer ${key}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method === 'POST' && (p === '/v1/payments' || p === '/v1/refunds'))
      headers['idempotency-key'] = randomUUID();
    const res = await fetch(`${rt.url}${p}`, {
      method,
      headers,
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as Json };
  };
  /** The stream change of one of merchant A's refunds succeeding (what the router hands the outbox). */
  const refundSucceeded = (amount: number, sequenceNumber: string) => {
    const refundId = `re_${randomUUID().replace(/-/g, '')}`;
    const item = {
      pk: `REFUND#${refundId}`,
      sk: 'REFUND',
      kind: 'refund',
      id: refundId,
      object: 'refund',
      merchant_id: merchantA,
      payment_id: 'pay_test',
      amount,
      currency: 'usd',
    };
    const change = {
      eventName: 'MODIFY',
      oldImage: { ...item, status: 'pending' },
      newImage: { ...item, status: 'succeeded' },
      sequenceNumber,
      record: { dynamodb: { ApproximateCreationDateTime: Math.floor(Date.now() / 1000) } },
    } as unknown as StreamChange;
    return { refundId, change };
  };
  const pay = (pm: string) =>
    call('POST', '/v1/payments', { amount: 1050, currency: 'usd', payment_method: pm });
  const waitFor = async <T>(what: string, fn: () => T | undefined | false, ms = 5000): Promise<T> => {
    const end = Date.now() + ms;
    for (;;) {
      const v = fn();
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const at = (p: string) => received.filter((r) => r.path === p);
  const ofObject = (p: string, objectId: string, type?: string) =>
    at(p).filter((r) => r.body.data.object.id === objectId && (!type || r.body.type === type));
  const register = async (p: string, enabled_events: string[], key = keyA) => {
    const r = await call('POST', '/v1/webhook_endpoints', { url: `${hooks}${p}`, enabled_events }, key);
    expect(r.status).toBe(201);
    return r.body;
  };

  let okEndpoint: Json;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const body = JSON.parse(raw) as Json;
        const p = req.url ?? '';
        received.push({
          path: p,
          signature: req.headers['paystep-signature'] as string | undefined,
          raw,
          body,
        });
        const n = (seen.get(`${p} ${body.id}`) ?? 0) + 1;
        seen.set(`${p} ${body.id}`, n);
        res.writeHead(p === '/flaky' && n <= 2 ? 500 : 200, { 'content-type': 'text/plain' });
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    hooks = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-events-'));
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 1000, scheduler: false });
    const a = await createMerchant('Acme');
    keyA = a.apiKey;
    merchantA = a.merchant.id;
    keyB = (await createMerchant('Other')).apiKey;
  });
  afterAll(async () => {
    await rt?.stop();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('registering an endpoint returns its signing secret once; bad URLs and event types are refused', async () => {
    okEndpoint = await register('/ok', ['*']);
    expect(okEndpoint).toMatchObject({
      object: 'webhook_endpoint',
      url: `${hooks}/ok`,
      enabled_events: ['*'],
      status: 'enabled',
    });
    expect(okEndpoint.id).toMatch(/^we_/);
    expect(okEndpoint.secret).toMatch(/^whsec_[0-9A-Za-z]{32}$/);
    const list = await call('GET', '/v1/webhook_endpoints');
    expect(list.body.data.map((e: Json) => e.id)).toEqual([okEndpoint.id]);
    expect(list.body.data[0]).not.toHaveProperty('secret');
    const one = await call('GET', `/v1/webhook_endpoints/${okEndpoint.id}`);
    expect(one.status).toBe(200);
    expect(one.body).not.toHaveProperty('secret');

    const http = await call('POST', '/v1/webhook_endpoints', {
      url: 'http://example.com/x',
      enabled_events: ['*'],
    });
    expect(http.status).toBe(400);
    expect(http.body.error).toMatchObject({ type: 'invalid_request_error', param: 'url' });
    const types = await call('POST', '/v1/webhook_endpoints', {
      url: 'https://example.com/x',
      enabled_events: ['Payment'],
    });
    expect(types.status).toBe(400);
    expect(types.body.error.param).toMatch(/^enabled_events/);
  });

  test('a captured payment sends signed payment.created and payment.captured events', async () => {
    const p = await pay('pm_card_visa');
    expect(p.body.status).toBe('captured');
    const got = await waitFor('payment.created and payment.captured', () => {
      const xs = ofObject('/ok', p.body.id);
      return xs.length >= 2 && xs;
    });
    expect(got.map((r) => r.body.type).sort()).toEqual(['payment.captured', 'payment.created']);
    for (const r of got) {
      expect(r.signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
      expect(verifyPaystepSignature(r.raw, r.signature, okEndpoint.secret)).toBe(true);
      expect(verifyPaystepSignature(r.raw, r.signature, 'whsec_wrong')).toBe(false);
      expect(r.body).toMatchObject({ object: 'event', created: expect.any(Number) });
      expect(r.body.id).toMatch(/^evt_/);
      expect(r.body.data.object).not.toHaveProperty('merchant_id');
      expect(r.body.data.object).not.toHaveProperty('task_token');
    }
    const captured = got.find((r) => r.body.type === 'payment.captured')!.body;
    expect(captured.data.object).toMatchObject({
      id: p.body.id,
      object: 'payment',
      status: 'captured',
      amount_captured: 1050,
    });

    const listed = await call('GET', '/v1/events?type=payment.captured');
    expect(listed.body.data[0]).toEqual(captured);
    await rt.settle();
    const detail = await call('GET', `/v1/events/${captured.id}`);
    expect(detail.status).toBe(200);
    expect(detail.body.deliveries).toEqual([
      expect.objectContaining({
        endpoint: okEndpoint.id,
        status: 'succeeded',
        attempt_count: 1,
        attempts: [expect.objectContaining({ attempt: 1, http_status: 200, error: null, manual: false })],
      }),
    ]);
    expect(detail.body.deliveries[0].attempts[0].latency_ms).toEqual(expect.any(Number));
  });

  test('a declined payment sends payment.failed with the failure', async () => {
    const p = await pay('pm_card_visa_chargeDeclinedInsufficientFunds');
    expect(p.body.status).toBe('failed');
    const [failed] = await waitFor('payment.failed', () => {
      const xs = ofObject('/ok', p.body.id, 'payment.failed');
      return xs.length > 0 && xs;
    });
    expect(failed!.body.data.object).toMatchObject({
      status: 'failed',
      failure: { code: 'insufficient_funds' },
    });
    expect(verifyPaystepSignature(failed!.raw, failed!.signature, okEndpoint.secret)).toBe(true);
  });

  test('an endpoint answering 500 is retried with backoff until delivered, each attempt visible; other endpoints get it once', async () => {
    const flaky = await register('/flaky', ['payment.captured']);
    const p = await pay('pm_card_visa');
    const delivered = await waitFor('the third attempt', () => {
      const xs = ofObject('/flaky', p.body.id);
      return xs.length >= 3 && xs;
    });
    expect(delivered.map((r) => r.body.type)).toEqual([
      'payment.captured',
      'payment.captured',
      'payment.captured',
    ]);
    await rt.settle();
    const eventId = delivered[0]!.body.id as string;
    expect(ofObject('/flaky', p.body.id)).toHaveLength(3); // no fourth attempt after the success
    expect(ofObject('/ok', p.body.id, 'payment.captured')).toHaveLength(1); // never redelivered there
    const detail = await call('GET', `/v1/events/${eventId}`);
    const byEndpoint = Object.fromEntries(detail.body.deliveries.map((d: Json) => [d.endpoint, d]));
    expect(byEndpoint[flaky.id]).toMatchObject({
      status: 'succeeded',
      attempt_count: 3,
      last_http_status: 200,
    });
    expect(byEndpoint[flaky.id].attempts.map((a: Json) => [a.attempt, a.http_status, a.error])).toEqual([
      [1, 500, 'HTTP 500'],
      [2, 500, 'HTTP 500'],
      [3, 200, null],
    ]);
    // Backoff: the retries came later than the first attempt, in order.
    const times = byEndpoint[flaky.id].attempts.map((a: Json) => Date.parse(a.at));
    expect(times[1]).toBeGreaterThan(times[0]);
    expect(times[2]).toBeGreaterThan(times[1]);
    expect(byEndpoint[okEndpoint.id]).toMatchObject({ status: 'succeeded', attempt_count: 1 });

    const del = await call('DELETE', `/v1/webhook_endpoints/${flaky.id}`);
    expect(del.body).toEqual({ id: flaky.id, object: 'webhook_endpoint', deleted: true });
    expect((await call('GET', '/v1/webhook_endpoints')).body.data.map((e: Json) => e.id)).toEqual([
      okEndpoint.id,
    ]);
  });

  test('manual redelivery sends the event again and records a manual attempt', async () => {
    const p = await pay('pm_card_visa');
    const [first] = await waitFor('payment.captured', () => {
      const xs = ofObject('/ok', p.body.id, 'payment.captured');
      return xs.length > 0 && xs;
    });
    const eventId = first!.body.id as string;
    await rt.settle();
    const r = await call('POST', `/v1/events/${eventId}/redeliver`, { endpoint: okEndpoint.id });
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ event: eventId, endpoints: [okEndpoint.id] });
    const again = await waitFor('the redelivery', () => {
      const xs = ofObject('/ok', p.body.id, 'payment.captured');
      return xs.length >= 2 && xs;
    });
    expect(again[1]!.raw).toBe(first!.raw);
    expect(verifyPaystepSignature(again[1]!.raw, again[1]!.signature, okEndpoint.secret)).toBe(true);
    await rt.settle();
    const detail = await call('GET', `/v1/events/${eventId}`);
    expect(detail.body.deliveries[0].attempts.map((a: Json) => [a.attempt, a.manual])).toEqual([
      [1, false],
      [2, true],
    ]);
    // To every subscribed endpoint (here the one).
    const all = await call('POST', `/v1/events/${eventId}/redeliver`);
    expect(all.body.endpoints).toEqual([okEndpoint.id]);
    await waitFor('the second redelivery', () => ofObject('/ok', p.body.id, 'payment.captured').length >= 3);
    const missing = await call('POST', `/v1/events/${eventId}/redeliver`, {
      endpoint: 'we_doesnotexist0000',
    });
    expect(missing.status).toBe(404);
  });

  test('a refund sends refund events and the payment its new status, in the public shapes', async () => {
    const p = await pay('pm_card_visa');
    const r = await call('POST', '/v1/refunds', { payment: p.body.id, amount: 400 });
    expect(r.status).toBe(201);
    const [succeeded] = await waitFor('refund.succeeded', () => {
      const xs = ofObject('/ok', r.body.id, 'refund.succeeded');
      return xs.length > 0 && xs;
    });
    expect(succeeded!.body.data.object).toMatchObject({
      id: r.body.id,
      object: 'refund',
      payment: p.body.id,
      amount: 400,
      status: 'succeeded',
    });
    expect(ofObject('/ok', r.body.id, 'refund.created')).toHaveLength(1);
    const [partially] = await waitFor('payment.partially_refunded', () => {
      const xs = ofObject('/ok', p.body.id, 'payment.partially_refunded');
      return xs.length > 0 && xs;
    });
    expect(partially!.body.data.object).toMatchObject({ status: 'partially_refunded', amount_refunded: 400 });
  });

  test('a redelivered stream record creates no duplicate event', async () => {
    const { refundId, change } = refundSucceeded(300, '000000000000000000000000000000000000007');
    // Imported once the runtime has configured the handlers' environment (log level, endpoints).
    const { merchantEventsConsumer } = await import('../../lambdas/events/stream.ts');
    await merchantEventsConsumer.handle(change);
    await merchantEventsConsumer.handle(change);
    await rt.settle();
    const listed = await call('GET', '/v1/events?type=refund.succeeded&limit=100');
    const mine = listed.body.data.filter((e: Json) => e.data.object.id === refundId);
    expect(mine).toHaveLength(1);
    expect(mine[0].data.object).toMatchObject({
      object: 'refund',
      id: refundId,
      payment: 'pay_test',
      amount: 300,
      status: 'succeeded',
    });
    expect(mine[0].data.object).not.toHaveProperty('merchant_id');
    expect(ofObject('/ok', refundId)).toHaveLength(1);
  });

  test('events list newest first with cursor pagination', async () => {
    const page1 = await call('GET', '/v1/events?limit=2');
    expect(page1.body).toMatchObject({ object: 'list', url: '/v1/events', has_more: true });
    expect(page1.body.data).toHaveLength(2);
    const page2 = await call('GET', `/v1/events?limit=2&starting_after=${page1.body.data[1].id}`);
    expect(page2.body.data).toHaveLength(2);
    const ids = [...page1.body.data, ...page2.body.data].map((e: Json) => e.id);
    expect(new Set(ids).size).toBe(4);
    const created = [...page1.body.data, ...page2.body.data].map((e: Json) => e.created);
    expect([...created].sort((a, b) => b - a)).toEqual(created);
    // The newest event is the refund.succeeded of the previous test.
    expect(page1.body.data[0].type).toBe('refund.succeeded');
    const bad = await call('GET', '/v1/events?limit=0');
    expect(bad.status).toBe(400);
  });

  test('another merchant sees none of these events or endpoints, and receives none of them', async () => {
    await register('/b', ['*'], keyB);
    const events = await call('GET', '/v1/events', undefined, keyB);
    expect(events.body.data).toEqual([]);
    const anEvent = (await call('GET', '/v1/events?limit=1')).body.data[0].id as string;
    expect((await call('GET', `/v1/events/${anEvent}`, undefined, keyB)).status).toBe(404);
    expect((await call('POST', `/v1/events/${anEvent}/redeliver`, {}, keyB)).status).toBe(404);
    const endpoints = await call('GET', '/v1/webhook_endpoints', undefined, keyB);
    expect(endpoints.body.data.map((e: Json) => e.url)).toEqual([`${hooks}/b`]);
    expect((await call('GET', `/v1/webhook_endpoints/${okEndpoint.id}`, undefined, keyB)).status).toBe(404);
    expect((await call('DELETE', `/v1/webhook_endpoints/${okEndpoint.id}`, undefined, keyB)).status).toBe(
      404,
    );
    // A's next payment goes to A's endpoint only.
    const p = await pay('pm_card_visa');
    await waitFor("A's payment.captured", () => ofObject('/ok', p.body.id, 'payment.captured').length > 0);
    await rt.settle();
    expect(at('/b')).toEqual([]);
    expect((await call('GET', `/v1/webhook_endpoints/${okEndpoint.id}`)).status).toBe(200);
  });

  test('an endpoint created or deleted here is seen by the next fan-out at once (the endpoints cache forgets the merchant)', async () => {
    const gone = await register('/gone', ['payment.captured']);
    const first = await pay('pm_card_visa');
    await waitFor('the new endpoint gets the event', () => ofObject('/gone', first.body.id).length > 0);
    expect((await call('DELETE', `/v1/webhook_endpoints/${gone.id}`)).status).toBe(200);
    const second = await pay('pm_card_visa');
    await waitFor(
      'the payment.captured',
      () => ofObject('/ok', second.body.id, 'payment.captured').length > 0,
    );
    await rt.settle();
    expect(ofObject('/gone', second.body.id)).toEqual([]);
  });

  test('a stream record delivered again enqueues its event again, and the endpoint still gets it once; a claim whose owner died is taken over once', async () => {
    // Imported once the runtime has configured the handlers' environment (log level, endpoints).
    const { merchantEventsConsumer } = await import('../../lambdas/events/stream.ts');
    const { fanOut } = await import('../../lambdas/events/delivery.ts');
    const store = await import('../../lambdas/store/merchant-events.ts');
    const { clients } = await import('../../lambdas/shared/aws.ts');
    const { config } = await import('../../lambdas/shared/config.ts');
    const { UpdateCommand } = await import('@aws-sdk/lib-dynamodb');
    const deliveriesOf = async (eventId: string) =>
      (await call('GET', `/v1/events/${eventId}`)).body.deliveries as Json[];

    // Three runs of one record at once: three `event.created` messages, one first attempt.
    const { refundId, change } = refundSucceeded(200, '000000000000000000000000000000000000011');
    await Promise.all([1, 2, 3].map(() => merchantEventsConsumer.handle(change)));
    await rt.settle();
    const delivered = ofObject('/ok', refundId);
    expect(delivered).toHaveLength(1);
    const [okDelivery] = (await deliveriesOf(delivered[0]!.body.id as string)).filter(
      (d) => d.endpoint === okEndpoint.id,
    );
    expect(okDelivery).toMatchObject({ status: 'succeeded' });
    expect(okDelivery!.attempts).toHaveLength(1);

    // A fan-out that opened its delivery and died before attempting: a repeated fan-out leaves
    // attempt 1 to it while its claim lasts, then exactly one of two concurrent ones takes over.
    const objectId = `re_${randomUUID().replace(/-/g, '')}`;
    const created = Math.floor(Date.now() / 1000);
    const { event } = await store.putEvent({
      event: {
        id: `evt_${randomUUID().replace(/-/g, '')}`,
        object: 'event',
        type: 'refund.succeeded',
        created,
        data: { object: { id: objectId, object: 'refund', status: 'succeeded', amount: 100 } },
      },
      merchantId: merchantA,
      objectKind: 'refund',
      objectId,
      order: '0',
    });
    expect(await store.ensureDelivery(event, { id: okEndpoint.id, url: `${hooks}/ok` })).toBeDefined();
    expect(await store.ensureDelivery(event, { id: okEndpoint.id, url: `${hooks}/ok` })).toBeUndefined();
    await fanOut(event.id, event);
    expect(ofObject('/ok', objectId)).toHaveLength(0);
    expect(await store.getDelivery(event.id, okEndpoint.id)).toMatchObject({
      status: 'pending',
      attempt_count: 0,
    });
    // The owner's claim ran out (its run ended long ago).
    await clients.ddb().send(
      new UpdateCommand({
        TableName: config.tableName('main'),
        Key: { pk: `EVENT#${event.id}`, sk: `DELIVERY#${okEndpoint.id}` },
        UpdateExpression: 'SET updated = :then',
        ExpressionAttributeValues: { ':then': created - store.DELIVERY_CLAIM_SECONDS - 5 },
      }),
    );
    await Promise.all([fanOut(event.id, event), fanOut(event.id, event)]);
    expect(ofObject('/ok', objectId)).toHaveLength(1);
    expect(await store.getDelivery(event.id, okEndpoint.id)).toMatchObject({
      status: 'succeeded',
      attempt_count: 1,
    });
  });
});
