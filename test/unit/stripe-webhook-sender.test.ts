/**
 * The Stripe simulator's webhook sender on the framework's delivery (framework/delivery.ts): what
 * is Stripe's (one signed event per request, the 1 s, 2 s, 4 s … schedule ending after
 * `maxAttempts`) on top of the shared retries and controls. The controls themselves are covered in
 * webhooks.test.ts ("the simulator webhook sender").
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { StripeWebhookSender, stripeRetryDelay } from '../../lib/local/processors/stripe-webhook-sender.ts';
import type { StripeEvent } from '../../lib/local/processors/stripe-simulator.ts';
import { createLogger } from '../../lib/local/log.ts';

const event = (i: number, type = 'payment_intent.succeeded'): StripeEvent =>
  ({
    id: `evt_s${i}`,
    object: 'event',
    api_version: '2025-01-01',
    created: Math.floor(Date.now() / 1000),
    data: { object: { id: `pi_${i}`, object: 'payment_intent' } },
    livemode: false,
    pending_webhooks: 0,
    request: { id: null, idempotency_key: null },
    type,
  }) as StripeEvent;

describe('the Stripe webhook sender on the framework delivery', () => {
  let server: http.Server;
  let url: string;
  let status = 200;
  let bodies: string[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        bodies.push(Buffer.concat(chunks).toString('utf8'));
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/stripe`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  beforeEach(() => {
    status = 200;
    bodies = [];
  });

  test("Stripe's schedule: 1 s, 2 s, 4 s … after each failed attempt, given up after maxAttempts", () => {
    const delay = stripeRetryDelay(4);
    expect([1, 2, 3, 4].map((n) => delay(n))).toEqual([1000, 2000, 4000, undefined]);
  });

  test('a delivery never accepted is given up after maxAttempts, each attempt recorded with its event', async () => {
    status = 503;
    const s = new StripeWebhookSender({
      url: () => url,
      secret: () => 'whsec_unit',
      logger: createLogger('test'),
      timeScale: 1000,
      maxAttempts: 3,
    });
    s.send(event(1, 'charge.refunded'));
    await s.idle();
    expect(bodies.map((b) => JSON.parse(b).id)).toEqual(['evt_s1', 'evt_s1', 'evt_s1']);
    expect(s.stats()).toMatchObject({ events: 1, delivered: 0, retries: 2, failed: 1 });
    expect(s.deliveries()).toEqual(
      [1, 2, 3].map((attempt) =>
        expect.objectContaining({
          event: 'evt_s1',
          type: 'charge.refunded',
          attempt,
          status: 503,
        }),
      ),
    );
    await s.stop();
  });

  test('events are sent one per request, pretty-printed as Stripe sends them', async () => {
    const s = new StripeWebhookSender({
      url: () => url,
      secret: () => 'whsec_unit',
      logger: createLogger('test'),
    });
    for (let i = 10; i < 13; i++) s.send(event(i)); // the same tick: still three requests
    await s.idle();
    expect(bodies).toHaveLength(3);
    for (const b of bodies) expect(b).toBe(JSON.stringify(JSON.parse(b), null, 2));
    await s.stop();
  });

  test('while the endpoint is not known, deliveries wait without using an attempt', async () => {
    let target: string | null = null;
    const s = new StripeWebhookSender({
      url: () => target,
      secret: () => 'whsec_unit',
      logger: createLogger('test'),
      timeScale: 1000,
      maxAttempts: 1,
    });
    s.send(event(20));
    await new Promise((r) => setTimeout(r, 50));
    expect(s.deliveries()).toEqual([]);
    target = url; // the gateway is up: the next look (within 500 ms) delivers it, first attempt
    await s.idle();
    expect(bodies.map((b) => JSON.parse(b).id)).toEqual(['evt_s20']);
    expect(s.stats()).toMatchObject({ delivered: 1, failed: 0 });
    await s.stop();
  });

  test('after stop, events are not sent', async () => {
    const s = new StripeWebhookSender({
      url: () => url,
      secret: () => 'whsec_unit',
      logger: createLogger('test'),
    });
    await s.stop();
    s.send(event(30));
    await s.idle();
    expect(bodies).toEqual([]);
    expect(s.stats().events).toBe(0);
  });
});
